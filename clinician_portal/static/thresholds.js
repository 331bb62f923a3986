"use strict";
// Threshold editor: the baseline distribution, the proposed limits, approve or edit with a reason.
// Reads /api/patients/<id>/distribution (the histogram) and the threshold API:
//   GET  /api/patients/<id>/thresholds           -> {in_force: {version, limits}, phase, versions}
//   POST /api/patients/<id>/thresholds/proposal  -> a new proposal from the baseline windows
//   POST /api/patients/<id>/thresholds           {limits, reason, proposal_id} -> the approved version

const patientId = Number(window.location.pathname.split("/")[2]);
const SIDES = ["red_low", "yellow_low", "yellow_high", "red_high"];
let proposal = null;
let shown = {};

function drawHistogram(h, limits) {
  const canvas = document.getElementById("histogram");
  const ctx = canvas.getContext("2d");
  ctx.clearRect(0, 0, canvas.width, canvas.height);
  if (!h.counts.length) return;
  const lo = Math.min(h.edges[0], limits?.red_low ?? Infinity) - 5;
  const hi = Math.max(h.edges[h.edges.length - 1], limits?.red_high ?? -Infinity) + 5;
  const x = (v) => 40 + ((v - lo) / (hi - lo)) * (canvas.width - 60);
  const top = Math.max(...h.counts);
  ctx.fillStyle = "#0b57d0";
  h.counts.forEach((n, i) => {
    const hgt = (n / top) * (canvas.height - 40);
    ctx.fillRect(x(h.edges[i]), canvas.height - 20 - hgt, Math.max(1, x(h.edges[i + 1]) - x(h.edges[i]) - 1), hgt);
  });
  ctx.font = "12px system-ui, sans-serif";
  for (const side of SIDES) {
    const v = limits?.[side];
    if (v === null || v === undefined) continue;
    ctx.strokeStyle = side.startsWith("red") ? "#b3261e" : "#b58100";
    ctx.beginPath(); ctx.moveTo(x(v), 10); ctx.lineTo(x(v), canvas.height - 20); ctx.stroke();
    ctx.fillStyle = ctx.strokeStyle;
    ctx.fillText(String(v), x(v) + 2, 22);
  }
  ctx.fillStyle = "#5f6368";
  for (let v = Math.ceil(lo / 10) * 10; v <= hi; v += 10) ctx.fillText(String(v), x(v) - 8, canvas.height - 4);
}

function limitRows(limits) {
  document.getElementById("th-rows").replaceChildren(...Object.entries(limits).map(([key, lim]) => {
    const tr = el("tr");
    tr.append(el("th", key));
    for (const side of SIDES) {
      const td = el("td");
      const input = el("input");
      input.type = "number";
      input.step = "1";
      input.value = lim[side] ?? "";
      input.dataset.key = key;
      input.dataset.side = side;
      input.setAttribute("aria-label", `${key} ${side.replace("_", " ")}`);
      td.append(input);
      tr.append(td);
    }
    return tr;
  }));
}

function editedLimits() {
  const out = {};
  document.querySelectorAll("#th-rows input").forEach((i) => {
    out[i.dataset.key] = out[i.dataset.key] || {};
    if (i.value !== "") out[i.dataset.key][i.dataset.side] = Number(i.value);
  });
  return out;
}

async function loadDistribution() {
  const param = document.getElementById("th-param").value;
  const h = await api(`/api/patients/${patientId}/distribution?parameter=${param}`);
  const key = Object.keys(shown).find((k) => k === param || k.startsWith(`${param}@`));
  drawHistogram(h, key ? shown[key] : null);
  document.getElementById("dist-facts").textContent = h.windows
    ? `${h.windows} usable windows, ${when(h.start)} – ${when(h.end)} · 5th / 50th / 95th percentile ${h.p05} / ${h.p50} / ${h.p95}`
    : "No usable data in the baseline phase yet.";
}

async function loadThresholds() {
  const status = document.getElementById("th-status");
  const t = await api(`/api/patients/${patientId}/thresholds`);
  const versions = t.versions || [];
  proposal = versions.find((v) => v.status === "proposed") || null;
  shown = proposal ? proposal.limits : t.in_force.limits;
  const inForce = t.in_force.version ? `version ${t.in_force.version}` : "the defaults (NEWS2)";
  status.textContent = proposal
    ? `Showing the proposal of ${when(proposal.created_at)}; in force: ${inForce}. Edit if needed and approve with a reason.`
    : `Showing the limits in force: ${inForce}. Edit and approve with a reason, or ask for a proposal.`;
  const ph = t.phase;
  document.getElementById("th-phase").textContent =
    `Baseline phase: ${ph.phase.replace("_", " ")} · ${num(ph.good_hours)} h of good data · ${num(ph.days_left, 1)} days left`;
  document.getElementById("th-propose").disabled = ph.phase === "no_data";
  limitRows(shown);
  document.getElementById("th-versions").replaceChildren(...versions.map((v) => {
    const tr = el("tr");
    tr.append(el("td", v.version ?? "—"), el("td", v.status), el("td", `${when(v.created_at)}${v.created_by ? ` · ${v.created_by}` : ""}`),
      el("td", v.approved_at ? `${when(v.approved_at)} · ${v.approved_by}` : "—"), el("td", v.reason || "—"));
    return tr;
  }));
}

async function propose() {
  const error = document.getElementById("th-error");
  error.textContent = "";
  try {
    await post(`/api/patients/${patientId}/thresholds/proposal`, {});
    await loadThresholds();
    await loadDistribution();
  } catch (e) {
    error.textContent = e.message;
  }
}

async function approve(event) {
  event.preventDefault();
  const error = document.getElementById("th-error");
  const reason = document.getElementById("th-reason").value.trim();
  error.textContent = "";
  if (!reason) { error.textContent = "Give a reason for the approval."; return; }
  try {
    const row = await post(`/api/patients/${patientId}/thresholds`,
      { limits: editedLimits(), reason, proposal_id: proposal ? proposal.id : null });
    document.getElementById("th-reason").value = "";
    await loadThresholds();
    await loadDistribution();
    document.getElementById("th-status").textContent = `Approved as version ${row.version}.`;
  } catch (e) {
    error.textContent = e.message;
  }
}

async function main() {
  await header();
  const p = await api(`/api/patients/${patientId}`);
  document.getElementById("th-title").textContent = `Thresholds · ${p.name}`;
  document.getElementById("th-form").addEventListener("submit", approve);
  document.getElementById("th-propose").addEventListener("click", propose);
  document.getElementById("th-param").addEventListener("change", () => loadDistribution().catch(console.error));
  await loadThresholds();
  await loadDistribution();
}

main().catch((e) => { document.getElementById("th-status").textContent = e.message; });
