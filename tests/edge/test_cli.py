"""The patient's commands, as a patient (or the phone's UI) runs them beside a running agent.

`pisces edge run` plays a virtual strap in real time in its own process;
`pisces edge mark start|stop` and `pisces edge panic` are separate processes
that write into the same durable outbox. The test reads what reaches the real
broker with a plain MQTT subscriber.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from edge.agent import paired_strap, remember_strap
from edge.ble import ScanHit, rank_hits, scan_lines
from edge.outbox import Outbox
from edge.settings import get_settings
from tests.server.helpers import mqtt_client, wait_for
from wire import Event, EventType, Strip, decode, device_filter

pytestmark = [pytest.mark.mqtt]


def pisces(*args: str) -> list[str]:
    return [sys.executable, "-m", "server.cli", *args]


def test_mark_and_panic_from_the_command_line_reach_the_broker(
    mqtt_url: str, device_id: str, tmp_path: Path
) -> None:
    seen: list[object] = []
    lock = threading.Lock()
    sub = mqtt_client(mqtt_url)
    sub.on_message = lambda c, u, m: (lock.acquire(), seen.append(decode(m.payload)), lock.release())
    sub.subscribe(device_filter(device_id), qos=1)
    common = ["--device", device_id, "--outbox", str(tmp_path / "outbox.sqlite3")]  # mark and panic take no more
    env = {k: v for k, v in os.environ.items() if not k.startswith("PISCES_")}
    agent = subprocess.Popen(
        pisces("edge", "run", *common, "--mqtt-url", mqtt_url, "--simulate", "baseline", "--speed", "1",
               "--duration", "120",
               "--window-seconds", "2", "--batch-windows", "1", "--app-port", "0"),
        env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        def events() -> list[Event]:
            with lock:
                return [m for m in seen if isinstance(m, Event)]

        wait_for(lambda: any(getattr(m, "kind", None) and m.kind.value == "summary" for m in list(seen)),
                 timeout=30, what="the agent's first summary")  # fmt: skip
        for args in (["mark", "start", "--tags", "palpitations,dizzy", "--severity", "2", "--note", "stairs"],
                     ["panic"], ["mark", "stop"]):  # fmt: skip
            done = subprocess.run(pisces("edge", *args, *common), env=env, capture_output=True, text=True, timeout=60)
            assert done.returncode == 0, done.stderr
        got = wait_for(lambda: len(events()) >= 3 and events(), timeout=30, what="three events")
        types = [e.type for e in got]
        assert types == [EventType.SYMPTOM_START, EventType.PANIC, EventType.SYMPTOM_STOP]
        start, panic, stop = got
        assert start.period and start.period == stop.period
        assert start.tags == ("palpitations", "dizzy") and start.severity == 2 and start.note == "stairs"
        assert start.seq < panic.seq < stop.seq
        strips = wait_for(
            lambda: [m for m in list(seen) if isinstance(m, Strip) and m.ref_seq == panic.seq],
            timeout=30, what="the ECG strip around the panic",
        )
        assert strips[0].fs == pytest.approx(130, abs=1) and strips[0].start <= panic.time
    finally:
        agent.send_signal(signal.SIGINT)
        try:
            _, err = agent.communicate(timeout=20)
        except subprocess.TimeoutExpired:
            agent.kill()
            _, err = agent.communicate()
        sub.disconnect()
        sub.loop_stop()
    assert "Traceback" not in err, err


def test_scan_ranks_the_paired_strap_first_then_by_signal() -> None:
    hits = [ScanHit("AA:01", "Polar H10 1", -80), ScanHit("AA:02", "", None), ScanHit("AA:03", "HRM-Pro", -50)]
    assert [h.address for h in rank_hits(hits)] == ["AA:03", "AA:01", "AA:02"]
    lines = scan_lines(hits, paired="AA:01")
    assert lines[0].startswith("AA:01") and lines[0].endswith("[paired]")
    assert "-50 dBm" in lines[1] and "(no name)" in lines[2] and "? dBm" in lines[2]
    assert scan_lines([]) == ["no heart-rate straps found (is the strap worn and awake?)"]


def test_run_uses_the_remembered_strap_or_says_how_to_pair(tmp_path: Path) -> None:
    outbox = tmp_path / "o.sqlite3"
    env = {k: v for k, v in os.environ.items() if not k.startswith("PISCES_")}
    done = subprocess.run(pisces("edge", "run", "--device", "dev-pair", "--outbox", str(outbox), "--app-port", "0"),
                          env=env, capture_output=True, text=True, timeout=60)  # fmt: skip
    assert done.returncode != 0 and "no strap paired yet" in done.stderr and "Traceback" not in done.stderr
    with Outbox(outbox) as box:
        assert paired_strap(box) is None
        remember_strap(box, "C0:FF:EE:00:11:22")  # what BleakSource's on_connected does after a connect
    with Outbox(outbox) as box:
        assert paired_strap(box) == "C0:FF:EE:00:11:22"


def test_settings_carry_tls_and_login() -> None:
    s = get_settings(device_id="dev-tls", mqtt_url="mqtts://broker.example:8883", mqtt_username="dev-tls",
                     mqtt_password="pw", mqtt_ca_file="ca.pem", app_port=0)  # fmt: skip
    assert s.mqtt_ca_file == Path("ca.pem") and s.mqtt_password is not None
    assert s.mqtt_password.get_secret_value() == "pw" and "pw" not in repr(s) and s.app_port == 0


def test_status_lists_the_open_dose_reminders(tmp_path: Path) -> None:
    from edge.doses import DoseKeeper
    from edge.outbox import Outbox
    from wire.medication import Drug, MedicationPlan

    path = tmp_path / "outbox.sqlite3"
    with Outbox(path) as box:
        keeper = DoseKeeper(box, "dev-cli", {})
        keeper.set_plan(MedicationPlan(1, 0.0, "UTC", (Drug("bisoprolol", "5 mg", ("08:00",)),)))
        keeper.tick(1_780_300_800.0)  # 2026-06-01 08:00 UTC: the dose is due
    env = {**{k: v for k, v in os.environ.items() if not k.startswith("PISCES_")}, "TZ": "UTC"}
    done = subprocess.run(pisces("edge", "status", "--device", "dev-cli", "--outbox", str(path)), env=env,
                          capture_output=True, text=True, timeout=60)  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "dose reminders open: bisoprolol 5 mg planned 2026-06-01" in done.stdout and "(due)" in done.stdout


PHONE_OPTIONS = {"--help", "--device", "--outbox"}
HELP_LISTS = {
    "run": PHONE_OPTIONS | {"--mqtt-url", "--ca-file", "--allow-plain", "--window-seconds", "--batch-windows",
                            "--address", "--simulate", "--speed", "--duration", "--strap", "--app-port"},
    "mark": PHONE_OPTIONS | {"--tags", "--severity", "--note"},
    "panic": PHONE_OPTIONS,
    "status": PHONE_OPTIONS,
    "scan": PHONE_OPTIONS | {"--timeout"},
}  # fmt: skip


@pytest.mark.parametrize("action", sorted(HELP_LISTS))
def test_each_subcommand_lists_only_its_own_options(action: str) -> None:
    done = subprocess.run(pisces("edge", action, "--help"), capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    listed = set(re.findall(r"(?<![\w-])--[a-z][a-z-]*", done.stdout))
    assert listed == HELP_LISTS[action]


def test_an_option_of_another_subcommand_is_refused_not_ignored(tmp_path: Path) -> None:
    outbox = str(tmp_path / "o.sqlite3")
    env = {k: v for k, v in os.environ.items() if not k.startswith("PISCES_")}
    done = subprocess.run(pisces("edge", "panic", "--device", "dev-help", "--outbox", outbox,
                                 "--mqtt-url", "mqtt://127.0.0.1:1"), env=env, capture_output=True, text=True,
                          timeout=60)  # fmt: skip
    assert done.returncode == 2 and "unrecognized arguments: --mqtt-url" in done.stderr
    assert not Path(outbox).exists()  # nothing was recorded
