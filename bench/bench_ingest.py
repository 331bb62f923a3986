"""Ingest throughput and latency: ours against the two ceilings, measured side by side in one run.

Ceilings (no work of ours):
  - MQTT: a private Mosquitto -> one paho subscriber (MQTT 5, QoS 1) that only counts, msgs/s;
  - PostgreSQL: binary COPY of summary rows into a table with a primary key, 1,000 rows a commit, rows/s.
Ours: summary windows/s from MQTT to committed rows (decode, dedup by (device, seq), COPY staging,
rollups, threshold evaluation) with 1 and 2 worker processes on one shared subscription; then
publish-to-commit latency (p50/p99) at half the 2-worker rate. During each throughput run it also
prints where the machine's cores went (workers, their PostgreSQL backends, Mosquitto, publisher,
everything else), read from /proc, since on a shared machine that decides what the figures mean.
The load of the ceiling and throughput runs is published by the lean generator of ``mqtt_load.py``
(``--publisher paho``: by paho, as before 2026-12-02), so that the publisher takes little of the cores.
Everything runs on loopback: a Mosquitto of the benchmark's own on a free port, and a scratch database (dropped afterwards) on
``PISCES_BENCH_DATABASE_URL``, else ``PISCES_TEST_DATABASE_URL``, else an embedded PostgreSQL.

    .venv/bin/python bench/bench_ingest.py [--messages 20000] [--windows 5] [--devices 2000] [--workers 1,2]
                                           [--batch-size N] [--source fleet|fixed] [--publisher lean|paho]
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import multiprocessing
import os
import platform
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import paho.mqtt.client as mqtt  # noqa: E402
import psycopg  # noqa: E402
from paho.mqtt.enums import CallbackAPIVersion  # noqa: E402

from server.consent import record_enrolment  # noqa: E402
from server.embedded import free_port, mosquitto_executable, wait_for_port  # noqa: E402
from server.ingest import supervise  # noqa: E402
from server.records import SUMMARY_COLUMNS, SUMMARY_TYPES, ts  # noqa: E402
from server.settings import ServerSettings  # noqa: E402
from server.store import migrate  # noqa: E402
from wire import Kind, Summary, SummaryWindow, encode, topic_for  # noqa: E402
from simulators.fleet import fleet_roster  # noqa: E402
from mqtt_load import publish_all, publish_paced  # noqa: E402
from simulators.summaries import SummaryStream  # noqa: E402

T0 = 1_763_900_000.0
DUPLICATE_EVERY = 20  # every 20th message is sent twice (5 % redelivery): dedup is on the path
TIMEOUT_S = 120.0  # no phase runs longer


def window(start: float, hr: float) -> SummaryWindow:
    return SummaryWindow(
        start=start, end=start + 10, beats=int(hr / 6), hr_mean=hr, hr_min=hr - 6, hr_max=hr + 9, rr_mean=60_000 / hr,
        sdnn=41.2, rmssd=30.3, flags=(), resp_rate=14.2, activity="rest", intensity=0.012, quality=0.97, battery=80,
    )  # fmt: skip


SOURCE = {"source": "fleet"}  # set by --source: where the windows' values come from
FLEET_SEED = 7


@functools.lru_cache(maxsize=4)
def fleet_windows(devices: int, count: int) -> list[list[SummaryWindow]]:
    """``count`` consecutive 10-s windows of each of ``devices`` fleet patients from ``T0`` (made once, reused)."""
    return [SummaryStream(p.scenario, 10.0, count * 10.0, T0).windows_until(count * 10.0)
            for p in fleet_roster(devices, FLEET_SEED)]  # fmt: skip


def with_duplicates(messages: list[tuple[str, bytes]], lag: int) -> list[tuple[str, bytes]]:
    """Every ``DUPLICATE_EVERY``-th message sent again, ``lag`` messages after the original (0: right after it).

    A phone resends what the broker did not acknowledge after it reconnects, and the broker redelivers a
    worker's unacknowledged messages after that worker reconnects: a second or more later, i.e. thousands
    of messages later at these rates. Right after the original (lag 0, the method before 2026-12-01),
    the copy mostly finds the original still uncommitted in the other worker's batch and waits for it.
    """
    out: list[tuple[str, bytes]] = []
    for k, message in enumerate(messages):
        out.append(message)
        original = k - lag
        if original >= 0 and original % DUPLICATE_EVERY == 0:
            out.append(messages[original])
    out.extend(messages[k] for k in range(max(0, len(messages) - lag), len(messages)) if k % DUPLICATE_EVERY == 0)
    return out


def payloads(n: int, windows: int, devices: int, first_seq: int = 1) -> list[tuple[str, bytes]]:
    """``n`` summary messages round-robin over ``devices`` devices, 10-s windows.

    ``--source fleet`` (default): each device is a patient of the simulators' summary-level fleet
    (``pisces simulate fleet --mode summary``: the fleet roster's scenarios and profiles, episodes
    and all), so the rules judge what a real cohort sends; ``--source fixed``: ordinary values
    only (the figures before 2026-12-01 were measured so).
    """
    fleet = SOURCE["source"] == "fleet"
    values = fleet_windows(devices, -(-n // devices) * windows) if fleet else []
    shift = first_seq * windows * 10  # later runs send later windows, as a phone does
    out = []
    for k in range(n):
        dev, seq = f"b{k % devices:05d}", first_seq + k // devices
        if fleet:
            first = (k // devices) * windows
            ws = tuple(replace(w, start=w.start + shift, end=w.end + shift)
                       for w in values[k % devices][first:first + windows])  # fmt: skip
        else:
            start = T0 + (seq * windows) * 10
            ws = tuple(window(start + 10 * i, 70 + (k + i) % 9) for i in range(windows))
        out.append((topic_for(dev, Kind.SUMMARY), encode(Summary(dev, seq, ws))))
    return out


# --- services -------------------------------------------------------------------------------


BROKER_PIDS: dict[str, int] = {}  # broker URL -> pid of the benchmark's own Mosquitto


@contextlib.contextmanager
def mosquitto() -> Iterator[str]:
    """A private Mosquitto on a free loopback port (anonymous, in memory), yielding its URL."""
    exe = mosquitto_executable() or "mosquitto"
    port = free_port()
    with tempfile.TemporaryDirectory(prefix="pisces-bench-") as tmp:
        conf = Path(tmp) / "mosquitto.conf"
        conf.write_text(
            f"listener {port} 127.0.0.1\nallow_anonymous true\npersistence false\nlog_dest none\n"
            "max_inflight_messages 2000\nmax_queued_messages 1000000\nmax_queued_bytes 0\n"
        )
        proc = subprocess.Popen([exe, "-c", str(conf)])
        BROKER_PIDS[f"mqtt://127.0.0.1:{port}"] = proc.pid
        try:
            wait_for_port("127.0.0.1", port, 10)
            yield f"mqtt://127.0.0.1:{port}"
        finally:
            proc.terminate()
            proc.wait(10)


@contextlib.contextmanager
def database() -> Iterator[str]:
    server = os.environ.get("PISCES_BENCH_DATABASE_URL") or os.environ.get("PISCES_TEST_DATABASE_URL")
    from tests.fix_db import scratch_database

    if server:
        with scratch_database(server, "pisces_bench") as url:
            yield url
        return
    from server.embedded import embedded_postgres

    with embedded_postgres() as embedded, scratch_database(embedded, "pisces_bench") as url:
        yield url


# --- publishing -------------------------------------------------------------------------------


PUBLISHER = {"publisher": "lean"}  # set by --publisher: what publishes the throughput runs' load


def _publish_all(url: str, messages: list[tuple[str, bytes]], publisher: str, ready: Any) -> None:
    """Publish at QoS 1 as fast as the broker acknowledges (up to 1,000 in flight): with the lean
    generator of ``bench/mqtt_load.py`` (a few us of CPU a message) or with paho (~150 us).
    ``ready`` is set just before the first message goes out."""
    port = int(url.rsplit(":", 1)[1])
    if publisher == "lean":
        publish_all("127.0.0.1", port, messages, in_flight=1000, timeout=TIMEOUT_S, on_start=ready.set)
        return
    client = mqtt.Client(CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5)
    client.max_inflight_messages_set(1000)
    client.max_queued_messages_set(0)
    client.connect("127.0.0.1", port)
    client.loop_start()
    ready.set()
    infos = [client.publish(t, p, qos=1) for t, p in messages]
    for info in infos:
        info.wait_for_publish(TIMEOUT_S)
    client.disconnect()
    client.loop_stop()


def publish_in_background(url: str, messages: list[tuple[str, bytes]]) -> Any:
    """Start a publisher process; returns it (join it to wait) once it is about to publish its first message.

    The wait matters: a spawned process takes a second or more to start (it imports this module), and a
    run timed from its start would count that second as ingest time (as the runs before 2026-12-02 did).
    """
    ctx = multiprocessing.get_context("spawn")
    ready = ctx.Event()
    proc = ctx.Process(target=_publish_all, args=(url, messages, PUBLISHER["publisher"], ready), name="publisher")
    proc.start()
    if not ready.wait(60):
        proc.kill()
        raise TimeoutError("the publisher did not start in 60 s")
    return proc


# --- ceilings -------------------------------------------------------------------------------


def ceiling_mqtt(url: str, messages: list[tuple[str, bytes]]) -> float:
    """Messages/s one paho subscriber receives (MQTT 5, QoS 1, counting only)."""
    port = int(url.rsplit(":", 1)[1])
    got = {"n": 0, "first": 0.0, "last": 0.0}
    done, ready = threading.Event(), threading.Event()

    def on_message(_c: Any, _u: Any, _m: Any) -> None:
        now = time.perf_counter()
        if got["n"] == 0:
            got["first"] = now
        got["n"] += 1
        got["last"] = now
        if got["n"] == len(messages):
            done.set()

    sub = mqtt.Client(CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5)
    sub.on_message = on_message
    sub.on_subscribe = lambda *_a: ready.set()
    sub.connect("127.0.0.1", port)
    sub.subscribe("pisces/v1/+/+", qos=1)
    sub.loop_start()
    ready.wait(10)
    proc = publish_in_background(url, messages)
    done.wait(TIMEOUT_S)
    proc.join(TIMEOUT_S)
    sub.disconnect()
    sub.loop_stop()
    return (got["n"] - 1) / (got["last"] - got["first"])


COPY_COLUMNS = tuple(c.strip() for c in SUMMARY_COLUMNS.split(","))


def copy_row(msg: Summary, idx: int, w: SummaryWindow) -> tuple[Any, ...]:
    """The COPY row of one window in the store's own column list (window fields by name)."""
    own = {"patient_id": 1, "device_id": msg.device, "seq": msg.seq, "idx": idx, "start_at": ts(w.start),
           "end_at": ts(w.end), "flags": list(w.flags)}  # fmt: skip
    return tuple(own[c] if c in own else getattr(w, c) for c in COPY_COLUMNS)


def ceiling_copy(db_url: str, rows: int, windows: int) -> float:
    """Rows/s of binary COPY into a summaries-shaped table with a primary key, 1,000 rows a commit."""
    msgs = [Summary(f"c{k % 1000:04d}", k, tuple(window(T0 + 10 * i, 72) for i in range(windows)))
            for k in range(rows // windows)]  # fmt: skip
    with psycopg.connect(db_url) as conn:
        conn.execute(
            "CREATE TABLE copy_ceiling (LIKE summaries INCLUDING DEFAULTS, PRIMARY KEY (device_id, seq, idx, start_at))"
        )
        conn.commit()
        start = time.perf_counter()
        per_commit = max(1, 1000 // windows)
        for first in range(0, len(msgs), per_commit):
            with conn.cursor().copy(f"COPY copy_ceiling ({SUMMARY_COLUMNS}) FROM STDIN (FORMAT BINARY)") as copy:
                copy.set_types(SUMMARY_TYPES)
                for m in msgs[first : first + per_commit]:
                    for idx, w in enumerate(m.windows):
                        copy.write_row(copy_row(m, idx, w))
            conn.commit()
        elapsed = time.perf_counter() - start
    return len(msgs) * windows / elapsed


# --- where the CPU goes -----------------------------------------------------------------------


def _proc_cpu(pid: int) -> float | None:
    """User + system CPU seconds of a process so far (None once it is gone)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _machine_busy() -> float:
    """CPU seconds all cores spent busy since boot (everything but idle and iowait)."""
    values = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    return (sum(values) - values[3] - values[4]) / os.sysconf("SC_CLK_TCK")


class CpuSampler:
    """CPU seconds per role over a run, sampled every 0.1 s (a process that exits keeps its last sample).

    ``roles()`` names the pids of each role; it is asked again at each sample, so
    processes that start during the run are counted from their first sample.
    """

    def __init__(self, roles: Any) -> None:
        self._roles = roles
        self._first: dict[int, float] = {}
        self._last: dict[int, float] = {}
        self._role_of: dict[int, str] = {}
        self._stop = threading.Event()
        self._busy0 = _machine_busy()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            self._sample()
            self._stop.wait(0.1)

    def _sample(self) -> None:
        for role, pids in self._roles().items():
            for pid in pids:
                cpu = _proc_cpu(pid)
                if cpu is not None:
                    self._first.setdefault(pid, cpu)
                    self._last[pid], self._role_of[pid] = cpu, role

    def stop(self) -> dict[str, float]:
        """CPU seconds per role, plus ``machine`` (all cores busy, everyone's work on this machine)."""
        self._sample()
        self._stop.set()
        self._thread.join(1)
        out = {"machine": _machine_busy() - self._busy0}
        for pid, last in self._last.items():
            role = self._role_of[pid]
            out[role] = out.get(role, 0.0) + last - self._first[pid]
        return out


def cpu_roles(db_url: str, mqtt_url: str, tag: str) -> Any:
    """A function naming the pids of each role of a run: workers, their PostgreSQL backends, broker, publisher."""
    watcher = psycopg.connect(db_url, autocommit=True)

    def roles() -> dict[str, list[int]]:
        children = multiprocessing.active_children()
        backends = watcher.execute(
            "SELECT pid FROM pg_stat_activity WHERE application_name LIKE %s", (f"pisces-ingest:bench-{tag}-%",)
        ).fetchall()
        return {
            "ingest workers": [p.pid for p in children if p.name.startswith("ingest-") and p.pid],
            "PostgreSQL (their backends)": [int(r[0]) for r in backends],
            "Mosquitto": [BROKER_PIDS[mqtt_url]],
            "publisher": [p.pid for p in children if p.name == "publisher" and p.pid],
            "benchmark's own poll": [os.getpid()],
        }

    return roles


def print_cpu(cpu: dict[str, float], elapsed: float) -> None:
    """One line: each role's share of the machine's cores over the run (1.00 = one core all the time)."""
    cores = os.cpu_count() or 1
    ours = sum(v for k, v in cpu.items() if k != "machine")
    parts = [f"{k} {v / elapsed:.2f}" for k, v in cpu.items() if k != "machine"]
    rest = max(0.0, cpu["machine"] - ours) / elapsed
    parts.append(f"everything else (other users, PostgreSQL background work) {rest:.2f}")
    print(f"         cores busy (of {cores}): " + ", ".join(parts) + f"; idle {cores - cpu['machine'] / elapsed:.2f}")


# --- ours -------------------------------------------------------------------------------------


BATCH_SIZE: dict[str, int] = {}  # --batch-size: the workers' ingest_batch_size (default: the settings' own)


@contextlib.contextmanager
def workers(db_url: str, mqtt_url: str, n: int, tag: str) -> Iterator[None]:
    """``n`` ingest worker processes on one shared subscription (as ``pisces ingest --workers n``)."""
    settings = ServerSettings(
        database_url=db_url, mqtt_url=mqtt_url, mqtt_client_id=f"bench-{tag}", mqtt_shared_group=f"bench-{tag}",
        ingest_in_server=False, **({"ingest_batch_size": BATCH_SIZE["n"]} if BATCH_SIZE else {}),
    )  # a group per run: the sessions of an earlier run's workers would take a share
    stop = threading.Event()
    thread = threading.Thread(target=supervise, args=(settings, n, stop), daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join(30)


def stored(conn: psycopg.Connection[Any]) -> int:
    row = conn.execute("SELECT count(*) FROM uplink_messages").fetchone()
    return int(row[0]) if row else 0


def warm_up(conn: psycopg.Connection[Any], mqtt_url: str, devices: int, phase: int) -> None:
    """Publish one new message per device until stored: the workers are subscribed, partitions exist."""
    warm = payloads(devices, 1, devices, first_seq=10**6 + phase)
    target = stored(conn) + devices
    deadline = time.monotonic() + 60
    while stored(conn) < target:
        if time.monotonic() > deadline:
            raise TimeoutError("the ingest workers did not come up")
        publish_in_background(mqtt_url, warm).join(30)
        time.sleep(0.5)


def ours_throughput(
    db_url: str, mqtt_url: str, n_workers: int, messages: list[tuple[str, bytes]], windows: int, devices: int
) -> tuple[float, dict[str, float], float]:
    """Summary windows/s from the first publish to the commit of the last message; CPU seconds per role; seconds."""
    with workers(db_url, mqtt_url, n_workers, f"t{n_workers}"), psycopg.connect(db_url, autocommit=True) as conn:
        warm_up(conn, mqtt_url, devices, n_workers)
        base = stored(conn)
        target = base + len(set(messages))
        roles = cpu_roles(db_url, mqtt_url, f"t{n_workers}")
        proc = publish_in_background(mqtt_url, messages)  # returns as its first message goes out
        sampler = CpuSampler(roles)
        start = time.perf_counter()
        deadline = time.monotonic() + TIMEOUT_S
        while stored(conn) < target and time.monotonic() < deadline:
            time.sleep(0.05)
        elapsed = time.perf_counter() - start
        cpu = sampler.stop()
        proc.join(TIMEOUT_S)
        got = stored(conn) - base
    return got * windows / elapsed, cpu, elapsed


LISTEN_TRIGGER = """
CREATE FUNCTION bench_committed() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE keys text;
BEGIN
  FOR keys IN SELECT string_agg(device_id || ':' || seq, ',') FROM
      (SELECT device_id, seq, row_number() OVER () / 300 AS part FROM fresh) f GROUP BY part LOOP
    PERFORM pg_notify('bench_committed', keys);
  END LOOP;
  RETURN NULL;
END $$;
CREATE TRIGGER bench_committed AFTER INSERT ON uplink_messages
REFERENCING NEW TABLE AS fresh FOR EACH STATEMENT EXECUTE FUNCTION bench_committed();
"""


def _publish_paced(url: str, messages: list[tuple[str, bytes]], rate: float, out: Any) -> None:
    out.put(publish_paced("127.0.0.1", int(url.rsplit(":", 1)[1]), messages, rate, timeout=TIMEOUT_S))


def _paced_in_background(url: str, messages: list[tuple[str, bytes]], rate: float) -> list[float]:
    """Each message's send time (perf_counter), published at ``rate``/s by the lean generator in a process of
    its own (so that its pacing never waits for this process's threads)."""
    ctx = multiprocessing.get_context("spawn")
    out = ctx.Queue()
    proc = ctx.Process(target=_publish_paced, args=(url, messages, rate, out), name="publisher")
    proc.start()
    try:
        return out.get(timeout=TIMEOUT_S + len(messages) / rate)
    finally:
        proc.join(30)


def _paced_with_paho(url: str, messages: list[tuple[str, bytes]], rate: float, keys: list[str]) -> dict[str, float]:
    """As :func:`_paced_in_background`, by paho in this process (``--publisher paho``: before 2026-12-02)."""
    sent: dict[str, float] = {}
    pub = mqtt.Client(CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5)
    pub.max_inflight_messages_set(1000)
    pub.connect("127.0.0.1", int(url.rsplit(":", 1)[1]))
    pub.loop_start()
    start = time.perf_counter()
    infos = []
    for k, (topic, payload) in enumerate(messages):
        due = start + k / rate
        while (now := time.perf_counter()) < due:
            time.sleep(min(0.001, due - now))
        sent[keys[k]] = time.perf_counter()
        infos.append(pub.publish(topic, payload, qos=1))
    for info in infos:
        info.wait_for_publish(TIMEOUT_S)
    pub.disconnect()
    pub.loop_stop()
    return sent


def ours_latency(
    db_url: str, mqtt_url: str, n_workers: int, rate: float, seconds: float, windows: int, devices: int
) -> tuple[float, float, int]:
    """p50, p99 (s) of publish -> commit at ``rate`` messages/s; commit seen by LISTEN (NOTIFY fires at commit)."""
    n = int(rate * seconds)
    messages = payloads(n, windows, devices, first_seq=2 * 10**6)
    sent: dict[str, float] = {}
    seen: dict[str, float] = {}
    with workers(db_url, mqtt_url, n_workers, f"l{n_workers}"), psycopg.connect(db_url, autocommit=True) as conn:
        warm_up(conn, mqtt_url, devices, 10 + n_workers)
        conn.execute(LISTEN_TRIGGER)
        listener = psycopg.connect(db_url, autocommit=True)
        listener.execute("LISTEN bench_committed")
        stop = threading.Event()

        def listen() -> None:
            while not stop.is_set():
                for note in listener.notifies(timeout=0.2):
                    now = time.perf_counter()
                    for key in note.payload.split(","):
                        seen.setdefault(key, now)

        thread = threading.Thread(target=listen, daemon=True)
        thread.start()
        keys = [f"{topic.split('/')[2]}:{2 * 10**6 + k // devices}" for k, (topic, _) in enumerate(messages)]
        if PUBLISHER["publisher"] == "lean":
            sent.update(zip(keys, _paced_in_background(mqtt_url, messages, rate)))
        else:
            sent.update(_paced_with_paho(mqtt_url, messages, rate, keys))
        deadline = time.monotonic() + 30
        while len(seen) < len(sent) and time.monotonic() < deadline:
            time.sleep(0.05)
        stop.set()
        thread.join(5)
        listener.close()
    lat = sorted(seen[k] - t for k, t in sent.items() if k in seen)
    return lat[len(lat) // 2], lat[min(len(lat) - 1, int(len(lat) * 0.99))], len(sent) - len(lat)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--messages", type=int, default=20_000, help="messages per throughput run")
    parser.add_argument("--windows", type=int, default=5, help="summary windows per message (edge default 5)")
    parser.add_argument("--devices", type=int, default=2_000, help="distinct devices (patients)")
    parser.add_argument("--latency-seconds", type=float, default=10.0)
    parser.add_argument("--workers", default="1,2", help="worker counts of the throughput runs; latency uses the last")
    parser.add_argument("--batch-size", type=int, help="the workers' ingest_batch_size (default: the setting's)")
    parser.add_argument("--duplicate-lag", type=int, default=0,
                        help="messages between an original and its duplicate (0: right after it)")
    parser.add_argument("--source", choices=("fleet", "fixed"), default="fleet",
                        help="window values from the simulators' summary-level fleet, or fixed ordinary ones")
    parser.add_argument("--publisher", choices=("lean", "paho"), default="lean",
                        help="the load's publisher: bench/mqtt_load.py, or paho (before 2026-12-02)")
    args = parser.parse_args()
    SOURCE["source"] = args.source
    PUBLISHER["publisher"] = args.publisher
    counts = [int(n) for n in args.workers.split(",")]
    if args.batch_size:
        BATCH_SIZE["n"] = args.batch_size

    messages = payloads(args.messages, args.windows, args.devices)
    n_dups = len(range(0, args.messages, DUPLICATE_EVERY))
    print(f"python {platform.python_version()} on {platform.machine()}, {os.cpu_count()} cores; "
          f"{args.messages:,} messages x {args.windows} windows, {args.devices:,} devices, "
          f"{n_dups} sent twice in our runs; publisher {args.publisher}")  # fmt: skip
    with database() as db_url, mosquitto() as mqtt_url:
        migrate(db_url)
        with psycopg.connect(db_url) as conn:
            conn.cursor().executemany(
                "INSERT INTO patients (name, device_id) VALUES (%s, %s)",
                [(f"Bench {i}", f"b{i:05d}") for i in range(args.devices)],
            )
            record_enrolment(conn, [r[0] for r in conn.execute("SELECT id FROM patients")])  # else quarantined
        mqtt_ceiling = ceiling_mqtt(mqtt_url, messages)
        copy_ceiling = ceiling_copy(db_url, args.messages * args.windows, args.windows)
        lower = min(mqtt_ceiling * args.windows, copy_ceiling)
        print(f"ceiling  MQTT -> one paho subscriber: {mqtt_ceiling:10,.0f} msgs/s = {mqtt_ceiling * args.windows:10,.0f} windows/s")
        print(f"ceiling  PostgreSQL binary COPY:      {copy_ceiling:10,.0f} rows/s")
        rates = {}
        for n in counts:
            fresh = payloads(args.messages, args.windows, args.devices, first_seq=n * 100_000)
            with_dups = with_duplicates(fresh, args.duplicate_lag)
            rates[n], cpu, elapsed = ours_throughput(db_url, mqtt_url, n, with_dups, args.windows, args.devices)
            print(f"ours     {n} worker{'s' if n > 1 else ' '} MQTT -> committed:   {rates[n]:10,.0f} windows/s"
                  f"  = {rates[n] / lower:.2f} x the lower ceiling")  # fmt: skip
            print_cpu(cpu, elapsed)
        last = counts[-1]
        half = rates[last] / args.windows / 2
        p50, p99, missing = ours_latency(db_url, mqtt_url, last, half, args.latency_seconds, args.windows, args.devices)
        print(f"latency  {last} worker{'s' if last > 1 else ''} at {half:,.0f} msgs/s ({half * args.windows:,.0f} windows/s, half load): "
              f"p50 {p50 * 1000:.0f} ms, p99 {p99 * 1000:.0f} ms publish -> commit"
              + (f" ({missing} not seen)" if missing else ""))  # fmt: skip


if __name__ == "__main__":
    main()
