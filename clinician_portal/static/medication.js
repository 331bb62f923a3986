"use strict";
// Medication plan editor: the plan in force, edited as a whole and saved as the next version.
//   GET  /api/patients/<id>/medication  -> {in_force, versions}
//   POST /api/patients/<id>/medication  {time_zone, on_time_minutes, grace_minutes, drugs, reason} -> the new version

const patientId = Number(window.location.pathname.split("/")[2]);
const FIELDS = [
  ["name", "text", "Drug"], ["dose", "text", "Dose"], ["times", "text", "Times of day"], ["every_hours", "number", "Every hours"],
  ["start", "date", "First day"], ["end", "date", "Last day"], ["instructions", "text", "Instructions"],
];

function schedule(d) {
  const when = d.every_hours ? `every ${d.every_hours} h from ${d.times[0]}` : d.times.join(", ");
  return `${d.name} ${d.dose} ${when}${d.critical ? " (critical)" : ""}`;
}

function drugRow(d = { name: "", dose: "", times: [], critical: false }) {
  const tr = el("tr");
  const n = document.querySelectorAll("#med-rows tr").length + 1;
  for (const [key, type, label] of FIELDS) {
    const input = el("input");
    input.type = type;
    input.dataset.key = key;
    input.value = key === "times" ? (d.times || []).join(", ") : (d[key] ?? "");
    input.setAttribute("aria-label", `${label} of drug ${n}`);
    if (key === "name" || key === "dose" || key === "times") input.required = true;
    if (key === "every_hours") { input.min = "1"; input.max = "168"; }
    const td = el("td");
    td.append(input);
    tr.append(td);
  }
  const critical = el("input");
  critical.type = "checkbox";
  critical.dataset.key = "critical";
  critical.checked = Boolean(d.critical);
  critical.setAttribute("aria-label", `Drug ${n} is critical`);
  const cell = el("td");
  cell.append(critical);
  const remove = el("button", "Remove");
  remove.type = "button";
  remove.setAttribute("aria-label", `Remove drug ${n}`);
  remove.addEventListener("click", () => tr.remove());
  const last = el("td");
  last.append(remove);
  tr.append(cell, last);
  return tr;
}

function editedDrugs() {
  return [...document.querySelectorAll("#med-rows tr")].map((tr) => {
    const value = (key) => tr.querySelector(`[data-key="${key}"]`);
    const d = { name: value("name").value.trim(), dose: value("dose").value.trim(),
      times: value("times").value.split(/[,\s]+/).filter(Boolean), instructions: value("instructions").value.trim(),
      critical: value("critical").checked };
    if (value("every_hours").value) d.every_hours = Number(value("every_hours").value);
    if (value("start").value) d.start = value("start").value;
    if (value("end").value) d.end = value("end").value;
    return d;
  });
}

function render(plan) {
  const current = plan.in_force;
  document.getElementById("med-status").textContent = current
    ? `Version ${current.version} in force since ${when(current.created_at)}${current.created_by ? ` (by ${current.created_by})` : ""}`
      + ` · ${current.pushed_at ? "on the phone" : "not yet on the phone"}`
    : "No plan yet.";
  document.getElementById("med-tz").value = current ? current.time_zone : Intl.DateTimeFormat().resolvedOptions().timeZone;
  if (current) {
    document.getElementById("med-on-time").value = current.on_time_minutes;
    document.getElementById("med-grace").value = current.grace_minutes;
  }
  document.getElementById("med-rows").replaceChildren();
  for (const d of current ? current.drugs : []) document.getElementById("med-rows").append(drugRow(d));
  document.getElementById("med-versions").replaceChildren(...plan.versions.map((v) => {
    const tr = el("tr");
    tr.append(el("td", v.version), el("td", when(v.created_at)), el("td", v.created_by || "—"),
      el("td", v.drugs.length ? v.drugs.map(schedule).join("; ") : "no medication"), el("td", v.reason || "—"),
      el("td", v.pushed_at ? when(v.pushed_at) : "not yet"));
    return tr;
  }));
}

async function reload() {
  render(await api(`/api/patients/${patientId}/medication`));
}

async function main() {
  await header();
  const p = await api(`/api/patients/${patientId}`);
  document.title = `Medication plan of ${p.name} · pisces`;
  document.getElementById("med-title").textContent = `Medication plan of ${p.name}`;
  document.getElementById("back").href = `/patients/${patientId}`;
  document.getElementById("med-add").addEventListener("click", () => {
    const row = drugRow();
    document.getElementById("med-rows").append(row);
    row.querySelector("input").focus();
  });
  document.getElementById("med-form").addEventListener("submit", async (e) => {
    e.preventDefault();
    const error = document.getElementById("med-error");
    error.textContent = "";
    try {
      const saved = await post(`/api/patients/${patientId}/medication`, {
        time_zone: document.getElementById("med-tz").value.trim(), drugs: editedDrugs(),
        on_time_minutes: Number(document.getElementById("med-on-time").value),
        grace_minutes: Number(document.getElementById("med-grace").value),
        reason: document.getElementById("med-reason").value.trim() });
      document.getElementById("med-reason").value = "";
      await reload();
      document.getElementById("announce").textContent = `Saved as version ${saved.version}.`;
    } catch (err) { error.textContent = err.message; }
  });
  await reload();
}

main().catch((e) => { document.getElementById("med-error").textContent = e.message; });
