"use strict";
// The visit report page: /patients/<id>/report[?start&end]. One API call gives the report model; each
// section is rendered from the <template data-section="key"> block of its key (bind.js), then drawn.

const patientId = Number(window.location.pathname.split("/")[2]);
const STRIP_PX_PER_MM = 6; // canvas pixels per paper millimetre (sharp in print); CSS sizes it in mm
const STRIP_ROW_S = 7; // seconds per row: 175 mm at 25 mm/s fits A4 portrait
const STRIP_ROWS = 2; // the last 14 s of a strip, up to the mark it was recorded for
const STRIP_ROW_MM = 30; // ± 1.5 mV at 10 mm/mV
const PARAMETER = { hr: "heart rate", resp_rate: "respiration", pause: "pause", af: "AF", vt: "VT",
  panic: "panic button", no_signal: "no signal" };
const UNIT = { hr: "bpm", resp_rate: "/min", pause: "s" };
const FLAG = { af_suspected: "AF suspected", brady: "bradycardia", ectopic: "ectopic beats",
  irregular: "irregular rhythm", pause: "pause", tachy: "tachycardia", vt: "VT" };
const BASIS = { since_visit: "since the last visit", default: "no visit recorded", requested: "requested period" };

function localDay(day) { // "YYYY-MM-DD" as the local calendar day it names
  const [y, m, d] = day.split("-").map(Number);
  return new Date(y, m - 1, d).toLocaleDateString([], { weekday: "short", day: "numeric", month: "short" });
}

function dur(seconds) {
  if (seconds === null || seconds === undefined) return "—";
  if (seconds < 90) return `${Math.round(seconds)} s`;
  if (seconds < 5400) return `${Math.round(seconds / 60)} min`;
  const h = Math.floor(seconds / 3600);
  return `${h} h ${Math.round((seconds - h * 3600) / 60)} min`;
}

function quoted(text) { return text ? `: “${text}”` : ""; }

function at(iso) { // a short local date and time
  return iso ? new Date(iso).toLocaleString([], { dateStyle: "medium", timeStyle: "short" }) : "—";
}

// "dose:<drug>" is a critical drug's missed doses (server/dose_alerts.py)
const parameterName = (v) => PARAMETER[v] || (v.startsWith("dose:") ? `missed doses of ${v.slice(5)}` : v);

const FORMATS = {
  at,
  parameter: parameterName,
  n0: (v) => num(v, 0),
  n1: (v) => num(v, 1),
  h: (v) => (v === null || v === undefined ? "—" : `${num(v, 1)} h`),
  pct: (v) => (v === null || v === undefined ? "—" : `${v} %`),
  dur,
  flag: (v) => FLAG[v] || v,
  range: (s) => (s.low === null ? "—" : `${num(s.low)}–${num(s.high)} ${s.unit}`),
  limit: (l) => `${l.parameter.replace("_rate", "").replace("@", " at ")} yellow ≤${num(l.yellow_low)}/≥${num(l.yellow_high)},`
    + ` red ≤${num(l.red_low)}/≥${num(l.red_high)} (${l.source})`,
  alertWhat: (a) => `${parameterName(a.parameter)}${a.value !== null ? ` ${num(a.value, a.parameter === "pause" ? 1 : 0)} ${UNIT[a.parameter] || ""}` : ""}`,
  alertOutcome: (a) => [
    a.acked_at ? `acknowledged by ${a.acked_by} after ${dur(a.seconds_to_ack)}${quoted(a.ack_note)}` : "never acknowledged",
    a.state !== "resolved" ? "still active"
      : a.closed_by_pause ? "closed: monitoring paused (the patient withdrew consent)"
      : a.resolved_by_rules ? `resolved by the rules${a.resolve_note ? ` (${a.resolve_note})` : ""}`
        : `resolved by ${a.resolved_by}${quoted(a.resolve_note)}`,
    ...(a.escalation_steps ? [`escalated ${a.escalation_steps}×`] : []),
  ].join("; "),
  periodWhen: (p) => {
    const start = p.started_at || p.ended_at;
    const length = p.started_at && p.ended_at ? ` (${dur((Date.parse(p.ended_at) - Date.parse(p.started_at)) / 1000)})` : "";
    return `${at(start)}${length}`;
  },
  periodSaid: (p) => [p.tags.join(", "), p.severity ? `severity ${p.severity}/5` : "", p.note ? `“${p.note}”` : ""]
    .filter(Boolean).join(" · ") || "—",
  notableClass: (v) => (v ? "notable" : ""),
  lowClass: (v) => (v ? "low" : ""),
  recentClass: () => "has-recent",
  open: (n) => (n ? ` (${n} still open)` : ""),
  streak: (d) => `${d.longest_missed_streak}${d.current_missed_streak ? ` (${d.current_missed_streak} at the end)` : ""}`,
  reasons: (list) => list.map((r) => `“${r.reason}”${r.doses > 1 ? ` ×${r.doses}` : ""}`).join(", "),
  planVersion: (v) => `version ${v.version} since ${at(v.since)}${v.by ? ` by ${v.by}` : ""}${quoted(v.reason)}`
    + (v.drugs ? "" : " (no drugs)"),
  pause: (p) => `${p.seconds === null ? "—" : num(p.seconds, 1)} s at ${at(p.start)}`,
  stripCaption: (s) => `${at(s.start)} · ${s.reason} · last ${Math.min(s.duration_s, STRIP_ROW_S * STRIP_ROWS)} s of ${num(s.duration_s)} s · 25 mm/s, 10 mm/mV`,
};

const LINKS = {
  strip: (s) => stripHref(s),
  periodStrip: (row) => stripHref(row.strip),
};

function sectionBody(report, key) {
  const found = report.sections.find((s) => s.key === key);
  return found ? found.body : null;
}

function drawTrendsOf(canvas, body, report) {
  const alerts = body.alerts;
  const periods = ((sectionBody(report, "symptoms") || { periods: [] }).periods).map((p) => p.period);
  const episodes = (sectionBody(report, "rhythm") || { episodes: [] }).episodes;
  drawTrends(canvas, {
    start: Date.parse(report.period.start), end: Date.parse(report.period.end), points: body.series,
    bucketMs: body.bucket_s * 1000, timeline: { alerts, periods, strips: [], episodes, limits: body.limits },
  });
}

function drawHours(canvas, body) {
  canvas.width = Math.max(480, Math.round(canvas.clientWidth || canvas.width));
  const ctx = canvas.getContext("2d");
  const [W, H, left, top, bottom] = [canvas.width, canvas.height, 44, 8, 22];
  const y = (h) => top + (1 - h / 24) * (H - top - bottom);
  const n = Math.max(1, body.days.length);
  const bw = (W - left - 8) / n;
  ctx.clearRect(0, 0, W, H);
  ctx.font = "12px system-ui, sans-serif";
  for (const h of [0, 6, 12, 18, 24]) {
    ctx.strokeStyle = h === body.short_day_hours ? "#b58100" : COLORS.grid;
    ctx.setLineDash(h === body.short_day_hours ? [4, 3] : []);
    ctx.beginPath(); ctx.moveTo(left, y(h)); ctx.lineTo(W - 8, y(h)); ctx.stroke();
    ctx.fillStyle = COLORS.text;
    ctx.fillText(`${h} h`, 4, y(h) + 4);
  }
  ctx.setLineDash([]);
  const every = Math.ceil(n / 12);
  body.days.forEach((d, i) => {
    const x = left + i * bw + 1;
    ctx.fillStyle = "#c9ccd1";
    ctx.fillRect(x, y(d.recorded_h), Math.max(1, bw - 2), y(0) - y(d.recorded_h));
    ctx.fillStyle = d.short ? "#b58100" : COLORS.line2;
    ctx.fillRect(x, y(d.good_h), Math.max(1, bw - 2), y(0) - y(d.good_h));
    const label = localDay(d.day);
    if (i % every === 0 && x + ctx.measureText(label).width < W) { ctx.fillStyle = COLORS.text; ctx.fillText(label, x, H - 6); }
  });
}

// The last STRIP_ROWS x STRIP_ROW_S seconds of a strip, one canvas per row, drawn on ECG paper by ecg.js.
async function drawStrip(canvas, info) {
  const strip = await api(`/api/patients/${info.patient_id}/strips/${encodeURIComponent(info.device_id)}/${info.seq}`);
  const fs = strip.info.fs;
  const rowLen = Math.round(STRIP_ROW_S * fs);
  const first = Math.max(0, strip.samples_uv.length - rowLen * STRIP_ROWS);
  const rows = [];
  for (let a = first; a < strip.samples_uv.length; a += rowLen) rows.push([a, Math.min(strip.samples_uv.length, a + rowLen)]);
  let last = canvas;
  rows.forEach(([a, b], i) => {
    const c = i === 0 ? canvas : last.parentNode.insertBefore(canvas.cloneNode(), last.nextSibling);
    last = c;
    const part = {
      info: { ...strip.info, start: new Date(Date.parse(strip.info.start) + (a / fs) * 1000).toISOString() },
      samples_uv: strip.samples_uv.slice(a, b),
      beats: strip.beats.filter((k) => k >= a && k < b).map((k) => k - a),
      marks: strip.marks,
    };
    c.height = STRIP_ROW_MM * STRIP_PX_PER_MM;
    const drawn = drawEcgPaper(c, part, STRIP_PX_PER_MM);
    c.style.width = `${drawn.seconds * MM_PER_S}mm`; // true paper scale on screen and in print
    c.style.height = `${STRIP_ROW_MM}mm`;
    c.dataset.seconds = String(drawn.seconds);
  });
  canvas.closest("figure").dataset.beats = String(strip.beats.filter((k) => k >= first).length);
}

function renderSection(section, hooks) {
  const node = el("section", null, "r-section");
  node.dataset.key = section.key;
  node.setAttribute("aria-labelledby", `sec-${section.key}`);
  const title = el("h3", section.title);
  title.id = `sec-${section.key}`;
  node.append(title);
  const template = document.querySelector(`template[data-section="${section.key}"]`);
  node.append(template ? bindTemplate(template, section.body, hooks) : el("p", section.headline));
  return node;
}

function periodText(period) {
  const range = `${at(period.start)} – ${at(period.end)}`;
  if (period.basis === "since_visit") {
    const clipped = period.clipped ? " (the visit is further back than a report reaches)" : "";
    return `${range}, since the visit of ${at(period.visit.visited_at)}${quoted(period.visit.note)}${clipped}`;
  }
  return `${range} (${BASIS[period.basis] || period.basis})`;
}

async function render(report) {
  const draw = { trends: (c, body) => drawTrendsOf(c, body, report), hours: drawHours, strip: drawStrip };
  const hooks = { formats: FORMATS, links: LINKS, draw, pending: [] };
  document.title = `Visit report · ${report.patient.name} · pisces`;
  document.getElementById("r-title").textContent = `Visit report · ${report.patient.name}`;
  document.getElementById("r-period").textContent = periodText(report.period);
  document.getElementById("r-facts").textContent = `Device ${report.patient.device_id} · limits ${report.limits_source}`
    + ` · good signal: quality ≥ ${report.usable_quality} · days in ${report.period.tz} · made ${at(report.generated_at)}`;
  // a section whose body carries a flag (e.g. "low adherence") is a finding to raise: listed first, marked
  const flagged = (s) => Boolean(s.body && s.body.flag);
  const glance = [...report.sections.filter(flagged), ...report.sections.filter((s) => !flagged(s))];
  document.getElementById("r-headlines").replaceChildren(...glance.map((s) => {
    const row = el("div", null, `glance-${s.key}${flagged(s) ? " r-flagged" : ""}`);
    const title = el("dt", s.title);
    if (flagged(s)) title.append(" ", el("span", s.body.flag, "r-flag-label"));
    row.append(title, el("dd", s.headline));
    return row;
  }));
  document.getElementById("r-sections").replaceChildren(...report.sections.map((s) => renderSection(s, hooks)));
  // a drawing that fails (a strip that cannot be read) is announced, and the rest still draws
  await Promise.all(hooks.pending.map((run) => Promise.resolve().then(run).catch((e) => {
    document.getElementById("announce").textContent = `Could not draw part of the report: ${e.message}`;
  })));
}

function isoDay(t) { // a local date for <input type=date>
  const d = new Date(t);
  return `${d.getFullYear()}-${String(d.getMonth() + 1).padStart(2, "0")}-${String(d.getDate()).padStart(2, "0")}`;
}

function localInput(t) { // a local time for <input type=datetime-local>
  const d = new Date(t);
  return `${isoDay(t)}T${String(d.getHours()).padStart(2, "0")}:${String(d.getMinutes()).padStart(2, "0")}`;
}

function wirePeriodForm(report) {
  document.getElementById("from").value = isoDay(Date.parse(report.period.start));
  document.getElementById("to").value = isoDay(Date.parse(report.period.end) - 1);
  document.getElementById("period-form").addEventListener("submit", (e) => {
    e.preventDefault();
    const start = new Date(`${document.getElementById("from").value}T00:00`);
    const end = new Date(`${document.getElementById("to").value}T00:00`);
    end.setDate(end.getDate() + 1);
    const q = new URLSearchParams({ start: start.toISOString(), end: new Date(Math.min(end, Date.now())).toISOString() });
    window.location.assign(`/patients/${patientId}/report?${q}`);
  });
  document.getElementById("since-visit").addEventListener("click", () => window.location.assign(`/patients/${patientId}/report`));
  document.getElementById("print").addEventListener("click", () => window.print());
}

async function loadVisits() {
  const rows = await api(`/api/patients/${patientId}/visits`);
  document.getElementById("visit-rows").replaceChildren(...rows.map((v) => {
    const tr = el("tr");
    const status = v.current ? "current" : v.withdrawn ? "withdrawal" : "replaced";
    tr.append(el("td", at(v.visited_at)), el("td", v.note || "—"), el("td", `${v.recorded_by} · ${at(v.recorded_at)}`),
      el("td", v.corrects ? `${status} (corrects #${v.corrects})` : status));
    return tr;
  }));
}

function wireVisitForm(report) {
  const visitAt = document.getElementById("visit-at");
  visitAt.value = localInput(Date.now());
  document.getElementById("visit-form").addEventListener("submit", async (e) => {
    e.preventDefault();
    const status = document.getElementById("visit-status");
    try {
      const visit = await post(`/api/patients/${patientId}/visits`, {
        visited_at: new Date(visitAt.value).toISOString(), note: document.getElementById("visit-note").value });
      status.textContent = `Visit of ${at(visit.visited_at)} recorded: the next report starts from it.`;
      status.className = "ok";
      // keep this report's period in the address, so reloading or printing shows the same report
      const q = new URLSearchParams({ start: report.period.start, end: report.period.end });
      window.history.replaceState(null, "", `/patients/${patientId}/report?${q}`);
      await loadVisits();
    } catch (err) {
      status.textContent = `Not recorded: ${err.message}`;
      status.className = "error";
    }
  });
}

async function main() {
  await header();
  document.getElementById("back").href = `/patients/${patientId}`;
  const params = new URLSearchParams(window.location.search);
  const q = new URLSearchParams({ tz: Intl.DateTimeFormat().resolvedOptions().timeZone || "UTC" });
  for (const key of ["start", "end"]) if (params.get(key)) q.set(key, params.get(key));
  const report = await api(`/api/patients/${patientId}/report?${q}`);
  await render(report);
  wirePeriodForm(report);
  wireVisitForm(report);
  await loadVisits();
  const article = document.getElementById("report");
  article.setAttribute("aria-busy", "false");
  article.dataset.loaded = "1";
}

main().catch((e) => {
  document.getElementById("r-period").textContent = `Could not load the report: ${e.message}`;
  document.getElementById("report").dataset.loaded = "error";
});
