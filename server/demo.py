"""``pisces demo``: the whole system on one machine, with nothing installed beforehand.

Starts (or uses, when ``PISCES_DATABASE_URL`` / ``PISCES_MQTT_URL`` are set)
PostgreSQL and an MQTT broker, migrates the schema, registers a demo clinician
and a few patients, serves the API and the clinician portal with an ingest
worker, and runs simulated patients through the real edge agent. One patient
has a scripted episode that crosses the red heart-rate limit within about two
minutes; the second takes medication (the ``medication`` scenario: its plan is
recorded for the patient, pushed to the phone, and the simulated patient
answers the reminders at the plan's times). Progress is read back through the
HTTP API, as a client would.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import secrets
import tempfile
import time
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg

from server.embedded import embedded_broker, embedded_postgres, free_port
from server.settings import ServerSettings
from wire.medication import MedicationPlan

DEMO_NAMES = ("Ana Novak", "Marko Kranjc", "Eva Zupan", "Luka Horvat", "Nina Kos", "Jan Vidmar")
DEMO_SCENARIOS = ("demo_red", "medication")  # the first patients' scenarios; the rest play "baseline"
DEFAULT_PORT = 8000
DEMO_WINDOW_SECONDS = 10.0
DEFAULT_SPAN_S = 24 * 3600.0
PROGRESS_EVERY_S = 5.0


@dataclass(frozen=True)
class DemoOptions:
    """What the user asked of the demo."""

    patients: int = 3
    port: int | None = None
    speed: float = 1.0
    duration: float | None = None  # wall-clock seconds; None runs until Ctrl-C


@dataclass(frozen=True)
class DemoPatient:
    """A registered demo patient and the scenario their simulator plays."""

    patient_id: int
    name: str
    device_id: str
    scenario: str
    plan: MedicationPlan | None = None  # the medication plan in force, as recorded for the patient


def run_demo(options: DemoOptions) -> int:
    """Run the demo until Ctrl-C or ``options.duration``; returns the exit status."""
    base = ServerSettings(mode="demo")
    with contextlib.ExitStack() as stack:
        db_url = base.database_url or _start(stack, "PostgreSQL (embedded)", embedded_postgres())
        broker = None if base.mqtt_url else _start(stack, "MQTT broker (embedded)", embedded_broker())
        mqtt_url = base.mqtt_url or broker.url
        # MQTT 5 (shared subscriptions, session expiry) unless the fallback broker only speaks 3.1.1
        protocol = "3.1.1" if broker is not None and broker.engine == "amqtt" else "5"
        settings = base.model_copy(
            update={
                "database_url": db_url,
                "mqtt_url": mqtt_url,
                "mqtt_protocol": protocol,
                "http_port": _choose_port(options.port, base.http_host),
                "alert_hold_seconds": min(base.alert_hold_seconds, 30.0),
            }
        )
        from server.store import migrate

        migrate(db_url)
        username, password = _seed_clinician(db_url)
        patients = _seed_patients(db_url, username, options.patients)
        own = _seed_patient_account(db_url, patients[0])
        outbox_dir = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="pisces-demo-")))
        asyncio.run(_serve(settings, patients, options, (username, password), outbox_dir, own))
    return 0


def _start(stack: contextlib.ExitStack, what: str, cm: Any) -> Any:
    print(f"starting {what} ...", flush=True)
    return stack.enter_context(cm)


def _choose_port(requested: int | None, host: str) -> int:
    """The asked-for port; 0 means any free one; None means 8000, or a free one if it is taken."""
    if requested:
        return requested
    if requested == 0:
        return free_port(host)
    import socket

    with socket.socket() as s:
        try:
            s.bind((host, DEFAULT_PORT))
        except OSError:
            return free_port(host)
    return DEFAULT_PORT


def _seed_clinician(db_url: str) -> tuple[str, str]:
    """Create a clinician account for this demo run, with a fresh random password."""
    from server.store import add_user

    password = secrets.token_urlsafe(9)
    with psycopg.connect(db_url) as conn:
        for username in ("clinician", f"clinician-{secrets.token_hex(3)}"):
            try:
                with conn.transaction():
                    add_user(conn, username, password, "clinician")
                return username, password
            except psycopg.errors.UniqueViolation:
                continue
    raise RuntimeError("could not create a demo clinician")


def _seed_patient_account(db_url: str, patient: DemoPatient) -> tuple[str, str] | None:
    """Give the first demo patient an account of their own (their page ``/me``), with a fresh random
    password; None when an earlier run on this database already did (its password was shown then)."""
    from server.store import add_user, has_account, link_patient_account

    password = secrets.token_urlsafe(9)
    with psycopg.connect(db_url) as conn:
        if has_account(conn, patient.patient_id):
            return None
        for username in ("patient", f"patient-{secrets.token_hex(3)}"):
            try:
                with conn.transaction():
                    user_id = add_user(conn, username, password, "patient")
                    link_patient_account(conn, user_id, patient.patient_id)
                return username, password
            except psycopg.errors.UniqueViolation:
                continue
    raise RuntimeError("could not create the demo patient's account")


def _seed_patients(db_url: str, username: str, count: int) -> list[DemoPatient]:
    """Register ``count`` demo patients (reusing earlier ones) and assign them to the clinician."""
    from server.records import device_patient
    from server.store import add_patient, assign_patient

    patients = []
    with psycopg.connect(db_url) as conn:
        for i in range(count):
            device = f"demo-{i + 1:02d}"
            name = DEMO_NAMES[i % len(DEMO_NAMES)]
            patient_id = device_patient(conn, device) or add_patient(conn, name, device)
            assign_patient(conn, username, patient_id)
            scenario = DEMO_SCENARIOS[i] if i < len(DEMO_SCENARIOS) else "baseline"
            patients.append(DemoPatient(patient_id, name, device, scenario, _plan_of(conn, patient_id, scenario)))
        conn.commit()
    return patients


def _plan_of(conn: psycopg.Connection[Any], patient_id: int, scenario: str) -> MedicationPlan | None:
    """The patient's plan in force; the scenario's plan is recorded first if the patient has none."""
    from server import medication
    from simulators.scenarios import load_scenario

    script = load_scenario(scenario).medication
    if script is None:
        return None
    row = medication.plan_in_force(conn, patient_id)
    if row is None:
        row_id = medication.record_plan(conn, patient_id, None, script.plan_at(time.time()), "demo patient's plan")
        row = medication.get_plan(conn, row_id)
    return row.to_wire() if row is not None else None


async def _serve(
    settings: ServerSettings,
    patients: list[DemoPatient],
    options: DemoOptions,
    login: tuple[str, str],
    outbox_dir: Path,
    own: tuple[str, str] | None = None,
) -> None:
    import uvicorn

    from server.app import GRACEFUL_SHUTDOWN_S, create_app

    server = uvicorn.Server(
        uvicorn.Config(create_app(settings), host=settings.http_host, port=settings.http_port, log_level="warning",
                       timeout_graceful_shutdown=GRACEFUL_SHUTDOWN_S)
    )
    serving = asyncio.create_task(server.serve())
    while not server.started:
        if serving.done():
            serving.result()
            return
        await asyncio.sleep(0.05)
    base_url = f"http://{settings.http_host}:{settings.http_port}"
    _print_banner(base_url, settings, login, patients, own)
    sims = [asyncio.create_task(_run_patient(p, settings, options, outbox_dir)) for p in patients]
    progress = asyncio.create_task(_progress(base_url, login, patients, lambda: bool(server.should_exit)))
    if options.duration is not None:
        asyncio.get_running_loop().call_later(options.duration, setattr, server, "should_exit", True)
    try:
        await serving
    finally:
        for task in (*sims, progress):
            task.cancel()
        await asyncio.gather(*sims, progress, return_exceptions=True)


async def _run_patient(patient: DemoPatient, settings: ServerSettings, options: DemoOptions, outbox_dir: Path) -> None:
    from simulators.patient import run_patient
    from simulators.scenarios import load_scenario

    wall_span = options.duration or DEFAULT_SPAN_S
    sim_span = wall_span * options.speed
    start = time.time() + wall_span - sim_span  # the simulation reaches "now" when the demo ends
    await run_patient(
        load_scenario(patient.scenario),
        patient.device_id,
        settings.mqtt_url,
        outbox_dir / f"{patient.device_id}.sqlite3",
        start_time=start,
        duration_s=sim_span,
        speed=options.speed,
        window_seconds=DEMO_WINDOW_SECONDS,
        batch_windows=1,
        plan=patient.plan,
    )


def _print_banner(
    base_url: str,
    settings: ServerSettings,
    login: tuple[str, str],
    patients: list[DemoPatient],
    own: tuple[str, str] | None = None,
) -> None:
    print(
        "\n".join(
            [
                "",
                "pisces demo is running",
                f"  clinician portal:  {base_url}/",
                f"  demo login:        {login[0]} / {login[1]}",
                *([f"  patient's page:    {base_url}/me  login {own[0]} / {own[1]} ({patients[0].name}'s own"
                   " account: status, consent, caregivers)"] if own else []),  # fmt: skip
                f"  API docs:          {base_url}/docs",
                f"  MQTT broker:       {settings.mqtt_url}",
                "  patients:          "
                + ", ".join(f"{p.name} ({p.device_id}, {p.scenario})" for p in patients),
                f"  {patients[0].name} has a scripted tachycardia episode: a red alert appears within ~2 minutes.",
                *[f"  {p.name} takes medication: reminders and doses at the plan's local times (portal: Medication"
                  " plan, adherence on the patient page)." for p in patients if p.plan is not None],
                "  Ctrl-C stops everything.",
                "",
            ]
        ),
        flush=True,
    )


async def _progress(
    base_url: str, login: tuple[str, str], patients: list[DemoPatient], stopping: Callable[[], bool]
) -> None:
    """Print a status line every few seconds, read through the HTTP API, until the server is stopping."""
    started = time.monotonic()
    token = await asyncio.to_thread(_login, base_url, login)
    seen_levels: dict[int, str] = {}
    while True:
        await asyncio.sleep(PROGRESS_EVERY_S)
        if stopping():  # the API is going away: a refused request now is no news to the user
            return
        try:
            listed = await asyncio.to_thread(_get, base_url, "/api/patients", token)
            alerts = await asyncio.to_thread(_get, base_url, "/api/alerts?state=open", token)
        except OSError as exc:
            print(f"  (API not answering: {exc})", flush=True)
            continue
        states = ", ".join(f"{p['device_id']} {p.get('state', '?')}" for p in listed)
        print(f"[{time.monotonic() - started:5.0f} s] {states}; open alerts: {len(alerts)}", flush=True)
        for alert in alerts:
            line = _alert_line(alert, seen_levels.get(alert["id"]))
            seen_levels[alert["id"]] = alert["level"]
            if line:
                print(line, flush=True)


def _alert_line(alert: dict[str, Any], seen_level: str | None) -> str | None:
    """The progress line for an alert first seen, or seen again at a new level; else None.

    An episode keeps its alert id when it escalates (a yellow heart rate that
    goes on to cross the red limit is the same alert, now red), so a change of
    level is news to the person watching, just as a new alert is.
    """
    level = str(alert["level"])
    if seen_level == level:
        return None
    was = f"was {seen_level}; " if seen_level else ""
    return (
        f"  NEW {level.upper()} ALERT #{alert['id']}: {alert.get('patient_name', '')}"
        f" {alert.get('parameter', '')} ({was}see the portal)"
    )


def _login(base_url: str, login: tuple[str, str]) -> str:
    body = json.dumps({"username": login[0], "password": login[1]}).encode()
    req = urllib.request.Request(
        base_url + "/api/auth/login", data=body, headers={"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(req, timeout=10) as resp:
        return str(json.load(resp)["token"])


def _get(base_url: str, path: str, token: str) -> Any:
    req = urllib.request.Request(base_url + path, headers={"Authorization": f"Bearer {token}"})
    with urllib.request.urlopen(req, timeout=10) as resp:
        return json.load(resp)
