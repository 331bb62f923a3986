"use strict";
// A patient's own page: status, consent per purpose (grant or withdraw, in force at once), caregivers
// (what each sees and which alerts reach them, revoke) and invitation codes. Needs common.js and people.js.

const mine = { consent: {} };

async function loadStatus() {
  const me = await api("/api/me");
  document.getElementById("me-status").textContent = me.monitoring
    ? `${me.name}: ${STATE_LABEL[me.state] || me.state}. Last data ${when(me.last_data_at)}.`
    : `${me.name}: monitoring is paused. My care team does not receive my data and no alerts are raised.`;
}

function consentRow(p) {
  const tr = el("tr");
  tr.dataset.purpose = p.purpose;
  tr.dataset.granted = String(p.granted);
  const now = p.granted ? `Allowed since ${when(p.since)}` : (p.since ? `Withdrawn ${when(p.since)}` : "Not allowed");
  const verb = p.granted ? "Withdraw" : "Allow";
  const button = el("button", verb);
  button.type = "button";
  button.setAttribute("aria-label", `${verb} ${p.label}`);
  button.addEventListener("click", async () => {
    button.disabled = true;
    try {
      renderConsents(await post("/api/me/consents", { purpose: p.purpose, granted: !p.granted }));
      announce(`${p.label}: ${p.granted ? "withdrawn" : "allowed"}.`);
      await Promise.all([loadStatus(), loadCaregivers()]);
    } catch (e) {
      button.disabled = false;
      announce(`Could not change ${p.label}: ${e.message}`);
    }
  });
  const action = el("td");
  action.append(button);
  tr.append(el("th", cap(p.label)), el("td", PURPOSE_TEXT[p.purpose], "muted"), el("td", now), action);
  tr.firstChild.scope = "row";
  return tr;
}

function renderConsents(data) {
  mine.consent = Object.fromEntries(data.purposes.map((p) => [p.purpose, p.granted]));
  document.getElementById("consent-rows").replaceChildren(...data.purposes.map(consentRow));
  document.getElementById("consent-history").replaceChildren(...data.history.map((h) => {
    const tr = el("tr");
    const by = h.actor === "patient" ? "me" : `${h.recorded_by || h.actor}${h.actor === "clinician" ? " (care team)" : ""}`;
    tr.append(el("td", when(h.at)), el("td", h.purpose), el("td", h.granted ? "allowed" : "withdrawn"), el("td", by), el("td", h.method));
    return tr;
  }));
}

function caregiverRow(c) {
  const tr = el("tr", null, c.revoked_at ? "revoked" : "");
  tr.dataset.caregiver = String(c.id);
  const who = `${c.label || "—"} (${c.username})`;
  if (c.revoked_at) {
    tr.append(el("td", who), el("td", `access ended ${when(c.revoked_at)}`, "muted"), el("td"), el("td"));
    return tr;
  }
  const scopes = scopeBoxes(c.scopes, `${who} sees`);
  const notify = notifySelect(c.notify_level, `Alerts by e-mail to ${who}`);
  const save = el("button", "Save");
  save.type = "button";
  save.setAttribute("aria-label", `Save what ${who} sees`);
  save.addEventListener("click", () => change(`/api/me/caregivers/${c.id}`, { label: c.label, scopes: checkedValues(scopes),
    notify_level: notify.value }, "PUT", `Saved for ${who}.`));
  const revoke = el("button", "Revoke");
  revoke.type = "button";
  revoke.setAttribute("aria-label", `Revoke ${who}`);
  revoke.addEventListener("click", () => change(`/api/me/caregivers/${c.id}/revoke`, {}, "POST", `${who} no longer follows you.`));
  const cells = [el("td", who), el("td"), el("td"), el("td", null, "actions")];
  cells[1].append(scopes);
  cells[2].append(notify);
  cells[3].append(save, " ", revoke);
  tr.append(...cells);
  return tr;
}

async function change(path, body, method, done) {
  try {
    await post(path, body, method);
    announce(done);
    await loadCaregivers();
  } catch (e) {
    announce(`Could not change it: ${e.message}`);
  }
}

function invitationItem(inv) {
  const li = el("li", `${inv.label || "invitation"}: ${inv.status}${inv.status === "pending" ? `, valid until ${when(inv.expires_at)}` : ""} `);
  li.dataset.status = inv.status;
  if (inv.status === "pending") {
    const cancel = el("button", "Cancel");
    cancel.type = "button";
    cancel.setAttribute("aria-label", `Cancel the invitation for ${inv.label || "someone"}`);
    cancel.addEventListener("click", () => change(`/api/me/caregivers/invitations/${inv.id}/cancel`, {}, "POST", "Invitation cancelled."));
    li.append(cancel);
  }
  return li;
}

async function loadCaregivers() {
  const data = await api("/api/me/caregivers");
  const allowed = mine.consent.caregivers === true;
  document.getElementById("caregiver-hint").textContent = allowed ? ""
    : "Caregiver access is not allowed (above): nobody follows me, and I cannot invite anyone until I allow it.";
  document.querySelector("#invite-form button").disabled = !allowed;
  document.getElementById("caregiver-rows").replaceChildren(...data.caregivers.map(caregiverRow));
  document.getElementById("invitation-rows").replaceChildren(...data.invitations.map(invitationItem));
}

async function invite(event) {
  event.preventDefault();
  const form = document.getElementById("invite-form");
  const label = document.getElementById("invite-label").value.trim();
  const body = { label, scopes: checkedValues(form), notify_level: document.getElementById("invite-notify").value };
  const shown = document.getElementById("invite-code");
  try {
    const made = await post("/api/me/caregivers/invitations", body);
    shown.textContent = `Code for ${label || "your caregiver"}: ${made.code}, valid until ${when(made.invitation.expires_at)}. `
      + `They make their account with it at ${window.location.origin}/join (shown only now).`;
    shown.dataset.code = made.code;
    shown.hidden = false;
    await loadCaregivers();
  } catch (e) {
    announce(`Could not make an invitation: ${e.message}`);
  }
}

async function main() {
  await header(["patient"]);
  const notify = notifySelect("red");
  notify.id = "invite-notify";
  document.getElementById("invite-notify-label").append(notify);
  document.getElementById("invite-form").addEventListener("submit", invite);
  await loadStatus();
  renderConsents(await api("/api/me/consents"));
  await loadCaregivers();
  document.getElementById("main").dataset.loaded = "1";
}

main().catch((e) => announce(`Could not load: ${e.message}`));
