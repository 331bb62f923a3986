"""The `pisces` command's accounts and enrolment: who enrolled is who recorded the consent to monitoring."""

from __future__ import annotations

import psycopg
import pytest

from server import consent
from server.cli import main
from server.store import account_patient, user_id

pytestmark = pytest.mark.db


def test_enrolment_records_monitoring_consent_and_a_patient_account_links_one_patient(
    db_url: str, device_id: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("PISCES_DATABASE_URL", db_url)
    monkeypatch.setenv("PISCES_NEW_PASSWORD", "a long secret")
    assert main(["users", "add", f"dr-{device_id}"]) == 0
    capsys.readouterr()
    assert main(["patients", "add", "--name", "Ina", "--device", device_id, "--clinician", f"dr-{device_id}"]) == 0
    pid = int(capsys.readouterr().out.split(" has id ")[1].split(",")[0])
    assert main(["users", "add", f"ina-{device_id}", "--role", "patient"]) == 2
    assert "--patient ID once" in capsys.readouterr().err
    assert main(["users", "add", f"ina-{device_id}", "--role", "patient", "--patient", str(pid)]) == 0
    assert main(["users", "add", f"ina2-{device_id}", "--role", "patient", "--patient", str(pid)]) == 2
    assert "already has an account" in capsys.readouterr().err
    assert main(["patients", "add", "--name", "Jo", "--device", f"{device_id}-j", "--clinician",
                 f"ina-{device_id}"]) == 2  # a patient cares for nobody
    with psycopg.connect(db_url) as conn:
        monitoring = consent.current(conn, pid)[0]
        linked = account_patient(conn, user_id(conn, f"ina-{device_id}") or 0)
    assert (monitoring.purpose, monitoring.granted, monitoring.recorded_by, monitoring.method) == (
        "monitoring", True, f"dr-{device_id}", "enrolment")
    assert linked == pid
