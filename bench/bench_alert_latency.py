"""Alert latency: a phone's publish -> the red alert arriving on a clinician's live stream, idle and under load.

The real parts, on loopback: a Mosquitto of the benchmark's own, a scratch
database (dropped afterwards; ``PISCES_BENCH_DATABASE_URL``, else
``PISCES_TEST_DATABASE_URL``, else an embedded PostgreSQL), ``pisces ingest
--workers N`` (:func:`server.ingest.supervise`) and the API server (uvicorn)
with a signed-in clinician reading ``GET /api/alerts/stream`` over HTTP.

A probe is one summary message from a patient of that clinician whose window
shows a 4 s pause (``pause_max``; a Holter urgent finding, red at once); its
latency is from just before ``publish`` to the moment the stream delivers the
``alert`` event of that patient. Each probe uses its own patient, so every
probe opens a new red episode. Probes run idle, then while a paced background
publisher (the lean generator of ``mqtt_load.py``, in a process of its own; its
messages made before the probes begin) sends ordinary summaries of other patients at ``--load`` windows/s
(pass half the 2-worker rate that ``bench_ingest.py`` measured on the same
machine; the default 5,000 is half of what it measured here on 2026-11-23).
The reference printed beside ours is the bare transport in the same phase:
publish -> a plain paho subscriber on the same broker, as many messages.

    .venv/bin/python bench/bench_alert_latency.py [--probes 200] [--load 5000] [--workers 2]
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import platform
import secrets
import sys
import threading
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import httpx  # noqa: E402
import paho.mqtt.client as mqtt  # noqa: E402
import psycopg  # noqa: E402
import uvicorn  # noqa: E402
from paho.mqtt.enums import CallbackAPIVersion  # noqa: E402

from bench.bench_ingest import database, mosquitto, payloads, workers  # noqa: E402
from mqtt_load import publish_paced  # noqa: E402
from server.app import create_app  # noqa: E402
from server.consent import record_enrolment  # noqa: E402
from server.embedded import free_port  # noqa: E402
from server.settings import ServerSettings  # noqa: E402
from server.store import add_patient, add_user, assign_patient, migrate  # noqa: E402
from wire import Kind, Summary, SummaryWindow, encode, topic_for  # noqa: E402

T0 = 1_763_900_000.0
PROBE_GAP_S = 0.05  # between probes: 20 a second
LOAD_DEVICES = 2_000
LOAD_WINDOWS = 5  # per load message, as the edge sends


def probe(device: str, t: float) -> tuple[str, bytes]:
    """One summary whose only window shows a 4 s pause: red at once by the Holter criteria."""
    w = SummaryWindow(start=t, end=t + 10, beats=9, hr_mean=58.0, hr_max=70.0, flags=("pause",),
                      quality=0.95, activity="rest", pause_max=4.0)  # fmt: skip
    return topic_for(device, Kind.SUMMARY), encode(Summary(device, 1, (w,)))


def _connect(port: int) -> mqtt.Client:
    client = mqtt.Client(CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5)
    client.max_inflight_messages_set(1000)
    client.connect("127.0.0.1", port)
    client.loop_start()
    return client


def _paced_load(port: int, per_second: float, seconds: float, first_seq: int, ready: Any = None) -> None:
    """Publish ordinary summaries of the load devices at ``per_second`` messages/s for ``seconds``, by the lean
    generator of ``mqtt_load.py`` (paho took ~0.5 of a core at 3,400 messages/s). The messages are made first
    (at 17,000 windows/s, tens of seconds), then ``ready`` is set and the pace begins."""
    messages = payloads(int(per_second * seconds) + 1, LOAD_WINDOWS, LOAD_DEVICES, first_seq=first_seq)
    if ready is not None:
        ready.set()
    publish_paced("127.0.0.1", port, messages, per_second, timeout=seconds + 60)


class Stream:
    """A clinician's ``/api/alerts/stream`` read in a thread: arrival time of the first red alert per patient."""

    def __init__(self, base_url: str, username: str, password: str) -> None:
        token = httpx.post(f"{base_url}/api/auth/login", json={"username": username, "password": password}).json()
        self.headers = {"Authorization": f"Bearer {token['token']}"}
        self.url = f"{base_url}/api/alerts/stream"
        self.arrived: dict[int, float] = {}
        self.listening = threading.Event()
        self._client = httpx.Client(timeout=None, headers=self.headers)
        self._thread = threading.Thread(target=self._read, daemon=True)
        self._thread.start()
        if not self.listening.wait(15):
            raise TimeoutError("the alert stream did not start")

    def _read(self) -> None:
        try:
            self._lines()
        except (httpx.HTTPError, RuntimeError):
            pass  # closed at the end of the run

    def close(self) -> None:
        """Hang up (the server then ends the stream and can shut down)."""
        self._client.close()

    def _lines(self) -> None:
        with self._client.stream("GET", self.url) as response:
            event = None
            for line in response.iter_lines():
                if line == ": listening":
                    self.listening.set()
                elif line.startswith("event: "):
                    event = line[7:]
                elif line.startswith("data: ") and event == "alert":
                    alert = json.loads(line[6:])
                    if alert["level"] == "red" and alert["state"] == "open":
                        self.arrived.setdefault(int(alert["patient_id"]), time.perf_counter())


def run_probes(port: int, devices: list[tuple[str, int]], seen: dict[int, float]) -> list[float]:
    """Publish one probe per ``(device, patient)``; latency (s) of each whose alert arrived within 10 s."""
    client = _connect(port)
    sent: dict[int, float] = {}
    for k, (device, patient) in enumerate(devices):
        topic, payload = probe(device, T0 + 10 * k)
        sent[patient] = time.perf_counter()
        client.publish(topic, payload, qos=1)
        time.sleep(PROBE_GAP_S)
    deadline = time.monotonic() + 10
    while len([p for p in sent if p in seen]) < len(sent) and time.monotonic() < deadline:
        time.sleep(0.02)
    client.disconnect()
    client.loop_stop()
    return sorted(seen[p] - t for p, t in sent.items() if p in seen)


def transport_reference(port: int, n: int) -> list[float]:
    """The same probes' publish -> a bare paho subscriber (QoS 1) on the same broker: the transport alone."""
    got: dict[str, float] = {}
    sub = mqtt.Client(CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5)
    ready = threading.Event()
    sub.on_subscribe = lambda *_a: ready.set()
    sub.on_message = lambda _c, _u, m: got.setdefault(m.topic, time.perf_counter())
    sub.connect("127.0.0.1", port)
    sub.loop_start()
    sub.subscribe("reference/#", qos=1)
    ready.wait(10)
    pub = _connect(port)
    sent = {}
    for k in range(n):
        topic = f"reference/{k}"
        sent[topic] = time.perf_counter()
        pub.publish(topic, probe("ref", T0)[1], qos=1)
        time.sleep(PROBE_GAP_S)
    time.sleep(1)
    for c in (pub, sub):
        c.disconnect()
        c.loop_stop()
    return sorted(got[t] - s for t, s in sent.items() if t in got)


def quantiles(lat: list[float]) -> tuple[float, float]:
    """p50 and p99 (s) of sorted latencies (nearest rank)."""
    return lat[len(lat) // 2], lat[min(len(lat) - 1, int(len(lat) * 0.99))]


def report(name: str, lat: list[float], ref: list[float], sent: int) -> None:
    p50, p99 = quantiles(lat)
    r50, r99 = quantiles(ref)
    lost = f", {sent - len(lat)} not seen in 10 s" if len(lat) < sent else ""
    print(f"{name:<36} p50 {p50 * 1000:6.1f} ms  p99 {p99 * 1000:6.1f} ms   transport alone p50 {r50 * 1000:5.1f} ms"
          f"  p99 {r99 * 1000:5.1f} ms   ratio p99 {p99 / r99:6.1f} x{lost}")  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--probes", type=int, default=200, help="probes per phase (one new patient each)")
    parser.add_argument("--load", type=float, default=5_000.0,
                        help="background windows/s in the loaded phase: half of bench_ingest.py's 2-worker figure")
    parser.add_argument("--workers", type=int, default=2, help="ingest worker processes")
    args = parser.parse_args()
    print(f"python {platform.python_version()} on {platform.machine()}, {os.cpu_count()} cores; "
          f"{args.probes} probes a phase, {args.workers} ingest workers, load {args.load:,.0f} windows/s")
    username, password = f"dr-{secrets.token_hex(3)}", secrets.token_urlsafe(12)
    with database() as db_url, mosquitto() as mqtt_url:
        migrate(db_url)
        port = int(mqtt_url.rsplit(":", 1)[1])
        with psycopg.connect(db_url) as conn:
            add_user(conn, username, password, "clinician")
            conn.cursor().executemany("INSERT INTO patients (name, device_id) VALUES (%s, %s)",
                                      [(f"Load {i}", f"b{i:05d}") for i in range(LOAD_DEVICES)])  # fmt: skip
            record_enrolment(conn, [r[0] for r in conn.execute("SELECT id FROM patients")])  # else quarantined
            probes = []
            for k in range(2 * args.probes):
                device = f"probe{k:05d}"
                patient = add_patient(conn, f"Probe {k}", device)
                assign_patient(conn, username, patient)
                probes.append((device, patient))
        settings = ServerSettings(database_url=db_url, mqtt_url=mqtt_url, http_port=free_port(),
                                  ingest_in_server=False, escalation_in_server=False)  # fmt: skip
        server = uvicorn.Server(uvicorn.Config(create_app(settings), host="127.0.0.1", port=settings.http_port,
                                               log_level="critical", timeout_graceful_shutdown=2))  # fmt: skip
        thread = threading.Thread(target=server.run, daemon=True)
        thread.start()
        while not server.started:
            time.sleep(0.05)
        try:
            with workers(db_url, mqtt_url, args.workers, "alert"):
                stream = Stream(f"http://127.0.0.1:{settings.http_port}", username, password)
                # Warm: a message per load device (partitions, rule-state rows, worker connections).
                warm = multiprocessing.get_context("spawn").Process(
                    target=_paced_load, args=(port, 4000.0, LOAD_DEVICES / 4000 + 1, 1))
                warm.start()
                warm.join(60)
                time.sleep(2)
                ref = transport_reference(port, args.probes)
                idle = run_probes(port, probes[: args.probes], stream.arrived)
                report("idle", idle, ref, args.probes)
                seconds = 2 * args.probes * PROBE_GAP_S * 1.5 + 20
                ctx = multiprocessing.get_context("spawn")
                ready = ctx.Event()
                load = ctx.Process(target=_paced_load, args=(port, args.load / LOAD_WINDOWS, seconds, 10_000, ready))
                load.start()
                if not ready.wait(600):
                    raise TimeoutError("the load's messages were not made in 10 minutes")
                time.sleep(3)  # the load reaches its pace (before 2026-12-02, the probes could start while
                # the load was still being made, so part of a phase could run without it)
                ref_loaded = transport_reference(port, args.probes)
                loaded = run_probes(port, probes[args.probes :], stream.arrived)
                load.join(seconds + 30)
                report(f"under load ({args.load:,.0f} windows/s)", loaded, ref_loaded, args.probes)
                stream.close()
        finally:
            server.should_exit = True
            thread.join(15)


if __name__ == "__main__":
    main()
