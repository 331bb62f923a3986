"""HTTP hardening: security headers, the CORS allow-list and the sign-in rate limiter.

The headers suit the clinician portal as it is: every page loads its scripts and
styles from ``/static`` (no inline ``<script>``), so the Content-Security-Policy
allows scripts only from the same origin. It is enforced in production mode and
report-only elsewhere by default (``settings.csp_enforce``), because the browser
tests' harness evaluates script strings in the page. CORS is off unless
``settings.cors_origins`` names origins. Failed sign-ins are limited per username
and per client address in a sliding window, in this process's memory (several
server processes each keep their own count).
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import psycopg

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from starlette.middleware.cors import CORSMiddleware
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from server.settings import ServerSettings

CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)
SECURITY_HEADERS: tuple[tuple[bytes, bytes], ...] = (
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"no-referrer"),
    (b"x-frame-options", b"DENY"),
    (b"cross-origin-opener-policy", b"same-origin"),
)
HSTS = (b"strict-transport-security", b"max-age=31536000; includeSubDomains")


class SecurityHeaders:
    """ASGI middleware adding the CSP, :data:`SECURITY_HEADERS` and (in production) HSTS to every response.

    Args:
        app: the wrapped application.
        max_body_bytes: larger request bodies get 413 before any route sees them; JSON bodies
            nested deeper than :data:`MAX_JSON_DEPTH` get 400 (a deep nest would exhaust the parser).
        enforce_csp: send ``Content-Security-Policy``; False: ``...-Report-Only`` (violations are
            reported in the browser console, nothing is blocked).
        hsts: send ``Strict-Transport-Security`` (only behind HTTPS).
    """

    def __init__(
        self, app: ASGIApp, enforce_csp: bool = True, hsts: bool = False, max_body_bytes: int = 5_000_000
    ) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes
        csp_name = b"content-security-policy" if enforce_csp else b"content-security-policy-report-only"
        self.headers = ((csp_name, CONTENT_SECURITY_POLICY.encode()),) + SECURITY_HEADERS + ((HSTS,) if hsts else ())

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if has_nul(scope):
            await self._refuse(send, 400, "NUL characters are not allowed in the path or query")
            return
        if scope.get("method") in BODY_METHODS:
            body, refusal = await read_body(receive, self.max_body_bytes, _is_json(scope))
            if refusal is not None:
                await self._refuse(send, *refusal)
                return
            receive = _replay(body)

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                present = {name.lower() for name, _ in message.get("headers", [])}
                extra = [(name, value) for name, value in self.headers if name not in present]
                message["headers"] = list(message.get("headers", [])) + extra
            await send(message)

        await self.app(scope, receive, send_with_headers)

    async def _refuse(self, send: Send, status: int, detail: str) -> None:
        body = json.dumps({"detail": detail}).encode()
        headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
        await send({"type": "http.response.start", "status": status, "headers": headers + list(self.headers)})
        await send({"type": "http.response.body", "body": body})


BODY_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
MAX_JSON_DEPTH = 64  # our request bodies nest 3-4 levels; json's parser recurses per level


async def read_body(receive: Receive, limit: int, is_json: bool) -> tuple[bytes, tuple[int, str] | None]:
    """Read the whole request body, refusing (status, reason) past ``limit`` bytes or a too deep JSON nest."""
    chunks, size = [], 0
    while True:
        message = await receive()
        if message["type"] != "http.request":
            break
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            return b"", (413, f"request body larger than {limit} bytes")
        chunks.append(chunk)
        if not message.get("more_body", False):
            break
    body = b"".join(chunks)
    if is_json and json_depth(body) > MAX_JSON_DEPTH:
        return b"", (400, f"JSON nested deeper than {MAX_JSON_DEPTH} levels")
    return body, None


def json_depth(body: bytes) -> int:
    """Deepest nesting of ``[``/``{`` in a JSON text, outside strings (no parse, linear time)."""
    depth = deepest = 0
    in_string = escaped = False
    for byte in body:
        if in_string:
            if escaped:
                escaped = False
            elif byte == 0x5C:  # backslash
                escaped = True
            elif byte == 0x22:  # quote
                in_string = False
        elif byte == 0x22:
            in_string = True
        elif byte in (0x5B, 0x7B):
            depth += 1
            deepest = max(deepest, depth)
        elif byte in (0x5D, 0x7D):
            depth -= 1
    return deepest


def _is_json(scope: Scope) -> bool:
    headers = dict(scope.get("headers", []))
    return b"json" in headers.get(b"content-type", b"").lower()


def _replay(body: bytes) -> Receive:
    """A ``receive`` that hands the already-read body to the app once, then waits like the server."""
    sent = False

    async def receive() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        await asyncio.Event().wait()  # the app only asks again to learn of a disconnect
        return {"type": "http.disconnect"}

    return receive


async def refused_value(request: Request, exc: Exception) -> JSONResponse:
    """A value PostgreSQL cannot hold (a number out of range, a NUL in text): 422, not 500.

    psycopg's ``DataError`` is SQLSTATE class 22, "data exception": always a value
    the request supplied, never a fault of the server.
    """
    first_line = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    return JSONResponse({"detail": f"a value in the request cannot be stored: {first_line}"}, status_code=422)


def has_nul(scope: Scope) -> bool:
    """True if the request's path or query string holds a NUL (raw or ``%00``): no text column takes one."""
    query: bytes = scope.get("query_string", b"")
    return "\x00" in scope.get("path", "") or b"\x00" in query or b"%00" in query


def add_security_middleware(app: FastAPI, settings: ServerSettings) -> None:
    """Add the security headers, CORS for ``settings.cors_origins`` if any are listed, and the 422
    for values the database refuses."""
    app.add_exception_handler(psycopg.DataError, refused_value)
    if settings.cors_origins:
        app.add_middleware(
            CORSMiddleware, allow_origins=list(settings.cors_origins), allow_credentials=True,
            allow_methods=["GET", "POST", "PUT", "PATCH", "DELETE"],
            allow_headers=["Authorization", "Content-Type", "X-Access-Reason"],
        )  # fmt: skip
    production = settings.mode == "production"
    enforce = production if settings.csp_enforce is None else settings.csp_enforce
    app.add_middleware(SecurityHeaders, enforce_csp=enforce, hsts=production, max_body_bytes=settings.max_body_bytes)


@dataclass
class LoginLimiter:
    """Failed sign-ins per key (``user:<name>``, ``addr:<ip>``) within a sliding window.

    Attributes:
        max_failures: failures allowed per key within ``window_s``; the next attempt is refused.
        window_s: length of the sliding window, seconds.
        clock: monotonic seconds (injectable for tests).
    """

    max_failures: int
    window_s: float
    clock: Callable[[], float] = time.monotonic
    _failures: dict[str, deque[float]] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def retry_after(self, keys: list[str]) -> float:
        """Seconds until every key may try again (0: allowed now)."""
        now = self.clock()
        with self._lock:
            waits = [self._wait(key, now) for key in keys]
        return max(waits, default=0.0)

    def failed(self, keys: list[str]) -> None:
        """Count one failed attempt against each key."""
        now = self.clock()
        with self._lock:
            for key in keys:
                self._failures.setdefault(key, deque()).append(now)
                self._wait(key, now)

    def succeeded(self, keys: list[str]) -> None:
        """Forget the failures of these keys (a correct password resets its own count)."""
        with self._lock:
            for key in keys:
                self._failures.pop(key, None)

    def _wait(self, key: str, now: float) -> float:
        times = self._failures.get(key)
        if not times:
            return 0.0
        while times and times[0] <= now - self.window_s:
            times.popleft()
        if not times:
            del self._failures[key]
            return 0.0
        if len(times) < self.max_failures:
            return 0.0
        return times[-self.max_failures] + self.window_s - now


def login_keys(username: str, address: str | None) -> list[str]:
    """The limiter keys of one sign-in attempt (usernames compared case-insensitively)."""
    keys = [f"user:{username.strip().lower()}"]
    if address:
        keys.append(f"addr:{address}")
    return keys


def revoke_sessions(conn: psycopg.Connection[Any], user_id: int) -> int:
    """End every session of one user (all devices signed out); return how many were ended."""
    return conn.execute("DELETE FROM sessions WHERE user_id = %s", (user_id,)).rowcount
