"use strict";
// Make an account from an invitation code: the server signs the new user in (HttpOnly cookie). Needs common.js.
document.getElementById("join-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  const error = document.getElementById("join-error");
  error.textContent = "";
  const value = (id) => document.getElementById(id).value;
  const body = { code: value("code").trim(), username: value("username").trim(), password: value("password") };
  if (!body.code || !body.username || !body.password) {
    error.textContent = "Enter the code, a username and a password.";
    return;
  }
  if (body.password !== value("password2")) {
    error.textContent = "The two passwords differ.";
    return;
  }
  try {
    const res = await fetch("/api/invitations/accept", {
      method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body), credentials: "same-origin",
    });
    const answer = await res.json().catch(() => ({}));
    if (res.ok) {
      window.location.assign(homeFor(answer.user.role));
      return;
    }
    error.textContent = errorText(answer, `Could not make the account (${res.status}).`);
  } catch (e) {
    error.textContent = "The server cannot be reached.";
  }
});
