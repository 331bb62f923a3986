"use strict";
// Symptom-period search across my patients, with data filters; and symptom-rhythm correlation.

let offset = 0;
let lastQuery = "";

function query(form) {
  const q = new URLSearchParams();
  for (const [key, value] of new FormData(form)) {
    const v = String(value).trim();
    if (!v) continue;
    if (key === "tag") v.split(",").map((t) => t.trim()).filter(Boolean).forEach((t) => q.append("tag", t));
    else if (key === "start" || key === "end") q.append(key, new Date(v).toISOString());
    else q.append(key, v);
  }
  return q;
}

function vsBaseline(r) {
  const b = r.baseline;
  if (!b || b.hr_mean === null) return "—";
  const diff = r.vitals.hr_mean !== null ? ` (${r.vitals.hr_mean >= b.hr_mean ? "+" : ""}${num(r.vitals.hr_mean - b.hr_mean)})` : "";
  return `${num(b.hr_mean)} ± ${num(b.hr_sd)}${diff}${b.complete ? "" : " · still learning"}`;
}

function resultRow(r) {
  const tr = el("tr");
  const who = el("td");
  who.append(link(`/patients/${r.patient_id}?start=${encodeURIComponent(new Date(Date.parse(r.started_at || r.ended_at) - 3 * 3600e3).toISOString())}&end=${encodeURIComponent(new Date(Date.parse(r.ended_at || r.started_at) + 3 * 3600e3).toISOString())}`, r.patient_name));
  const said = [r.tags.join(", "), r.severity ? `severity ${r.severity}` : "", r.note].filter(Boolean).join(" · ");
  const v = r.vitals;
  const hr = v.windows ? `${num(v.hr_mean)} / ${num(v.hr_min)} / ${num(v.hr_max)}` : "no usable data";
  const strip = el("td");
  if (r.strip) strip.append(link(stripHref(r.strip), "view strip")); else strip.textContent = "—";
  tr.append(who, el("td", `${when(r.started_at)} – ${r.ended_at ? when(r.ended_at) : "ongoing"}`), el("td", said),
    el("td", hr), el("td", vsBaseline(r)), el("td", v.flags.join(", ") || "—", v.flags.length ? "flagged" : ""),
    el("td", num(v.quality_mean, 2)), strip);
  return tr;
}

async function run(more) {
  const form = document.getElementById("search-form");
  const error = document.getElementById("search-error");
  error.textContent = "";
  if (!more) { offset = 0; lastQuery = query(form).toString(); }
  try {
    const page = await api(`/api/symptoms/search?${lastQuery}&offset=${offset}&limit=50`);
    const rows = page.results.map(resultRow);
    const body = document.getElementById("result-rows");
    if (more) body.append(...rows); else body.replaceChildren(...rows);
    offset += page.results.length;
    document.getElementById("more").hidden = !page.more;
    document.getElementById("result-count").textContent = `${body.children.length}${page.more ? "+" : ""} periods`;
  } catch (e) {
    error.textContent = e.message;
  }
}

async function loadCorrelation() {
  const rows = await api("/api/symptoms/correlation");
  document.getElementById("corr-rows").replaceChildren(...rows.map((c) => {
    const tr = el("tr");
    const who = el("td");
    who.append(link(`/patients/${c.patient_id}`, c.patient_name));
    tr.append(who, el("td", c.periods), el("td", c.periods_with_arrhythmia), el("td", c.episodes),
      el("td", c.episodes_unmarked, c.episodes_unmarked ? "flagged" : ""));
    return tr;
  }));
}

async function main() {
  await header();
  const patients = await api("/api/patients");
  document.getElementById("f-patient").append(...patients.map((p) => {
    const o = el("option", p.name);
    o.value = p.id;
    return o;
  }));
  document.getElementById("search-form").addEventListener("submit", (e) => { e.preventDefault(); run(false); });
  document.getElementById("more").addEventListener("click", () => run(true));
  await Promise.all([run(false), loadCorrelation()]);
}

main().catch((e) => { document.getElementById("search-error").textContent = e.message; });
