"""The ingest's paho client: its PUBLISH parser on spec bytes, its block reads, and a real broker.

The broker tests check what the fast paths must keep of paho: every message
with its exact payload, in order, whatever its size; messages with properties
still reaching ``on_message``; acks written with ``ack_many`` reaching the
broker (nothing is delivered again on the same session), and unacked messages
being delivered again (so the first check can fail).
"""

from __future__ import annotations

import queue
import secrets
import select
import socket
import struct
import threading
import time
from typing import Any

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from server.ingest_client import FAST_PATHS, READ_BLOCK, BufferedSocket, IngestClient, _qos1_publish
from tests.server.helpers import forget_session, wait_for
from wire import BrokerAddress


def publish_packet(topic: bytes, payload: bytes, qos: int = 1, mid: int = 7, props: bytes | None = b"\x00",
                   retain: bool = False) -> tuple[int, bytes]:  # fmt: skip
    """(fixed-header first byte, rest of the packet) of a PUBLISH as the spec lays it out (props None: 3.1.1)."""
    header = 0x30 | (qos << 1) | int(retain)
    body = struct.pack("!H", len(topic)) + topic + (struct.pack("!H", mid) if qos else b"")
    return header, body + (props if props is not None else b"") + payload


def test_a_qos1_publish_without_properties_is_parsed_in_both_versions() -> None:
    header, packet = publish_packet(b"pisces/v1/d1/summary", b'{"v":1}', mid=0x1234)
    assert _qos1_publish(header, packet, v5=True) == ("pisces/v1/d1/summary", 0x1234, b'{"v":1}', False)
    header, packet = publish_packet(b"a/b", b"xyz", mid=65535, props=None, retain=True)
    assert _qos1_publish(header, packet, v5=False) == ("a/b", 65535, b"xyz", True)
    header, packet = publish_packet(b"a/b", b"", mid=1)
    assert _qos1_publish(header, packet, v5=True) == ("a/b", 1, b"", False)


@pytest.mark.parametrize(
    "header_packet, v5",
    [
        (publish_packet(b"a/b", b"x", qos=0, props=b"\x00"), True),  # QoS 0: no packet id
        (publish_packet(b"a/b", b"x", qos=2), True),  # QoS 2: paho's handshake
        (publish_packet(b"a/b", b"x", props=b"\x05\x02\x00\x00\x00\x3c"), True),  # message expiry 60 s
        (publish_packet(b"", b"x", props=b"\x03\x23\x00\x01"), True),  # topic alias, empty topic
        (publish_packet(b"", b"x", props=None), False),  # 3.1.1: an empty topic is malformed
        (publish_packet(b"a/\xff", b"x"), True),  # topic not UTF-8
        ((0x32, b"\x00"), True),  # shorter than its topic length
        ((0x32, b"\x00\x03a/b\x00"), True),  # packet id cut short
        ((0x32, b"\x00\x03a/b\x00\x01"), True),  # MQTT 5 without its property length
    ],
)
def test_anything_else_is_left_to_paho(header_packet: tuple[int, bytes], v5: bool) -> None:
    assert _qos1_publish(*header_packet, v5=v5) is None


def test_buffered_socket_serves_what_it_read_in_blocks_and_says_what_is_pending() -> None:
    left, right = socket.socketpair()
    try:
        right.setblocking(False)
        sock = BufferedSocket(right)
        left.sendall(b"abcdefgh")
        wait_for(lambda: sock.pending() or select_readable(right), what="bytes on the socket")
        assert sock.recv(1) == b"a"
        assert sock.pending() == 7  # the rest was read with it
        assert sock.recv(3) == b"bcd"
        assert sock.recv(100) == b"efgh"  # what is buffered, without waiting for more
        assert sock.pending() == 0
        with pytest.raises(BlockingIOError):
            sock.recv(1)  # nothing buffered, nothing on the socket: as the socket says
        assert sock.fileno() == right.fileno()  # the rest is the socket's
        left.close()
        assert sock.recv(1) == b""  # closed: paho's "connection lost"
    finally:
        right.close()


def whole(header_packet: tuple[int, bytes]) -> bytes:
    """A packet on the wire: its first byte, the remaining length (variable byte integer), the rest."""
    header, rest = header_packet
    n, length = len(rest), bytearray()
    while True:
        n, byte = n >> 7, n & 0x7F
        length.append(byte | (0x80 if n else 0))
        if not n:
            return bytes([header]) + bytes(length) + rest


class CountingReads(IngestClient):
    """Counts the packets paho's own read took (the rest came straight from the block)."""

    reads = 0

    def _packet_read(self) -> Any:
        self.reads += 1
        return super()._packet_read()


def test_packets_read_in_one_block_are_taken_from_it_and_any_other_is_left_to_paho() -> None:
    got: list[tuple[Any, ...]] = []
    client = CountingReads(CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5, manual_ack=True,
                           on_uplink=lambda t, p, mid, q, r: got.append(("fast", t, p, mid, r)))  # fmt: skip
    client.on_message = lambda _c, _u, m: got.append(("paho", m.topic, m.payload, m.mid, m.retain))
    sizes = [10, 300, 20_000, 0, 5]
    ours = [publish_packet(b"a/b", bytes([i]) * n, mid=i + 1) for i, n in enumerate(sizes)]
    qos0 = publish_packet(b"a/q0", b"zero", qos=0)  # not the uplink's shape: paho's
    more = [publish_packet(b"a/c", b"x" * i, mid=100 + i, retain=i == 3) for i in range(40)]
    raw = b"".join(whole(p) for p in ours) + b"\xd0\x00" + whole(qos0) + b"".join(whole(p) for p in more)
    left, right = socket.socketpair()
    try:
        right.setblocking(False)
        client._sock = BufferedSocket(right)  # as connected: paho reads through it
        cut = len(raw) - 7  # the last packet arrives in two parts
        for part in (raw[:cut], raw[cut:]):
            left.sendall(part)
            wait_for(lambda: select_readable(right), what="bytes on the socket")
            while select_readable(right) or client._sock.pending():
                client.loop_read()
    finally:
        client._sock = None
        left.close()
        right.close()
    assert got == (
        [("fast", "a/b", bytes([i]) * n, i + 1, False) for i, n in enumerate(sizes)]
        + [("paho", "a/q0", b"zero", 0, False)]
        + [("fast", "a/c", b"x" * i, 100 + i, i == 3) for i in range(40)]
    )
    assert client._in_packet["command"] == 0  # between packets, as paho left it
    assert client.reads < 10  # 47 packets: most taken straight from the block, not through paho's read


def select_readable(sock: socket.socket) -> bool:
    return bool(select.select([sock], [], [], 0)[0])


def test_the_fast_paths_are_on_for_the_installed_paho() -> None:
    """The tests below exercise them only if they are on; a paho upgrade turns them off until re-read."""
    assert FAST_PATHS, "paho-mqtt is not a version the fast paths were read against (server/ingest_client.py)"


class Receiver:
    """An IngestClient on a persistent MQTT 5 session that keeps what it receives, acking as told."""

    def __init__(self, url: str, client_id: str, topic: str, ack: bool) -> None:
        self.got: queue.Queue[tuple[str, str, bytes, int]] = queue.Queue()  # (path, topic, payload, mid)
        self._ack = ack
        self._batches: queue.Queue[list[int]] = queue.Queue()
        threading.Thread(target=self._ack_batches, daemon=True).start()
        address = BrokerAddress.parse(url)
        self.client = IngestClient(CallbackAPIVersion.VERSION2, client_id=client_id, protocol=mqtt.MQTTv5,
                                   manual_ack=True, on_uplink=self._uplink)  # fmt: skip
        self.client.on_message = self._message
        subscribed = threading.Event()
        self.client.on_connect = lambda c, *_: c.subscribe(topic, qos=1)
        self.client.on_subscribe = lambda *_: subscribed.set()
        props = Properties(PacketTypes.CONNECT)
        props.SessionExpiryInterval = 300
        if address.username:
            self.client.username_pw_set(address.username, address.password)
        self.client.connect(address.host, address.port, clean_start=False, properties=props)
        self.client.loop_start()
        assert subscribed.wait(10), "no subscription"

    def _uplink(self, topic: str, payload: bytes, mid: int, qos: int, retain: bool) -> None:
        self.got.put(("fast", topic, payload, mid))
        self._pending(mid)

    def _message(self, _c: Any, _u: Any, m: mqtt.MQTTMessage) -> None:
        self.got.put(("paho", m.topic, m.payload, m.mid))
        self._pending(m.mid)

    def _pending(self, mid: int) -> None:
        if self._ack:
            self._batches.put([mid])

    def _ack_batches(self) -> None:  # a batch = what is queued at once, as the ingest's worker thread takes it
        while True:
            mids = self._batches.get()
            time.sleep(0.01)
            while not self._batches.empty():
                mids += self._batches.get_nowait()
            self.client.ack_many(mids)

    def take(self, n: int, timeout: float = 20.0) -> list[tuple[str, str, bytes, int]]:
        out = []
        deadline = time.monotonic() + timeout
        while len(out) < n and time.monotonic() < deadline:
            try:
                out.append(self.got.get(timeout=0.2))
            except queue.Empty:
                pass
        return out

    def close(self) -> None:
        time.sleep(0.3)  # the last acks written
        self.client.disconnect()
        self.client.loop_stop()


def send(url: str, messages: list[tuple[str, bytes, Properties | None]]) -> None:
    """Publish at QoS 1 (MQTT 5, so that a message may carry properties); return once all are acked."""
    address = BrokerAddress.parse(url)
    client = mqtt.Client(CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5)
    if address.username:
        client.username_pw_set(address.username, address.password)
    client.max_inflight_messages_set(200)
    client.connect(address.host, address.port)
    client.loop_start()
    try:
        infos = [client.publish(t, p, qos=1, properties=props) for t, p, props in messages]
        for info in infos:
            info.wait_for_publish(20)
    finally:
        client.disconnect()
        client.loop_stop()


def test_every_message_arrives_whole_and_in_order_and_acks_reach_the_broker(mqtt_url: str, redelivering_broker: None) -> None:
    client_id, topic = f"t-ic-{secrets.token_hex(4)}", f"t-ic-{secrets.token_hex(4)}/x"
    sizes = [0, 1, 127, 128, 16_383, 16_384, READ_BLOCK - 1, READ_BLOCK + 5, 3 * READ_BLOCK] + [300] * 1500
    payloads = [secrets.token_bytes(n) for n in sizes]
    expiry = Properties(PacketTypes.PUBLISH)
    expiry.MessageExpiryInterval = 600  # a property: paho's own path
    messages = [(topic, p, expiry if i % 100 == 50 else None) for i, p in enumerate(payloads)]
    receiver = Receiver(mqtt_url, client_id, topic, ack=True)
    try:
        send(mqtt_url, messages)
        got = receiver.take(len(messages))
        assert [payload for _, _, payload, _ in got] == payloads
        paths = [path for path, _, _, _ in got]
        assert paths.count("paho") == len(payloads) // 100 and paths.count("fast") == len(payloads) - paths.count("paho")
        assert {t for _, t, _, _ in got} == {topic}
    finally:
        receiver.close()
    again = Receiver(mqtt_url, client_id, topic, ack=True)  # same session: only what was not acked comes again
    try:
        assert again.take(1, timeout=2.0) == []
    finally:
        again.close()
        forget_session(mqtt_url, client_id)


def test_what_is_not_acked_is_delivered_again(mqtt_url: str, redelivering_broker: None) -> None:
    client_id, topic = f"t-ic-{secrets.token_hex(4)}", f"t-ic-{secrets.token_hex(4)}/x"
    payloads = [f"m{i}".encode() for i in range(15)]  # fewer than a broker sends unacked (Mosquitto: 20)
    receiver = Receiver(mqtt_url, client_id, topic, ack=False)
    try:
        send(mqtt_url, [(topic, p, None) for p in payloads])
        assert [p for _, _, p, _ in receiver.take(15)] == payloads
    finally:
        receiver.close()
    again = Receiver(mqtt_url, client_id, topic, ack=True)
    try:
        assert sorted(p for _, _, p, _ in again.take(15)) == sorted(payloads)
    finally:
        again.close()
        forget_session(mqtt_url, client_id)
