"""``pisces simulate``: simulated patients driving the real edge agent.

    pisces simulate list
    pisces simulate patient --scenario NAME --device ID [--speed X] [--duration S] [--mqtt-url URL]
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
from pathlib import Path


def configure(parser: argparse.ArgumentParser) -> None:
    """Add the ``patient`` and ``list`` subcommands to ``parser``."""
    sub = parser.add_subparsers(metavar="ACTION")
    parser.set_defaults(func=lambda args: (parser.print_help(), 2)[1])
    sub.add_parser("list", help="list the shipped scenarios").set_defaults(func=_list)
    p = sub.add_parser("patient", help="play a scenario through a real edge agent")
    p.add_argument("--scenario", required=True, help="scenario name (see `list`) or a JSON file")
    p.add_argument("--device", required=True, help="device id of the simulated phone")
    p.add_argument("--speed", type=float, default=1.0, help="simulated s per real s; 0: as fast as possible")
    p.add_argument("--duration", type=float, default=600.0, help="simulated seconds (default 600)")
    p.add_argument("--mqtt-url", default="mqtt://127.0.0.1:1883")
    p.add_argument("--outbox", help="outbox file (default: a fresh temporary file)")
    p.add_argument("--window-seconds", type=float, default=10.0)
    p.add_argument("--batch-windows", type=int, default=1)
    p.add_argument("--past", action="store_true", help="end the simulation now instead of starting it now")
    p.add_argument("--ground-truth", help="write the simulated beats, episodes and actions to this JSON file")
    p.set_defaults(func=_patient)


def _list(args: argparse.Namespace) -> int:
    from simulators.scenarios import list_scenarios, load_scenario

    for name in list_scenarios():
        print(f"{name:16s} {load_scenario(name).description}")
    return 0


def _patient(args: argparse.Namespace) -> int:
    from simulators.patient import run_patient
    from simulators.scenarios import load_scenario

    try:
        scenario = load_scenario(args.scenario)
    except ValueError as exc:
        print(f"pisces simulate: {exc}")
        return 2
    outbox = Path(args.outbox) if args.outbox else Path(tempfile.mkdtemp(prefix="pisces-sim-")) / "outbox.sqlite3"
    start = time.time() - (args.duration if args.past else 0.0)
    report = asyncio.run(
        run_patient(
            scenario, args.device, args.mqtt_url, outbox, start_time=start, duration_s=args.duration,
            speed=args.speed, window_seconds=args.window_seconds, batch_windows=args.batch_windows,
            ground_truth_path=args.ground_truth,
        )
    )
    print(report)
    return 0 if report.drained else 1
