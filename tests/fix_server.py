"""The real server (API, portal and an ingest worker) on a loopback port, for end-to-end tests."""

from __future__ import annotations

import secrets
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass

import psycopg
import pytest

from server.embedded import free_port
from server.settings import ServerSettings

START_TIMEOUT_S = 30.0


@dataclass(frozen=True)
class LiveServer:
    """A running server and a clinician who may sign in to it."""

    url: str
    settings: ServerSettings
    username: str
    password: str


@pytest.fixture
def live_server(db_url: str, mqtt_url: str) -> Iterator[LiveServer]:
    """uvicorn serving ``create_app`` in a thread, with the ingest worker inside, on this run's services."""
    import uvicorn

    from server.app import GRACEFUL_SHUTDOWN_S, create_app
    from server.store import add_user

    username, password = f"dr-{secrets.token_hex(3)}", secrets.token_urlsafe(12)
    with psycopg.connect(db_url) as conn:
        add_user(conn, username, password, "clinician")
    settings = ServerSettings(
        database_url=db_url,
        mqtt_url=mqtt_url,
        http_port=free_port(),
        mqtt_client_id=f"ingest-{secrets.token_hex(4)}",
        ingest_in_server=True,
        alert_hold_seconds=60,
        alert_clear_seconds=120,
    )
    server = uvicorn.Server(
        uvicorn.Config(create_app(settings), host="127.0.0.1", port=settings.http_port, log_level="warning",
                       timeout_graceful_shutdown=GRACEFUL_SHUTDOWN_S)
    )
    thread = threading.Thread(target=server.run, name="uvicorn", daemon=True)
    thread.start()
    deadline = time.monotonic() + START_TIMEOUT_S
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            pytest.fail("the server did not start")
        time.sleep(0.05)
    try:
        yield LiveServer(f"http://127.0.0.1:{settings.http_port}", settings, username, password)
    finally:
        server.should_exit = True
        thread.join(timeout=15)
        from tests.server.helpers import forget_session

        forget_session(mqtt_url, settings.mqtt_client_id)


def provision(db_url: str, device_id: str, clinician: str, name: str = "") -> int:
    """Register a patient with phone ``device_id`` and assign them to ``clinician``."""
    from server.store import add_patient, assign_patient

    with psycopg.connect(db_url) as conn:
        patient_id = add_patient(conn, name or f"Patient {device_id}", device_id)
        assign_patient(conn, clinician, patient_id)
    return patient_id
