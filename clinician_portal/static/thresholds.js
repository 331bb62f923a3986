"use strict";
// Threshold editor: the baseline distribution, the proposed limits, approve or edit with a reason.
// Reads /api/patients/<id>/distribution (portal API) and the threshold API of the alerts work:
//   GET  /api/patients/<id>/thresholds -> {in_force: {version, limits}, versions: [...], phase: {...}}
//   POST /api/patients/<id>/thresholds/<row id>/approve  {limits, reason}
// (see docs/portal.md); until that API exists the page says so and shows the distribution only.

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
  try {
    const t = await api(`/api/patients/${patientId}/thresholds`);
    proposal = (t.versions || []).find((v) => v.status === "proposed") || null;
    shown = proposal ? proposal.limits : t.in_force.limits;
    status.textContent = proposal
      ? `Proposal from ${when(proposal.created_at)}; in force: ${t.in_force.version ? `version ${t.in_force.version}` : "defaults (NEWS2)"}.`
      : `No open proposal; in force: ${t.in_force.version ? `version ${t.in_force.version}` : "defaults (NEWS2)"}.`;
    if (t.phase) document.getElementById("th-phase").textContent = `Baseline phase: ${t.phase.phase}, ${num(t.phase.good_hours)} good hours, ${num(t.phase.days_left, 1)} days left.`;
    limitRows(shown);
    document.getElementById("th-approve").disabled = !proposal;
  } catch (e) {
    status.textContent = e.status === 404 || e.status === 405
      ? "The threshold service is not available on this server yet: the distribution is shown, approval is not possible."
      : `Could not load the thresholds: ${e.message}`;
    document.getElementById("th-approve").disabled = true;
  }
}

async function approve(event) {
  event.preventDefault();
  const error = document.getElementById("th-error");
  const reason = document.getElementById("th-reason").value.trim();
  error.textContent = "";
  if (!reason) { error.textContent = "Give a reason for the approval."; return; }
  try {
    await post(`/api/patients/${patientId}/thresholds/${proposal.id}/approve`, { limits: editedLimits(), reason });
    await loadThresholds();
    await loadDistribution();
    document.getElementById("th-status").textContent += " Approved.";
  } catch (e) {
    error.textContent = e.message;
  }
}

async function main() {
  await header();
  const p = await api(`/api/patients/${patientId}`);
  document.getElementById("th-title").textContent = `Thresholds · ${p.name}`;
  document.getElementById("th-form").addEventListener("submit", approve);
  document.getElementById("th-param").addEventListener("change", () => loadDistribution().catch(console.error));
  await loadThresholds();
  await loadDistribution();
}

main().catch((e) => { document.getElementById("th-status").textContent = e.message; });
