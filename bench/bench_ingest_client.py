"""The ingest's paho client against plain paho: CPU per message received and acknowledged, side by side.

Each run: a subscriber process (MQTT 5, persistent session, manual acks, QoS 1)
receives ``--messages`` uplink-sized messages from the lean publisher of
``mqtt_load.py`` through a Mosquitto of the benchmark's own, and a second
thread acks them a batch at a time, as the ingest's worker thread does
(whatever is queued at once). Reported: messages/s from the first to the last
message and the subscriber process's CPU (all its threads) per message.

- reference: ``paho.mqtt.client.Client``, ``ack(mid, qos)`` per message;
- ours: ``server.ingest_client.IngestClient``, ``on_uplink`` and ``ack_many`` per batch;
- and, to show where the difference comes from, ours with only the block reads;
  with block reads and the PUBLISH parser (acks one by one); with the acks in one
  write too, but each packet still read through paho's reader (ours before
  2026-12-02, later: "packets from the block").

Then the reader alone, without a broker: the packets written into a socket pair,
read by ``loop_read`` on one thread, its CPU per message (paho's reader for each
packet against packets cut from the block; the figure the whole-process runs are
too noisy to show).

    .venv/bin/python bench/bench_ingest_client.py [--messages 40000] [--payload 1650] [--repeat 3]
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import platform
import queue
import secrets
import socket
import statistics
import sys
import threading
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import paho.mqtt  # noqa: E402
import paho.mqtt.client as mqtt  # noqa: E402
from paho.mqtt.enums import CallbackAPIVersion  # noqa: E402
from paho.mqtt.packettypes import PacketTypes  # noqa: E402
from paho.mqtt.properties import Properties  # noqa: E402

from bench_ingest import mosquitto  # noqa: E402
from mqtt_load import publish_all, publish_packet  # noqa: E402
from server import ingest_client  # noqa: E402
from server.ingest_client import IngestClient  # noqa: E402

VARIANTS = ("paho", "block reads", "block reads + parser", "+ acks in one write", "ours")


class _PahoReads(IngestClient):
    """Every packet through paho's reader (no packets taken straight from the block)."""

    def _buffered_publishes(self, sock: Any, most: int) -> int:
        return 0


class _NoParser(_PahoReads):
    """Block reads only: every PUBLISH through paho's own parser."""

    def _handle_publish(self) -> Any:
        return mqtt.Client._handle_publish(self)


def _client(variant: str, client_id: str, on_uplink: Any) -> mqtt.Client:
    kwargs: dict[str, Any] = {"client_id": client_id, "protocol": mqtt.MQTTv5, "manual_ack": True}
    if variant == "paho":
        return mqtt.Client(CallbackAPIVersion.VERSION2, **kwargs)
    if variant == "block reads":
        return _NoParser(CallbackAPIVersion.VERSION2, on_uplink=on_uplink, **kwargs)
    if variant in ("block reads + parser", "+ acks in one write"):
        return _PahoReads(CallbackAPIVersion.VERSION2, on_uplink=on_uplink, **kwargs)
    return IngestClient(CallbackAPIVersion.VERSION2, on_uplink=on_uplink, **kwargs)


def _subscriber(variant: str, port: int, topic: str, n: int, out: Any) -> None:
    taken: queue.Queue[int] = queue.Queue()
    ready, done = threading.Event(), threading.Event()
    marks: dict[str, float] = {}

    def on_uplink(_t: str, _p: bytes, mid: int, _q: int, _r: bool) -> None:
        taken.put(mid)

    client = _client(variant, f"bench-ic-{secrets.token_hex(4)}", on_uplink)
    client.on_message = lambda _c, _u, m: taken.put(m.mid)
    client.on_subscribe = lambda *_a: ready.set()

    def acker() -> None:
        got = 0
        while got < n:
            mids = [taken.get()]
            if got == 0:
                marks["t0"], marks["c0"] = time.perf_counter(), time.process_time()
            while True:
                try:
                    mids.append(taken.get_nowait())
                except queue.Empty:
                    break
            got += len(mids)
            if variant in ("ours", "+ acks in one write"):
                client.ack_many(mids)  # type: ignore[attr-defined]
            else:
                for mid in mids:
                    client.ack(mid, 1)
        marks["t1"], marks["c1"] = time.perf_counter(), time.process_time()
        done.set()

    props = Properties(PacketTypes.CONNECT)
    props.ReceiveMaximum = 2000  # as the ingest's workers (ingest_receive_maximum)
    client.connect("127.0.0.1", port, properties=props)
    client.subscribe(topic, qos=1)
    threading.Thread(target=acker, daemon=True).start()
    client.loop_start()
    ready.wait(10)
    out.put("ready")
    done.wait(300)
    out.put((n / (marks["t1"] - marks["t0"]), (marks["c1"] - marks["c0"]) / n * 1e6))
    client.disconnect()
    client.loop_stop()


def run(variant: str, url: str, messages: int, payload: int) -> tuple[float, float]:
    """(messages/s, subscriber CPU us per message) of one variant."""
    port = int(url.rsplit(":", 1)[1])
    ctx = multiprocessing.get_context("spawn")
    out = ctx.Queue()
    topic = f"pisces/v1/bench{secrets.token_hex(3)}/summary"
    sub = ctx.Process(target=_subscriber, args=(variant, port, topic, messages, out))
    sub.start()
    out.get(timeout=30)
    body = os.urandom(payload)
    publish_all("127.0.0.1", port, [(topic, body)] * messages, in_flight=1000, timeout=300)
    result = out.get(timeout=300)
    sub.join(30)
    return result


def reader_only(cls: type[IngestClient], messages: int, payload: int) -> float:
    """CPU us per message of ``cls``'s ``loop_read`` on a socket pair carrying ``messages`` PUBLISHes."""
    raw = b"".join(publish_packet("pisces/v1/b00001/summary", b"x" * payload, 1 + i % 65_000) for i in range(messages))
    got = [0]
    client = cls(CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5, manual_ack=True,
                 on_uplink=lambda *_: got.__setitem__(0, got[0] + 1))  # fmt: skip
    left, right = socket.socketpair()
    right.setblocking(False)
    client._sock = ingest_client.BufferedSocket(right)  # as connected
    writer = threading.Thread(target=left.sendall, args=(raw,), daemon=True)
    writer.start()
    start = time.thread_time()
    while got[0] < messages:
        client.loop_read()
    used = time.thread_time() - start
    client._sock = None
    writer.join(30)
    left.close()
    right.close()
    return used / messages * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--messages", type=int, default=40_000)
    parser.add_argument("--payload", type=int, default=1_650, help="bytes (a 5-window fleet summary: ~1,650)")
    parser.add_argument("--repeat", type=int, default=3, help="runs of each variant, alternating")
    args = parser.parse_args()
    print(f"python {platform.python_version()} on {platform.machine()}, {os.cpu_count()} cores; paho "
          f"{paho.mqtt.__version__}, fast paths "
          f"{'on' if ingest_client.FAST_PATHS else 'OFF'}; {args.messages:,} messages of {args.payload:,} bytes")  # fmt: skip
    results: dict[str, list[tuple[float, float]]] = {v: [] for v in VARIANTS}
    with mosquitto() as url:
        for _ in range(args.repeat):
            for variant in VARIANTS:
                results[variant].append(run(variant, url, args.messages, args.payload))
    reference = statistics.median(cpu for _, cpu in results["paho"])
    for variant in VARIANTS:
        rate = statistics.median(r for r, _ in results[variant])
        cpu = statistics.median(c for _, c in results[variant])
        print(f"{variant:22s} {rate:9,.0f} msgs/s   {cpu:6.1f} us CPU a message  = {cpu / reference:.2f} x paho's"
              f"   (runs: {', '.join(f'{c:.1f}' for _, c in results[variant])})")  # fmt: skip
    readers: dict[str, list[float]] = {"paho's reader": [], "packets from the block": []}
    for _ in range(args.repeat):
        readers["paho's reader"].append(reader_only(_PahoReads, args.messages, args.payload))
        readers["packets from the block"].append(reader_only(IngestClient, args.messages, args.payload))
    base = statistics.median(readers["paho's reader"])
    for name, runs in readers.items():
        print(f"reader alone, {name:22s} {statistics.median(runs):6.2f} us CPU a message  = "
              f"{statistics.median(runs) / base:.2f} x   (runs: {', '.join(f'{c:.2f}' for c in runs)})")  # fmt: skip


if __name__ == "__main__":
    main()
