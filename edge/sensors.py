"""Where raw GATT notifications come from: the ``SensorSource`` seam and a bleak source.

The agent only sees :class:`Notification` objects (characteristic UUID, raw
bytes, receive time), so a real strap (:class:`BleakSource`) and the
simulators' virtual strap (``simulators.wearable.VirtualWearable``) are
interchangeable. ``BleakSource`` is thin glue around bleak and has not been
tested against hardware in this repository (no BLE adapter on the build
machine): it is importable and type-correct, no more is claimed.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

from wire.gatt import (
    BATTERY_LEVEL_UUID,
    HEART_RATE_MEASUREMENT_UUID,
    PMD_CONTROL_POINT_UUID,
    PMD_DATA_UUID,
)

# Polar PMD control point "start measurement" requests: op 0x02, type, then
# (setting id, count, value uint16) triples: sample rate, resolution (and range for ACC).
PMD_START_ECG = bytes([0x02, 0x00, 0x00, 0x01, 0x82, 0x00, 0x01, 0x01, 0x0E, 0x00])  # 130 Hz, 14 bit
PMD_START_ACC = bytes(
    [0x02, 0x02, 0x00, 0x01, 0x19, 0x00, 0x01, 0x01, 0x10, 0x00, 0x02, 0x01, 0x08, 0x00]
)  # 25 Hz, 16 bit, 8 g


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
    """A source of GATT notifications; the iterator ends when the source is exhausted."""

    def notifications(self) -> AsyncIterator[Notification]:
        """Yield notifications in receive order until the sensor goes away."""
        ...


class BleakSource:
    """A real strap over BLE: heart rate, battery and (on Polar straps) PMD ECG/ACC."""

    def __init__(self, address: str, *, pmd: bool = True, connect_timeout: float = 20.0) -> None:
        self.address = address
        self.pmd = pmd
        self.connect_timeout = connect_timeout

    async def notifications(self) -> AsyncIterator[Notification]:
        """Connect, subscribe and yield notifications until disconnected."""
        from bleak import BleakClient  # imported here: only a real strap needs it

        queue: asyncio.Queue[Notification | None] = asyncio.Queue()

        def handler_for(uuid: str) -> Any:
            def handle(_char: Any, data: bytearray) -> None:
                queue.put_nowait(Notification(uuid, bytes(data), time.time()))

            return handle

        def disconnected(_client: Any) -> None:
            queue.put_nowait(None)

        async with BleakClient(self.address, disconnected_callback=disconnected, timeout=self.connect_timeout) as client:
            await client.start_notify(HEART_RATE_MEASUREMENT_UUID, handler_for(HEART_RATE_MEASUREMENT_UUID))
            await self._start_battery(client, handler_for(BATTERY_LEVEL_UUID))
            if self.pmd:
                await self._start_pmd(client, handler_for(PMD_DATA_UUID))
            while (item := await queue.get()) is not None:
                yield item

    async def _start_battery(self, client: Any, handler: Any) -> None:
        current = await client.read_gatt_char(BATTERY_LEVEL_UUID)
        handler(None, bytearray(current))
        try:
            await client.start_notify(BATTERY_LEVEL_UUID, handler)
        except Exception:  # noqa: BLE001 - many straps do not notify battery; the read suffices
            pass

    async def _start_pmd(self, client: Any, handler: Any) -> None:
        await client.start_notify(PMD_CONTROL_POINT_UUID, lambda _c, _d: None)
        await client.start_notify(PMD_DATA_UUID, handler)
        await client.write_gatt_char(PMD_CONTROL_POINT_UUID, PMD_START_ECG, response=True)
        await client.write_gatt_char(PMD_CONTROL_POINT_UUID, PMD_START_ACC, response=True)


async def scan(timeout: float = 5.0) -> list[tuple[str, str]]:
    """Scan for BLE devices advertising the Heart Rate service: [(address, name)]."""
    from bleak import BleakScanner

    from wire.gatt import HEART_RATE_SERVICE_UUID

    found = await BleakScanner.discover(timeout=timeout, service_uuids=[HEART_RATE_SERVICE_UUID])
    return [(d.address, d.name or "") for d in found]
