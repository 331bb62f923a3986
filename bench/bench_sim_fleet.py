"""Summary-stream generation: how many patients one core simulates in real time.

Ours: the summary-level patient (:class:`simulators.summaries.SummaryStream`),
windows generated and encoded to wire bytes, for ``--patients`` patients over
``--hours`` simulated hours; and the same with each summary also stored in a
real SQLite outbox (``edge.outbox``), as the fleet does before its uplink.
Reference: one patient through the full path, virtual Polar H10 bytes through
the real ``EdgeAgent`` (decoding, DSP, summariser, outbox; no uplink), i.e.
what ``--mode agent`` costs per patient. The figure is patients in real time = simulated patient
seconds / wall seconds on one core.

    .venv/bin/python bench/bench_sim_fleet.py [--patients 200] [--hours 1] [--window 60]
"""

from __future__ import annotations

import argparse
import asyncio
import platform
import tempfile
import time
from pathlib import Path

from edge.agent import EdgeAgent
from edge.outbox import Outbox
from simulators.fleet import fleet_roster
from simulators.summaries import SummaryStream
from simulators.wearable import VirtualWearable
from wire import Summary, encode

START = 1_763_900_000.0


def summary_level(patients: int, seconds: float, window: float, outbox_dir: Path | None, batch: int = 5) -> float:
    """Wall seconds to generate (and encode, or store) every patient's windows."""
    roster = fleet_roster(patients, 1)
    t0 = time.perf_counter()
    for p in roster:
        stream = SummaryStream(p.scenario, window, seconds, START)
        windows = stream.windows_until(seconds)
        box = Outbox(outbox_dir / f"{p.device_id}.sqlite3") if outbox_dir else None
        for i in range(0, len(windows), batch):
            chunk = tuple(windows[i : i + batch])
            if box is None:
                encode(Summary(p.device_id, i, chunk))
            else:
                box.put(lambda seq: Summary(p.device_id, seq, chunk), created=chunk[-1].end)
        if box is not None:
            box.close()
    return time.perf_counter() - t0


def full_path(seconds: float, window: float, outbox_dir: Path) -> float:
    """Wall seconds for one patient's H10 stream through the real edge agent (no uplink)."""
    p = fleet_roster(1, 1)[0]
    t0 = time.perf_counter()
    w = VirtualWearable(p.scenario, start_time=START, duration_s=seconds, speed=0)
    with Outbox(outbox_dir / "agent.sqlite3") as box:
        agent = EdgeAgent(p.device_id, w, box, None, window_seconds=window, batch_windows=5)
        asyncio.run(agent.run())
    return time.perf_counter() - t0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--patients", type=int, default=200)
    parser.add_argument("--hours", type=float, default=1.0, help="simulated hours per patient")
    parser.add_argument("--window", type=float, default=60.0, help="summary window, s")
    parser.add_argument("--reference-minutes", type=float, default=10.0, help="simulated minutes of the full path")
    args = parser.parse_args()
    secs = args.hours * 3600
    print(f"python {platform.python_version()}; {args.patients} patients x {args.hours:g} h, {args.window:g} s windows")
    gen = args.patients * secs / summary_level(args.patients, secs, args.window, None)
    ref_s = args.reference_minutes * 60
    with tempfile.TemporaryDirectory() as tmp:
        stored = args.patients * secs / summary_level(args.patients, secs, args.window, Path(tmp))
        ref = ref_s / full_path(ref_s, args.window, Path(tmp))
    print(f"{'path':44} {'patients in real time':>22}")
    print(f"{'summary level: generate + encode':44} {gen:22,.0f}")
    print(f"{'summary level: generate + SQLite outbox':44} {stored:22,.0f}")
    print(f"{'reference: H10 bytes -> edge agent + outbox':44} {ref:22,.0f}")
    print(f"ratio summary level / full path: {gen / ref:,.0f} (encode), {stored / ref:,.0f} (outbox)")


if __name__ == "__main__":
    main()
