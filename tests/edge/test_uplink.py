"""The uplink against a real broker: QoS 1 topics, ack on PUBACK, offline survival, downlink, the retained
status with its last will, and the persistent session that keeps notifications for an absent phone."""

from __future__ import annotations

import queue
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest

from edge.outbox import Outbox
from edge.uplink import PlainBrokerRefused, TlsAndLogin, Uplink
from tests.edge.test_reliability import PrivateBroker
from tests.server.helpers import forget_session, publish
from wire import BrokerAddress, Event, EventType, Kind, Level, Notify, Status, decode, encode, topic_for

pytestmark = pytest.mark.mqtt


class Subscriber:
    """A plain paho subscriber collecting (topic, qos, payload)."""

    def __init__(self, url: str, topic: str) -> None:
        addr = BrokerAddress.parse(url)
        self.got: queue.SimpleQueue[tuple[str, int, bytes]] = queue.SimpleQueue()
        self.client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2)
        self.client.on_message = lambda c, u, m: self.got.put((m.topic, m.qos, m.payload))
        subscribed = queue.SimpleQueue[int]()
        self.client.on_subscribe = lambda *a: subscribed.put(1)
        self.client.on_connect = lambda c, *a: c.subscribe(topic, qos=1)
        self.client.connect(addr.host, addr.port)
        self.client.loop_start()
        subscribed.get(timeout=10)

    def take(self, n: int, timeout: float = 10.0) -> list[tuple[str, int, bytes]]:
        return [self.got.get(timeout=timeout) for _ in range(n)]

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def _until(cond: Callable[[], bool], pump: Callable[[], object], timeout: float = 15.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        pump()
        if cond():
            return True
        time.sleep(0.05)
    return False


def _panic(device: str) -> Callable[[int], Event]:
    return lambda seq: Event(device, seq, EventType.PANIC, 1_700_000_000.0 + seq)


def test_publishes_qos1_and_acks_after_puback(mqtt_url: str, device_id: str, tmp_path: Path) -> None:
    sub = Subscriber(mqtt_url, f"pisces/v1/{device_id}/event")
    box = Outbox(tmp_path / "o.sqlite3")
    for _ in range(5):
        box.put(_panic(device_id))
    uplink = Uplink(device_id, BrokerAddress.parse(mqtt_url), box)
    assert box.pending_count() == 5  # nothing acked before any PUBACK
    uplink.start()
    try:
        assert uplink.wait_connected(10)
        assert _until(lambda: box.pending_count() == 0, uplink.pump)
        got = sub.take(5)
        assert {t for t, _, _ in got} == {topic_for(device_id, "event")}
        assert all(q == 1 for _, q, _ in got)
        assert sorted(decode(p).seq for _, _, p in got) == [0, 1, 2, 3, 4]
        assert uplink.counters["acked"] == 5
    finally:
        uplink.stop()
        sub.close()
        box.close()


def test_downlink_notify_and_config(mqtt_url: str, device_id: str, tmp_path: Path) -> None:
    notes: queue.SimpleQueue[object] = queue.SimpleQueue()
    box = Outbox(tmp_path / "o.sqlite3")
    uplink = Uplink(device_id, BrokerAddress.parse(mqtt_url), box, on_notify=notes.put, on_config=notes.put)
    uplink.start()
    pub = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2)
    addr = BrokerAddress.parse(mqtt_url)
    pub.connect(addr.host, addr.port)
    pub.loop_start()
    try:
        assert uplink.wait_connected(10)
        time.sleep(0.3)  # let the subscription settle
        yellow = Notify(device_id, 1_700_000_000.0, Level.YELLOW, "High heart rate", parameter="hr")
        pub.publish(topic_for(device_id, "notify"), b"not json", qos=1).wait_for_publish(5)
        pub.publish(topic_for(device_id, "notify"), encode(yellow), qos=1).wait_for_publish(5)
        assert notes.get(timeout=10) == yellow
        assert uplink.counters["bad_downlink"] == 1
    finally:
        pub.disconnect()
        pub.loop_stop()
        uplink.stop()
        box.close()


@pytest.fixture
def private_broker() -> Iterator[tuple[str, Callable[[], None], Callable[[], None]]]:
    """A mosquitto of our own on a fixed port that the test can stop and start again (no persistence)."""
    broker = PrivateBroker(persistent=False)
    broker.start()
    try:
        yield broker.url, broker.start, broker.stop
    finally:
        broker.close()


def test_messages_kept_while_broker_down_then_sent(private_broker, device_id: str, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    url, start, stop = private_broker
    box = Outbox(tmp_path / "o.sqlite3")
    uplink = Uplink(device_id, BrokerAddress.parse(url), box)
    uplink.start()
    try:
        assert uplink.wait_connected(10)
        box.put(_panic(device_id))
        assert _until(lambda: box.pending_count() == 0, uplink.pump)
        stop()
        assert _until(lambda: not uplink.connected, uplink.pump)
        for _ in range(4):
            box.put(_panic(device_id))
        _until(lambda: False, uplink.pump, timeout=0.5)
        assert box.pending_count() == 4  # not acked while the broker is away
        start()
        sub = Subscriber(url, f"pisces/v1/{device_id}/event")
        assert _until(lambda: box.pending_count() == 0, uplink.pump, timeout=30)
        got = sorted({decode(p).seq for _, _, p in sub.take(4, timeout=10)})
        assert len(got) == 4
        sub.close()
    finally:
        uplink.stop()
        box.close()


@pytest.mark.parametrize("url, tls, allow, refused", [
    ("mqtt://broker.example.org:1883", False, False, True),  # health data in the clear across a network
    ("mqtt://10.0.0.7:1883", False, False, True),
    ("mqtt://broker.example.org:1883", False, True, False),  # explicitly allowed
    ("mqtt://broker.example.org:8883", True, False, False),  # TLS forced for an mqtt:// URL
    ("mqtts://broker.example.org", False, False, False),
    ("mqtt://127.0.0.1:1883", False, False, False),  # loopback never leaves the phone
    ("mqtt://localhost:1883", False, False, False),
    ("mqtt://[::1]:1883", False, False, False),
])  # fmt: skip
def test_plain_mqtt_beyond_loopback_is_refused_unless_allowed(
    url: str, tls: bool, allow: bool, refused: bool, tmp_path: Path
) -> None:
    box = Outbox(tmp_path / "o.sqlite3")
    try:
        make = lambda: Uplink("dev-x", BrokerAddress.parse(url), box, login=TlsAndLogin(tls=tls, allow_plain=allow))  # noqa: E731
        if refused:
            with pytest.raises(PlainBrokerRefused, match="mqtts://"):
                make()
        else:
            make()
    finally:
        box.close()


def test_the_edge_cli_refuses_a_plain_remote_broker(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from server.cli import main

    argv = ["edge", "run", "--device", "dev-x", "--simulate", "baseline", "--outbox", str(tmp_path / "o.sqlite3"),
            "--mqtt-url", "mqtt://broker.example.org:1883", "--app-port", "0"]  # fmt: skip
    with pytest.raises(SystemExit, match="refusing plain MQTT to broker.example.org"):
        main(argv)


def _retained_status(url: str, device_id: str) -> Status:
    """The retained status a new subscriber gets at once (what the server or a caregiver would see)."""
    sub = Subscriber(url, topic_for(device_id, "status"))
    try:
        _, _, payload = sub.take(1)[0]
    finally:
        sub.close()
    status = decode(payload, Kind.STATUS)
    assert isinstance(status, Status)
    return status


UPLINK_THEN_WAIT = """
import sys, time
from edge.outbox import Outbox
from edge.uplink import Uplink
from wire import BrokerAddress
uplink = Uplink(sys.argv[2], BrokerAddress.parse(sys.argv[1]), Outbox(sys.argv[3]))
uplink.start()
assert uplink.wait_connected(10)
print("connected", flush=True)
time.sleep(120)
"""


def test_retained_status_says_online_and_the_last_will_says_offline(mqtt_url: str, device_id: str, tmp_path: Path) -> None:
    """Online while connected; offline after a goodbye, and from the broker's last will after a kill."""
    box = Outbox(tmp_path / "o.sqlite3")
    uplink = Uplink(device_id, BrokerAddress.parse(mqtt_url), box)
    uplink.start()
    try:
        assert uplink.wait_connected(10)
        assert _until(lambda: _retained_status(mqtt_url, device_id).online, lambda: None)
    finally:
        uplink.stop()  # a clean stop says goodbye
        box.close()
    assert _retained_status(mqtt_url, device_id).online is False

    killed = subprocess.Popen(
        [sys.executable, "-c", UPLINK_THEN_WAIT, mqtt_url, device_id, str(tmp_path / "o.sqlite3")],
        cwd=Path(__file__).resolve().parents[2], stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert killed.stdout is not None and killed.stdout.readline().strip() == "connected"
        assert _until(lambda: _retained_status(mqtt_url, device_id).online, lambda: None)
    finally:
        killed.kill()  # no goodbye: only the will the broker holds can say so
        killed.wait(10)
        if killed.stdout is not None:
            killed.stdout.close()
    assert _until(lambda: _retained_status(mqtt_url, device_id).online is False, lambda: None)
    assert _retained_status(mqtt_url, device_id).device == device_id


def test_a_notification_sent_while_the_phone_was_away_arrives_when_it_returns(
    mqtt_url: str, device_id: str, tmp_path: Path
) -> None:
    """The persistent session: the broker keeps a QoS 1 notify for the phone and hands it over on reconnect."""
    box = Outbox(tmp_path / "o.sqlite3")
    first = Uplink(device_id, BrokerAddress.parse(mqtt_url), box, session_expiry_s=60)
    first.start()
    assert first.wait_connected(10)
    time.sleep(0.3)  # the subscription settles
    first.stop()  # the phone goes away; its session stays on the broker
    while_away = Notify(device_id, 1_700_000_000.0, Level.YELLOW, "Heart rate outside your range", parameter="hr")
    publish(mqtt_url, [(topic_for(device_id, "notify"), encode(while_away))])
    notes: queue.SimpleQueue[object] = queue.SimpleQueue()
    back = Uplink(device_id, BrokerAddress.parse(mqtt_url), box, on_notify=notes.put, session_expiry_s=60)
    back.start()
    try:
        assert notes.get(timeout=10) == while_away
    finally:
        back.stop()
        box.close()
        forget_session(mqtt_url, f"pisces-edge-{device_id}")
