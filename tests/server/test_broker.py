"""The shipped Mosquitto configuration on a private broker: per-device credentials and the ACL."""

from __future__ import annotations

import contextlib
import getpass
import signal
import subprocess
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from server.credentials import (
    SERVER_USERNAME, CredentialsError, add_device, hash_password, read_users, render_broker_config, revoke,
    set_server_account, verify_password,
)  # fmt: skip
from server.embedded import free_port, mosquitto_executable, wait_for_port
from tests.server.helpers import wait_for
from wire import Kind, topic_for

MOSQUITTO = mosquitto_executable()
needs_mosquitto = pytest.mark.skipif(MOSQUITTO is None, reason="mosquitto is not installed (./pisces test installs it)")


@dataclass
class PrivateMosquitto:
    """A Mosquitto of this test's own, on the shipped configuration; restartable, same port and data."""

    directory: Path
    port: int
    process: subprocess.Popen[bytes] | None = None

    @property
    def passwd(self) -> Path:
        return self.directory / "passwd"

    def url(self, username: str, password: str) -> str:
        return f"mqtt://{username}:{password}@127.0.0.1:{self.port}"

    def start(self) -> None:
        conf = render_broker_config(self.directory, self.port, log_dest="none", run_as=getpass.getuser())
        self.process = subprocess.Popen([str(MOSQUITTO), "-c", str(conf)], stderr=subprocess.DEVNULL)
        wait_for_port("127.0.0.1", self.port, 10)

    def reload(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGHUP)

    def stop(self) -> None:
        if self.process is not None:
            self.process.terminate()  # a clean stop saves the persistent sessions
            self.process.wait(10)
            self.process = None


@contextlib.contextmanager
def private_mosquitto(directory: Path) -> Iterator[PrivateMosquitto]:
    """Start a private broker in ``directory`` (never the machine's shared one); stop it afterwards."""
    broker = PrivateMosquitto(directory, free_port())
    broker.start()
    try:
        yield broker
    finally:
        broker.stop()


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[PrivateMosquitto]:
    if MOSQUITTO is None:
        pytest.skip("mosquitto is not installed (./pisces test installs it)")
    with private_mosquitto(tmp_path) as b:
        yield b


def client(port: int, username: str, password: str) -> tuple[mqtt.Client, Any]:
    """An MQTT 5 client and its CONNACK reason code (the loop runs; the caller disconnects)."""
    done = threading.Event()
    result: list[Any] = []
    c = mqtt.Client(CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5)
    c.username_pw_set(username, password)

    def on_connect(_c: Any, _u: Any, _f: Any, rc: Any, _p: Any = None) -> None:
        result.append(rc)
        done.set()

    c.on_connect = on_connect
    c.connect("127.0.0.1", port)
    c.loop_start()
    assert done.wait(10), "no CONNACK"
    return c, result[0]


def close(c: mqtt.Client) -> None:
    c.disconnect()
    c.loop_stop()


def publish_code(c: mqtt.Client, topic: str) -> int:
    """The PUBACK reason code of one QoS 1 publish (0 accepted, 135 not authorised)."""
    codes: list[int] = []
    c.on_publish = lambda _c, _u, _mid, rc, _p: codes.append(rc.value)
    c.publish(topic, b"{}", qos=1)
    wait_for(lambda: codes, what="PUBACK")
    return codes[0]


def subscribe_code(c: mqtt.Client, topic: str) -> int:
    codes: list[int] = []
    c.on_subscribe = lambda _c, _u, _mid, rcs, _p: codes.extend(r.value for r in rcs)
    c.subscribe(topic, qos=1)
    wait_for(lambda: codes, what="SUBACK")
    return codes[0]


def test_password_hash_round_trip_and_refusals(tmp_path: Path) -> None:
    hashed = hash_password("open sesame")
    assert hashed.startswith("$7$1000$") and verify_password("open sesame", hashed)
    assert not verify_password("open sesame!", hashed)
    path = tmp_path / "passwd"
    first = add_device(path, "dev-1")
    second = add_device(path, "dev-2")
    assert first != second and len(first) >= 32
    assert verify_password(first, read_users(path)["dev-1"])
    with pytest.raises(CredentialsError):
        add_device(path, SERVER_USERNAME)
    with pytest.raises(CredentialsError):
        add_device(path, "dev/+")
    assert revoke(path, "dev-1") and not revoke(path, "dev-1")
    assert set(read_users(path)) == {"dev-2"}
    assert path.stat().st_mode & 0o077 == 0


@needs_mosquitto
def test_devices_are_authenticated_and_kept_under_their_own_topics(broker: PrivateMosquitto) -> None:
    mine = add_device(broker.passwd, "dev-a")
    other_password = add_device(broker.passwd, "dev-b")
    server_password = set_server_account(broker.passwd)
    broker.reload()

    c, rc = client(broker.port, "dev-a", "wrong password")
    close(c)
    assert rc.is_failure
    c, rc = client(broker.port, "nobody", mine)
    close(c)
    assert rc.is_failure

    server, rc = client(broker.port, SERVER_USERNAME, server_password)
    phone, rc2 = client(broker.port, "dev-a", mine)
    try:
        assert not rc.is_failure and not rc2.is_failure
        assert subscribe_code(server, "$share/pisces-ingest/pisces/v1/+/+") < 128
        assert publish_code(phone, topic_for("dev-a", Kind.SUMMARY)) == 0
        assert publish_code(phone, topic_for("dev-b", Kind.SUMMARY)) == 135  # not authorised
        assert publish_code(phone, topic_for("dev-a", Kind.NOTIFY)) == 135  # downlink is the server's
        assert publish_code(server, topic_for("dev-a", Kind.SUMMARY)) == 135  # the server does not speak for phones
        # Mosquitto grants any subscription and filters what it delivers by the ACL.
        seen: list[str] = []
        phone.on_message = lambda _c, _u, m: seen.append(m.topic)
        assert subscribe_code(phone, "pisces/v1/#") < 128
        other, _ = client(broker.port, "dev-b", other_password)
        try:
            assert publish_code(other, topic_for("dev-b", Kind.SUMMARY)) == 0
        finally:
            close(other)
        assert publish_code(server, topic_for("dev-b", Kind.NOTIFY)) == 0
        assert publish_code(server, topic_for("dev-a", Kind.NOTIFY)) == 0
        wait_for(lambda: topic_for("dev-a", Kind.NOTIFY) in seen, what="own notification")
        assert seen == [topic_for("dev-a", Kind.NOTIFY)]
    finally:
        close(server)
        close(phone)

    assert revoke(broker.passwd, "dev-a")
    broker.reload()
    c, rc = client(broker.port, "dev-a", mine)
    close(c)
    assert rc.is_failure


def test_the_devices_command_provisions_and_revokes(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from server.cli import main

    path = tmp_path / "passwd"
    assert main(["devices", "--password-file", str(path), "add", "dev-cli"]) == 0
    password = capsys.readouterr().out.strip().rsplit(" ", 1)[1]
    assert verify_password(password, read_users(path)["dev-cli"])
    assert main(["devices", "--password-file", str(path), "add", SERVER_USERNAME]) == 2
    assert main(["devices", "--password-file", str(path), "revoke", "dev-cli"]) == 0
    assert main(["devices", "--password-file", str(path), "revoke", "dev-cli"]) == 2
    assert read_users(path) == {}
    assert main(["broker", "init", str(tmp_path / "b"), "--port", "18830"]) == 0
    conf = (tmp_path / "b" / "mosquitto.conf").read_text()
    assert "allow_anonymous false" in conf and "listener 18830 127.0.0.1" in conf
