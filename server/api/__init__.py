"""The HTTP API: one router per resource over the dependencies in :mod:`server.api.deps`."""

from fastapi import APIRouter

from server.api import admin, alerts, analysis, audit, auth, exports, patients, reports, stream, strips, symptoms
from server.api import thresholds, visits, weather

__all__ = ["api_router"]

api_router = APIRouter()
for _module in (auth, patients, strips, exports, stream, alerts, symptoms, admin, audit, thresholds, analysis, weather,
                reports, visits):
    api_router.include_router(_module.router)
