"""Production mode refuses unsafe configurations at startup; dev and demo keep working on a laptop."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from server.settings import ServerSettings

SAFE = {"mode": "production", "secret_key": "a long and random secret", "database_url": "postgresql://db/pisces"}


@pytest.mark.parametrize("url", [
    "mqtts://pisces-server:pw@broker.example.org:8883",  # TLS to another host
    "mqtt://pisces-server:pw@127.0.0.1:1883",  # plain, but it never leaves this host
    "mqtt://pisces-server:pw@localhost:1883",
    "mqtt://pisces-server:pw@[::1]:1883",
    "mqtts://pisces-server:pw@10.0.0.7",
])  # fmt: skip
def test_production_accepts_tls_or_loopback(url: str) -> None:
    assert ServerSettings(**SAFE, mqtt_url=url).mqtt_url == url


@pytest.mark.parametrize("url", [
    "mqtt://pisces-server:pw@broker.example.org:1883",
    "mqtt://pisces-server:pw@10.0.0.7:1883",
    "mqtt://pisces-server:pw@0.0.0.0:1883",  # every interface, not loopback
    "tcp://pisces-server:pw@192.168.1.2",
])  # fmt: skip
def test_production_refuses_a_plain_broker_on_another_host(url: str) -> None:
    with pytest.raises(ValidationError, match="TLS"):
        ServerSettings(**SAFE, mqtt_url=url)


def test_production_needs_the_server_account_and_takes_it_from_either_place() -> None:
    with pytest.raises(ValidationError, match="server account"):
        ServerSettings(**SAFE, mqtt_url="mqtts://broker.example.org")
    assert ServerSettings(**SAFE, mqtt_url="mqtts://broker.example.org", mqtt_username="pisces-server").mqtt_username


@pytest.mark.parametrize("mode", ["dev", "demo"])
def test_dev_and_demo_keep_a_plain_broker(mode: str) -> None:
    assert ServerSettings(mode=mode, mqtt_url="mqtt://broker.example.org:1883").mode == mode
