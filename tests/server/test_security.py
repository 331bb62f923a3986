"""HTTP hardening on the real app and database: security headers, CORS, the sign-in rate limit,
revoking every session, and the admin audit-log query."""

from __future__ import annotations

import secrets

import httpx
import psycopg
import pytest

from server.app import create_app
from server.security import CONTENT_SECURITY_POLICY, LoginLimiter, json_depth, login_keys
from server.settings import ServerSettings
from server.store import add_patient, add_user, assign_patient
from tests.server.test_security_routes import serve

PASSWORD = "correct horse battery"


class FakeClock:
    """Monotonic seconds that only move when told to."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_limiter_refuses_after_max_failures_until_the_oldest_leaves_the_window() -> None:
    clock = FakeClock()
    limiter = LoginLimiter(max_failures=3, window_s=60, clock=clock)
    keys = login_keys(" Ann ", "10.0.0.1")
    assert keys == ["user:ann", "addr:10.0.0.1"]
    for _ in range(3):
        assert limiter.retry_after(keys) == 0
        limiter.failed(keys)
        clock.now += 10
    assert limiter.retry_after(keys) == pytest.approx(30)  # first failure at 1000, window 60, now 1030
    assert limiter.retry_after(["user:bob"]) == 0
    assert limiter.retry_after(["addr:10.0.0.1"]) == pytest.approx(30)
    clock.now += 30
    assert limiter.retry_after(keys) == 0


def test_success_resets_only_the_given_keys() -> None:
    limiter = LoginLimiter(max_failures=1, window_s=60, clock=FakeClock())
    limiter.failed(["user:ann", "addr:a"])
    limiter.succeeded(["user:ann"])
    assert limiter.retry_after(["user:ann"]) == 0
    assert limiter.retry_after(["addr:a"]) > 0


@pytest.mark.db
def test_headers_cors_rate_limit_revocation_and_audit(db_url: str) -> None:
    tag = secrets.token_hex(3)
    admin, nurse = f"admin-{tag}", f"nurse-{tag}"
    with psycopg.connect(db_url, autocommit=True) as conn:
        add_user(conn, admin, PASSWORD, "admin")
        add_user(conn, nurse, PASSWORD)
        add_user(conn, f"{nurse}-2", PASSWORD)
        patient = add_patient(conn, f"Ann {tag}", f"sec-{tag}")
        assign_patient(conn, nurse, patient)
    settings = ServerSettings(
        database_url=db_url, ingest_in_server=False, escalation_in_server=False,
        cors_origins=["https://portal.example.org"], csp_enforce=True, login_max_failures=3, login_window_seconds=600,
    )  # fmt: skip
    with serve(create_app(settings)) as url, httpx.Client(base_url=url) as client:
        check_headers_and_cors(client)
        check_revocation(url, admin)
        check_audit(client, url, admin, nurse, patient)
        check_rate_limit(client, nurse, admin)  # last: it locks this client address out


def check_headers_and_cors(client: httpx.Client) -> None:
    for path in ("/login", "/static/login.js", "/api/auth/me", "/healthz"):
        headers = client.get(path).headers
        assert headers["content-security-policy"] == CONTENT_SECURITY_POLICY, path
        assert "script-src 'self'" in headers["content-security-policy"]
        assert headers["x-content-type-options"] == "nosniff"
        assert headers["referrer-policy"] == "no-referrer"
        assert headers["x-frame-options"] == "DENY"
    allowed = client.options("/api/auth/me", headers={
        "Origin": "https://portal.example.org", "Access-Control-Request-Method": "GET"})  # fmt: skip
    assert allowed.headers["access-control-allow-origin"] == "https://portal.example.org"
    other = client.get("/healthz", headers={"Origin": "https://evil.example.com"})
    assert "access-control-allow-origin" not in other.headers


def check_rate_limit(client: httpx.Client, nurse: str, admin: str) -> None:
    for _ in range(3):
        wrong = client.post("/api/auth/login", json={"username": nurse, "password": "nope"})
        assert wrong.status_code == 401
    refused = client.post("/api/auth/login", json={"username": nurse, "password": PASSWORD})
    assert refused.status_code == 429, "the right password is refused too while limited"
    assert int(refused.headers["retry-after"]) > 0
    assert "too many failed sign-ins" in refused.json()["detail"]
    same_address = client.post("/api/auth/login", json={"username": admin, "password": PASSWORD})
    assert same_address.status_code == 429, "the address is limited as well as the username"


def check_revocation(url: str, admin: str) -> None:
    tokens = []
    for _ in range(2):  # two devices signed in
        with httpx.Client(base_url=url) as device:
            tokens.append(device.post("/api/auth/login", json={"username": admin, "password": PASSWORD}).json()["token"])
    with httpx.Client(base_url=url, headers={"Authorization": f"Bearer {tokens[0]}"}) as first:
        assert first.get("/api/auth/me").status_code == 200
        revoked = first.post("/api/auth/sessions/revoke-all")
        assert revoked.status_code == 200 and revoked.json()["revoked"] >= 2
    for token in tokens:
        with httpx.Client(base_url=url, headers={"Authorization": f"Bearer {token}"}) as device:
            assert device.get("/api/auth/me").status_code == 401


def check_audit(client: httpx.Client, url: str, admin: str, nurse: str, patient: int) -> None:
    def bearer(username: str) -> dict[str, str]:
        with httpx.Client(base_url=url) as c:
            token = c.post("/api/auth/login", json={"username": username, "password": PASSWORD}).json()["token"]
        return {"Authorization": f"Bearer {token}"}

    as_admin = bearer(admin)
    assert client.get(f"/api/patients/{patient}/summaries", headers=as_admin).status_code == 200
    rows = client.get("/api/audit", params={"patient_id": patient}, headers=as_admin).json()
    assert [(r["username"], r["patient_id"]) for r in rows][:1] == [(admin, patient)]
    assert rows[0]["action"].startswith("read:")
    only = client.get("/api/audit", params={"patient_id": patient, "username": nurse}, headers=as_admin).json()
    assert only == []
    assert client.get("/api/audit", params={"start": "2026-01-02T00:00:00Z", "end": "2026-01-01T00:00:00Z"},
                      headers=as_admin).status_code == 422  # fmt: skip
    assert client.get("/api/audit", headers=bearer(f"{nurse}-2")).status_code == 403


def test_csp_is_report_only_outside_production_by_default() -> None:
    import asyncio

    from server.security import SecurityHeaders

    async def plain(scope: dict, receive: object, send: object) -> None:  # type: ignore[type-arg]
        await send({"type": "http.response.start", "status": 200, "headers": [(b"x-frame-options", b"SAMEORIGIN")]})  # type: ignore[operator]

    async def run(enforce: bool) -> dict[bytes, bytes]:
        sent: list[dict] = []  # type: ignore[type-arg]

        async def send(message: dict) -> None:  # type: ignore[type-arg]
            sent.append(message)

        await SecurityHeaders(plain, enforce_csp=enforce)({"type": "http"}, None, send)  # type: ignore[arg-type]
        return dict(sent[0]["headers"])

    report_only, enforced = asyncio.run(run(False)), asyncio.run(run(True))
    assert b"content-security-policy" not in report_only
    assert report_only[b"content-security-policy-report-only"] == CONTENT_SECURITY_POLICY.encode()
    assert enforced[b"content-security-policy"] == CONTENT_SECURITY_POLICY.encode()
    assert enforced[b"x-frame-options"] == b"SAMEORIGIN", "a header the app set itself is kept"


@pytest.mark.db
def test_nul_in_query_or_path_is_refused_early(db_url: str) -> None:
    settings = ServerSettings(database_url=db_url, ingest_in_server=False, escalation_in_server=False)
    with serve(create_app(settings)) as url, httpx.Client(base_url=url) as client:
        for path in ("/api/symptoms/search?q=a%00b", "/api/patients/1%00"):
            reply = client.get(path)
            assert reply.status_code == 400, path
            assert "NUL" in reply.json()["detail"]
            assert reply.headers["x-content-type-options"] == "nosniff"
        assert client.get("/api/symptoms/search?q=a%01b").status_code == 401


@pytest.mark.db
def test_a_value_the_database_cannot_hold_is_a_422_not_a_500(db_url: str) -> None:
    admin = f"admin-{secrets.token_hex(3)}"
    with psycopg.connect(db_url, autocommit=True) as conn:
        add_user(conn, admin, PASSWORD, "admin")
    settings = ServerSettings(database_url=db_url, ingest_in_server=False, escalation_in_server=False)
    with serve(create_app(settings)) as url, httpx.Client(base_url=url) as client:
        token = client.post("/api/auth/login", json={"username": admin, "password": PASSWORD}).json()["token"]
        reply = client.get("/api/alerts", params={"patient_id": 2**70}, headers={"Authorization": f"Bearer {token}"})
        assert reply.status_code == 422
        assert "cannot be stored" in reply.json()["detail"] and "out of range" in reply.json()["detail"]


def test_json_depth_counts_nesting_outside_strings() -> None:
    assert json_depth(b'{"a": [1, {"b": 2}]}') == 3
    assert json_depth(b'{"note": "[[[[{{{{ \\" [[["}') == 1
    assert json_depth(b"") == 0


@pytest.mark.db
def test_oversized_or_deeply_nested_bodies_are_refused_before_any_route(db_url: str) -> None:
    settings = ServerSettings(
        database_url=db_url, ingest_in_server=False, escalation_in_server=False, max_body_bytes=10_000
    )
    login = "/api/auth/login"
    with serve(create_app(settings)) as url, httpx.Client(base_url=url) as client:
        big = client.post(login, content=b'{"username": "' + b"x" * 20_000 + b'"}',
                          headers={"Content-Type": "application/json"})  # fmt: skip
        assert big.status_code == 413 and "larger than 10000" in big.json()["detail"]

        def chunks():  # no Content-Length: the limit holds for a streamed body too
            for _ in range(30):
                yield b" " * 1_000

        streamed = client.post(login, content=chunks(), headers={"Content-Type": "application/json"})
        assert streamed.status_code == 413
        deep = client.post(login, content=b"[" * 5_000 + b"]" * 5_000, headers={"Content-Type": "application/json"})
        assert deep.status_code == 400 and "nested deeper" in deep.json()["detail"]
        assert deep.headers["x-content-type-options"] == "nosniff"
        fine = client.post(login, json={"username": "nobody", "password": "not a real password"})
        assert fine.status_code == 401  # an ordinary body still reaches the route
