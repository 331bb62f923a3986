"""Broker credentials: per-device MQTT accounts in a Mosquitto password file.

A phone's MQTT username is its device id; the shipped ACL (``server/broker/acl``)
lets it publish and subscribe only under ``pisces/v1/<device>/``. The server
account (:data:`SERVER_USERNAME`) reads all uplink and writes all downlink.

Password lines use Mosquitto's PBKDF2-SHA512 format
(``username:$7$<iterations>$<salt b64>$<hash b64>``), the format
``mosquitto_passwd`` writes, so no Mosquitto tool is needed to provision.
Mosquitto reads the file at start and on SIGHUP; a revoked device is refused
from its next connection on (see docs/server.md for disconnecting it at once).
The broker's own configuration is rendered by :mod:`server.broker.config`.
"""

from __future__ import annotations

import base64
import contextlib
import fcntl
import hashlib
import os
import secrets
import tempfile
from collections.abc import Iterator
from pathlib import Path

from wire.topics import validate_device_id

SERVER_USERNAME = "pisces-server"
PBKDF2_ITERATIONS = 1000  # per connect; Mosquitto's own default is 101
SALT_BYTES = 12
PASSWORD_BYTES = 24  # generated passwords: 32 URL-safe characters


class CredentialsError(Exception):
    """A request the credentials store refuses (bad or reserved name)."""


def hash_password(password: str, salt: bytes | None = None, iterations: int = PBKDF2_ITERATIONS) -> str:
    """Mosquitto ``$7$`` hash of a password (PBKDF2-HMAC-SHA512, random 12-byte salt)."""
    salt = secrets.token_bytes(SALT_BYTES) if salt is None else salt
    digest = hashlib.pbkdf2_hmac("sha512", password.encode(), salt, iterations)
    return f"$7${iterations}${base64.b64encode(salt).decode()}${base64.b64encode(digest).decode()}"


def verify_password(password: str, stored: str) -> bool:
    """True if ``password`` matches a ``$7$`` hash from :func:`hash_password` or mosquitto_passwd."""
    try:
        _, scheme, iterations, salt, digest = stored.split("$")
    except ValueError:
        return False
    if scheme != "7":
        return False
    return hash_password(password, base64.b64decode(salt), int(iterations)) == stored.strip()


def read_users(path: Path) -> dict[str, str]:
    """``username -> hash`` of a password file (missing file: empty)."""
    if not path.exists():
        return {}
    users = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        if line and not line.startswith("#") and ":" in line:
            name, hashed = line.split(":", 1)
            users[name] = hashed
    return users


def add_device(path: Path, device_id: str, password: str | None = None) -> str:
    """Create or replace a device's credentials; returns the password (generated unless given)."""
    try:
        validate_device_id(device_id)
    except ValueError as exc:
        raise CredentialsError(str(exc)) from exc
    if device_id == SERVER_USERNAME:
        raise CredentialsError(f"{SERVER_USERNAME!r} is the server account, not a device id")
    return _set(path, device_id, password)


def set_server_account(path: Path, password: str | None = None) -> str:
    """Create or replace the server account; returns its password (generated unless given)."""
    return _set(path, SERVER_USERNAME, password)


def revoke(path: Path, username: str) -> bool:
    """Remove an account; False if it was not there."""
    with _locked(path):
        users = read_users(path)
        if users.pop(username, None) is None:
            return False
        write_users(path, users)
    return True


def _set(path: Path, username: str, password: str | None) -> str:
    password = password or secrets.token_urlsafe(PASSWORD_BYTES)
    with _locked(path):
        users = read_users(path)
        users[username] = hash_password(password)
        write_users(path, users)
    return password


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    """Hold an exclusive lock beside the file, so two provisioning commands never lose an edit."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path.with_name(path.name + ".lock"), "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield


def write_users(path: Path, users: dict[str, str]) -> None:
    """Replace the file atomically (the broker never reads a half-written one), mode 0600."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name + ".")
    with os.fdopen(fd, "w", encoding="utf-8") as out:
        out.writelines(f"{name}:{hashed}\n" for name, hashed in sorted(users.items()))
    os.chmod(tmp, 0o600)
    os.replace(tmp, path)
