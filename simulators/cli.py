"""``pisces simulate``: simulated patients driving the real edge agent.

    pisces simulate list
    pisces simulate patient --scenario NAME --device ID [--speed X] [--duration S] [--mqtt-url URL]
    pisces simulate fleet --patients N [--mode agent|summary] [--seed S] [--duration S] [--speed X]
    pisces simulate record --scenario NAME --duration S --out DIR [--fs HZ]   (ECG, respiration, truth)
    pisces simulate weather --lat DEG --lon DEG [--hours H] [--start EPOCH_S]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import tempfile
import time
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from simulators.scenarios import Scenario


def configure(parser: argparse.ArgumentParser) -> None:
    """Add the ``list``, ``patient``, ``fleet``, ``record`` and ``weather`` subcommands to ``parser``."""
    sub = parser.add_subparsers(metavar="ACTION")
    parser.set_defaults(func=lambda args: _usage(parser))
    sub.add_parser("list", help="list the shipped scenarios and profiles").set_defaults(func=_list)
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
    p.add_argument("--strap", choices=("h10", "hrs"), default="h10", help="Polar H10 or a plain HR strap")
    p.set_defaults(func=_patient)
    _configure_fleet(sub.add_parser("fleet", help="many patients through the real edge code, for load"))
    r = sub.add_parser("record", help="write a scenario's ECG, respiration and ground truth to files")
    r.add_argument("--scenario", required=True)
    r.add_argument("--duration", type=float, default=300.0, help="simulated seconds (default 300)")
    r.add_argument("--fs", type=float, default=250.0, help="ECG sampling rate, Hz (default 250)")
    r.add_argument("--start", type=float, default=0.0, help="s since epoch of the first sample")
    r.add_argument("--out", required=True, help="directory for ecg.csv and truth.json")
    r.set_defaults(func=_record)
    w = sub.add_parser("weather", help="print an hourly weather series for a place as JSON lines")
    w.add_argument("--lat", type=float, required=True)
    w.add_argument("--lon", type=float, required=True)
    w.add_argument("--hours", type=int, default=24)
    w.add_argument("--start", type=float, default=None, help="s since epoch (default now)")
    w.add_argument("--seed", type=int, default=0)
    w.set_defaults(func=_weather)


def _configure_fleet(f: argparse.ArgumentParser) -> None:
    f.add_argument("--patients", type=int, required=True, help="how many patients")
    f.add_argument("--mode", choices=("agent", "summary"), default="summary",
                   help="agent: full simulation through the real edge agent; summary: windows through the uplink")
    f.add_argument("--seed", type=int, default=1)
    f.add_argument("--duration", type=float, default=300.0, help="simulated seconds (default 300)")
    f.add_argument("--speed", type=float, default=0.0, help="simulated s per real s; 0: as fast as possible")
    f.add_argument("--past", action="store_true", help="end the simulation now instead of starting it now")
    f.add_argument("--mqtt-url", default="mqtt://127.0.0.1:1883")
    f.add_argument("--window-seconds", type=float, default=60.0)
    f.add_argument("--batch-windows", type=int, default=5)
    f.add_argument("--scenarios", default=None, help="comma-separated scenario names to draw from")
    f.add_argument("--device-prefix", default="sim")
    f.add_argument("--outbox-dir", help="directory for the outboxes (default: a fresh temporary one)")
    f.add_argument("--ground-truth-dir", help="write each patient's ground truth JSON here")
    f.add_argument("--drain-timeout", type=float, default=60.0, help="real s to wait for acks at the end (summary)")
    f.set_defaults(func=_fleet)


def _usage(parser: argparse.ArgumentParser) -> int:
    parser.print_help()
    return 2


def _list(args: argparse.Namespace) -> int:
    from simulators.scenarios import list_scenarios, load_scenario

    from simulators.profiles import list_profiles, load_profile

    for name in list_scenarios():
        print(f"{name:16s} {load_scenario(name).description}")
    print("\nprofiles:")
    for name in list_profiles():
        p = load_profile(name)
        print(f"{name:16s} {p.age} y, {p.sex}, resting {p.resting_hr:g} bpm, fitness {p.fitness:g}, {p.condition}")
    return 0


def _scenario(name: str) -> Scenario | None:
    """The scenario called ``name``, or None after saying why not."""
    from simulators.scenarios import load_scenario

    try:
        return load_scenario(name)
    except ValueError as exc:
        print(f"pisces simulate: {exc}")
        return None


def _patient(args: argparse.Namespace) -> int:
    from simulators.patient import run_patient

    scenario = _scenario(args.scenario)
    if scenario is None:
        return 2
    outbox = Path(args.outbox) if args.outbox else Path(tempfile.mkdtemp(prefix="pisces-sim-")) / "outbox.sqlite3"
    start = time.time() - (args.duration if args.past else 0.0)
    report = asyncio.run(
        run_patient(
            scenario, args.device, args.mqtt_url, outbox, start_time=start, duration_s=args.duration,
            speed=args.speed, window_seconds=args.window_seconds, batch_windows=args.batch_windows,
            ground_truth_path=args.ground_truth, strap=args.strap,
        )
    )
    print(report)
    return 0 if report.drained else 1


def _fleet(args: argparse.Namespace) -> int:
    from simulators.fleet import DEFAULT_SCENARIOS, fleet_roster, run_agent_fleet, run_summary_fleet

    try:
        names = tuple(args.scenarios.split(",")) if args.scenarios else DEFAULT_SCENARIOS
        patients = fleet_roster(args.patients, args.seed, scenarios=names, device_prefix=args.device_prefix)
    except ValueError as exc:
        print(f"pisces simulate fleet: {exc}")
        return 2
    outbox_dir = Path(args.outbox_dir or tempfile.mkdtemp(prefix="pisces-fleet-"))
    outbox_dir.mkdir(parents=True, exist_ok=True)
    start = time.time() - (args.duration if args.past else 0.0)
    common = dict(start_time=start, duration_s=args.duration, speed=args.speed,
                  window_seconds=args.window_seconds, batch_windows=args.batch_windows,
                  truth_dir=Path(args.ground_truth_dir) if args.ground_truth_dir else None)
    if args.mode == "agent":
        report = asyncio.run(run_agent_fleet(patients, args.mqtt_url, outbox_dir, **common))
    else:
        report = run_summary_fleet(
            patients, args.mqtt_url, outbox_dir, drain_timeout_s=args.drain_timeout, **common
        )
    print(f"patients {report.patients}  windows {report.windows}  messages {report.messages}  "
          f"published {report.published}  acked {report.acked}  pending {report.pending}")
    return 0 if report.drained else 1


def _record(args: argparse.Namespace) -> int:
    import numpy as np

    from simulators.body import SimulatedBody
    from simulators.truth import ground_truth, write_ground_truth

    scenario = _scenario(args.scenario)
    if scenario is None:
        return 2
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    body = SimulatedBody(scenario, ecg_fs=args.fs)
    n = int(round(args.duration * args.fs))
    chunk = int(round(10 * args.fs))
    with (out / "ecg.csv").open("w") as f:
        f.write("time_s,ecg_mv,resp_band\n")
        for i in range(0, n, chunk):
            m = min(chunk, n - i)
            t = i / args.fs + np.arange(m) / args.fs
            ecg, resp = body.ecg(i / args.fs, m), body.resp.band(t)
            f.writelines(f"{args.start + a:.4f},{b:.4f},{c:.4f}\n" for a, b, c in zip(t, ecg, resp))
    truth = ground_truth(scenario, body.beats_until(args.duration), args.start, args.duration, strap="lead")
    write_ground_truth(truth, out / "truth.json")
    print(f"wrote {out / 'ecg.csv'} ({n} samples at {args.fs:g} Hz) and {out / 'truth.json'}")
    return 0


def _weather(args: argparse.Namespace) -> int:
    from simulators.weather import weather_hourly

    start = time.time() if args.start is None else args.start
    try:
        hours = weather_hourly(args.lat, args.lon, start, args.hours, args.seed)
    except ValueError as exc:
        print(f"pisces simulate weather: {exc}")
        return 2
    for h in hours:
        print(json.dumps(asdict(h)))
    return 0
