"""Vitals against weather and movement: ``GET /api/patients/{id}/analysis`` (+ ``.csv``),
``GET /api/patients/{id}/weather-hours.csv``, ``GET /api/patients/{id}/mobility`` and
``GET /api/analysis/cohort``.

Default period: the 30 days up to the patient's newest data (at most 400 days).
The statistics are :mod:`server.analysis`; the linkage :mod:`server.weather`.
A cohort is the signed-in clinician's own patients (all patients for admins).
Every read is audited.

Consent (:mod:`server.consent`): a patient's weather is linked only with their
consent to weather linkage (else 403 naming the purpose), by GPS only while
location sharing is consented (else by the home location); mobility needs
location consent (else 403). A cohort pools only patients who consented to
research use *and* weather linkage, and says how many were left out and why.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta, timezone
from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Query, status
from fastapi.responses import StreamingResponse

from server import analysis, consent, mobility, queries, store, weather
from server.api.deps import ConnDep, CurrentUser, SettingsDep, check_range
from server.api.patients import End, Start, require_patient, span
from server.queries import PatientRow

router = APIRouter(tags=["analysis"])

DEFAULT_PERIOD = timedelta(days=30)
Alpha = Annotated[float, Query(gt=0, lt=0.5, description="family-wise error rate (Holm)")]
CohortStart = Annotated[datetime | None, Query(description="ISO 8601; default: 30 days before end")]
CohortEnd = Annotated[datetime | None, Query(description="ISO 8601; default: each patient's newest data")]


@dataclass(frozen=True)
class PatientAnalysis:
    """A patient's report and the linked hours it was computed from (for plots)."""

    patient_id: int
    start: datetime
    end: datetime
    report: analysis.Report
    hours: list[weather.LinkedHour]
    hours_with_weather: int


@dataclass(frozen=True)
class CohortAnalysis:
    """A cohort's pooled report, which patients it pooled, and how many it left out for lack of consent.

    ``excluded_no_research``: patients without consent to research use;
    ``excluded_no_weather``: of the others, those without consent to weather linkage.
    """

    start: datetime | None
    end: datetime | None
    patient_ids: list[int]
    report: analysis.Report
    excluded_no_research: int = 0
    excluded_no_weather: int = 0


def require_consent(conn: ConnDep, patient_id: int, purpose: consent.Purpose) -> None:
    """403 naming the purpose unless the patient's consent to it is in force."""
    if not consent.granted(conn, patient_id, purpose):
        raise HTTPException(status.HTTP_403_FORBIDDEN, f"no consent: patient {patient_id} has not consented to "
                            f"{consent.PURPOSE_LABELS[purpose]} (purpose {purpose})")  # fmt: skip


def _period(patient: PatientRow, start: datetime | None, end: datetime | None) -> tuple[datetime, datetime]:
    s, e = check_range(start, end)
    e = e or patient.last_data_at or datetime.now(timezone.utc)
    return span(patient, s or e - DEFAULT_PERIOD, e)


def _linked(conn: ConnDep, user: CurrentUser, settings: SettingsDep, patient_id: int, start: datetime | None,
            end: datetime | None) -> tuple[datetime, datetime, list[weather.LinkedHour]]:
    s, e = _period(require_patient(conn, user, patient_id), start, end)
    require_consent(conn, patient_id, "weather")
    gps = consent.granted(conn, patient_id, "location")
    return s, e, weather.patient_hours(conn, patient_id, s, e, settings.min_quality, gps=gps)


@router.get("/api/patients/{patient_id}/analysis")
def patient_analysis(patient_id: int, conn: ConnDep, user: CurrentUser, settings: SettingsDep,
                     start: Start = None, end: End = None, alpha: Alpha = analysis.ALPHA) -> PatientAnalysis:
    """Associations of HR, RMSSD and respiration with temperature, pressure, humidity and activity."""
    s, e, hours = _linked(conn, user, settings, patient_id, start, end)
    report = analysis.analyse_patient(weather.analysis_columns(hours), alpha)
    store.audit(conn, user, "read:analysis", [patient_id], {"start": str(s), "end": str(e)})
    with_weather = sum(h.temperature_c is not None or h.pressure_hpa is not None for h in hours)
    return PatientAnalysis(patient_id, s, e, report, hours, with_weather)


def _csv(header: Iterable[str], rows: Iterable[dict[str, Any]]) -> Iterator[str]:
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=list(header), lineterminator="\r\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({k: (v.isoformat() if isinstance(v, datetime) else v) for k, v in row.items()})
        yield buf.getvalue()
        buf.seek(0)
        buf.truncate()
    yield buf.getvalue()


def _download(text: Iterator[str], name: str) -> StreamingResponse:
    return StreamingResponse(text, media_type="text/csv; charset=utf-8",
                             headers={"Content-Disposition": f'attachment; filename="{name}"'})


@router.get("/api/patients/{patient_id}/analysis.csv")
def patient_analysis_csv(patient_id: int, conn: ConnDep, user: CurrentUser, settings: SettingsDep,
                         start: Start = None, end: End = None, alpha: Alpha = analysis.ALPHA) -> StreamingResponse:
    """The associations as CSV, one line per vital, factor and method."""
    s, e, hours = _linked(conn, user, settings, patient_id, start, end)
    rows = analysis.report_rows(analysis.analyse_patient(weather.analysis_columns(hours), alpha))
    store.audit(conn, user, "export:analysis", [patient_id], {"start": str(s), "end": str(e)})
    return _download(_csv(rows[0].keys(), rows), f"pisces-patient-{patient_id}-associations.csv")


@router.get("/api/patients/{patient_id}/weather-hours.csv")
def patient_hours_csv(patient_id: int, conn: ConnDep, user: CurrentUser, settings: SettingsDep,
                      start: Start = None, end: End = None) -> StreamingResponse:
    """The linked hours as CSV: hourly vitals, movement and the weather at the patient's place."""
    s, e, hours = _linked(conn, user, settings, patient_id, start, end)
    store.audit(conn, user, "export:weather-hours", [patient_id], {"start": str(s), "end": str(e)})
    fields = list(weather.LinkedHour.__dataclass_fields__)
    return _download(_csv(fields, (asdict(h) for h in hours)), f"pisces-patient-{patient_id}-weather-hours.csv")


@router.get("/api/patients/{patient_id}/mobility")
def patient_mobility(patient_id: int, conn: ConnDep, user: CurrentUser, start: Start = None,
                     end: End = None) -> list[mobility.DayMobility]:
    """Distance and time at home per UTC day, from consented GPS (an empty list: no GPS; 403: no consent)."""
    s, e = _period(require_patient(conn, user, patient_id), start, end)
    require_consent(conn, patient_id, "location")
    days = mobility.mobility_days(mobility.patient_fixes(conn, patient_id, s, e), weather.get_home(conn, patient_id))
    store.audit(conn, user, "read:mobility", [patient_id], {"start": str(s), "end": str(e)})
    return days


@router.get("/api/analysis/cohort")
def cohort_analysis(conn: ConnDep, user: CurrentUser, settings: SettingsDep, start: CohortStart = None,
                    end: CohortEnd = None, alpha: Alpha = analysis.ALPHA) -> CohortAnalysis:
    """The associations pooled over the user's patients who consented to research and weather linkage."""
    check_range(start, end)  # 422 for a bad range even when no patient is pooled
    patients = queries.list_patients(conn, user)
    granted = consent.granted_many(conn, [p.id for p in patients])
    research = [p for p in patients if "research" in granted[p.id]]
    pooled = [p for p in research if "weather" in granted[p.id]]
    columns = []
    for p in pooled:
        s, e = _period(p, start, end)
        hours = weather.patient_hours(conn, p.id, s, e, settings.min_quality, gps="location" in granted[p.id])
        columns.append(weather.analysis_columns(hours))
    report = analysis.analyse_cohort(columns, alpha)
    ids = [p.id for p in pooled]
    store.audit(conn, user, "read:analysis-cohort", ids, {"start": str(start), "end": str(end)})
    return CohortAnalysis(start, end, ids, report, len(patients) - len(research), len(research) - len(pooled))
