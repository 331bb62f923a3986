"use strict";
// Shared by every portal page: API calls, safe DOM building, formatting. Data is inserted as text only.

async function api(path, options = {}) {
  const res = await fetch(path, { credentials: "same-origin", ...options });
  if (res.status === 401) {
    window.location.assign("/login");
    throw new Error("signed out");
  }
  if (!res.ok) {
    let detail = `${res.status}`;
    try {
      const body = await res.json();
      detail = typeof body.detail === "string" ? body.detail
        : (body.detail || []).map((d) => (typeof d === "string" ? d : `${(d.loc || []).slice(-1)[0]}: ${d.msg}`)).join("; ");
    } catch (e) { /* not JSON */ }
    const error = new Error(detail);
    error.status = res.status;
    throw error;
  }
  return res.json();
}

function post(path, body) {
  return api(path, { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body) });
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

const STATE_LABEL = { red: "Red", yellow: "Yellow", ok: "OK", no_signal: "No signal", baseline: "Baseline phase" };

async function header() {
  const me = await api("/api/auth/me");
  document.getElementById("who").textContent = `${me.username} (${me.role})`;
  document.getElementById("logout").addEventListener("click", async () => {
    await fetch("/api/auth/logout", { method: "POST", credentials: "same-origin" });
    window.location.assign("/login");
  });
  return me;
}
