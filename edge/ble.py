"""A real strap over BLE, through bleak: scan, connect, subscribe, reconnect.

:class:`BleakSource` implements :class:`edge.sensors.SensorSource`. It
subscribes to the Heart Rate Measurement (0x2A37), reads and (where the strap
allows) subscribes to the Battery Level (0x2A19), and on straps with Polar's
measurement service (PMD) starts ECG at 130 Hz and the accelerometer at 25 Hz
through the PMD control point, checking the strap's answers
(:mod:`edge.pmd`).

A clean close (:meth:`BleakSource.stop`, closing the iterator, or cancelling
the task that consumes it, e.g. Ctrl-C) sends the PMD stop commands and checks
their answers before disconnecting, within a bounded wait; a refusal or no
answer is counted, never raised. A dropped link sends nothing (there is no
link to write to; the strap stops streaming when its link closes).

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
import contextlib
import enum
import logging
import time
from collections.abc import AsyncGenerator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Union

from edge.backoff import BLE_POLICY, backoff_for
from edge.pmd import PMD_STOP_TIMEOUT_S, PmdControl
from edge.sensors import Notification
from wire.errors import GattDecodeError
from wire.gatt import (
    BATTERY_LEVEL_UUID,
    HEART_RATE_MEASUREMENT_UUID,
    HEART_RATE_SERVICE_UUID,
    PMD_DATA_UUID,
    PMD_SERVICE_UUID,
)

log = logging.getLogger(__name__)

CONNECT_TIMEOUT_S = 20.0


class _Marker(enum.Enum):
    """Queue markers beside the notifications."""

    DROPPED = "the link went down"
    STOP = "stop() was called"


_Item = Union[Notification, _Marker]


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
        pmd_stop_refused: PMD stop requests the strap answered with an error.
        pmd_stop_unanswered: PMD stop requests left without an answer (bounded
            wait ran out, or the write failed).
        last_error: the last failure in words ("" if none).
        retry_in_s: the current back-off delay while waiting, else None.
    """

    state: str = "idle"
    address: str = ""
    connects: int = 0
    drops: int = 0
    failures: int = 0
    pmd_refused: int = 0
    pmd_stop_refused: int = 0
    pmd_stop_unanswered: int = 0
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
        pmd_stop_timeout: s to wait for the answers to the PMD stop requests
            on a clean close (all together).
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
        pmd_stop_timeout: float = PMD_STOP_TIMEOUT_S,
    ) -> None:
        self.address = address
        self.backend, self.backend_kwargs = backend, dict(backend_kwargs or {})
        self.pmd, self.max_failures = pmd, max_failures
        self.clock, self.sleep, self.on_connected = clock, sleep, on_connected
        self.pmd_stop_timeout = pmd_stop_timeout
        self.health = LinkHealth(address=address)
        self._stopping = False
        self._queue: asyncio.Queue[_Item] | None = None

    def stop(self) -> None:
        """End the iteration cleanly (call it on the event loop's thread).

        The notifications already received are still yielded; then an open link
        gets the PMD stop commands and is disconnected, and the iteration ends.
        A connection under way is completed and closed the same way; during a
        back-off wait the iteration ends when the wait does.
        """
        self._stopping = True
        if self._queue is not None:
            self._queue.put_nowait(_Marker.STOP)

    async def notifications(self) -> AsyncGenerator[Notification, None]:
        """Yield notifications across reconnects until stopped, closed (``aclose``) or out of attempts."""
        try:
            async with contextlib.aclosing(self._reconnecting()) as notes:
                async for note in notes:
                    yield note
        finally:
            self.health.state, self._queue = "stopped", None

    async def _reconnecting(self) -> AsyncGenerator[Notification, None]:
        failures = 0
        while not self._stopping:
            queue: asyncio.Queue[_Item] = asyncio.Queue()
            self._queue = queue
            try:
                async with contextlib.aclosing(self._session(queue)) as session:  # closed here, not by the GC
                    async for note in session:
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

    async def _back_off(self, attempt: int) -> None:
        delay = backoff_for(attempt, policy=BLE_POLICY, salt=self.address)
        self.health.state, self.health.retry_in_s = "waiting", delay
        await self.sleep(delay)
        self.health.retry_in_s = None

    async def _session(self, queue: asyncio.Queue[_Item]) -> AsyncGenerator[Notification, None]:
        """One connection: subscribe, yield until the link drops or the source is closed."""
        from bleak import BleakClient  # imported here: only a real (or bleak-backed) strap needs it

        self.health.state = "connecting"
        client = BleakClient(
            self.address, disconnected_callback=lambda _c: queue.put_nowait(_Marker.DROPPED),
            timeout=CONNECT_TIMEOUT_S, backend=self.backend, **self.backend_kwargs,
        )  # fmt: skip
        async with client:
            pmd = await self._subscribe(client, queue)
            self.health.state = "connected"
            self.health.connects += 1
            if self.on_connected:
                self.on_connected(self.address)
            dropped = False
            try:
                while not isinstance(item := await queue.get(), _Marker):
                    yield item
                dropped = item is _Marker.DROPPED
            finally:  # also on aclose() and on cancellation: both are the phone's own, clean close
                if pmd is not None and not dropped:
                    await self._stop_pmd(pmd)
        if dropped:
            self.health.drops += 1
            self.health.state = "connecting"
        while not queue.empty():  # received between stop() and the disconnect
            if isinstance(item := queue.get_nowait(), Notification):
                yield item

    def _handler(self, uuid: str, queue: asyncio.Queue[_Item]) -> Callable[[Any, bytearray], None]:
        def handle(_char: Any, data: bytearray) -> None:
            queue.put_nowait(Notification(uuid, bytes(data), self.clock()))

        return handle

    async def _subscribe(self, client: Any, queue: asyncio.Queue[_Item]) -> PmdControl | None:
        """Subscribe HR and battery, start the PMD streams if the strap has them (their control, else None)."""
        await client.start_notify(HEART_RATE_MEASUREMENT_UUID, self._handler(HEART_RATE_MEASUREMENT_UUID, queue))
        battery = self._handler(BATTERY_LEVEL_UUID, queue)
        if client.services.get_characteristic(BATTERY_LEVEL_UUID) is not None:
            battery(None, await client.read_gatt_char(BATTERY_LEVEL_UUID))
            char = client.services.get_characteristic(BATTERY_LEVEL_UUID)
            if "notify" in char.properties:
                await client.start_notify(BATTERY_LEVEL_UUID, battery)
        if not self.pmd or client.services.get_service(PMD_SERVICE_UUID) is None:
            return None
        pmd = PmdControl(client, stop_timeout=self.pmd_stop_timeout)
        await pmd.open(self._handler(PMD_DATA_UUID, queue))
        for problem in await pmd.start():
            self._count("pmd_refused", problem)
        return pmd

    async def _stop_pmd(self, pmd: PmdControl) -> None:
        refused, unanswered = await pmd.stop()
        for problem in refused:
            self._count("pmd_stop_refused", problem)
        for problem in unanswered:
            self._count("pmd_stop_unanswered", problem)

    def _count(self, counter: str, problem: str) -> None:
        """Count a problem in ``health`` and keep it as the last error."""
        setattr(self.health, counter, getattr(self.health, counter) + 1)
        self.health.last_error = problem
        log.warning("strap %s: %s", self.address, problem)


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
