"use strict";
// Sign in: POST the credentials; the server sets an HttpOnly session cookie.
document.getElementById("login-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  const error = document.getElementById("login-error");
  error.textContent = "";
  const body = {
    username: document.getElementById("username").value.trim(),
    password: document.getElementById("password").value,
  };
  if (!body.username || !body.password) {
    error.textContent = "Enter your username and password.";
    return;
  }
  try {
    const res = await fetch("/api/auth/login", {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify(body),
      credentials: "same-origin",
    });
    if (res.ok) {
      window.location.assign(homeFor((await res.json()).user.role));
    } else {
      error.textContent = res.status === 401 ? "Wrong username or password." : `Sign-in failed (${res.status}).`;
    }
  } catch (e) {
    error.textContent = "The server cannot be reached.";
  }
});
