"""Weather import, home locations, the analysis and its CSVs, mobility and the cohort over a live server."""

from __future__ import annotations

import csv
import io
import math

import numpy as np
import psycopg
import pytest

from server import consent
from simulators.weather import weather_hourly
from tests.server.test_api import World, client, ingest, world  # noqa: F401 - `world` is a fixture
from wire import Summary, SummaryWindow

pytestmark = pytest.mark.db

T = 1_761_955_200.0  # 2025-11-01T00:00:00Z, apart from the other API tests' data
HOURS = 240  # ten days: weather changes over days, so fewer hold too few independent spells
HOME = (47.37, 8.54)


def weather_csv() -> str:
    hours = weather_hourly(*HOME, T, HOURS, seed=9)
    lines = ["time,lat,lon,temperature_c,pressure_hpa,humidity_pct"]
    lines += [f"{h.time:.0f},{HOME[0]},{HOME[1]},{h.temperature_c:.2f},{h.pressure_hpa:.1f},{h.humidity_pct:.1f}"
              for h in hours]
    return "\n".join(lines + ["not-a-time,1,2,3,4,5"]) + "\n"


def hourly_windows(device: str, seq: int, temps: list[float], effect: float, seed: int, gps_hours: int = 0) -> Summary:
    """Two 1-min windows per hour; HR = 70 + effect * temperature + noise; GPS at home for the first hours."""
    rng = np.random.default_rng(seed)
    out = []
    for h, temp in enumerate(temps):
        hr = 70 + effect * temp + float(rng.normal(0, 2))
        for k in range(2):
            t0 = T + 3600 * h + 600 * k
            where = {"lat": HOME[0] + 0.0001 * k, "lon": HOME[1]} if h < gps_hours else {}
            out.append(SummaryWindow(start=t0, end=t0 + 60, beats=70, hr_mean=hr, hr_min=hr - 5, hr_max=hr + 5,
                                     rmssd=30.0 + float(rng.normal(0, 3)), resp_rate=15.0 + float(rng.normal(0, 1)),
                                     activity="rest", intensity=0.02 + 0.01 * float(rng.random()), quality=0.9,
                                     **where))  # type: ignore[arg-type]
    return Summary(device, seq, tuple(out))


@pytest.fixture(scope="module")
def linked(world: World) -> World:  # noqa: F811
    with psycopg.connect(world.db_url, autocommit=True) as conn:  # Ann also shares her position (world)
        for pid in (world.mine, world.theirs):
            for purpose in ("weather", "research"):
                consent.record(conn, pid, purpose, True, "patient", None, "in app")
    temps = [h.temperature_c for h in weather_hourly(*HOME, T, HOURS, seed=9)]
    ingest(world, world.mine_device, hourly_windows(world.mine_device, 5000, temps, 2.0, 1, gps_hours=3))
    ingest(world, world.theirs_device, hourly_windows(world.theirs_device, 5000, temps, 0.0, 2))
    with client(world, world.admin) as c:
        r = c.post("/api/weather/import", params={"source": "zurich.csv"}, content=weather_csv(),
                   headers={"Content-Type": "text/plain"})
        assert r.status_code == 200, r.text
        body = r.json()
        assert (body["stored"], body["rejected"]) == (HOURS, 1)
        assert body["first_rejects"][0]["line"] == HOURS + 2
        for pid in (world.mine, world.theirs):
            assert c.put(f"/api/patients/{pid}/home", json={"lat": HOME[0], "lon": HOME[1]}).status_code == 200
    return world


def span() -> dict[str, str]:
    return {"start": "2025-11-01T00:00:00Z", "end": "2025-11-11T00:00:00Z"}


def test_import_needs_an_admin_and_a_weather_format(linked: World) -> None:
    with client(linked, linked.nurse) as c:
        assert c.post("/api/weather/import", content="x", headers={"Content-Type": "text/plain"}).status_code == 403
    with client(linked, linked.admin) as c:
        r = c.post("/api/weather/import", content='{"nope": 1}', headers={"Content-Type": "text/plain"})
        assert r.status_code == 422 and "not Open-Meteo" in r.json()["detail"]
        got = c.get("/api/weather", params={"lat": 47.371, "lon": 8.539, **span()}).json()
        assert len(got) == HOURS and got[0]["hour"].startswith("2025-11-01T00:00")


def test_the_injected_effect_is_found_for_one_patient_and_not_the_other(linked: World) -> None:
    with client(linked, linked.admin) as c:
        mine = c.get(f"/api/patients/{linked.mine}/analysis", params=span()).json()
        theirs = c.get(f"/api/patients/{linked.theirs}/analysis", params=span()).json()
    assert mine["hours_with_weather"] == HOURS and len(mine["hours"]) == HOURS
    assert mine["hours"][0]["place"] == "gps" and mine["hours"][5]["place"] == "home"
    hit = next(a for a in mine["report"]["associations"]
               if (a["vital"], a["factor"], a["method"]) == ("hr", "temperature", "partial"))
    assert hit["significant"] and hit["rho"] > 0.5 and hit["ci_low"] > 0 and hit["n"] == HOURS
    assert "heart rate ~ temperature" in mine["report"]["verdict"]
    assert theirs["report"]["verdict"].startswith("no significant association")


def test_visibility_and_audit(linked: World) -> None:
    with client(linked, linked.nurse) as c:
        assert c.get(f"/api/patients/{linked.mine}/analysis", params=span()).status_code == 200
        for path in ("analysis", "analysis.csv", "weather-hours.csv", "mobility", "home"):
            assert c.get(f"/api/patients/{linked.theirs}/{path}", params=span()).status_code == 404, path
        assert c.put(f"/api/patients/{linked.theirs}/home", json={"lat": 1, "lon": 1}).status_code == 404
        assert c.put(f"/api/patients/{linked.mine}/home", json={"lat": 91, "lon": 1}).status_code == 422
        cohort = c.get("/api/analysis/cohort", params=span()).json()
    assert cohort["patient_ids"] == [linked.mine] and cohort["report"]["scope"] == "cohort"
    with psycopg.connect(linked.db_url) as conn:
        actions = {r[0] for r in conn.execute(
            "SELECT a.action FROM audit_log a JOIN users u ON u.id = a.user_id WHERE u.username = %s"
            " AND a.patient_id = %s", (linked.nurse, linked.mine))}  # fmt: skip
    assert {"read:analysis", "read:analysis-cohort"} <= actions
    assert not any(a.startswith("read:") for a in actions if a.endswith(str(linked.theirs)))


def test_csv_downloads_match_the_json(linked: World) -> None:
    with client(linked, linked.nurse) as c:
        report = c.get(f"/api/patients/{linked.mine}/analysis", params=span()).json()["report"]
        r = c.get(f"/api/patients/{linked.mine}/analysis.csv", params=span())
        hours = c.get(f"/api/patients/{linked.mine}/weather-hours.csv", params=span())
    assert r.headers["content-type"].startswith("text/csv") and "attachment" in r.headers["content-disposition"]
    rows = list(csv.DictReader(io.StringIO(r.text)))
    assert len(rows) == len(report["associations"]) == 24
    for row, a in zip(rows, report["associations"]):
        assert (row["vital"], row["factor"], row["method"]) == (a["vital"], a["factor"], a["method"])
        assert math.isclose(float(row["rho"]), a["rho"], rel_tol=1e-9)
    linked_rows = list(csv.DictReader(io.StringIO(hours.text)))
    assert len(linked_rows) == HOURS and float(linked_rows[4]["temperature_c"]) > -90


def test_mobility_from_consented_gps_only(linked: World) -> None:
    with client(linked, linked.admin) as c:
        mine = c.get(f"/api/patients/{linked.mine}/mobility", params=span()).json()
        theirs = c.get(f"/api/patients/{linked.theirs}/mobility", params=span())
    assert theirs.status_code == 403 and "location sharing (purpose location)" in theirs.json()["detail"]
    (day,) = mine
    assert day["fixes"] == 6 and day["home_s"] == day["observed_s"] == 3 * 600 and day["jumps"] == 0


def consent_to(world: World, patient_id: int, purpose: str, granted: bool) -> None:
    with psycopg.connect(world.db_url, autocommit=True) as conn:
        consent.record(conn, patient_id, purpose, granted, "clinician", None, "signed form")


def test_weather_linkage_and_the_cohort_keep_within_consent(linked: World) -> None:
    try:
        consent_to(linked, linked.mine, "location", False)  # GPS no longer used: the first hours are at home
        with client(linked, linked.nurse) as c:
            hours = c.get(f"/api/patients/{linked.mine}/analysis", params=span()).json()["hours"]
            assert hours[0]["place"] == "home"
            assert c.get(f"/api/patients/{linked.mine}/mobility", params=span()).status_code == 403
        consent_to(linked, linked.mine, "research", False)
        with client(linked, linked.nurse) as c:
            cohort = c.get("/api/analysis/cohort", params=span()).json()
            assert c.get(f"/api/patients/{linked.mine}/analysis", params=span()).status_code == 200
        assert (cohort["patient_ids"], cohort["excluded_no_research"], cohort["excluded_no_weather"]) == ([], 1, 0)
        consent_to(linked, linked.mine, "research", True)
        consent_to(linked, linked.mine, "weather", False)
        with client(linked, linked.nurse) as c:
            cohort = c.get("/api/analysis/cohort", params=span()).json()
            for path in ("analysis", "analysis.csv", "weather-hours.csv"):
                r = c.get(f"/api/patients/{linked.mine}/{path}", params=span())
                assert r.status_code == 403 and "weather linkage (purpose weather)" in r.json()["detail"], path
        assert (cohort["patient_ids"], cohort["excluded_no_research"], cohort["excluded_no_weather"]) == ([], 0, 1)
    finally:
        for purpose in ("location", "research", "weather"):
            consent_to(linked, linked.mine, purpose, True)
