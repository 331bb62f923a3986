"""A real MQTT broker for tests, on loopback.

The broker named by ``PISCES_TEST_MQTT_URL`` when set; otherwise a
``mosquitto`` this fixture spawns on a free port, or, where none is installed,
the embedded pure-Python one. Tests keep apart by using device ids of their own.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator

import pytest


@pytest.fixture(scope="session")
def mqtt_url() -> Iterator[str]:
    """URL of a running MQTT broker."""
    url = os.environ.get("PISCES_TEST_MQTT_URL")
    if url:
        yield url
        return
    from server.embedded import embedded_broker

    with embedded_broker() as broker:
        yield broker.url


@pytest.fixture
def device_id() -> str:
    """A device id no other test uses."""
    return f"t-{secrets.token_hex(4)}"
