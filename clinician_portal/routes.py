"""The portal's pages: static HTML, CSS and JS that call the API (no SQL, no templates).

Clinicians: ``/`` overview (live alert inbox, patients), ``/patients/{id}``
trends (and consent), ``/patients/{id}/thresholds`` threshold editor,
``/patients/{id}/report`` the printable visit report and visits,
``/patients/{id}/medication`` medication plan editor,
``/search`` symptom-period search and correlation,
``/strips/{patient}/{device}/{seq}`` ECG strip viewer. Everyone: ``/login``,
``/join`` (an invitation code into a new account). Patients: ``/me`` (their
consent and caregivers). Caregivers: ``/caregiver`` (the patients they follow).
Each page reads the ids it needs from its own URL; the API decides what each
role may see.
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


@router.get("/patients/{patient_id}/report")
def report_page(patient_id: int) -> FileResponse:
    """The printable visit report of a patient, and the visit form."""
    return _page("report.html")


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


@router.get("/join")
def join_page() -> FileResponse:
    """Make an account with an invitation code (a patient's own, or a caregiver's)."""
    return _page("join.html")


@router.get("/me")
def me_page() -> FileResponse:
    """A patient's own page: status, consent per purpose, caregivers and invitations."""
    return _page("me.html")


@router.get("/caregiver")
def caregiver_page() -> FileResponse:
    """A caregiver's view of the patients they follow, with live alerts and their notification settings."""
    return _page("caregiver.html")


def mount_portal(app: FastAPI) -> None:
    """Serve the portal's pages and its assets at ``/static``."""
    app.include_router(router)
    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")
