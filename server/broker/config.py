"""The broker's configuration: a Mosquitto config with a TLS listener for phones, per-device auth and the ACL.

:func:`init_broker` is ``pisces broker init DIR``: it writes ``mosquitto.conf``,
``acl``, an empty ``passwd`` (if none) and, under ``DIR/tls``, the broker's
certificate and key, signed by a CA of the operator's own (``ca.crt``, the file
phones need) unless the operator brings a CA or a certificate.

Listeners (decided here; docs/server.md):

* **TLS** on ``tls_host:tls_port`` (default ``0.0.0.0:8883``): the only way in
  for phones and for anything not on the broker's host.
* **Plain TCP on loopback only** (``127.0.0.1:local_port``, default 1883), for
  the server's own ingest workers and notifier on the same host: TLS there
  would protect nothing a local attacker could not read anyway, and costs the
  workers CPU (the MQTT client is the ingest ceiling). Credentials and the ACL
  apply to it as to the TLS listener. ``local_port=None`` leaves it out (the
  server then connects with ``mqtts://`` too).
"""

from __future__ import annotations

import datetime as dt
import socket
from dataclasses import dataclass
from pathlib import Path

from server.broker.certificates import TlsFiles, ensure_ca, ensure_server_certificate
from server.credentials import write_users

BROKER_DIR = Path(__file__).parent
TLS_PORT = 8883
LOCAL_PORT = 1883


@dataclass(frozen=True)
class BrokerOptions:
    """Where the rendered broker listens and how it logs.

    Attributes:
        tls_port, tls_host: the TLS listener (phones).
        local_port: the plain listener on 127.0.0.1 for the server's own processes; None: none.
        log_dest: Mosquitto ``log_dest`` (``stderr``, ``syslog``, ``none``...).
        run_as: the user Mosquitto switches to when started as root.
    """

    tls_port: int = TLS_PORT
    tls_host: str = "0.0.0.0"
    local_port: int | None = LOCAL_PORT
    log_dest: str = "stderr"
    run_as: str = "mosquitto"


@dataclass(frozen=True)
class OwnTls:
    """Certificates the operator brings instead of ours (any field None: made by :func:`init_broker`).

    Attributes:
        ca_cert, ca_key: an existing CA to sign the broker's certificate with.
        cert, key: a ready server certificate (e.g. from a public CA) and its key; ``ca_cert``
            alone then names the CA phones should trust (None: the system's CAs).
    """

    ca_cert: Path | None = None
    ca_key: Path | None = None
    cert: Path | None = None
    key: Path | None = None


@dataclass(frozen=True)
class BrokerInit:
    """What :func:`init_broker` wrote: the config to run and the TLS files (``tls.ca`` goes to phones)."""

    conf: Path
    tls: TlsFiles
    issued: bool  # a new server certificate was made in this run


def default_names() -> list[str]:
    """Names the broker's certificate covers unless told otherwise: this host's names and loopback."""
    host = socket.gethostname()
    return list(dict.fromkeys([socket.getfqdn(host), host, "localhost", "127.0.0.1", "::1"]))


def init_broker(
    directory: Path, options: BrokerOptions = BrokerOptions(), names: list[str] | None = None,
    own: OwnTls = OwnTls(), now: dt.datetime | None = None,
) -> BrokerInit:
    """Prepare the TLS files and render the configuration into ``directory``; safe to run again.

    Args:
        directory: where ``mosquitto.conf``, ``acl``, ``passwd``, ``data/`` and ``tls/`` go.
        options: listeners and logging.
        names: host names and IP addresses phones use to reach the broker (None: :func:`default_names`).
        own: the operator's CA or certificate, if any.
        now: the time certificates start from (UTC; None: now).
    """
    directory = directory.resolve()
    tls, issued = prepare_tls(directory / "tls", names or default_names(), own, now or dt.datetime.now(dt.timezone.utc))
    return BrokerInit(render_broker_config(directory, tls, options), tls, issued)


def prepare_tls(tls_dir: Path, names: list[str], own: OwnTls, now: dt.datetime) -> tuple[TlsFiles, bool]:
    """The TLS files to configure: the operator's certificate as given, else one issued by our (or their) CA."""
    if (own.cert is None) != (own.key is None):
        raise ValueError("give both the broker's certificate and its key, or neither")
    if own.cert is not None and own.key is not None:
        return TlsFiles(own.cert.resolve(), own.key.resolve(), own.ca_cert.resolve() if own.ca_cert else None), False
    if (own.ca_cert is None) != (own.ca_key is None):
        raise ValueError("give both the CA's certificate and its key, or neither")
    tls_dir.mkdir(parents=True, exist_ok=True)
    ca_cert = own.ca_cert.resolve() if own.ca_cert else tls_dir / "ca.crt"
    ca = ensure_ca(ca_cert, own.ca_key.resolve() if own.ca_key else tls_dir / "ca.key", now)
    cert, key = tls_dir / "server.crt", tls_dir / "server.key"
    issued = ensure_server_certificate(cert, key, ca, names, now)
    return TlsFiles(cert, key, ca_cert), issued


def render_broker_config(directory: Path, tls: TlsFiles, options: BrokerOptions = BrokerOptions()) -> Path:
    """Write ``mosquitto.conf`` and ``acl`` (and an empty ``passwd`` if none) into ``directory``.

    Returns the path of ``mosquitto.conf``; run ``mosquitto -c <it>``. Mosquitto
    keeps its persistence under ``directory/data``. Started as root, Mosquitto
    switches to the user ``options.run_as``, who must be able to read ``passwd``
    and the TLS key (both 0600).
    """
    directory = directory.resolve()
    (directory / "data").mkdir(parents=True, exist_ok=True)
    acl = directory / "acl"
    acl.write_text((BROKER_DIR / "acl").read_text(encoding="utf-8"), encoding="utf-8")
    passwd = directory / "passwd"
    if not passwd.exists():
        write_users(passwd, {})
    local = (
        f"# The server's own workers on this host: plain TCP, loopback only.\nlistener {options.local_port} 127.0.0.1"
        if options.local_port is not None else "# No plain listener: every client uses TLS."
    )  # fmt: skip
    conf = directory / "mosquitto.conf"
    template = (BROKER_DIR / "mosquitto.conf.template").read_text(encoding="utf-8")
    conf.write_text(
        template.format(
            password_file=passwd, acl_file=acl, tls_port=options.tls_port, tls_host=options.tls_host,
            certfile=tls.cert, keyfile=tls.key, local_listener=local, data_dir=directory / "data",
            log_dest=options.log_dest, user=options.run_as,
        ),
        encoding="utf-8",
    )
    return conf
