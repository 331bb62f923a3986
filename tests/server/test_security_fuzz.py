"""Schemathesis against the app's own OpenAPI schema on the real database: no 5xx, as an admin on every
route, and as a patient and a caregiver on their own routes."""

from __future__ import annotations

import os
import secrets
from collections import Counter
from collections.abc import Iterator
from typing import Any

import httpx
import psycopg
import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings

from server import caregivers, consent
from server.app import create_app
from server.settings import ServerSettings
from server.store import add_patient, add_user, link_patient_account
from tests.server.test_security_routes import serve

pytestmark = pytest.mark.db

PASSWORD = "correct horse battery"
# CI replays the same cases every run (a red CI must mean a change broke something);
# PISCES_FUZZ_RANDOM=1 draws new ones, PISCES_FUZZ_EXAMPLES sets how many per operation.
EXAMPLES_PER_OPERATION = int(os.environ.get("PISCES_FUZZ_EXAMPLES", "15"))
DERANDOMIZE = os.environ.get("PISCES_FUZZ_RANDOM", "") != "1"


@pytest.fixture(scope="module")
def api(db_url: str) -> Iterator[tuple[str, dict[str, dict[str, str]]]]:
    """The app on a loopback port and bearer headers of an admin, a patient and their caregiver.

    All sign in before any fuzzing: fuzzed sign-ins and invitation codes soon trip the address limiter.
    """
    tag = secrets.token_hex(3)
    with psycopg.connect(db_url, autocommit=True) as conn:
        add_user(conn, f"fuzz-{tag}", PASSWORD, "admin")
        patient = add_patient(conn, f"Fuzz {tag}", f"fz-{tag}")
        link_patient_account(conn, add_user(conn, f"fuzzpat-{tag}", PASSWORD, "patient"), patient)
        consent.record(conn, patient, "caregivers", True, "patient", None, "in app")
        carer = add_user(conn, f"fuzzcare-{tag}", PASSWORD, "caregiver")
        caregivers.add(conn, patient, carer, "fuzz", ["alerts", "status", "trends"], "yellow", None)
    app_settings = ServerSettings(database_url=db_url, ingest_in_server=False, escalation_in_server=False)
    with serve(create_app(app_settings)) as url:
        headers = {}
        for role, name in (("admin", f"fuzz-{tag}"), ("patient", f"fuzzpat-{tag}"), ("caregiver", f"fuzzcare-{tag}")):
            token = httpx.post(f"{url}/api/auth/login", json={"username": name, "password": PASSWORD}).json()["token"]
            headers[role] = {"Authorization": f"Bearer {token}"}
        yield url, headers


EXCLUDED = {
    "/api/alerts/stream",  # endless live streams
    "/api/caregiver/stream",
    "/api/auth/sessions/revoke-all",  # would end the fuzzer's own session
    "/api/auth/logout",
}


# 5xx found by this test in code owned elsewhere, reported and not yet fixed (docs/security.md):
# still fuzzed and printed, but not failing the run.
KNOWN_FAILURES: dict[tuple[str, str], str] = {}


def fuzz(operations: list[Any], auth: dict[str, str]) -> tuple[list[str], Counter[int], list[str]]:
    """Run the generated cases of each operation with ``auth``: (failures, statuses, known failures seen)."""
    failures: list[str] = []
    statuses: Counter[int] = Counter()
    known_seen: list[str] = []
    for operation in operations:

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
    return failures, statuses, known_seen


def operations_of(url: str) -> list[Any]:
    schema = schemathesis.openapi.from_url(f"{url}/openapi.json")
    return [result.ok() for result in schema.get_all_operations() if result.ok().path not in EXCLUDED]


def test_no_route_answers_5xx_to_schema_generated_requests(api: tuple[str, dict[str, dict[str, str]]]) -> None:
    url, auth = api
    fuzzed = operations_of(url)
    failures, statuses, known_seen = fuzz(fuzzed, auth["admin"])
    assert len(fuzzed) >= 30
    assert failures == [], "\n".join(failures)
    assert sum(n for code, n in statuses.items() if code < 300) >= len(fuzzed), f"too few accepted: {statuses}"
    print(f"known failures seen: {known_seen[:3]}")
    print(f"{len(fuzzed)} operations, {sum(statuses.values())} requests, statuses {sorted(statuses.items())}")


@pytest.mark.parametrize(("role", "prefix"), [("patient", "/api/me"), ("caregiver", "/api/caregiver/")])
def test_a_patients_and_a_caregivers_own_routes_answer_no_5xx(api: tuple[str, dict[str, dict[str, str]]],
                                                              role: str, prefix: str) -> None:  # fmt: skip
    url, auth = api
    fuzzed = [op for op in operations_of(url) if op.path.startswith(prefix)]
    failures, statuses, _ = fuzz(fuzzed, auth[role])
    assert len(fuzzed) >= 5
    assert failures == [], "\n".join(failures)
    assert statuses[200] + statuses[201] >= len(fuzzed) // 2, f"too few accepted: {statuses}"
    print(f"{role}: {len(fuzzed)} operations, {sum(statuses.values())} requests, statuses {sorted(statuses.items())}")
