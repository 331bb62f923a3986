"use strict";
// A small time-series chart on canvas: stacked lanes sharing one time axis. No library, no build step.

const COLORS = { hr: "#0b57d0", band: "rgba(11,87,208,.18)", yellow: "rgba(255,196,0,.18)", red: "rgba(179,38,30,.14)",
  sym: "rgba(123,31,162,.14)", symEdge: "#7b1fa2", alertRed: "#b3261e", alertYellow: "#b58100", rhythm: "#222",
  grid: "#e3e3e8", text: "#5f6368", line2: "#1e6b3a", line3: "#8a4b00" };
const DOSE_COLORS = { on_time: "#1e6b3a", late: "#b58100", skipped: "#5f6368", missed: "#b3261e", unconfirmed: "#b3261e",
  pending: "#5f6368" };
const DOSE_ROW_H = 12;
const MAX_DOSE_ROWS = 4; // more drugs share the last row

function lanesOf(height, doseRows = 0) {
  const events = { top: 8, h: 34 };
  const doses = { top: 46, h: doseRows * DOSE_ROW_H };
  const top = 50 + (doseRows ? doses.h + 6 : 0);
  const rest = height - 20 - top;
  const hr = { top, h: rest * 0.42 };
  const hrv = { top: hr.top + hr.h + 12, h: rest * 0.18 };
  const resp = { top: hrv.top + hrv.h + 12, h: rest * 0.2 };
  const act = { top: resp.top + resp.h + 12, h: rest * 0.12 };
  return { events, doses, hr, hrv, resp, act };
}

function drawDoseMark(ctx, cx, cy, status) {
  ctx.fillStyle = ctx.strokeStyle = DOSE_COLORS[status] || COLORS.text;
  ctx.lineWidth = 2;
  ctx.beginPath();
  if (status === "missed" || status === "unconfirmed") {
    ctx.moveTo(cx - 4, cy - 4); ctx.lineTo(cx + 4, cy + 4); ctx.moveTo(cx + 4, cy - 4); ctx.lineTo(cx - 4, cy + 4);
    ctx.stroke();
  } else if (status === "skipped") {
    ctx.moveTo(cx - 4, cy); ctx.lineTo(cx + 4, cy); ctx.stroke();
  } else {
    ctx.arc(cx, cy, 4, 0, 2 * Math.PI);
    if (status === "pending") ctx.stroke(); else ctx.fill();
  }
}

// Doses: one row per drug (planned time; a taken dose at the time it was taken), and a dashed line through
// the heart-rate lane where a dose was taken, so a rate-control drug's effect on the rate can be seen.
function drawDoses(ctx, view, lanes, x) {
  const drugs = [...new Set(view.doses.map((d) => d.drug))];
  let drawn = 0;
  ctx.font = "11px system-ui, sans-serif";
  drugs.slice(0, MAX_DOSE_ROWS).forEach((drug, i) => {
    ctx.fillStyle = COLORS.text;
    const label = i === MAX_DOSE_ROWS - 1 && drugs.length > MAX_DOSE_ROWS ? "other drugs" : drug;
    ctx.fillText(label.length > 11 ? `${label.slice(0, 10)}…` : label, 4, lanes.doses.top + i * DOSE_ROW_H + 9);
  });
  for (const d of view.doses) {
    const row = Math.min(drugs.indexOf(d.drug), MAX_DOSE_ROWS - 1);
    const taken = d.answered_at && (d.status === "on_time" || d.status === "late");
    const t = Date.parse(taken ? d.answered_at : d.planned);
    if (t < view.start || t > view.end) continue;
    drawDoseMark(ctx, x(t), lanes.doses.top + row * DOSE_ROW_H + 6, d.status);
    drawn += 1;
    if (taken) {
      ctx.save();
      ctx.strokeStyle = DOSE_COLORS[d.status];
      ctx.lineWidth = 1;
      ctx.setLineDash([3, 3]);
      ctx.beginPath();
      ctx.moveTo(x(t), lanes.hr.top);
      ctx.lineTo(x(t), lanes.hr.top + lanes.hr.h);
      ctx.stroke();
      ctx.restore();
    }
  }
  ctx.canvas.dataset.doses = String(drawn);
}

function scaleY(lane, lo, hi) {
  return (v) => lane.top + lane.h - ((v - lo) / (hi - lo)) * lane.h;
}

function extent(values, pad, floor, ceil) {
  const v = values.filter((x) => x !== null && x !== undefined);
  if (!v.length) return [floor, ceil];
  return [Math.min(floor, Math.min(...v) - pad), Math.max(ceil, Math.max(...v) + pad)];
}

function drawLimitBands(ctx, lane, y, lim, left, width) {
  if (!lim) return;
  const band = (a, b, color) => {
    const y0 = Math.max(lane.top, Math.min(y(a), y(b)));
    const y1 = Math.min(lane.top + lane.h, Math.max(y(a), y(b)));
    if (y1 > y0) { ctx.fillStyle = color; ctx.fillRect(left, y0, width, y1 - y0); }
  };
  const far = 1e4;
  if (lim.yellow_high !== null) band(lim.yellow_high, lim.red_high ?? far, COLORS.yellow);
  if (lim.red_high !== null) band(lim.red_high, far, COLORS.red);
  if (lim.yellow_low !== null) band(lim.red_low ?? -far, lim.yellow_low, COLORS.yellow);
  if (lim.red_low !== null) band(-far, lim.red_low, COLORS.red);
}

function drawLine(ctx, points, x, y, key, color) {
  ctx.strokeStyle = color;
  ctx.lineWidth = 1.5;
  ctx.beginPath();
  let pen = false;
  let last = null;
  for (const p of points) {
    const v = p[key];
    const t = Date.parse(p.t);
    if (v === null || v === undefined || (last !== null && t - last > 3 * p.bucket_ms)) { pen = false; }
    if (v === null || v === undefined) continue;
    if (pen) ctx.lineTo(x(t), y(v)); else ctx.moveTo(x(t), y(v));
    pen = true;
    last = t;
  }
  ctx.stroke();
}

// An axis end as text, with as many decimals as the lane's span needs (activity in g spans ~0.3).
function axisValue(v, span) {
  if (span < 1) return v.toFixed(2);
  if (span < 10) return v.toFixed(1);
  return String(Math.round(v));
}

function laneLabel(ctx, lane, text, lo, hi, y, left) {
  ctx.fillStyle = COLORS.text;
  ctx.font = "12px system-ui, sans-serif";
  ctx.fillText(text, 4, lane.top + lane.h / 2 + 4);
  ctx.textAlign = "right";
  ctx.fillText(axisValue(hi, hi - lo), left - 4, y(hi) + 10);
  ctx.fillText(axisValue(lo, hi - lo), left - 4, y(lo));
  ctx.textAlign = "left";
  ctx.strokeStyle = COLORS.grid;
  ctx.strokeRect(left, lane.top, ctx.canvas.width - left - 10, lane.h);
}

function timeTicks(start, end) {
  const span = end - start;
  const steps = [3600e3, 3 * 3600e3, 6 * 3600e3, 86400e3, 7 * 86400e3, 30 * 86400e3];
  const step = steps.find((s) => span / s <= 10) || steps[steps.length - 1];
  const first = Math.ceil(start / step) * step;
  const ticks = [];
  for (let t = first; t < end; t += step) ticks.push(t);
  return { ticks, daily: step >= 86400e3 };
}

function drawTrends(canvas, view) {
  // draw at the size shown, so text stays 12 px on a tablet as on a laptop
  canvas.width = Math.max(480, Math.round(canvas.clientWidth || canvas.width));
  canvas.height = Math.max(420, Math.min(640, Math.round(canvas.width * 0.55)));
  const ctx = canvas.getContext("2d");
  const W = canvas.width;
  const H = canvas.height;
  const left = 80;
  const width = W - left - 10;
  ctx.clearRect(0, 0, W, H);
  const doses = view.doses || [];
  const lanes = lanesOf(H, Math.min(MAX_DOSE_ROWS, new Set(doses.map((d) => d.drug)).size));
  const x = (t) => left + ((t - view.start) / (view.end - view.start)) * width;
  const points = view.points.map((p) => ({ ...p, bucket_ms: view.bucketMs }));
  // personal limits may differ by activity: the chart draws those at rest (or the plain ones)
  const byKey = Object.fromEntries(view.timeline.limits.map((l) => [l.parameter, l]));
  const limits = { hr: byKey.hr || byKey["hr@rest"], resp_rate: byKey.resp_rate || byKey["resp_rate@rest"] };

  // symptom periods: shaded across every lane, so they line up with the trends
  for (const s of view.timeline.periods) {
    const a = x(Math.max(view.start, Date.parse(s.started_at || s.ended_at)));
    const b = x(Math.min(view.end, s.ended_at ? Date.parse(s.ended_at) : view.end));
    ctx.fillStyle = COLORS.sym;
    ctx.fillRect(a, lanes.events.top, Math.max(2, b - a), H - 30 - lanes.events.top);
  }
  // event lane: alerts and rhythm episodes
  ctx.fillStyle = COLORS.text;
  ctx.font = "12px system-ui, sans-serif";
  ctx.fillText("events", 4, lanes.events.top + 12);
  for (const a of view.timeline.alerts) {
    const x0 = x(Math.max(view.start, Date.parse(a.opened_at)));
    const x1 = x(Math.min(view.end, a.closed_at ? Date.parse(a.closed_at) : view.end));
    ctx.fillStyle = a.level === "red" ? COLORS.alertRed : COLORS.alertYellow;
    ctx.fillRect(x0, lanes.events.top, Math.max(3, x1 - x0), 12);
  }
  for (const e of view.timeline.episodes) {
    const x0 = x(Date.parse(e.start));
    const x1 = x(Date.parse(e.end));
    ctx.fillStyle = COLORS.rhythm;
    ctx.fillRect(x0, lanes.events.top + 18, Math.max(2, x1 - x0), 10);
  }

  const hrLane = lanes.hr;
  const [hrLo, hrHi] = extent(points.flatMap((p) => [p.hr_min, p.hr_max]), 5, 40, 140);
  const yHr = scaleY(hrLane, hrLo, hrHi);
  ctx.save();
  ctx.beginPath();
  ctx.rect(left, hrLane.top, width, hrLane.h);
  ctx.clip();
  drawLimitBands(ctx, hrLane, yHr, limits.hr, left, width);
  ctx.fillStyle = COLORS.band;
  const bw = Math.max(1, (view.bucketMs / (view.end - view.start)) * width);
  for (const p of points) {
    if (p.hr_min === null || p.hr_max === null) continue;
    ctx.fillRect(x(Date.parse(p.t)), yHr(p.hr_max), bw, Math.max(1, yHr(p.hr_min) - yHr(p.hr_max)));
  }
  drawLine(ctx, points, x, yHr, "hr_mean", COLORS.hr);
  ctx.restore();
  laneLabel(ctx, hrLane, "HR bpm", hrLo, hrHi, yHr, left);

  const [vLo, vHi] = extent(points.map((p) => p.rmssd), 5, 0, 60);
  const yV = scaleY(lanes.hrv, vLo, vHi);
  drawLine(ctx, points, x, yV, "rmssd", COLORS.line2);
  laneLabel(ctx, lanes.hrv, "RMSSD ms", vLo, vHi, yV, left);

  const [rLo, rHi] = extent(points.map((p) => p.resp_rate), 2, 6, 30);
  const yR = scaleY(lanes.resp, rLo, rHi);
  ctx.save();
  ctx.beginPath();
  ctx.rect(left, lanes.resp.top, width, lanes.resp.h);
  ctx.clip();
  drawLimitBands(ctx, lanes.resp, yR, limits.resp_rate, left, width);
  drawLine(ctx, points, x, yR, "resp_rate", COLORS.line3);
  ctx.restore();
  laneLabel(ctx, lanes.resp, "Resp /min", rLo, rHi, yR, left);

  const [aLo, aHi] = extent(points.map((p) => p.intensity), 0, 0, 0.3);
  const yA = scaleY(lanes.act, aLo, aHi);
  ctx.fillStyle = "#9aa0a6";
  for (const p of points) {
    if (p.intensity === null) continue;
    ctx.fillRect(x(Date.parse(p.t)), yA(p.intensity), bw, lanes.act.top + lanes.act.h - yA(p.intensity));
  }
  laneLabel(ctx, lanes.act, "Activity g", aLo, aHi, yA, left);

  drawDoses(ctx, { ...view, doses }, lanes, x);

  const { ticks, daily } = timeTicks(view.start, view.end);
  ctx.fillStyle = COLORS.text;
  for (const t of ticks) {
    const d = new Date(t);
    const label = daily ? d.toLocaleDateString() : d.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
    ctx.fillText(label, x(t) - 20, H - 10);
    ctx.strokeStyle = COLORS.grid;
    ctx.beginPath();
    ctx.moveTo(x(t), lanes.hr.top);
    ctx.lineTo(x(t), H - 26);
    ctx.stroke();
  }
  return { left, width };
}
