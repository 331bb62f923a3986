"""``pisces edge``: run the phone agent, mark symptom periods, press panic, inspect the outbox.

    pisces edge run --device ID [--address AA:BB:.. | --simulate SCENARIO [--speed X] [--duration S]] [--app-port P]
    pisces edge mark start|stop --device ID [--tags a,b] [--severity N] [--note TEXT]
    pisces edge panic --device ID
    pisces edge status --device ID
    pisces edge scan [--device ID] [--timeout S]

Every subcommand takes the phone options (``--device``, ``--outbox``); only
``run`` takes the broker (``--mqtt-url``, ``--ca-file``, ``--allow-plain``)
and summary (``--window-seconds``, ``--batch-windows``) options, and each
``--help`` lists only what its subcommand takes. The device id and broker
may also come from ``PISCES_EDGE_DEVICE_ID`` and ``PISCES_EDGE_MQTT_URL``.
``mark`` and ``panic`` only write into the outbox: a running agent (another
process) sends them within a fraction of a second.
``run`` without ``--address`` or ``--simulate`` connects to the strap it last
connected to (remembered in the outbox file), and serves the patient app on
loopback (``--app-port``, 0 to leave it off) beside the agent.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import sys
import time
from collections.abc import Coroutine
from typing import TYPE_CHECKING, Any, TypeVar

from edge.settings import EdgeSettings, get_settings

if TYPE_CHECKING:
    from edge.agent import EdgeAgent
    from edge.outbox import Outbox
    from edge.sensors import SensorSource

T = TypeVar("T")


def configure(parser: argparse.ArgumentParser) -> None:
    """Add the ``run``, ``mark``, ``panic``, ``status`` and ``scan`` subcommands to ``parser``.

    Each subcommand takes (and its ``--help`` lists) only the option groups it
    uses: every one names the phone (device, outbox); only ``run`` talks to the
    broker and makes summaries.
    """
    sub = parser.add_subparsers(metavar="ACTION")

    def usage(_args: argparse.Namespace) -> int:
        parser.print_help()
        return 2

    parser.set_defaults(func=usage)
    phone, broker, summaries = _phone_options(), _broker_options(), _summary_options()
    run = sub.add_parser("run", parents=[phone, broker, summaries], help="run the agent on a strap or a simulated one")
    strap = run.add_argument_group("strap")
    source = strap.add_mutually_exclusive_group()
    source.add_argument("--address", help="BLE address of the strap (default: the strap paired last)")
    source.add_argument("--simulate", metavar="SCENARIO", help="use a virtual strap playing this scenario")
    strap.add_argument("--speed", type=float, default=1.0, help="simulation speed (0: as fast as possible)")
    strap.add_argument("--duration", type=float, default=3600.0, help="simulated seconds (default 3600)")
    strap.add_argument("--strap", choices=("h10", "hrs"), default="h10", help="simulated strap kind (default h10)")
    run.add_argument("--app-port", type=int, help="patient app port on loopback (default 8765; 0: no app)")
    run.set_defaults(func=_run)
    mark = sub.add_parser("mark", parents=[phone], help="mark the start or stop of a period of feeling unwell")
    mark.add_argument("action", choices=("start", "stop"), help="start a period, or stop the open one")
    mark.add_argument("--tags", default="", help="comma-separated symptom tags, e.g. palpitations,dizzy")
    mark.add_argument("--severity", type=int, choices=range(1, 6), metavar="1-5", help="how bad it feels (start)")
    mark.add_argument("--note", default="", help="a few words in the patient's own terms (start)")
    mark.set_defaults(func=_mark)
    sub.add_parser("panic", parents=[phone], help="press the panic button").set_defaults(func=_panic)
    sub.add_parser("status", parents=[phone], help="outbox counts").set_defaults(func=_status)
    scan = sub.add_parser("scan", parents=[phone], help="list BLE heart-rate straps nearby (the paired one first)")
    scan.add_argument("--timeout", type=float, default=5.0, help="seconds to listen (default 5)")
    scan.set_defaults(func=_scan)


def _phone_options() -> argparse.ArgumentParser:
    """Which phone: every subcommand (``mark``, ``panic``, ``status`` only write or read its outbox)."""
    p = argparse.ArgumentParser(add_help=False)
    g = p.add_argument_group("phone")
    g.add_argument("--device", help="device id (default: $PISCES_EDGE_DEVICE_ID)")
    g.add_argument("--outbox", help="outbox file (default: ~/.local/share/pisces/edge/<device>.sqlite3)")
    return p


def _broker_options() -> argparse.ArgumentParser:
    """The MQTT broker: ``run`` only (the others leave sending to the running agent)."""
    p = argparse.ArgumentParser(add_help=False)
    g = p.add_argument_group("broker")
    g.add_argument("--mqtt-url", help="broker URL (default: $PISCES_EDGE_MQTT_URL or mqtt://127.0.0.1:1883)")
    g.add_argument("--ca-file", help="PEM of the CA that signed the broker's certificate (implies TLS)")
    g.add_argument("--allow-plain", action="store_true", default=None,
                   help="allow plain mqtt:// to a broker on another host (refused by default)")  # fmt: skip
    return p


def _summary_options() -> argparse.ArgumentParser:
    """How summaries are made and batched: ``run`` only."""
    p = argparse.ArgumentParser(add_help=False)
    g = p.add_argument_group("summaries")
    g.add_argument("--window-seconds", type=float, help="summary window length in s")
    g.add_argument("--batch-windows", type=int, help="windows per summary message")
    return p


def _settings(args: argparse.Namespace) -> EdgeSettings:
    from pydantic import ValidationError

    try:
        ca_file = getattr(args, "ca_file", None)  # only `run` has the broker and summary options
        return get_settings(
            device_id=args.device, outbox_path=args.outbox, mqtt_url=getattr(args, "mqtt_url", None),
            window_seconds=getattr(args, "window_seconds", None), batch_windows=getattr(args, "batch_windows", None),
            mqtt_ca_file=ca_file, mqtt_tls=True if ca_file else None, app_port=getattr(args, "app_port", None),
            mqtt_allow_plain=getattr(args, "allow_plain", None),
        )  # fmt: skip
    except ValidationError as exc:
        raise SystemExit(f"pisces edge: bad settings: {exc.errors()[0]['loc']} {exc.errors()[0]['msg']}") from exc


def _outbox(settings: EdgeSettings) -> Outbox:
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
    from edge.doses import DOSE_BOOK_STATE
    from edge.reminders import DoseBook

    with _outbox(settings) as outbox:
        s = outbox.stats()
        book = outbox.get_state(DOSE_BOOK_STATE)
    pending = ", ".join(f"{k} {n}" for k, n in sorted(s.pending.items())) or "none"
    print(f"outbox {settings.outbox}\n  pending: {pending} ({s.pending_bytes} bytes)")
    print(f"  next seq {s.next_seq}, acked {s.acked}, dropped by the size bound {s.dropped}")
    try:
        open_doses = DoseBook.from_json(book).open_entries()
    except ValueError:
        open_doses = []
    shown = [f"{r.drug} {r.dose} planned {_local_time(r.planned)} ({r.state})" for r in open_doses]
    print(f"  dose reminders open: {', '.join(shown) or 'none'}")
    return 0


def _local_time(t: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M", time.localtime(t))


def _run(args: argparse.Namespace) -> int:
    settings = _settings(args)
    return asyncio.run(_run_agent(settings, args))


def _source(args: argparse.Namespace, outbox: Outbox) -> SensorSource:
    """The virtual strap, the strap named by ``--address``, or the one paired last."""
    from edge.agent import paired_strap, remember_strap
    from edge.ble import BleakSource

    if args.simulate:
        from simulators.scenarios import load_scenario
        from simulators.wearable import VirtualWearable

        return VirtualWearable(
            load_scenario(args.simulate), start_time=time.time(), duration_s=args.duration, speed=args.speed,
            strap=args.strap,
        )  # fmt: skip
    address = args.address or paired_strap(outbox)
    if address is None:
        raise SystemExit("pisces edge run: no strap paired yet; find it with `pisces edge scan`, then --address")
    return BleakSource(address, on_connected=lambda a: remember_strap(outbox, a))


async def _run_agent(settings: EdgeSettings, args: argparse.Namespace) -> int:
    from edge.agent import EdgeAgent
    from edge.uplink import PlainBrokerRefused, TlsAndLogin, Uplink
    from wire import BrokerAddress

    password = settings.mqtt_password.get_secret_value() if settings.mqtt_password else None
    login = TlsAndLogin(
        settings.mqtt_username, password, str(settings.mqtt_ca_file) if settings.mqtt_ca_file else None,
        settings.mqtt_tls, settings.mqtt_allow_plain,
    )  # fmt: skip
    outbox = _outbox(settings)
    try:
        uplink = Uplink(settings.device_id, BrokerAddress.parse(settings.mqtt_url), outbox, login=login)
    except PlainBrokerRefused as exc:
        outbox.close()
        raise SystemExit(f"pisces edge run: {exc}") from exc
    source = _source(args, outbox)
    agent = EdgeAgent(
        settings.device_id, source, outbox, uplink, window_seconds=settings.window_seconds,
        batch_windows=settings.batch_windows, strip_seconds=settings.strip_seconds,
        on_notify=lambda n: print(f"[{n.level.value}] {n.title} {n.body}", flush=True),
    )
    app = _app_server(agent, settings)
    try:
        report = await _serve_while(agent.run(), app)
        await agent.drain(10.0)
    except Exception as exc:  # noqa: BLE001 - report a BLE/broker failure on one line
        print(f"pisces edge run: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1
    finally:
        uplink.stop()
        outbox.close()
    print(f"done: {report.windows} windows, {report.summaries} summaries, {report.strips} strips, {report.counters}")
    return 0


def _app_server(agent: EdgeAgent, settings: EdgeSettings) -> Any:
    """The patient app's server (None when ``app_port`` is 0); prints where to open it."""
    if settings.app_port == 0:
        return None
    from edge.app import make_server

    server = make_server(agent, settings.app_host, settings.app_port)
    print(f"patient app: http://{settings.app_host}:{settings.app_port}/", flush=True)
    return server


async def _serve_app(server: Any) -> bool:
    """Serve until told to stop (True); a port already taken ends the app with a message (False)."""
    try:
        await server.serve()
    except (SystemExit, OSError) as exc:  # uvicorn exits when it cannot bind
        print(f"pisces edge run: the patient app could not start ({exc!r}); the agent goes on",
              file=sys.stderr, flush=True)  # fmt: skip
        return False
    return True


async def _serve_while(work: Coroutine[Any, Any, T], server: Any) -> T:
    """Run ``work`` with ``server`` beside it until the work ends or a signal stops the server.

    uvicorn takes SIGINT/SIGTERM while it serves; then the work is cancelled and
    :class:`KeyboardInterrupt` raised, as without the app.
    """
    if server is None:
        return await work
    task = asyncio.ensure_future(work)
    serving = asyncio.ensure_future(_serve_app(server))
    await asyncio.wait({task, serving}, return_when=asyncio.FIRST_COMPLETED)
    if task.done():
        server.should_exit = True
        await serving
        return task.result()
    if not serving.result():
        return await task
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
    raise KeyboardInterrupt


def _scan(args: argparse.Namespace) -> int:
    from edge.agent import paired_strap
    from edge.ble import scan, scan_lines

    paired = None
    if args.device or os.environ.get("PISCES_EDGE_DEVICE_ID"):
        with _outbox(_settings(args)) as outbox:
            paired = paired_strap(outbox)
    try:
        found = asyncio.run(scan(args.timeout))
    except Exception as exc:  # noqa: BLE001 - no adapter, no permission, no BlueZ: say so plainly
        print(f"pisces edge scan: BLE is not available here ({type(exc).__name__}: {exc})", file=sys.stderr)
        return 1
    print("\n".join(scan_lines(found, paired)))
    return 0
