"""A lean MQTT 5 load generator for the benchmarks: QoS 1 PUBLISH packets written straight to a socket.

The benchmarks run the publisher on the same two cores as what they measure.
paho spends ~150 us of CPU on each QoS 1 message it publishes (a message info
with its own condition variable, a wake-up of its loop, a ``send`` per packet),
i.e. at 4,000 messages/s a third of the machine, taken from the workers being
measured (docs/benchmarks.md). Phones publish from their own CPUs. This
generator builds every packet before it starts (MQTT 5.0 section 3.3: fixed
header, topic, packet id, an empty property list, the payload), writes them in
blocks while at most ``in_flight`` are unacknowledged, and counts the PUBACKs
(section 3.4), so that its CPU per message is a few microseconds. It does
only this: no reconnects, no TLS, no QoS 2; a refused connection or a PUBACK
with a failure reason code is an error.
"""

from __future__ import annotations

import contextlib
import select
import socket
import struct
import time
from collections.abc import Callable, Iterator, Sequence
from typing import Any

CONNECT, CONNACK, PUBLISH_QOS1, PUBACK = 0x10, 0x20, 0x32, 0x40
WRITE_BLOCK = 64 * 1024


def _remaining_length(n: int) -> bytes:
    """The variable byte integer of a fixed header (MQTT 5.0 section 1.5.5)."""
    out = bytearray()
    while True:
        n, digit = divmod(n, 128)
        out.append(digit | (0x80 if n else 0))
        if not n:
            return bytes(out)


def _packet(first: int, body: bytes) -> bytes:
    return bytes([first]) + _remaining_length(len(body)) + body


def _utf8(s: str) -> bytes:
    raw = s.encode()
    return struct.pack("!H", len(raw)) + raw


def connect_packet(client_id: str, keepalive: int = 60) -> bytes:
    """CONNECT, MQTT 5, clean start, no properties (section 3.1)."""
    return _packet(CONNECT, _utf8("MQTT") + bytes([5, 0x02]) + struct.pack("!H", keepalive) + b"\x00" + _utf8(client_id))


def publish_packet(topic: str, payload: bytes, mid: int) -> bytes:
    """PUBLISH, QoS 1, no properties."""
    return _packet(PUBLISH_QOS1, _utf8(topic) + struct.pack("!H", mid) + b"\x00" + payload)


def publish_all(host: str, port: int, messages: Sequence[tuple[str, bytes]], in_flight: int = 1000,
                timeout: float = 120.0, on_start: Callable[[], Any] | None = None) -> float:  # fmt: skip
    """Publish ``messages`` at QoS 1 in order, at most ``in_flight`` unacknowledged; return once the
    broker has acknowledged all. Returns the seconds from the first write to the last PUBACK.
    ``on_start`` is called once connected, just before the first write."""
    packets = [publish_packet(t, p, k % 65535 + 1) for k, (t, p) in enumerate(messages)]
    with _connected(host, port) as sock:
        sock.setblocking(False)
        if on_start is not None:
            on_start()
        return _pump(sock, packets, in_flight, timeout)


def publish_paced(host: str, port: int, messages: Sequence[tuple[str, bytes]], rate: float,
                  timeout: float = 120.0) -> list[float]:  # fmt: skip
    """Publish ``messages`` at QoS 1 in order, message ``k`` at ``k / rate`` s after the start; return once
    all are acknowledged, with each message's ``time.perf_counter()`` just before it was written (the same
    clock in every process of the machine: CLOCK_MONOTONIC)."""
    packets = [publish_packet(t, p, k % 65535 + 1) for k, (t, p) in enumerate(messages)]
    sent_at: list[float] = []
    acked = 0
    buffer = bytearray()
    with _connected(host, port) as sock:
        sock.setblocking(True)
        start = time.perf_counter()
        deadline = time.monotonic() + timeout
        while acked < len(packets):
            if time.monotonic() > deadline:
                raise TimeoutError(f"{acked} of {len(packets)} messages acknowledged in {timeout:.0f} s")
            now = time.perf_counter()
            due = min(len(packets), int((now - start) * rate) + 1)
            if due > len(sent_at):
                first = len(sent_at)
                sent_at.extend([now] * (due - first))
                sock.sendall(b"".join(packets[first:due]))  # a few messages: the socket's buffer takes them
            wait = start + len(sent_at) / rate - time.perf_counter() if len(sent_at) < len(packets) else 1.0
            readable, _, _ = select.select([sock], [], [], min(max(wait, 0.0), 1.0))
            if readable:
                acked += _read_acks(sock, buffer, acked)
    return sent_at


@contextlib.contextmanager
def _connected(host: str, port: int) -> Iterator[socket.socket]:
    """A socket with an accepted MQTT 5 connection (clean start, a client id of its own)."""
    with socket.create_connection((host, port), timeout=10) as sock:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        sock.sendall(connect_packet(f"bench-load-{time.monotonic_ns()}"))
        reply = _read_exactly(sock, 2)
        reply += _read_exactly(sock, reply[1])
        if reply[0] != CONNACK or reply[3] != 0:
            raise ConnectionError(f"broker refused the connection: {reply.hex()}")
        yield sock


def _pump(sock: socket.socket, packets: list[bytes], in_flight: int, timeout: float) -> float:
    sent = acked = 0
    out = b""
    buffer = bytearray()
    started = time.perf_counter()
    deadline = time.monotonic() + timeout
    while acked < len(packets):
        if time.monotonic() > deadline:
            raise TimeoutError(f"{acked} of {len(packets)} messages acknowledged in {timeout:.0f} s")
        if not out and sent < len(packets) and sent - acked < in_flight:
            upto = min(len(packets), acked + in_flight)
            block = []
            size = 0
            while sent < upto and size < WRITE_BLOCK:
                block.append(packets[sent])
                size += len(packets[sent])
                sent += 1
            out = b"".join(block)
        readable, writable, _ = select.select([sock], [sock] if out else [], [], 1.0)
        if writable:
            try:
                out = out[sock.send(out):]
            except BlockingIOError:
                pass
        if readable:
            acked += _read_acks(sock, buffer, acked)
    return time.perf_counter() - started


def _read_acks(sock: socket.socket, buffer: bytearray, acked: int) -> int:
    """Read what the broker sent into ``buffer``; the number of PUBACKs it completed (``acked`` so far)."""
    data = sock.recv(WRITE_BLOCK)
    if not data:
        raise ConnectionError(f"broker closed the connection after {acked} acknowledgements")
    buffer += data
    return _acks(buffer)


def _acks(buffer: bytearray) -> int:
    """Count and remove the complete PUBACKs at the front of ``buffer`` (anything else is an error)."""
    n = pos = 0
    while len(buffer) - pos >= 2:
        first, length = buffer[pos], buffer[pos + 1]  # a PUBACK's remaining length fits one byte
        if first != PUBACK or length & 0x80:
            raise ConnectionError(f"expected a PUBACK, got packet type 0x{first:02x}")
        if len(buffer) - pos < 2 + length:
            break
        if length > 2 and buffer[pos + 4] >= 0x80:
            raise ConnectionError(f"broker refused a message: reason code 0x{buffer[pos + 4]:02x}")
        pos += 2 + length
        n += 1
    del buffer[:pos]
    return n


def _read_exactly(sock: socket.socket, n: int) -> bytes:
    data = b""
    while len(data) < n:
        chunk = sock.recv(n - len(data))
        if not chunk:
            raise ConnectionError("broker closed the connection")
        data += chunk
    return data
