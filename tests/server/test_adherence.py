"""Adherence: the pure core over plain rows, and the real chain: dose events through the broker into the
database exactly once, and the figures read back."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

import psycopg
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from server import adherence, medication
from server.adherence import DoseOutcome, DoseRecord, outcomes, planned_doses, summarize
from server.ingest import Ingestor
from tests.server.helpers import publish, wait_for
from wire import Event, EventType, Kind, encode, topic_for
from wire.medication import Drug, MedicationPlan, schedule

LJ = ZoneInfo("Europe/Ljubljana")
DAY = datetime(2026, 6, 1, tzinfo=LJ).timestamp()
H = 3600.0
V1 = MedicationPlan(1, DAY - 86_400, "Europe/Ljubljana", (Drug("bisoprolol", "5 mg", ("08:00", "20:00")),), 60, 180)


def doses_of(*plans: MedicationPlan, days: float = 1) -> list[tuple[int, object]]:
    return planned_doses(plans, DAY, DAY + days * 86_400)  # type: ignore[return-value]


def test_each_version_plans_the_doses_of_its_own_span() -> None:
    v2 = MedicationPlan(2, DAY + 12 * H, "Europe/Ljubljana", (Drug("bisoprolol", "2.5 mg", ("21:00",)),))
    got = planned_doses([v2, V1], DAY, DAY + 86_400)
    assert [(v, d.dose, (d.planned - DAY) / H) for v, d in got] == [(1, "5 mg", 8.0), (2, "2.5 mg", 21.0)]


def record(kind: str, planned_h: float, at_h: float, note: str = "", seq: int = 0) -> DoseRecord:
    return DoseRecord(kind, "bisoprolol", DAY + planned_h * H, DAY + at_h * H, note, seq)


def test_the_status_of_every_dose_from_the_events_received() -> None:
    drugs = (Drug("bisoprolol", "5 mg", ("02:00", "08:00", "14:00", "20:00")), Drug("apixaban", "5 mg", ("08:00", "20:00")))
    plan = MedicationPlan(1, 0.0, "Europe/Ljubljana", drugs, 60, 180)
    planned = planned_doses([plan], DAY, DAY + 86_400)
    records = [
        record("dose_taken", 2, 1.5),  # early: on time
        record("dose_snoozed", 8, 8.1), record("dose_taken", 8, 9.5), record("dose_skipped", 8, 9.6),  # late wins
        record("dose_skipped", 14, 14.2, "side effects"),
        DoseRecord("dose_missed", "apixaban", DAY + 8 * H, DAY + 11 * H),
        DoseRecord("dose_taken", "warfarin", DAY + 8 * H, DAY + 8 * H),  # not planned: ignored
    ]
    now = DAY + 23.4 * H  # the 20:00 doses closed at 23:00, 24 minutes ago: not yet unconfirmed
    got = {(d.drug, (d.planned - DAY) / H): d for d in outcomes(planned, records, now, unconfirmed_after_s=1800)}
    assert {k: d.status for k, d in got.items()} == {
        ("bisoprolol", 2.0): "on_time", ("bisoprolol", 8.0): "late", ("bisoprolol", 14.0): "skipped",
        ("bisoprolol", 20.0): "pending", ("apixaban", 8.0): "missed", ("apixaban", 20.0): "pending",
    }  # fmt: skip
    assert got[("bisoprolol", 8.0)].snoozes == 1 and got[("bisoprolol", 8.0)].answered_at == DAY + 9.5 * H
    assert got[("bisoprolol", 14.0)].reason == "side effects"
    later = {(d.drug, (d.planned - DAY) / H): d.status for d in outcomes(planned, records, DAY + 23.5 * H, 1800)}
    assert later[("bisoprolol", 20.0)] == later[("apixaban", 20.0)] == "unconfirmed"


def outcome(status: str, i: int) -> DoseOutcome:
    return DoseOutcome("x", "1", False, 1, i * H, i * H + 60, i * H + 120, status)


def test_shares_and_runs_of_doses_not_taken() -> None:
    statuses = ["on_time", "missed", "unconfirmed", "skipped", "late", "missed", "on_time", "missed", "pending"]
    (x,) = summarize([outcome(s, i) for i, s in enumerate(statuses)])
    counts = (x.planned, x.taken_on_time, x.taken_late, x.skipped, x.missed, x.unconfirmed, x.pending)
    assert counts == (9, 2, 1, 1, 3, 1, 1)
    assert x.share_on_time == 0.25 and x.longest_missed_streak == 3 and x.current_missed_streak == 1
    (only_pending,) = summarize([outcome("pending", 0)])
    assert only_pending.share_on_time is None and not adherence.is_low([only_pending], 0.8)
    assert adherence.is_low([x], 0.8) and not adherence.is_low([x], 0.25)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.sampled_from(["on_time", "late", "skipped", "missed", "unconfirmed", "pending"]), min_size=1))
def test_the_figures_always_add_up(statuses: list[str]) -> None:
    (x,) = summarize([outcome(s, i) for i, s in enumerate(statuses)])
    assert x.taken_on_time + x.taken_late + x.skipped + x.missed + x.unconfirmed + x.pending == x.planned
    decided = x.planned - x.pending
    assert x.share_on_time == (round(x.taken_on_time / decided, 4) if decided else None)
    assert 0 <= x.current_missed_streak <= x.longest_missed_streak <= x.skipped + x.missed + x.unconfirmed
    if not {"skipped", "missed", "unconfirmed"} & set(statuses):
        assert x.longest_missed_streak == 0


@pytest.mark.db
@pytest.mark.mqtt
def test_confirmations_through_the_broker_are_stored_once_and_make_the_figures(
    ingestor: Ingestor, db_url: str, mqtt_url: str, device_id: str, patient_id: int
) -> None:
    with psycopg.connect(db_url, autocommit=True) as conn:
        medication.record_plan(conn, patient_id, None, V1, "start", since=datetime.fromtimestamp(V1.since, LJ))
    morning, evening = schedule(V1, DAY, DAY + 86_400)
    taken = Event(device_id, 10, EventType.DOSE_TAKEN, morning.planned + 600, drug="bisoprolol", planned=morning.planned)
    snoozed = Event(device_id, 11, EventType.DOSE_SNOOZED, evening.planned + 60, drug="bisoprolol",
                    planned=evening.planned)  # fmt: skip
    topic = topic_for(device_id, Kind.EVENT)
    publish(mqtt_url, [(topic, encode(taken)), (topic, encode(snoozed)), (topic, encode(taken))])
    wait_for(lambda: ingestor.counters.duplicates >= 1 and ingestor.counters.stored >= 2, what="stored once")
    now = evening.closes_at + 3600  # the evening dose closed an hour ago without an answer
    with psycopg.connect(db_url) as conn:
        rows = conn.execute("SELECT type, drug, extract(epoch FROM planned_at) FROM events WHERE device_id = %s"
                            " ORDER BY seq", (device_id,)).fetchall()  # fmt: skip
        before = adherence.adherence(conn, patient_id, DAY, DAY + 86_400, now=now)
    assert rows == [("dose_taken", "bisoprolol", morning.planned), ("dose_snoozed", "bisoprolol", evening.planned)]
    assert [(d.planned, d.taken_on_time, d.unconfirmed, d.share_on_time) for d in before] == [(2, 1, 1, 0.5)]

    late = Event(device_id, 12, EventType.DOSE_TAKEN, evening.on_time_until + 60, drug="bisoprolol",
                 planned=evening.planned)  # the phone was offline; its answer arrives now  # fmt: skip
    publish(mqtt_url, [(topic, encode(late))])
    wait_for(lambda: ingestor.counters.stored >= 3, what="the late answer")
    with psycopg.connect(db_url) as conn:
        (after,) = adherence.adherence(conn, patient_id, DAY, DAY + 86_400, now=now)
        history = adherence.dose_history(conn, patient_id, DAY, DAY + 86_400, now=now)
    assert (after.taken_on_time, after.taken_late, after.unconfirmed, after.share_on_time) == (1, 1, 0, 0.5)
    assert [(d.status, d.snoozes) for d in history] == [("on_time", 0), ("late", 1)]
