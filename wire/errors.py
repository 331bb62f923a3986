"""Errors raised by the wire contract.

Every error carries structured fields, so callers never parse message text::

    WireError                      root of this package's errors
    ├── TopicError                 a topic string that is not one of ours (``topic``)
    └── WireDecodeError            bytes that are not a valid message (``reason``, ``field``)
        └── GattDecodeError        a BLE characteristic value that cannot be decoded (``uuid``)
"""

from __future__ import annotations


class WireError(Exception):
    """Root of all wire-contract errors."""


class TopicError(WireError):
    """A topic that does not follow ``pisces/v1/<device>/<kind>``."""

    def __init__(self, topic: str, reason: str) -> None:
        super().__init__(f"bad topic {topic!r}: {reason}")
        self.topic = topic
        self.reason = reason


class WireDecodeError(WireError):
    """A payload that cannot be decoded or fails validation.

    Attributes:
        reason: short machine-readable reason, e.g. ``"not_json"``, ``"missing"``,
            ``"type"``, ``"range"``, ``"unknown_field"``, ``"version"``.
        field: dotted path of the offending field, or ``""`` for the whole payload.
        detail: human-readable explanation.
    """

    def __init__(self, reason: str, field: str = "", detail: str = "") -> None:
        where = f" at {field!r}" if field else ""
        super().__init__(f"{reason}{where}: {detail}" if detail else f"{reason}{where}")
        self.reason = reason
        self.field = field
        self.detail = detail


class GattDecodeError(WireDecodeError):
    """A BLE GATT characteristic value that is truncated or malformed."""

    def __init__(self, uuid: str, reason: str, detail: str = "") -> None:
        super().__init__(reason, field=uuid, detail=detail)
        self.uuid = uuid
