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

import select
import socket
import struct
import time
from collections.abc import Sequence

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
                timeout: float = 120.0) -> float:  # fmt: skip
    """Publish ``messages`` at QoS 1 in order, at most ``in_flight`` unacknowledged; return once the
    broker has acknowledged all. Returns the seconds from the first write to the last PUBACK."""
    packets = [publish_packet(t, p, k % 65535 + 1) for k, (t, p) in enumerate(messages)]
    with socket.create_connection((host, port), timeout=10) as sock:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        sock.sendall(connect_packet(f"bench-load-{time.monotonic_ns()}"))
        reply = _read_exactly(sock, 2)
        reply += _read_exactly(sock, reply[1])
        if reply[0] != CONNACK or reply[3] != 0:
            raise ConnectionError(f"broker refused the connection: {reply.hex()}")
        sock.setblocking(False)
        return _pump(sock, packets, in_flight, timeout)


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
            data = sock.recv(WRITE_BLOCK)
            if not data:
                raise ConnectionError(f"broker closed the connection after {acked} acknowledgements")
            buffer += data
            acked += _acks(buffer)
    return time.perf_counter() - started


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
