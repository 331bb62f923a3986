"use strict";
// The overview page: a client of /api. All data is inserted as text, never as HTML.

const alerts = new Map(); // id -> alert

async function api(path, options = {}) {
  const res = await fetch(path, { credentials: "same-origin", ...options });
  if (res.status === 401) {
    window.location.assign("/login");
    throw new Error("signed out");
  }
  if (!res.ok) throw new Error(`${path}: ${res.status}`);
  return res.json();
}

function el(tag, text, className) {
  const node = document.createElement(tag);
  if (text !== undefined && text !== null) node.textContent = String(text);
  if (className) node.className = className;
  return node;
}

function when(iso) {
  return iso ? new Date(iso).toLocaleString() : "—";
}

function num(value) {
  return value === null || value === undefined ? "—" : Math.round(value);
}

function describe(alert) {
  const first = alert.trigger || {};
  const t = first.escalation || first; // an escalated alert: show what made it red
  if (alert.parameter === "panic") return "Panic button pressed";
  const name = { hr: "Heart rate", resp_rate: "Respiration rate" }[alert.parameter] || alert.parameter;
  const held = t.held_seconds ? ` for ${Math.round(t.held_seconds / 60)} min` : "";
  return `${name} ${num(t.value)}/min${held}`;
}

function renderAlerts() {
  const list = document.getElementById("alert-list");
  const active = [...alerts.values()].filter((a) => a.state !== "resolved");
  active.sort((a, b) => (b.level === "red") - (a.level === "red") || b.opened_at.localeCompare(a.opened_at));
  list.replaceChildren(...active.map(alertItem));
  document.getElementById("alerts-empty").hidden = active.length > 0;
  document.getElementById("alert-count").textContent = active.length ? `(${active.length})` : "";
}

function alertItem(alert) {
  const li = el("li", null, `alert ${alert.level} ${alert.state}${alert.fresh ? " fresh" : ""}`);
  li.append(el("span", alert.level.toUpperCase(), "badge"));
  const text = el("div", null, "what");
  text.append(el("strong", alert.patient_name), el("span", ` — ${describe(alert)}`));
  text.append(el("div", `opened ${when(alert.opened_at)}${alert.acked_by ? ` · acknowledged by ${alert.acked_by}` : ""}`, "muted"));
  li.append(text);
  if (alert.state === "open") {
    const button = el("button", "Acknowledge");
    button.type = "button";
    button.setAttribute("aria-label", `Acknowledge ${alert.level} alert for ${alert.patient_name}`);
    button.addEventListener("click", () => acknowledge(alert.id));
    li.append(button);
  }
  return li;
}

async function acknowledge(id) {
  const updated = await api(`/api/alerts/${id}/acknowledge`, {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify({ note: "" }),
  });
  alerts.set(id, updated);
  renderAlerts();
}

async function loadAlerts() {
  const rows = await api("/api/alerts?state=active");
  alerts.clear();
  rows.forEach((a) => alerts.set(a.id, a));
  renderAlerts();
}

async function loadPatients() {
  const rows = await api("/api/patients");
  document.getElementById("patient-rows").replaceChildren(...rows.map((p) => {
    const tr = el("tr");
    const state = el("td", null);
    state.append(el("span", p.state, `state ${p.state}`));
    tr.append(state, el("td", p.name), el("td", p.device_id), el("td", when(p.last_data_at)));
    return tr;
  }));
}

async function loadSymptoms() {
  const rows = await api("/api/symptoms");
  document.getElementById("symptom-rows").replaceChildren(...rows.map((s) => {
    const tr = el("tr");
    const hr = s.hr.windows ? `${num(s.hr.mean)} / ${num(s.hr.min)} / ${num(s.hr.max)} (${s.hr.windows} windows)` : "no data";
    tr.append(el("td", s.patient_name), el("td", when(s.started_at)), el("td", s.ended_at ? when(s.ended_at) : "ongoing"),
      el("td", s.tags.join(", ")), el("td", s.severity ?? "—"), el("td", s.note), el("td", hr));
    return tr;
  }));
}

function listen() {
  const live = document.getElementById("live");
  const source = new EventSource("/api/alerts/stream");
  source.onopen = () => { live.textContent = "live"; live.className = "live on"; };
  source.onerror = () => { live.textContent = "reconnecting…"; live.className = "live off"; };
  source.addEventListener("alert", (event) => {
    const alert = JSON.parse(event.data);
    const known = alerts.get(alert.id);
    alert.fresh = alert.state === "open" && (!known || known.level !== alert.level);
    alerts.set(alert.id, alert);
    renderAlerts();
    if (alert.fresh) {
      document.getElementById("announce").textContent = `New ${alert.level} alert: ${alert.patient_name}, ${describe(alert)}`;
      setTimeout(() => { alert.fresh = false; renderAlerts(); }, 10000);
    }
    loadPatients().catch(console.error);
  });
}

async function main() {
  const me = await api("/api/auth/me");
  document.getElementById("who").textContent = `${me.username} (${me.role})`;
  document.getElementById("logout").addEventListener("click", async () => {
    await fetch("/api/auth/logout", { method: "POST", credentials: "same-origin" });
    window.location.assign("/login");
  });
  await Promise.all([loadAlerts(), loadPatients(), loadSymptoms()]);
  listen();
}

main().catch(console.error);
