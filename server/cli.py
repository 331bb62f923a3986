"""The ``pisces`` command: one entry point, a subcommand per part of the system.

    pisces demo                      the whole system on embedded defaults
    pisces server                    HTTP API + portal (+ one ingest worker)
    pisces ingest [--workers N]      ingest workers alone (N processes on a shared subscription)
    pisces db migrate                create or upgrade the schema
    pisces retention run [--dry-run] remove data older than each kind's retention limit
    pisces devices add|revoke ID     a device's broker credentials (Mosquitto password file)
    pisces broker init DIR           a Mosquitto configuration: TLS for phones, per-device auth, ACL
    pisces users add NAME            a clinician, admin or patient account
    pisces patients add              a patient and their device
    pisces patients export|erase ID  everything about a patient as one zip; erasure on request
    pisces weather import FILE       hourly weather (Open-Meteo JSON, CSV, simulator lines)
    pisces weather home ID LAT LON   a patient's home location (their weather without GPS)
    pisces edge ...                  the phone agent (run, mark, panic, status, scan)
    pisces simulate ...              simulated patients
"""

from __future__ import annotations

import argparse
import getpass
import os
import sys
from collections.abc import Callable, Sequence

Handler = Callable[[argparse.Namespace], int]


def main(argv: Sequence[str] | None = None) -> int:
    """Parse the command line and run the chosen subcommand; returns the exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    func: Handler | None = getattr(args, "func", None)
    if func is None:
        parser.print_help()
        return 2
    try:
        return func(args)
    except KeyboardInterrupt:
        return 130
    except CliError as exc:
        print(f"pisces: {exc}", file=sys.stderr)
        return 2


class CliError(Exception):
    """A usage or configuration problem, reported on one line without a traceback."""


def build_parser() -> argparse.ArgumentParser:
    """The full argument parser with every subcommand."""
    parser = argparse.ArgumentParser(prog="pisces", description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(metavar="COMMAND")
    _add_demo(sub)
    _add_server(sub)
    _add_ingest(sub)
    _add_db(sub)
    _add_retention(sub)
    _add_users(sub)
    _add_patients(sub)
    _add_devices(sub)
    _add_broker(sub)
    _add_weather(sub)
    _add_delegated(sub, "edge", "the phone agent: run, mark a symptom period, panic, status, scan", "edge.cli")
    _add_delegated(sub, "simulate", "simulated patients and wearables", "simulators.cli")
    return parser


def _add_demo(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser("demo", help="run the whole system with simulated patients")
    p.add_argument("--patients", type=int, default=3, help="simulated patients (default 3)")
    p.add_argument("--port", type=int, default=None, help="HTTP port (default: 8000, or a free one)")
    p.add_argument("--speed", type=float, default=1.0, help="simulation speed, 1 = real time")
    p.add_argument("--duration", type=float, default=None, help="stop after this many seconds")
    p.set_defaults(func=_run_demo)


def _run_demo(args: argparse.Namespace) -> int:
    from server.demo import DemoOptions, run_demo

    return run_demo(DemoOptions(patients=args.patients, port=args.port, speed=args.speed, duration=args.duration))


def _add_server(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser("server", help="serve the API and the clinician portal")
    p.add_argument("--host", default=None)
    p.add_argument("--port", type=int, default=None)
    p.add_argument("--no-ingest", action="store_true", help="do not run an ingest worker in this process")
    p.set_defaults(func=_run_server)


def _run_server(args: argparse.Namespace) -> int:
    import uvicorn

    from server.app import create_app

    settings = _settings()
    updates = {"ingest_in_server": settings.ingest_in_server and not args.no_ingest}
    if args.host:
        updates["http_host"] = args.host
    if args.port is not None:
        updates["http_port"] = args.port
    settings = settings.model_copy(update=updates)
    from server.app import GRACEFUL_SHUTDOWN_S

    uvicorn.run(
        create_app(settings), host=settings.http_host, port=settings.http_port, log_level="info",
        timeout_graceful_shutdown=GRACEFUL_SHUTDOWN_S,
    )
    return 0


def _add_ingest(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser("ingest", help="run ingest workers (MQTT -> PostgreSQL)")
    p.add_argument("--workers", type=int, default=None, help="worker processes (default: PISCES_INGEST_WORKERS or 1)")
    p.add_argument("--group", default=None, help="shared subscription group (default pisces-ingest)")
    p.add_argument("--metrics-port", type=int, default=None, help="/metrics of worker i on this port + i")
    p.set_defaults(func=_run_ingest)


def _run_ingest(args: argparse.Namespace) -> int:
    import logging

    from server.ingest import supervise

    settings = _settings()
    updates: dict[str, object] = {}
    if args.group:
        updates["mqtt_shared_group"] = args.group
    if args.metrics_port is not None:
        updates["metrics_port"] = args.metrics_port
    workers = args.workers or settings.ingest_workers
    if workers < 1:
        raise CliError("--workers must be at least 1")
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    supervise(settings.model_copy(update=updates), workers)
    return 0


def _add_db(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser("db", help="database administration")
    dbsub = p.add_subparsers(metavar="ACTION")
    m = dbsub.add_parser("migrate", help="create or upgrade the schema (idempotent)")
    m.add_argument(
        "--timescale", choices=("auto", "on", "off"), default="auto",
        help="TimescaleDB path: auto = when the server has the extension preloaded",
    )  # fmt: skip
    m.set_defaults(func=_run_migrate)


def _add_retention(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser("retention", help="retention per kind of data (PISCES_RETENTION_<KIND>_DAYS)")
    rsub = p.add_subparsers(metavar="ACTION")
    r = rsub.add_parser("run", help="remove what is older than each kind's limit now (recorded)")
    r.add_argument("--dry-run", action="store_true", help="only show what would go; change nothing")
    r.set_defaults(func=_run_retention)


def _run_retention(args: argparse.Namespace) -> int:
    from datetime import datetime, timezone

    import psycopg

    from server.retention import policy_from, run_retention
    from server.settings import get_settings

    policy = policy_from(get_settings())
    with psycopg.connect(_database_url(), autocommit=True) as conn:
        outcomes = run_retention(conn, policy, datetime.now(timezone.utc), dry_run=args.dry_run,
                                 by=f"cli:{getpass.getuser()}")  # fmt: skip
    verb = "would remove" if args.dry_run else "removed"
    for kind, days in policy.items():
        if days <= 0:
            print(f"{kind:13} keep forever")
    for o in outcomes:
        parts = [] if o.rows is None else [f"{o.rows} rows"]
        parts += [f"{len(o.dropped)} partitions/chunks ({', '.join(o.dropped)})"] if o.dropped else []
        what = o.skipped or f"{verb} {' and '.join(parts) or 'nothing'}"
        print(f"{o.kind:13} older than {o.cutoff:%Y-%m-%d %H:%M} UTC: {what}")
    failed = [o.kind for o in outcomes if o.failed]
    if failed:  # a cron job or a monitor must see that data past its limit is still kept
        print(f"retention: not done for {', '.join(failed)} (see above); exit status 1", file=sys.stderr)
        return 1
    return 0


def _run_migrate(args: argparse.Namespace) -> int:
    from server.store import migrate

    applied = migrate(_database_url(), {"auto": None, "on": True, "off": False}[args.timescale])
    print(f"applied migrations: {applied}" if applied else "schema is up to date")
    return 0


def _add_weather(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser("weather", help="hourly weather per place and patients' home locations")
    wsub = p.add_subparsers(metavar="ACTION")
    i = wsub.add_parser("import", help="import hourly weather; bad lines are kept aside and counted")
    i.add_argument("file", help="Open-Meteo hourly JSON, CSV, or `pisces simulate weather` output ('-': stdin)")
    i.add_argument("--lat", type=float, help="degrees; for simulator lines and CSV without a lat column")
    i.add_argument("--lon", type=float, help="degrees; for simulator lines and CSV without a lon column")
    i.set_defaults(func=_run_weather_import)
    h = wsub.add_parser("home", help="set a patient's home location")
    h.add_argument("patient_id", type=int)
    h.add_argument("lat", type=float)
    h.add_argument("lon", type=float)
    h.set_defaults(func=_run_weather_home)


def _run_weather_import(args: argparse.Namespace) -> int:
    from pathlib import Path

    import psycopg

    from server import weather

    try:
        text = sys.stdin.read() if args.file == "-" else Path(args.file).read_text(encoding="utf-8")
        result = weather.parse_weather(text, args.file, args.lat, args.lon)
    except (OSError, UnicodeDecodeError, weather.WeatherError) as exc:
        raise CliError(f"weather import: {exc}") from exc
    with psycopg.connect(_database_url()) as conn:
        stored, rejected = weather.store_weather(conn, result)
    print(f"stored {stored} hours, kept {rejected} rejected lines aside (table weather_rejects)")
    for r in result.rejected[:10]:
        print(f"  line {r.line}: {r.reason}")
    return 0 if stored or not rejected else 1


def _run_weather_home(args: argparse.Namespace) -> int:
    import psycopg

    from server import weather

    with psycopg.connect(_database_url()) as conn:
        if conn.execute("SELECT 1 FROM patients WHERE id = %s", (args.patient_id,)).fetchone() is None:
            raise CliError(f"weather home: no patient {args.patient_id}")
        try:
            weather.set_home(conn, args.patient_id, args.lat, args.lon)
        except ValueError as exc:
            raise CliError(f"weather home: {exc}") from exc
    print(f"patient {args.patient_id}: home at {args.lat}, {args.lon}")
    return 0


def _add_users(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser("users", help="accounts of clinicians, admins and patients")
    usub = p.add_subparsers(metavar="ACTION")
    a = usub.add_parser("add", help="add an account (password from PISCES_NEW_PASSWORD or a prompt)")
    a.add_argument("username")
    a.add_argument("--role", choices=("clinician", "admin", "patient"), default="clinician",
                   help="patient: the patient's own account (give --patient once); caregivers join by invitation")
    a.add_argument("--patient", type=int, action="append", default=[],
                   help="clinician/admin: assign this patient id; patient: the patient this account is")
    a.set_defaults(func=_run_users_add)


def _run_users_add(args: argparse.Namespace) -> int:
    import psycopg

    from server.store import StoreError, add_user, assign_patient, link_patient_account

    if args.role == "patient" and len(args.patient) != 1:
        raise CliError("a patient account is one patient's: give --patient ID once")
    password = os.environ.get("PISCES_NEW_PASSWORD") or getpass.getpass(f"password for {args.username}: ")
    if len(password) < 8:
        raise CliError("a password needs at least 8 characters")
    with psycopg.connect(_database_url()) as conn:
        user_id = add_user(conn, args.username, password, args.role)
        try:
            if args.role == "patient":
                link_patient_account(conn, user_id, args.patient[0])
            for patient_id in [] if args.role == "patient" else args.patient:
                assign_patient(conn, args.username, patient_id)
        except StoreError as exc:
            raise CliError(str(exc)) from exc
    print(f"user {args.username} ({args.role}) has id {user_id}")
    return 0


def _add_patients(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser("patients", help="patients and their devices")
    psub = p.add_subparsers(metavar="ACTION")
    a = psub.add_parser("add", help="register a patient and their phone's device id")
    a.add_argument("--name", required=True)
    a.add_argument("--device", required=True, help="device id, 1-64 of A-Z a-z 0-9 _ -")
    a.add_argument("--clinician", action="append", default=[], help="assign to this clinician")
    a.set_defaults(func=_run_patients_add)
    e = _by_admin(psub, "export", "everything stored about a patient as one zip (CSV, JSON, FHIR, WFDB)")
    e.add_argument("--reason", default=None, help="why (recorded in the audit log and the manifest)")
    e.add_argument("--out", default=None, help="file to write (default: pisces-patient-<id>-<date>.zip)")
    e.set_defaults(func=_run_patients_export)
    r = _by_admin(psub, "erase", "erase a patient's data on request (recorded; cannot be undone)")
    r.add_argument("--reason", required=True, help="why (recorded)")
    r.add_argument("--confirm-device", required=True, help="the patient's device id, as a confirmation")
    r.set_defaults(func=_run_patients_erase)


def _by_admin(
    psub: argparse._SubParsersAction, name: str, help_text: str  # type: ignore[type-arg]
) -> argparse.ArgumentParser:
    """A ``patients`` action on one patient, done in the name of an admin account (``--by``)."""
    p: argparse.ArgumentParser = psub.add_parser(name, help=help_text)
    p.add_argument("patient_id", type=int)
    p.add_argument("--by", required=True, help="the admin account responsible (recorded in the audit log)")
    return p


def _run_patients_add(args: argparse.Namespace) -> int:
    import psycopg

    from server.store import add_patient, assign_patient
    from wire.topics import validate_device_id

    try:
        validate_device_id(args.device)
    except ValueError as exc:
        raise CliError(str(exc)) from exc
    from server.store import StoreError, user_id

    with psycopg.connect(_database_url()) as conn:
        enrolling = user_id(conn, args.clinician[0]) if args.clinician else None
        patient_id = add_patient(conn, args.name, args.device, enrolled_by=enrolling)  # consent to monitoring
        try:
            for username in args.clinician:
                assign_patient(conn, username, patient_id)
        except StoreError as exc:
            raise CliError(str(exc)) from exc
    print(f"patient {args.name!r} has id {patient_id}, device {args.device}")
    return 0


def _operator(conn, username: str):  # type: ignore[no-untyped-def]
    """The admin account an operator acts as (CliError otherwise)."""
    from server.store import User

    row = conn.execute("SELECT id, username, role FROM users WHERE username = %s", (username,)).fetchone()
    if row is None or row[2] != "admin":
        raise CliError(f"--by: {username!r} is not an admin account")
    return User(row[0], row[1], row[2])


def _run_patients_export(args: argparse.Namespace) -> int:
    from dataclasses import replace
    from datetime import datetime, timezone
    from pathlib import Path

    import psycopg

    from server import data_export, queries, store
    from server.settings import get_settings

    quality, now = get_settings().min_quality, datetime.now(timezone.utc)
    out = Path(args.out or data_export.archive_name(args.patient_id, now))
    with psycopg.connect(_database_url(), autocommit=True) as conn:
        user = replace(_operator(conn, args.by), reason=args.reason)
        if queries.patient_by_id(conn, args.patient_id) is None:  # before the audit row, which names the patient
            raise CliError(f"patients export: no patient {args.patient_id}")
        store.audit(conn, user, "export:all", [args.patient_id], {"format": data_export.FORMAT, "via": "cli"})
        # A whole health record: readable by its owner only from the first byte, and no half archive left.
        fd = os.open(out, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            with os.fdopen(fd, "wb") as f:
                for piece in data_export.export_archive(conn, args.patient_id, user.username, args.reason, now,
                                                        quality):  # fmt: skip
                    f.write(piece)
        except BaseException:
            out.unlink(missing_ok=True)
            raise
        os.chmod(out, 0o600)  # an existing file keeps its mode through O_CREAT
    print(f"patient {args.patient_id}: wrote {out} ({out.stat().st_size} bytes)")
    return 0


def _run_patients_erase(args: argparse.Namespace) -> int:
    import json

    import psycopg

    from server import erasure
    from server.settings import get_settings

    settings = get_settings()
    with psycopg.connect(_database_url(), autocommit=True) as conn:
        user = _operator(conn, args.by)
        try:
            done = erasure.erase_patient(conn, args.patient_id, user, args.reason, args.confirm_device,
                                         settings.erasure_keep, erasure.device_cleanup(settings))  # fmt: skip
        except erasure.ErasureError as exc:
            raise CliError(f"patients erase: {exc}") from exc
    print(f"patient {args.patient_id}: erased (record {done.id}); rows: {json.dumps(done.erased)}")
    print(f"kept: {', '.join(done.kept)}; sessions closed: {done.sessions_closed}; device: {json.dumps(done.device)}")
    if done.device.get("credentials") == "revoked":
        print(_RELOAD_HINT, file=sys.stderr)
    return 0


def _add_devices(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser("devices", help="devices' broker credentials (Mosquitto password file)")
    p.add_argument("--password-file", default=None, help="default: PISCES_BROKER_PASSWORD_FILE")
    dsub = p.add_subparsers(metavar="ACTION")
    a = dsub.add_parser("add", help="create or replace a device's credentials; prints the password once")
    a.add_argument("device")
    a.set_defaults(func=_run_devices_add)
    r = dsub.add_parser("revoke", help="remove a device's credentials")
    r.add_argument("device")
    r.set_defaults(func=_run_devices_revoke)
    s = dsub.add_parser("server-account", help="create or replace the server's account; prints the password once")
    s.set_defaults(func=_run_devices_server)


def _password_file(args: argparse.Namespace):  # type: ignore[no-untyped-def]
    from pathlib import Path

    path = args.password_file or os.environ.get("PISCES_BROKER_PASSWORD_FILE")
    if not path:
        raise CliError("give --password-file or set PISCES_BROKER_PASSWORD_FILE")
    return Path(path)


_RELOAD_HINT = "reload the broker to apply (Mosquitto: send it SIGHUP)"


def _run_devices_add(args: argparse.Namespace) -> int:
    from server.credentials import CredentialsError, add_device

    try:
        password = add_device(_password_file(args), args.device)
    except CredentialsError as exc:
        raise CliError(str(exc)) from exc
    print(f"device {args.device}: MQTT username {args.device}, password {password}")
    print(_RELOAD_HINT, file=sys.stderr)
    return 0


def _run_devices_revoke(args: argparse.Namespace) -> int:
    from server.credentials import revoke

    if not revoke(_password_file(args), args.device):
        raise CliError(f"no credentials for {args.device!r}")
    print(f"device {args.device}: credentials revoked")
    print(_RELOAD_HINT, file=sys.stderr)
    return 0


def _run_devices_server(args: argparse.Namespace) -> int:
    from server.credentials import SERVER_USERNAME, set_server_account

    password = set_server_account(_password_file(args))
    print(f"server account: MQTT username {SERVER_USERNAME}, password {password}")
    print("set PISCES_MQTT_USERNAME and PISCES_MQTT_PASSWORD of the server to these; " + _RELOAD_HINT, file=sys.stderr)
    return 0


def _add_broker(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser("broker", help="the MQTT broker's configuration")
    bsub = p.add_subparsers(metavar="ACTION")
    i = bsub.add_parser(
        "init", help="write mosquitto.conf, acl, an empty passwd and TLS certificates (CA + broker) into DIR"
    )
    i.add_argument("dir")
    i.add_argument("--port", type=int, default=8883, help="TLS port for phones (default 8883)")
    i.add_argument("--host", default="0.0.0.0", help="TLS listen address (default 0.0.0.0: phones on the network)")
    i.add_argument(
        "--local-port", type=int, default=1883,
        help="plain listener on 127.0.0.1 for the server's own workers (default 1883; 0: none)",
    )  # fmt: skip
    i.add_argument(
        "--name", action="append", default=None,
        help="host name or IP address phones use for the broker (repeat; default: this host's names and loopback)",
    )  # fmt: skip
    i.add_argument("--ca-cert", help="sign the broker's certificate with this CA (PEM) instead of a new one")
    i.add_argument("--ca-key", help="the key of --ca-cert (PEM, EC)")
    i.add_argument("--cert", help="use this server certificate (PEM chain) instead of issuing one")
    i.add_argument("--key", help="the key of --cert")
    i.add_argument("--run-as", default="mosquitto", help="user Mosquitto switches to when started as root")
    i.set_defaults(func=_run_broker_init)


def _run_broker_init(args: argparse.Namespace) -> int:
    from pathlib import Path

    from server.broker.certificates import CertificateError
    from server.broker.config import BrokerOptions, OwnTls, init_broker

    def path(value: str | None) -> Path | None:
        return Path(value) if value else None

    options = BrokerOptions(args.port, args.host, args.local_port or None, run_as=args.run_as)
    own = OwnTls(path(args.ca_cert), path(args.ca_key), path(args.cert), path(args.key))
    try:
        result = init_broker(Path(args.dir), options, args.name, own)
    except (CertificateError, ValueError) as exc:
        raise CliError(f"broker init: {exc}") from exc
    print(f"wrote {result.conf}; start the broker with: mosquitto -c {result.conf}")
    print(f"TLS on {args.host}:{args.port} with {result.tls.cert}" + (" (new)" if result.issued else " (kept)"))
    if result.tls.ca is not None:
        print(f"give phones the CA file {result.tls.ca}: pisces edge run --mqtt-url mqtts://HOST:{args.port} "
              f"--ca-file ca.crt")  # fmt: skip
    if options.local_port is not None:
        print(f"the server on this host: PISCES_MQTT_URL=mqtt://127.0.0.1:{options.local_port} (loopback, plain)")
    return 0


def _add_delegated(sub: argparse._SubParsersAction, name: str, help_text: str, module: str) -> None:  # type: ignore[type-arg]
    import importlib

    p = sub.add_parser(name, help=help_text)
    importlib.import_module(module).configure(p)


def _settings():  # type: ignore[no-untyped-def]
    from pydantic import ValidationError

    from server.settings import get_settings

    try:
        settings = get_settings()
    except ValidationError as exc:
        raise CliError(f"bad configuration: {exc}") from exc
    if settings.database_url is None:
        raise CliError("set PISCES_DATABASE_URL (or run `pisces demo`, which starts its own database)")
    if settings.mqtt_url is None:
        raise CliError("set PISCES_MQTT_URL (or run `pisces demo`, which starts its own broker)")
    return settings


def _database_url() -> str:
    url = os.environ.get("PISCES_DATABASE_URL")
    if not url:
        raise CliError("set PISCES_DATABASE_URL to the PostgreSQL database to use")
    return url


if __name__ == "__main__":
    sys.exit(main())
