"""The portal under the enforced Content-Security-Policy in a real headless Chromium: signing in,
the overview, a patient page and its medication plan work, and the browser reports no CSP violation."""

from __future__ import annotations

import secrets
from typing import Any

import psycopg
import pytest

from server.app import create_app
from server.settings import ServerSettings
from server.store import add_patient, add_user, assign_patient
from tests.server.test_security_routes import serve

pytestmark = [pytest.mark.e2e, pytest.mark.db]

PASSWORD = "correct horse battery"


def test_portal_runs_under_the_enforced_csp(page: Any, db_url: str) -> None:
    tag = secrets.token_hex(3)
    nurse, name = f"nurse-{tag}", f"Csp Patient {tag}"
    with psycopg.connect(db_url, autocommit=True) as conn:
        add_user(conn, nurse, PASSWORD)
        patient = add_patient(conn, name, f"csp-{tag}")
        assign_patient(conn, nurse, patient)
    settings = ServerSettings(database_url=db_url, ingest_in_server=False, escalation_in_server=False,
                              csp_enforce=True)  # fmt: skip
    messages: list[str] = []
    page.on("console", lambda msg: messages.append(msg.text))
    page.on("pageerror", lambda exc: messages.append(str(exc)))
    with serve(create_app(settings)) as url:
        page.goto(f"{url}/login")
        page.fill("#username", nurse)
        page.fill("#password", PASSWORD)
        page.click("button[type=submit]")
        page.wait_for_selector(f"#patient-rows >> text={name}")
        page.goto(f"{url}/patients/{patient}")
        page.wait_for_load_state("networkidle")
        page.wait_for_selector(f"text={name}")
        page.goto(f"{url}/patients/{patient}/medication")
        page.wait_for_selector("#med-status:has-text('No plan yet.')")
    violations = [m for m in messages if "Content Security Policy" in m or "Refused to" in m]
    assert violations == []
