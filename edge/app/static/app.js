// The patient's page: polls /api/status, posts actions. No framework, no network beyond the phone itself.
"use strict";
const $ = (id) => document.getElementById(id);
let openPeriod = null;
let shownDoses = ""; // what the dose cards show, so a poll does not reset a reason being chosen
let shownKeys = new Set();
const SKIP_REASONS = ["side effects", "ran out", "feeling unwell", "told by my doctor", "other"];

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
  renderDoses(s.doses || [], s.next_dose);
  openPeriod = s.open_period;
  $("unwell").setAttribute("aria-pressed", String(Boolean(openPeriod)));
  $("unwell").textContent = openPeriod ? "I feel better now" : "I don't feel well";
}

function clock(t) { return new Date(t * 1000).toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" }); }

function renderDoses(doses, next) {
  const signature = JSON.stringify([doses.map((d) => [d.drug, d.planned, d.state]), next && [next.drug, next.planned]]);
  if (signature === shownDoses) return;
  const keys = doses.map((d) => `${d.drug}@${d.planned}@${d.state}`);
  const fresh = keys.some((k) => !shownKeys.has(k));
  shownDoses = signature;
  shownKeys = new Set(keys);
  $("doses").replaceChildren(...doses.map(doseCard));
  if (fresh && navigator.vibrate) navigator.vibrate([300, 150, 300]);
  const nextLine = $("next-dose");
  nextLine.hidden = !next;
  if (!next) return;
  nextLine.replaceChildren(`Next: ${next.drug} ${next.dose} at ${clock(next.planned)}`);
  if (next.planned - Date.now() / 1000 <= 3600) {  // within the hour it may be taken early
    const early = doseButton(`I took it already (${next.drug})`, next, "taken");
    early.className = "";  // a quiet button: the reminder card's "Taken" is the big one
    nextLine.append(early);
  }
}

function doseCard(d) {
  const card = document.createElement("div");
  card.className = `dose ${d.state}`;
  card.setAttribute("role", "group");
  const title = document.createElement("h2");
  title.textContent = `Time for ${d.drug}`;
  title.id = `dose-${d.drug}-${d.planned}`.replace(/[^A-Za-z0-9_-]/g, "_");
  card.setAttribute("aria-labelledby", title.id);
  const what = document.createElement("p");
  what.textContent = [d.dose, `planned ${clock(d.planned)}`, d.instructions].filter(Boolean).join(" · ");
  const reason = document.createElement("select");
  reason.setAttribute("aria-label", `Reason for skipping ${d.drug} (optional)`);
  reason.append(new Option("Reason (optional)", ""), ...SKIP_REASONS.map((r) => new Option(r, r)));
  const skip = document.createElement("div");
  skip.className = "skip";
  skip.append(reason, doseButton("Skip", d, "skipped", reason));
  card.append(title, what, doseButton("Taken", d, "taken"), doseButton("Snooze 10 min", d, "snoozed"), skip);
  return card;
}

function doseButton(label, d, action, reason) {
  const button = document.createElement("button");
  button.type = "button";
  button.textContent = label;
  if (action === "taken") button.className = "primary";
  button.setAttribute("aria-label", `${label}: ${d.drug} ${d.dose}`);
  button.addEventListener("click", async () => {
    button.disabled = true;
    try {
      await post("/api/dose", { drug: d.drug, planned: d.planned, action, reason: reason ? reason.value : "" });
      say({ taken: `Recorded: ${d.drug} taken.`, skipped: `Recorded: ${d.drug} skipped.`, snoozed: "I will remind you again in 10 minutes." }[action]);
    } catch (e) { say(`Could not record: ${e.message}`); button.disabled = false; }
    await refresh();
  });
  return button;
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
