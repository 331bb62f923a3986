"""The server's composition root: ``create_app(settings)`` builds the FastAPI application.

Its lifespan owns the database pool, with ``settings.ingest_in_server`` one ingest
worker, and with ``settings.escalation_in_server`` the time-driven alert loop
(no-signal alerts, escalation, config pushes; several instances are safe). It
mounts the API under ``/api``, Prometheus metrics at ``/metrics`` and the
clinician portal at ``/``.
"""

from __future__ import annotations

import threading
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from typing import Any

from fastapi import FastAPI
from fastapi.concurrency import run_in_threadpool
from psycopg_pool import ConnectionPool

from clinician_portal.routes import mount_portal
from server.api import api_router
from server.escalation import run_escalation
from server.ingest import Ingestor
from server.metrics import IngestMetrics, metrics_app
from server.security import LoginLimiter, add_security_middleware
from server.settings import ServerSettings

POOL_OPEN_TIMEOUT_S = 10.0
# Live alert streams never end by themselves: on shutdown, uvicorn closes them after this long.
GRACEFUL_SHUTDOWN_S = 2.0
ESCALATION_STOP_S = 10.0


def create_app(settings: ServerSettings) -> FastAPI:
    """Build the application; raise ValueError if the settings cannot run a server."""
    if settings.database_url is None:
        raise ValueError("settings.database_url is None: start PostgreSQL (or the embedded one) first")
    if settings.ingest_in_server and settings.mqtt_url is None:
        raise ValueError("settings.ingest_in_server needs settings.mqtt_url (or set ingest_in_server=False)")

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        pool: ConnectionPool[Any] = ConnectionPool(
            settings.database_url or "", min_size=1, max_size=settings.db_pool_size, open=False,
            kwargs={"autocommit": True}, check=ConnectionPool.check_connection, name="pisces-api",
        )  # fmt: skip
        await run_in_threadpool(pool.open, True, POOL_OPEN_TIMEOUT_S)
        ingestor = Ingestor(settings, metrics) if settings.ingest_in_server else None
        try:
            if ingestor is not None:
                await run_in_threadpool(ingestor.start)
            app.state.pool, app.state.ingestor = pool, ingestor
            with _escalation_loop(settings):
                yield
        finally:
            if ingestor is not None:
                await run_in_threadpool(ingestor.stop)
            await run_in_threadpool(pool.close)

    metrics = IngestMetrics()
    app = FastAPI(title="pisces", version="0.1.0", lifespan=lifespan)
    app.state.settings = settings
    app.state.login_limiter = LoginLimiter(settings.login_max_failures, settings.login_window_seconds)
    add_security_middleware(app, settings)
    app.include_router(api_router)
    app.mount("/metrics", metrics_app(metrics))

    @app.get("/healthz", tags=["ops"])
    def healthz() -> dict[str, Any]:
        """Liveness, and the ingest worker's counters when it runs here (no auth)."""
        ingestor: Ingestor | None = getattr(app.state, "ingestor", None)
        return {"status": "ok", "ingest": vars(ingestor.counters) if ingestor else None}

    mount_portal(app)
    return app


@contextmanager
def _escalation_loop(settings: ServerSettings) -> Iterator[None]:
    """Run the escalation loop in a thread while the app serves (when enabled and a broker is set)."""
    if not (settings.escalation_in_server and settings.mqtt_url):
        yield
        return
    stop = threading.Event()
    thread = threading.Thread(target=run_escalation, args=(settings, stop), name="pisces-escalation", daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join(timeout=ESCALATION_STOP_S)
