"use strict";
// Shared by every portal page: API calls, safe DOM building, formatting. Data is inserted as text only.

async function api(path, options = {}) {
  const res = await fetch(path, { credentials: "same-origin", ...options });
  if (res.status === 401) {
    window.location.assign("/login");
    throw new Error("signed out");
  }
  if (!res.ok) {
    const error = new Error(errorText(await res.json().catch(() => ({})), res.status));
    error.status = res.status;
    throw error;
  }
  return res.json();
}

// The API's error detail in words: a sentence, or "field: problem" for each invalid field.
function errorText(body, status) {
  const detail = body && body.detail;
  if (typeof detail === "string") return detail;
  const parts = (detail || []).map((d) => (typeof d === "string" ? d : `${(d.loc || []).slice(-1)[0]}: ${d.msg}`));
  return parts.join("; ") || `${status}`;
}

function post(path, body, method = "POST") {
  return api(path, { method, headers: { "Content-Type": "application/json" }, body: JSON.stringify(body) });
}

function el(tag, text, className) {
  const node = document.createElement(tag);
  if (text !== undefined && text !== null) node.textContent = String(text);
  if (className) node.className = className;
  return node;
}

function link(href, text, className) {
  const a = el("a", text, className);
  a.href = href;
  return a;
}

function when(iso) {
  return iso ? new Date(iso).toLocaleString() : "—";
}

function num(value, digits = 0) {
  return value === null || value === undefined ? "—" : Number(value).toFixed(digits);
}

function stripHref(strip) {
  return `/strips/${strip.patient_id}/${encodeURIComponent(strip.device_id)}/${strip.seq}`;
}

const STATE_LABEL = { red: "Red", yellow: "Yellow", ok: "OK", no_signal: "No signal", baseline: "Baseline phase",
  paused: "Monitoring paused" };
const STAFF = ["clinician", "admin"];
const HOME = { patient: "/me", caregiver: "/caregiver" };

function homeFor(role) {
  return HOME[role] || "/";
}

// The signed-in user in the page header; a user whose role the page is not for goes to their own page.
async function header(roles = STAFF) {
  const me = await api("/api/auth/me");
  if (!roles.includes(me.role)) {
    window.location.assign(homeFor(me.role));
    throw new Error("this page is for another role");
  }
  document.getElementById("who").textContent = `${me.username} (${me.role})`;
  document.getElementById("logout").addEventListener("click", async () => {
    await fetch("/api/auth/logout", { method: "POST", credentials: "same-origin" });
    window.location.assign("/login");
  });
  return me;
}
