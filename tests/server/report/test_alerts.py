"""The report's alerts section on constructed data: outcomes, who and how fast, groups, which are listed."""

from __future__ import annotations

from datetime import datetime, timedelta

from server.consent import PAUSED_KIND, PAUSED_NOTE
from server.queries import AlertRow, HistoryEntry
from server.report.alerts import MAX_LISTED, alerts_section, duration_text
from tests.server.report.data import T0, data


def alert(i: int, level: str, opened: datetime, acked_after_s: float | None, state: str = "resolved",
          resolved_by: str | None = None, value: float | None = 120.0, parameter: str = "hr") -> AlertRow:  # fmt: skip
    acked = None if acked_after_s is None else opened + timedelta(seconds=acked_after_s)
    trigger = {} if value is None else {"value": value}
    return AlertRow(i, 7, "Ana", level, parameter, state, opened, None, opened + timedelta(hours=1),
                    trigger, "dr-kos" if acked else None, acked, "seen" if acked else None, "ok", resolved_by)  # fmt: skip


def test_alert_outcomes_who_and_how_fast() -> None:
    rows = [alert(3, "red", T0 + timedelta(hours=5), 600, resolved_by="dr-lee"),
            alert(1, "yellow", T0 + timedelta(hours=1), 60),
            alert(2, "yellow", T0 + timedelta(hours=2), None, value=None),
            alert(4, "red", T0 + timedelta(hours=9), 200, state="acknowledged")]  # fmt: skip
    notes = {3: [HistoryEntry(T0 + timedelta(hours=5, minutes=3), "note", "dr-lee", {"note": "called her"}),
                 HistoryEntry(T0 + timedelta(hours=5, minutes=5), "escalate_contact", None, {}),
                 HistoryEntry(T0 + timedelta(hours=5, minutes=6), "delivered", None, {})]}  # fmt: skip
    headline, body = alerts_section(data(alerts=rows, notes=notes))
    # listed in time order: the red ones and the yellow one a person acknowledged; no. 2 only in its group
    assert [a.id for a in body.alerts] == [1, 3, 4] and body.not_listed == 1
    assert [a.seconds_to_ack for a in body.alerts] == [60.0, 600.0, 200.0]
    assert (body.total, body.red, body.acknowledged, body.never_acknowledged, body.active) == (4, 2, 3, 1, 1)
    assert body.median_seconds_to_ack == 200.0
    red = body.alerts[1]
    assert (red.resolved_by, red.resolved_by_rules, red.escalation_steps) == ("dr-lee", False, 1)
    assert [(n.by, n.note) for n in red.notes] == [("dr-lee", "called her")]
    assert body.alerts[0].resolved_by_rules and red.value == 120.0
    groups = [(g.parameter, g.level, g.alerts, g.acknowledged, g.median_seconds_to_ack, g.resolved_by_rules,
               g.resolved_by_person, g.active) for g in body.groups]  # fmt: skip
    assert groups == [("hr", "red", 2, 2, 400.0, 0, 1, 1), ("hr", "yellow", 2, 1, 60.0, 2, 0, 0)]
    assert headline == "4 alerts (2 red, 2 yellow); 3 acknowledged, median 3 min to acknowledge; 1 still active."


def test_many_alerts_list_the_red_ones_first_and_group_the_rest() -> None:
    yellow = [alert(i, "yellow", T0 + timedelta(minutes=10 * i), None, parameter="resp_rate") for i in range(30)]
    red = [alert(100 + i, "red", T0 + timedelta(minutes=10 * i + 5), None) for i in range(MAX_LISTED + 5)]
    touched = [alert(200, "yellow", T0 + timedelta(days=1), 30)]
    _, body = alerts_section(data(alerts=yellow + red + touched))
    assert len(body.alerts) == MAX_LISTED and body.not_listed == 30 + 5 + 1
    assert {a.level for a in body.alerts} == {"red"}  # the newest red ones win over a yellow one acknowledged
    assert [a.id for a in body.alerts] == list(range(105, 100 + MAX_LISTED + 5))
    assert [(g.parameter, g.level, g.alerts) for g in body.groups] == [
        ("hr", "red", MAX_LISTED + 5), ("resp_rate", "yellow", 30), ("hr", "yellow", 1)]


def test_durations_read_as_people_say_them() -> None:
    assert [duration_text(s) for s in (45, 89.6, 600, 5399, 15000)] == ["45 s", "90 s", "10 min", "90 min", "4 h 10 min"]


def test_no_alerts() -> None:
    headline, body = alerts_section(data())
    assert body.total == 0 and body.median_seconds_to_ack is None and headline == "No alerts in this period."


def test_an_alert_closed_by_a_consent_pause_is_not_counted_as_resolved_by_the_rules() -> None:
    rows = [alert(1, "red", T0 + timedelta(hours=1), None), alert(2, "red", T0 + timedelta(hours=2), None)]
    paused = HistoryEntry(T0 + timedelta(hours=2, minutes=5), PAUSED_KIND, "dr-kos", {"reason": PAUSED_NOTE})
    _, body = alerts_section(data(alerts=rows, notes={2: [paused]}))
    by_rules, by_pause = body.alerts
    assert (by_rules.resolved_by_rules, by_rules.closed_by_pause) == (True, False)
    assert (by_pause.resolved_by_rules, by_pause.closed_by_pause) == (False, True)
    (group,) = body.groups
    assert (group.resolved_by_rules, group.resolved_by_person, group.closed_by_pause, group.active) == (1, 0, 1, 0)
