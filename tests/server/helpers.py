"""Small helpers shared by the server tests: waiting, a plain paho publisher, the rollups' refresh."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

import paho.mqtt.client as mqtt
import psycopg
from paho.mqtt.enums import CallbackAPIVersion

from server.store import refresh_rollups, store_engine
from wire import BrokerAddress

T = TypeVar("T")


def wait_for(predicate: Callable[[], T], timeout: float = 10.0, what: str = "condition") -> T:
    """Poll ``predicate`` until it returns something truthy; fail the test after ``timeout`` s."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


def mqtt_client(url: str, client_id: str = "", clean: bool = True) -> mqtt.Client:
    """A connected paho client with its network loop running (logged in with the URL's credentials)."""
    address = BrokerAddress.parse(url)
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id, clean_session=clean)
    if address.username:
        client.username_pw_set(address.username, address.password)
    client.connect(address.host, address.port)
    client.loop_start()
    return client


def publish(url: str, messages: list[tuple[str, bytes]]) -> None:
    """Publish at QoS 1 and return once the broker has acknowledged every message."""
    client = mqtt_client(url)
    try:
        for topic, payload in messages:
            client.publish(topic, payload, qos=1).wait_for_publish(10)
    finally:
        client.disconnect()
        client.loop_stop()


def forget_session(url: str, client_id: str) -> None:
    """Drop a persistent session from the broker (so it stops queueing for a finished test)."""
    client = mqtt_client(url, client_id=client_id, clean=True)
    client.disconnect()
    client.loop_stop()


def refresh_as_the_policy_would(db_url: str) -> None:
    """On TimescaleDB, what its refresh policies do within minutes of an ingest.

    Windows stored below the continuous aggregates' watermark (older than what
    other tests stored and the policy materialised) reach the rollups only by a
    refresh (docs/server.md, "Freshness"). Plain PostgreSQL: nothing, the ingest
    keeps its rollups at commit.
    """
    with psycopg.connect(db_url, autocommit=True) as conn:
        if store_engine(conn) == "timescaledb":
            refresh_rollups(conn)
