"""Location on the phone: positions leave it only while the latest config has ``share_location``.

End to end through a private Mosquitto on the shipped TLS configuration, the
server's real ingest and PostgreSQL; the no-consent case is checked on the
bytes the broker delivers, not on the agent's variables.
"""

from __future__ import annotations

import asyncio
import dataclasses
import sqlite3
import threading
import zlib
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import psycopg
import pytest

from edge.agent import EdgeAgent, press_panic
from edge.location import PANIC_FIX_MAX_AGE_S, Fix, FixBuffer, window_position, without_position
from edge.outbox import Outbox
from edge.sensors import Notification
from edge.uplink import TlsAndLogin, Uplink
from server import consent
from server.credentials import SERVER_USERNAME, add_device, set_server_account
from server.ingest import Ingestor
from server.mobility import gps_distance_m
from server.settings import ServerSettings
from server.store import add_patient
from simulators.gps import track_source
from simulators.patient import perform_action
from simulators.scenarios import Action, load_scenario
from simulators.wearable import VirtualWearable
from tests.server.helpers import wait_for
from tests.server.test_broker import PrivateMosquitto, client, close, connack, needs_mosquitto, private_mosquitto
from wire import BrokerAddress, Config, Kind, Summary, SummaryWindow, decode, encode, topic_for

T0 = 1_790_000_000.0
WALK = load_scenario("baseline")  # at rest, a 4-minute walk from 300 s
DURATION = 720.0
HOME = WALK.patient.home


def test_window_position_is_the_median_fix_and_the_buffer_keeps_an_hour() -> None:
    fixes = [Fix(0, 48.0, 11.0), Fix(1, 48.1, 11.1), Fix(2, 60.0, 30.0)]  # a stray third fix
    assert window_position(fixes) == (48.1, 11.1) and window_position([]) is None
    buffer = FixBuffer(keep_s=100)
    for t in (50, 10, 120, 130):
        buffer.push(Fix(t, 1.0, float(t)))
    assert [f.time for f in buffer.fixes(0, 200)] == [50, 120, 130]  # 10 is older than 130 - 100
    assert [f.time for f in buffer.fixes(50, 130)] == [50, 120]


def agent_without_link(tmp_path: Path, share: bool) -> EdgeAgent:
    fixes = FixBuffer()
    for t in range(0, 600, 10):
        fixes.push(Fix(T0 + t, HOME[0] + t * 1e-5, HOME[1]))
    agent = EdgeAgent("dev-loc", WearableWaitingForConfig(None), Outbox(tmp_path / "o.sqlite3"), location=fixes)
    agent.apply_config(Config("dev-loc", 1, T0, share_location=share))
    return agent


def window(t: float) -> SummaryWindow:
    return SummaryWindow(start=T0 + t, end=T0 + t + 60, beats=70, hr_mean=70.0)


def test_withdrawn_consent_stops_positions_at_once_and_strips_the_queued_ones(tmp_path: Path) -> None:
    agent = agent_without_link(tmp_path, share=True)
    agent.batch_windows = 2
    agent._emit_windows([window(0), window(60), window(120)], force=False)  # one message sent, one window open
    panic = press_panic(agent.outbox, "dev-loc", T0 + 150, where=agent.panic_position(T0 + 150))
    assert panic.lat is not None and agent.report.counters["located_windows"] == 3
    pending = agent.outbox.pending()
    assert b'"lat"' in zlib.decompress(pending[0].payload) or b'"lat"' in pending[0].payload
    agent.apply_config(Config("dev-loc", 2, T0 + 160, share_location=False))
    assert agent.report.counters["positions_withdrawn"] == 2  # the summary and the panic
    assert agent.panic_position(T0 + 170) is None
    agent._emit_windows([window(180)], force=True)
    messages = [decode(m.payload, m.kind) for m in agent.outbox.pending()]
    windows = [w for m in messages if isinstance(m, Summary) for w in m.windows]
    assert len(windows) == 4 and all(w.lat is None and w.lon is None for w in windows)
    assert all(getattr(m, "lat", None) is None for m in messages)
    assert [m.seq for m in messages] == [p.seq for p in pending] + [messages[-1].seq]  # seqs kept
    agent.outbox.close()


def test_without_position_leaves_other_payloads_alone() -> None:
    assert without_position("strip", b"anything") is None
    assert without_position("summary", b"not json") is None  # not ours to read: sent as it is
    plain = encode(Summary("dev-loc", 1, (window(0),)))
    assert without_position("summary", plain) is None


class WearableWaitingForConfig:
    """The virtual strap, silent until the agent has applied a config (the retained one from the broker)."""

    def __init__(self, wearable: VirtualWearable | None, agent: EdgeAgent | None = None, wait: bool = True) -> None:
        self.wearable, self.agent, self.wait = wearable, agent, wait

    async def notifications(self) -> AsyncIterator[Notification]:
        while self.wait and self.agent is not None and self.agent.config is None:
            await asyncio.sleep(0.05)
        if self.wearable is None:
            return
        scenario = self.wearable.scenario
        todo = list(scenario.actions)
        async for note in self.wearable.notifications():
            while todo and T0 + todo[0].at <= note.time:
                assert self.agent is not None
                perform_action(self.agent.outbox, self.agent.device_id, todo.pop(0), T0, self.agent.panic_position)
            yield note


@dataclasses.dataclass
class Deployment:
    broker: PrivateMosquitto
    server_password: str
    db_url: str

    def phone(self, device: str, share: bool | None, tmp_path: Path) -> tuple[EdgeAgent, Uplink]:
        """A phone with a GPS that walks ``WALK`` (and presses panic at 400 s), configured by the server."""
        password = add_device(self.broker.passwd, device)
        self.broker.reload()
        wait_for(lambda: not connack(self.broker.tls_port, device, password, self.broker.ca).is_failure,
                 what="the device's credentials loaded")  # fmt: skip
        if share is not None:
            server, _ = client(self.broker.port, SERVER_USERNAME, self.server_password)
            config = Config(device, 1, T0, window_seconds=60, batch_windows=3, share_location=share)
            server.publish(topic_for(device, Kind.CONFIG), encode(config), qos=1, retain=True).wait_for_publish(5)
            close(server)
        box = Outbox(tmp_path / f"{device}.sqlite3")
        uplink = Uplink(device, BrokerAddress.parse(self.broker.tls_url(device, password)), box,
                        login=TlsAndLogin(ca_file=str(self.broker.ca)))  # fmt: skip
        scenario = dataclasses.replace(WALK, actions=(Action(400, "panic"),))
        wearable = VirtualWearable(scenario, start_time=T0, duration_s=DURATION, speed=0, strap="hrs")
        source = WearableWaitingForConfig(wearable, wait=share is not None)
        agent = EdgeAgent(device, source, box, uplink, window_seconds=60, batch_windows=3,
                          location=track_source(scenario, T0, DURATION))  # fmt: skip
        source.agent = agent
        return agent, uplink


@pytest.fixture
def deployment(tmp_path: Path, db_url: str) -> Iterator[Deployment]:
    with private_mosquitto(tmp_path / "broker") as broker:
        server_password = set_server_account(broker.passwd)
        broker.reload()
        wait_for(lambda: not connack(broker.port, SERVER_USERNAME, server_password).is_failure, what="reload")
        yield Deployment(broker, server_password, db_url)


async def run(agent: EdgeAgent, uplink: Uplink) -> None:
    try:
        await agent.run()
        assert await agent.drain(20)
    finally:
        await asyncio.to_thread(uplink.stop)
        agent.outbox.close()


@needs_mosquitto
def test_with_consent_a_walk_reaches_the_database_with_positions(
    deployment: Deployment, device_id: str, tmp_path: Path
) -> None:
    with psycopg.connect(deployment.db_url, autocommit=True) as conn:
        patient_id = add_patient(conn, "Walker", device_id)
        consent.record(conn, patient_id, "location", True, "patient", None, "in app")  # else the server strips them
    worker = Ingestor(ServerSettings(
        database_url=deployment.db_url, mqtt_url=deployment.broker.url(SERVER_USERNAME, deployment.server_password),
        mqtt_client_id=f"loc-{device_id}", mqtt_protocol="5", ingest_in_server=False,
    ))  # fmt: skip
    worker.start()
    try:
        agent, uplink = deployment.phone(device_id, True, tmp_path)
        asyncio.run(run(agent, uplink))
        with psycopg.connect(deployment.db_url) as conn:
            rows = conn.execute("SELECT start_at, lat, lon FROM summaries WHERE device_id = %s ORDER BY start_at",
                                (device_id,)).fetchall()  # fmt: skip
            wait_for(lambda: conn.execute("SELECT lat, lon FROM events WHERE device_id = %s AND type = 'panic'",
                                          (device_id,)).fetchone(), what="the panic stored")  # fmt: skip
            panic = conn.execute("SELECT lat, lon FROM events WHERE device_id = %s", (device_id,)).fetchone()
    finally:
        worker.stop()
    assert len(rows) >= 11 and all(lat is not None and lon is not None for _, lat, lon in rows)
    away = [gps_distance_m(*HOME, lat, lon) for _, lat, lon in rows]
    assert max(away[:4]) < 25  # at home (5 m fix noise), then out walking: 1.3 m/s for two minutes out
    assert max(away[5:9]) > 60
    assert panic is not None and gps_distance_m(*HOME, *panic) > 30  # pressed during the walk


@needs_mosquitto
@pytest.mark.parametrize("share", [None, False])  # no config yet, or the patient has not consented
def test_without_consent_no_position_is_on_the_broker(
    deployment: Deployment, device_id: str, tmp_path: Path, share: bool | None
) -> None:
    seen: list[tuple[str, bytes]] = []
    spy, _ = client(deployment.broker.port, SERVER_USERNAME, deployment.server_password)
    spy.on_message = lambda _c, _u, m: seen.append((m.topic, m.payload))
    subscribed = threading.Event()
    spy.on_subscribe = lambda *_: subscribed.set()
    spy.subscribe(f"pisces/v1/{device_id}/+", qos=1)
    assert subscribed.wait(5)
    try:
        agent, uplink = deployment.phone(device_id, share, tmp_path)
        asyncio.run(run(agent, uplink))
        wait_for(lambda: any(t.endswith("/event") for t, _ in seen), what="the panic on the broker")
    finally:
        close(spy)
    uplinks = [(t, zlib.decompress(p) if p[:1] == b"x" else p) for t, p in seen if not t.endswith("/config")]
    assert sum(t.endswith("/summary") for t, _ in uplinks) >= 4
    assert [t for t, p in uplinks if b'"lat"' in p or b'"lon"' in p] == []
    assert PANIC_FIX_MAX_AGE_S > 0 and agent.report.counters["located_windows"] == 0


class _CountingUplink:
    """Counts the agent's calls to publish (the broker is not what this test is about)."""

    def __init__(self) -> None:
        self.pumps = 0

    def pump(self) -> None:
        self.pumps += 1


def test_a_withdrawal_the_full_disk_holds_back_sends_nothing_until_done_and_counts_add_up(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    agent = agent_without_link(tmp_path, share=True)
    agent.batch_windows = 1
    uplink = _CountingUplink()
    agent.uplink = uplink  # type: ignore[assignment]
    agent._emit_windows([window(0)], force=True)
    real = agent.outbox.rewrite_pending
    refused = {"n": 1}

    def full_disk_once(*args: Any) -> int:
        if refused["n"]:
            refused["n"] -= 1
            raise sqlite3.OperationalError("database or disk is full")
        return real(*args)

    monkeypatch.setattr(agent.outbox, "rewrite_pending", full_disk_once)
    agent.apply_config(Config("dev-loc", 2, T0 + 100, share_location=False))
    agent.poll()  # the held rewrite goes through on the next poll, and only then is anything published
    assert agent.report.counters["positions_withdrawn"] == 1 and uplink.pumps == 1
    monkeypatch.setattr(agent.outbox, "rewrite_pending", full_disk_once)
    refused["n"] = 2
    agent.apply_config(Config("dev-loc", 3, T0 + 200, share_location=True))
    agent._emit_windows([window(300)], force=True)
    agent.apply_config(Config("dev-loc", 4, T0 + 400, share_location=False))
    agent.poll()
    assert uplink.pumps == 1  # the rewrite held back: nothing published with a position
    agent.poll()
    assert agent.report.counters["positions_withdrawn"] == 2 and uplink.pumps == 2  # added, not overwritten
