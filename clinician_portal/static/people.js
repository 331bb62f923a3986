"use strict";
// Shared by the patient's and the caregiver's pages: purposes, scopes and alert levels in words. Needs common.js.

const PURPOSE_TEXT = {
  monitoring: "My care team receives my heart data and is alerted when it is outside my limits. Without it, what my phone sends is kept aside unread and raises no alerts.",
  location: "My phone sends its position with my data (weather at my place, how much I move). Without it, no position leaves my phone.",
  weather: "My heart data may be compared with the weather where I am.",
  caregivers: "People I invite may follow me, as I choose below. Without it, none of them sees anything.",
  research: "My data may be included in analyses across many patients.",
};
const SCOPE_LABEL = { status: "status", alerts: "alerts", trends: "trends" };
const NOTIFY_LABEL = { none: "none", red: "red alerts only", yellow: "yellow and red alerts" };

function notifySelect(value, label) {
  const select = el("select");
  for (const [key, text] of Object.entries(NOTIFY_LABEL)) {
    const option = el("option", text);
    option.value = key;
    select.append(option);
  }
  select.value = value;
  if (label) select.setAttribute("aria-label", label);
  return select;
}

function scopeBoxes(chosen, label) {
  const wrap = el("span", null, "scopes");
  for (const [key, text] of Object.entries(SCOPE_LABEL)) {
    const box = el("input");
    box.type = "checkbox";
    box.value = key;
    box.checked = chosen.includes(key);
    box.setAttribute("aria-label", `${label}: ${text}`);
    const item = el("label");
    item.append(box, ` ${text} `);
    wrap.append(item);
  }
  return wrap;
}

function checkedValues(root) {
  return [...root.querySelectorAll("input[type=checkbox]:checked")].map((b) => b.value);
}

function cap(text) {
  return text ? text[0].toUpperCase() + text.slice(1) : text;
}

function announce(text) {
  document.getElementById("announce").textContent = text;
}
