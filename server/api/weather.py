"""Weather and home locations: ``POST /api/weather/import`` (admins), ``GET /api/weather``,
``GET``/``PUT /api/patients/{id}/home``.

An import takes the file's text as the request body in any format
:func:`server.weather.parse_weather` reads; bad lines are kept in
``weather_rejects`` and counted in the answer, never dropped silently.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Annotated

from fastapi import APIRouter, Body, HTTPException, Query, status
from pydantic import BaseModel, Field

from server import store, weather
from server.api.deps import AdminUser, ConnDep, CurrentUser, check_range
from server.api.patients import require_patient

router = APIRouter(tags=["weather"])

MAX_WEATHER_SPAN = timedelta(days=400)
MAX_IMPORT_BYTES = 20_000_000


@dataclass(frozen=True)
class ImportOut:
    """What an import stored and what it kept aside (first rejects shown)."""

    source: str
    stored: int
    rejected: int
    first_rejects: list[weather.Rejected]


class HomeIn(BaseModel):
    """A home location, degrees."""

    lat: float = Field(ge=-90, le=90)
    lon: float = Field(ge=-180, le=180)


@dataclass(frozen=True)
class HomeOut:
    """A patient's home location, degrees (None if not set)."""

    patient_id: int
    lat: float | None
    lon: float | None


@router.post("/api/weather/import")
def import_weather(
    conn: ConnDep,
    user: AdminUser,
    body: Annotated[str, Body(media_type="text/plain", description="Open-Meteo JSON, CSV or simulator lines")],
    source: Annotated[str, Query(max_length=200)] = "upload",
    lat: Annotated[float | None, Query(ge=-90, le=90)] = None,
    lon: Annotated[float | None, Query(ge=-180, le=180)] = None,
) -> ImportOut:
    """Import hourly weather; 422 if the text is no weather format at all."""
    if len(body) > MAX_IMPORT_BYTES:
        raise HTTPException(status.HTTP_413_CONTENT_TOO_LARGE, f"at most {MAX_IMPORT_BYTES} bytes per import")
    try:
        result = weather.parse_weather(body, source, lat, lon)
    except weather.WeatherError as exc:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, str(exc)) from exc
    with conn.transaction():
        stored, rejected = weather.store_weather(conn, result)
    store.audit(conn, user, "import:weather", [], {"source": source, "stored": stored, "rejected": rejected})
    return ImportOut(source, stored, rejected, list(result.rejected[:20]))


@router.get("/api/weather")
def get_weather(
    conn: ConnDep,
    user: CurrentUser,
    lat: Annotated[float, Query(ge=-90, le=90)],
    lon: Annotated[float, Query(ge=-180, le=180)],
    start: datetime,
    end: datetime,
) -> list[weather.WeatherRow]:
    """Stored hourly weather nearest to a place (within 0.25°) in [start, end), oldest first."""
    s, e = check_range(start, end)
    assert s is not None and e is not None
    if e - s > MAX_WEATHER_SPAN:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, "end: at most 400 days after start")
    return weather.weather_near(conn, lat, lon, s, e)


@router.get("/api/patients/{patient_id}/home")
def get_home(patient_id: int, conn: ConnDep, user: CurrentUser) -> HomeOut:
    """The patient's home location (null if not set)."""
    require_patient(conn, user, patient_id)
    home = weather.get_home(conn, patient_id)
    store.audit(conn, user, "read:home", [patient_id])
    return HomeOut(patient_id, *(home or (None, None)))


@router.put("/api/patients/{patient_id}/home")
def put_home(patient_id: int, home: HomeIn, conn: ConnDep, user: CurrentUser) -> HomeOut:
    """Set the patient's home location (where their weather comes from without GPS)."""
    require_patient(conn, user, patient_id)
    with conn.transaction():
        weather.set_home(conn, patient_id, home.lat, home.lon)
    store.audit(conn, user, "write:home", [patient_id])
    return HomeOut(patient_id, home.lat, home.lon)
