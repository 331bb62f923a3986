"use strict";
// The red-alert cue: a visual banner and a WebAudio beep. Browsers allow sound only after a user gesture,
// so the page shows an "Enable sound" button until the audio context runs. Every cue is recorded in
// window.piscesCues (what fired, and whether the sound could play), which the browser tests read.

window.piscesCues = [];
let audio = null;

function audioContext() {
  if (!audio && (window.AudioContext || window.webkitAudioContext)) {
    audio = new (window.AudioContext || window.webkitAudioContext)();
  }
  return audio;
}

function beep(ctx) {
  // Three short 880 Hz tones: distinct from everyday notification sounds, not shrill.
  const start = ctx.currentTime;
  for (let i = 0; i < 3; i += 1) {
    const osc = ctx.createOscillator();
    const gain = ctx.createGain();
    osc.type = "sine";
    osc.frequency.value = 880;
    gain.gain.setValueAtTime(0.0001, start + i * 0.3);
    gain.gain.exponentialRampToValueAtTime(0.3, start + i * 0.3 + 0.02);
    gain.gain.exponentialRampToValueAtTime(0.0001, start + i * 0.3 + 0.2);
    osc.connect(gain).connect(ctx.destination);
    osc.start(start + i * 0.3);
    osc.stop(start + i * 0.3 + 0.22);
  }
  return 3;
}

function showSoundButton() {
  const button = document.getElementById("enable-sound");
  const ctx = audioContext();
  button.hidden = !ctx || ctx.state === "running";
  button.onclick = async () => {
    await ctx.resume();
    button.hidden = ctx.state === "running";
  };
}

function cue(alert, message) {
  const ctx = audioContext();
  let tones = 0;
  if (ctx && ctx.state === "running") tones = beep(ctx);
  const banner = document.getElementById("banner");
  banner.textContent = message;
  banner.hidden = false;
  banner.className = `banner ${alert.level}`;
  document.title = `(!) ${alert.level.toUpperCase()} · pisces`;
  window.piscesCues.push({ id: alert.id, level: alert.level, at: Date.now(), audio: ctx ? ctx.state : "none", tones });
  showSoundButton();
}

function clearCue() {
  document.getElementById("banner").hidden = true;
  document.title = "Overview · pisces";
}
