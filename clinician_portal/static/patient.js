"use strict";
// The patient page: zoomable trends (hours to months) with alerts, symptom periods and limits on one axis.

const patientId = Number(window.location.pathname.split("/")[2]);
const view = { start: 0, end: 0, points: [], timeline: { alerts: [], periods: [], strips: [], episodes: [], limits: [] }, doses: [], bucketMs: 60000 };
const DOSE_LABEL = { on_time: "taken on time", late: "taken late", skipped: "skipped", missed: "missed", unconfirmed: "unconfirmed", pending: "still open" };
const MIN_SPAN = 3600e3;
const MAX_SPAN = 400 * 86400e3;
let pending = null;
let loaded = 0; // completed loads, for tests and screen readers

function iso(t) { return new Date(t).toISOString(); }

function setRange(start, end) {
  let span = Math.min(MAX_SPAN, Math.max(MIN_SPAN, end - start));
  const mid = (start + end) / 2;
  view.start = Math.round(mid - span / 2);
  view.end = view.start + span;
  document.getElementById("range").textContent = `${when(iso(view.start))} – ${when(iso(view.end))}`;
  clearTimeout(pending);
  pending = setTimeout(() => load().catch(showError), 150);
}

function showError(e) {
  document.getElementById("announce").textContent = `Could not load: ${e.message}`;
}

async function load() {
  const q = `start=${encodeURIComponent(iso(view.start))}&end=${encodeURIComponent(iso(view.end))}`;
  const [points, timeline, doses, adherence] = await Promise.all([
    api(`/api/patients/${patientId}/series?${q}`), api(`/api/patients/${patientId}/timeline?${q}`),
    api(`/api/patients/${patientId}/doses?${q}`), api(`/api/patients/${patientId}/adherence?${q}`)]);
  view.points = points;
  view.timeline = timeline;
  view.doses = doses.doses;
  renderAdherence(adherence);
  view.bucketMs = points.length > 1 ? Math.min(...points.slice(1).map((p, i) => Date.parse(p.t) - Date.parse(points[i].t))) : 60000;
  drawTrends(document.getElementById("chart"), view);
  renderEvents();
  document.getElementById("export-csv").href = `/api/patients/${patientId}/export.csv?${q}`;
  document.getElementById("export-fhir").href = `/api/patients/${patientId}/export.fhir.json?${q}`;
  document.getElementById("export-all").href = `/api/patients/${patientId}/export.zip`;
  loaded += 1;
  document.getElementById("chart").dataset.loaded = String(loaded);
  loadWeatherPanel(patientId, view.start, view.end).catch(showError);
}

function renderEvents() {
  const rows = [];
  for (const a of view.timeline.alerts) {
    rows.push([a.opened_at, `${a.level} alert`, `${a.parameter} · ${a.state}`]);
  }
  for (const s of view.timeline.periods) {
    const strip = view.timeline.strips.find((t) => Date.parse(t.start) >= Date.parse(s.started_at || s.ended_at) - 60000
      && Date.parse(t.start) < (s.ended_at ? Date.parse(s.ended_at) : Infinity));
    rows.push([s.started_at || s.ended_at, "symptom period", `${s.tags.join(", ")}${s.severity ? ` · severity ${s.severity}` : ""}${s.note ? ` · ${s.note}` : ""}`, strip]);
  }
  for (const e of view.timeline.episodes) rows.push([e.start, "rhythm episode", e.flags.join(", ")]);
  for (const t of view.timeline.strips) rows.push([t.start, "ECG strip", t.reason, t]);
  for (const d of view.doses.filter((x) => x.status !== "on_time")) {  // on-time doses are in the adherence table
    const at = d.answered_at && d.status === "late" ? ` at ${when(d.answered_at)}` : "";
    rows.push([d.planned, `dose ${DOSE_LABEL[d.status] || d.status}`, `${d.drug} ${d.dose}${at}${d.reason ? ` · ${d.reason}` : ""}`]);
  }
  rows.sort((a, b) => a[0].localeCompare(b[0]));
  document.getElementById("event-rows").replaceChildren(...rows.map(([t, what, details, strip]) => {
    const tr = el("tr");
    const cell = el("td", details);
    if (strip) { cell.append(" "); cell.append(link(stripHref(strip), "view strip")); }
    tr.append(el("td", when(t)), el("td", what), cell);
    return tr;
  }));
}

function renderAdherence(a) {
  const pct = (v) => (v === null || v === undefined ? "—" : `${Math.round(v * 100)} %`);
  document.getElementById("adherence-facts").textContent = a.drugs.length
    ? `Doses planned ${when(a.start)} – ${when(a.end)}; on time: within the plan's window.${a.low ? ` Below ${pct(a.low_share)} on time for at least one drug.` : ""}`
    : "No medication plan in this range.";
  document.getElementById("adherence-rows").replaceChildren(...a.drugs.map((d) => {
    const tr = el("tr");
    const share = el("td", pct(d.share_on_time), d.share_on_time !== null && d.share_on_time < a.low_share ? "low" : "");
    tr.append(el("th", `${d.drug}${d.critical ? " (critical)" : ""}`), el("td", d.planned), el("td", d.taken_on_time),
      el("td", d.taken_late), el("td", d.skipped), el("td", d.missed), el("td", d.unconfirmed), share,
      el("td", d.longest_missed_streak));
    tr.firstChild.scope = "row";
    return tr;
  }));
}

function zoom(factor, at) {
  const centre = at ?? (view.start + view.end) / 2;
  setRange(centre - (centre - view.start) * factor, centre + (view.end - centre) * factor);
}

function pan(fraction) {
  const shift = (view.end - view.start) * fraction;
  setRange(view.start + shift, view.end + shift);
}

function wire(canvas) {
  document.querySelectorAll("[data-span]").forEach((b) => b.addEventListener("click", () => {
    const span = Number(b.dataset.span) * 1000;
    setRange(view.end - span, view.end);
  }));
  document.getElementById("zoom-in").addEventListener("click", () => zoom(0.5));
  document.getElementById("zoom-out").addEventListener("click", () => zoom(2));
  document.getElementById("pan-left").addEventListener("click", () => pan(-0.5));
  document.getElementById("pan-right").addEventListener("click", () => pan(0.5));
  canvas.addEventListener("keydown", (e) => {
    const keys = { "+": () => zoom(0.5), "=": () => zoom(0.5), "-": () => zoom(2), ArrowLeft: () => pan(-0.25), ArrowRight: () => pan(0.25) };
    if (keys[e.key]) { e.preventDefault(); keys[e.key](); }
  });
  canvas.addEventListener("wheel", (e) => {
    e.preventDefault();
    const r = canvas.getBoundingClientRect();
    const fx = ((e.clientX - r.left) * (canvas.width / r.width) - 80) / (canvas.width - 90);
    zoom(e.deltaY < 0 ? 0.8 : 1.25, view.start + Math.min(1, Math.max(0, fx)) * (view.end - view.start));
  }, { passive: false });
  let drag = null;
  canvas.addEventListener("pointerdown", (e) => { drag = { x: e.clientX, start: view.start, end: view.end }; });
  window.addEventListener("pointerup", () => { drag = null; });
  canvas.addEventListener("pointermove", (e) => {
    if (!drag) return;
    const r = canvas.getBoundingClientRect();
    const dt = ((drag.x - e.clientX) / r.width) * (drag.end - drag.start);
    setRange(drag.start + dt, drag.end + dt);
  });
}

window.addEventListener("resize", () => { if (loaded) drawTrends(document.getElementById("chart"), view); });

async function main() {
  await header();
  const p = await api(`/api/patients/${patientId}`);
  document.title = `${p.name} · pisces`;
  document.getElementById("patient-name").textContent = p.name;
  document.getElementById("patient-facts").textContent =
    `${STATE_LABEL[p.state] || p.state} · last data ${when(p.last_data_at)} · battery ${p.battery ?? "—"} % · device ${p.device_id}`;
  document.getElementById("thresholds").href = `/patients/${patientId}/thresholds`;
  document.getElementById("report-link").href = `/patients/${patientId}/report`;
  document.getElementById("medication").href = `/patients/${patientId}/medication`;
  const params = new URLSearchParams(window.location.search);
  const end = params.get("end") ? Date.parse(params.get("end")) : (p.last_data_at ? Date.parse(p.last_data_at) : Date.now());
  const start = params.get("start") ? Date.parse(params.get("start")) : end - 86400e3;
  wire(document.getElementById("chart"));
  wireWeatherPanel();
  setRange(start, end);
}

main().catch(showError);
