"""Exports: a patient's period (``GET /api/patients/{id}/export.csv``, ``.../export.fhir.json``) and
everything stored about a patient (``GET /api/patients/{id}/export.zip``, the right of access and portability).

A period is at most :data:`MAX_EXPORT` (default: the last 24 h of data); the
whole record has no limit and streams (:mod:`server.data_export`). Every
export is audited. Formats are built by :mod:`server.exports`.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone

import psycopg

from fastapi import APIRouter
from fastapi.responses import Response, StreamingResponse

from server import data_export, exports, queries, store
from server.api.deps import ConnDep, CurrentUser, SettingsDep
from server.api.patients import End, Start, require_patient, span

router = APIRouter(prefix="/api/patients", tags=["exports"])

MAX_EXPORT = timedelta(days=31)
MAX_WINDOWS = 31 * 24 * 60 * 6  # 10-s windows for 31 days
MAX_STRIPS = 500


def _filename(patient_id: int, start: datetime, end: datetime, ext: str) -> str:
    return f"pisces-patient-{patient_id}-{start:%Y%m%dT%H%M}-{end:%Y%m%dT%H%M}.{ext}"


@router.get("/{patient_id}/export.csv")
def export_csv(patient_id: int, conn: ConnDep, user: CurrentUser, start: Start = None, end: End = None) -> Response:
    """The patient's summary windows in [start, end) as CSV (UTF-8, header line, times ISO 8601 UTC)."""
    start, end = span(require_patient(conn, user, patient_id), start, end, MAX_EXPORT)
    rows = queries.list_summaries(conn, patient_id, start, end, MAX_WINDOWS)
    store.audit(conn, user, "export:csv", [patient_id], {"start": str(start), "end": str(end)})
    disposition = f'attachment; filename="{_filename(patient_id, start, end, "csv")}"'
    return StreamingResponse(exports.summaries_csv(rows), media_type="text/csv; charset=utf-8",
                             headers={"Content-Disposition": disposition})


@router.get("/{patient_id}/export.fhir.json")
def export_fhir(
    patient_id: int, conn: ConnDep, user: CurrentUser, settings: SettingsDep, start: Start = None, end: End = None
) -> Response:
    """The patient's period as an HL7 FHIR R4 Bundle of Observations (heart rate, respiratory rate, ECG strips)."""
    patient = require_patient(conn, user, patient_id)
    start, end = span(patient, start, end, MAX_EXPORT)
    rows = queries.list_summaries(conn, patient_id, start, end, MAX_WINDOWS)
    infos = queries.list_strips(conn, patient_id, start, end, MAX_STRIPS)
    strips = [s for i in infos if (s := queries.get_strip(conn, patient_id, i.device_id, i.seq)) is not None]
    bundle = exports.fhir_bundle(patient, rows, strips, settings.min_quality, datetime.now(timezone.utc))
    store.audit(conn, user, "export:fhir", [patient_id], {"start": str(start), "end": str(end)})
    disposition = f'attachment; filename="{_filename(patient_id, start, end, "fhir.json")}"'
    return Response(json.dumps(bundle, separators=(",", ":")), media_type="application/fhir+json",
                    headers={"Content-Disposition": disposition})


@router.get("/{patient_id}/export.zip", response_class=StreamingResponse,
            responses={200: {"content": {"application/zip": {}}, "description": "the archive"}})
def export_all(patient_id: int, conn: ConnDep, user: CurrentUser, settings: SettingsDep) -> StreamingResponse:
    """Everything stored about the patient as one zip: CSV per table, JSON, a FHIR R4 Bundle, ECG as WFDB."""
    require_patient(conn, user, patient_id)
    store.audit(conn, user, "export:all", [patient_id], {"format": data_export.FORMAT})
    now = datetime.now(timezone.utc)
    pieces = _archive(settings.database_url or "", patient_id, user.username, user.reason, now, settings.min_quality)
    disposition = f'attachment; filename="{data_export.archive_name(patient_id, now)}"'
    return StreamingResponse(pieces, media_type="application/zip", headers={"Content-Disposition": disposition})


def _archive(url: str, patient_id: int, username: str, reason: str | None, now: datetime,
             usable_quality: float) -> Iterator[bytes]:  # fmt: skip
    """The archive on a connection of its own (a long download holds no pool connection)."""
    with psycopg.connect(url, autocommit=True, application_name="pisces-export") as conn:
        yield from data_export.export_archive(conn, patient_id, username, reason, now, usable_quality)
