"""Consent: the record, and what the ingest, the alert loop and the phone's config do with it."""

from __future__ import annotations

import queue
import threading
from dataclasses import replace
from datetime import datetime, timezone
from typing import Any

import psycopg
import pytest

from server import consent
from server.channels import ChannelSettings
from server.consent import ConsentRecord
from server.escalation import EscalationPolicy, Watch, load_views, run_escalation
from server.ingest import Ingestor, handle_message, rule_config
from server.phone_config import CONFIG_CHANNEL
from server.settings import ServerSettings
from server.store import add_patient, add_user
from tests.server.helpers import mqtt_client, publish, wait_for
from wire import Config, Event, EventType, Kind, Summary, SummaryWindow, decode, encode, topic_for

T0 = 1_700_000_000.0
NOW = datetime(2026, 11, 1, tzinfo=timezone.utc)


def located(device: str, seq: int, n: int = 3, t0: float = T0) -> Summary:
    """``n`` one-minute windows of 70 bpm, each with a GPS position."""
    return Summary(device, seq, tuple(
        SummaryWindow(start=t0 + 60 * i, end=t0 + 60 * (i + 1), beats=70, hr_mean=70.0, quality=0.9,
                      lat=60.17 + 0.001 * i, lon=24.94)
        for i in range(n)
    ))  # fmt: skip


def rec(id_: int, purpose: str, granted: bool) -> ConsentRecord:
    return ConsentRecord(id_, 1, purpose, granted, NOW, "patient", None, "in app", "")


def test_the_newest_record_of_each_purpose_is_in_force() -> None:
    rows = [rec(1, "location", True), rec(3, "location", False), rec(2, "research", True)]
    state = {s.purpose: s for s in consent.in_force(rows)}
    assert [s.purpose for s in consent.in_force(rows)] == list(consent.PURPOSES)
    assert (state["location"].granted, state["research"].granted, state["monitoring"].granted) == (False, True, False)
    assert state["weather"].since is None and state["location"].since == NOW


def test_positions_come_off_windows_and_events_and_nothing_else() -> None:
    msg = located("d", 1)
    stripped, n = consent.without_positions(msg)
    assert n == 3 and all(w.lat is None and w.lon is None for w in stripped.windows)  # type: ignore[union-attr]
    assert [replace(w, lat=None, lon=None) for w in msg.windows] == list(stripped.windows)  # type: ignore[union-attr]
    panic = Event("d", 2, EventType.PANIC, T0, lat=1.0, lon=2.0)
    assert consent.without_positions(panic) == (replace(panic, lat=None, lon=None), 1)
    plain = Event("d", 3, EventType.PANIC, T0)
    assert consent.without_positions(plain) == (plain, 0)


@pytest.mark.db
def test_enrolment_grants_monitoring_only_and_records_are_never_edited(db_url: str, device_id: str) -> None:
    with psycopg.connect(db_url, autocommit=True) as conn:
        nurse = add_user(conn, f"enrol-{device_id}", "pw-123456789")
        pid = add_patient(conn, "P", device_id, enrolled_by=nurse)
        state = {s.purpose: s for s in consent.current(conn, pid)}
        assert state["monitoring"].granted and state["monitoring"].actor == "clinician"
        assert state["monitoring"].recorded_by == f"enrol-{device_id}" and state["monitoring"].method == "enrolment"
        assert [p for p, s in state.items() if s.granted] == ["monitoring"]
        with pytest.raises(psycopg.errors.IntegrityConstraintViolation, match="never edited"):
            conn.execute("UPDATE consents SET granted = false WHERE patient_id = %s", (pid,))
        with pytest.raises(consent.ConsentError, match="purpose"):
            consent.record(conn, pid, "marketing", True, "patient", None, "in app")
        with pytest.raises(consent.ConsentError, match="method"):
            consent.record(conn, pid, "research", True, "patient", None, "  ")
        consent.record(conn, pid, "research", True, "patient", None, "in app")
        consent.record(conn, pid, "research", False, "clinician", nurse, "by phone", "asked to stop")
        history = consent.history(conn, pid)
    assert [(h.purpose, h.granted, h.actor, h.method) for h in history] == [
        ("research", False, "clinician", "by phone"), ("research", True, "patient", "in app"),
        ("monitoring", True, "clinician", "enrolment")]  # fmt: skip


def _stored_positions(db_url: str, device_id: str) -> list[tuple[Any, Any]]:
    with psycopg.connect(db_url) as conn:
        return conn.execute("SELECT lat, lon FROM summaries WHERE device_id = %s ORDER BY seq, idx",
                            (device_id,)).fetchall()  # fmt: skip


@pytest.mark.db
@pytest.mark.mqtt
def test_positions_without_location_consent_are_stripped_counted_and_the_rest_is_stored(
    ingestor: Ingestor, db_url: str, mqtt_url: str, device_id: str, patient_id: int
) -> None:
    publish(mqtt_url, [(topic_for(device_id, Kind.SUMMARY), encode(located(device_id, 1)))])  # an old phone config
    wait_for(lambda: ingestor.counters.stored >= 1, what="the summary stored")
    assert _stored_positions(db_url, device_id) == [(None, None)] * 3
    assert ingestor.counters.positions_stripped == 3
    assert ingestor.metrics.registry.get_sample_value("pisces_ingest_positions_stripped_total") == 3
    with psycopg.connect(db_url, autocommit=True) as conn:
        hr = conn.execute("SELECT count(hr_mean) FROM summaries WHERE device_id = %s", (device_id,)).fetchone()
        counted = [(r.kind, r.count) for r in consent.enforcement(conn, 2) if r.patient_id == patient_id]
        consent.record(conn, patient_id, "location", True, "patient", None, "in app")
    assert hr == (3,) and counted == [("positions_stripped", 3)]
    publish(mqtt_url, [(topic_for(device_id, Kind.SUMMARY), encode(located(device_id, 2, 1, T0 + 600)))])
    wait_for(lambda: ingestor.counters.stored >= 2, what="the second summary stored")
    assert _stored_positions(db_url, device_id)[-1] == (60.17, 24.94)
    assert ingestor.counters.positions_stripped == 3


@pytest.mark.db
def test_without_monitoring_consent_messages_are_quarantined_and_raise_no_alert(db_url: str, device_id: str) -> None:
    config = rule_config(ServerSettings())
    with psycopg.connect(db_url, autocommit=True) as conn:
        pid = add_patient(conn, "P", device_id)

        def send(msg: Event | Summary) -> Any:
            return handle_message(conn, topic_for(device_id, msg.kind), encode(msg), config)

        first = send(Event(device_id, 1, EventType.PANIC, T0))
        consent.record(conn, pid, "monitoring", False, "patient", None, "in app")
        (alert_state,) = conn.execute("SELECT state, resolve_note FROM alerts WHERE patient_id = %s", (pid,)).fetchall()
        panic = Event(device_id, 2, EventType.PANIC, T0 + 60, lat=1.0, lon=2.0)
        held, again = send(panic), send(panic)
        windows = send(located(device_id, 3))
        letters = conn.execute("SELECT reason, payload FROM dead_letters WHERE topic LIKE %s ORDER BY id",
                               (f"%/{device_id}/%",)).fetchall()  # fmt: skip
        stored = conn.execute("SELECT count(*) FROM events WHERE patient_id = %s", (pid,)).fetchone()
        alerts = conn.execute("SELECT count(*) FROM alerts WHERE patient_id = %s", (pid,)).fetchone()
        counted = {r.kind: r.count for r in consent.enforcement(conn, 2) if r.patient_id == pid}
        consent.record(conn, pid, "monitoring", True, "patient", None, "in app")
        resumed = send(Event(device_id, 4, EventType.PANIC, T0 + 120))
    assert first.status == "stored" and first.changes
    assert alert_state == ("resolved", consent.PAUSED_NOTE)  # the care team no longer watches
    assert (held.status, held.reason, again.status, windows.reason) == ("dead_letter", "no_consent", "duplicate",
                                                                        "no_consent")  # fmt: skip
    assert [r for r, _ in letters] == ["no_consent", "no_consent"]
    kept = decode(bytes(letters[0][1]))
    assert kept == replace(panic, lat=None, lon=None)  # kept, less the position she did not share
    assert stored == (1,) and alerts == (1,) and counted == {"quarantined": 2, "positions_stripped": 4}
    assert resumed.status == "stored" and resumed.changes and resumed.changes[0].parameter == "panic"


@pytest.mark.db
def test_a_paused_patient_gets_no_no_signal_alert(db_url: str, device_id: str) -> None:
    with psycopg.connect(db_url, autocommit=True) as conn:
        pid = add_patient(conn, "P", device_id)
        conn.execute("UPDATE patients SET last_data_at = now() - interval '2 hours' WHERE id = %s", (pid,))
        before = {s.patient_id for s in load_views(conn)[1]}
        consent.record(conn, pid, "monitoring", False, "clinician", None, "signed form")
        after = {s.patient_id for s in load_views(conn)[1]}
    assert pid in before and pid not in after


@pytest.mark.db
@pytest.mark.mqtt
def test_a_location_consent_change_re_pushes_the_phones_config_at_once(
    db_url: str, mqtt_url: str, device_id: str
) -> None:
    with psycopg.connect(db_url, autocommit=True) as conn:
        pid = add_patient(conn, "P", device_id)
    configs: queue.Queue[Config] = queue.Queue()
    phone = mqtt_client(mqtt_url)
    phone.on_message = lambda _c, _u, m: configs.put(decode(m.payload))  # type: ignore[arg-type]
    phone.subscribe(topic_for(device_id, Kind.CONFIG), 1)
    stop, watch = threading.Event(), Watch()
    settings = ServerSettings(database_url=db_url, mqtt_url=mqtt_url, mqtt_client_id=f"esc-{device_id}")
    # A long tick: only the NOTIFY of the consent change can wake the loop in time.
    loop = threading.Thread(target=run_escalation, args=(settings, stop, EscalationPolicy(tick_s=30),
                                                         ChannelSettings(), None, watch))  # fmt: skip
    loop.start()
    try:
        wait_for(lambda: watch.rounds >= 1, what="a first round")
        with psycopg.connect(db_url, autocommit=True) as conn:
            consent.record(conn, pid, "location", True, "patient", None, "in app")
            granted = configs.get(timeout=10)
            consent.record(conn, pid, "location", False, "patient", None, "in app")
            withdrawn = configs.get(timeout=10)
    finally:
        stop.set()
        with psycopg.connect(db_url, autocommit=True) as conn:  # wake the loop so that it sees the stop
            conn.execute("SELECT pg_notify(%s, '0')", (CONFIG_CHANNEL,))
        loop.join(40)
        phone.unsubscribe(topic_for(device_id, Kind.CONFIG))
        phone.publish(topic_for(device_id, Kind.CONFIG), b"", qos=1, retain=True).wait_for_publish(5)
        phone.disconnect()
        phone.loop_stop()
    assert (granted.version, granted.share_location, withdrawn.version, withdrawn.share_location) == (1, True, 2, False)
    assert dict(granted.limits)["hr"].red_high == 131  # the defaults are in force: they go along
