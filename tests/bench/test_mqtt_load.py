"""The benchmarks' lean MQTT load generator against a real broker: every message arrives, whole and in order."""

from __future__ import annotations

import secrets
import sys
import threading
from pathlib import Path
from typing import Any

import pytest

from tests.server.helpers import mqtt_client, wait_for
from wire import BrokerAddress

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))
from mqtt_load import _remaining_length, publish_all, publish_paced  # noqa: E402


@pytest.mark.parametrize("n, encoded", [(0, b"\x00"), (127, b"\x7f"), (128, b"\x80\x01"), (16_383, b"\xff\x7f"),
                                        (16_384, b"\x80\x80\x01"), (268_435_455, b"\xff\xff\xff\x7f")])  # fmt: skip
def test_remaining_length_is_the_specs_variable_byte_integer(n: int, encoded: bytes) -> None:
    assert _remaining_length(n) == encoded  # MQTT 5.0 section 1.5.5, its table of examples


@pytest.mark.parametrize("paced", [False, True])
def test_every_message_arrives_whole_and_in_order(mqtt_url: str, paced: bool) -> None:
    address = BrokerAddress.parse(mqtt_url)
    if address.username or address.tls:
        pytest.skip("the load generator speaks plain, anonymous MQTT (the benchmarks' own broker)")
    topic = f"t-load-{secrets.token_hex(4)}/x"
    sizes = [0, 1, 200, 20_000, 70_000] + [300] * (100 if paced else 600)  # under a broker queue (Mosquitto: 1,000)
    payloads = [secrets.token_bytes(n) for n in sizes]
    got: list[bytes] = []
    subscribed = threading.Event()
    sub = mqtt_client(mqtt_url)
    sub.on_message = lambda _c, _u, m: got.append(m.payload)
    sub.on_subscribe = lambda *_a: subscribed.set()
    sub.subscribe(topic, qos=1)
    try:
        assert subscribed.wait(10)
        messages = [(topic, p) for p in payloads]
        if paced:
            sent_at = publish_paced(address.host, address.port, messages, rate=1_000)
            assert len(sent_at) == len(payloads) and sent_at == sorted(sent_at)  # one send time per message
        else:
            publish_all(address.host, address.port, messages, in_flight=100)
        wait_for(lambda: len(got) >= len(payloads), timeout=30, what="every message")
        assert got == payloads
    finally:
        sub.disconnect()
        sub.loop_stop()
