"""The portal's API over a live server and the real database: search, correlation, trends, strips, scoping."""

from __future__ import annotations

from datetime import datetime, timezone

import psycopg
import pytest

from tests.server.helpers import refresh_as_the_policy_would
from tests.server.test_api import World, client, ingest, world  # noqa: F401 - `world` is a fixture
from wire import Event, EventType, Strip, Summary, SummaryWindow

pytestmark = pytest.mark.db

T = 1_760_000_400.0  # 2025-10-09T09:00:00Z (hour-aligned), apart from the other API tests


def iso(t: float) -> str:
    return datetime.fromtimestamp(t, timezone.utc).isoformat().replace("+00:00", "Z")


def windows(device: str, seq: int, t0: float, specs: list[tuple[float, tuple[str, ...], float]]) -> Summary:
    """One-minute windows from ``t0``: (hr_mean, flags, quality) each; hr_max = mean + 10."""
    return Summary(device, seq, tuple(
        SummaryWindow(start=t0 + 60 * i, end=t0 + 60 * (i + 1), beats=60, hr_mean=hr, hr_min=hr - 5,
                      hr_max=hr + 10, flags=flags, quality=q, resp_rate=15.0, rmssd=30.0, battery=77)
        for i, (hr, flags, q) in enumerate(specs)
    ))  # fmt: skip


def period(device: str, seq: int, name: str, t0: float, t1: float, **details: object) -> list[Event]:
    return [Event(device, seq, EventType.SYMPTOM_START, t0, period=name, **details),  # type: ignore[arg-type]
            Event(device, seq + 1, EventType.SYMPTOM_STOP, t1, period=name)]


@pytest.fixture(scope="module")
def data(world: World) -> World:  # noqa: F811
    d, o = world.mine_device, world.theirs_device
    ok = (70.0, (), 0.9)
    ingest(world, d, windows(d, 1000, T, [ok] * 10))  # baseline: 10 quiet minutes
    # p-fast [T+3600, T+3900): 140 bpm, irregular; a strip inside it
    ingest(world, d, *period(d, 1001, "p-fast", T + 3600, T + 3900, tags=("Palpitations",), severity=4,
                             note="racing heart after stairs"))  # fmt: skip
    ingest(world, d, windows(d, 1003, T + 3600, [(140.0, ("irregular",), 0.9)] * 5))
    ingest(world, d, Strip(d, 1004, T + 3650, 250.0, "symptom", tuple([0] * 500), ref_seq=1001))
    # p-pause [T+7200, T+7500): a pause, heart rate normal
    ingest(world, d, *period(d, 1005, "p-pause", T + 7200, T + 7500, tags=("dizzy",), severity=2, note="stood up"))
    ingest(world, d, windows(d, 1007, T + 7200, [ok, (72.0, ("pause",), 0.9), ok, ok, ok]))
    # p-noisy [T+10800, T+11100): a high heart rate only in noisy windows
    ingest(world, d, *period(d, 1008, "p-noisy", T + 10800, T + 11100, tags=("dizzy",), severity=1))
    ingest(world, d, windows(d, 1010, T + 10800, [(160.0, ("tachy",), 0.2)] * 5))
    # an unmarked tachycardia episode
    ingest(world, d, windows(d, 1011, T + 14400, [(135.0, ("tachy",), 0.9)] * 3))
    # the other clinician's patient: a period matching everything
    ingest(world, o, *period(o, 1001, "theirs", T + 3600, T + 3900, tags=("palpitations",), severity=4,
                             note="racing heart"))  # fmt: skip
    ingest(world, o, windows(o, 1003, T + 3600, [(150.0, ("irregular", "pause"), 0.9)] * 5))
    refresh_as_the_policy_would(world.db_url)  # the rollups the series read (TimescaleDB)
    return world


def search(world: World, user: str, **params: object) -> dict:
    with client(world, user) as c:
        r = c.get("/api/symptoms/search", params={"start": iso(T - 60), **params})
    assert r.status_code == 200, r.text
    return r.json()


def periods(page: dict) -> list[str]:
    return [r["period"] for r in page["results"]]


def test_search_filters_by_what_was_said(data: World) -> None:
    assert periods(search(data, data.nurse)) == ["p-noisy", "p-pause", "p-fast"]
    assert periods(search(data, data.nurse, tag="palpitations")) == ["p-fast"]  # case-insensitive
    assert periods(search(data, data.nurse, tag=["dizzy", "nausea"])) == ["p-noisy", "p-pause"]
    assert periods(search(data, data.nurse, severity_min=2)) == ["p-pause", "p-fast"]
    assert periods(search(data, data.nurse, severity_min=2, severity_max=3)) == ["p-pause"]
    assert periods(search(data, data.nurse, text="STAIRS")) == ["p-fast"]
    assert periods(search(data, data.nurse, text="100%")) == []  # % is a character, not a wildcard
    assert periods(search(data, data.nurse, end=iso(T + 7000))) == ["p-fast"]


def test_search_filters_by_what_the_data_showed(data: World) -> None:
    assert periods(search(data, data.nurse, hr_max_above=140)) == ["p-fast"]  # p-noisy's 170 is noise
    assert periods(search(data, data.nurse, pause="true")) == ["p-pause"]
    assert periods(search(data, data.nurse, irregular="true")) == ["p-fast"]
    assert periods(search(data, data.nurse, irregular="false")) == ["p-noisy", "p-pause"]
    assert periods(search(data, data.nurse, min_quality=0.5)) == ["p-pause", "p-fast"]
    assert periods(search(data, data.nurse, hr_min_below=70)) == ["p-pause"]


def test_a_result_carries_vitals_baseline_and_its_strip(data: World) -> None:
    (fast,) = search(data, data.nurse, tag="palpitations")["results"]
    assert fast["vitals"] == {"windows": 5, "hr_mean": 140.0, "hr_min": 135.0, "hr_max": 150.0, "resp_mean": 15.0,
                              "rmssd_mean": 30.0, "quality_mean": 0.9, "flags": ["irregular"]}  # fmt: skip
    assert fast["hr"] == {"mean": 140.0, "min": 135.0, "max": 150.0, "windows": 5}
    base = fast["baseline"]
    assert base["complete"] is True and base["first_data_at"] == iso(T)
    assert base["windows"] == 10 + 5 + 5 + 3  # the usable windows of the first 7 days
    assert 70 < base["hr_mean"] < 140
    assert (fast["strip"]["device_id"], fast["strip"]["seq"], fast["strip"]["duration_s"]) == (
        data.mine_device, 1004, 2.0)  # fmt: skip


def test_search_pages_and_never_shows_another_clinicians_patient(data: World) -> None:
    first = search(data, data.nurse, limit=2)
    assert periods(first) == ["p-noisy", "p-pause"] and first["more"] is True
    rest = search(data, data.nurse, limit=2, offset=2)
    assert periods(rest) == ["p-fast"] and rest["more"] is False
    assert periods(search(data, data.other_nurse)) == []
    admin = periods(search(data, data.admin, tag="palpitations"))
    assert "theirs" in admin and "p-fast" in admin
    with client(data, data.nurse) as c:
        assert c.get("/api/symptoms/search", params={"patient_id": data.theirs}).status_code == 404
        assert c.get("/api/symptoms/search", params={"patient_id": [data.mine, data.theirs]}).status_code == 404
        assert c.get("/api/symptoms/correlation", params={"patient_id": data.theirs}).status_code == 404
        for path in ("", "/series", "/timeline", "/strips", "/distribution", "/export.csv", "/export.fhir.json",
                     f"/strips/{data.theirs_device}/1003"):
            assert c.get(f"/api/patients/{data.theirs}{path}").status_code == 404, path


@pytest.mark.parametrize(("params", "field"), [
    ({"severity_min": 0}, "severity_min"), ({"severity_min": 4, "severity_max": 2}, "severity_max"),
    ({"hr_max_above": "fast"}, "hr_max_above"), ({"hr_max_above": 1000}, "hr_max_above"),
    ({"pause": "maybe"}, "pause"), ({"min_quality": 2}, "min_quality"), ({"limit": 0}, "limit"),
    ({"text": "x" * 201}, "text"), ({"patient_id": "abc"}, "patient_id"), ({"start": "yesterday"}, "start"),
    ({"start": "2025-02-01T00:00:00Z", "end": "2025-01-01T00:00:00Z"}, "end"),
])  # fmt: skip
def test_every_search_parameter_is_validated(data: World, params: dict, field: str) -> None:
    with client(data, data.nurse) as c:
        r = c.get("/api/symptoms/search", params=params)
    assert r.status_code == 422
    assert field in str(r.json()["detail"])


def test_symptom_rhythm_correlation(data: World) -> None:
    with client(data, data.nurse) as c:
        rows = c.get("/api/symptoms/correlation", params={"start": iso(T - 60), "end": iso(T + 86400)}).json()
    (row,) = rows
    assert row["patient_id"] == data.mine
    # marked: p-fast (irregular), p-pause (pause), p-noisy (its tachy windows are noise);
    # episodes: irregular in p-fast, the pause, the unmarked tachycardia
    assert (row["periods"], row["periods_with_arrhythmia"], row["episodes"], row["episodes_unmarked"]) == (3, 2, 3, 1)


def test_series_buckets_and_timeline(data: World) -> None:
    with client(data, data.nurse) as c:
        base = f"/api/patients/{data.mine}"
        points = c.get(f"{base}/series", params={"start": iso(T), "end": iso(T + 4 * 3600), "bucket": 3600}).json()
        tl = c.get(f"{base}/timeline", params={"start": iso(T), "end": iso(T + 6 * 3600)}).json()
        patient = c.get(base).json()
        assert c.get(f"{base}/series", params={"bucket": 7}).status_code == 422
        assert c.get(f"{base}/series", params={"start": iso(T), "end": iso(T + 500 * 86400)}).status_code == 422
    assert [p["t"] for p in points] == [iso(T + 3600 * i) for i in range(4)]  # hour-aligned buckets
    first = points[0]
    assert first["windows"] == 10 and first["hr_mean"] == 70 and first["rhythm"] == 0
    assert points[1]["rhythm"] == 5 and points[1]["hr_max"] == 150
    assert points[3]["windows"] == 5 and points[3]["hr_mean"] is None  # only noisy windows
    assert [p["tags"] for p in tl["periods"]] == [["Palpitations"], ["dizzy"], ["dizzy"]]
    assert [(e["start"], e["flags"]) for e in tl["episodes"]] == [
        (iso(T + 3600), ["irregular"]), (iso(T + 7260), ["pause"]), (iso(T + 14400), ["tachy"])]
    assert [s["seq"] for s in tl["strips"]] == [1004]
    assert {lim["parameter"] for lim in tl["limits"]} >= {"hr", "resp_rate"}
    assert patient["battery"] == 77 and patient["first_data_at"] == iso(T) and (patient["state"], patient["alert_level"]) == ("red", "red")  # 140 bpm for 5 min


def test_strip_detail_has_samples_beats_and_marks(data: World) -> None:
    with client(data, data.nurse) as c:
        strip = c.get(f"/api/patients/{data.mine}/strips/{data.mine_device}/1004").json()
        assert c.get(f"/api/patients/{data.mine}/strips/{data.mine_device}/999").status_code == 404
    assert strip["info"]["fs"] == 250 and len(strip["samples_uv"]) == 500 and strip["beats"] == []  # flat line
    assert [(m["kind"], m["label"]) for m in strip["marks"]] == [("rhythm", "irregular")]


def test_distribution_for_the_threshold_editor(data: World) -> None:
    with client(data, data.nurse) as c:
        h = c.get(f"/api/patients/{data.mine}/distribution", params={"parameter": "hr"}).json()
        assert c.get(f"/api/patients/{data.mine}/distribution", params={"parameter": "bp"}).status_code == 422
    assert h["windows"] == 23 and sum(h["counts"]) == 23 and len(h["edges"]) == len(h["counts"]) + 1
    assert h["edges"][0] == 70 and h["counts"][0] == 10 + 4  # 70 bpm: baseline + p-pause's quiet minutes


def test_search_and_exports_are_audited(data: World) -> None:
    search(data, data.nurse, tag="palpitations")
    with psycopg.connect(data.db_url) as conn:
        actions = {r[0] for r in conn.execute(
            "SELECT a.action FROM audit_log a JOIN users u ON u.id = a.user_id WHERE u.username = %s"
            " AND a.patient_id = %s", (data.nurse, data.mine))}  # fmt: skip
    assert "search:symptoms" in actions


def test_windows_arriving_late_reach_the_search(data: World) -> None:
    """A phone offline during a period sends its windows later: the period's data filters see them."""
    d = data.mine_device
    t0 = T + 30 * 86400
    ingest(data, d, *period(d, 1100, "p-late", t0, t0 + 300, tags=("late",)))
    assert search(data, data.nurse, tag="late")["results"][0]["vitals"]["windows"] == 0
    assert periods(search(data, data.nurse, tag="late", hr_max_above=120)) == []
    ingest(data, d, windows(d, 1102, t0, [(130.0, (), 0.9)] * 5 + [(70.0, (), 0.9)] * 15))
    (late,) = search(data, data.nurse, tag="late", hr_max_above=120)["results"]
    assert late["vitals"]["windows"] == 5 and late["vitals"]["hr_max"] == 140
    # the patient's data now reaches 15 min past the period: its stats are final
    with psycopg.connect(data.db_url) as conn:
        row = conn.execute("SELECT final FROM symptom_period_stats WHERE period_id = %s", (late["id"],)).fetchone()
    assert row == (True,)
