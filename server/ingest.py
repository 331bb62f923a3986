"""MQTT ingest: uplink messages -> one committed transaction each -> then the MQTT ack.

Paho's network thread only queues messages; a worker thread decodes each with
``wire.decode_uplink``, stores it with :mod:`server.records`, runs the rules,
commits, publishes notifications and only then sends the PUBACK
(``manual_ack``). The session is persistent (clean session off), so a message
whose rows were never committed is delivered again after a reconnect. Bad
messages go to ``dead_letters`` and are acked; a database outage is retried
with backoff, without acking, for as long as it lasts.
"""

from __future__ import annotations

import logging
import queue
import threading
from dataclasses import dataclass, field
from typing import Any, Literal

import paho.mqtt.client as mqtt
import psycopg
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.properties import Properties
from paho.mqtt.packettypes import PacketTypes

from server import records
from server.notify import Notifier
from server.records import AlertChange
from server.rules import RuleConfig, evaluate_event, evaluate_windows, sync_levels
from server.settings import ServerSettings
from wire import BrokerAddress, Event, Status, Strip, Summary, TopicError, Uplink, WireDecodeError
from wire import decode_uplink, uplink_filter

log = logging.getLogger(__name__)

RETRY_MIN_S, RETRY_MAX_S = 0.2, 5.0  # database retry backoff
SESSION_EXPIRY_S = 7 * 24 * 3600  # MQTT 5: the broker keeps our queue this long while we are away
START_TIMEOUT_S = 15.0


@dataclass(frozen=True)
class Outcome:
    """What became of one message."""

    status: Literal["stored", "duplicate", "dead_letter"]
    device_id: str | None = None
    changes: list[AlertChange] = field(default_factory=list)


@dataclass
class IngestCounters:
    """Running totals since the worker started."""

    received: int = 0
    stored: int = 0
    duplicates: int = 0
    dead_lettered: int = 0
    db_errors: int = 0
    notified: int = 0


def rule_config(settings: ServerSettings) -> RuleConfig:
    """The rule evaluator's configuration from the server settings."""
    return RuleConfig(
        hold_seconds=settings.alert_hold_seconds,
        clear_seconds=settings.alert_clear_seconds,
        min_quality=settings.min_quality,
        max_gap_seconds=settings.alert_max_gap_seconds,
    )


def handle_message(conn: psycopg.Connection[Any], topic: str, payload: bytes, config: RuleConfig) -> Outcome:
    """Decode, store and judge one uplink message in one transaction (``conn`` in autocommit mode)."""
    try:
        _, msg = decode_uplink(topic, payload)
    except (WireDecodeError, TopicError) as exc:
        reason = exc.reason if isinstance(exc, WireDecodeError) else "topic"
        return keep_dead_letter(conn, topic, payload, reason, str(exc))
    with conn.transaction():
        patient_id = records.device_patient(conn, msg.device)
        if patient_id is None:
            records.dead_letter(conn, topic, payload, "unknown_device", f"no patient has device {msg.device!r}")
            return Outcome("dead_letter", msg.device)
        if not records.claim_message(conn, msg.device, msg.seq, msg.kind.value):
            return Outcome("duplicate", msg.device)
        changes = _store(conn, patient_id, msg, config)
    return Outcome("stored", msg.device, changes)


def keep_dead_letter(conn: psycopg.Connection[Any], topic: str, payload: bytes, reason: str, detail: str) -> Outcome:
    """Store an unusable message in ``dead_letters`` in its own transaction."""
    with conn.transaction():
        records.dead_letter(conn, topic, payload, reason, detail)
    return Outcome("dead_letter")


def _store(conn: psycopg.Connection[Any], patient_id: int, msg: Uplink, config: RuleConfig) -> list[AlertChange]:
    if isinstance(msg, Summary):
        records.store_summary(conn, patient_id, msg)
    elif isinstance(msg, Event):
        records.store_event(conn, patient_id, msg)
    elif isinstance(msg, Strip):
        records.store_strip(conn, patient_id, msg)
    elif isinstance(msg, Status):
        records.store_status(conn, patient_id, msg)
    if not isinstance(msg, (Summary, Event)):
        return []
    state = sync_levels(records.lock_rule_state(conn, patient_id), records.active_levels(conn, patient_id))
    if isinstance(msg, Summary):
        state, actions = evaluate_windows(state, msg.windows, config)
    else:
        where = (msg.lat, msg.lon) if msg.lat is not None and msg.lon is not None else None
        state, actions = evaluate_event(state, msg.type.value, msg.time, where)
    records.save_rule_state(conn, patient_id, state)
    return records.apply_actions(conn, patient_id, actions)


@dataclass(frozen=True)
class _Pending:
    topic: str
    payload: bytes
    mid: int
    qos: int


class Ingestor:
    """One ingest worker: a paho client, a worker thread and a database connection.

    Args:
        settings: needs ``database_url`` and ``mqtt_url``.
    """

    def __init__(self, settings: ServerSettings) -> None:
        if settings.database_url is None or settings.mqtt_url is None:
            raise ValueError("the ingest needs settings.database_url and settings.mqtt_url")
        self.settings = settings
        self.counters = IngestCounters()
        self._db_url = settings.database_url
        self._rules = rule_config(settings)
        self._queue: queue.Queue[_Pending] = queue.Queue()
        self._stopping = threading.Event()
        self._subscribed = threading.Event()
        self._conn: psycopg.Connection[Any] | None = None
        self._worker: threading.Thread | None = None
        self._client = self._make_client(settings)
        self._notifier = Notifier(self._client)

    @property
    def subscription(self) -> str:
        """The topic filter this worker subscribes to."""
        group = self.settings.mqtt_shared_group
        return f"$share/{group}/{uplink_filter()}" if group else uplink_filter()

    def _make_client(self, settings: ServerSettings) -> mqtt.Client:
        v5 = settings.mqtt_protocol == "5"
        client = mqtt.Client(
            CallbackAPIVersion.VERSION2,
            client_id=settings.mqtt_client_id,
            clean_session=None if v5 else False,
            protocol=mqtt.MQTTv5 if v5 else mqtt.MQTTv311,
            manual_ack=True,
        )
        address = BrokerAddress.parse(settings.mqtt_url or "")
        username = settings.mqtt_username or address.username
        password = settings.mqtt_password.get_secret_value() if settings.mqtt_password else address.password
        if username:
            client.username_pw_set(username, password)
        if address.tls:
            client.tls_set()
        client.on_connect = self._on_connect
        client.on_subscribe = self._on_subscribe
        client.on_message = self._on_message
        client.reconnect_delay_set(1, 30)
        return client

    def start(self) -> None:
        """Connect, subscribe and start the worker; return once the subscription is granted."""
        self._stopping.clear()
        self._worker = threading.Thread(target=self._work, name="pisces-ingest-worker", daemon=True)
        self._worker.start()
        address = BrokerAddress.parse(self.settings.mqtt_url or "")
        kwargs: dict[str, Any] = {}
        if self.settings.mqtt_protocol == "5":
            props = Properties(PacketTypes.CONNECT)
            props.SessionExpiryInterval = SESSION_EXPIRY_S
            kwargs = {"clean_start": False, "properties": props}
        self._client.connect_async(address.host, address.port, keepalive=30, **kwargs)
        self._client.loop_start()
        if not self._subscribed.wait(START_TIMEOUT_S):
            self.stop()
            raise TimeoutError(f"no subscription granted by {address.url()} in {START_TIMEOUT_S:.0f} s")

    def stop(self, timeout: float = 5.0) -> None:
        """Disconnect (unacked messages stay with the broker) and stop the worker."""
        self._stopping.set()
        self._client.disconnect()
        self._client.loop_stop()
        if self._worker is not None:
            self._worker.join(0.5)
            conn = self._conn
            if self._worker.is_alive() and conn is not None:
                conn.cancel_safe()  # a statement stuck on a lock: roll it back, leave the message unacked
            self._worker.join(timeout)
        self._drop_connection()

    def run_forever(self) -> None:
        """Run until interrupted (Ctrl-C / SIGINT)."""
        self.start()
        try:
            self._stopping.wait()
        except KeyboardInterrupt:
            pass
        finally:
            self.stop()

    def _on_connect(self, client: mqtt.Client, _u: Any, _f: Any, rc: Any, _p: Any = None) -> None:
        if rc.is_failure:
            log.warning("broker refused the connection: %s", rc)
            return
        client.subscribe(self.subscription, qos=1)

    def _on_subscribe(self, _c: mqtt.Client, _u: Any, _mid: int, codes: list[Any], _p: Any = None) -> None:
        if all(not code.is_failure for code in codes):
            self._subscribed.set()
        else:
            log.error("subscription to %s refused: %s", self.subscription, codes)

    def _on_message(self, _c: mqtt.Client, _u: Any, message: mqtt.MQTTMessage) -> None:
        self._queue.put(_Pending(message.topic, bytes(message.payload), message.mid, message.qos))

    def _work(self) -> None:
        while not self._stopping.is_set():
            try:
                item = self._queue.get(timeout=0.2)
            except queue.Empty:
                continue
            self._process(item)

    def _process(self, item: _Pending) -> None:
        self.counters.received += 1
        outcome = self._commit(item)
        if outcome is None:
            return  # stopping during a database outage: no ack, the broker delivers it again
        self._count(outcome)
        if outcome.changes and outcome.device_id:
            self.counters.notified += self._notifier.send(outcome.device_id, outcome.changes)
        if item.qos > 0:
            self._client.ack(item.mid, item.qos)

    def _commit(self, item: _Pending) -> Outcome | None:
        failure: tuple[str, str] | None = None
        delay = RETRY_MIN_S
        while True:
            try:
                conn = self._connection()
                if failure is None:
                    return handle_message(conn, item.topic, item.payload, self._rules)
                return keep_dead_letter(conn, item.topic, item.payload, *failure)
            except psycopg.OperationalError as exc:
                self.counters.db_errors += 1
                log.warning("database unavailable (%s); retrying in %.1f s", exc, delay)
                self._drop_connection()
                if self._stopping.wait(delay):
                    return None
                delay = min(delay * 2, RETRY_MAX_S)
            except Exception as exc:  # a row the database refuses, or a bug: keep it, go on
                if failure is not None:
                    log.exception("could not even dead-letter a message on %s", item.topic)
                    return None
                log.exception("storing a message on %s failed", item.topic)
                failure = ("store_failed", f"{type(exc).__name__}: {exc}")

    def _count(self, outcome: Outcome) -> None:
        if outcome.status == "stored":
            self.counters.stored += 1
        elif outcome.status == "duplicate":
            self.counters.duplicates += 1
        else:
            self.counters.dead_lettered += 1

    def _connection(self) -> psycopg.Connection[Any]:
        if self._conn is None or self._conn.closed:
            self._conn = psycopg.connect(
                self._db_url, autocommit=True, application_name=f"pisces-ingest:{self.settings.mqtt_client_id}"
            )
        return self._conn

    def _drop_connection(self) -> None:
        if self._conn is not None:
            try:
                self._conn.close()
            except psycopg.Error:
                pass
            self._conn = None
