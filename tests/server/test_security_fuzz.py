"""Schemathesis against the app's own OpenAPI schema, as an admin on the real database: no 5xx."""

from __future__ import annotations

import os
import secrets
from collections import Counter
from collections.abc import Iterator

import httpx
import psycopg
import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings

from server.app import create_app
from server.settings import ServerSettings
from server.store import add_user
from tests.server.test_security_routes import serve

pytestmark = pytest.mark.db

PASSWORD = "correct horse battery"
# CI replays the same cases every run (a red CI must mean a change broke something);
# PISCES_FUZZ_RANDOM=1 draws new ones, PISCES_FUZZ_EXAMPLES sets how many per operation.
EXAMPLES_PER_OPERATION = int(os.environ.get("PISCES_FUZZ_EXAMPLES", "15"))
DERANDOMIZE = os.environ.get("PISCES_FUZZ_RANDOM", "") != "1"


@pytest.fixture(scope="module")
def api(db_url: str) -> Iterator[tuple[str, dict[str, str]]]:
    """The app on a loopback port and an admin's bearer header."""
    admin = f"fuzz-{secrets.token_hex(3)}"
    with psycopg.connect(db_url, autocommit=True) as conn:
        add_user(conn, admin, PASSWORD, "admin")
    app_settings = ServerSettings(database_url=db_url, ingest_in_server=False, escalation_in_server=False)
    with serve(create_app(app_settings)) as url:
        token = httpx.post(f"{url}/api/auth/login", json={"username": admin, "password": PASSWORD}).json()["token"]
        yield url, {"Authorization": f"Bearer {token}"}


EXCLUDED = {
    "/api/alerts/stream",  # endless live stream
    "/api/auth/sessions/revoke-all",  # would end the fuzzer's own session
    "/api/auth/logout",
}


# 5xx found by this test in code owned elsewhere, reported and not yet fixed (docs/security.md):
# still fuzzed and printed, but not failing the run.
KNOWN_FAILURES: dict[tuple[str, str], str] = {}


def test_no_route_answers_5xx_to_schema_generated_requests(api: tuple[str, dict[str, str]]) -> None:
    url, auth = api
    schema = schemathesis.openapi.from_url(f"{url}/openapi.json")
    failures: list[str] = []
    statuses: Counter[int] = Counter()
    known_seen: list[str] = []
    operations = [result.ok() for result in schema.get_all_operations()]
    fuzzed = [op for op in operations if op.path not in EXCLUDED]
    for operation in fuzzed:

        @given(case=operation.as_strategy())
        @settings(max_examples=EXAMPLES_PER_OPERATION, deadline=None, database=None, derandomize=DERANDOMIZE,
                  suppress_health_check=list(HealthCheck))  # fmt: skip
        def call(case: schemathesis.Case) -> None:
            response = case.call(headers=auth)
            statuses[response.status_code] += 1
            if response.status_code >= 500:
                known = KNOWN_FAILURES.get((case.method.upper(), operation.path))
                (known_seen if known else failures).append(f"{case.method} {case.formatted_path}: {response.status_code} {response.text[:200]}")

        call()
    assert len(fuzzed) >= 30
    assert failures == [], "\n".join(failures)
    assert sum(n for code, n in statuses.items() if code < 300) >= len(fuzzed), f"too few accepted: {statuses}"
    print(f"known failures seen: {known_seen[:3]}")
    print(f"{len(fuzzed)} operations, {sum(statuses.values())} requests, statuses {sorted(statuses.items())}")
