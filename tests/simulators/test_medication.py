"""Simulated patients take their doses: seeded habits with pinned doses and ground truth, and a day of a
patient through the real agent, broker, ingest and database, scored against that truth."""

from __future__ import annotations

import asyncio
import json
from dataclasses import replace
from datetime import datetime, timezone
from pathlib import Path

import psycopg
import pytest

from server import adherence, medication
from server.ingest import Ingestor
from server.settings import ServerSettings
from server.store import add_patient
from simulators.medication import MedicationScript, dose_truth, hr_offsets
from wire.medication import schedule
from simulators.patient import run_patient
from simulators.scenarios import Scenario, load_scenario
from simulators.truth import scenario_doses
from tests.server.helpers import forget_session, wait_for

START = datetime(2026, 5, 4, 5, 0, tzinfo=timezone.utc).timestamp()  # 07:00 in Ljubljana


def test_habits_are_seeded_and_pinned_doses_do_what_they_say() -> None:
    scenario = load_scenario("medication")
    truth = scenario_doses(scenario, START, 2 * 86_400)
    assert truth == scenario_doses(scenario, START, 2 * 86_400)  # the same seed, the same patient
    bisoprolol = [t.behaviour for t in truth if t.drug == "bisoprolol"]
    assert bisoprolol[:3] == ["on_time", "forgotten", "forgotten"]
    by_drug = {t.drug: t for t in reversed(truth)}
    assert by_drug["apixaban"].behaviour == "late"
    for t in truth:
        assert (t.tap is None) == (t.behaviour == "forgotten")
    script = scenario.medication
    assert script is not None
    often = MedicationScript(script.plan, (("forgotten", 1.0),))
    assert {t.behaviour for t in dose_truth(often, often.plan_at(START), START, 3 * 86_400, 1)} == {"forgotten"}
    hourly = {"time_zone": "UTC", "on_time_minutes": 60, "drugs": [{"name": "a", "dose": "1", "times": ["00:00"],
                                                                     "every_hours": 1, "start": "2026-05-04"}]}  # fmt: skip
    late = MedicationScript.from_dict({**hourly, "taking": {"late": 1.0}})
    plan = late.plan_at(START)
    doses = {d.planned: d for d in schedule(plan, START, START + 6 * 3600)}
    for t in dose_truth(late, plan, START, 6 * 3600, 1):  # no late window left: a late tap would score on time
        assert t.behaviour == "on_time" and t.tap is not None and t.tap <= doses[t.planned].on_time_until


def test_a_rate_control_dose_taken_lowers_the_heart_rate_and_a_forgotten_one_does_not() -> None:
    scenario = load_scenario("medication")
    assert scenario.medication is not None
    truth = scenario_doses(scenario, START, 2 * 86_400)
    slowed = replace(scenario, hr_offsets=hr_offsets(scenario.medication, truth, START))
    taken, forgotten = (next(t for t in truth if t.drug == "bisoprolol" and t.behaviour == b) for b in ("on_time",
                                                                                                       "forgotten"))
    assert taken.tap is not None
    two_hours_after = taken.tap - START + 2 * 3600
    assert slowed.hr_at(two_hours_after) == pytest.approx(scenario.hr_at(two_hours_after) - 12)
    assert slowed.hr_at(taken.tap - START - 60) == scenario.hr_at(taken.tap - START - 60)
    after_forgotten = forgotten.planned - START + 2 * 3600
    assert slowed.hr_at(after_forgotten) == scenario.hr_at(after_forgotten)


def test_a_bad_medication_block_is_a_clear_error(tmp_path: Path) -> None:
    bad = {"name": "x", "medication": {"time_zone": "Europe/Ljubljana", "drugs": [{"name": "a", "dose": "1",
                                                                                "times": ["8:00"]}]}}  # fmt: skip
    with pytest.raises(ValueError, match=r"medication\.drugs\[0\]\.times\[0\]"):
        Scenario.from_dict(bad)
    habits = {"name": "x", "medication": {"time_zone": "UTC", "drugs": [], "taking": {"sometimes": 1}}}
    with pytest.raises(ValueError, match="taking"):
        Scenario.from_dict(habits)
    strong = {"name": "x", "medication": {"time_zone": "UTC", "drugs": [], "effects": {"a": {"hr_bpm": -90, "hours": 1}}}}
    with pytest.raises(ValueError, match="effects"):
        Scenario.from_dict(strong)
    misspelt = {"name": "x", "medication": {**bad["medication"], "drugs": [{"name": "a", "dose": "1", "times": ["08:00"]}],
                                            "doses": [{"drug": "A ", "n": 0, "do": "late"}]}}  # fmt: skip
    with pytest.raises(ValueError, match="not among the plan's drugs"):
        Scenario.from_dict(misspelt)
    with pytest.raises(ValueError, match="malformed"):
        Scenario.from_dict({"name": "x", "medication": {**misspelt["medication"], "doses": [{"drug": "a"}]}})
    path = tmp_path / "s.json"
    path.write_text(json.dumps({**bad, "medication": {**bad["medication"], "doses": [{"drug": "a", "n": 0, "do": "x"}]}}))
    with pytest.raises(ValueError, match="dose behaviour"):
        load_scenario(path)


@pytest.mark.db
@pytest.mark.mqtt
@pytest.mark.e2e
def test_a_day_of_doses_reaches_the_database_as_the_ground_truth_says(
    db_url: str, mqtt_url: str, device_id: str, tmp_path: Path
) -> None:
    scenario, duration = load_scenario("medication"), 26 * 3600.0
    assert scenario.medication is not None
    with psycopg.connect(db_url, autocommit=True) as conn:
        patient = add_patient(conn, "Sim Dose", device_id)
        row = medication.record_plan(conn, patient, None, scenario.medication.plan_at(START), "simulated",
                                     since=datetime.fromtimestamp(START, timezone.utc))  # fmt: skip
        plan = medication.get_plan(conn, row)
    assert plan is not None
    settings = ServerSettings(database_url=db_url, mqtt_url=mqtt_url, mqtt_client_id=f"ingest-{device_id}",
                              ingest_in_server=False, mqtt_protocol="5")  # fmt: skip
    worker = Ingestor(settings)
    worker.start()
    try:
        report = asyncio.run(run_patient(
            scenario, device_id, mqtt_url, tmp_path / "o.sqlite3", start_time=START, duration_s=duration, speed=0,
            window_seconds=60, batch_windows=10, strap="hrs", plan=plan.to_wire(),
            ground_truth_path=tmp_path / "truth.json",
        ))  # fmt: skip
        assert report.drained and report.dose_errors == 0
        truth = json.loads((tmp_path / "truth.json").read_text())["doses"]
        end = START + duration - 60  # the last notification's time, about
        happened = [t for t in truth if (t["tap"] if t["tap"] is not None else t["closes_at"]) < end]
        wait_for(lambda: _dose_events(db_url, device_id) >= len(happened), timeout=30, what="the dose events")
    finally:
        worker.stop()
        forget_session(mqtt_url, settings.mqtt_client_id)
    with psycopg.connect(db_url) as conn:
        got = {(d.drug, d.planned): d for d in adherence.dose_history(conn, patient, START, START + duration)}
    assert sorted(got) == sorted((t["drug"], t["planned"]) for t in truth)
    status = {"on_time": "on_time", "late": "late", "skipped": "skipped", "forgotten": "missed"}
    for t in truth:
        d = got[(t["drug"], t["planned"])]
        if t in happened:
            assert (d.status, d.answered_at) == (status[t["behaviour"]], pytest.approx(t["tap"] or t["closes_at"]))
        else:  # the run ended before the patient tapped or the dose closed: the phone fell silent
            assert d.status == "unconfirmed"
    assert {got[(t["drug"], t["planned"])].status for t in happened} == {"on_time", "late", "skipped", "missed"}
    assert report.dose_taps == len([t for t in happened if t["tap"] is not None])


def _dose_events(db_url: str, device: str) -> int:
    with psycopg.connect(db_url) as conn:
        row = conn.execute("SELECT count(*) FROM events WHERE device_id = %s AND drug IS NOT NULL", (device,))
        return int(row.fetchone()[0])  # type: ignore[index]
