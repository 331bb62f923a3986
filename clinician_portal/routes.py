"""The clinician portal's pages: static HTML, CSS and JS that call the API (no SQL, no templates).

Pages: ``/`` overview (live alert inbox, patients), ``/patients/{id}`` trends,
``/patients/{id}/thresholds`` threshold editor, ``/patients/{id}/medication``
medication plan editor, ``/search`` symptom-period
search and correlation, ``/strips/{patient}/{device}/{seq}`` ECG strip viewer,
``/login``. Each page reads the ids it needs from its own URL.
"""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter, FastAPI
from fastapi.responses import FileResponse
from fastapi.staticfiles import StaticFiles

STATIC_DIR = Path(__file__).with_name("static")
NO_STORE = {"Cache-Control": "no-store"}

router = APIRouter(include_in_schema=False)


def _page(name: str) -> FileResponse:
    return FileResponse(STATIC_DIR / name, headers=NO_STORE)


@router.get("/")
def overview() -> FileResponse:
    """The overview: alert inbox and patients (the page signs in if needed)."""
    return _page("index.html")


@router.get("/login")
def login_page() -> FileResponse:
    """The sign-in page."""
    return _page("login.html")


@router.get("/patients/{patient_id}")
def patient_page(patient_id: int) -> FileResponse:
    """A patient's trends, alerts and symptom periods on one time axis."""
    return _page("patient.html")


@router.get("/patients/{patient_id}/thresholds")
def thresholds_page(patient_id: int) -> FileResponse:
    """The threshold editor of a patient."""
    return _page("thresholds.html")


@router.get("/patients/{patient_id}/medication")
def medication_page(patient_id: int) -> FileResponse:
    """The medication plan editor of a patient (versions, who and when)."""
    return _page("medication.html")


@router.get("/search")
def search_page() -> FileResponse:
    """Symptom-period search and symptom-rhythm correlation."""
    return _page("search.html")


@router.get("/strips/{patient_id}/{device_id}/{seq}")
def strip_page(patient_id: int, device_id: str, seq: int) -> FileResponse:
    """The ECG strip viewer."""
    return _page("strip.html")


def mount_portal(app: FastAPI) -> None:
    """Serve the portal's pages and its assets at ``/static``."""
    app.include_router(router)
    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")
