"""MQTT uplink: drains the outbox to the broker at QoS 1 and receives notify/config.

paho-mqtt 2.x speaking MQTT 5, with a persistent session (``clean_start``
false and a session expiry), so that notify messages queued by the broker
while the phone was away are delivered when it returns. TLS (with a CA file
of the operator's own) and per-device username/password come from
:class:`TlsAndLogin`.

The network loop is our own thread (:meth:`Uplink._network`): connect, run
paho's ``loop`` until the link drops, wait :func:`edge.backoff.backoff_for`
(a refused login waits longest), connect again. The outbox is acked only when
the broker's PUBACK arrives with a success reason code; PUBACK mids are
queued by the network thread and matched to seqs in :meth:`Uplink.pump`, which
the owner calls from its own thread, periodically and at once after anything
urgent. After every (re)connect everything pending is published again
(duplicates are harmless: ``(device, seq)`` is the idempotency key). A
retained ``status`` says online on connect; a retained last will says offline
when the connection drops without a goodbye.
"""

from __future__ import annotations

import logging
import queue
import ssl
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from edge.backoff import MQTT_POLICY, NotAuthorized, Policy, backoff_for
from edge.outbox import Outbox
from wire import BrokerAddress, Config, Kind, Notify, Status, WireError, decode, encode, topic_for
from wire.topics import Topic

log = logging.getLogger(__name__)

MAX_IN_FLIGHT = 100
KEEPALIVE_S = 30
SESSION_EXPIRY_S = 7 * 24 * 3600  # the broker keeps our subscriptions and queued notify for a week
LOOP_TIMEOUT_S = 0.1
AUTH_REASONS = frozenset({"Not authorized", "Bad user name or password"})


class PlainBrokerRefused(ValueError):
    """A plain (non-TLS) broker URL to another host, and plain links not allowed."""

    def __init__(self, address: BrokerAddress) -> None:
        super().__init__(
            f"refusing plain MQTT to {address.host}:{address.port}: use mqtts:// (with the operator's CA file), "
            "or allow plain links explicitly (PISCES_EDGE_MQTT_ALLOW_PLAIN=true, --allow-plain)"
        )
        self.address = address


def refuse_plain(address: BrokerAddress, tls: bool, allow_plain: bool) -> None:
    """Raise :class:`PlainBrokerRefused` for plain TCP beyond loopback unless ``allow_plain``."""
    if not (tls or allow_plain or address.is_loopback):
        raise PlainBrokerRefused(address)


@dataclass(frozen=True)
class TlsAndLogin:
    """How this phone proves who it is.

    Attributes:
        username, password: the device's own broker credentials (None: from the URL, if any).
        ca_file: PEM file of the CA that signed the broker's certificate (None: the system's CAs).
        tls: force TLS even for an ``mqtt://`` URL (``mqtts://`` always uses it).
        allow_plain: accept a plain link to a broker on another host (a test network, say).
    """

    username: str | None = None
    password: str | None = None
    ca_file: str | None = None
    tls: bool = False
    allow_plain: bool = False


class Uplink:
    """One device's MQTT connection.

    Args:
        device_id: the device whose topics this client uses.
        address: broker address (credentials from it unless ``login`` gives them).
        outbox: where pending messages come from and acks go.
        on_notify: called (in the network thread) with each decoded ``Notify``.
        on_config: called (in the network thread) with each decoded ``Config``.
        clock: s since epoch, for status messages.
        login: TLS and credentials.
        session_expiry_s: how long the broker keeps the session after a drop.
        retry: back-off between connection attempts.
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
        login: TlsAndLogin = TlsAndLogin(),
        session_expiry_s: int = SESSION_EXPIRY_S,
        retry: Policy = MQTT_POLICY,
        username: str | None = None,
        password: str | None = None,
    ) -> None:
        self.device_id, self.outbox, self.clock = device_id, outbox, clock
        self.on_notify, self.on_config = on_notify, on_config
        self.counters: dict[str, int] = {
            "published": 0, "acked": 0, "bad_downlink": 0, "connects": 0,
            "connect_failures": 0, "refused_login": 0, "puback_errors": 0,
        }  # fmt: skip
        self.last_error = ""
        self.last_ack_time: float | None = None
        self.sensor = "unknown"
        self._address = address
        self._session_expiry_s = session_expiry_s
        self._retry = retry
        self._login = TlsAndLogin(
            username or login.username or address.username, password or login.password or address.password,
            login.ca_file, login.tls or address.tls, login.allow_plain,
        )  # fmt: skip
        refuse_plain(address, self._login.tls, login.allow_plain)
        self._connected = threading.Event()
        self._stop = threading.Event()
        self._refused = False
        self._acked_mids: queue.SimpleQueue[int] = queue.SimpleQueue()
        self._reconnected = threading.Event()
        self._in_flight: dict[int, int] = {}  # mid -> seq; touched only by pump()
        self._thread: threading.Thread | None = None
        self._client = self._make_client()

    def _make_client(self) -> mqtt.Client:
        client = mqtt.Client(
            mqtt.CallbackAPIVersion.VERSION2, client_id=f"pisces-edge-{self.device_id}", protocol=mqtt.MQTTv5
        )
        if self._login.username:
            client.username_pw_set(self._login.username, self._login.password)
        if self._login.tls:
            client.tls_set(ca_certs=self._login.ca_file, tls_version=ssl.PROTOCOL_TLS_CLIENT)
        client.max_inflight_messages_set(MAX_IN_FLIGHT)
        client.will_set(topic_for(self.device_id, Kind.STATUS), self._status(False), qos=1, retain=True)
        client.on_connect = self._on_connect
        client.on_disconnect = self._on_disconnect
        client.on_publish = self._on_publish
        client.on_message = self._on_message
        return client

    def _status(self, online: bool) -> bytes:
        seq = self.outbox.reserve_seq()
        return encode(Status(self.device_id, seq, self.clock(), online, sensor=self.sensor))

    def start(self) -> None:
        """Start the network thread; it connects, and reconnects with back-off, by itself."""
        self._thread = threading.Thread(target=self._network, name=f"uplink-{self.device_id}", daemon=True)
        self._thread.start()

    def stop(self, *, goodbye: bool = True) -> None:
        """Publish an offline status (if connected and ``goodbye``), disconnect and stop the thread."""
        if goodbye and self._connected.is_set():
            info = self._client.publish(topic_for(self.device_id, Kind.STATUS), self._status(False), 1, True)
            info.wait_for_publish(timeout=2.0)
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5.0)

    def _network(self) -> None:
        failures = 0
        while not self._stop.is_set():
            if self._session():
                failures = 0
            failures += 1
            error = NotAuthorized() if self._refused else None
            if self._stop.wait(backoff_for(failures, error, policy=self._retry, salt=self.device_id)):
                break
        self._client.disconnect()
        # paho's loop() opens a wake-up socket pair that only its finaliser closes; the client and
        # this object form a reference cycle, so without this the pair is left to the garbage
        # collector, which may finalise the sockets first (a ResourceWarning, at a random moment)
        reset = getattr(self._client, "_reset_sockets", None)
        if reset is not None:
            reset()

    def _session(self) -> bool:
        """Connect and run the loop until the link drops; True if it was up."""
        self._refused = False
        props = Properties(PacketTypes.CONNECT)
        props.SessionExpiryInterval = self._session_expiry_s
        try:
            self._client.connect(self._address.host, self._address.port, KEEPALIVE_S, clean_start=False,
                                 properties=props)  # fmt: skip
        except (OSError, ssl.SSLError) as exc:
            self.counters["connect_failures"] += 1
            self.last_error = f"{type(exc).__name__}: {exc}"
            return False
        was_up = False
        while not self._stop.is_set():
            if self._client.loop(timeout=LOOP_TIMEOUT_S) != mqtt.MQTT_ERR_SUCCESS:
                break
            was_up = was_up or self._connected.is_set()
            if self._refused:
                break
        self._connected.clear()
        if self._stop.is_set() and was_up:
            self._client.disconnect()
            self._client.loop(timeout=LOOP_TIMEOUT_S)
        return was_up

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
            self._in_flight.clear()  # send again whatever was not acked; the server drops duplicates
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
                self.last_ack_time = self.clock()

    def _on_connect(self, client: mqtt.Client, _ud: Any, _flags: Any, rc: Any, _props: Any = None) -> None:
        if rc.is_failure:
            self._refused = str(rc) in AUTH_REASONS
            self.counters["refused_login" if self._refused else "connect_failures"] += 1
            self.last_error = f"broker refused the connection: {rc}"
            log.warning("broker refused %s: %s", self.device_id, rc)
            return
        self.counters["connects"] += 1
        self.last_error = ""
        client.subscribe([(topic_for(self.device_id, Kind.NOTIFY), 1), (topic_for(self.device_id, Kind.CONFIG), 1)])
        client.publish(topic_for(self.device_id, Kind.STATUS), self._status(True), qos=1, retain=True)
        self._reconnected.set()
        self._connected.set()

    def _on_disconnect(self, _c: mqtt.Client, _ud: Any, _flags: Any, rc: Any, _props: Any = None) -> None:
        self._connected.clear()

    def _on_publish(self, _c: mqtt.Client, _ud: Any, mid: int, rc: Any, _props: Any = None) -> None:
        if rc.is_failure:  # e.g. "Not authorized": the message stays in the outbox
            self.counters["puback_errors"] += 1
            self.last_error = f"broker refused a message: {rc}"
            return
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
