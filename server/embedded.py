"""Embedded services for a machine with none: a private PostgreSQL and an MQTT broker.

Used by ``pisces demo`` and by the test fixtures when no ``PISCES_*`` URL names a
real service. PostgreSQL comes from the ``pgserver`` package (a private
PostgreSQL 16 in a data directory of ours). The broker is a locally installed
``mosquitto`` spawned on a free loopback port when there is one, else the
pure-Python ``amqtt`` broker in a child process (about a fifth of Mosquitto's
speed: enough for a demo, not for load).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

BROKER_START_TIMEOUT_S = 15.0


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port that was free on ``host`` a moment ago."""
    with socket.socket() as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


def wait_for_port(host: str, port: int, timeout: float) -> None:
    """Block until something accepts TCP connections on host:port, or raise TimeoutError."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError), socket.create_connection((host, port), timeout=0.5):
            return
        time.sleep(0.05)
    raise TimeoutError(f"nothing listening on {host}:{port} after {timeout:.0f} s")


@contextlib.contextmanager
def embedded_postgres(data_dir: Path | None = None) -> Iterator[str]:
    """Start a private PostgreSQL and yield its connection URL; stop it on exit.

    With ``data_dir`` the data persist between runs; without, a temporary
    directory is used and removed afterwards.
    """
    tmp = None
    if data_dir is None:
        tmp = tempfile.mkdtemp(prefix="pisces-pg-")
        data_dir = Path(tmp)
    data_dir.mkdir(parents=True, exist_ok=True)
    with warnings.catch_warnings():  # pgserver's platformdirs warns when XDG_RUNTIME_DIR is unset,
        warnings.filterwarnings("ignore", message="XDG_RUNTIME_DIR")  # on import and on start
        import pgserver  # optional dependency: only the demo and the fixtures need it

        server = pgserver.get_server(str(data_dir), cleanup_mode="stop")
    try:
        yield str(server.get_uri())
    finally:
        server.cleanup()
        if tmp:
            shutil.rmtree(tmp, ignore_errors=True)


@dataclass(frozen=True)
class EmbeddedBroker:
    """A broker child process and the URL to reach it."""

    url: str
    engine: str  # "mosquitto" or "amqtt"
    process: subprocess.Popen[bytes]


def mosquitto_executable() -> str | None:
    """The ``mosquitto`` binary: on PATH, or where Debian-like systems install it (``sbin``)."""
    return shutil.which("mosquitto") or next(
        (p for p in ("/usr/sbin/mosquitto", "/usr/local/sbin/mosquitto") if os.path.exists(p)), None
    )


def _mosquitto_command(port: int, workdir: Path) -> list[str] | None:
    exe = mosquitto_executable()
    if exe is None:
        return None
    conf = workdir / "mosquitto.conf"
    conf.write_text(
        f"listener {port} 127.0.0.1\nallow_anonymous true\n"
        f"persistence true\npersistence_location {workdir}/\nautosave_interval 1\n"
        "max_queued_messages 100000\nlog_dest none\n"
    )
    return [exe, "-c", str(conf)]


@contextlib.contextmanager
def embedded_broker(prefer: str = "mosquitto") -> Iterator[EmbeddedBroker]:
    """Start a broker on a free loopback port, yield it, and stop it on exit.

    Anonymous access on loopback only: this is the demo's and the tests' broker.
    """
    port = free_port()
    workdir = Path(tempfile.mkdtemp(prefix="pisces-mqtt-"))
    cmd = _mosquitto_command(port, workdir) if prefer == "mosquitto" else None
    engine = "mosquitto"
    if cmd is None:
        engine = "amqtt"
        cmd = [sys.executable, "-m", "server.embedded", "amqtt", str(port)]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_for_port("127.0.0.1", port, BROKER_START_TIMEOUT_S)
        yield EmbeddedBroker(f"mqtt://127.0.0.1:{port}", engine, proc)
    finally:
        proc.terminate()
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=5)
        if proc.poll() is None:
            proc.kill()
        shutil.rmtree(workdir, ignore_errors=True)


def run_amqtt(port: int) -> None:
    """Run the pure-Python amqtt broker on 127.0.0.1:port until killed."""
    import asyncio

    from amqtt.broker import Broker

    config = {
        "listeners": {"default": {"type": "tcp", "bind": f"127.0.0.1:{port}"}},
        "sys_interval": 0,
        "auth": {"allow-anonymous": True},
    }

    async def serve() -> None:
        broker = Broker(config)
        await broker.start()
        await asyncio.Event().wait()

    asyncio.run(serve())


if __name__ == "__main__":  # python -m server.embedded amqtt <port>
    if len(sys.argv) == 3 and sys.argv[1] == "amqtt":
        run_amqtt(int(sys.argv[2]))
    else:
        sys.exit("usage: python -m server.embedded amqtt <port>")
