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
