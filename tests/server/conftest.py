"""Fixtures for the server tests: settings for this run's services, a provisioned patient."""

from __future__ import annotations

from collections.abc import Iterator

import psycopg
import pytest

from server.ingest import Ingestor
from server.settings import ServerSettings
from server.store import add_patient
from tests.server.helpers import forget_session


@pytest.fixture
def settings(db_url: str, mqtt_url: str, device_id: str) -> ServerSettings:
    """Server settings on the test database and broker; alerts after 60 s, clear after 120 s."""
    return ServerSettings(
        database_url=db_url,
        mqtt_url=mqtt_url,
        mqtt_client_id=f"ingest-{device_id}",
        alert_hold_seconds=60,
        alert_clear_seconds=120,
        ingest_in_server=False,
    )


@pytest.fixture
def patient_id(db_url: str, device_id: str) -> int:
    """A patient whose phone is ``device_id``."""
    with psycopg.connect(db_url) as conn:
        return add_patient(conn, f"Patient {device_id}", device_id)


@pytest.fixture
def ingestor(settings: ServerSettings, patient_id: int) -> Iterator[Ingestor]:
    """A running ingest worker (stopped and its broker session dropped afterwards)."""
    worker = Ingestor(settings)
    worker.start()
    yield worker
    worker.stop()
    forget_session(settings.mqtt_url or "", settings.mqtt_client_id)
