"""A real strap over BLE, through bleak: scan, connect, subscribe, reconnect.

:class:`BleakSource` implements :class:`edge.sensors.SensorSource`. It
subscribes to the Heart Rate Measurement (0x2A37), reads and (where the strap
allows) subscribes to the Battery Level (0x2A19), and on straps with Polar's
measurement service (PMD) starts ECG at 130 Hz and the accelerometer at 25 Hz
through the PMD control point, checking the strap's answer.

Link losses are expected (the patient walks away from the phone, the strap
sleeps): the source reconnects with :func:`edge.backoff.backoff_for` delays
and keeps yielding. Notifications received before a drop are queued ahead of
the drop marker, so none of them is lost. :class:`LinkHealth` counts connects,
drops and failures for the patient app's status.

Bytes are not decoded here (that is :mod:`wire.gatt`, called by the agent).
``backend`` is handed to ``bleak.BleakClient`` unchanged, so tests run this
code through bleak's own client with an in-process backend.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from edge.backoff import BLE_POLICY, backoff_for
from edge.sensors import Notification
from wire.gatt import (
    BATTERY_LEVEL_UUID,
    HEART_RATE_MEASUREMENT_UUID,
    HEART_RATE_SERVICE_UUID,
    PMD_CONTROL_POINT_UUID,
    PMD_DATA_UUID,
    PMD_MEASUREMENT_ACC,
    PMD_MEASUREMENT_ECG,
    PMD_SERVICE_UUID,
    PMD_SETTING_RANGE,
    PMD_SETTING_RESOLUTION,
    PMD_SETTING_SAMPLE_RATE,
    decode_pmd_control_response,
    encode_pmd_start,
)
from wire.errors import GattDecodeError

log = logging.getLogger(__name__)

PMD_START_ECG = encode_pmd_start(PMD_MEASUREMENT_ECG, {PMD_SETTING_SAMPLE_RATE: 130, PMD_SETTING_RESOLUTION: 14})
PMD_START_ACC = encode_pmd_start(
    PMD_MEASUREMENT_ACC, {PMD_SETTING_SAMPLE_RATE: 25, PMD_SETTING_RESOLUTION: 16, PMD_SETTING_RANGE: 8}
)
PMD_ANSWER_TIMEOUT_S = 5.0
CONNECT_TIMEOUT_S = 20.0
_DROPPED = None  # queue marker: the link went down


@dataclass
class LinkHealth:
    """What the BLE link has been through (read by the app's status page).

    Attributes:
        state: "idle", "connecting", "connected", "waiting" (backing off) or "stopped".
        address: the strap's address.
        connects: successful connections.
        drops: connections lost after they were up.
        failures: connection attempts that failed.
        pmd_refused: PMD start requests the strap answered with an error.
        last_error: the last failure in words ("" if none).
        retry_in_s: the current back-off delay while waiting, else None.
    """

    state: str = "idle"
    address: str = ""
    connects: int = 0
    drops: int = 0
    failures: int = 0
    pmd_refused: int = 0
    last_error: str = ""
    retry_in_s: float | None = None


class BleakSource:
    """A strap over BLE that reconnects by itself.

    Args:
        address: the strap's BLE address (or platform id).
        backend: a ``bleak`` client backend class; None: the platform's own.
        backend_kwargs: extra keyword arguments for that backend.
        pmd: start Polar ECG and accelerometer streaming when the strap has PMD.
        max_failures: give up (end the iteration) after this many failed
            attempts in a row; None: retry forever, as a phone should.
        clock: receive time stamps, s since epoch.
        sleep: how to wait between attempts (tests pass a recording one).
        on_connected: called with the address after each successful connect
            (the agent remembers the strap there).
    """

    def __init__(
        self,
        address: str,
        *,
        backend: type[Any] | None = None,
        backend_kwargs: dict[str, Any] | None = None,
        pmd: bool = True,
        max_failures: int | None = None,
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        on_connected: Callable[[str], None] | None = None,
    ) -> None:
        self.address = address
        self.backend, self.backend_kwargs = backend, dict(backend_kwargs or {})
        self.pmd, self.max_failures = pmd, max_failures
        self.clock, self.sleep, self.on_connected = clock, sleep, on_connected
        self.health = LinkHealth(address=address)
        self._stopping = False

    def stop(self) -> None:
        """End the iteration at the next drop or retry (the current link is left to the caller)."""
        self._stopping = True

    async def notifications(self) -> AsyncIterator[Notification]:
        """Yield notifications across reconnects until stopped or out of attempts."""
        failures = 0
        while not self._stopping:
            queue: asyncio.Queue[Notification | None] = asyncio.Queue()
            try:
                async for note in self._session(queue):
                    failures = 0
                    yield note
            except (asyncio.TimeoutError, OSError, GattDecodeError, _bleak_error()) as exc:
                failures += 1
                self.health.failures += 1
                self.health.last_error = f"{type(exc).__name__}: {exc}"
                log.warning("strap %s: %s", self.address, self.health.last_error)
            if self._stopping or (self.max_failures is not None and failures >= self.max_failures):
                break
            await self._back_off(max(failures, 1))
        self.health.state = "stopped"

    async def _back_off(self, attempt: int) -> None:
        delay = backoff_for(attempt, policy=BLE_POLICY, salt=self.address)
        self.health.state, self.health.retry_in_s = "waiting", delay
        await self.sleep(delay)
        self.health.retry_in_s = None

    async def _session(self, queue: asyncio.Queue[Notification | None]) -> AsyncIterator[Notification]:
        """One connection: subscribe, then yield until the link drops."""
        from bleak import BleakClient  # imported here: only a real (or bleak-backed) strap needs it

        self.health.state = "connecting"
        client = BleakClient(
            self.address, disconnected_callback=lambda _c: queue.put_nowait(_DROPPED),
            timeout=CONNECT_TIMEOUT_S, backend=self.backend, **self.backend_kwargs,
        )  # fmt: skip
        async with client:
            await self._subscribe(client, queue)
            self.health.state = "connected"
            self.health.connects += 1
            if self.on_connected:
                self.on_connected(self.address)
            while (item := await queue.get()) is not _DROPPED:
                assert item is not None
                yield item
            self.health.drops += 1
            self.health.state = "connecting"

    def _handler(self, uuid: str, queue: asyncio.Queue[Notification | None]) -> Callable[[Any, bytearray], None]:
        def handle(_char: Any, data: bytearray) -> None:
            queue.put_nowait(Notification(uuid, bytes(data), self.clock()))

        return handle

    async def _subscribe(self, client: Any, queue: asyncio.Queue[Notification | None]) -> None:
        await client.start_notify(HEART_RATE_MEASUREMENT_UUID, self._handler(HEART_RATE_MEASUREMENT_UUID, queue))
        battery = self._handler(BATTERY_LEVEL_UUID, queue)
        if client.services.get_characteristic(BATTERY_LEVEL_UUID) is not None:
            battery(None, await client.read_gatt_char(BATTERY_LEVEL_UUID))
            char = client.services.get_characteristic(BATTERY_LEVEL_UUID)
            if "notify" in char.properties:
                await client.start_notify(BATTERY_LEVEL_UUID, battery)
        if self.pmd and client.services.get_service(PMD_SERVICE_UUID) is not None:
            await self._start_pmd(client, queue)

    async def _start_pmd(self, client: Any, queue: asyncio.Queue[Notification | None]) -> None:
        answers: asyncio.Queue[bytes] = asyncio.Queue()
        await client.start_notify(PMD_CONTROL_POINT_UUID, lambda _c, d: answers.put_nowait(bytes(d)))
        await client.start_notify(PMD_DATA_UUID, self._handler(PMD_DATA_UUID, queue))
        for request in (PMD_START_ECG, PMD_START_ACC):
            await client.write_gatt_char(PMD_CONTROL_POINT_UUID, request, response=True)
            answer = decode_pmd_control_response(await asyncio.wait_for(answers.get(), PMD_ANSWER_TIMEOUT_S))
            if not answer.ok:
                self.health.pmd_refused += 1
                self.health.last_error = f"strap refused PMD measurement {answer.measurement}: {answer.reason}"
                log.warning("strap %s: %s", self.address, self.health.last_error)


def _bleak_error() -> type[Exception]:
    from bleak.exc import BleakError

    return BleakError


@dataclass(frozen=True)
class ScanHit:
    """A strap seen while scanning.

    Attributes:
        address: BLE address (or platform id).
        name: advertised name ("" if none).
        rssi: received signal strength, dBm (None if the platform does not say).
    """

    address: str
    name: str
    rssi: int | None


def rank_hits(hits: list[ScanHit], paired: str | None = None) -> list[ScanHit]:
    """The paired strap first, then strongest signal first, then by address (pure, stable)."""
    return sorted(hits, key=lambda h: (h.address != paired, -(h.rssi if h.rssi is not None else -999), h.address))


def scan_lines(hits: list[ScanHit], paired: str | None = None) -> list[str]:
    """One line per strap for ``pisces edge scan``: address, signal, name, and which one is paired."""
    if not hits:
        return ["no heart-rate straps found (is the strap worn and awake?)"]
    return [
        f"{h.address}  {f'{h.rssi} dBm' if h.rssi is not None else '? dBm':>8}  {h.name or '(no name)'}"
        + ("  [paired]" if h.address == paired else "")
        for h in rank_hits(hits, paired)
    ]


async def scan(timeout: float = 5.0, *, backend: type[Any] | None = None) -> list[ScanHit]:
    """Scan for BLE devices advertising the Heart Rate service (unranked; see :func:`rank_hits`)."""
    from bleak import BleakScanner

    found = await BleakScanner.discover(
        timeout=timeout, service_uuids=[HEART_RATE_SERVICE_UUID], return_adv=True, backend=backend
    )
    return [ScanHit(device.address, device.name or adv.local_name or "", adv.rssi) for device, adv in found.values()]
