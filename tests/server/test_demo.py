"""The demo's progress lines (the whole demo runs in tests/e2e/test_demo.py)."""

from __future__ import annotations

import psycopg
import pytest

from server.demo import _alert_line


def test_a_new_alert_is_announced_once() -> None:
    alert = {"id": 7, "level": "yellow", "patient_name": "Ana Novak", "parameter": "hr"}
    assert _alert_line(alert, None) == "  NEW YELLOW ALERT #7: Ana Novak hr (see the portal)"
    assert _alert_line(alert, "yellow") is None


def test_an_escalated_alert_is_announced_at_its_new_level() -> None:
    alert = {"id": 7, "level": "red", "patient_name": "Ana Novak", "parameter": "hr"}
    assert _alert_line(alert, "yellow") == "  NEW RED ALERT #7: Ana Novak hr (was yellow; see the portal)"


@pytest.mark.db
def test_the_demo_gives_its_first_patient_an_account_of_their_own(db_url: str) -> None:
    from server.demo import _seed_clinician, _seed_patient_account, _seed_patients
    from server.store import account_patient, authenticate, can_see

    clinician, _ = _seed_clinician(db_url)
    patients = _seed_patients(db_url, clinician, 2)
    own = _seed_patient_account(db_url, patients[0])
    assert own is not None
    with psycopg.connect(db_url) as conn:
        user = authenticate(conn, *own)
        assert user is not None and user.role == "patient"
        assert account_patient(conn, user.id) == patients[0].patient_id
        assert not any(can_see(conn, user, p.patient_id) for p in patients)  # no clinician views, only /api/me
        assert authenticate(conn, own[0], own[1] + "x") is None
    assert _seed_patient_account(db_url, patients[0]) is None  # a second run: the account is there already
