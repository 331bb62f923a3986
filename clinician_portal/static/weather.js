"use strict";
// The patient page's "Vitals and weather" panel: a scatter of the chosen pair with its fitted line,
// a forest plot of the partial correlations with their 95 % intervals, and the table of associations.

const WX = {
  vitals: { hr: ["Heart rate", "bpm"], rmssd: ["HRV (RMSSD)", "ms"], resp: ["Respiration", "/min"] },
  factors: { temperature: ["Temperature", "°C", "temperature_c"], pressure: ["Pressure", "hPa", "pressure_hpa"],
    humidity: ["Humidity", "%", "humidity_pct"], activity: ["Activity", "g", "activity"] },
  MIN_SPAN: 7 * 86400e3,
  data: null,
  loads: 0,
};

function wxPeriod(start, end) {
  return [Math.min(start, end - WX.MIN_SPAN), end];
}

function wxFit(xs, ys) {
  const n = xs.length;
  const mx = xs.reduce((a, b) => a + b, 0) / n;
  const my = ys.reduce((a, b) => a + b, 0) / n;
  let sxy = 0;
  let sxx = 0;
  for (let i = 0; i < n; i += 1) { sxy += (xs[i] - mx) * (ys[i] - my); sxx += (xs[i] - mx) ** 2; }
  const slope = sxx > 0 ? sxy / sxx : 0;
  return { slope, intercept: my - slope * mx };
}

function wxCanvas(canvas) {
  // Drawn at the canvas's own size and scaled down by the browser on narrow screens.
  canvas.style.maxWidth = "100%";
  canvas.style.height = "auto";
  canvas.style.background = "#fff";
  const ctx = canvas.getContext("2d");
  ctx.clearRect(0, 0, canvas.width, canvas.height);
  ctx.font = "13px system-ui, sans-serif";
  return { ctx, w: canvas.width, h: canvas.height };
}

function wxRange(values) {
  let lo = Math.min(...values);
  let hi = Math.max(...values);
  if (hi - lo < 1e-9) { lo -= 1; hi += 1; }
  const pad = (hi - lo) * 0.06;
  return [lo - pad, hi + pad];
}

function drawScatter(canvas, hours, vital, factor, association) {
  const { ctx, w, h } = wxCanvas(canvas);
  const key = WX.factors[factor][2];
  const pts = hours.filter((p) => p[vital] !== null && p[key] !== null);
  const box = { l: 60, r: w - 12, t: 14, b: h - 40 };
  ctx.fillStyle = "#444";
  if (pts.length < 2) { ctx.fillText("Not enough hours with both values in this range.", box.l, h / 2); return 0; }
  const xs = pts.map((p) => p[key]);
  const ys = pts.map((p) => p[vital]);
  const [x0, x1] = wxRange(xs);
  const [y0, y1] = wxRange(ys);
  const X = (v) => box.l + ((v - x0) / (x1 - x0)) * (box.r - box.l);
  const Y = (v) => box.b - ((v - y0) / (y1 - y0)) * (box.b - box.t);
  ctx.strokeStyle = "#999";
  ctx.strokeRect(box.l, box.t, box.r - box.l, box.b - box.t);
  ctx.fillText(`${x0.toFixed(1)}`, box.l, h - 22);
  ctx.fillText(`${x1.toFixed(1)}`, box.r - 40, h - 22);
  ctx.fillText(`${WX.factors[factor][0]} (${WX.factors[factor][1]}), hourly`, (box.l + box.r) / 2 - 80, h - 6);
  ctx.fillText(`${y1.toFixed(0)}`, 6, box.t + 10);
  ctx.fillText(`${y0.toFixed(0)}`, 6, box.b);
  ctx.save();
  ctx.translate(16, (box.t + box.b) / 2 + 50);
  ctx.rotate(-Math.PI / 2);
  ctx.fillText(`${WX.vitals[vital][0]} (${WX.vitals[vital][1]})`, 0, 0);
  ctx.restore();
  for (const p of pts) {
    ctx.fillStyle = p.active_share > 0.2 ? "rgba(179,38,30,.55)" : "rgba(11,87,208,.45)";
    ctx.beginPath();
    ctx.arc(X(p[key]), Y(p[vital]), 3, 0, 2 * Math.PI);
    ctx.fill();
  }
  const fit = wxFit(xs, ys);
  const significant = association && association.significant;
  ctx.strokeStyle = significant ? "#b3261e" : "#555";
  ctx.setLineDash(significant ? [] : [6, 5]);
  ctx.lineWidth = 2;
  ctx.beginPath();
  ctx.moveTo(X(x0), Y(fit.intercept + fit.slope * x0));
  ctx.lineTo(X(x1), Y(fit.intercept + fit.slope * x1));
  ctx.stroke();
  ctx.setLineDash([]);
  ctx.lineWidth = 1;
  return pts.length;
}

function drawForest(canvas, associations) {
  const rows = associations.filter((a) => a.method === "partial");
  const { ctx, w, h } = wxCanvas(canvas);
  const box = { l: 190, r: w - 20, t: 10, b: h - 30 };
  const X = (v) => box.l + ((v + 1) / 2) * (box.r - box.l);
  const step = (box.b - box.t) / Math.max(1, rows.length);
  ctx.strokeStyle = "#999";
  ctx.beginPath();
  ctx.moveTo(X(0), box.t);
  ctx.lineTo(X(0), box.b);
  ctx.stroke();
  ctx.fillStyle = "#444";
  for (const v of [-1, -0.5, 0, 0.5, 1]) ctx.fillText(String(v), X(v) - 8, h - 12);
  rows.forEach((a, i) => {
    const y = box.t + step * (i + 0.5);
    ctx.fillStyle = "#222";
    ctx.fillText(`${WX.vitals[a.vital][0]} ~ ${WX.factors[a.factor][0]}`, 6, y + 4);
    if (a.rho === null) { ctx.fillStyle = "#777"; ctx.fillText("not enough data", box.l + 6, y + 4); return; }
    const color = a.significant ? "#b3261e" : "#0b57d0";
    ctx.strokeStyle = color;
    ctx.lineWidth = 2;
    ctx.beginPath();
    ctx.moveTo(X(a.ci_low), y);
    ctx.lineTo(X(a.ci_high), y);
    ctx.stroke();
    ctx.lineWidth = 1;
    ctx.fillStyle = color;
    ctx.fillRect(X(a.rho) - 4, y - 4, 8, 8);
  });
}

function wxNum(v, digits) {
  return v === null || v === undefined ? "—" : Number(v).toFixed(digits);
}

function wxP(p) {
  if (p === null || p === undefined) return "—";
  return p < 0.001 ? "< 0.001" : p.toFixed(3);
}

function renderAssociations(associations) {
  document.getElementById("wx-rows").replaceChildren(...associations.map((a) => {
    const tr = el("tr", null, a.significant ? "significant" : "");
    const ci = a.rho === null ? "—" : `${wxNum(a.ci_low, 2)} to ${wxNum(a.ci_high, 2)}`;
    tr.append(el("td", WX.vitals[a.vital][0]), el("td", WX.factors[a.factor][0]),
      el("td", a.method === "partial" ? "partial (activity, time of day)" : "Spearman"), el("td", a.n),
      el("td", wxNum(a.n_eff, 0)), el("td", wxNum(a.rho, 2)), el("td", ci), el("td", wxP(a.p)),
      el("td", wxP(a.p_holm)), el("td", a.effect), el("td", a.significant ? "yes" : "no"));
    tr.addEventListener("click", () => selectPair(a.vital, a.factor));
    return tr;
  }));
}

function association(vital, factor) {
  return WX.data.report.associations.find((a) => a.vital === vital && a.factor === factor && a.method === "partial");
}

function selectPair(vital, factor) {
  document.getElementById("wx-vital").value = vital;
  document.getElementById("wx-factor").value = factor;
  drawWeatherScatter();
}

function drawWeatherScatter() {
  if (!WX.data) return;
  const vital = document.getElementById("wx-vital").value;
  const factor = document.getElementById("wx-factor").value;
  const a = association(vital, factor);
  const n = drawScatter(document.getElementById("wx-scatter"), WX.data.hours, vital, factor, a);
  const words = a && a.rho !== null
    ? `partial ρ ${wxNum(a.rho, 2)} (95 % CI ${wxNum(a.ci_low, 2)} to ${wxNum(a.ci_high, 2)}), Holm p ${wxP(a.p_holm)}: ${a.significant ? `significant, ${a.effect}` : "not significant"}`
    : "not tested: too few hours";
  document.getElementById("wx-scatter-caption").textContent =
    `${WX.vitals[vital][0]} against ${WX.factors[factor][0].toLowerCase()}, ${n} hours: ${words}. Red dots: active hours.`;
}

function strongestPair(associations) {
  const tested = associations.filter((a) => a.method === "partial" && a.factor !== "activity" && a.rho !== null);
  if (!tested.length) return ["hr", "temperature"];
  const best = tested.reduce((b, a) => (Math.abs(a.rho) > Math.abs(b.rho) ? a : b));
  return [best.vital, best.factor];
}

function mobilityText(days) {
  if (!days.length) return "Movement: no GPS in this range (shared only with the patient's consent).";
  const km = days.reduce((a, d) => a + d.distance_m, 0) / 1000;
  const observed = days.reduce((a, d) => a + d.observed_s, 0);
  const home = days.filter((d) => d.home_s !== null).reduce((a, d) => a + d.home_s, 0);
  const share = observed > 0 && days.some((d) => d.home_s !== null) ? `, ${Math.round((100 * home) / observed)} % of tracked time at home` : "";
  return `Movement from GPS: ${km.toFixed(1)} km over ${days.length} day${days.length === 1 ? "" : "s"} (${(km / days.length).toFixed(1)} km a day)${share}.`;
}

function refused(e) {
  if (e.status === 403) return { refused: e.message }; // the patient has not consented to this purpose
  throw e;
}

async function loadWeatherPanel(patient, start, end) {
  const [s, e] = wxPeriod(start, end);
  const q = `start=${encodeURIComponent(new Date(s).toISOString())}&end=${encodeURIComponent(new Date(e).toISOString())}`;
  const [data, days] = await Promise.all([
    api(`/api/patients/${patient}/analysis?${q}`).catch(refused), api(`/api/patients/${patient}/mobility?${q}`).catch(refused)]);
  document.getElementById("wx-mobility").textContent = days.refused ? `Movement: not shown (${days.refused}).` : mobilityText(days);
  if (data.refused) { // no consent to weather linkage: say so, show nothing of it
    document.getElementById("wx-verdict").textContent = `Not analysed: ${data.refused}.`;
    document.getElementById("wx-facts").textContent = "";
    document.getElementById("wx-rows").replaceChildren();
    document.getElementById("weather-panel").dataset.loaded = String((WX.loads += 1));
    return;
  }
  WX.data = data;
  document.getElementById("wx-verdict").textContent = data.report.verdict;
  document.getElementById("wx-facts").textContent =
    `${when(data.start)} – ${when(data.end)}: ${data.hours.length} hours with data, ${data.hours_with_weather} with weather at the patient's place. `
    + `Holm correction over all ${data.report.associations.length} tests, α ${data.report.alpha}.`;
  renderAssociations(data.report.associations);
  drawForest(document.getElementById("wx-forest"), data.report.associations);
  selectPair(...strongestPair(data.report.associations));
  document.getElementById("wx-csv").href = `/api/patients/${patient}/analysis.csv?${q}`;
  document.getElementById("wx-hours-csv").href = `/api/patients/${patient}/weather-hours.csv?${q}`;
  WX.loads += 1;
  document.getElementById("weather-panel").dataset.loaded = String(WX.loads);
}

function wireWeatherPanel() {
  const vital = document.getElementById("wx-vital");
  const factor = document.getElementById("wx-factor");
  for (const [k, [label]] of Object.entries(WX.vitals)) { const o = el("option", label); o.value = k; vital.append(o); }
  for (const [k, [label]] of Object.entries(WX.factors)) { const o = el("option", label); o.value = k; factor.append(o); }
  vital.addEventListener("change", drawWeatherScatter);
  factor.addEventListener("change", drawWeatherScatter);
}
