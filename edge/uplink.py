"""MQTT uplink: drains the outbox to the broker at QoS 1 and receives notify/config.

Uses paho-mqtt 2.x (callback API version 2) with its own network thread
(``loop_start``), which also reconnects. The outbox is acked only when the
broker's PUBACK arrives (``on_publish``). PUBACK mids are queued by the network
thread and matched to seqs in :meth:`Uplink.pump`, which the owner calls
periodically from its own thread; after every (re)connect everything pending is
published again (duplicates are harmless: ``(device, seq)`` is the idempotency
key). A retained ``status`` message says online on connect; a retained last
will says offline when the connection drops without a goodbye.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable
from typing import Any

import paho.mqtt.client as mqtt

from edge.outbox import Outbox
from wire import BrokerAddress, Config, Kind, Notify, Status, WireError, decode, encode, topic_for
from wire.topics import Topic

log = logging.getLogger(__name__)

MAX_IN_FLIGHT = 100
KEEPALIVE_S = 30
RECONNECT_DELAY_S = (1, 5)  # s, min and max between reconnect attempts


class Uplink:
    """One device's MQTT connection.

    Args:
        device_id: the device whose topics this client uses.
        address: broker address (credentials from it unless given here).
        outbox: where pending messages come from and acks go.
        on_notify: called (in the network thread) with each decoded ``Notify``.
        on_config: called (in the network thread) with each decoded ``Config``.
        clock: s since epoch, for status messages.
    """

    def __init__(
        self,
        device_id: str,
        address: BrokerAddress,
        outbox: Outbox,
        *,
        on_notify: Callable[[Notify], None] | None = None,
        on_config: Callable[[Config], None] | None = None,
        clock: Callable[[], float] = time.time,
        username: str | None = None,
        password: str | None = None,
    ) -> None:
        self.device_id = device_id
        self.outbox = outbox
        self.on_notify = on_notify
        self.on_config = on_config
        self.clock = clock
        self.counters: dict[str, int] = {"published": 0, "acked": 0, "bad_downlink": 0, "connects": 0}
        self._connected = threading.Event()
        self._acked_mids: queue.SimpleQueue[int] = queue.SimpleQueue()
        self._reconnected = threading.Event()
        self._in_flight: dict[int, int] = {}  # mid -> seq; touched only by pump()
        self._client = self._make_client(address, username or address.username, password or address.password)

    def _make_client(self, address: BrokerAddress, username: str | None, password: str | None) -> mqtt.Client:
        client = mqtt.Client(
            mqtt.CallbackAPIVersion.VERSION2, client_id=f"pisces-edge-{self.device_id}", clean_session=True
        )
        if username:
            client.username_pw_set(username, password)
        if address.tls:
            client.tls_set()
        client.max_inflight_messages_set(MAX_IN_FLIGHT)
        client.reconnect_delay_set(*RECONNECT_DELAY_S)
        client.will_set(topic_for(self.device_id, Kind.STATUS), self._status(False), qos=1, retain=True)
        client.on_connect = self._on_connect
        client.on_disconnect = self._on_disconnect
        client.on_publish = self._on_publish
        client.on_message = self._on_message
        self._address = address
        return client

    def _status(self, online: bool) -> bytes:
        seq = self.outbox.reserve_seq()
        return encode(Status(self.device_id, seq, self.clock(), online, sensor="unknown"))

    def start(self) -> None:
        """Connect in the background; reconnects happen by themselves."""
        self._client.connect_async(self._address.host, self._address.port, keepalive=KEEPALIVE_S)
        self._client.loop_start()

    def stop(self, *, goodbye: bool = True) -> None:
        """Publish an offline status (if connected and ``goodbye``), disconnect and stop the thread."""
        if goodbye and self._connected.is_set():
            info = self._client.publish(topic_for(self.device_id, Kind.STATUS), self._status(False), 1, True)
            info.wait_for_publish(timeout=2.0)
        self._client.disconnect()
        self._client.loop_stop()

    @property
    def connected(self) -> bool:
        """Whether the broker accepted our connection and it is up."""
        return self._connected.is_set()

    def wait_connected(self, timeout: float) -> bool:
        """Block until connected or ``timeout`` seconds passed."""
        return self._connected.wait(timeout)

    def pump(self) -> int:
        """Match PUBACKs to seqs (acking the outbox) and publish more pending messages.

        Returns:
            How many messages were published by this call.
        """
        self._drain_acks()
        if self._reconnected.is_set():
            self._reconnected.clear()
            self._in_flight.clear()  # the new session knows nothing of them: send again
        if not self._connected.is_set():
            return 0
        room = MAX_IN_FLIGHT - len(self._in_flight)
        after = max(self._in_flight.values(), default=-1)
        sent = 0
        for message in self.outbox.pending(room, after=after) if room > 0 else []:
            info = self._client.publish(topic_for(self.device_id, message.kind), message.payload, qos=1)
            if info.rc != mqtt.MQTT_ERR_SUCCESS:
                break
            self._in_flight[info.mid] = message.seq
            sent += 1
        self.counters["published"] += sent
        return sent

    def _drain_acks(self) -> None:
        while True:
            try:
                mid = self._acked_mids.get_nowait()
            except queue.Empty:
                return
            seq = self._in_flight.pop(mid, None)
            if seq is not None and self.outbox.ack(seq):
                self.counters["acked"] += 1

    def _on_connect(self, client: mqtt.Client, _ud: Any, _flags: Any, rc: Any, _props: Any = None) -> None:
        if rc.is_failure:
            log.warning("broker refused %s: %s", self.device_id, rc)
            return
        self.counters["connects"] += 1
        client.subscribe([(topic_for(self.device_id, Kind.NOTIFY), 1), (topic_for(self.device_id, Kind.CONFIG), 1)])
        client.publish(topic_for(self.device_id, Kind.STATUS), self._status(True), qos=1, retain=True)
        self._reconnected.set()
        self._connected.set()

    def _on_disconnect(self, _c: mqtt.Client, _ud: Any, _flags: Any, _rc: Any, _props: Any = None) -> None:
        self._connected.clear()

    def _on_publish(self, _c: mqtt.Client, _ud: Any, mid: int, _rc: Any, _props: Any = None) -> None:
        self._acked_mids.put(mid)

    def _on_message(self, _c: mqtt.Client, _ud: Any, msg: mqtt.MQTTMessage) -> None:
        try:
            kind = Topic.parse(msg.topic).kind
            message = decode(msg.payload, kind)
        except WireError as exc:
            self.counters["bad_downlink"] += 1
            log.warning("bad downlink on %s: %s", msg.topic, exc)
            return
        if isinstance(message, Notify) and self.on_notify:
            self.on_notify(message)
        elif isinstance(message, Config) and self.on_config:
            self.on_config(message)
