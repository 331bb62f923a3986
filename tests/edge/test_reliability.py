"""Reliability of the whole uplink chain: real agent, real outbox, real Mosquitto, real ingest, real PostgreSQL.

Each test disturbs one thing a phone lives through (the app killed mid-stream,
the broker gone for a minute, a day without network, a full disk, the clock
jumping) and then reconciles three independent records:

* the outbox's ledger: every seq it ever assigned, its kind and its fate;
* the server's database: what the ingest stored (``uplink_messages``,
  ``summaries``, ``events``, ``strips``);
* the simulated timeline: which summary windows the strap's data cover.

"Exactly once, in order of sequence" means: the server holds exactly the
ledger's non-status seqs, all acknowledged, none dropped; no window twice; and
window times increase with (seq, position in message).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest

from edge.agent import BATCH_STATE, EdgeAgent, press_panic
from edge.app.status import status_of
from edge.backoff import Policy
from edge.outbox import ACKED, Outbox
from edge.sensors import Notification, SensorSource
from edge.uplink import Uplink
from server.embedded import free_port, mosquitto_executable, wait_for_port
from simulators.scenarios import Scenario, Segment, load_scenario
from simulators.wearable import VirtualWearable
from tests.fix_server import LiveServer, provision
from tests.server.helpers import wait_for
from wire import BrokerAddress, Config, Kind, Limits, Summary, decode

FAST_RETRY = Policy(base=0.2, cap=1.0)  # the real back-off loop, with delays a test can wait for
T0 = 1_790_000_040.0  # a multiple of 60 s: simulated windows start on round times


# --- private services ---------------------------------------------------------------------------------------------


class PrivateBroker:
    """A Mosquitto of the test's own on a fixed port, with persistence, that can be stopped and started again.

    Persistence is on (as in the shipped broker config), so the ingest's
    session and its queued messages survive the restart.
    """

    def __init__(self, persistent: bool = True) -> None:
        exe = mosquitto_executable()
        if exe is None:
            pytest.skip("needs a mosquitto binary to stop and restart")
        self.port, self.dir = free_port(), Path(tempfile.mkdtemp(prefix="pisces-rel-"))
        conf = self.dir / "mosquitto.conf"
        conf.write_text(
            f"listener {self.port} 127.0.0.1\nallow_anonymous true\npersistence {str(persistent).lower()}\n"
            f"persistence_location {self.dir}/\nmax_queued_messages 100000\nlog_dest none\n"
        )
        self.cmd = [exe, "-c", str(conf)]
        self.proc: subprocess.Popen[bytes] | None = None
        self.url = f"mqtt://127.0.0.1:{self.port}"

    def start(self) -> None:
        self.proc = subprocess.Popen(self.cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_for_port("127.0.0.1", self.port, 10)

    def stop(self) -> None:
        assert self.proc is not None
        self.proc.terminate()  # Mosquitto saves its persistence file on SIGTERM
        self.proc.wait(timeout=10)

    def close(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        shutil.rmtree(self.dir, ignore_errors=True)


@pytest.fixture
def broker() -> Iterator[PrivateBroker]:
    b = PrivateBroker()
    b.start()
    try:
        yield b
    finally:
        b.close()


@pytest.fixture
def ingest(broker: PrivateBroker, db_url: str) -> Iterator[Any]:
    """The server's real ingest worker on the private broker."""
    from server.ingest import Ingestor
    from server.settings import ServerSettings

    worker = Ingestor(ServerSettings(database_url=db_url, mqtt_url=broker.url, mqtt_protocol="5",
                                     mqtt_client_id=f"ingest-{secrets.token_hex(4)}"))  # fmt: skip
    worker.start()
    try:
        yield worker
    finally:
        worker.stop()


class NetworkLink:
    """The phone's network: a TCP relay to the broker that can be cut (listener and live connections) and restored."""

    def __init__(self, target_port: int) -> None:
        self.target, self.port = target_port, free_port()
        self.url = f"mqtt://127.0.0.1:{self.port}"
        self._server: socket.socket | None = None
        self._conns: list[socket.socket] = []
        self._lock = threading.Lock()

    def restore(self) -> None:
        server = socket.create_server(("127.0.0.1", self.port), reuse_port=False)
        server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._server = server
        threading.Thread(target=self._accept, args=(server,), daemon=True).start()

    def cut(self) -> None:
        if self._server is not None:
            self._server.close()
            self._server = None
        with self._lock:
            conns, self._conns = self._conns, []
        for c in conns:
            with contextlib.suppress(OSError):
                c.shutdown(socket.SHUT_RDWR)
            c.close()

    def _accept(self, server: socket.socket) -> None:
        while True:
            try:
                phone, _ = server.accept()
            except OSError:
                return
            upstream = socket.create_connection(("127.0.0.1", self.target))
            with self._lock:
                self._conns += [phone, upstream]
            for a, b in ((phone, upstream), (upstream, phone)):
                threading.Thread(target=self._pipe, args=(a, b), daemon=True).start()

    @staticmethod
    def _pipe(src: socket.socket, dst: socket.socket) -> None:
        with contextlib.suppress(OSError):
            while data := src.recv(65536):
                dst.sendall(data)
        with contextlib.suppress(OSError):
            dst.shutdown(socket.SHUT_WR)


# --- reconciliation -----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ServerRecord:
    """What the server stored for one device."""

    seqs: list[int]  # uplink_messages, non-status, in seq order
    windows: list[tuple[int, int, float]]  # (seq, idx, start s since epoch), in (seq, idx) order
    events: list[tuple[int, str]]
    strips: list[int]


def server_record(db_url: str, device: str) -> ServerRecord:
    with psycopg.connect(db_url) as conn:
        seqs = conn.execute(
            "SELECT seq FROM uplink_messages WHERE device_id = %s AND kind <> 'status' ORDER BY seq", (device,)
        ).fetchall()
        windows = conn.execute(
            "SELECT seq, idx, extract(epoch FROM start_at) FROM summaries WHERE device_id = %s ORDER BY seq, idx",
            (device,),
        ).fetchall()
        events = conn.execute("SELECT seq, type FROM events WHERE device_id = %s ORDER BY seq", (device,)).fetchall()
        strips = conn.execute("SELECT seq FROM strips WHERE device_id = %s ORDER BY seq", (device,)).fetchall()
    return ServerRecord(
        [int(s) for (s,) in seqs], [(int(s), int(i), float(t)) for s, i, t in windows],
        [(int(s), str(t)) for s, t in events], [int(s) for (s,) in strips],
    )  # fmt: skip


def reconcile(db_url: str, box: Outbox, device: str, timeout: float = 60.0) -> ServerRecord:
    """Wait until the server holds every seq the ledger says was acked, then check exactly-once and order."""
    ledger = [e for e in box.ledger() if e.kind is not Kind.STATUS]
    assert ledger, "the outbox assigned nothing"
    assert box.pending_count() == 0 and box.stats().dropped == 0
    assert all(e.fate == ACKED for e in ledger), [e for e in ledger if e.fate != ACKED][:5]
    want = [e.seq for e in ledger]
    got = wait_for(lambda: (r := server_record(db_url, device)).seqs == want and r, timeout=timeout,
                   what="the server to hold every acked seq")  # fmt: skip
    by_kind = {k: [e.seq for e in ledger if e.kind is k] for k in (Kind.SUMMARY, Kind.EVENT, Kind.STRIP)}
    assert sorted({s for s, _, _ in got.windows}) == by_kind[Kind.SUMMARY]
    assert [s for s, _ in got.events] == by_kind[Kind.EVENT]
    assert got.strips == by_kind[Kind.STRIP]
    starts = [t for _, _, t in got.windows]
    assert len(set(starts)) == len(starts), "a window stored twice"
    assert starts == sorted(starts), "window times do not follow seq order"
    return got


def slots(start: float, duration: float, window: float) -> list[float]:
    """The simulated timeline's windows: every window-aligned start touched by notifications in [start, start+duration]."""
    first, last = int(start // window), int((start + duration) // window)
    return [k * window for k in range(first, last + 1)]


def add_patient(db_url: str, device: str) -> None:
    from server.store import add_patient as store_add_patient

    with psycopg.connect(db_url) as conn:
        store_add_patient(conn, f"Patient {device}", device)


class Acting:
    """A source that presses panic once simulated time reaches ``at`` (as the patient would, via the app)."""

    def __init__(self, inner: VirtualWearable, box: Outbox, device: str, at: float) -> None:
        self.inner, self.box, self.device, self.at = inner, box, device, at
        self.health = None

    async def notifications(self) -> AsyncIterator[Notification]:
        pressed = False
        async for note in self.inner.notifications():
            if not pressed and note.time >= self.at:
                press_panic(self.box, self.device, time=note.time)
                pressed = True
            yield note


async def until(cond: Callable[[], bool], timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        assert time.monotonic() < deadline, "timed out"
        await asyncio.sleep(0.02)


# --- the tests ----------------------------------------------------------------------------------------------------


def pisces(*args: str) -> list[str]:
    return [sys.executable, "-m", "server.cli", *args]


@pytest.mark.mqtt
@pytest.mark.db
def test_agent_killed_mid_stream_and_restarted(
    live_server: LiveServer, db_url: str, mqtt_url: str, device_id: str, tmp_path: Path
) -> None:
    provision(db_url, device_id, live_server.username)
    outbox, env = tmp_path / "outbox.sqlite3", {k: v for k, v in os.environ.items() if not k.startswith("PISCES_")}

    def run(duration: int, port: int) -> subprocess.Popen[str]:
        return subprocess.Popen(
            pisces("edge", "run", "--device", device_id, "--mqtt-url", mqtt_url, "--outbox", str(outbox),
                   "--simulate", "baseline", "--speed", "1", "--duration", str(duration), "--window-seconds", "1",
                   "--batch-windows", "3", "--app-port", str(port)),
            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )  # fmt: skip

    port = free_port()
    first = run(600, port)
    try:
        wait_for_port("127.0.0.1", port, 30)  # `pisces edge run` serves the patient app beside the agent
        status = httpx.get(f"http://127.0.0.1:{port}/api/status", timeout=5).json()
        assert status["device"] == device_id
        wait_for(lambda: len(server_record(db_url, device_id).windows) >= 4, timeout=30, what="summaries")
        assert httpx.post(f"http://127.0.0.1:{port}/api/panic", json={"confirmed": True}, timeout=5).status_code == 200
        wait_for(lambda: server_record(db_url, device_id).events, timeout=15, what="the panic on the server")
        time.sleep(1.6)  # mid-batch: windows closed but not yet sent (batch of 3 one-second windows)
    finally:
        first.send_signal(signal.SIGKILL)
        first.communicate(timeout=10)
    assert first.returncode == -signal.SIGKILL
    with Outbox(outbox) as box:  # what the killed agent left: its seq counter, and pending or kept windows
        left = box.stats()
        kept = box.get_state(BATCH_STATE)
    second = run(4, free_port())
    out, err = second.communicate(timeout=60)
    assert second.returncode == 0, err
    assert "Traceback" not in err
    with Outbox(outbox) as box:
        assert box.stats().next_seq > left.next_seq  # the restart went on with the same counter
        got = reconcile(db_url, box, device_id)
    if kept is not None:  # the windows the killed agent had closed but not sent reached the server after the restart
        kept_starts = {w.start for w in decode(kept.encode(), Kind.SUMMARY).windows}  # type: ignore[attr-defined]
        assert kept_starts <= {t for _, _, t in got.windows}
    gaps = [b - a for (_, _, a), (_, _, b) in zip(got.windows, got.windows[1:]) if b - a != 1.0]
    assert len(gaps) <= 1  # one run of 1 s windows, a hole while the agent was dead, the second run
    assert [t for _, t in got.events] == ["panic"]
    assert len(got.strips) == 1


@pytest.mark.mqtt
@pytest.mark.db
def test_broker_down_for_a_minute(broker: PrivateBroker, ingest: Any, db_url: str, device_id: str, tmp_path: Path) -> None:
    add_patient(db_url, device_id)
    duration, window, speed = 180.0, 5.0, 20.0  # the simulated minute without a broker lasts 3 real seconds
    box = Outbox(tmp_path / "o.sqlite3")
    wearable = VirtualWearable(load_scenario("baseline"), start_time=T0, duration_s=duration, speed=speed)
    uplink = Uplink(device_id, BrokerAddress.parse(broker.url), box, retry=FAST_RETRY, session_expiry_s=600)
    agent = EdgeAgent(device_id, Acting(wearable, box, device_id, T0 + 90), box, uplink,
                      window_seconds=window, batch_windows=3)  # fmt: skip
    seen_offline: dict[str, Any] = {}

    async def outage() -> None:
        await until(lambda: wearable.now >= 50 and uplink.connected)
        await asyncio.to_thread(broker.stop)
        await until(lambda: not agent.online)
        await until(lambda: wearable.now >= 110)  # 60 simulated s, panic pressed at 90 s while the broker is away
        seen_offline.update(status_of(agent))
        await asyncio.to_thread(broker.start)

    async def main() -> bool:
        down = asyncio.create_task(outage())
        await agent.run()
        await down
        return await agent.drain(30)

    try:
        assert asyncio.run(main())
    finally:
        uplink.stop()
    assert seen_offline["online"] is False and seen_offline["pending"] > 0
    assert uplink.counters["connects"] >= 2 and uplink.counters["connect_failures"] >= 1
    got = reconcile(db_url, box, device_id)
    assert [t for _, _, t in got.windows] == slots(T0, duration, window)  # every simulated window, once
    assert [t for _, t in got.events] == ["panic"] and len(got.strips) == 1
    box.close()


@pytest.mark.mqtt
@pytest.mark.db
def test_a_day_offline_then_sent_in_order(
    broker: PrivateBroker, ingest: Any, db_url: str, device_id: str, tmp_path: Path
) -> None:
    add_patient(db_url, device_id)
    day, window = 86_400.0, 60.0
    scenario = Scenario("day", resting_hr=64, segments=(Segment(at=40_000, duration=1_800, hr=125, ramp=120),))
    box = Outbox(tmp_path / "o.sqlite3")
    wearable = VirtualWearable(scenario, start_time=T0, duration_s=day, speed=0, strap="hrs")
    link = NetworkLink(broker.port)  # cut from the start: the phone has no network all day
    uplink = Uplink(device_id, BrokerAddress.parse(link.url), box, retry=FAST_RETRY, session_expiry_s=600)
    agent = EdgeAgent(device_id, Acting(wearable, box, device_id, T0 + 50_000), box, uplink,
                      window_seconds=window, batch_windows=5)  # fmt: skip
    agent.apply_config(Config(device_id, 3, T0 - 1, limits=(("hr", Limits(yellow_high=100, red_high=150)),)))

    async def main() -> tuple[dict[str, Any], bool]:
        report = await agent.run()
        offline = status_of(agent)
        assert report.windows == len(slots(T0, day, window))
        link.restore()
        return offline, await agent.drain(60)

    try:
        offline, drained = asyncio.run(main())
    finally:
        uplink.stop()
        link.cut()
    assert drained
    assert offline["online"] is False and offline["pending"] > 200  # a day of summaries waited on the phone
    assert offline["problems"]["connect_failures"] >= 1
    assert [n["level"] for n in offline["notifications"]] == ["yellow"]  # warned locally, from the last limits
    got = reconcile(db_url, box, device_id, timeout=90)
    assert [t for _, _, t in got.windows] == slots(T0, day, window)
    assert [t for _, t in got.events] == ["panic"]
    assert agent.report.counters["strips_without_ecg"] == 1  # a heart-rate-only strap: no ECG to cut a strip from
    box.close()


# --- bad input, without the network -------------------------------------------------------------------------------


class Crash(Exception):
    """The phone's OS kills the app."""


class CrashAt:
    """Yields a wearable's notifications until simulated time ``at``, then raises (no finish, no flush)."""

    def __init__(self, inner: SensorSource, at: float) -> None:
        self.inner, self.at = inner, at

    async def notifications(self) -> AsyncIterator[Notification]:
        async for note in self.inner.notifications():
            if note.time >= self.at:
                raise Crash
            yield note


def _windows(box: Outbox) -> list[float]:
    return [w.start for p in box.pending(100_000) if isinstance(m := decode(p.payload), Summary) for w in m.windows]


def test_a_crash_loses_only_the_open_window(tmp_path: Path) -> None:
    path, window = tmp_path / "o.sqlite3", 5.0
    with Outbox(path) as box:
        first = VirtualWearable(load_scenario("baseline"), start_time=T0, duration_s=60, speed=0)
        agent = EdgeAgent("dev-crash", CrashAt(first, T0 + 43.5), box, window_seconds=window, batch_windows=20)
        with pytest.raises(Crash):
            asyncio.run(agent.run())
        closed = agent.report.windows
        assert closed >= 5 and _windows(box) == []  # windows closed, none sent yet: the batch of 20 was not full
    with Outbox(path) as box:
        rest = VirtualWearable(load_scenario("baseline"), start_time=T0 + 50, duration_s=30, speed=0)
        asyncio.run(EdgeAgent("dev-crash", rest, box, window_seconds=window, batch_windows=20).run())
        starts = _windows(box)
    # Every window closed before the crash survives it; only the still open one(s) are lost.
    assert starts == slots(T0, 60, window)[:closed] + slots(T0 + 50, 30, window)


class Jumping:
    """A wearable whose receive times jump by ``shift`` s once simulated time passes ``at``."""

    def __init__(self, inner: VirtualWearable, at: float, shift: float) -> None:
        self.inner, self.at, self.shift = inner, at, shift

    async def notifications(self) -> AsyncIterator[Notification]:
        async for n in self.inner.notifications():
            yield Notification(n.uuid, n.data, n.time + (self.shift if n.time >= self.at else 0.0))


@pytest.mark.parametrize("shift", [-3600.0, 3600.0])
def test_clock_jumps_are_counted_and_shown(tmp_path: Path, shift: float) -> None:
    wearable = VirtualWearable(load_scenario("baseline"), start_time=T0, duration_s=120, speed=0, strap="hrs")
    with Outbox(tmp_path / "o.sqlite3") as box:
        agent = EdgeAgent("dev-clock", Jumping(wearable, T0 + 60, shift), box, window_seconds=10, batch_windows=3)
        report = asyncio.run(agent.run())
        starts = _windows(box)
        problems = status_of(agent)["problems"]
    before, after = slots(T0, 59, 10), slots(T0 + 60 + shift, 60, 10)
    assert starts == before + after  # every window kept, each under the clock it was measured with
    assert report.windows == len(starts)
    counter = "clock_jumps" if shift < 0 else "time_gaps"
    assert report.counters[counter] == 1 and problems[counter] == 1


def test_full_disk_holds_writes_and_loses_nothing(tmp_path: Path) -> None:
    duration = 400.0
    wearable = VirtualWearable(load_scenario("baseline"), start_time=T0, duration_s=duration, speed=0, strap="hrs")
    with Outbox(tmp_path / "o.sqlite3", max_pages=16) as box:  # a phone with 64 KiB left for the outbox
        agent = EdgeAgent("dev-full", wearable, box, window_seconds=1, batch_windows=1)
        report = asyncio.run(agent.run())
        full = status_of(agent)["problems"]
        assert full["outbox_errors"] >= 1 and full["outbox_held"] >= 1  # the disk refused; the app shows it
        stored: list[float] = []
        for _ in range(100):  # the uplink frees space by draining; held writes go in
            if not (agent.held_writes or box.pending_count()):
                break
            for p in box.pending(1000):
                stored += [w.start for w in decode(p.payload).windows]  # type: ignore[union-attr]
                box.ack(p.seq)
            agent.poll()
        assert status_of(agent)["problems"].get("outbox_held") is None
    assert report.windows == len(slots(T0, duration, 1.0))
    assert stored == slots(T0, duration, 1.0)  # every window once, in seq order, none dropped
