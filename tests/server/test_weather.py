"""Weather importers (pure), storage, and the linkage of a patient's hours to the weather at their place."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone
from pathlib import Path

import psycopg
import pytest

from server import weather
from server.store import add_patient
from simulators.weather import weather_hourly

T0 = datetime(2025, 3, 1, tzinfo=timezone.utc)


def open_meteo_doc() -> dict[str, object]:
    """A document shaped like Open-Meteo's hourly answer (local times at UTC+1, one bad hour)."""
    return {
        "latitude": 52.52, "longitude": 13.419998, "utc_offset_seconds": 3600, "timezone": "Europe/Berlin",
        "hourly_units": {"time": "iso8601", "temperature_2m": "°C"},
        "hourly": {
            "time": ["2025-03-01T01:00", "2025-03-01T02:00", "2025-03-01T03:00", "2025-03-01T04:00"],
            "temperature_2m": [3.5, 3.1, None, 999.0],
            "relative_humidity_2m": [81, 83, None, 85],
            "pressure_msl": [1012.4, 1012.0, None, 1011.8],
        },
    }  # fmt: skip


def test_open_meteo_times_are_shifted_to_utc_and_bad_hours_kept_aside() -> None:
    result = weather.parse_open_meteo(open_meteo_doc())
    assert [r.hour for r in result.rows] == [T0, T0 + timedelta(hours=1)]
    first = result.rows[0]
    assert (first.lat, first.lon, first.temperature_c, first.humidity_pct, first.pressure_hpa) == (
        52.52, 13.42, 3.5, 81.0, 1012.4)
    assert [(r.line, r.reason) for r in result.rejected] == [
        (3, "no temperature, pressure or humidity"), (4, "temperature_c 999.0 outside -90..60")]


def test_csv_with_and_without_location_columns() -> None:
    text = ("time,lat,lon,temperature_c,pressure_hpa,humidity_pct\r\n"
            "2025-03-01T00:00:00Z,48.14,11.58,1.0,1020,70\r\n"
            f"{T0.timestamp() + 3600:.0f},48.14,11.58,1.5,,72\r\n"
            "2025-03-01T02:30:00Z,48.14,11.58,2.0,1019,71\r\n"
            "yesterday,48.14,11.58,2.0,1019,71\r\n")  # fmt: skip
    result = weather.parse_weather(text, "munich.csv")
    assert [(r.hour, r.pressure_hpa) for r in result.rows] == [(T0, 1020.0), (T0 + timedelta(hours=1), None)]
    assert [r.line for r in result.rejected] == [4, 5]
    assert "not the start of an hour" in result.rejected[0].reason
    located = weather.parse_csv("time,temperature_c,pressure_hpa,humidity_pct\n2025-03-01T00:00Z,1,1000,50\n",
                                lat=1.0, lon=2.0)  # fmt: skip
    assert (located.rows[0].lat, located.rows[0].lon) == (1.0, 2.0)
    with pytest.raises(weather.WeatherError, match="lat, lon"):
        weather.parse_csv("time,temperature_c,pressure_hpa,humidity_pct\n")


def test_simulator_weather_through_both_doors_is_the_same() -> None:
    hours = weather_hourly(52.52, 13.40, T0.timestamp(), 24, seed=3)
    direct = weather.from_simulator(52.52, 13.40, hours)
    lines = "\n".join(json.dumps({"time": h.time, "temperature_c": h.temperature_c, "pressure_hpa": h.pressure_hpa,
                                  "humidity_pct": h.humidity_pct}) for h in hours)  # fmt: skip
    via_text = weather.parse_weather(lines, "sim.jsonl", 52.52, 13.40)
    assert direct.rows == via_text.rows and len(direct.rows) == 24 and not direct.rejected
    assert direct.rows[5].temperature_c == pytest.approx(hours[5].temperature_c)
    with pytest.raises(weather.WeatherError, match="--lat"):
        weather.parse_weather(lines, "sim.jsonl")


def test_unreadable_input_is_refused_with_its_name() -> None:
    with pytest.raises(weather.WeatherError, match="x.json: not Open-Meteo"):
        weather.parse_weather('{"hello": 1}', "x.json")
    with pytest.raises(weather.WeatherError, match="empty"):
        weather.parse_weather("  \n", "e.csv")
    with pytest.raises(weather.WeatherError, match="r.csv: not readable as CSV"):  # found by the API fuzzer
        weather.parse_weather("time,lat,lon,temperature_c,pressure_hpa,humidity_pct\n2026\rx,1", "r.csv")


def insert_windows(conn: psycopg.Connection, patient_id: int, device: str,
                   rows: list[tuple[datetime, float, float, str, float | None, float | None, float]]) -> None:
    """Summary windows (start, hr, intensity, activity, lat, lon, quality), 60 s each, straight into the table."""
    days = sorted({r[0].date() for r in rows})
    conn.execute("SELECT pisces_ensure_summary_partitions(%s::date[])", (days,))
    with conn.cursor() as cur:
        cur.executemany(
            "INSERT INTO summaries (patient_id, device_id, seq, idx, start_at, end_at, beats, hr_mean, rmssd,"
            " resp_rate, activity, intensity, quality, lat, lon) VALUES (%s, %s, %s, 0, %s, %s, 60, %s, 30, 15,"
            " %s, %s, %s, %s, %s)",
            [(patient_id, device, i, t, t + timedelta(seconds=60), hr, act, inten, q, la, lo)
             for i, (t, hr, inten, act, la, lo, q) in enumerate(rows)],
        )  # fmt: skip


@pytest.mark.db
def test_hours_link_to_gps_weather_else_home_weather(db: psycopg.Connection, device_id: str) -> None:
    pid = add_patient(db, "Weather W", device_id)
    weather.store_weather(db, weather.parse_csv(
        "time,lat,lon,temperature_c,pressure_hpa,humidity_pct\n"
        "2025-03-01T00:00Z,48.14,11.58,1,1000,50\n"     # home
        "2025-03-01T01:00Z,48.14,11.58,2,1001,51\n"
        "2025-03-01T01:00Z,48.30,11.70,9,990,40\n"      # where the patient walked to (GPS)
        "2025-03-01T01:00Z,48.20,11.62,5,995,45\n"      # in between: nearer home than the walk
        "2025-03-01T02:00Z,48.14,11.58,3,1002,52\n", "grid.csv"))  # fmt: skip
    weather.set_home(db, pid, 48.1412, 11.5803)
    insert_windows(db, pid, device_id, [
        (T0 + timedelta(minutes=5), 70, 0.02, "rest", None, None, 0.9),
        (T0 + timedelta(minutes=6), 90, 0.02, "rest", None, None, 0.1),   # unusable: not in the HR mean
        (T0 + timedelta(minutes=65), 100, 0.3, "walk", 48.301, 11.699, 0.9),
        (T0 + timedelta(minutes=66), 104, 0.3, "walk", 48.299, 11.701, 0.9),
        (T0 + timedelta(hours=5), 66, 0.01, "lying", None, None, 0.9),      # no weather that hour
    ])  # fmt: skip
    hours = weather.patient_hours(db, pid, T0, T0 + timedelta(days=1), 0.5, gps=True)
    assert [h.hour for h in hours] == [T0, T0 + timedelta(hours=1), T0 + timedelta(hours=5)]
    home, walk, late = hours
    assert (home.place, home.windows, home.hr, home.temperature_c, home.active_share) == ("home", 2, 70.0, 1.0, 0.0)
    assert (walk.place, walk.hr, walk.temperature_c, walk.pressure_hpa, walk.active_share) == (
        "gps", 102.0, 9.0, 990.0, 1.0)
    assert late.place == "home" and late.temperature_c is None
    unplaced = weather.patient_hours(db, pid, T0, T0 + timedelta(days=1), 0.5, gps=False)[1]
    assert (unplaced.place, unplaced.temperature_c) == ("home", 2.0)  # no location consent: home's weather
    cols = weather.analysis_columns(hours)
    assert cols["temperature"] == [1.0, 9.0, None]
    assert cols["hour_of_day"][0] == pytest.approx((0.5 + 11.5803 / 15) % 24)


@pytest.mark.db
def test_store_upserts_and_keeps_rejects(db: psycopg.Connection) -> None:
    first = weather.parse_open_meteo(open_meteo_doc(), "om-test-1")
    assert weather.store_weather(db, first) == (2, 2)
    doc = open_meteo_doc()
    doc["hourly"]["temperature_2m"][0] = 4.0  # type: ignore[index]
    weather.store_weather(db, weather.parse_open_meteo(doc, "om-test-2"))
    near = weather.weather_near(db, 52.5, 13.4, T0, T0 + timedelta(hours=2))
    assert [r.temperature_c for r in near] == [4.0, 3.1]
    kept = db.execute("SELECT source, line, reason FROM weather_rejects WHERE source LIKE 'om-test-%%'"
                      " ORDER BY id").fetchall()
    assert [k[:2] for k in kept] == [("om-test-1", 3), ("om-test-1", 4), ("om-test-2", 3), ("om-test-2", 4)]
    with pytest.raises(ValueError, match="outside"):
        weather.set_home(db, 1, 91.0, 0.0)


@pytest.mark.db
def test_cli_imports_simulator_weather_and_sets_a_home(db_url: str, device_id: str, tmp_path: Path,
                                                       monkeypatch: pytest.MonkeyPatch,
                                                       capsys: pytest.CaptureFixture[str]) -> None:
    from server.cli import main

    monkeypatch.setenv("PISCES_DATABASE_URL", db_url)
    hours = weather_hourly(-33.87, 151.21, T0.timestamp(), 6, seed=4)
    lines = [json.dumps({"time": h.time, "temperature_c": h.temperature_c, "pressure_hpa": h.pressure_hpa,
                         "humidity_pct": h.humidity_pct}) for h in hours]  # fmt: skip
    path = tmp_path / "sydney.jsonl"
    path.write_text("\n".join([*lines, '{"time": "soon"}']) + "\n", encoding="utf-8")
    assert main(["weather", "import", str(path)]) == 2
    assert "--lat" in capsys.readouterr().err
    assert main(["weather", "import", str(path), "--lat", "-33.87", "--lon", "151.21"]) == 0
    assert "stored 6 hours, kept 1 rejected" in capsys.readouterr().out
    with psycopg.connect(db_url) as conn:
        pid = add_patient(conn, "Home H", device_id)
        got = weather.weather_near(conn, -33.87, 151.21, T0, T0 + timedelta(hours=6))
    assert [r.temperature_c for r in got] == pytest.approx([h.temperature_c for h in hours], abs=1e-4)
    assert main(["weather", "home", str(pid), "-33.9", "151.2"]) == 0
    assert main(["weather", "home", "999999", "0", "0"]) == 2
    with psycopg.connect(db_url) as conn:
        assert weather.get_home(conn, pid) == (-33.9, 151.2)
