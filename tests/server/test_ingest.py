"""Ingest against the real broker and database: store once, ack after commit, dead letters, alerts."""

from __future__ import annotations

import json
import queue
import threading
from datetime import datetime, timezone
from typing import Any

import psycopg
import pytest

from server import consent
from server.ingest import Ingestor
from server.settings import ServerSettings
from tests.server.helpers import forget_session, mqtt_client, publish, wait_for
from wire import Event, EventType, Kind, Notify, Status, Strip, Summary, SummaryWindow, decode, encode, topic_for

pytestmark = [pytest.mark.db, pytest.mark.mqtt]


@pytest.fixture
def settings(settings: ServerSettings) -> ServerSettings:
    """The server's settings over MQTT 5, as ``pisces ingest`` runs: retained messages are not taken.

    (Over 3.1.1 a new session gets every retained message of the broker first; on a shared broker
    with more than Mosquitto's default max_queued_messages of them, it drops what comes next.)
    """
    return settings.model_copy(update={"mqtt_protocol": "5"})

T0 = 1_700_000_000.0


def summary(device: str, seq: int, hrs: list[float], t0: float = T0) -> tuple[str, bytes]:
    windows = tuple(
        SummaryWindow(start=t0 + 60 * i, end=t0 + 60 * (i + 1), beats=int(hr), hr_mean=hr, hr_min=hr - 5,
                      hr_max=hr + 5, quality=0.9)
        for i, hr in enumerate(hrs)
    )  # fmt: skip
    return topic_for(device, Kind.SUMMARY), encode(Summary(device, seq, windows))


def count(db_url: str, query: str, *args: Any) -> int:
    with psycopg.connect(db_url) as conn:
        row = conn.execute(query, args).fetchone()
        return int(row[0]) if row else 0


def test_messages_are_stored_once_even_when_published_twice(
    ingestor: Ingestor, db_url: str, mqtt_url: str, device_id: str
) -> None:
    first = summary(device_id, 1, [70, 72, 71])
    status = (topic_for(device_id, Kind.STATUS), encode(Status(device_id, 2, T0 + 200, True, "connected", 80)))
    strip = Strip(device_id, 3, T0 + 10, 130.0, "symptom", tuple(range(-500, 500)))
    publish(mqtt_url, [first, first, status, (topic_for(device_id, Kind.STRIP), encode(strip)), first])

    wait_for(lambda: ingestor.counters.duplicates >= 2, what="two duplicates")
    assert count(db_url, "SELECT count(*) FROM uplink_messages WHERE device_id = %s", device_id) == 3
    assert count(db_url, "SELECT count(*) FROM summaries WHERE device_id = %s", device_id) == 3
    assert count(db_url, "SELECT count(*) FROM device_status WHERE device_id = %s AND online", device_id) == 1
    with psycopg.connect(db_url) as conn:
        n, raw = conn.execute("SELECT n_samples, samples FROM strips WHERE device_id = %s", (device_id,)).fetchone()
    assert n == 1000 and len(raw) == 2000
    assert count(db_url, "SELECT extract(epoch FROM last_data_at) FROM patients WHERE device_id = %s",
                 device_id) == int(T0 + 180)  # fmt: skip


def test_a_message_not_committed_is_not_acked_and_comes_back(
    settings: ServerSettings, patient_id: int, db_url: str, mqtt_url: str, device_id: str,
    redelivering_broker: None,
) -> None:
    """Block the insert with a table lock, stop the worker mid-transaction, restart: the broker redelivers.

    If the worker acked on receipt (before commit), the broker would not send the
    message again and it would be lost.
    """
    worker = Ingestor(settings)
    worker.start()
    again = Ingestor(settings)
    try:
        with psycopg.connect(db_url) as blocker:
            blocker.execute("LOCK TABLE uplink_messages IN ACCESS EXCLUSIVE MODE")
            publish(mqtt_url, [summary(device_id, 1, [70])])
            wait_for(lambda: _waiting_on_lock(db_url, settings.mqtt_client_id), what="ingest blocked on the lock")
            worker.stop()  # cancels the blocked statement; the message stays unacked
            blocker.rollback()
        assert worker.counters.stored == 0
        assert count(db_url, "SELECT count(*) FROM summaries WHERE device_id = %s", device_id) == 0

        again.start()
        wait_for(lambda: again.counters.stored == 1, what="redelivered message stored")
        assert count(db_url, "SELECT count(*) FROM summaries WHERE device_id = %s", device_id) == 1
    finally:
        worker.stop()
        again.stop()
        forget_session(mqtt_url, settings.mqtt_client_id)


def _waiting_on_lock(db_url: str, client_id: str) -> bool:
    return count(
        db_url,
        "SELECT count(*) FROM pg_stat_activity WHERE application_name = %s AND wait_event_type = 'Lock'",
        f"pisces-ingest:{client_id}",
    ) > 0


def test_bad_messages_are_dead_lettered_and_the_worker_goes_on(
    ingestor: Ingestor, db_url: str, mqtt_url: str, device_id: str
) -> None:
    stranger = f"{device_id}-unknown"
    publish(mqtt_url, [
        (topic_for(device_id, Kind.SUMMARY), b"{not json"),
        summary(stranger, 1, [70]),
        (topic_for(device_id, Kind.EVENT), summary(device_id, 5, [70])[1]),  # a summary on the event topic
        (topic_for(device_id, Kind.SUMMARY), summary(f"{device_id}-other", 6, [70])[1]),  # device mismatch
        summary(device_id, 7, [70]),
    ])  # fmt: skip
    wait_for(lambda: count(db_url, "SELECT count(*) FROM summaries WHERE device_id = %s", device_id) == 1,
             what="valid message after the bad ones")  # fmt: skip
    letters = "SELECT count(*) FROM dead_letters WHERE topic LIKE %s"
    wait_for(lambda: count(db_url, letters, f"%{device_id}%") == 4, what="the four bad ones kept")
    with psycopg.connect(db_url) as conn:
        rows = conn.execute(
            "SELECT topic, reason, payload FROM dead_letters WHERE topic LIKE %s ORDER BY id", (f"%{device_id}%",)
        ).fetchall()
    # A device's messages are stored in order; the stranger's (another device) may come before or after.
    own = [r for r in rows if r[0] != topic_for(stranger, Kind.SUMMARY)]
    assert [r[1] for r in own] == ["not_json", "mismatch", "mismatch"]
    assert bytes(own[0][2]) == b"{not json"
    assert [r[1] for r in rows if r[0] == topic_for(stranger, Kind.SUMMARY)] == ["unknown_device"]
    assert ingestor.counters.dead_lettered >= 4


def test_a_yellow_episode_notifies_the_phone_and_the_clinicians(
    ingestor: Ingestor, db_url: str, mqtt_url: str, device_id: str, patient_id: int
) -> None:
    inbox: queue.Queue[bytes] = queue.Queue()
    phone = mqtt_client(mqtt_url)
    subscribed = threading.Event()
    phone.on_message = lambda _c, _u, m: inbox.put(m.payload)
    phone.on_subscribe = lambda *_a: subscribed.set()
    phone.subscribe(topic_for(device_id, Kind.NOTIFY), qos=1)
    with psycopg.connect(db_url, autocommit=True) as listener:
        listener.execute("LISTEN pisces_alerts")
        try:
            wait_for(subscribed.is_set, what="phone subscribed")
            publish(mqtt_url, [summary(device_id, 1, [80, 118, 119, 120])])
            notify = decode(inbox.get(timeout=10))
        finally:
            phone.disconnect()
            phone.loop_stop()
        pushed = [n.payload for n in listener.notifies(timeout=5, stop_after=1)]
    assert isinstance(notify, Notify)
    assert (notify.level.value, notify.parameter, notify.time) == ("yellow", "hr", T0 + 120)
    with psycopg.connect(db_url) as conn:
        alert_id, level, state, trigger = conn.execute(
            "SELECT id, level, state, trigger FROM alerts WHERE patient_id = %s", (patient_id,)
        ).fetchone()
    assert (level, state, notify.alert_id, pushed) == ("yellow", "open", alert_id, [str(alert_id)])
    assert trigger["value"] == 118 and trigger["limits"]["yellow_high"] == 111


def test_panic_opens_a_red_alert_and_symptom_marks_build_a_period(
    ingestor: Ingestor, db_url: str, mqtt_url: str, device_id: str, patient_id: int
) -> None:
    def event(seq: int, kind: EventType, t: float, **kw: Any) -> tuple[str, bytes]:
        return topic_for(device_id, Kind.EVENT), encode(Event(device_id, seq, kind, t, **kw))

    with psycopg.connect(db_url, autocommit=True) as conn:  # the panic's position is kept with this consent only
        consent.record(conn, patient_id, "location", True, "patient", None, "in app")
    publish(mqtt_url, [
        event(2, EventType.SYMPTOM_STOP, T0 + 300, period="p1"),  # stop first: out of order
        event(1, EventType.SYMPTOM_START, T0, period="p1", tags=("palpitations",), severity=3, note="racing"),
        event(3, EventType.PANIC, T0 + 400, lat=60.17, lon=24.94),
    ])  # fmt: skip
    wait_for(lambda: ingestor.counters.stored >= 3, what="three events stored")
    with psycopg.connect(db_url) as conn:
        period = conn.execute(
            "SELECT extract(epoch FROM started_at), extract(epoch FROM ended_at), tags, severity, note"
            " FROM symptom_periods WHERE patient_id = %s", (patient_id,)
        ).fetchone()
        alert = conn.execute("SELECT level, parameter, trigger FROM alerts WHERE patient_id = %s",
                             (patient_id,)).fetchone()  # fmt: skip
    assert period == (T0, T0 + 300, ["palpitations"], 3, "racing")
    assert alert[:2] == ("red", "panic") and alert[2]["lat"] == 60.17
    assert json.loads(json.dumps(alert[2]))["event"] == "panic"


def test_a_window_already_stored_by_another_path_is_a_dead_letter_not_a_silent_skip(
    ingestor: Ingestor, db_url: str, mqtt_url: str, device_id: str, patient_id: int
) -> None:
    """Windows are written once because their (device, seq) key is claimed first; a row that is somehow
    there already (written around the ingest) makes its message refused, kept and counted, not dropped."""
    with psycopg.connect(db_url) as conn:
        conn.execute("SELECT pisces_ensure_summary_partitions(%s::date[])", ([datetime.fromtimestamp(T0, timezone.utc).date()],))
        conn.execute(
            "INSERT INTO summaries (patient_id, device_id, seq, idx, start_at, end_at, beats, activity, quality)"
            " VALUES (%s, %s, 1, 0, to_timestamp(%s), to_timestamp(%s), 60, 'rest', 0.9)",
            (patient_id, device_id, T0, T0 + 60),
        )
    publish(mqtt_url, [summary(device_id, 1, [70]), summary(device_id, 2, [71], T0 + 60)])
    wait_for(lambda: ingestor.counters.stored + ingestor.counters.dead_lettered >= 2, what="both messages handled")
    with psycopg.connect(db_url) as conn:
        letters = conn.execute("SELECT reason FROM dead_letters WHERE topic = %s", (topic_for(device_id, Kind.SUMMARY),)).fetchall()
        seqs = conn.execute("SELECT seq FROM summaries WHERE device_id = %s ORDER BY seq", (device_id,)).fetchall()
    assert letters == [("store_failed",)]
    assert seqs == [(1,), (2,)]  # the row put there by hand, and the other message
    assert count(db_url, "SELECT count(*) FROM uplink_messages WHERE device_id = %s", device_id) == 1


def test_unusable_messages_go_with_their_devices_partition() -> None:
    from server.ingest import Decoded, decode_one, message_partition, partition_of

    for device in (f"dev-{i}" for i in range(8)):
        good = decode_one(*summary(device, 1, [70]))
        bad = decode_one(topic_for(device, Kind.SUMMARY), b"{not json")
        assert bad.msg is None
        assert message_partition(good, 4) == message_partition(bad, 4) == partition_of(device, 4)
    assert message_partition(Decoded("not/ours", b"", None, "topic"), 4) == 0
    assert {partition_of(f"dev-{i}", 4) for i in range(8)} != {0}  # the hash spreads devices


def test_a_partition_another_worker_holds_is_refused_untouched_or_waited_for(
    settings: ServerSettings, db_url: str, device_id: str, patient_id: int
) -> None:
    from server import records
    from server.ingest import PARTITION_LOCK_CLASS, PartitionBusy, decode_one, partition_of, rule_config, store_batch

    part = partition_of(device_id, 4)
    batch = [decode_one(*summary(device_id, 1, [70, 71]))]
    with psycopg.connect(db_url, autocommit=True) as holder, psycopg.connect(db_url, autocommit=True) as conn:
        records.ensure_partitions(conn, records.summary_days(batch[0].msg))  # type: ignore[arg-type]
        with holder.transaction():
            holder.execute("SELECT pg_advisory_xact_lock(%s, %s)", (PARTITION_LOCK_CLASS, part))
            with pytest.raises(PartitionBusy):
                store_batch(conn, batch, rule_config(settings), True, [part], wait=False)
            with pytest.raises(PartitionBusy) as busy:  # one busy partition among several: the batch is refused whole
                store_batch(conn, batch, rule_config(settings), True, [(part + 1) % 4, part], wait=False)
            assert busy.value.args == (part,)
            assert count(db_url, "SELECT count(*) FROM uplink_messages WHERE device_id = %s", device_id) == 0
            other = (part + 1) % 4
            (done,) = store_batch(conn, batch, rule_config(settings), True, [other, (other + 1) % 4], wait=False)
        assert done.status == "stored"
        (again,) = store_batch(conn, batch, rule_config(settings), True, [part], wait=True)
        assert again.status == "duplicate"
    assert count(db_url, "SELECT count(*) FROM summaries WHERE device_id = %s", device_id) == 2
