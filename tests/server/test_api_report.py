"""The visit report and visits over a live server and the real database, with data through the ingest path."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
import time
from typing import Any

import psycopg
import pytest

from server import medication
from tests.server.helpers import refresh_as_the_policy_would
from tests.server.test_api import World, client, ingest, world  # noqa: F401 - `world` is a fixture
from wire import Event, EventType, Strip, Summary, SummaryWindow
from wire.medication import Drug, MedicationPlan, ScheduledDose, schedule

pytestmark = pytest.mark.db

T = 1_735_689_600.0  # 2025-01-01T00:00:00Z, winter (Ljubljana is UTC+1), apart from the other API tests
W = 600.0  # ten-minute windows


def iso(t: float) -> str:
    return datetime.fromtimestamp(t, timezone.utc).isoformat().replace("+00:00", "Z")


def block(device: str, seq: int, t0: float, n: int, hr: float, quality: float = 0.9, **fields: Any) -> Summary:
    """``n`` ten-minute windows from ``t0`` at ``hr`` bpm (700 beats each)."""
    return Summary(device, seq, tuple(
        SummaryWindow(start=t0 + W * i, end=t0 + W * (i + 1), beats=700, hr_mean=hr, hr_min=hr - 8, hr_max=hr + 12,
                      rmssd=30.0, resp_rate=15.0, quality=quality, activity="rest", **fields)
        for i in range(n)
    ))  # fmt: skip


H = 3600.0
# Day 0 (1 Jan, UTC): 10 h quiet with 2 ectopic beats a window; 1 h flagged AF; 1 h of noise at 160 bpm;
# 30 min at 115 bpm (beyond the NEWS2 yellow limit of 111); 30 min quiet; one window with a 3.4 s pause.
# Day 1: 4 h quiet at 72 bpm. A symptom period during the AF hour with its strip, one on day 1 without.
MONITORED_S = (60 + 6 + 3 + 3 + 1 + 24) * W
HR_WINDOWS = [(60, 70.0), (6, 95.0), (3, 115.0), (3, 70.0), (1, 60.0), (24, 72.0)]


@pytest.fixture(scope="module")
def data(world: World) -> World:  # noqa: F811
    d = world.mine_device
    ingest(world, d, block(d, 1, T - 3 * 86400, 3, 140.0))  # before the report: a tachycardia, opens an alert
    ingest(world, d, block(d, 2, T - 3 * 86400 + 3 * W, 3, 70.0))  # ... which the rules resolve
    ingest(world, d, block(d, 3, T, 60, 70.0, ectopic=2))
    ingest(world, d, Event(d, 4, EventType.SYMPTOM_START, T + 10 * H + 600, period="af", tags=("palpitations",),
                           severity=4, note="heart racing"))  # fmt: skip
    ingest(world, d, block(d, 5, T + 10 * H, 6, 95.0, flags=("af_suspected", "irregular")))
    ingest(world, d, Strip(d, 6, T + 10 * H + 900, 250.0, "symptom", tuple(int(800 * ((i % 200) < 8)) for i in range(2500)),
                           ref_seq=4))  # fmt: skip
    ingest(world, d, Event(d, 7, EventType.SYMPTOM_STOP, T + 10 * H + 2400, period="af"))
    ingest(world, d, block(d, 8, T + 11 * H, 6, 160.0, quality=0.2, flags=("tachy",)))
    ingest(world, d, block(d, 9, T + 12 * H, 3, 115.0))
    ingest(world, d, block(d, 10, T + 12.5 * H, 3, 70.0))
    ingest(world, d, block(d, 11, T + 13 * H, 1, 60.0, flags=("pause",), pause_max=3.4))
    ingest(world, d, block(d, 12, T + 86400, 24, 72.0))
    ingest(world, d, Event(d, 13, EventType.SYMPTOM_START, T + 86400 + 2 * H, period="tired", tags=("tired",)),
           Event(d, 14, EventType.SYMPTOM_STOP, T + 86400 + 2 * H + 600, period="tired"),
           Event(d, 15, EventType.PANIC, T + 86400 + 3 * H))  # fmt: skip
    refresh_as_the_policy_would(world.db_url)  # the rollups the series read (TimescaleDB)
    return world


def report(w: World, user: str, **params: object) -> dict[str, Any]:
    with client(w, user) as c:
        r = c.get(f"/api/patients/{w.mine}/report", params={"end": iso(T + 2 * 86400), **params})
    assert r.status_code == 200, r.text
    return r.json()


def section(model: dict[str, Any], key: str) -> dict[str, Any]:
    return next(s["body"] for s in model["sections"] if s["key"] == key)


def test_rhythm_and_completeness_are_counted_from_the_stored_windows(data: World) -> None:
    model = report(data, data.nurse, start=iso(T))
    rhythm = section(model, "rhythm")
    assert rhythm["monitored_h"] == round(MONITORED_S / H, 2)  # the noisy hour is not monitored time
    assert rhythm["af_h"] == 1.0 and rhythm["af_burden_pct"] == round(100 * H / MONITORED_S, 2)
    assert (rhythm["pause_windows"], rhythm["long_pauses"]) == (1, 1)
    assert rhythm["longest_pauses"][0]["seconds"] == pytest.approx(3.4) and rhythm["longest_pauses"][0]["start"] == iso(T + 13 * H)
    assert rhythm["ectopic_beats"] == 120 and rhythm["ectopic_per_hour"] == 12.0  # 120 over the 10 h that counted them
    assert rhythm["ectopic_pct_of_beats"] == round(100 * 120 / (60 * 700), 2)
    assert [e["flag"] for e in rhythm["episode_counts"]] == ["af_suspected", "irregular", "pause"]  # noise makes no episode
    days = section(model, "completeness")["days"]
    assert [(d["day"], d["good_h"], d["recorded_h"], d["short"]) for d in days] == [
        ("2025-01-01", round(73 * W / H, 2), round(79 * W / H, 2), False), ("2025-01-02", 4.0, 4.0, True)]


def test_trends_against_the_limits_in_force(data: World) -> None:
    trends = section(report(data, data.nurse, start=iso(T)), "trends")
    hr = next(s for s in trends["stats"] if s["parameter"] == "hr")
    n = sum(k for k, _ in HR_WINDOWS)
    assert hr["windows"] == n and hr["mean"] == round(sum(k * v for k, v in HR_WINDOWS) / n)
    assert (hr["low"], hr["high"]) == (52.0, 127.0)  # the noisy 160 bpm windows do not count
    assert hr["beyond_yellow_pct"] == round(100 * 3 / n, 2) and hr["beyond_red_pct"] == 0.0
    assert {b["parameter"] for b in trends["limits"]} == {"hr", "resp_rate"} and trends["limits"][0]["source"] == "NEWS2"
    assert trends["bucket_s"] == 300 and sum(p["windows"] for p in trends["series"]) == 79 + 24


def test_alerts_of_the_period_with_their_outcomes(data: World) -> None:
    with psycopg.connect(data.db_url) as conn:
        panic = conn.execute("SELECT id FROM alerts WHERE patient_id = %s AND parameter = 'panic'", (data.mine,)).fetchone()
    assert panic is not None
    with client(data, data.nurse) as c:
        assert c.post(f"/api/alerts/{panic[0]}/notes", json={"note": "called: she had dropped the phone"}).status_code == 201
        assert c.post(f"/api/alerts/{panic[0]}/acknowledge", json={"note": "no harm"}).status_code == 200
    alerts = section(report(data, data.nurse, start=iso(T)), "alerts")
    with psycopg.connect(data.db_url) as conn:
        expected = conn.execute(
            "SELECT id, level, parameter, extract(epoch FROM acked_at - opened_at),"
            " level = 'red' OR acked_at IS NOT NULL OR resolved_by IS NOT NULL"
            " OR EXISTS (SELECT 1 FROM alert_history h WHERE h.alert_id = a.id AND h.kind = 'note')"
            " FROM alerts a WHERE patient_id = %s AND opened_at < %s AND COALESCE(closed_at, 'infinity') > %s"
            " ORDER BY opened_at, id",
            (data.mine, datetime.fromtimestamp(T + 2 * 86400, timezone.utc), datetime.fromtimestamp(T, timezone.utc)),
        ).fetchall()  # fmt: skip
    assert [(a["id"], a["level"], a["parameter"]) for a in alerts["alerts"]] == [r[:3] for r in expected if r[4]]
    assert alerts["total"] == len(expected) and sum(g["alerts"] for g in alerts["groups"]) == len(expected)
    chart = section(report(data, data.nurse, start=iso(T)), "trends")["alerts"]  # every one, on the chart
    assert [(m["id"], m["level"]) for m in chart] == [r[:2] for r in expected]
    assert alerts["not_listed"] == sum(not r[4] for r in expected) > 0
    kinds = {(g["parameter"], g["level"]) for g in alerts["groups"]}
    assert {("hr", "yellow"), ("pause", "red"), ("panic", "red")} <= kinds  # not the red tachycardia before
    assert ("hr", "red") not in kinds
    got = next(a for a in alerts["alerts"] if a["id"] == panic[0])
    assert (got["acked_by"], got["ack_note"]) == (data.nurse, "no harm")
    assert got["seconds_to_ack"] == round(float(next(r[3] for r in expected if r[0] == panic[0])), 1)
    assert [(n["by"], n["note"]) for n in got["notes"]] == [(data.nurse, "called: she had dropped the phone")]
    hr = next(g for g in alerts["groups"] if g["parameter"] == "hr")
    assert (hr["alerts"], hr["resolved_by_rules"], hr["acknowledged"]) == (1, 1, 0)


def test_symptom_periods_with_what_the_data_showed_and_their_strips(data: World) -> None:
    symptoms = section(report(data, data.nurse, start=iso(T)), "symptoms")
    fast, tired = symptoms["periods"]
    assert (fast["period"]["tags"], fast["period"]["severity"], fast["notable"], fast["strip_shown"]) == (
        ["palpitations"], 4, True, True)
    assert fast["finding"] == "HR 95 bpm (87–107), AF suspected, irregular rhythm"
    assert (tired["notable"], tired["strip"]) == (False, None)
    (strip,) = symptoms["strips"]
    assert (strip["device_id"], strip["seq"], strip["duration_s"]) == (data.mine_device, 6, 10.0)


def test_days_follow_the_requested_time_zone(data: World) -> None:
    days = section(report(data, data.nurse, start=iso(T), tz="Europe/Ljubljana"), "completeness")["days"]
    # 1 Jan 00:00Z is 01:00 in Ljubljana: that day has 23 h in the period, the last one 1 h
    assert [(d["day"], d["span_h"]) for d in days] == [("2025-01-01", 23.0), ("2025-01-02", 24.0), ("2025-01-03", 1.0)]
    assert [d["good_h"] for d in days] == [round(73 * W / H, 2), 4.0, 0.0]


def utc(t: float) -> datetime:
    return datetime.fromtimestamp(t, timezone.utc)


BISO = Drug("bisoprolol", "5 mg", ("08:00", "20:00"), critical=True)
APIX = Drug("apixaban", "5 mg", ("09:00",))


@pytest.fixture(scope="module")
def medicated(data: World) -> World:
    """A plan from the day before the report (bisoprolol 5 mg, halved on day 1 by version 2), and the phone's
    answers through the ingest path: bisoprolol taken, skipped, missed, then nothing; apixaban taken twice."""
    v1 = MedicationPlan(1, T - 86400, "Europe/Ljubljana", (BISO, APIX))
    v2 = MedicationPlan(2, T + 86400, "Europe/Ljubljana", (Drug("bisoprolol", "2.5 mg", BISO.times, critical=True), APIX))
    with psycopg.connect(data.db_url, autocommit=True) as conn:
        for plan, reason in ((v1, "started"), (v2, "HR low: halved")):
            medication.record_plan(conn, data.mine, None, plan, reason, since=utc(plan.since))
    doses = schedule(v1, T, T + 86400) + schedule(v2, T + 86400, T + 2 * 86400)
    biso = [d for d in doses if d.drug == "bisoprolol"]
    apix = [d for d in doses if d.drug == "apixaban"]
    assert (len(biso), len(apix)) == (4, 2)
    d = data.mine_device

    def said(seq: int, kind: EventType, dose: ScheduledDose, at: float, note: str = "") -> Event:
        return Event(d, seq, kind, at, drug=dose.drug, planned=dose.planned, note=note)

    ingest(data, d, said(101, EventType.DOSE_TAKEN, biso[0], biso[0].planned + 300),
           said(102, EventType.DOSE_SNOOZED, biso[1], biso[1].planned + 60),
           said(103, EventType.DOSE_SKIPPED, biso[1], biso[1].planned + 900, note="felt dizzy"),
           said(104, EventType.DOSE_MISSED, biso[2], biso[2].closes_at),  # and nothing at all for biso[3]
           said(105, EventType.DOSE_TAKEN, apix[0], apix[0].planned - 1200),  # taken early: on time
           said(106, EventType.DOSE_TAKEN, apix[1], apix[1].on_time_until + 600))  # late  # fmt: skip
    return data


def test_adherence_per_drug_from_the_doses_the_phone_sent(medicated: World) -> None:
    model = report(medicated, medicated.nurse, start=iso(T))
    body = section(model, "adherence")
    apix, biso = body["drugs"]
    assert (biso["drug"], biso["dose"], biso["critical"], apix["critical"]) == ("bisoprolol", "2.5 mg", True, False)
    assert [biso[k] for k in ("planned", "taken_on_time", "taken_late", "skipped", "missed", "unconfirmed",
                              "pending", "longest_missed_streak", "current_missed_streak")] == [4, 1, 0, 1, 1, 1, 0, 3, 3]
    assert (biso["on_time_pct"], biso["low"], biso["skip_reasons"]) == (25.0, True, [{"reason": "felt dizzy", "doses": 1}])
    assert [apix[k] for k in ("planned", "taken_on_time", "taken_late", "on_time_pct", "low")] == [2, 1, 1, 50.0, True]
    assert [(v["version"], v["reason"], v["drugs"]) for v in body["plan_versions"]] == [
        (1, "started", 2), (2, "HR low: halved", 2)]
    assert (body["low"], body["flag"], body["low_share_pct"], body["recent_days"]) == (True, "low adherence", 80.0, None)
    headline = next(s["headline"] for s in model["sections"] if s["key"] == "adherence")
    assert headline == "Below 80 % on time: bisoprolol (critical) 25 %, 3 doses in a row not taken; apixaban 50 %."
    with client(medicated, medicated.nurse) as c:  # the figures are the adherence API's own
        api = c.get(f"/api/patients/{medicated.mine}/adherence", params={"start": iso(T), "end": iso(T + 2 * 86400)})
    assert [{k: d[k] for k in a} for d, a in zip(body["drugs"], api.json()["drugs"])] == api.json()["drugs"]


def test_no_medication_plan_only_when_none_was_in_force(medicated: World) -> None:
    before = section(report(medicated, medicated.nurse, start=iso(T - 3 * 86400), end=iso(T - 86400)), "adherence")
    assert (before["plan_recorded"], before["message"], before["drugs"]) == (False, "no medication plan recorded", [])
    first_hours = section(report(medicated, medicated.nurse, start=iso(T - 86400), end=iso(T - 86400 + 3600)),
                          "adherence")  # fmt: skip
    assert (first_hours["plan_recorded"], first_hours["message"]) == (True, "no doses planned in this period")
    assert [v["version"] for v in first_hours["plan_versions"]] == [1]


def test_a_visit_starts_the_next_period_and_corrections_are_kept(data: World) -> None:
    end = T + 2 * 86400
    assert report(data, data.nurse)["period"]["basis"] == "default"  # never visited: the last 30 days
    assert report(data, data.nurse)["period"]["start"] == iso(end - 30 * 86400)
    with client(data, data.nurse) as c:
        first = c.post(f"/api/patients/{data.mine}/visits", json={"visited_at": iso(T + 6 * H), "note": "started bisoprolol"})
        assert first.status_code == 201, first.text
        fixed = c.post(f"/api/patients/{data.mine}/visits", json={"visited_at": iso(T), "note": "started bisoprolol 2.5 mg",
                                                                   "corrects": first.json()["id"]})  # fmt: skip
        assert fixed.status_code == 201
        again = c.post(f"/api/patients/{data.mine}/visits", json={"corrects": first.json()["id"]})
        assert again.status_code == 422 and "corrects" in again.json()["detail"]  # already replaced
        rows = c.get(f"/api/patients/{data.mine}/visits").json()
    assert [(r["id"], r["current"], r["corrects"], r["recorded_by"]) for r in rows] == [
        (first.json()["id"], False, None, data.nurse), (fixed.json()["id"], True, first.json()["id"], data.nurse)]
    model = report(data, data.nurse)
    assert (model["period"]["basis"], model["period"]["start"]) == ("since_visit", iso(T))
    assert model["period"]["visit"]["note"] == "started bisoprolol 2.5 mg"
    # a report that ends before the visit starts from the visit before it (none: the default)
    assert report(data, data.nurse, end=iso(T - H))["period"]["basis"] == "default"
    with client(data, data.nurse) as c:
        gone = c.post(f"/api/patients/{data.mine}/visits", json={"corrects": fixed.json()["id"], "withdrawn": True,
                                                                  "note": "wrong patient"})  # fmt: skip
        assert gone.status_code == 201 and gone.json()["visited_at"] == iso(T)
    assert report(data, data.nurse)["period"]["basis"] == "default"
    with psycopg.connect(data.db_url) as conn, pytest.raises(psycopg.errors.RaiseException, match="append-only"):
        conn.execute("UPDATE visits SET note = 'rewritten' WHERE id = %s", (first.json()["id"],))


@pytest.mark.parametrize(("path", "params", "field"), [
    ("report", {"tz": "Mars/Olympus"}, "tz"), ("report", {"start": iso(T + 86400), "end": iso(T)}, "end"),
    ("report", {"start": iso(T - 500 * 86400), "end": iso(T)}, "end"), ("report", {"start": "yesterday"}, "start"),
    ("report", {"start": iso(T + 3650 * 86400)}, "start"),
])  # fmt: skip
def test_bad_report_parameters_are_422_naming_them(data: World, path: str, params: dict, field: str) -> None:
    with client(data, data.nurse) as c:
        r = c.get(f"/api/patients/{data.mine}/{path}", params=params)
    assert r.status_code == 422 and field in str(r.json()["detail"]), r.text


@pytest.mark.parametrize(("body", "field"), [
    ({"visited_at": iso(T + 3650 * 86400)}, "visited_at"), ({"withdrawn": True}, "withdrawn"),
    ({"corrects": 999_999_999}, "corrects"), ({"note": "x" * 4001}, "note"), ({"visited_at": "soon"}, "visited_at"),
    ({"visited_at": "0001-01-01T00:00:00Z"}, "visited_at"),
])  # fmt: skip
def test_bad_visits_are_422_naming_the_field_and_store_nothing(data: World, body: dict, field: str) -> None:
    with client(data, data.nurse) as c:
        before = len(c.get(f"/api/patients/{data.mine}/visits").json())
        r = c.post(f"/api/patients/{data.mine}/visits", json=body)
        assert r.status_code == 422 and field in str(r.json()["detail"]), r.text
        assert len(c.get(f"/api/patients/{data.mine}/visits").json()) == before


def test_reports_and_visits_are_for_the_patients_carers_and_audited(data: World) -> None:
    with client(data, data.other_nurse) as c:
        assert c.get(f"/api/patients/{data.mine}/report").status_code == 404
        assert c.get(f"/api/patients/{data.mine}/visits").status_code == 404
        assert c.post(f"/api/patients/{data.mine}/visits", json={"note": "x"}).status_code == 404
    report(data, data.admin, start=iso(T))
    with psycopg.connect(data.db_url) as conn:
        rows = conn.execute(
            "SELECT u.username, a.detail->>'start' FROM audit_log a JOIN users u ON u.id = a.user_id"
            " WHERE a.action = 'read:report' AND a.patient_id = %s", (data.mine,)).fetchall()  # fmt: skip
    assert (data.admin, "2025-01-01 00:00:00+00:00") in rows


def test_a_period_with_more_alerts_than_a_report_reads_says_so(data: World, monkeypatch: pytest.MonkeyPatch) -> None:
    from server.report import reads

    everything = section(report(data, data.nurse, start=iso(T)), "alerts")
    assert everything["total"] >= 2 and not everything["more"]
    monkeypatch.setattr(reads, "MAX_ALERTS", everything["total"] - 1)
    model = report(data, data.nurse, start=iso(T))
    alerts = section(model, "alerts")
    assert alerts["more"] and alerts["total"] == everything["total"] - 1
    assert f"{alerts['total']}+ alert" in str(model)  # the headline says there are more


def test_correcting_only_a_visits_time_keeps_its_note(data: World) -> None:
    from server import visits
    from server.store import add_patient

    now = datetime.now(timezone.utc)
    with psycopg.connect(data.db_url) as conn:
        pid = add_patient(conn, "Visit Note", f"visit-note-{now.timestamp():.0f}")
        conn.commit()
        user = conn.execute("SELECT id FROM users WHERE username = %s", (data.nurse,)).fetchone()[0]
        first = visits.record_visit(conn, pid, user, now - timedelta(days=2), "started bisoprolol", now)
        moved = visits.record_visit(conn, pid, user, now - timedelta(days=3), None, now, corrects=first.id)
        cleared = visits.record_visit(conn, pid, user, None, "", now, corrects=moved.id)
    assert (moved.note, moved.visited_at) == ("started bisoprolol", now - timedelta(days=3))
    assert (cleared.note, cleared.visited_at) == ("", moved.visited_at)  # an explicit "" still clears it


def test_a_report_ends_now_at_the_latest_and_takes_zones_from_the_iana_list_only(data: World) -> None:
    model = report(data, data.nurse, start=iso(time.time() - 10 * 86400), end=iso(time.time() + 5 * 86400))
    assert datetime.fromisoformat(model["period"]["end"]) <= datetime.now(timezone.utc)
    with client(data, data.nurse) as c:
        r = c.get(f"/api/patients/{data.mine}/report", params={"tz": "localtime"})
    assert r.status_code == 422 and "tz" in r.text
