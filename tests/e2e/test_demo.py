"""`pisces demo` as a new user runs it: no PISCES_* variables, embedded database and broker."""

from __future__ import annotations

import os
import re
import subprocess
import sys

import pytest

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

DEMO_WALL_SECONDS = 45
DEMO_SPEED = 8.0


def test_demo_runs_on_embedded_services_and_raises_a_red_alert() -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PISCES_")}
    proc = subprocess.run(
        [sys.executable, "-m", "server.cli", "demo", "--patients", "2", "--port", "0",
         "--speed", str(DEMO_SPEED), "--duration", str(DEMO_WALL_SECONDS)],
        env=env, capture_output=True, text=True, timeout=DEMO_WALL_SECONDS + 120,
    )
    out = proc.stdout
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "starting PostgreSQL (embedded)" in out and "starting MQTT broker (embedded)" in out
    url = re.search(r"clinician portal:\s+(http://\S+)", out)
    login = re.search(r"demo login:\s+(\S+) / (\S+)", out)
    assert url and login, out
    assert re.search(r"patient's page:\s+http://\S+/me  login patient / \S+", out), out  # a fresh database each run
    assert re.search(r"NEW RED ALERT #\d+: \S.* hr", out), out
    assert "Traceback" not in proc.stderr, proc.stderr[-3000:]
    assert "Warning" not in proc.stderr, proc.stderr[-3000:]  # a new user's console stays clean
    assert "API not answering" not in out, out  # not even while the demo shuts down
