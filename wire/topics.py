"""MQTT topics of protocol version 1: ``pisces/v1/<device>/<kind>``.

Uplink kinds (phone -> server): ``summary``, ``event``, ``strip``, ``status``.
Downlink kinds (server -> phone): ``notify``, ``config`` (retained).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import Enum

from wire.errors import TopicError

PREFIX = "pisces"
VERSION = "v1"
DEVICE_ID_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$")


class Kind(str, Enum):
    """What a topic carries, and in which direction."""

    SUMMARY = "summary"
    EVENT = "event"
    STRIP = "strip"
    STATUS = "status"
    NOTIFY = "notify"
    CONFIG = "config"

    @property
    def is_uplink(self) -> bool:
        """True for messages the phone sends to the server."""
        return self in UPLINK_KINDS


UPLINK_KINDS = frozenset({Kind.SUMMARY, Kind.EVENT, Kind.STRIP, Kind.STATUS})
DOWNLINK_KINDS = frozenset({Kind.NOTIFY, Kind.CONFIG})


def validate_device_id(device_id: str) -> str:
    """Return ``device_id`` if it is 1-64 characters of ``[A-Za-z0-9_-]``, else raise ValueError."""
    if not isinstance(device_id, str) or not DEVICE_ID_PATTERN.match(device_id):
        raise ValueError(f"invalid device id {device_id!r}: use 1-64 of A-Z a-z 0-9 _ -")
    return device_id


@dataclass(frozen=True)
class Topic:
    """One concrete topic, e.g. ``pisces/v1/dev-001/summary``."""

    device_id: str
    kind: Kind

    def __post_init__(self) -> None:
        validate_device_id(self.device_id)
        if type(self.kind) is not Kind:  # a kind's value ("summary"); parse passes the member itself
            object.__setattr__(self, "kind", Kind(self.kind))

    def __str__(self) -> str:
        return f"{PREFIX}/{VERSION}/{self.device_id}/{self.kind.value}"

    @classmethod
    def parse(cls, topic: str) -> Topic:
        """Parse a topic string; raise TopicError if it is not one of ours."""
        parts = topic.split("/")
        if len(parts) != 4 or parts[0] != PREFIX:
            raise TopicError(topic, f"expected {PREFIX}/{VERSION}/<device>/<kind>")
        if parts[1] != VERSION:
            raise TopicError(topic, f"unsupported protocol version {parts[1]!r}")
        kind = _KINDS.get(parts[3])  # parse runs for every message the server takes: a dict, not Kind()
        if kind is None:
            raise TopicError(topic, f"{parts[3]!r} is not a valid Kind")
        try:
            return cls(parts[2], kind)
        except ValueError as exc:
            raise TopicError(topic, str(exc)) from exc


_KINDS: dict[str, Kind] = {k.value: k for k in Kind}


def topic_for(device_id: str, kind: Kind | str) -> str:
    """Build the topic string for one device and kind."""
    return str(Topic(device_id, Kind(kind)))


def uplink_filter(kind: Kind | str | None = None) -> str:
    """Subscription filter for one uplink kind of every device (all uplink kinds if None)."""
    return f"{PREFIX}/{VERSION}/+/{Kind(kind).value if kind else '+'}"


def device_filter(device_id: str) -> str:
    """Subscription filter for every topic of one device (what its ACL grants)."""
    return f"{PREFIX}/{VERSION}/{validate_device_id(device_id)}/#"
