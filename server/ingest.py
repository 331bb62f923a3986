"""MQTT ingest: uplink messages -> batches -> one committed transaction each -> then the MQTT acks.

Paho's network thread only queues messages; a worker thread takes what is
queued (never waiting for more), decodes each with ``wire.decode_uplink`` and
holds it by device partition (:func:`partition_of`). A batch is up to
``ingest_batch_size`` of the oldest held messages of the partitions it takes
the turn of, stored with :func:`store_batch` in one transaction: the turns first, then
idempotency keys (a key already there = duplicate), the new messages' summary
windows by COPY (with the rollups on plain PostgreSQL), then the rules per
patient, in sequence order (:func:`server.alerting.rule_actions`, the limits in
force), and every message's alert actions at once
(:func:`server.records.apply_actions_many`). After the commit it publishes notifications and
only then acks every message of the batch (``manual_ack``). The session is
persistent, so whatever was not committed is delivered again after a
reconnect or a crash. (Decoding stays on the worker thread: on paho's thread
it overlapped the database wait but cost more CPU in all, the two threads
contending for the GIL; docs/benchmarks.md.)

Several workers share the load on an MQTT 5 shared subscription
(``$share/<group>/pisces/v1/+/+``): ``pisces ingest --workers N`` runs N
processes (:func:`supervise`). Two workers may hold messages of the same
patient; they take turns on that patient's ``rule_state`` row (locked in
ascending patient order), so rules see each patient's windows in order and an
alert episode is opened once. So that they seldom have to, a batch holds the
messages of partitions whose turns it takes first (advisory locks): a worker
stores partitions no other worker is storing, and waits only when all it holds
are taken (:meth:`Ingestor._store_one`).

Consent (:mod:`server.consent`) is read after those locks, so a grant or
withdrawal (recorded under the same lock) applies from the next batch at the
latest. Without consent to location sharing, ``lat``/``lon`` are stripped
from windows and events before anything is stored (counted); without consent
to monitoring the message is quarantined in ``dead_letters`` with reason
``no_consent`` (its key is claimed, so a redelivery is a duplicate) and
raises no alert. Nothing else of a message is ever dropped.

Retained messages are not taken on subscribing (MQTT 5 retain handling 2; a
3.1.1 delivery flagged retained is acked and counted, not stored): what the
server must store reaches its persistent session as it is published, and a
retained copy is an old message again (or another device's downlink config).

Bad messages go to ``dead_letters`` inside the batch and are acked with it; a
batch the database refuses is retried message by message, and a message that
still fails is dead-lettered as ``store_failed``. A database outage is retried
with backoff, without acking, for as long as it lasts.
"""

from __future__ import annotations

import functools
import gc
import hashlib
import hmac
import logging
import multiprocessing
import queue
import signal
import threading
import time
import zlib
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import date, datetime, timezone
from typing import Any, Literal, NamedTuple

import orjson
import paho.mqtt.client as mqtt
import psycopg
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.subscribeoptions import SubscribeOptions
from psycopg.types.json import set_json_dumps, set_json_loads

from server import consent, records, thresholds
from server.alerting import rule_actions
from server.metrics import IngestMetrics, serve_metrics
from server.ingest_client import IngestClient
from server.notify import Notifier, broker_login
from server.records import AlertChange
from server.rules import AlertAction, RuleConfig, RuleState, sync_levels
from server.settings import ServerSettings
from server.retention import ANOTHER_JOB, policy_from, run_retention
from server.store import store_engine
from wire import BrokerAddress, Event, Kind, Status, Strip, Summary, Topic, TopicError, Uplink, WireDecodeError
from wire import decode_uplink, encode, uplink_filter

log = logging.getLogger(__name__)

RETRY_MIN_S, RETRY_MAX_S = 0.2, 5.0  # database retry backoff
SESSION_EXPIRY_S = 7 * 24 * 3600  # MQTT 5: the broker keeps our queue this long while we are away
START_TIMEOUT_S = 15.0
DEFAULT_SHARED_GROUP = "pisces-ingest"
NO_CONSENT = "no_consent"  # dead-letter reason: the patient withdrew consent to monitoring
UPLINK_KINDS_IN_ORDER = (Kind.SUMMARY, Kind.EVENT, Kind.STRIP, Kind.STATUS)
RESTART_MIN_S, RESTART_MAX_S = 0.5, 30.0  # supervisor: restart backoff of a worker process that died
GC_THRESHOLDS = (50_000, 20, 100)  # a worker's cyclic GC: see quiet_gc()


@dataclass(frozen=True)
class Outcome:
    """What became of one message."""

    status: Literal["stored", "duplicate", "dead_letter"]
    device_id: str | None = None
    changes: list[AlertChange] = field(default_factory=list)
    reason: str | None = None  # dead letters: why
    windows: int = 0  # summary windows it carried (stored ones only)
    positions_stripped: int = 0  # windows/events stored without lat/lon: no location consent


@dataclass
class IngestCounters:
    """Running totals since the worker started."""

    received: int = 0
    stored: int = 0
    duplicates: int = 0
    dead_lettered: int = 0
    db_errors: int = 0
    notified: int = 0
    batches: int = 0
    subscribed: int = 0  # times the broker granted our subscription (1 + reconnects)
    retained_skipped: int = 0  # retained copies a (re)subscription brought, not stored again
    positions_stripped: int = 0  # windows/events whose lat/lon were not stored: no location consent


def rule_config(settings: ServerSettings) -> RuleConfig:
    """The rule evaluator's configuration from the server settings."""
    return RuleConfig(
        hold_seconds=settings.alert_hold_seconds,
        clear_seconds=settings.alert_clear_seconds,
        min_quality=settings.min_quality,
        max_gap_seconds=settings.alert_max_gap_seconds,
    )


@dataclass(frozen=True)
class Decoded:
    """A message of a batch after decoding: the message, or why it is unusable."""

    topic: str
    payload: bytes
    msg: Uplink | None
    reason: str = ""
    detail: str = ""


def decode_one(topic: str, payload: bytes) -> Decoded:
    """Decode and validate one uplink message against the wire contract (topic and payload must agree)."""
    try:
        _, msg = decode_uplink(topic, payload)
    except WireDecodeError as exc:
        return Decoded(topic, payload, None, exc.reason, str(exc))
    except TopicError as exc:
        return Decoded(topic, payload, None, "topic", str(exc))
    return Decoded(topic, payload, msg)


PARTITION_LOCK_CLASS = 0x50_15_CE_7  # pg_advisory_xact_lock(class, partition): a partition's turn


class PartitionBusy(Exception):
    """Another worker's transaction holds this partition's turn (nothing was written)."""


def partition_of(device: str, partitions: int) -> int:
    """The partition of a device's messages: a stable hash of its id (the same in every worker)."""
    return zlib.crc32(device.encode()) % partitions


def message_partition(decoded: Decoded, partitions: int) -> int:
    """A message's partition: its device's, from the payload or else the topic (unusable ones too, so a
    device's messages stay in order); 0 when neither names a device."""
    if decoded.msg is not None:
        return partition_of(decoded.msg.device, partitions)
    try:
        return partition_of(Topic.parse(decoded.topic).device_id, partitions)
    except (TopicError, ValueError):
        return 0


def take_partition(conn: psycopg.Connection[Any], partition: int, wait: bool) -> bool:
    """Take a partition's turn until the end of the current transaction; False if busy (only when not ``wait``)."""
    if wait:
        conn.execute("SELECT pg_advisory_xact_lock(%s, %s)", (PARTITION_LOCK_CLASS, partition))
        return True
    row = conn.execute("SELECT pg_try_advisory_xact_lock(%s, %s)", (PARTITION_LOCK_CLASS, partition)).fetchone()
    return bool(row and row[0])


def store_batch(
    conn: psycopg.Connection[Any],
    batch: Sequence[Decoded],
    config: RuleConfig,
    rollups: bool,
    partitions: Iterable[int] = (),
    wait: bool = True,
) -> list[Outcome]:
    """Store a batch in one transaction (``conn`` in autocommit mode); one outcome per message, in order.

    Args:
        conn: connection in autocommit mode; the summary partitions must exist.
        batch: decoded messages in arrival order.
        config: rule configuration.
        rollups: maintain the rollup tables (plain PostgreSQL; TimescaleDB has continuous aggregates).
        partitions: take these device partitions' turns first, in ascending order (:func:`take_partition`);
            none: no turn taken.
        wait: wait for the turns; otherwise raise :class:`PartitionBusy` (naming the first partition found
            busy, nothing written) when another worker has one.

    The turn is only a way to keep workers off each other's patients; what keeps
    every message once and each patient's rules in order is the same without it
    (claims and rule-state row locks).
    """
    outcomes: list[Outcome | None] = [None] * len(batch)
    with conn.transaction():
        for partition in sorted(set(partitions)):
            if not take_partition(conn, partition, wait):
                raise PartitionBusy(partition)
        patients = records.device_patients(conn, (d.msg.device for d in batch if d.msg is not None))
        letters: list[tuple[int, str, str]] = []
        first: dict[tuple[str, int], int] = {}
        for i, d in enumerate(batch):
            if d.msg is None:
                letters.append((i, d.reason, d.detail))
            elif d.msg.device not in patients:
                letters.append((i, "unknown_device", f"no patient has device {d.msg.device!r}"))
            elif (d.msg.device, d.msg.seq) in first:
                outcomes[i] = Outcome("duplicate", d.msg.device)
            else:
                first[(d.msg.device, d.msg.seq)] = i
        new = records.claim_many(conn, [(k[0], k[1], batch[i].msg.kind.value) for k, i in first.items()])  # type: ignore[union-attr]
        fresh = [i for key, i in first.items() if key in new]
        for key, i in first.items():
            if key not in new:
                outcomes[i] = Outcome("duplicate", key[0])
        written = _write(conn, [(patients[batch[i].msg.device], i, batch[i].msg) for i in fresh], config, rollups)  # type: ignore[union-attr,misc]
        for i in fresh:
            msg = batch[i].msg
            assert msg is not None
            if i in written.quarantined:
                letters.append((i, NO_CONSENT, f"patient of {msg.device!r} has not consented to monitoring"))
                continue
            n = len(msg.windows) if isinstance(msg, Summary) else 0
            outcomes[i] = Outcome("stored", msg.device, written.changes.get(i, []), windows=n,
                                  positions_stripped=written.stripped.get(i, 0))  # fmt: skip
        letters.sort()
        kept = [(batch[i].topic, written.quarantined.get(i, batch[i].payload), reason, detail)
                for i, reason, detail in letters]  # fmt: skip
        records.dead_letter_many(conn, kept)
        for i, reason, _ in letters:
            msg = batch[i].msg
            outcomes[i] = Outcome("dead_letter", msg.device if msg else None, reason=reason)
    return [o for o in outcomes if o is not None]


@dataclass(frozen=True)
class _Written:
    """What :func:`_write` did: alert changes, messages quarantined (payload to keep), positions stripped."""

    changes: dict[int, list[AlertChange]]
    quarantined: dict[int, bytes]
    stripped: dict[int, int]


def _under_consent(
    conn: psycopg.Connection[Any], fresh: list[tuple[int, int, Uplink]]
) -> tuple[list[tuple[int, int, Uplink]], dict[int, bytes], dict[int, int]]:
    """Apply consent (read after the rule-state locks): keep, strip positions, or quarantine each message."""
    granted = consent.granted_many(conn, (p for p, _, _ in fresh))
    kept, quarantined, stripped = [], {}, {}
    counts: dict[tuple[int, str], int] = {}
    for patient_id, i, msg in fresh:
        if "location" not in granted[patient_id]:
            msg, n = consent.without_positions(msg)
            if n:
                stripped[i] = n
                counts[(patient_id, "positions_stripped")] = counts.get((patient_id, "positions_stripped"), 0) + n
        if "monitoring" not in granted[patient_id]:
            quarantined[i] = encode(msg)  # kept as sent, less any position the patient did not share
            counts[(patient_id, "quarantined")] = counts.get((patient_id, "quarantined"), 0) + 1
        else:
            kept.append((patient_id, i, msg))
    consent.count_enforcement(conn, counts)
    return kept, quarantined, stripped


def _judge(
    fresh: list[tuple[int, int, Uplink]],
    judged: list[int],
    states: dict[int, RuleState],
    active: Mapping[int, Mapping[str, str]],
    in_force: Mapping[int, thresholds.InForce],
    config: RuleConfig,
) -> tuple[list[tuple[int, list[AlertAction], int | None]], list[int]]:
    """Run the rules over the judged patients' messages, in sequence order (pure: no database).

    Moves ``states`` forward in place; returns each message's alert actions as
    ``(patient, actions, limits version)`` and, beside them, the message's index in the batch.
    """
    by_patient: dict[int, list[tuple[int, Uplink]]] = {}
    for patient_id, i, msg in fresh:
        if isinstance(msg, (Summary, Event)):
            by_patient.setdefault(patient_id, []).append((i, msg))
    configs: dict[int, RuleConfig] = {}  # by id of the limits in force: most patients share the defaults
    work: list[tuple[int, list[AlertAction], int | None]] = []  # (patient, actions, version) of each message
    judged_at: list[int] = []  # the batch index of each item of work
    for patient_id in judged:
        state = sync_levels(states[patient_id], active.get(patient_id, {}))
        limits = in_force[patient_id]
        patient_config = configs.get(id(limits))
        if patient_config is None:
            patient_config = configs[id(limits)] = replace(config, limits=limits.limits, version=limits.version)
        for i, msg in sorted(by_patient[patient_id], key=lambda e: e[1].seq):
            state, actions = rule_actions(state, msg, patient_config)  # type: ignore[arg-type]
            if actions:
                work.append((patient_id, actions, limits.version))
                judged_at.append(i)
        states[patient_id] = state
    return work, judged_at


def _write(
    conn: psycopg.Connection[Any], fresh: list[tuple[int, int, Uplink]], config: RuleConfig, rollups: bool
) -> _Written:
    """Write new messages ``(patient, index in batch, message)`` within consent; judge them."""
    # Every patient's rows below are ours until commit; a consent change waits for them, or they for it.
    states = records.lock_rule_states(conn, (p for p, _, _ in fresh))
    fresh, quarantined, stripped = _under_consent(conn, fresh)
    judged = sorted({p for p, _, m in fresh if isinstance(m, (Summary, Event))})
    active = records.active_levels_many(conn, judged) if judged else {}
    in_force = thresholds.limits_in_force_many(conn, judged) if judged else {}  # fresh each batch
    summaries = [(p, m) for p, _, m in fresh if isinstance(m, Summary)]
    with records.summaries_in_flight(conn, summaries, rollups):  # PostgreSQL inserts the windows meanwhile
        work, judged_at = _judge(fresh, judged, states, active, in_force, config)
    for patient_id, _, msg in sorted(fresh, key=lambda f: (f[2].device, f[2].seq)):
        if isinstance(msg, Event):
            records.store_event(conn, patient_id, msg)
        elif isinstance(msg, Strip):
            records.store_strip(conn, patient_id, msg)
        elif isinstance(msg, Status):
            records.store_status(conn, patient_id, msg)
    if not judged:
        return _Written({}, quarantined, stripped)
    made = records.apply_actions_many(conn, work)  # every message's alert actions, in order, in a few statements
    records.save_rule_states(conn, {p: states[p] for p in judged})
    return _Written({i: c for i, c in zip(judged_at, made) if c}, quarantined, stripped)


def handle_message(conn: psycopg.Connection[Any], topic: str, payload: bytes, config: RuleConfig) -> Outcome:
    """Decode, store and judge one uplink message in one transaction (``conn`` in autocommit mode)."""
    rollups = store_engine(conn) != "timescaledb"
    decoded = decode_one(topic, payload)
    if isinstance(decoded.msg, Summary):
        records.ensure_partitions(conn, records.summary_days(decoded.msg))
    return store_batch(conn, [decoded], config, rollups)[0]


def keep_dead_letter(conn: psycopg.Connection[Any], topic: str, payload: bytes, reason: str, detail: str) -> Outcome:
    """Store an unusable message in ``dead_letters`` in its own transaction."""
    with conn.transaction():
        records.dead_letter(conn, topic, payload, reason, detail)
    return Outcome("dead_letter", reason=reason)


class _Pending(NamedTuple):
    """A message received and not yet acked (a named tuple: one is made per message on paho's thread)."""

    topic: str
    payload: bytes
    mid: int
    qos: int
    received: float  # time.monotonic() when paho handed it over
    connection: int  # which broker connection it came on (acks go to that one only)


class Ingestor:
    """One ingest worker: a paho client, a worker thread and a database connection.

    Args:
        settings: needs ``database_url`` and ``mqtt_url``.
        metrics: where to count (default: a registry of its own, served on
            ``settings.metrics_port`` when that is set).
    """

    def __init__(self, settings: ServerSettings, metrics: IngestMetrics | None = None) -> None:
        if settings.database_url is None or settings.mqtt_url is None:
            raise ValueError("the ingest needs settings.database_url and settings.mqtt_url")
        self.settings = settings
        self.counters = IngestCounters()
        self.metrics = metrics or IngestMetrics()
        self._db_url = settings.database_url
        self._rules = rule_config(settings)
        self._queue: queue.Queue[_Pending] = queue.Queue()
        self._oldest_held: float | None = None  # when the oldest message received and not yet stored came
        self._stopping = threading.Event()
        self._subscribed = threading.Event()
        self._connections = 0  # broker connections so far
        self._conn: psycopg.Connection[Any] | None = None
        self._rollups: bool | None = None
        self._days: set[date] = set()  # summary partitions known to exist
        self._retention_due = 0.0
        self._worker: threading.Thread | None = None
        self._metrics_server: Any = None
        self._client = self._make_client(settings)
        self._notifier = Notifier(self._client)
        self.metrics.watch_oldest(self._oldest_pending)

    @property
    def subscriptions(self) -> list[str]:
        """The topic filters this worker subscribes to: the uplink kinds only (no retained downlink)."""
        group = shared_group(self.settings)
        filters = [uplink_filter(kind) for kind in UPLINK_KINDS_IN_ORDER]
        return [f"$share/{group}/{f}" for f in filters] if group else filters

    def _make_client(self, settings: ServerSettings) -> mqtt.Client:
        v5 = settings.mqtt_protocol == "5"
        client = IngestClient(
            CallbackAPIVersion.VERSION2,
            client_id=settings.mqtt_client_id,
            clean_session=None if v5 else False,
            protocol=mqtt.MQTTv5 if v5 else mqtt.MQTTv311,
            manual_ack=True,
            on_uplink=self._receive,
        )
        broker_login(client, settings)
        client.on_connect = self._on_connect
        client.on_subscribe = self._on_subscribe
        client.on_message = self._on_message
        client.reconnect_delay_set(1, 30)
        return client

    def start(self) -> None:
        """Connect, subscribe and start the worker; return once the subscription is granted."""
        self._stopping.clear()
        if self.settings.metrics_port is not None and self._metrics_server is None:
            self._metrics_server, _ = serve_metrics(self.metrics, self.settings.metrics_host, self.settings.metrics_port)
        self._worker = threading.Thread(target=self._work, name="pisces-ingest-worker", daemon=True)
        self._worker.start()
        address = BrokerAddress.parse(self.settings.mqtt_url or "")
        kwargs: dict[str, Any] = {}
        if self.settings.mqtt_protocol == "5":
            props = Properties(PacketTypes.CONNECT)
            props.SessionExpiryInterval = SESSION_EXPIRY_S
            props.ReceiveMaximum = self.settings.ingest_receive_maximum
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
        self._client.close()
        if self._worker is not None:
            self._worker.join(0.5)
            conn = self._conn
            if self._worker.is_alive() and conn is not None:
                conn.cancel_safe()  # a statement stuck on a lock: roll it back, leave the batch unacked
            self._worker.join(timeout)
        self._drop_connection()
        if self._metrics_server is not None:
            self._metrics_server.shutdown()
            self._metrics_server.server_close()
            self._metrics_server = None

    def run_forever(self) -> None:
        """Run until SIGINT or SIGTERM."""
        signal.signal(signal.SIGTERM, lambda *_: self._stopping.set())
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
        self._connections += 1
        if self.settings.mqtt_protocol == "5":
            options = SubscribeOptions(qos=1, retainHandling=SubscribeOptions.RETAIN_DO_NOT_SEND)
            client.subscribe([(f, options) for f in self.subscriptions])
        else:
            client.subscribe([(f, 1) for f in self.subscriptions])

    def _on_subscribe(self, _c: mqtt.Client, _u: Any, _mid: int, codes: list[Any], _p: Any = None) -> None:
        if all(not code.is_failure for code in codes):
            self.counters.subscribed += 1
            self._subscribed.set()
        else:
            log.error("subscription to %s refused: %s", self.subscriptions, codes)

    def _on_message(self, _c: mqtt.Client, _u: Any, message: mqtt.MQTTMessage) -> None:
        """A PUBLISH paho parsed itself (QoS 0 or 2, with properties: not the usual uplink's shape)."""
        self._receive(message.topic, message.payload, message.mid, message.qos, message.retain)

    def _receive(self, topic: str, payload: bytes, mid: int, qos: int, retain: bool) -> None:
        """Queue a message for the worker thread (on paho's network thread; most come through the client's
        fast path, :class:`server.ingest_client.IngestClient`)."""
        if retain:  # MQTT 3.1.1: a retained copy sent because we subscribed, not news
            self.counters.retained_skipped += 1
            self.metrics.retained_skipped.inc()
            if qos > 0:
                self._client.ack(mid, qos)
            return
        pending = _Pending(topic, payload, mid, qos, time.monotonic(), self._connections)
        self.counters.received += 1
        self.metrics.received.inc()
        self.metrics.pending.inc()
        self._queue.put(pending)

    def _oldest_pending(self) -> float | None:
        oldest = self._oldest_held
        with self._queue.mutex:
            queued = self._queue.queue[0].received if self._queue.queue else None
        return oldest if oldest is not None else queued

    def _work(self) -> None:
        held: dict[int, list[tuple[_Pending, Decoded]]] = {}  # received, not yet stored: by partition, in order
        while not self._stopping.is_set():
            if self._take(held):
                self._store_one(held)
                self._oldest_held = min((items[0][0].received for items in held.values()), default=None)
            self._maybe_retention()

    def _take(self, held: dict[int, list[tuple[_Pending, Decoded]]]) -> bool:
        """Decode what is queued into ``held`` (waiting up to 0.2 s when nothing is); False: nothing held."""
        if not held:
            try:
                self._hold(held, self._queue.get(timeout=0.2))
            except queue.Empty:
                return False
        while True:  # never waiting for more: a lone message is stored at once
            try:
                self._hold(held, self._queue.get_nowait())
            except queue.Empty:
                return True

    def _hold(self, held: dict[int, list[tuple[_Pending, Decoded]]], pending: _Pending) -> None:
        decoded = decode_one(pending.topic, pending.payload)
        held.setdefault(message_partition(decoded, self.settings.ingest_partitions), []).append((pending, decoded))
        if self._oldest_held is None:
            self._oldest_held = pending.received

    def _store_one(self, held: dict[int, list[tuple[_Pending, Decoded]]]) -> None:
        """Store one batch: the oldest messages held, up to ``ingest_batch_size``, of the partitions no other
        worker is storing, taken oldest message first.

        A batch holds the oldest messages of the partition whose oldest message
        came first, then, if there is room, of the next (under load one
        partition fills a batch; at half load one transaction takes what is held
        of several, rather than one transaction each). A partition whose turn is
        another worker's is left out and the batch made again without it. Only
        when every partition held is being stored by another worker does this
        one wait, for the turn of the one whose message came first. With
        ``ingest_partitions`` 1 there are no turns: the batch is what is held, as it came;
        so too when fewer than ``ingest_partition_min`` messages are held (light load).
        """
        total = sum(len(items) for items in held.values())
        if total < self.settings.ingest_partition_min and total <= self.settings.ingest_batch_size:
            self._store_all(held)  # light load: one transaction for everything held beats several
            return
        order = sorted(held, key=lambda k: held[k][0][0].received)
        if self.settings.ingest_partitions == 1:
            self._store_partitions(held, order[:1], turns=False, wait=True)
            return
        free = order if len(order) > 1 else []
        while free:
            try:
                self._store_partitions(held, free, turns=True, wait=False)
                return
            except PartitionBusy as busy:
                free = [k for k in free if k != busy.args[0]]
        self._store_partitions(held, order[:1], turns=True, wait=True)

    def _store_partitions(
        self, held: dict[int, list[tuple[_Pending, Decoded]]], keys: list[int], turns: bool, wait: bool
    ) -> None:
        """Store the oldest held messages of ``keys``, in that order, up to a batch; with ``turns``, taking the
        turn of each partition in the batch first (``wait``: for as long as it takes)."""
        room = self.settings.ingest_batch_size
        taken: dict[int, int] = {}
        items: list[tuple[_Pending, Decoded]] = []
        for key in keys:
            if room <= 0:
                break
            part = held[key][:room]
            items += part
            taken[key] = len(part)
            room -= len(part)
        self._process_until_done(items, list(taken) if turns else [], wait)
        for key, n in taken.items():
            del held[key][:n]
            if not held[key]:
                del held[key]

    def _store_all(self, held: dict[int, list[tuple[_Pending, Decoded]]]) -> None:
        """Store everything held in one batch, in the order it came, without a turn (the row locks still
        keep each patient's messages to one worker at a time)."""
        items = sorted((item for items in held.values() for item in items), key=lambda item: item[0].received)
        self._process_until_done(items, [], True)
        held.clear()

    def _process_until_done(self, items: list[tuple[_Pending, Decoded]], partitions: list[int], wait: bool) -> None:
        """Process a batch; on an unexpected failure (e.g. no schema yet) retry it, unacked, with backoff."""
        delay = RETRY_MIN_S
        while not self._stopping.is_set():
            try:
                self._process(items, partitions, wait)
                return
            except PartitionBusy:
                raise
            except Exception:
                log.exception("ingest failed on a batch of %d (kept unacked); retrying in %.1f s", len(items), delay)
                self._drop_connection()
                self._stopping.wait(delay)
                delay = min(delay * 2, RETRY_MAX_S)

    def _process(self, items: list[tuple[_Pending, Decoded]], partitions: list[int], wait: bool) -> None:
        started = time.perf_counter()
        outcomes = self._commit([d for _, d in items], partitions, wait)
        if outcomes is None:
            return  # stopping during a database outage: no ack, the broker delivers them again
        done = time.monotonic()
        self.counters.batches += 1
        self.metrics.batch_seconds.observe(time.perf_counter() - started)
        self.metrics.batch_size.observe(len(items))
        self._count(outcomes)
        for (item, _), outcome in zip(items, outcomes):
            self.metrics.commit_lag.observe(done - item.received)
            if outcome.changes and outcome.device_id:
                self.counters.notified += self._notifier.send(outcome.device_id, outcome.changes)
        # A message from an earlier connection is with the broker again (same session): its
        # redelivery will be acked as a duplicate; its old packet id means nothing now.
        now = [item for item, _ in items if item.qos > 0 and item.connection == self._connections]
        self._client.ack_many(item.mid for item in now if item.qos == 1)
        for item in now:
            if item.qos == 2:
                self._client.ack(item.mid, item.qos)
        self.metrics.pending.dec(len(items))

    def _commit(self, batch: list[Decoded], partitions: list[int], wait: bool) -> list[Outcome] | None:
        """Store a batch in one transaction, retried on deadlocks and outages (None: stopping meanwhile).

        Raises :class:`PartitionBusy` (nothing written) when one of ``partitions``' turns is
        another worker's and not ``wait``.
        """
        delay = RETRY_MIN_S
        while True:
            try:
                conn = self._connection()
                self._ensure_partitions(conn, batch)
                try:
                    return store_batch(conn, batch, self._rules, bool(self._rollups), partitions, wait)
                except (psycopg.errors.TransactionRollback, psycopg.OperationalError, PartitionBusy):
                    raise
                except Exception as exc:  # a row the database refuses, or a bug: find the message, keep it
                    if len(batch) == 1:
                        return [self._refused(conn, batch[0], exc)]
                    log.warning("a batch of %d was refused (%s); storing its messages one by one", len(batch), exc)
                    return self._one_by_one(conn, batch)
            except psycopg.errors.TransactionRollback as exc:  # deadlock or serialization: just again
                self.counters.db_errors += 1
                self.metrics.db_errors.inc()
                log.info("batch rolled back (%s); retrying", exc)
            except psycopg.OperationalError as exc:
                self.counters.db_errors += 1
                self.metrics.db_errors.inc()
                log.warning("database unavailable (%s); retrying in %.1f s", exc, delay)
                self._drop_connection()
                if self._stopping.wait(delay):
                    return None
                delay = min(delay * 2, RETRY_MAX_S)

    def _one_by_one(self, conn: psycopg.Connection[Any], batch: list[Decoded]) -> list[Outcome]:
        outcomes = []
        for item in batch:
            try:
                outcomes.extend(store_batch(conn, [item], self._rules, bool(self._rollups)))
            except (psycopg.errors.TransactionRollback, psycopg.OperationalError):
                raise  # the caller retries; what committed here comes back as duplicates
            except Exception as exc:
                outcomes.append(self._refused(conn, item, exc))
        return outcomes

    def _refused(self, conn: psycopg.Connection[Any], item: Decoded, exc: Exception) -> Outcome:
        log.error("the database refused a message on %s: %s", item.topic, exc)
        device = item.msg.device if item.msg is not None else None
        keep_dead_letter(conn, item.topic, item.payload, "store_failed", f"{type(exc).__name__}: {exc}")
        return Outcome("dead_letter", device, reason="store_failed")

    def _ensure_partitions(self, conn: psycopg.Connection[Any], batch: list[Decoded]) -> None:
        days = set().union(*(records.summary_days(d.msg) for d in batch if isinstance(d.msg, Summary)))
        missing = days - self._days
        if missing:
            records.ensure_partitions(conn, missing)
            self._days |= missing

    def _maybe_retention(self) -> None:
        """Every ``retention_every_s``: the retention job of :mod:`server.retention` (one worker at a time)."""
        policy = policy_from(self.settings)
        if not any(policy.values()) or time.monotonic() < self._retention_due:
            return
        self._retention_due = time.monotonic() + self.settings.retention_every_s
        try:
            outcomes = run_retention(self._connection(), policy, datetime.now(timezone.utc))
        except psycopg.Error as exc:
            log.warning("retention failed (%s); will try again", exc)
            return
        self._days.clear()  # day partitions may have gone
        for o in outcomes:
            if o.removed_anything:
                log.info("retention %s before %s: %s rows, dropped %s", o.kind, o.cutoff, o.rows, list(o.dropped))
            elif o.skipped and o.skipped != ANOTHER_JOB:  # another worker's job is the normal case
                log.warning("retention of %s skipped: %s", o.kind, o.skipped)

    def _count(self, outcomes: list[Outcome]) -> None:
        """Add a batch's outcomes to the counters and metrics (each metric once per batch, not per message)."""
        stored = [o for o in outcomes if o.status == "stored"]
        duplicates = sum(1 for o in outcomes if o.status == "duplicate")
        letters = Counter(o.reason or "unknown" for o in outcomes if o.status == "dead_letter")
        self.counters.stored += len(stored)
        self.counters.duplicates += duplicates
        self.counters.dead_lettered += sum(letters.values())
        self.metrics.stored.inc(len(stored))
        self.metrics.windows.inc(sum(o.windows for o in stored))
        self.metrics.duplicates.inc(duplicates)
        stripped = sum(o.positions_stripped for o in stored)
        if stripped:
            self.counters.positions_stripped += stripped
            self.metrics.positions_stripped.inc(stripped)
        for reason, n in letters.items():
            self.metrics.dead_lettered.labels(reason).inc(n)

    def _connection(self) -> psycopg.Connection[Any]:
        if self._conn is None or self._conn.closed:
            self._conn = psycopg.connect(
                self._db_url, autocommit=True, application_name=f"pisces-ingest:{self.settings.mqtt_client_id}"
            )
            fast_json(self._conn)
            self._rollups = store_engine(self._conn) != "timescaledb"
        return self._conn

    def _drop_connection(self) -> None:
        if self._conn is not None:
            try:
                self._conn.close()
            except psycopg.Error:
                pass
            self._conn = None


def shared_group(settings: ServerSettings) -> str | None:
    """The shared subscription group on the broker: ``<mqtt_shared_group>-<tag>``, the tag derived from the
    server account's password (None: no shared subscription).

    Why: Mosquitto 2.0's ACL file does not check subscriptions, only deliveries.
    A phone that subscribed to ``$share/<group>/pisces/v1/+/summary`` would join
    the workers' group and be handed its share of every patient's uplink, which
    the ACL then refuses to deliver to it: lost for the server. A group name only
    holders of the server password can compute keeps phones out of it (tested in
    tests/server/test_broker.py). Every worker of a deployment logs in with the
    same account, so they all land in the same group. Without a password (the
    demo's anonymous broker) the group is the name as configured.
    """
    group = settings.mqtt_shared_group
    if not group:
        return None
    password = settings.mqtt_password.get_secret_value() if settings.mqtt_password else None
    password = password or BrokerAddress.parse(settings.mqtt_url or "mqtt://localhost").password
    if not password:
        return group
    tag = hmac.new(password.encode(), f"pisces shared group {group}".encode(), hashlib.sha256).hexdigest()
    return f"{group}-{tag[:24]}"


def fast_json(conn: psycopg.Connection[Any]) -> None:
    """Have ``conn`` read and write json/jsonb with orjson (the rule states of every batch, alert triggers).

    Same documents either way for what the ingest writes (str keys, finite
    numbers; int keys allowed as json.dumps allows them).
    """
    set_json_loads(orjson.loads, conn)
    set_json_dumps(functools.partial(orjson.dumps, option=orjson.OPT_NON_STR_KEYS), conn)


def worker_settings(settings: ServerSettings, index: int) -> ServerSettings:
    """Settings of worker ``index`` of ``pisces ingest --workers N``: own client id and metrics port.

    Workers speak MQTT 5 and join one shared subscription group (default
    ``pisces-ingest``), so the broker hands each message to one of them.
    """
    port = settings.metrics_port
    return settings.model_copy(
        update={
            "mqtt_client_id": f"{settings.mqtt_client_id}-{index}",
            "mqtt_protocol": "5",
            "mqtt_shared_group": settings.mqtt_shared_group or DEFAULT_SHARED_GROUP,
            "metrics_port": port + index if port else port,
            "ingest_in_server": False,
        }
    )


def quiet_gc() -> None:
    """Have the cyclic garbage collector of a worker process run seldom and skip what start-up made.

    A worker holds the messages it decoded until their batch commits (hundreds
    to thousands of windows, each a few GC-tracked objects). With CPython's
    default thresholds (a collection per 700 objects more allocated than freed)
    each burst of decoding set off collections that traversed what was held and,
    in turn, the whole heap: measured on fleet messages held as a worker holds
    them, 2.6-3.4 us of a window's 9-10 us of decoding (docs/benchmarks.md).
    Those objects hold no cycles (refcounting frees them when their batch is
    acked), so collections found nothing. Start-up's objects (modules, classes)
    are frozen out of every collection, and a collection waits for 50,000 net
    new objects; the few cycles the libraries make are still collected.
    """
    gc.collect()
    gc.freeze()
    gc.set_threshold(*GC_THRESHOLDS)


def _worker_main(settings: ServerSettings) -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(processName)s %(levelname)s %(message)s")
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the supervisor stops us with SIGTERM
    ingestor = Ingestor(settings)
    quiet_gc()
    ingestor.run_forever()


def supervise(settings: ServerSettings, workers: int, stop: threading.Event | None = None) -> None:
    """Run ``workers`` ingest processes and restart any that dies (same client id: its session resumes).

    Returns after ``stop`` is set (or SIGINT/SIGTERM), having stopped the workers.
    """
    stop = stop or threading.Event()
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, lambda *_: stop.set())
    ctx = multiprocessing.get_context("spawn")
    procs: dict[int, Any] = {}
    backoff = dict.fromkeys(range(workers), RESTART_MIN_S)
    due = dict.fromkeys(range(workers), 0.0)
    try:
        while not stop.is_set():
            for i in range(workers):
                proc = procs.get(i)
                if proc is not None and proc.is_alive():
                    continue
                if proc is not None:
                    log.warning("ingest worker %d exited with %s; restarting", i, proc.exitcode)
                    due[i] = time.monotonic() + backoff[i]
                    backoff[i] = min(backoff[i] * 2, RESTART_MAX_S)
                    procs.pop(i)
                if time.monotonic() >= due[i]:
                    procs[i] = ctx.Process(target=_worker_main, args=(worker_settings(settings, i),), name=f"ingest-{i}")
                    procs[i].start()
            stop.wait(0.5)
    except KeyboardInterrupt:
        pass
    finally:
        for proc in procs.values():
            proc.terminate()
        for proc in procs.values():
            proc.join(10)
            if proc.is_alive():
                proc.kill()
