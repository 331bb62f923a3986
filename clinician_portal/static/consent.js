"use strict";
// The patient page's consent panel: what is in force per purpose, recording a grant or withdrawal on the
// patient's behalf, and an invitation code for the patient's own account. Needs common.js.

const consentPatient = Number(window.location.pathname.split("/")[2]);

function renderConsentPanel(data) {
  document.getElementById("consent-rows").replaceChildren(...data.purposes.map((p) => {
    const tr = el("tr");
    tr.dataset.purpose = p.purpose;
    tr.dataset.granted = String(p.granted);
    tr.append(el("td", p.label), el("td", p.granted ? "granted" : "not granted", p.granted ? "" : "muted"),
      el("td", when(p.since)), el("td", p.recorded_by || p.actor || "—"), el("td", p.method || "—"));
    return tr;
  }));
  const select = document.getElementById("consent-purpose");
  if (!select.options.length) {
    for (const p of data.purposes) { const o = el("option", p.label); o.value = p.purpose; select.append(o); }
  }
}

async function recordConsent(event) {
  event.preventDefault();
  const body = { purpose: document.getElementById("consent-purpose").value,
    granted: document.getElementById("consent-granted").value === "true",
    method: document.getElementById("consent-method").value.trim() };
  try {
    renderConsentPanel(await post(`/api/patients/${consentPatient}/consents`, body));
    document.getElementById("announce").textContent = "Consent recorded.";
  } catch (e) {
    document.getElementById("announce").textContent = `Could not record consent: ${e.message}`;
  }
}

async function accountCode() {
  const out = document.getElementById("account-code");
  try {
    const made = await post(`/api/patients/${consentPatient}/account-invitation`, {});
    out.textContent = `${made.code} (valid until ${when(made.invitation.expires_at)}; the patient enters it at /join)`;
  } catch (e) {
    out.textContent = e.message;
  }
}

async function wireConsentPanel() {
  document.getElementById("consent-form").addEventListener("submit", recordConsent);
  document.getElementById("account-invite").addEventListener("click", accountCode);
  renderConsentPanel(await api(`/api/patients/${consentPatient}/consents`));
}

wireConsentPanel().catch((e) => { document.getElementById("announce").textContent = `Consent: ${e.message}`; });
