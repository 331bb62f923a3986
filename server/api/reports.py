"""The visit report: ``GET /api/patients/{id}/report`` (the report model as JSON).

The period runs by default from the patient's last recorded visit to now (see
:mod:`server.report.period`); ``tz`` names the time zone whose calendar days the
daily figures follow (the portal sends the browser's). A patient outside the
user's care is 404. Every report read is audited as ``read:report``.
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Annotated

from fastapi import APIRouter, HTTPException, Query, status

from server import store, visits
from server.api.deps import ConnDep, CurrentUser, SettingsDep, check_range
from server.api.patients import require_patient
from server.report.period import PeriodError, parse_zone, resolve_period
from server.report.reads import load_report_data
from server.report.sections import Report, build_report

router = APIRouter(prefix="/api/patients", tags=["reports"])

Start = Annotated[datetime | None, Query(description="ISO 8601; default: the last visit before `end`, "
                                         "else `end` minus report_default_days")]
End = Annotated[datetime | None, Query(description="ISO 8601; default: now")]
Zone = Annotated[str, Query(min_length=1, max_length=64, description="IANA time zone of the daily figures")]


@router.get("/{patient_id}/report")
def patient_report(
    patient_id: int, conn: ConnDep, user: CurrentUser, settings: SettingsDep,
    start: Start = None, end: End = None, tz: Zone = "UTC",
) -> Report:  # fmt: skip
    """The visit report of a patient: trends against the limits, alerts and their outcomes, symptom
    periods, rhythm events, medication adherence and data completeness over [start, end)."""
    patient = require_patient(conn, user, patient_id)
    start, end = check_range(start, end)
    now = datetime.now(timezone.utc)
    end = min(end or now, now)  # no days to come: they would count as days without data
    try:
        parse_zone(tz)
        visit = visits.last_visit(conn, patient_id, end) if start is None else None
        period = resolve_period(start, end, visit, settings.report_default_days, tz)
    except PeriodError as exc:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, str(exc)) from exc
    low = (settings.adherence_low_share, settings.adherence_low_days)
    data = load_report_data(conn, user, patient, period, settings.min_quality, now, low)
    store.audit(conn, user, "read:report", [patient_id], {"start": str(period.start), "end": str(period.end)})
    return build_report(data)
