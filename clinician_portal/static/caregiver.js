"use strict";
// A caregiver's page: each followed patient's status, alerts (live) and hourly trends, as far as the
// patient shares them; following someone with a code; e-mail and quiet hours. Needs common.js, people.js.

const followed = new Map(); // patient id -> grant

async function statusPart(p) {
  const s = await api(`/api/caregiver/patients/${p.patient_id}`);
  const text = s.monitoring ? `${STATE_LABEL[s.state] || s.state} · last data ${when(s.last_data_at)}`
    : "Monitoring paused: the care team does not receive data now.";
  const out = el("p", text, `state ${s.state}`);
  out.dataset.state = s.state;
  return out;
}

async function alertsPart(p) {
  const rows = await api(`/api/caregiver/patients/${p.patient_id}/alerts?limit=20`);
  const list = el("ul", null, "alerts");
  list.dataset.patient = String(p.patient_id);
  for (const a of rows) {
    const li = el("li", null, `alert ${a.level} ${a.state}`);
    li.dataset.id = String(a.id);
    const value = a.value === null ? "" : ` ${num(a.value)}`;
    li.append(el("span", a.level.toUpperCase(), "badge"),
      el("span", `${a.parameter}${value} · ${a.state === "acknowledged" ? "seen by the care team" : a.state} · ${when(a.opened_at)}`));
    list.append(li);
  }
  if (!rows.length) list.append(el("li", "No alerts.", "muted"));
  return list;
}

async function trendsPart(p) {
  const points = (await api(`/api/caregiver/patients/${p.patient_id}/series`)).slice(-12);
  const table = el("table", null, "trends");
  const head = el("tr");
  for (const h of ["Hour", "Heart rate (bpm)", "Breathing (/min)", "Activity"]) head.append(el("th", h));
  table.append(head);
  for (const pt of points) {
    const tr = el("tr");
    tr.append(el("td", when(pt.t)), el("td", num(pt.hr_mean)), el("td", num(pt.resp_rate)), el("td", pt.activity || "—"));
    table.append(tr);
  }
  if (!points.length) {
    const empty = el("td", "No data in the last 24 hours.", "muted");
    empty.colSpan = 4;
    const row = el("tr");
    row.append(empty);
    table.append(row);
  }
  return table;
}

const PARTS = { status: statusPart, alerts: alertsPart, trends: trendsPart };

async function card(p) {
  const article = el("article", null, "followed");
  article.dataset.patient = String(p.patient_id);
  article.append(el("h3", p.label ? `${p.name} (${p.label})` : p.name));
  const shared = p.scopes.map((s) => SCOPE_LABEL[s]).join(", ") || "nothing";
  article.append(el("p", `Shares with you: ${shared}. Alerts by e-mail: ${NOTIFY_LABEL[p.notify_level]}.`, "muted"));
  for (const scope of ["status", "alerts", "trends"]) {
    if (p.scopes.includes(scope)) article.append(await PARTS[scope](p));
  }
  return article;
}

async function loadFollowed() {
  const rows = await api("/api/caregiver/patients");
  followed.clear();
  rows.forEach((p) => followed.set(p.patient_id, p));
  document.getElementById("patients").replaceChildren(...(await Promise.all(rows.map(card))));
  document.getElementById("none").hidden = rows.length > 0;
  const main = document.getElementById("main");
  main.dataset.loaded = String(Number(main.dataset.loaded || 0) + 1);
}

function listen() {
  const live = document.getElementById("live");
  const source = new EventSource("/api/caregiver/stream");
  source.onopen = () => { live.textContent = "live"; live.className = "live on"; };
  source.onerror = () => {
    live.textContent = "reconnecting…";
    live.className = "live off";
    loadFollowed().catch(console.error); // access may have ended: show what is left
  };
  source.addEventListener("alert", (event) => {
    const alert = JSON.parse(event.data);
    const p = followed.get(alert.patient_id);
    if (p && alert.state === "open") announce(`New ${alert.level} alert for ${p.name}: ${alert.parameter}`);
    loadFollowed().catch(console.error);
  });
}

async function redeem(event) {
  event.preventDefault();
  const error = document.getElementById("redeem-error");
  error.textContent = "";
  try {
    await post("/api/caregiver/invitations/redeem", { code: document.getElementById("redeem-code").value.trim() });
    document.getElementById("redeem-code").value = "";
    await loadFollowed();
  } catch (e) {
    error.textContent = e.message;
  }
}

async function loadSettings() {
  const s = await api("/api/caregiver/settings");
  document.getElementById("set-email").value = s.email || "";
  document.getElementById("set-quiet-start").value = (s.quiet_start || "").slice(0, 5);
  document.getElementById("set-quiet-end").value = (s.quiet_end || "").slice(0, 5);
  const guess = Intl.DateTimeFormat().resolvedOptions().timeZone || "UTC";
  document.getElementById("set-timezone").value = s.email || s.quiet_start ? s.timezone : guess;
}

async function saveSettings(event) {
  event.preventDefault();
  const value = (id) => document.getElementById(id).value.trim();
  const body = { email: value("set-email") || null, quiet_start: value("set-quiet-start") || null,
    quiet_end: value("set-quiet-end") || null, timezone: value("set-timezone") || "UTC" };
  const saved = document.getElementById("settings-saved");
  try {
    await post("/api/caregiver/settings", body, "PUT");
    saved.textContent = "Saved.";
  } catch (e) {
    saved.textContent = `Not saved: ${e.message}`;
  }
}

async function main() {
  await header(["caregiver"]);
  document.getElementById("redeem-form").addEventListener("submit", redeem);
  document.getElementById("settings-form").addEventListener("submit", saveSettings);
  await Promise.all([loadFollowed(), loadSettings()]);
  listen();
}

main().catch((e) => announce(`Could not load: ${e.message}`));
