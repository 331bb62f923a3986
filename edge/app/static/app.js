// The patient's page: polls /api/status, posts actions. No framework, no network beyond the phone itself.
"use strict";
const $ = (id) => document.getElementById(id);
let openPeriod = null;

function ago(t) {
  if (!t) return "not yet";
  const s = Math.max(0, Math.round(Date.now() / 1000 - t));
  return s < 60 ? `${s} s ago` : s < 3600 ? `${Math.round(s / 60)} min ago` : `${Math.round(s / 3600)} h ago`;
}

function say(text) { $("toast").textContent = text; }

async function post(path, body) {
  const r = await fetch(path, { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body) });
  if (!r.ok) throw new Error((await r.json()).detail || r.statusText);
  return r.json();
}

function render(s) {
  $("hr").textContent = s.hr ?? "–";
  $("online").textContent = s.online ? "Online" : `Offline (${s.pending} waiting)`;
  $("strap").textContent = s.strap;
  $("battery").textContent = s.battery == null ? "–" : `${s.battery} %`;
  $("last-upload").textContent = ago(s.last_upload);
  const problems = Object.entries(s.problems).map(([k, n]) => `${k.replaceAll("_", " ")}: ${n}`);
  $("problems").hidden = problems.length === 0;
  $("problems").textContent = problems.join(" · ");
  $("alerts").replaceChildren(...s.notifications.slice(0, 3).map((n) => {
    const div = document.createElement("div");
    div.className = `alert ${n.level}`;
    div.setAttribute("role", "alert");
    div.textContent = `${n.title}. ${n.body}`;
    return div;
  }));
  openPeriod = s.open_period;
  $("unwell").setAttribute("aria-pressed", String(Boolean(openPeriod)));
  $("unwell").textContent = openPeriod ? "I feel better now" : "I don't feel well";
}

async function refresh() {
  try { render(await (await fetch("/api/status")).json()); } catch (e) { say("The app lost its connection to the phone service."); }
}

$("unwell").addEventListener("click", async () => {
  if (openPeriod) {
    await post("/api/symptom", { action: "stop" });
    say("Marked: you feel better.");
    await refresh();
  } else {
    $("symptom-form").hidden = false;  // details are optional: "Start now" is one more tap
    $("symptom-save").focus();
  }
});

$("severity").addEventListener("input", () => { $("severity-out").textContent = $("severity").value; });

$("symptom-form").addEventListener("submit", async (e) => {
  e.preventDefault();
  const tags = [...document.querySelectorAll("input[name=tag]:checked")].map((x) => x.value);
  await post("/api/symptom", { action: "start", tags, severity: Number($("severity").value), note: $("note").value });
  $("symptom-form").hidden = true;
  say("Marked. Press the button again when you feel better.");
  await refresh();
});

$("panic").addEventListener("click", () => { $("panic-confirm").hidden = false; $("panic-yes").focus(); });
$("panic-no").addEventListener("click", () => { $("panic-confirm").hidden = true; say("Cancelled."); });
$("panic-yes").addEventListener("click", async () => {
  $("panic-confirm").hidden = true;
  try { await post("/api/panic", { confirmed: true }); say("Help has been called. Stay where you are."); }
  catch (e) { say(`Could not record: ${e.message}`); }
});

$("feedback-form").addEventListener("submit", async (e) => {
  e.preventDefault();
  await post("/api/feedback", { text: $("feedback").value });
  $("feedback").value = "";
  say("Thank you for your feedback.");
});

refresh();
setInterval(refresh, 2000);
