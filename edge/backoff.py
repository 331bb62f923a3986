"""Retry policy as data: how long to wait before the next attempt to reach a strap or a broker.

Pure: :func:`backoff_for` maps the number of failed attempts so far (and the
failure) to a delay in seconds; the loops that sleep live with their I/O
(:mod:`edge.ble` for the strap, :mod:`edge.uplink` for the broker).

The delay doubles from :data:`BASE_DELAY_S` up to a cap, with a deterministic
"jitter" drawn from the caller's ``salt`` (e.g. the device id), so that a fleet
of phones that lost the same broker at the same moment does not come back in
lock-step, while a test can still predict every delay.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

BASE_DELAY_S = 0.5  # first retry after a failure
BLE_MAX_DELAY_S = 30.0  # a strap out of range: keep trying twice a minute
MQTT_MAX_DELAY_S = 60.0  # a broker that is down: at most a minute between attempts
AUTH_DELAY_S = 300.0  # refused credentials will not fix themselves quickly
JITTER_FRACTION = 0.2  # delays vary by up to +-20 %


@dataclass(frozen=True)
class Policy:
    """One retry policy: first delay, cap and jitter (all seconds / fractions)."""

    base: float = BASE_DELAY_S
    cap: float = BLE_MAX_DELAY_S
    jitter: float = JITTER_FRACTION


BLE_POLICY = Policy(cap=BLE_MAX_DELAY_S)
MQTT_POLICY = Policy(cap=MQTT_MAX_DELAY_S)


class NotAuthorized(Exception):
    """A failure that retrying soon cannot fix (refused credentials, no permission)."""


def backoff_for(attempt: int, error: BaseException | None = None, *, policy: Policy = BLE_POLICY, salt: str = "") -> float:
    """Delay before retry number ``attempt`` (1 = the first retry), in seconds.

    Args:
        attempt: failed attempts so far, >= 1 (0 is treated as 1).
        error: the failure; :class:`NotAuthorized` waits :data:`AUTH_DELAY_S`.
        policy: base delay, cap and jitter fraction.
        salt: spreads the jitter between callers (e.g. the device id); same
            inputs always give the same delay.

    Returns:
        ``min(cap, base * 2**(attempt-1))`` scaled by a factor in
        ``[1 - jitter, 1 + jitter]``, never above ``cap`` (or AUTH_DELAY_S).
    """
    if isinstance(error, NotAuthorized):
        return AUTH_DELAY_S
    n = max(1, attempt)
    raw = policy.base * 2.0 ** min(n - 1, 32)
    delay = min(policy.cap, raw) * (1.0 + policy.jitter * _unit(f"{salt}:{n}"))
    return min(policy.cap, delay)


def _unit(text: str) -> float:
    """A deterministic number in [-1, 1) from ``text``."""
    digest = hashlib.blake2b(text.encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") / 2**63 - 1.0
