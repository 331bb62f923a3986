"""The HTTP API: one router per resource over the dependencies in :mod:`server.api.deps`."""

from fastapi import APIRouter

from server.api import admin, alerts, analysis, audit, auth, exports, medication, patients, stream, strips, symptoms
from server.api import thresholds, weather

__all__ = ["api_router"]

api_router = APIRouter()
for _module in (auth, patients, strips, exports, stream, alerts, symptoms, admin, audit, thresholds, analysis, weather,
                medication):
    api_router.include_router(_module.router)
