"""ECG strips: ``GET /api/patients/{id}/strips`` and ``GET /api/patients/{id}/strips/{device}/{seq}``.

A strip is named by the device that recorded it and the message's sequence
number (its idempotency key). The detail carries the samples (µV), the beats
found in them (the edge's own R-peak detector, so the marks match what the
phone counted) and the rhythm windows and patient events that fall inside it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

import numpy as np
from fastapi import APIRouter, HTTPException, status

from edge.dsp import ecg_peaks
from server import queries, store, trends
from server.api.patients import End, Start, require_patient, span
from server.api.deps import ConnDep, CurrentUser
from server.queries import StripInfo
from server.trends import Mark

router = APIRouter(prefix="/api/patients", tags=["strips"])


@dataclass(frozen=True)
class StripOut:
    """A strip for the viewer: samples in µV at ``info.fs`` Hz, beat sample indices, marks."""

    info: StripInfo
    samples_uv: list[int]
    beats: list[int]
    marks: list[Mark]


def strip_beats(samples_uv: list[int], fs: float) -> list[int]:
    """Sample indices of the R peaks of a strip (µV in, the detector works in mV)."""
    return [int(i) for i in ecg_peaks(np.asarray(samples_uv, dtype=float) / 1000.0, fs)]


@router.get("/{patient_id}/strips")
def list_strips(patient_id: int, conn: ConnDep, user: CurrentUser, start: Start = None, end: End = None) -> list[StripInfo]:
    """The patient's strips starting in [start, end) (default: the last 24 h of data), oldest first."""
    start, end = span(require_patient(conn, user, patient_id), start, end)
    rows = queries.list_strips(conn, patient_id, start, end)
    store.audit(conn, user, "read:strips", [patient_id], {"start": str(start), "end": str(end)})
    return rows


@router.get("/{patient_id}/strips/{device_id}/{seq}")
def get_strip(patient_id: int, device_id: str, seq: int, conn: ConnDep, user: CurrentUser) -> StripOut:
    """One strip with its samples, beats and marks; 404 if unknown or not the user's patient."""
    require_patient(conn, user, patient_id)
    strip = queries.get_strip(conn, patient_id, device_id, seq)
    if strip is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no strip {device_id}/{seq} of patient {patient_id}")
    info = strip.info
    end: datetime = info.start + timedelta(seconds=info.duration_s)
    marks = trends.marks_between(conn, patient_id, info.start, end)
    store.audit(conn, user, "read:strip", [patient_id], {"device_id": device_id, "seq": seq})
    return StripOut(info, strip.samples_uv, strip_beats(strip.samples_uv, info.fs), marks)
