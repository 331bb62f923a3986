"""Dose reminders on the phone with a real outbox: answers and missed doses as events, stored with the book,
kept across a restart, and never recorded twice when the disk refuses a write; the app's dose API."""

from __future__ import annotations

import sqlite3
import threading
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

from edge.agent import EdgeAgent
from edge.app.status import status_of
from edge.doses import DOSE_BOOK_STATE, DoseKeeper
from edge.outbox import Outbox
from simulators.scenarios import load_scenario
from simulators.wearable import VirtualWearable
from tests.edge.test_app import AppClient
from wire import Config, Event, EventType, Summary, SummaryWindow, decode
from wire.medication import Drug, MedicationPlan

DAY = datetime(2026, 6, 1, tzinfo=ZoneInfo("Europe/Ljubljana")).timestamp()
H = 3600.0
PLAN = MedicationPlan(1, DAY - 86_400, "Europe/Ljubljana",
                      (Drug("bisoprolol", "5 mg", ("08:00", "20:00")), Drug("apixaban", "5 mg", ("08:00",))))  # fmt: skip


def events(box: Outbox) -> list[Event]:
    return [m for p in box.pending(1000) if isinstance(m := decode(p.payload), Event)]


def test_missed_doses_are_events_stored_with_the_book_and_a_restart_does_not_repeat_them(tmp_path: Path) -> None:
    with Outbox(tmp_path / "o.sqlite3") as box:
        keeper = DoseKeeper(box, "dev-d", {})
        keeper.set_plan(PLAN)
        assert keeper.tick(DAY + 8 * H) == 0 and len(keeper.showing(DAY + 8 * H)) == 2
        taken = keeper.confirm("apixaban", DAY + 8 * H, "taken", DAY + 8.25 * H)
        assert keeper.tick(DAY + 11 * H) == 1  # bisoprolol was never answered
        again = DoseKeeper(box, "dev-d", {})  # a restart reads the book back
        again.set_plan(PLAN)
        assert again.book == keeper.book and again.tick(DAY + 12 * H) == 0
        got = events(box)
    assert [(e.type, e.drug, e.planned, e.time) for e in got] == [
        (EventType.DOSE_TAKEN, "apixaban", DAY + 8 * H, DAY + 8.25 * H),
        (EventType.DOSE_MISSED, "bisoprolol", DAY + 8 * H, DAY + 11 * H),
    ]
    assert taken.seq < got[1].seq


def test_the_app_and_the_agent_reviewing_at_once_record_each_missed_dose_once(tmp_path: Path) -> None:
    with Outbox(tmp_path / "o.sqlite3") as box:
        keeper = DoseKeeper(box, "dev-d", {})
        keeper.set_plan(PLAN)
        keeper.tick(DAY + 8 * H)
        start = threading.Barrier(4)

        def review(showing: bool) -> None:  # the app's status read (a pool thread) or the agent's poll
            start.wait()
            for i in range(200):
                (keeper.showing if showing else keeper.tick)(DAY + 11 * H + i)

        threads = [threading.Thread(target=review, args=(i % 2 == 0,)) for i in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(30)
        got = events(box)
    assert sorted(e.drug or "" for e in got) == ["apixaban", "bisoprolol"]


def test_a_full_disk_delays_the_missed_doses_and_records_each_once(tmp_path: Path) -> None:
    window = SummaryWindow(DAY, DAY + 60, 70, hr_mean=70.0)
    with Outbox(tmp_path / "o.sqlite3", max_pages=16) as box:  # a phone with 64 KiB left for the outbox
        problems: dict[str, int] = {}
        keeper = DoseKeeper(box, "dev-d", problems)
        keeper.set_plan(PLAN)
        keeper.tick(DAY + 8 * H)
        try:
            while True:
                box.put(lambda seq: Summary("dev-d", seq, (window,) * 40))
        except sqlite3.OperationalError:
            pass  # full
        for second in range(5):
            assert keeper.tick(DAY + 11 * H + second) == 0
        assert problems["outbox_errors"] == 1  # refused five times, counted once
        for pending in box.pending(1000):
            box.ack(pending.seq)
        missed = keeper.tick(DAY + 11 * H + 10)
        assert missed == 2 and keeper.tick(DAY + 11 * H + 20) == 0
        got = events(box)
        saved = box.get_state(DOSE_BOOK_STATE)
    assert sorted((e.type, e.drug) for e in got) == [(EventType.DOSE_MISSED, "apixaban"),
                                                       (EventType.DOSE_MISSED, "bisoprolol")]  # fmt: skip
    assert saved is not None and '"state":"missed"' in saved


def test_the_app_shows_due_doses_and_one_tap_answers_them(tmp_path: Path) -> None:
    wearable = VirtualWearable(load_scenario("baseline"), start_time=DAY, duration_s=5, speed=0)
    now = [DAY + 8 * H + 60]
    with Outbox(tmp_path / "o.sqlite3") as box:
        agent = EdgeAgent("dev-app", wearable, box, clock=lambda: now[0])
        agent.apply_config(Config("dev-app", 1, DAY, medication=PLAN))
        with AppClient(agent) as client:
            status = client.get("/api/status").json()
            assert [(d["drug"], d["state"]) for d in status["doses"]] == [("apixaban", "due"), ("bisoprolol", "due")]
            assert status["next_dose"]["planned"] == DAY + 20 * H
            tap = {"drug": "bisoprolol", "planned": DAY + 8 * H}
            assert client.post("/api/dose", json={**tap, "action": "taken", "reason": "x"}).status_code == 422
            assert client.post("/api/dose", json={**tap, "action": "eaten"}).status_code == 422
            assert client.post("/api/dose", json={**tap, "planned": DAY + 9 * H, "action": "taken"}).status_code == 404
            assert client.post("/api/dose", json={**tap, "action": "taken"}).json()["type"] == "dose_taken"
            assert client.post("/api/dose", json={**tap, "action": "skipped"}).status_code == 409
            skip = {"drug": "apixaban", "planned": DAY + 8 * H, "action": "skipped", "reason": "side effects"}
            assert client.post("/api/dose", json=skip).status_code == 200
            assert client.get("/api/status").json()["doses"] == []
            assert "dose" not in " ".join(client.get("/api/status").json()["problems"])
        got = events(box)
        now[0] = DAY + 20 * H  # the evening dose comes by the agent's clock alone, without a notification
        assert [d["drug"] for d in status_of(agent)["doses"]] == ["bisoprolol"]
    assert [(e.type, e.drug, e.note) for e in got] == [(EventType.DOSE_TAKEN, "bisoprolol", ""),
                                                       (EventType.DOSE_SKIPPED, "apixaban", "side effects")]  # fmt: skip
