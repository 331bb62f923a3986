"""The HTTP API: one router per resource over the dependencies in :mod:`server.api.deps`."""

from fastapi import APIRouter

from server.api import admin, alerts, analysis, audit, auth, caregiver, consents, exports, invitations, me
from server.api import medication, patients, reports, rights, stream, strips, symptoms, thresholds, visits, weather

__all__ = ["api_router"]

api_router = APIRouter()
for _module in (auth, patients, strips, exports, rights, stream, alerts, symptoms, admin, audit, thresholds, analysis,
                weather, consents, invitations, me, caregiver, reports, visits, medication):
    api_router.include_router(_module.router)
