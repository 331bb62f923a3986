"""Where raw GATT notifications come from: the ``SensorSource`` seam.

The agent only sees :class:`Notification` objects (characteristic UUID, raw
bytes, receive time), so a real strap (:class:`edge.ble.BleakSource`) and the
simulators' virtual strap (``simulators.wearable.VirtualWearable``) are
interchangeable, and the agent runs unchanged against either.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Protocol, runtime_checkable


@dataclass(frozen=True)
class Notification:
    """One GATT notification as the phone received it.

    Attributes:
        uuid: characteristic UUID, lower-case 128-bit string.
        data: the raw characteristic value.
        time: phone receive time, s since epoch (simulated time in simulations).
    """

    uuid: str
    data: bytes
    time: float


@runtime_checkable
class SensorSource(Protocol):
    """A source of GATT notifications; the iterator ends when the source is exhausted.

    A source may also offer a ``health`` attribute (:class:`edge.ble.LinkHealth`)
    that the patient app shows; the agent does not require it.
    """

    def notifications(self) -> AsyncIterator[Notification]:
        """Yield notifications in receive order until the sensor goes away."""
        ...
