"use strict";
// The overview page: alert inbox (live), patients with their state. Needs common.js and cue.js.

const alerts = new Map(); // id -> alert

function describe(alert) {
  const first = alert.trigger || {};
  const t = first.escalation || first; // an escalated alert: show what made it red
  if (alert.parameter === "panic") return "Panic button pressed";
  if (alert.parameter.startsWith("dose:")) {
    const n = first.not_taken ? `: last ${first.not_taken} doses not taken` : "";
    return `Critical drug ${alert.parameter.slice(5)}${n}`;
  }
  const name = { hr: "Heart rate", resp_rate: "Respiration rate" }[alert.parameter] || alert.parameter;
  const held = t.held_seconds ? ` for ${Math.round(t.held_seconds / 60)} min` : "";
  return t.value !== undefined ? `${name} ${num(t.value)}/min${held}` : name;
}

function renderAlerts() {
  const list = document.getElementById("alert-list");
  const active = [...alerts.values()].filter((a) => a.state !== "resolved");
  active.sort((a, b) => (b.level === "red") - (a.level === "red") || b.opened_at.localeCompare(a.opened_at));
  list.replaceChildren(...active.map(alertItem));
  document.getElementById("alerts-empty").hidden = active.length > 0;
  document.getElementById("alert-count").textContent = active.length ? `(${active.length})` : "";
  if (!active.some((a) => a.level === "red" && a.state === "open")) clearCue();
}

function alertItem(alert) {
  const li = el("li", null, `alert ${alert.level} ${alert.state}${alert.fresh ? " fresh" : ""}`);
  li.dataset.id = alert.id;
  li.append(el("span", alert.level.toUpperCase(), "badge"));
  const text = el("div", null, "what");
  text.append(link(`/patients/${alert.patient_id}`, alert.patient_name, "who"), el("span", ` — ${describe(alert)}`));
  const seen = alert.acked_by ? ` · acknowledged by ${alert.acked_by}${alert.ack_note ? `: “${alert.ack_note}”` : ""}` : "";
  text.append(el("div", `opened ${when(alert.opened_at)}${seen}`, "muted"));
  li.append(text);
  const note = el("input", null, "note");
  note.placeholder = "Note (optional)";
  note.setAttribute("aria-label", `Note for the ${alert.level} alert of ${alert.patient_name}`);
  note.maxLength = 2000;
  li.append(note);
  if (alert.state === "open") li.append(actionButton(alert, "Acknowledge", "acknowledge", note));
  li.append(actionButton(alert, "Resolve", "resolve", note));
  return li;
}

function actionButton(alert, label, verb, note) {
  const button = el("button", label);
  button.type = "button";
  button.setAttribute("aria-label", `${label} ${alert.level} alert for ${alert.patient_name}`);
  button.addEventListener("click", async () => {
    button.disabled = true;
    try {
      const updated = await post(`/api/alerts/${alert.id}/${verb}`, { note: note.value.trim() });
      alerts.set(alert.id, updated);
      renderAlerts();
      loadPatients().catch(console.error);
    } catch (e) {
      button.disabled = false;
      document.getElementById("announce").textContent = `Could not ${verb}: ${e.message}`;
    }
  });
  return button;
}

async function loadAlerts() {
  const rows = await api("/api/alerts?state=active");
  alerts.clear();
  rows.forEach((a) => alerts.set(a.id, a));
  renderAlerts();
}

// Low adherence (server setting, default < 80 % on time over 7 days) is flagged in the patient list.
function adherenceCell(a) {
  if (!a) return el("td", "—", "muted");
  const pct = a.lowest_share === null ? "—" : `${Math.round(a.lowest_share * 100)} % on time, ${a.days} days`;
  const worst = a.drugs.filter((d) => d.share_on_time !== null).sort((x, y) => x.share_on_time - y.share_on_time)[0];
  const cell = el("td", a.low ? `${pct} (${worst.drug}) · low` : pct, a.low ? "low" : "");
  cell.dataset.low = String(a.low);
  return cell;
}

async function loadPatients() {
  const [rows, adherence] = await Promise.all([api("/api/patients"), api("/api/adherence")]);
  const byPatient = new Map(adherence.map((a) => [a.patient_id, a]));
  document.getElementById("patient-rows").replaceChildren(...rows.map((p) => {
    const tr = el("tr");
    tr.dataset.state = p.state;
    const state = el("td");
    state.append(el("span", STATE_LABEL[p.state] || p.state, `state ${p.state}`));
    const name = el("td");
    name.append(link(`/patients/${p.id}`, p.name));
    const battery = p.battery === null ? "—" : `${p.battery} %`;
    tr.append(state, name, el("td", when(p.last_data_at)), el("td", battery, p.battery !== null && p.battery < 20 ? "low" : ""),
      adherenceCell(byPatient.get(p.id)), el("td", p.device_id, "muted"));
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
      const message = `New ${alert.level} alert: ${alert.patient_name}, ${describe(alert)}`;
      document.getElementById("announce").textContent = message;
      if (alert.level === "red") cue(alert, message);
      setTimeout(() => { alert.fresh = false; renderAlerts(); }, 10000);
    }
    loadPatients().catch(console.error);
  });
}

async function main() {
  await header();
  showSoundButton();
  await Promise.all([loadAlerts(), loadPatients()]);
  listen();
  setInterval(() => loadPatients().catch(console.error), 60000); // "no signal" appears without any event
}

main().catch(console.error);
