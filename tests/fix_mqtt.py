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
def mqtt_broker() -> Iterator[tuple[str, str]]:
    """(URL, engine) of a running MQTT broker; engine is "external", "mosquitto" or "amqtt"."""
    url = os.environ.get("PISCES_TEST_MQTT_URL")
    if url:
        yield url, "external"
        return
    from server.embedded import embedded_broker

    with embedded_broker() as broker:
        yield broker.url, broker.engine


@pytest.fixture(scope="session")
def mqtt_url(mqtt_broker: tuple[str, str]) -> str:
    """URL of a running MQTT broker."""
    return mqtt_broker[0]


@pytest.fixture
def redelivering_broker(mqtt_broker: tuple[str, str]) -> None:
    """Skip unless the broker redelivers unacknowledged QoS 1 messages to a persistent session.

    The pure-Python fallback broker does not; Mosquitto and the other real ones do.
    """
    if mqtt_broker[1] == "amqtt":
        pytest.skip("the embedded amqtt broker does not redeliver unacknowledged messages; install mosquitto")


@pytest.fixture
def device_id() -> str:
    """A device id no other test uses."""
    return f"t-{secrets.token_hex(4)}"
