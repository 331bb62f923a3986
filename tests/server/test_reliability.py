"""Exactly-once under failure, with a real broker and a real database; every message is delivered twice.

- a worker process SIGKILLed in the middle of a batch (``pisces ingest`` restarts it);
- the broker restarted (a private Mosquitto on the shipped configuration) while a batch is open;
- PostgreSQL restarted (a private embedded one) while messages arrive;
- two workers on one MQTT 5 shared subscription.
Afterwards each summary is stored exactly once and none is missing.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

import psycopg
import pytest

from server.credentials import SERVER_USERNAME, add_device, set_server_account
from server.embedded import embedded_postgres
from server.ingest import Ingestor
from server.settings import ServerSettings
from server.store import add_patient, migrate
from tests.server.helpers import forget_session, publish, wait_for
from tests.server.test_broker import needs_mosquitto, private_mosquitto
from tests.server.test_ingest import T0, count, summary

pytestmark = [pytest.mark.db, pytest.mark.mqtt]

N = 30  # messages per test, 3 windows each


def messages(device: str, first: int = 1, n: int = N) -> list[tuple[str, bytes]]:
    """``n`` summary messages (seq ``first``...), each twice: at-least-once delivery's worst case."""
    once = [summary(device, seq, [70, 71, 72], T0 + 180 * seq) for seq in range(first, first + n)]
    return once + once


def once(device: str, first: int, n: int) -> list[tuple[str, bytes]]:
    """``n`` summary messages (seq ``first``...), each once."""
    return messages(device, first, n)[:n]


def exactly_once(db_url: str, device: str, n: int = N) -> tuple[int, int, int]:
    """(rows, distinct (seq, idx), distinct seq) of the device's summaries."""
    with psycopg.connect(db_url) as conn:
        row = conn.execute(
            "SELECT count(*), count(DISTINCT (seq, idx)), count(DISTINCT seq) FROM summaries WHERE device_id = %s",
            (device,),
        ).fetchone()
    assert row is not None
    return int(row[0]), int(row[1]), int(row[2])


def blocked_on_lock(db_url: str, application: str) -> bool:
    return count(
        db_url,
        "SELECT count(*) FROM pg_stat_activity WHERE application_name = %s AND wait_event_type = 'Lock'",
        f"pisces-ingest:{application}",
    ) > 0


def publish_until_stored(url: str, db_url: str, device: str, n: int) -> None:
    """Publish the first ``n`` messages until they are stored (a fresh worker may not be subscribed yet)."""

    def stored() -> bool:
        publish(url, messages(device, 1, n)[:n])
        return wait_ok(lambda: exactly_once(db_url, device)[2] == n)

    wait_for(stored, timeout=30, what="first messages stored")


def wait_ok(predicate: Callable[[], bool], timeout: float = 1.0) -> bool:
    try:
        wait_for(predicate, timeout=timeout)
    except AssertionError:
        return False
    return True


def children(pid: int) -> list[int]:
    """The supervisor's worker processes (not multiprocessing's resource tracker)."""
    with open(f"/proc/{pid}/task/{pid}/children") as f:
        found = [int(p) for p in f.read().split()]
    workers = []
    for child in found:
        with open(f"/proc/{child}/cmdline", "rb") as f:
            if b"resource_tracker" not in f.read():
                workers.append(child)
    return workers


@pytest.fixture
def supervisor(db_url: str, mqtt_url: str, device_id: str, patient_id: int) -> Iterator[tuple[subprocess.Popen[bytes], str]]:
    """``pisces ingest --workers 1`` in a process of its own; yields (process, worker client id)."""
    client_id = f"kill-{device_id}"
    env = dict(os.environ, PISCES_DATABASE_URL=db_url, PISCES_MQTT_URL=mqtt_url, PISCES_MQTT_CLIENT_ID=client_id,
               PISCES_MQTT_SHARED_GROUP=f"g-{device_id}")  # fmt: skip
    proc = subprocess.Popen([sys.executable, "-m", "server.cli", "ingest", "--workers", "1"], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
    try:
        yield proc, f"{client_id}-0"
    finally:
        proc.terminate()
        proc.wait(20)
        forget_session(mqtt_url, f"{client_id}-0")


def test_a_worker_killed_mid_batch_loses_nothing_and_stores_nothing_twice(
    supervisor: tuple[subprocess.Popen[bytes], str], db_url: str, mqtt_url: str, device_id: str,
    redelivering_broker: None,
) -> None:
    proc, worker_id = supervisor
    publish_until_stored(mqtt_url, db_url, device_id, 5)
    publish(mqtt_url, messages(device_id, 1, 5))
    with psycopg.connect(db_url) as blocker:
        blocker.execute("LOCK TABLE uplink_messages IN ACCESS EXCLUSIVE MODE")
        publish(mqtt_url, messages(device_id, 6, N - 5))
        wait_for(lambda: blocked_on_lock(db_url, worker_id), what="a batch open in the database")
        (worker,) = children(proc.pid)
        os.kill(worker, signal.SIGKILL)
        blocker.rollback()
    wait_for(lambda: children(proc.pid) and children(proc.pid) != [worker], what="worker restarted")
    wait_for(lambda: exactly_once(db_url, device_id)[2] == N, timeout=30, what="every message stored")
    assert exactly_once(db_url, device_id) == (3 * N, 3 * N, N)
    assert count(db_url, "SELECT count(*) FROM uplink_messages WHERE device_id = %s", device_id) == N


@needs_mosquitto
def test_a_broker_restart_mid_batch_loses_nothing_and_stores_nothing_twice(
    settings: ServerSettings, db_url: str, device_id: str, patient_id: int
) -> None:
    with tempfile.TemporaryDirectory(prefix="pisces-broker-") as tmp, private_mosquitto(Path(tmp)) as broker:
        phone = add_device(broker.passwd, device_id)
        server_password = set_server_account(broker.passwd)
        broker.reload()
        phone_url = broker.url(device_id, phone)
        worker = Ingestor(settings.model_copy(update={
            "mqtt_url": broker.url(SERVER_USERNAME, server_password), "mqtt_protocol": "5",
            "mqtt_shared_group": "pisces-ingest",
        }))  # fmt: skip
        worker.start()
        try:
            with psycopg.connect(db_url) as blocker:
                blocker.execute("LOCK TABLE uplink_messages IN ACCESS EXCLUSIVE MODE")
                publish(phone_url, messages(device_id, 1, N // 2))
                wait_for(lambda: blocked_on_lock(db_url, settings.mqtt_client_id), what="a batch open")
                broker.stop()  # the open batch's acks now have nowhere to go
                broker.start()
                blocker.rollback()
            # Mosquitto 2.0 does not restore shared subscriptions from its store: until the worker has
            # subscribed again, it would drop what phones publish (docs/server.md, "Broker restarts").
            wait_for(lambda: worker.counters.subscribed >= 2, what="the worker back on the restarted broker")
            publish(phone_url, messages(device_id, N // 2 + 1, N - N // 2))
            wait_for(lambda: exactly_once(db_url, device_id)[2] == N, timeout=30, what="every message stored")
            wait_for(lambda: worker.counters.duplicates >= N, what="the second copies seen")
        finally:
            worker.stop()
    assert exactly_once(db_url, device_id) == (3 * N, 3 * N, N)


def test_a_postgresql_restart_loses_nothing_and_stores_nothing_twice(mqtt_url: str, device_id: str) -> None:
    with tempfile.TemporaryDirectory(prefix="pisces-pg-") as tmp:
        data = Path(tmp)
        with embedded_postgres(data) as url:
            migrate(url)
            with psycopg.connect(url) as conn:
                add_patient(conn, "Restart", device_id)
        settings = ServerSettings(database_url=url, mqtt_url=mqtt_url, mqtt_client_id=f"pg-{device_id}",
                                  mqtt_protocol="5", mqtt_shared_group=f"g-{device_id}", ingest_in_server=False)  # fmt: skip
        worker = Ingestor(settings)
        try:
            with embedded_postgres(data) as again:
                assert again == url
                worker.start()
                publish(mqtt_url, messages(device_id, 1, N // 2))
                wait_for(lambda: exactly_once(url, device_id)[2] == N // 2, timeout=20, what="first half stored")
            publish(mqtt_url, messages(device_id, N // 2 + 1, N - N // 2))  # PostgreSQL is down now
            wait_for(lambda: worker.counters.db_errors > 0, what="the worker noticing the outage")
            with embedded_postgres(data) as again:
                wait_for(lambda: exactly_once(url, device_id)[2] == N, timeout=30, what="every message stored")
                assert exactly_once(url, device_id) == (3 * N, 3 * N, N)
                worker.stop()
        finally:
            worker.stop()
            forget_session(mqtt_url, settings.mqtt_client_id)


def test_two_workers_on_one_shared_subscription_store_each_message_once(
    settings: ServerSettings, db_url: str, mqtt_url: str, device_id: str, patient_id: int
) -> None:
    group = {"mqtt_protocol": "5", "mqtt_shared_group": f"g-{device_id}"}
    workers = [Ingestor(settings.model_copy(update={**group, "mqtt_client_id": f"{settings.mqtt_client_id}-{i}"}))
               for i in range(2)]  # fmt: skip
    for w in workers:
        w.start()
    try:
        publish(mqtt_url, messages(device_id))
        wait_for(lambda: exactly_once(db_url, device_id)[2] == N, timeout=20, what="every message stored")
        wait_for(lambda: sum(w.counters.stored + w.counters.duplicates for w in workers) >= 2 * N,
                 what="both copies handled")  # fmt: skip
    finally:
        for w in workers:
            w.stop()
            forget_session(mqtt_url, w.settings.mqtt_client_id)
    assert exactly_once(db_url, device_id) == (3 * N, 3 * N, N)
    assert sum(w.counters.stored for w in workers) == N
    assert all(w.counters.stored > 0 for w in workers)  # the broker really split the load


DEVICES = 8  # devices of the partition tests: enough that a batch spans several partitions


def fleet(db_url: str, device_id: str) -> list[str]:
    """``DEVICES`` devices with a patient each (the fixture's own is the first)."""
    devices = [device_id] + [f"{device_id}-{i}" for i in range(1, DEVICES)]
    with psycopg.connect(db_url) as conn:
        for d in devices[1:]:
            add_patient(conn, f"Patient {d}", d)
    return devices


def stored_seqs(db_url: str, devices: list[str]) -> dict[str, tuple[int, int, int]]:
    return {d: exactly_once(db_url, d) for d in devices}


def test_two_workers_storing_by_partition_store_each_message_of_many_devices_once(
    settings: ServerSettings, db_url: str, mqtt_url: str, device_id: str, patient_id: int
) -> None:
    devices = fleet(db_url, device_id)
    update = {"mqtt_protocol": "5", "mqtt_shared_group": f"g-{device_id}", "ingest_partitions": 4,
              "ingest_partition_min": 1}  # turns even for the few messages held here  # fmt: skip
    workers = [Ingestor(settings.model_copy(update={**update, "mqtt_client_id": f"{settings.mqtt_client_id}-{i}"}))
               for i in range(2)]  # fmt: skip
    for w in workers:
        w.start()
    try:
        publish(mqtt_url, [m for d in devices for m in messages(d)])
        wait_for(lambda: all(exactly_once(db_url, d)[2] == N for d in devices), timeout=30, what="every message stored")
        wait_for(lambda: sum(w.counters.stored + w.counters.duplicates for w in workers) >= 2 * N * DEVICES,
                 what="both copies handled")  # fmt: skip
    finally:
        for w in workers:
            w.stop()
            forget_session(mqtt_url, w.settings.mqtt_client_id)
    assert stored_seqs(db_url, devices) == dict.fromkeys(devices, (3 * N, 3 * N, N))
    assert sum(w.counters.stored for w in workers) == N * DEVICES
    assert sum(w.counters.duplicates for w in workers) == N * DEVICES


def test_a_worker_waiting_for_a_partitions_turn_stores_the_others_and_killed_loses_nothing(
    db_url: str, mqtt_url: str, device_id: str, patient_id: int, redelivering_broker: None
) -> None:
    """A partition's turn held elsewhere (as by another worker's transaction): the worker goes on storing
    the other partitions' messages, then waits for that turn, and is killed there; restarted, it stores the
    rest, each message once."""
    from server.ingest import PARTITION_LOCK_CLASS, partition_of

    devices = fleet(db_url, device_id)
    held = partition_of(devices[0], 4)
    others = [d for d in devices[1:] if partition_of(d, 4) != held]
    assert others, "the devices should fall in more than one partition"
    devices = [device_id] + others
    client_id = f"part-{device_id}"
    env = dict(os.environ, PISCES_DATABASE_URL=db_url, PISCES_MQTT_URL=mqtt_url, PISCES_MQTT_CLIENT_ID=client_id,
               PISCES_MQTT_SHARED_GROUP=f"g-{device_id}", PISCES_INGEST_PARTITIONS="4",
               PISCES_INGEST_PARTITION_MIN="1")  # fmt: skip
    proc = subprocess.Popen([sys.executable, "-m", "server.cli", "ingest", "--workers", "1"], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
    try:
        publish_until_stored(mqtt_url, db_url, device_id, 1)
        half = N // 2
        first = [m for d in others for m in once(d, 1, half)]
        streams = [once(device_id, 2, N - 1)] + [once(d, half + 1, N - half) for d in others]
        mixed = [m for ms in zip(*streams) for m in ms]  # device 0's seq 2.. beside the others' second half
        seconds = [m for d in devices for m in once(d, 1, N)]
        with psycopg.connect(db_url) as blocker:
            blocker.execute("SELECT pg_advisory_xact_lock(%s, %s)", (PARTITION_LOCK_CLASS, held))
            publish(mqtt_url, first + mixed + seconds)
            # The worker stores the other partitions' messages it holds; holding only the held partition's,
            # it waits for that turn (what reaches it meanwhile waits in its queue, unacked).
            wait_for(lambda: blocked_on_lock(db_url, f"{client_id}-0"), what="the worker waiting for the turn")
            wait_for(lambda: max(exactly_once(db_url, d)[2] for d in others) > half, what="other partitions committed")
            assert exactly_once(db_url, device_id)[2] == 1  # the held partition: nothing yet
            (worker,) = children(proc.pid)
            os.kill(worker, signal.SIGKILL)
            blocker.rollback()
        wait_for(lambda: children(proc.pid) and children(proc.pid) != [worker], what="worker restarted")
        wait_for(lambda: all(exactly_once(db_url, d)[2] == N for d in devices), timeout=30, what="every message stored")
    finally:
        proc.terminate()
        proc.wait(20)
        forget_session(mqtt_url, f"{client_id}-0")
    assert stored_seqs(db_url, devices) == dict.fromkeys(devices, (3 * N, 3 * N, N))
    with psycopg.connect(db_url) as conn:
        claims = conn.execute("SELECT count(*) FROM uplink_messages WHERE device_id = ANY(%s)", (devices,)).fetchone()
    assert claims == (N * len(devices),)
