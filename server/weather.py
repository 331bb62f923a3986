"""Hourly weather: importers behind one interface, storage per location and hour, and the linkage to vitals.

Importers (pure) all return an :class:`ImportResult` of :class:`WeatherRow` and
:class:`Rejected` lines, never raising on a bad line:

* :func:`parse_open_meteo` — Open-Meteo's hourly JSON (``latitude``,
  ``longitude``, ``utc_offset_seconds``, ``hourly.time`` with
  ``temperature_2m`` in °C, ``relative_humidity_2m`` in % and ``pressure_msl``
  (else ``surface_pressure``) in hPa);
* :func:`parse_csv` — CSV with a header ``time,lat,lon,temperature_c,
  pressure_hpa,humidity_pct`` (``lat``/``lon`` may instead be given once);
  times ISO 8601 (UTC unless an offset is given) or seconds since the epoch;
* :func:`parse_simulator_lines` / :func:`from_simulator` — the JSON lines of
  ``pisces simulate weather`` and the simulators' ``WeatherHour`` objects.

:func:`parse_weather` picks the importer from the content. Storage
(:func:`store_weather`) upserts per (hour, location to 0.01°) and keeps rejects
in ``weather_rejects``. :func:`patient_hours` links each hour of a patient's
usable summary windows to the weather at the patient's place: the median GPS
position of the hour while the patient's location consent is in force (the
caller says so; the ingest stores positions only with it), else the home
location; the nearest stored grid point within :data:`MAX_DISTANCE_DEG` counts.
Whether a patient's weather may be linked at all (consent ``weather``) is
decided by the caller, :mod:`server.api.analysis`.
"""

from __future__ import annotations

import csv
import io
import json
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any, Protocol

import psycopg

GRID_DEG = 0.01
MAX_DISTANCE_DEG = 0.25  # about 25 km: the weather of a place this close still counts
RANGES = {"temperature_c": (-90.0, 60.0), "pressure_hpa": (300.0, 1100.0), "humidity_pct": (0.0, 100.0)}
CSV_FIELDS = ("time", "lat", "lon", "temperature_c", "pressure_hpa", "humidity_pct")


class WeatherError(ValueError):
    """A weather file that cannot be read at all (not JSON, no header, no location)."""


@dataclass(frozen=True)
class WeatherRow:
    """One hour of weather at one place.

    Attributes:
        lat: latitude, degrees, -90..90 (stored to 0.01).
        lon: longitude, degrees, -180..180 (stored to 0.01).
        hour: start of the hour, UTC.
        temperature_c: air temperature, °C, or None if not reported.
        pressure_hpa: sea-level pressure, hPa, or None.
        humidity_pct: relative humidity, %, or None.
    """

    lat: float
    lon: float
    hour: datetime
    temperature_c: float | None
    pressure_hpa: float | None
    humidity_pct: float | None


@dataclass(frozen=True)
class Rejected:
    """An input line or hour that was not imported, and why."""

    line: int
    reason: str
    raw: str


@dataclass(frozen=True)
class ImportResult:
    """What an importer made of its input: ``kind`` is ``open-meteo``, ``csv`` or ``simulator``."""

    source: str
    kind: str
    rows: tuple[WeatherRow, ...]
    rejected: tuple[Rejected, ...]


class SimulatedHour(Protocol):
    """The simulators' ``WeatherHour`` (time in s since the epoch; °C, hPa, %)."""

    @property
    def time(self) -> float: ...

    @property
    def temperature_c(self) -> float: ...

    @property
    def pressure_hpa(self) -> float: ...

    @property
    def humidity_pct(self) -> float: ...


def _utc(text: str, offset_s: int = 0) -> datetime:
    try:
        return datetime.fromtimestamp(float(text), timezone.utc)
    except ValueError:
        pass
    t = datetime.fromisoformat(text.replace("Z", "+00:00"))
    if t.tzinfo is None:
        t = t.replace(tzinfo=timezone(timedelta(seconds=offset_s)))
    return t.astimezone(timezone.utc)


def _value(raw: Any, name: str) -> float | None:
    if raw is None or raw == "":
        return None
    v = float(raw)
    lo, hi = RANGES[name]
    if not (math.isfinite(v) and lo <= v <= hi):
        raise ValueError(f"{name} {raw!r} outside {lo:g}..{hi:g}")
    return v


def weather_row(lat: Any, lon: Any, hour: datetime, t: Any, p: Any, h: Any) -> WeatherRow:
    """A validated row (hour floored to the hour); ValueError naming the bad field."""
    la, lo = float(lat), float(lon)
    if not (-90 <= la <= 90 and -180 <= lo <= 180):
        raise ValueError(f"location {lat!r},{lon!r} outside -90..90, -180..180")
    if hour.minute or hour.second or hour.microsecond:
        raise ValueError(f"time {hour.isoformat()} is not the start of an hour")
    values = (_value(t, "temperature_c"), _value(p, "pressure_hpa"), _value(h, "humidity_pct"))
    if all(v is None for v in values):
        raise ValueError("no temperature, pressure or humidity")
    return WeatherRow(round(la, 2), round(lo, 2), hour, *values)


def parse_open_meteo(doc: Mapping[str, Any], source: str = "open-meteo") -> ImportResult:
    """Rows of an Open-Meteo hourly JSON document (local times shifted by ``utc_offset_seconds``)."""
    try:
        lat, lon, hourly = doc["latitude"], doc["longitude"], doc["hourly"]
        times = hourly["time"]
    except (KeyError, TypeError) as exc:
        raise WeatherError(f"{source}: not Open-Meteo hourly JSON (missing {exc})") from exc
    offset = int(doc.get("utc_offset_seconds") or 0)
    cols = [hourly.get("temperature_2m"), hourly.get("pressure_msl") or hourly.get("surface_pressure"),
            hourly.get("relative_humidity_2m")]  # fmt: skip
    rows, rejected = [], []
    for i, t in enumerate(times):
        values = [c[i] if isinstance(c, list) and i < len(c) else None for c in cols]
        try:
            rows.append(weather_row(lat, lon, _utc(str(t), offset), *values))
        except (ValueError, TypeError) as exc:
            rejected.append(Rejected(i + 1, str(exc), json.dumps([t, *values])))
    return ImportResult(source, "open-meteo", tuple(rows), tuple(rejected))


def parse_csv(text: str, source: str = "csv", lat: float | None = None, lon: float | None = None) -> ImportResult:
    """Rows of a weather CSV (see the module doc); ``lat``/``lon`` fill in absent location columns.

    Raises:
        WeatherError: the header lacks a column, or the text is not CSV at all (e.g. a bare CR
            inside a field), so no line can be told from the next.
    """
    try:
        return _parse_csv(text, source, lat, lon)
    except csv.Error as exc:
        raise WeatherError(f"{source}: not readable as CSV: {exc}") from exc


def _parse_csv(text: str, source: str, lat: float | None, lon: float | None) -> ImportResult:
    reader = csv.DictReader(io.StringIO(text))
    header = set(reader.fieldnames or ())
    need = {"time", "temperature_c", "pressure_hpa", "humidity_pct"} | ({"lat", "lon"} if lat is None else set())
    if not need <= header:
        raise WeatherError(f"{source}: CSV header lacks {', '.join(sorted(need - header))}")
    rows, rejected = [], []
    for rec in reader:
        try:
            where = (rec.get("lat") or lat, rec.get("lon") or lon)
            rows.append(weather_row(*where, _utc(rec["time"] or ""), rec["temperature_c"], rec["pressure_hpa"],
                                    rec["humidity_pct"]))  # fmt: skip
        except (ValueError, TypeError) as exc:
            rejected.append(Rejected(reader.line_num, str(exc), ",".join(str(v) for v in rec.values())))
    return ImportResult(source, "csv", tuple(rows), tuple(rejected))


def parse_simulator_lines(text: str, lat: float, lon: float, source: str = "simulator") -> ImportResult:
    """Rows of ``pisces simulate weather`` output (JSON lines; the place is given, the lines lack it)."""
    rows, rejected = [], []
    for n, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            d = json.loads(line)
            rows.append(weather_row(lat, lon, _utc(str(d["time"])), d.get("temperature_c"), d.get("pressure_hpa"),
                                    d.get("humidity_pct")))  # fmt: skip
        except (ValueError, TypeError, KeyError) as exc:
            rejected.append(Rejected(n, f"{type(exc).__name__}: {exc}", line[:500]))
    return ImportResult(source, "simulator", tuple(rows), tuple(rejected))


def from_simulator(lat: float, lon: float, hours: Iterable[SimulatedHour]) -> ImportResult:
    """Rows of the simulators' weather objects for a place."""
    lines = "\n".join(json.dumps({"time": h.time, "temperature_c": h.temperature_c, "pressure_hpa": h.pressure_hpa,
                                  "humidity_pct": h.humidity_pct}) for h in hours)  # fmt: skip
    return parse_simulator_lines(lines, lat, lon)


def parse_weather(text: str, source: str, lat: float | None = None, lon: float | None = None) -> ImportResult:
    """The one entry point: Open-Meteo JSON, simulator JSON lines or CSV, told apart by content.

    Raises:
        WeatherError: the input is none of these, or simulator lines come without ``lat``/``lon``.
    """
    head = text.lstrip()[:1]
    if head == "{":
        try:
            doc = json.loads(text)
        except json.JSONDecodeError:
            doc = None
        if isinstance(doc, dict):
            return parse_open_meteo(doc, source)
        if lat is None or lon is None:
            raise WeatherError(f"{source}: simulator weather lines carry no place; give --lat and --lon")
        return parse_simulator_lines(text, lat, lon, source)
    if not text.strip():
        raise WeatherError(f"{source}: empty")
    return parse_csv(text, source, lat, lon)


def store_weather(conn: psycopg.Connection[Any], result: ImportResult) -> tuple[int, int]:
    """Upsert the rows (a later import of the same hour and place wins), keep the rejects.

    Returns:
        ``(rows stored, lines rejected)``. The caller commits.
    """
    with conn.cursor() as cur:
        cur.executemany(
            "INSERT INTO weather_hourly (lat, lon, hour, temperature_c, pressure_hpa, humidity_pct, source)"
            " VALUES (%s, %s, %s, %s, %s, %s, %s) ON CONFLICT (hour, lat, lon) DO UPDATE SET"
            " temperature_c = EXCLUDED.temperature_c, pressure_hpa = EXCLUDED.pressure_hpa,"
            " humidity_pct = EXCLUDED.humidity_pct, source = EXCLUDED.source, imported_at = now()",
            [(r.lat, r.lon, r.hour, r.temperature_c, r.pressure_hpa, r.humidity_pct, result.kind)
             for r in result.rows],
        )
        cur.executemany(
            "INSERT INTO weather_rejects (source, line, reason, raw) VALUES (%s, %s, %s, %s)",
            [(result.source, r.line, r.reason, r.raw) for r in result.rejected],
        )
    return len(result.rows), len(result.rejected)


def set_home(conn: psycopg.Connection[Any], patient_id: int, lat: float, lon: float) -> None:
    """Set a patient's home location (degrees); ValueError if out of range. The caller commits."""
    if not (-90 <= lat <= 90 and -180 <= lon <= 180):
        raise ValueError(f"home {lat},{lon} outside -90..90, -180..180")
    conn.execute(
        "INSERT INTO patient_homes (patient_id, lat, lon) VALUES (%s, %s, %s) ON CONFLICT (patient_id)"
        " DO UPDATE SET lat = EXCLUDED.lat, lon = EXCLUDED.lon, updated_at = now()",
        (patient_id, lat, lon),
    )


def get_home(conn: psycopg.Connection[Any], patient_id: int) -> tuple[float, float] | None:
    """The patient's home ``(lat, lon)`` or None."""
    row = conn.execute("SELECT lat, lon FROM patient_homes WHERE patient_id = %s", (patient_id,)).fetchone()
    return (float(row[0]), float(row[1])) if row else None


@dataclass(frozen=True)
class LinkedHour:
    """One hour of a patient's usable windows with the weather at their place.

    Vitals are means over windows with quality >= the threshold; ``activity``
    is the mean intensity (g) over all windows; ``active_share`` the share of
    windows classed walk or run; ``place`` is ``gps``, ``home`` or None (no
    place known: no weather).
    """

    hour: datetime
    windows: int
    hr: float | None
    rmssd: float | None
    resp: float | None
    activity: float | None
    active_share: float
    place: str | None
    lat: float | None
    lon: float | None
    temperature_c: float | None
    pressure_hpa: float | None
    humidity_pct: float | None


LINK_SQL = """
WITH h AS (
    SELECT date_bin('1 hour', start_at, 'epoch') AS hour, count(*) AS windows,
           avg(hr_mean) FILTER (WHERE quality >= %(q)s) AS hr,
           avg(rmssd) FILTER (WHERE quality >= %(q)s) AS rmssd,
           avg(resp_rate) FILTER (WHERE quality >= %(q)s) AS resp,
           avg(intensity) AS activity,
           avg((activity IN ('walk', 'run'))::int) AS active_share,
           percentile_cont(0.5) WITHIN GROUP (ORDER BY lat) FILTER (WHERE lat IS NOT NULL AND %(gps)s) AS gps_lat,
           percentile_cont(0.5) WITHIN GROUP (ORDER BY lon) FILTER (WHERE lon IS NOT NULL AND %(gps)s) AS gps_lon
    FROM summaries WHERE patient_id = %(p)s AND start_at >= %(start)s AND start_at < %(end)s
    GROUP BY 1
), placed AS (
    SELECT h.*, CASE WHEN gps_lat IS NOT NULL THEN 'gps' WHEN home.lat IS NOT NULL THEN 'home' END AS place,
           COALESCE(gps_lat, home.lat) AS plat, COALESCE(gps_lon, home.lon) AS plon
    FROM h LEFT JOIN patient_homes home ON home.patient_id = %(p)s
)
SELECT placed.hour, windows, hr, rmssd, resp, activity, active_share, place, plat, plon,
       w.temperature_c, w.pressure_hpa, w.humidity_pct
FROM placed LEFT JOIN LATERAL (
    SELECT temperature_c, pressure_hpa, humidity_pct FROM weather_hourly x
    WHERE x.hour = placed.hour AND x.lat BETWEEN plat - %(d)s AND plat + %(d)s
      AND x.lon BETWEEN plon - %(d)s AND plon + %(d)s
    ORDER BY (x.lat - plat::numeric) ^ 2 + (x.lon - plon::numeric) ^ 2 LIMIT 1
) w ON true
ORDER BY placed.hour
"""


def _f(v: Any) -> float | None:
    return None if v is None else float(v)


def patient_hours(conn: psycopg.Connection[Any], patient_id: int, start: datetime, end: datetime,
                  min_quality: float, *, gps: bool) -> list[LinkedHour]:
    """The patient's hours in [start, end) linked to weather, oldest first (hours without windows are absent).

    ``gps``: place hours by their stored GPS positions (only while the patient's
    location consent is in force); False: by the home location alone.
    """
    params = {"p": patient_id, "start": start, "end": end, "q": min_quality, "d": MAX_DISTANCE_DEG, "gps": gps}
    with conn.transaction():
        # PostgreSQL's JIT compile costs several times the query itself here (bench/bench_analysis.py).
        conn.execute("SET LOCAL jit = off")
        found = conn.execute(LINK_SQL, params).fetchall()
    return [
        LinkedHour(hour=r[0], windows=int(r[1]), hr=_f(r[2]), rmssd=_f(r[3]), resp=_f(r[4]), activity=_f(r[5]),
                   active_share=float(r[6]), place=r[7], lat=_f(r[8]), lon=_f(r[9]), temperature_c=_f(r[10]),
                   pressure_hpa=_f(r[11]), humidity_pct=_f(r[12]))  # fmt: skip
        for r in found
    ]


def analysis_columns(hours: Sequence[LinkedHour]) -> dict[str, list[float | None]]:
    """Columns for :func:`server.analysis.analyse_patient`; time of day is local solar time at the place."""
    def solar(h: LinkedHour) -> float | None:
        if h.lon is None:
            return None
        return (h.hour.hour + h.hour.minute / 60 + 0.5 + h.lon / 15.0) % 24.0

    return {
        "hr": [h.hr for h in hours], "rmssd": [h.rmssd for h in hours], "resp": [h.resp for h in hours],
        "temperature": [h.temperature_c for h in hours], "pressure": [h.pressure_hpa for h in hours],
        "humidity": [h.humidity_pct for h in hours], "activity": [h.activity for h in hours],
        "hour_of_day": [solar(h) for h in hours],
    }  # fmt: skip


def weather_near(conn: psycopg.Connection[Any], lat: float, lon: float, start: datetime,
                 end: datetime) -> list[WeatherRow]:
    """Stored hours in [start, end) at the grid point nearest to (lat, lon) within MAX_DISTANCE_DEG, per hour."""
    rows = conn.execute(
        "SELECT DISTINCT ON (hour) lat, lon, hour, temperature_c, pressure_hpa, humidity_pct FROM weather_hourly"
        " WHERE hour >= %(s)s AND hour < %(e)s AND lat BETWEEN %(la)s - %(d)s AND %(la)s + %(d)s"
        " AND lon BETWEEN %(lo)s - %(d)s AND %(lo)s + %(d)s"
        " ORDER BY hour, (lat - %(la)s::numeric) ^ 2 + (lon - %(lo)s::numeric) ^ 2",
        {"s": start, "e": end, "la": lat, "lo": lon, "d": MAX_DISTANCE_DEG},
    ).fetchall()
    return [WeatherRow(float(r[0]), float(r[1]), r[2], _f(r[3]), _f(r[4]), _f(r[5])) for r in rows]
