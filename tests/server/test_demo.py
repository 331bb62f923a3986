"""The demo's progress lines (the whole demo runs in tests/e2e/test_demo.py)."""

from __future__ import annotations

from server.demo import _alert_line


def test_a_new_alert_is_announced_once() -> None:
    alert = {"id": 7, "level": "yellow", "patient_name": "Ana Novak", "parameter": "hr"}
    assert _alert_line(alert, None) == "  NEW YELLOW ALERT #7: Ana Novak hr (see the portal)"
    assert _alert_line(alert, "yellow") is None


def test_an_escalated_alert_is_announced_at_its_new_level() -> None:
    alert = {"id": 7, "level": "red", "patient_name": "Ana Novak", "parameter": "hr"}
    assert _alert_line(alert, "yellow") == "  NEW RED ALERT #7: Ana Novak hr (was yellow; see the portal)"
