"""The shipped Mosquitto configuration on a private broker: TLS, per-device credentials and the ACL."""

from __future__ import annotations

import contextlib
import getpass
import signal
import socket
import ssl
import subprocess
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from server.broker.config import BrokerOptions, init_broker
from server.credentials import (
    SERVER_USERNAME, CredentialsError, add_device, hash_password, read_users, revoke, set_server_account,
    verify_password,
)  # fmt: skip
from server.embedded import free_port, mosquitto_executable, wait_for_port
from tests.server.helpers import wait_for
from wire import Kind, topic_for

MOSQUITTO = mosquitto_executable()
needs_mosquitto = pytest.mark.skipif(MOSQUITTO is None, reason="mosquitto is not installed (./pisces test installs it)")
NAMES = ["localhost", "127.0.0.1"]  # what the test broker's certificate covers


@dataclass
class PrivateMosquitto:
    """A Mosquitto of this test's own on the shipped configuration (``pisces broker init``); restartable.

    ``tls_port`` is the phones' TLS listener, ``port`` the plain loopback one of the server's workers.
    """

    directory: Path
    port: int
    tls_port: int
    process: subprocess.Popen[bytes] | None = None

    @property
    def passwd(self) -> Path:
        return self.directory / "passwd"

    @property
    def ca(self) -> Path:
        return self.directory / "tls" / "ca.crt"

    def url(self, username: str, password: str) -> str:
        return f"mqtt://{username}:{password}@127.0.0.1:{self.port}"

    def tls_url(self, username: str, password: str, host: str = "127.0.0.1") -> str:
        return f"mqtts://{username}:{password}@{host}:{self.tls_port}"

    def start(self) -> None:
        options = BrokerOptions(self.tls_port, "127.0.0.1", self.port, log_dest="none", run_as=getpass.getuser())
        conf = init_broker(self.directory, options, NAMES).conf
        self.process = subprocess.Popen([str(MOSQUITTO), "-c", str(conf)], stderr=subprocess.DEVNULL)
        wait_for_port("127.0.0.1", self.port, 10)
        wait_for_port("127.0.0.1", self.tls_port, 10)

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
    broker = PrivateMosquitto(directory, free_port(), free_port())
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


def connack(port: int, username: str | None, password: str | None, ca: Path | None = None,
            tls: bool = False, host: str = "127.0.0.1") -> Any:
    """The outcome of one connect (the client is closed again): the CONNACK reason code, or None when
    the broker closed the link without a CONNACK."""
    c, rc = _connect(port, username, password, ca, tls, host)
    close(c)
    return rc


def _connect(port: int, username: str | None, password: str | None, ca: Path | None,
             tls: bool, host: str) -> tuple[mqtt.Client, Any]:
    done = threading.Event()
    result: list[Any] = []
    c = mqtt.Client(CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5)
    if username:
        c.username_pw_set(username, password)
    if tls or ca:
        c.tls_set(ca_certs=str(ca) if ca else None)

    def on_connect(_c: Any, _u: Any, _f: Any, rc: Any, _p: Any = None) -> None:
        result.append(rc)
        done.set()

    c.on_connect = on_connect
    c.on_disconnect = lambda *_: done.set()
    c.connect(host, port)
    c.loop_start()
    assert done.wait(10), "neither a CONNACK nor a closed link"
    return c, result[0] if result else None


def client(port: int, username: str, password: str, ca: Path | None = None) -> tuple[mqtt.Client, Any]:
    """A client that got a CONNACK (success or refusal); over TLS when ``ca`` is given."""
    c, rc = _connect(port, username, password, ca, False, "127.0.0.1")
    assert rc is not None and not isinstance(rc, Exception), f"no CONNACK: {rc!r}"
    return c, rc


def close(c: mqtt.Client) -> None:
    c.disconnect()
    c.loop_stop()


def publish_code(c: mqtt.Client, topic: str, retain: bool = False) -> int:
    """The PUBACK reason code of one QoS 1 publish: 0 accepted (also for 16, "no matching subscribers"),
    135 not authorised."""
    codes: list[int] = []
    c.on_publish = lambda _c, _u, _mid, rc, _p: codes.append(rc.value)
    c.publish(topic, b"{}", qos=1, retain=retain)
    wait_for(lambda: codes, what="PUBACK")
    return 0 if codes[0] == 16 else codes[0]


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


UPLINK = (Kind.SUMMARY, Kind.EVENT, Kind.STRIP, Kind.STATUS)
DOWNLINK = (Kind.NOTIFY, Kind.CONFIG)
# (who publishes, topic, allowed): a phone ("a", over TLS) under its own uplink topics only; the
# server account (over loopback) under every device's downlink topics only.
PUBLISH_CASES = (
    [("a", topic_for("dev-a", k), True) for k in UPLINK]
    + [("a", topic_for("dev-b", k), False) for k in UPLINK]  # speaking for another patient
    + [("a", topic_for("dev-a", k), False) for k in DOWNLINK]  # its own alerts/limits are the server's
    + [("a", topic_for("dev-b", k), False) for k in DOWNLINK]
    + [("a", t, False) for t in ("pisces/v1/dev-a", "pisces/v1/dev-a/summary/x", "pisces/v2/dev-a/summary", "x")]
    + [("server", topic_for("dev-a", k), False) for k in UPLINK]  # the server does not speak for phones
    + [("server", topic_for("dev-a", k), True) for k in DOWNLINK]
)  # fmt: skip
# What phone a subscribes to; Mosquitto grants every subscription, so what counts is what it delivers.
FOREIGN_FILTERS = ("pisces/v1/dev-b/#", "pisces/v1/+/notify", "pisces/v1/+/config", "pisces/v1/+/summary",
                   "pisces/v1/dev-b/summary", "+/+/+/+", "#")  # fmt: skip


@dataclass
class Accounts:
    """Phones dev-a and dev-b and the server account on a private broker."""

    broker: PrivateMosquitto
    a: str
    b: str
    server: str

    def phone(self, device: str) -> mqtt.Client:
        c, rc = client(self.broker.tls_port, device, self.a if device == "dev-a" else self.b, self.broker.ca)
        assert not rc.is_failure
        return c

    def server_client(self) -> mqtt.Client:
        c, rc = client(self.broker.port, SERVER_USERNAME, self.server)
        assert not rc.is_failure
        return c


@pytest.fixture
def accounts(broker: PrivateMosquitto) -> Accounts:
    made = Accounts(broker, add_device(broker.passwd, "dev-a"), add_device(broker.passwd, "dev-b"),
                    set_server_account(broker.passwd))  # fmt: skip
    broker.reload()
    wait_for(lambda: not connack(broker.port, SERVER_USERNAME, made.server).is_failure, what="passwd reloaded")
    return made


@needs_mosquitto
def test_tls_with_the_ca_works_and_without_it_or_in_plain_fails(accounts: Accounts) -> None:
    broker = accounts.broker
    rc = connack(broker.tls_port, "dev-a", accounts.a, broker.ca)
    assert rc is not None and not isinstance(rc, Exception) and not rc.is_failure
    assert connack(broker.tls_port, "dev-a", accounts.a) is None  # plain MQTT to the TLS port: link closed
    # The handshakes paho makes (its TLS is the stdlib's), without the CA and with a name the certificate lacks:
    for context, name, why in [(ssl.create_default_context(), "127.0.0.1", "unable to get local issuer"),
                               (ssl.create_default_context(cafile=str(broker.ca)), "broker.example.org", "mismatch")]:
        with socket.create_connection(("127.0.0.1", broker.tls_port), 5) as raw:
            with pytest.raises(ssl.SSLCertVerificationError, match=why):
                context.wrap_socket(raw, server_hostname=name)
    assert not connack(broker.tls_port, "dev-a", accounts.a, broker.ca, host="localhost").is_failure


@needs_mosquitto
def test_every_client_authenticates_on_both_listeners(accounts: Accounts) -> None:
    broker = accounts.broker
    for port, ca, user, password in [
        (broker.tls_port, broker.ca, "dev-a", "wrong password"), (broker.tls_port, broker.ca, "nobody", accounts.a),
        (broker.tls_port, broker.ca, None, None), (broker.port, None, None, None),
    ]:  # fmt: skip
        rc = connack(port, user, password, ca)
        assert rc is None or rc.is_failure, (port, user)


@needs_mosquitto
def test_publish_acl_cases(accounts: Accounts) -> None:
    clients = {"a": accounts.phone("dev-a"), "server": accounts.server_client()}
    try:
        codes = [publish_code(clients[who], topic) for who, topic, _ in PUBLISH_CASES]
    finally:
        for c in clients.values():
            close(c)
    outcomes = [(who, topic, code) for (who, topic, _), code in zip(PUBLISH_CASES, codes)]
    assert outcomes == [(who, topic, 0 if allowed else 135) for who, topic, allowed in PUBLISH_CASES]


@needs_mosquitto
def test_a_phone_subscribing_to_others_topics_gets_nothing_of_theirs(accounts: Accounts) -> None:
    server, other = accounts.server_client(), accounts.phone("dev-b")
    seen: dict[str, list[str]] = {f: [] for f in FOREIGN_FILTERS}
    phones: list[mqtt.Client] = []
    try:
        assert publish_code(server, topic_for("dev-b", Kind.CONFIG), retain=True) == 0  # retained before anyone looks
        assert publish_code(server, topic_for("dev-a", Kind.CONFIG), retain=True) == 0
        for f in FOREIGN_FILTERS:
            phones.append(accounts.phone("dev-a"))
            phones[-1].on_message = lambda _c, _u, m, f=f: seen[f].append(m.topic)
            assert subscribe_code(phones[-1], f) < 128
        for kind in UPLINK:
            assert publish_code(other, topic_for("dev-b", kind)) == 0
        assert publish_code(server, topic_for("dev-b", Kind.NOTIFY)) == 0
        assert publish_code(server, topic_for("dev-a", Kind.NOTIFY)) == 0  # the marker: comes after all of b's
        wait_for(lambda: topic_for("dev-a", Kind.NOTIFY) in seen["#"], what="own notification")
        wait_for(lambda: topic_for("dev-a", Kind.NOTIFY) in seen["pisces/v1/+/notify"], what="own notification")
    finally:
        for c in [*phones, other, server]:
            close(c)
    own = {topic_for("dev-a", Kind.NOTIFY), topic_for("dev-a", Kind.CONFIG)}
    assert {f: set(t) - own for f, t in seen.items()} == {f: set() for f in FOREIGN_FILTERS}
    assert topic_for("dev-a", Kind.CONFIG) in seen["pisces/v1/+/config"]  # its own retained config does arrive


@needs_mosquitto
def test_a_forged_publish_never_reaches_the_server_and_phones_cannot_join_its_group(
    accounts: Accounts, tmp_path: Path
) -> None:
    from server.ingest import Ingestor
    from server.settings import ServerSettings

    settings = ServerSettings(mqtt_url=accounts.broker.url(SERVER_USERNAME, accounts.server),
                              mqtt_protocol="5", mqtt_shared_group="pisces-ingest")  # fmt: skip
    filters = Ingestor.subscriptions.fget(type("S", (), {"settings": settings})())  # type: ignore[attr-defined]
    server, got = accounts.server_client(), []
    server.on_message = lambda _c, _u, m: got.append((m.topic, m.payload))
    for f in filters:
        assert subscribe_code(server, f) < 128
    thief = accounts.phone("dev-a")
    for f in ("$share/pisces-ingest/pisces/v1/+/summary", "$share/pisces-ingest/pisces/v1/+/+"):
        assert subscribe_code(thief, f) < 128  # granted: Mosquitto 2.0 does not check subscriptions
    other = accounts.phone("dev-b")
    try:
        assert publish_code(thief, topic_for("dev-b", Kind.SUMMARY)) == 135
        for _ in range(10):
            assert publish_code(other, topic_for("dev-b", Kind.SUMMARY)) == 0
        assert publish_code(thief, topic_for("dev-a", Kind.SUMMARY)) == 0
        wait_for(lambda: (topic_for("dev-a", Kind.SUMMARY), b"{}") in got, what="the phone's own summary")
    finally:
        for c in (server, thief, other):
            close(c)
    assert [t for t, _ in got] == [topic_for("dev-b", Kind.SUMMARY)] * 10 + [topic_for("dev-a", Kind.SUMMARY)]


@needs_mosquitto
def test_a_revoked_device_is_refused_on_its_next_connect(accounts: Accounts) -> None:
    from server.cli import main

    broker = accounts.broker
    assert main(["devices", "--password-file", str(broker.passwd), "revoke", "dev-a"]) == 0
    broker.reload()
    wait_for(lambda: connack(broker.tls_port, "dev-a", accounts.a, broker.ca).is_failure, what="dev-a refused")
    assert not connack(broker.tls_port, "dev-b", accounts.b, broker.ca).is_failure  # the others stay in


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
    assert main(["broker", "init", str(tmp_path / "b"), "--port", "18830", "--name", "broker.example.org"]) == 0
    out = capsys.readouterr().out
    conf = (tmp_path / "b" / "mosquitto.conf").read_text()
    assert "allow_anonymous false" in conf and "listener 18830 0.0.0.0" in conf and "listener 1883 127.0.0.1" in conf
    assert f"certfile {tmp_path / 'b' / 'tls' / 'server.crt'}" in conf and str(tmp_path / "b" / "tls" / "ca.crt") in out
    assert main(["broker", "init", str(tmp_path / "c"), "--local-port", "0"]) == 0
    assert "listener 1883" not in (tmp_path / "c" / "mosquitto.conf").read_text()
    assert main(["broker", "init", str(tmp_path / "d"), "--cert", str(tmp_path / "b" / "tls" / "server.crt")]) == 2


@needs_mosquitto
def test_the_phone_and_the_ingest_speak_tls_end_to_end(
    broker: PrivateMosquitto, settings: Any, patient_id: int, device_id: str, db_url: str, tmp_path: Path
) -> None:
    from edge.agent import press_panic
    from edge.outbox import Outbox
    from edge.uplink import TlsAndLogin, Uplink
    from server.ingest import Ingestor
    from tests.server.test_ingest import count
    from wire import BrokerAddress

    phone = add_device(broker.passwd, device_id)
    server = set_server_account(broker.passwd)
    broker.reload()
    wait_for(lambda: not connack(broker.port, SERVER_USERNAME, server).is_failure, what="passwd reloaded")
    worker = Ingestor(settings.model_copy(update={
        "mqtt_url": broker.tls_url(SERVER_USERNAME, server, host="localhost"), "mqtt_ca_file": str(broker.ca),
        "mqtt_protocol": "5",
    }))  # fmt: skip
    worker.start()
    box = Outbox(tmp_path / "outbox.sqlite3")
    uplink = Uplink(device_id, BrokerAddress.parse(broker.tls_url(device_id, phone)), box,
                    login=TlsAndLogin(ca_file=str(broker.ca)))  # fmt: skip
    try:
        press_panic(box, device_id)
        uplink.start()
        assert uplink.wait_connected(10), uplink.last_error
        wait_for(lambda: uplink.pump() >= 0 and box.pending_count() == 0, what="the panic acked")
        wait_for(lambda: count(db_url, "SELECT count(*) FROM events WHERE device_id = %s AND type = 'panic'",
                               device_id), what="the panic stored")  # fmt: skip
    finally:
        uplink.stop()
        box.close()
        worker.stop()
