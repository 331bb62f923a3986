"""The clinician portal's pages: static HTML, CSS and JS that call the API (no SQL, no templates yet)."""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter, FastAPI
from fastapi.responses import FileResponse
from fastapi.staticfiles import StaticFiles

STATIC_DIR = Path(__file__).with_name("static")

router = APIRouter(include_in_schema=False)


@router.get("/")
def overview() -> FileResponse:
    """The overview: alert inbox, patients, symptom periods (the page signs in if needed)."""
    return FileResponse(STATIC_DIR / "index.html", headers={"Cache-Control": "no-store"})


@router.get("/login")
def login_page() -> FileResponse:
    """The sign-in page."""
    return FileResponse(STATIC_DIR / "login.html", headers={"Cache-Control": "no-store"})


def mount_portal(app: FastAPI) -> None:
    """Serve the portal at ``/`` and its assets at ``/static``."""
    app.include_router(router)
    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")
