"use strict";
// The ECG strip viewer page: /strips/<patient>/<device>/<seq>.

const PX_PER_MM = 4; // on screen; the grid keeps the 25 mm/s and 10 mm/mV proportions

async function main() {
  await header();
  const [, , patientId, device, seq] = window.location.pathname.split("/");
  const strip = await api(`/api/patients/${patientId}/strips/${device}/${seq}`);
  const info = strip.info;
  document.getElementById("strip-title").textContent = `ECG strip · ${info.reason}`;
  const hr = strip.beats.length > 1 ? 60 * info.fs * (strip.beats.length - 1) / (strip.beats[strip.beats.length - 1] - strip.beats[0]) : null;
  document.getElementById("strip-facts").textContent =
    `${when(info.start)} · ${num(info.duration_s, 1)} s at ${num(info.fs)} Hz · ${strip.beats.length} beats${hr ? ` · ${num(hr)} bpm` : ""}`;
  const canvas = document.getElementById("ecg");
  canvas.height = 40 * PX_PER_MM;
  const drawn = drawEcgPaper(canvas, strip, PX_PER_MM);
  canvas.dataset.pxPerMm = String(drawn.pxPerMm);
  canvas.dataset.seconds = String(drawn.seconds);
  const back = link(`/patients/${patientId}?start=${encodeURIComponent(new Date(Date.parse(info.start) - 3600e3).toISOString())}&end=${encodeURIComponent(new Date(Date.parse(info.start) + 3600e3).toISOString())}`, "patient's trends around it");
  document.getElementById("marks").replaceChildren(...strip.marks.map((m) => el("li", `${when(m.start)} · ${m.kind.replace("_", " ")}${m.label ? `: ${m.label}` : ""}`)), back);
}

main().catch((e) => { document.getElementById("strip-facts").textContent = `Could not load: ${e.message}`; });
