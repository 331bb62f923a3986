"""The ingest's MQTT client: paho's ``Client`` with four fast paths for a subscriber that takes thousands
of messages a second and acknowledges them a batch at a time.

Measured on the ingest's load (docs/benchmarks.md, "2026-12-02: the ingest's paho client"),
plain paho spends ~70-100 us of CPU on each QoS 1 message a worker receives and
acks, a third of a worker's CPU. Most of it is not MQTT work:

- **Block reads.** paho reads a packet with three or more ``recv`` calls (1 byte of
  type, 1 byte at a time of length, then the rest) and selects again before each
  packet. Here the socket is read in blocks of :data:`READ_BLOCK` bytes
  (:class:`BufferedSocket`), and ``loop_read`` goes on with the packets already
  read. ``pending()`` tells paho's loop that bytes are waiting (the hook paho has
  for TLS sockets), so none wait for the next select.
- **PUBLISH without properties.** paho builds an MQTT 5 ``Properties`` object (a
  table of 27 names and 40 entries) and an ``MQTTMessage`` with its own
  ``threading.Condition`` for every message. A QoS 1 PUBLISH with no properties,
  the shape of every uplink message, is parsed here in a few lines (MQTT 5.0
  section 3.3, MQTT 3.1.1 section 3.3) and handed to ``on_uplink``. Anything
  else (QoS 0 or 2, properties, a topic that is not UTF-8, a short packet) goes
  through paho's own code and ``on_message``, as before.
- **Packets from the block.** paho's reader takes a packet in three or more
  ``recv`` calls (type, each byte of the length, the rest) through a state
  machine of dict entries. Once a block is read, the QoS 1 PUBLISHes without
  properties at its head are cut from it directly (``_buffered_publishes``) and
  go to ``on_uplink``; the first other packet (or a partial one) is left to
  paho's reader, which then goes on from the block as before.
- **Acks in one write.** :meth:`IngestClient.ack_many` queues one write of all a
  batch's PUBACKs (MQTT 5.0 section 3.4.2.1: reason code and properties may be
  left out when the reason is Success; 3.1.1 has neither) where ``ack`` wakes
  paho's loop and writes each 4-byte packet on its own.

The fast paths use paho internals (``_create_socket``, ``_handle_publish``,
``_in_packet``, ``_packet_queue``, ``_last_bytes_received``), so they are on only for the paho versions
they were read against and tested with (:data:`FAST_PATHS`); any other version
runs plain paho, correct and slower.
"""

from __future__ import annotations

import struct
from collections.abc import Callable, Iterable
from typing import Any

import paho.mqtt
import paho.mqtt.client as mqtt
from paho.mqtt.enums import MQTTErrorCode

READ_BLOCK = 65_536  # bytes a recv asks for; a summary message is ~0.3-2 KB
MAX_PACKETS_PER_READ = 1_000  # then paho's loop writes and keeps alive before it reads on
PUBACK = 0x40  # MQTT control packet type 4, flags 0
PUBLISH = 0x30  # MQTT control packet type 3 (the low 4 bits are its flags)
FAST_PATHS = paho.mqtt.__version__.startswith("2.2.")  # the paho internals below were read in 2.2.0

OnUplink = Callable[[str, bytes, int, int, bool], None]  # topic, payload, packet id, QoS, retain


class BufferedSocket:
    """A connected socket read in blocks: ``recv(n)`` serves up to ``n`` bytes from what was read.

    Everything but ``recv`` and ``pending`` goes to the socket (TLS or plain).
    """

    def __init__(self, sock: Any) -> None:
        self._sock = sock
        self._buffer = bytearray()

    def recv(self, n: int) -> bytes:
        """Up to ``n`` bytes; raises as the socket does (``BlockingIOError``) only when nothing is buffered."""
        buffer = self._buffer
        if not buffer:
            data: bytes = self._sock.recv(READ_BLOCK)
            if len(data) <= n:
                return data
            buffer += data
        out = bytes(buffer[:n])
        del buffer[:n]
        return out

    def pending(self) -> int:
        """Bytes readable now without the socket becoming readable (paho's loop then does not wait)."""
        inner = getattr(self._sock, "pending", None)
        return len(self._buffer) + (inner() if inner is not None else 0)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._sock, name)


class IngestClient(mqtt.Client):
    """paho's ``Client`` with the fast paths of this module; ``on_uplink`` gets what the fast path parsed.

    Args: as ``paho.mqtt.client.Client``, plus ``on_uplink(topic, payload, mid, qos, retain)``, called on
    paho's network thread for each QoS 1 PUBLISH without properties (with ``manual_ack``); every other
    PUBLISH reaches ``on_message`` as usual.
    """

    def __init__(self, *args: Any, on_uplink: OnUplink | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.on_uplink = on_uplink

    def close(self) -> None:
        """Close every socket paho still holds once stopped (after ``disconnect`` and ``loop_stop``).

        paho keeps its loop's wake-up socket pair open after the loop ends, until the
        client is garbage collected; a stopped worker lets go of it here instead.
        """
        self._reset_sockets()

    def _create_socket(self) -> Any:
        sock = super()._create_socket()
        return BufferedSocket(sock) if FAST_PATHS else sock

    def loop_read(self, max_packets: int = 1) -> MQTTErrorCode:
        """paho's ``loop_read``, then on through the packets already read (up to :data:`MAX_PACKETS_PER_READ`):
        the uplink PUBLISHes at the head of the block straight from it, anything else through paho."""
        rc = super().loop_read(max_packets)
        left = MAX_PACKETS_PER_READ
        while left > 0:
            sock = self._sock
            if rc != MQTTErrorCode.MQTT_ERR_SUCCESS or not isinstance(sock, BufferedSocket) or not sock._buffer:
                break
            taken = self._buffered_publishes(sock, left) if self._in_packet["command"] == 0 else 0
            left -= taken + 1
            if taken:
                with self._msgtime_mutex:
                    self._last_bytes_received = mqtt.time_func()  # as paho's own read does (keepalive)
                if not sock._buffer:
                    break
            rc = super().loop_read(max_packets)  # the packet the fast path did not take (or its first bytes)
        return rc

    def _buffered_publishes(self, sock: BufferedSocket, most: int) -> int:
        """Hand ``on_uplink`` the whole QoS 1 PUBLISHes without properties at the head of what ``sock`` has
        read (at most ``most``), as :meth:`_handle_publish` would; stop at the first other or partial packet.

        paho reads a packet in three or more ``recv`` calls and a state machine of
        dict entries; from a block already read, a packet is a few index operations.
        Returns how many were taken (their bytes are gone from the buffer).
        """
        if not self._takes_uplinks():
            return 0
        data = bytes(sock._buffer)
        v5 = self._protocol == mqtt.MQTTv5
        end, pos, taken = len(data), 0, 0
        while taken < most and pos < end:
            if data[pos] & 0xF0 != PUBLISH:
                break
            packet = _whole_packet(data, pos, end)
            if packet is None:
                break
            start, stop = packet
            parsed = _qos1_publish(data[pos], data[start:stop], v5)
            if parsed is None:
                break
            topic, mid, payload, retain = parsed
            self.on_uplink(topic, payload, mid, 1, retain)
            pos, taken = stop, taken + 1
        del sock._buffer[:pos]
        return taken

    def _takes_uplinks(self) -> bool:
        """The PUBLISH fast paths apply: someone takes ``on_uplink`` and acks by hand, on a paho read for them."""
        return self.on_uplink is not None and self._manual_ack and FAST_PATHS

    def _handle_publish(self) -> MQTTErrorCode:
        parsed = _qos1_publish(self._in_packet["command"], self._in_packet["packet"], self._protocol == mqtt.MQTTv5)
        if parsed is None or not self._takes_uplinks():
            return super()._handle_publish()
        topic, mid, payload, retain = parsed
        self.on_uplink(topic, payload, mid, 1, retain)
        return MQTTErrorCode.MQTT_ERR_SUCCESS

    def ack_many(self, mids: Iterable[int]) -> None:
        """Acknowledge QoS 1 messages by packet id, all in one write (``ack`` for each, on other paho versions)."""
        mids = list(mids)
        if not mids:
            return
        if not FAST_PATHS:
            for mid in mids:
                self.ack(mid, 1)
            return
        self._packet_queue(PUBACK, b"".join([struct.pack("!BBH", PUBACK, 2, mid) for mid in mids]), 0, 1)


def _whole_packet(data: bytes, pos: int, end: int) -> tuple[int, int] | None:
    """``(start, stop)`` of the variable header and payload of the packet at ``data[pos]`` if it is all in
    ``data[:end]`` (its fixed header: a type byte, then the remaining length as a variable byte integer of
    1-4 bytes, MQTT 5.0 section 2.1.4); None if it is not whole yet or the length is malformed (paho's read
    then reports it)."""
    length, shift, i = 0, 0, pos + 1
    while True:
        if i >= end or i > pos + 4:
            return None
        byte = data[i]
        length |= (byte & 0x7F) << shift
        i += 1
        if not byte & 0x80:
            break
        shift += 7
    return (i, i + length) if i + length <= end else None


def _qos1_publish(header: int, packet: bytes, v5: bool) -> tuple[str, int, bytes, bool] | None:
    """``(topic, packet id, payload, retain)`` of a QoS 1 PUBLISH without properties; None for anything else.

    ``packet`` is the variable header and payload (after the fixed header):
    topic length (2 bytes), topic, packet id (2 bytes), in MQTT 5 the property
    length (a variable byte integer: one 0 byte when there are none), payload.
    """
    if (header & 0x06) != 0x02 or len(packet) < 2:
        return None
    end = 2 + ((packet[0] << 8) | packet[1])
    body = end + 2 + v5
    if end == 2 or len(packet) < body or (v5 and packet[end + 2] != 0):
        return None
    try:
        topic = packet[2:end].decode("utf-8")
    except UnicodeDecodeError:
        return None
    return topic, (packet[end] << 8) | packet[end + 1], bytes(packet[body:]), bool(header & 0x01)
