"""The patient's commands, as a patient (or the phone's UI) runs them beside a running agent.

`pisces edge run` plays a virtual strap in real time in its own process;
`pisces edge mark start|stop` and `pisces edge panic` are separate processes
that write into the same durable outbox. The test reads what reaches the real
broker with a plain MQTT subscriber.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
from pathlib import Path

import pytest

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
    common = ["--device", device_id, "--mqtt-url", mqtt_url, "--outbox", str(tmp_path / "outbox.sqlite3")]
    env = {k: v for k, v in os.environ.items() if not k.startswith("PISCES_")}
    agent = subprocess.Popen(
        pisces("edge", "run", *common, "--simulate", "baseline", "--speed", "1", "--duration", "120",
               "--window-seconds", "2", "--batch-windows", "1"),
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
