"""``pisces edge``: run the phone agent, mark symptom periods, press panic, inspect the outbox.

    pisces edge run --device ID (--address AA:BB:.. | --simulate SCENARIO [--speed X] [--duration S])
    pisces edge mark start|stop --device ID [--tags a,b] [--severity N] [--note TEXT]
    pisces edge panic --device ID
    pisces edge status --device ID
    pisces edge scan

The device id and broker may also come from ``PISCES_EDGE_DEVICE_ID`` and
``PISCES_EDGE_MQTT_URL``. ``mark`` and ``panic`` only write into the outbox:
a running agent (another process) sends them within a fraction of a second.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time

from edge.settings import EdgeSettings, get_settings


def configure(parser: argparse.ArgumentParser) -> None:
    """Add the ``run``, ``mark``, ``panic``, ``status`` and ``scan`` subcommands to ``parser``."""
    sub = parser.add_subparsers(metavar="ACTION")
    parser.set_defaults(func=lambda args: (parser.print_help(), 2)[1])
    run = _with_common(sub.add_parser("run", help="run the agent on a strap or a simulated one"))
    source = run.add_mutually_exclusive_group(required=True)
    source.add_argument("--address", help="BLE address of the strap")
    source.add_argument("--simulate", metavar="SCENARIO", help="use a virtual strap playing this scenario")
    run.add_argument("--speed", type=float, default=1.0, help="simulation speed (0: as fast as possible)")
    run.add_argument("--duration", type=float, default=3600.0, help="simulated seconds (default 3600)")
    run.set_defaults(func=_run)
    mark = _with_common(sub.add_parser("mark", help="mark the start or stop of a period of feeling unwell"))
    mark.add_argument("action", choices=("start", "stop"))
    mark.add_argument("--tags", default="", help="comma-separated symptom tags, e.g. palpitations,dizzy")
    mark.add_argument("--severity", type=int, choices=range(1, 6), metavar="1-5")
    mark.add_argument("--note", default="")
    mark.set_defaults(func=_mark)
    _with_common(sub.add_parser("panic", help="press the panic button")).set_defaults(func=_panic)
    _with_common(sub.add_parser("status", help="outbox counts")).set_defaults(func=_status)
    scan = sub.add_parser("scan", help="list BLE heart-rate straps nearby")
    scan.add_argument("--timeout", type=float, default=5.0)
    scan.set_defaults(func=_scan)


def _with_common(p: argparse.ArgumentParser) -> argparse.ArgumentParser:
    p.add_argument("--device", help="device id (default: $PISCES_EDGE_DEVICE_ID)")
    p.add_argument("--mqtt-url", help="broker URL (default: $PISCES_EDGE_MQTT_URL or mqtt://127.0.0.1:1883)")
    p.add_argument("--outbox", help="outbox file (default: ~/.local/share/pisces/edge/<device>.sqlite3)")
    p.add_argument("--window-seconds", type=float, help="summary window length in s")
    p.add_argument("--batch-windows", type=int, help="windows per summary message")
    return p


def _settings(args: argparse.Namespace) -> EdgeSettings:
    from pydantic import ValidationError

    try:
        return get_settings(
            device_id=args.device, mqtt_url=args.mqtt_url, outbox_path=args.outbox,
            window_seconds=args.window_seconds, batch_windows=args.batch_windows,
        )
    except ValidationError as exc:
        raise SystemExit(f"pisces edge: bad settings: {exc.errors()[0]['loc']} {exc.errors()[0]['msg']}") from exc


def _outbox(settings: EdgeSettings):  # type: ignore[no-untyped-def]
    from edge.outbox import Outbox

    return Outbox(settings.outbox, max_bytes=settings.outbox_max_bytes)


def _mark(args: argparse.Namespace) -> int:
    from edge.agent import mark_symptom

    settings = _settings(args)
    tags = tuple(t.strip() for t in args.tags.split(",") if t.strip())
    with _outbox(settings) as outbox:
        event = mark_symptom(outbox, settings.device_id, args.action, None, tags, args.severity, args.note)
    print(f"symptom {args.action} recorded (period {event.period}, seq {event.seq})")
    return 0


def _panic(args: argparse.Namespace) -> int:
    from edge.agent import press_panic

    settings = _settings(args)
    with _outbox(settings) as outbox:
        event = press_panic(outbox, settings.device_id)
    print(f"panic recorded (seq {event.seq}); it is sent as soon as the agent is connected")
    return 0


def _status(args: argparse.Namespace) -> int:
    settings = _settings(args)
    with _outbox(settings) as outbox:
        s = outbox.stats()
    pending = ", ".join(f"{k} {n}" for k, n in sorted(s.pending.items())) or "none"
    print(f"outbox {settings.outbox}\n  pending: {pending} ({s.pending_bytes} bytes)")
    print(f"  next seq {s.next_seq}, acked {s.acked}, dropped by the size bound {s.dropped}")
    return 0


def _run(args: argparse.Namespace) -> int:
    settings = _settings(args)
    return asyncio.run(_run_agent(settings, args))


async def _run_agent(settings: EdgeSettings, args: argparse.Namespace) -> int:
    from edge.agent import EdgeAgent
    from edge.ble import BleakSource
    from edge.sensors import SensorSource
    from edge.uplink import Uplink
    from wire import BrokerAddress

    source: SensorSource
    if args.simulate:
        from simulators.scenarios import load_scenario
        from simulators.wearable import VirtualWearable

        source = VirtualWearable(
            load_scenario(args.simulate), start_time=time.time(), duration_s=args.duration, speed=args.speed
        )
    else:
        source = BleakSource(args.address)
    outbox = _outbox(settings)
    password = settings.mqtt_password.get_secret_value() if settings.mqtt_password else None
    uplink = Uplink(
        settings.device_id, BrokerAddress.parse(settings.mqtt_url), outbox,
        username=settings.mqtt_username, password=password,
    )
    agent = EdgeAgent(
        settings.device_id, source, outbox, uplink, window_seconds=settings.window_seconds,
        batch_windows=settings.batch_windows, strip_seconds=settings.strip_seconds,
        on_notify=lambda n: print(f"[{n.level.value}] {n.title} {n.body}", flush=True),
    )
    try:
        report = await agent.run()
        await agent.drain(10.0)
    except Exception as exc:  # noqa: BLE001 - report a BLE/broker failure on one line
        print(f"pisces edge run: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1
    finally:
        uplink.stop()
        outbox.close()
    print(f"done: {report.windows} windows, {report.summaries} summaries, {report.strips} strips, {report.counters}")
    return 0


def _scan(args: argparse.Namespace) -> int:
    from edge.ble import scan

    try:
        found = asyncio.run(scan(args.timeout))
    except Exception as exc:  # noqa: BLE001 - no adapter, no permission, no BlueZ: say so plainly
        print(f"pisces edge scan: BLE is not available here ({type(exc).__name__}: {exc})", file=sys.stderr)
        return 1
    for address, name in found:
        print(f"{address}  {name}")
    if not found:
        print("no heart-rate straps found")
    return 0
