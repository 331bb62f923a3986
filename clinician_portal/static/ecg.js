"use strict";
// ECG on standard paper: 25 mm/s, 10 mm/mV; 1 mm small squares, 5 mm large squares.

const MM_PER_S = 25;
const MM_PER_MV = 10;

function drawEcgPaper(canvas, strip, pxPerMm) {
  const fs = strip.info.fs;
  const seconds = strip.samples_uv.length / fs;
  canvas.width = Math.ceil(seconds * MM_PER_S * pxPerMm) + 1;
  const ctx = canvas.getContext("2d");
  const W = canvas.width;
  const H = canvas.height;
  ctx.fillStyle = "#fff7f5";
  ctx.fillRect(0, 0, W, H);
  for (let mm = 0; mm * pxPerMm <= W; mm += 1) {
    ctx.strokeStyle = mm % 5 === 0 ? "#f08c8c" : "#fbd3d3";
    ctx.lineWidth = mm % 5 === 0 ? 1 : 0.5;
    ctx.beginPath(); ctx.moveTo(mm * pxPerMm + 0.5, 0); ctx.lineTo(mm * pxPerMm + 0.5, H); ctx.stroke();
  }
  for (let mm = 0; mm * pxPerMm <= H; mm += 1) {
    ctx.strokeStyle = mm % 5 === 0 ? "#f08c8c" : "#fbd3d3";
    ctx.lineWidth = mm % 5 === 0 ? 1 : 0.5;
    ctx.beginPath(); ctx.moveTo(0, mm * pxPerMm + 0.5); ctx.lineTo(W, mm * pxPerMm + 0.5); ctx.stroke();
  }
  const t0 = Date.parse(strip.info.start);
  const xOfS = (s) => s * MM_PER_S * pxPerMm;
  for (const m of strip.marks.filter((m) => m.kind === "rhythm")) {
    const a = Math.max(0, (Date.parse(m.start) - t0) / 1000);
    const b = Math.min(seconds, (Date.parse(m.end) - t0) / 1000);
    ctx.fillStyle = "rgba(123,31,162,.10)";
    ctx.fillRect(xOfS(a), 0, xOfS(b - a), H);
  }
  const sorted = [...strip.samples_uv].sort((a, b) => a - b);
  const baseline = sorted[Math.floor(sorted.length / 2)] || 0;
  const mid = Math.round(H / pxPerMm / 2 / 5) * 5 * pxPerMm; // on a large square line
  const y = (uv) => mid - ((uv - baseline) / 1000) * MM_PER_MV * pxPerMm;
  ctx.strokeStyle = "#111";
  ctx.lineWidth = 1.2;
  ctx.beginPath();
  strip.samples_uv.forEach((v, i) => { const px = xOfS(i / fs); if (i) ctx.lineTo(px, y(v)); else ctx.moveTo(px, y(v)); });
  ctx.stroke();
  ctx.fillStyle = "#0b57d0";
  for (const b of strip.beats) {
    const px = xOfS(b / fs);
    ctx.beginPath(); ctx.moveTo(px - 4, 6); ctx.lineTo(px + 4, 6); ctx.lineTo(px, 13); ctx.fill();
  }
  for (const m of strip.marks.filter((m) => m.kind !== "rhythm")) {
    const px = xOfS((Date.parse(m.start) - t0) / 1000);
    ctx.strokeStyle = "#7b1fa2";
    ctx.setLineDash([4, 3]);
    ctx.beginPath(); ctx.moveTo(px, 0); ctx.lineTo(px, H); ctx.stroke();
    ctx.setLineDash([]);
  }
  // 1 mV calibration pulse at the start: 5 mm wide, 10 mm tall
  ctx.strokeStyle = "#111";
  ctx.beginPath();
  ctx.moveTo(2, mid); ctx.lineTo(2, mid - MM_PER_MV * pxPerMm); ctx.lineTo(2 + 5 * pxPerMm, mid - MM_PER_MV * pxPerMm);
  ctx.lineTo(2 + 5 * pxPerMm, mid);
  ctx.stroke();
  return { pxPerMm, seconds };
}
