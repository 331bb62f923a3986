"""Repeated missed doses of a critical drug: a yellow alert to the patient, promoted to red for clinicians."""

from __future__ import annotations

import queue
from datetime import datetime
from zoneinfo import ZoneInfo

UTC = ZoneInfo("UTC")

import psycopg
import pytest

from server import dose_alerts, medication
from server.adherence import DoseOutcome
from server.escalation import EscalationPolicy, apply_step, load_views, plan
from server.ingest import handle_message, rule_config
from server.notify import Notifier, notify_for
from server.settings import ServerSettings
from server.store import add_patient
from tests.server.helpers import mqtt_client
from wire import Event, EventType, Kind, Level, Notify, decode, encode, topic_for
from wire.medication import Drug, MedicationPlan, schedule

DAY = datetime(2026, 6, 1, tzinfo=ZoneInfo("Europe/Ljubljana")).timestamp()
H = 3600.0


def dose(drug: str, status: str, i: int) -> DoseOutcome:
    return DoseOutcome(drug, "5 mg", drug == "bisoprolol", 1, DAY + i * 12 * H, 0.0, 0.0, status)


def test_the_rule_opens_once_for_a_critical_drug_and_resolves_when_a_dose_is_taken() -> None:
    twice = [dose("bisoprolol", "on_time", 0), dose("bisoprolol", "missed", 1), dose("bisoprolol", "unconfirmed", 2),
             dose("bisoprolol", "skipped", 3), dose("furosemide", "missed", 1), dose("furosemide", "missed", 2)]  # fmt: skip
    (opened,) = dose_alerts.dose_actions(twice, {"bisoprolol"}, {}, DAY, 2)  # furosemide is not critical
    assert (opened.kind, opened.parameter, opened.level) == ("open", "dose:bisoprolol", "yellow")
    assert opened.trigger["not_taken"] == 2 and [d["status"] for d in opened.trigger["doses"]] == ["missed", "skipped"]
    silent = [dose("bisoprolol", "on_time", 0), dose("bisoprolol", "unconfirmed", 1), dose("bisoprolol", "unconfirmed", 2)]
    assert dose_alerts.dose_actions(silent, {"bisoprolol"}, {}, DAY, 2) == []  # a silent phone is no-signal's business
    assert dose_alerts.dose_actions(twice, {"bisoprolol"}, {"dose:bisoprolol": "yellow"}, DAY, 2) == []
    assert dose_alerts.dose_actions(twice[:2], {"bisoprolol"}, {}, DAY, 2) == []  # once is not repeatedly
    pending = [*twice, dose("bisoprolol", "pending", 4), dose("bisoprolol", "unconfirmed", 5)]
    assert dose_alerts.dose_actions(pending, {"bisoprolol"}, {"dose:bisoprolol": "yellow"}, DAY, 2) == []
    taken = [*twice, dose("bisoprolol", "late", 4)]
    (resolved,) = dose_alerts.dose_actions(taken, {"bisoprolol"}, {"dose:bisoprolol": "red"}, DAY, 2)
    assert (resolved.kind, resolved.level) == ("resolve", "red")
    (dropped,) = dose_alerts.dose_actions(twice, set(), {"dose:bisoprolol": "yellow", "hr": "red"}, DAY, 2)
    assert (dropped.kind, dropped.parameter) == ("resolve", "dose:bisoprolol")


def test_the_patient_reads_what_to_do() -> None:
    from server.records import AlertChange

    notice = notify_for("dev-1", AlertChange(7, "open", "yellow", "dose:bisoprolol", DAY, {"not_taken": 2}))
    assert (notice.level, notice.title) == (Level.YELLOW, "bisoprolol: doses missed")
    assert "last 2 doses" in notice.body
    red = notify_for("dev-1", AlertChange(7, "escalate", "red", "dose:bisoprolol", DAY, {"source": "promotion"}))
    assert red.level is Level.RED and "care team" in red.title
    taken, dropped = (notify_for("dev-1", AlertChange(7, "resolve", "yellow", "dose:bisoprolol", DAY, a.trigger))
                      for a in (dose_alerts.dose_actions([dose("bisoprolol", "late", 4)], {"bisoprolol"},
                                                         {"dose:bisoprolol": "yellow"}, DAY, 2)
                                + dose_alerts.dose_actions([], set(), {"dose:bisoprolol": "yellow"}, DAY, 2)))  # fmt: skip
    assert taken.body == "Your dose was recorded."
    assert "plan" in dropped.body and "recorded" not in dropped.body  # not thanked for a dose never taken


@pytest.mark.db
@pytest.mark.mqtt
def test_two_missed_doses_alert_the_phone_then_the_ladder_takes_it_to_red_and_a_taken_dose_resolves_it(
    db_url: str, mqtt_url: str, device_id: str
) -> None:
    settings = ServerSettings(database_url=db_url, mqtt_url=mqtt_url)
    plan_ = MedicationPlan(1, DAY, "Europe/Ljubljana",
                           (Drug("bisoprolol", "5 mg", ("08:00", "20:00"), critical=True),))  # fmt: skip
    morning, evening, tomorrow = schedule(plan_, DAY, DAY + 86_400 + 12 * H)
    inbox: queue.Queue[bytes] = queue.Queue()
    phone, server = mqtt_client(mqtt_url), mqtt_client(mqtt_url)
    phone.on_message = lambda _c, _u, m: inbox.put(m.payload)
    phone.subscribe(topic_for(device_id, Kind.NOTIFY), 1)
    try:
        with psycopg.connect(db_url, autocommit=True) as conn:
            patient = add_patient(conn, "P", device_id)
            medication.record_plan(conn, patient, None, plan_, since=datetime.fromtimestamp(plan_.since, UTC))
            for seq, d in enumerate((morning, evening)):
                missed = Event(device_id, seq, EventType.DOSE_MISSED, d.closes_at, drug="bisoprolol", planned=d.planned)
                handle_message(conn, topic_for(device_id, Kind.EVENT), encode(missed), rule_config(settings))
            now = evening.closes_at + 60
            first = dict(dose_alerts.check_doses(conn, now, 2))
            again = dict(dose_alerts.check_doses(conn, now + 60, 2))
            Notifier(server).send(device_id, first[patient])  # as the escalation round does
            told = decode(inbox.get(timeout=10))
            alert = conn.execute("SELECT id, level, state, trigger FROM alerts WHERE patient_id = %s",
                                 (patient,)).fetchone()  # fmt: skip
            (step,) = [s for s in plan(*load_views(conn), now + 1801, EscalationPolicy()) if s.patient_id == patient]
            promoted = apply_step(conn, step)
            taken = Event(device_id, 3, EventType.DOSE_TAKEN, tomorrow.planned + 60, drug="bisoprolol",
                          planned=tomorrow.planned)  # fmt: skip
            handle_message(conn, topic_for(device_id, Kind.EVENT), encode(taken), rule_config(settings))
            resolved = dict(dose_alerts.check_doses(conn, tomorrow.planned + 120, 2))
            state = conn.execute("SELECT level, state FROM alerts WHERE id = %s", (alert[0],)).fetchone()
            history = [r[0] for r in conn.execute("SELECT kind FROM alert_history WHERE alert_id = %s ORDER BY id",
                                                  (alert[0],)).fetchall()]  # fmt: skip
    finally:
        for client in (phone, server):
            client.disconnect()
            client.loop_stop()
    assert [(c.kind, c.parameter, c.level) for c in first[patient]] == [("open", "dose:bisoprolol", "yellow")]
    assert patient not in again
    assert isinstance(told, Notify) and (told.level, told.parameter) == (Level.YELLOW, "dose:bisoprolol")
    assert alert[1:3] == ("yellow", "open") and alert[3]["not_taken"] == 2
    assert step.kind == "promote" and [(c.kind, c.level) for c in promoted] == [("escalate", "red")]
    assert [(c.kind, c.parameter, c.level) for c in resolved[patient]] == [("resolve", "dose:bisoprolol", "red")]
    assert state == ("red", "resolved") and history == ["dose_open", "promote", "dose_resolve"]
    with psycopg.connect(db_url) as conn:
        note = conn.execute("SELECT resolve_note FROM alerts WHERE id = %s", (alert[0],)).fetchone()
    assert note == ("a dose was taken",)  # not the rules' "back within limits"
