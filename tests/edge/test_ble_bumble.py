"""The bleak code path, end to end, over a virtual BLE link.

No radio and no kernel vhci device: Google's ``bumble`` stack runs two virtual
controllers on an in-process link. One is a virtual strap (a GATT server with
the Heart Rate, Battery and Polar PMD services) that sends the simulators'
``VirtualWearable`` bytes as GATT notifications; the other is the phone. The
phone side is reached only through ``bleak.BleakClient(..., backend=...)``: the
``BumbleBleakBackend`` below maps bleak's backend interface onto bumble's GATT
client, so :class:`edge.ble.BleakSource` runs unchanged on top of bleak's own
client facade, ATT/GATT discovery, subscriptions, control point writes and
indications, and real link drops.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("bumble")

from bleak.backends.characteristic import BleakGATTCharacteristic  # noqa: E402
from bleak.backends.client import BaseBleakClient  # noqa: E402
from bleak.backends.descriptor import BleakGATTDescriptor  # noqa: E402
from bleak.backends.service import BleakGATTService, BleakGATTServiceCollection  # noqa: E402
from bleak.uuids import normalize_uuid_str  # noqa: E402
from bumble.controller import Controller  # noqa: E402
from bumble.core import UUID  # noqa: E402
from bumble.device import Connection, Device, Peer  # noqa: E402
from bumble.gatt import Characteristic, CharacteristicValue, Service  # noqa: E402
from bumble.hci import Address  # noqa: E402
from bumble.host import Host  # noqa: E402
from bumble.link import LocalLink  # noqa: E402
from bumble.transport.common import AsyncPipeSink  # noqa: E402

from edge.agent import EdgeAgent, paired_strap, remember_strap  # noqa: E402
from edge.app.status import status_of  # noqa: E402
from edge.ble import BleakSource  # noqa: E402
from edge.outbox import Outbox  # noqa: E402
from edge.sensors import Notification  # noqa: E402
from simulators.scenarios import load_scenario  # noqa: E402
from simulators.wearable import VirtualWearable  # noqa: E402
from wire import GattDecodeError, Summary, decode  # noqa: E402
from wire.gatt import (  # noqa: E402
    BATTERY_LEVEL_UUID,
    HEART_RATE_MEASUREMENT_UUID,
    PMD_CONTROL_POINT_UUID,
    PMD_DATA_UUID,
    PMD_MEASUREMENT_ACC,
    PMD_OP_START,
    PMD_OP_STOP,
    PMD_SERVICE_UUID,
    PMD_STATUS,
    PmdControlRequest,
    decode_pmd_control_request,
    encode_pmd_control_response,
)

PHONE, STRAP = "F0:F0:F0:F0:F0:F0", "F1:F1:F1:F1:F1:F1"
START = 1_700_000_000.0
MTU = 247  # what a Polar H10 and a current phone agree on
_PROPS = {
    Characteristic.Properties.READ: "read",
    Characteristic.Properties.WRITE: "write",
    Characteristic.Properties.WRITE_WITHOUT_RESPONSE: "write-without-response",
    Characteristic.Properties.NOTIFY: "notify",
    Characteristic.Properties.INDICATE: "indicate",
}


def _uuid(u: UUID) -> str:
    return normalize_uuid_str(u.to_hex_str("-"))


class BumbleBleakBackend(BaseBleakClient):
    """A bleak client backend on a bumble ``Device`` (the phone's virtual controller)."""

    def __init__(self, address: Any, *, central: Device, **kwargs: Any) -> None:
        super().__init__(address, disconnected_callback=kwargs["disconnected_callback"], timeout=kwargs["timeout"])
        self._central = central
        self._conn: Connection | None = None
        self._closing = False

    @property
    def name(self) -> str:
        return "virtual strap"

    @property
    def mtu_size(self) -> int:
        return self._conn.att_mtu if self._conn else 23

    @property
    def is_connected(self) -> bool:
        return self._conn is not None

    async def connect(self, pair: bool, **kwargs: Any) -> None:
        self._conn = await asyncio.wait_for(self._central.connect(Address(self.address)), self._timeout)
        self._conn.on(self._conn.EVENT_DISCONNECTION, self._on_disconnection)
        peer = Peer(self._conn)
        await peer.request_mtu(MTU)  # as BlueZ does; at the default 23 a PMD frame would be cut to 20 bytes
        await peer.discover_all()
        self.services = self._collection(peer)

    def _on_disconnection(self, *_: Any) -> None:
        self._conn = None
        if not self._closing and self._disconnected_callback:
            self._disconnected_callback()

    def _collection(self, peer: Peer) -> BleakGATTServiceCollection:
        found = BleakGATTServiceCollection()
        for s in peer.services:
            service = BleakGATTService(s, s.handle, _uuid(s.uuid))
            found.add_service(service)
            for c in s.characteristics:
                props = [name for flag, name in _PROPS.items() if c.properties & flag]
                found.add_characteristic(
                    BleakGATTCharacteristic(c, c.handle, _uuid(c.uuid), props, lambda: self.mtu_size - 3, service)
                )
        return found

    async def disconnect(self) -> None:
        if self._conn is not None:
            self._closing = True
            await self._conn.disconnect()

    async def pair(self, *args: Any, **kwargs: Any) -> None:
        raise NotImplementedError("the virtual strap needs no pairing")

    async def unpair(self) -> None:
        raise NotImplementedError("the virtual strap needs no pairing")

    async def read_gatt_char(self, characteristic: BleakGATTCharacteristic, **kwargs: Any) -> bytearray:
        return bytearray(await characteristic.obj.read_value())

    async def read_gatt_descriptor(self, descriptor: BleakGATTDescriptor, **kwargs: Any) -> bytearray:
        raise NotImplementedError

    async def write_gatt_char(self, characteristic: BleakGATTCharacteristic, data: Any, response: bool) -> None:
        await characteristic.obj.write_value(bytes(data), with_response=response)

    async def write_gatt_descriptor(self, descriptor: BleakGATTDescriptor, data: Any) -> None:
        raise NotImplementedError

    async def start_notify(self, characteristic: BleakGATTCharacteristic, callback: Any, **kwargs: Any) -> None:
        await characteristic.obj.subscribe(lambda value: callback(bytearray(value)))

    async def stop_notify(self, characteristic: BleakGATTCharacteristic) -> None:
        await characteristic.obj.unsubscribe()


class VirtualStrap:
    """A bumble GATT server playing a ``VirtualWearable``; may drop the link every ``drop_every`` notifications.

    Its PMD control point behaves as an H10's: every request is decoded and
    logged, and answered with an indication ``F0 op type status 00``. A start
    runs that stream (refused with "not supported" for ACC if ``refuse_acc``;
    "already in state" if it runs), a stop ends it ("already in state" if it
    does not run; ``stop_status`` makes it refuse every stop, ``answer_stops``
    False makes it never answer one), and the streams end when the link closes.
    Only the PMD frames of running streams are sent.
    """

    def __init__(
        self, device: Device, wearable: VirtualWearable, *, drop_every: int = 0, refuse_acc: bool = False,
        stop_status: int = 0, answer_stops: bool = True,
    ) -> None:  # fmt: skip
        self.device, self.wearable = device, wearable
        self.drop_every, self.refuse_acc = drop_every, refuse_acc
        self.stop_status, self.answer_stops = stop_status, answer_stops
        self.sent: list[tuple[str, bytes]] = []
        self.writes: list[bytes] = []  # every control point write, as received
        self.log: list[str] = []  # requests by name, their status, and disconnections, in order
        self.running: set[int] = set()  # PMD measurement types streaming now
        self.running_at_disconnect: list[set[int]] = []
        self.now = wearable.start_time
        self.drops = 0
        self._dropped_at = 0  # len(sent) at the last drop (drop once per count)
        self.streaming = asyncio.Event()
        self.connection: Connection | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self.hr = Characteristic(UUID(HEART_RATE_MEASUREMENT_UUID), Characteristic.Properties.NOTIFY, 0, b"")
        self.battery = Characteristic(
            UUID(BATTERY_LEVEL_UUID), Characteristic.Properties.READ | Characteristic.Properties.NOTIFY,
            Characteristic.READABLE, bytes([90]),
        )  # fmt: skip
        self.control = Characteristic(
            UUID(PMD_CONTROL_POINT_UUID), Characteristic.Properties.WRITE | Characteristic.Properties.INDICATE,
            Characteristic.WRITEABLE, CharacteristicValue(write=self._on_control),
        )  # fmt: skip
        self.data = Characteristic(UUID(PMD_DATA_UUID), Characteristic.Properties.NOTIFY, 0, b"")
        device.add_service(Service(UUID("0000180d-0000-1000-8000-00805f9b34fb"), [self.hr]))
        device.add_service(Service(UUID("0000180f-0000-1000-8000-00805f9b34fb"), [self.battery]))
        device.add_service(Service(UUID(PMD_SERVICE_UUID), [self.control, self.data]))
        device.on(device.EVENT_CONNECTION, self._on_connection)

    def _on_connection(self, connection: Connection) -> None:
        self.connection = connection
        connection.on(connection.EVENT_DISCONNECTION, self._on_disconnection)

    def _on_disconnection(self, *_: Any) -> None:
        self.log.append("disconnected")
        self.running_at_disconnect.append(set(self.running))
        self.running.clear()  # an H10 ends its measurements when the link closes
        self.streaming.clear()

    def _on_control(self, _connection: Any, value: bytes) -> None:
        self.writes.append(bytes(value))
        try:
            request = decode_pmd_control_request(value)
        except GattDecodeError:
            self._indicate(encode_pmd_control_response(value[0], value[1] if len(value) > 1 else 0, 5))
            return
        status = self._apply(request)
        self.log.append(f"{request.name}: {PMD_STATUS[status]}")
        if request.op == PMD_OP_STOP and not self.answer_stops:
            return
        self._indicate(encode_pmd_control_response(request.op, request.measurement, status))
        if request.op == PMD_OP_START and request.measurement == PMD_MEASUREMENT_ACC:
            self.streaming.set()  # the phone has set everything up

    def _apply(self, request: PmdControlRequest) -> int:
        """The status of a request, as an H10 would answer it (and its effect on the running streams)."""
        running = request.measurement in self.running
        if request.op == PMD_OP_START:
            if self.refuse_acc and request.measurement == PMD_MEASUREMENT_ACC:
                return 3  # not supported
            self.running.add(request.measurement)
            return 6 if running else 0
        if request.op == PMD_OP_STOP and self.stop_status == 0:
            self.running.discard(request.measurement)
            return 0 if running else 6  # already in state
        return self.stop_status

    def _indicate(self, answer: bytes) -> None:
        task = asyncio.get_running_loop().create_task(self.device.indicate_subscribers(self.control, answer))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def play(self) -> None:
        """Send every notification of the wearable, in order, dropping the link as configured."""
        chars = {HEART_RATE_MEASUREMENT_UUID: self.hr, BATTERY_LEVEL_UUID: self.battery, PMD_DATA_UUID: self.data}
        await self.device.start_advertising(advertising_interval_min=1.0, auto_restart=True)
        async for note in self.wearable.notifications():
            due = self.drop_every and self.sent and len(self.sent) % self.drop_every == 0
            if due and self._dropped_at != len(self.sent) and self.connection:
                self.drops, self._dropped_at = self.drops + 1, len(self.sent)  # before a send: the phone sees it
                await self.connection.disconnect()
                self.streaming.clear()
            await self.streaming.wait()
            if note.uuid == PMD_DATA_UUID and note.data[0] not in self.running:
                continue  # a stream the strap does not run sends nothing
            self.now = note.time
            await self.device.notify_subscribers(chars[note.uuid], note.data)
            self.sent.append((note.uuid, note.data))


async def _devices() -> tuple[Device, Device]:
    link = LocalLink()
    devices = []
    for address in (PHONE, STRAP):
        controller = Controller(address, link=link, public_address=address)
        devices.append(Device(address=Address(address), host=Host(controller, AsyncPipeSink(controller))))
    for d in devices:
        await d.power_on()
    return devices[0], devices[1]


async def _collect(source: BleakSource, strap: VirtualStrap) -> list[Notification]:
    """Everything the source yields while the strap plays it all; then ``source.stop()`` and iterate to the end."""
    got: list[Notification] = []
    player = asyncio.create_task(strap.play())

    async def consume() -> None:
        async for note in source.notifications():
            got.append(note)

    consumer = asyncio.create_task(consume())
    await asyncio.wait_for(player, 60)
    await _until(lambda: len(got) - source.health.connects >= len(strap.sent))  # plus a battery read per connect
    source.stop()
    await asyncio.wait_for(consumer, 30)  # the source stops the PMD streams, disconnects, and ends
    await _until(lambda: strap.log[-1] == "disconnected")
    return got


async def _close_mid_stream(source: BleakSource, strap: VirtualStrap, how: str, after: int = 20) -> None:
    """Consume ``after`` notifications while the strap streams, then close the iterator or cancel its consumer.

    ``aclose``: leave the loop of an ``aclosing`` iterator; ``cancel``: cancel
    the consuming task, as Ctrl-C does to ``pisces edge run``.
    """
    player = asyncio.create_task(strap.play())
    reached = asyncio.Event()

    async def consume() -> None:
        seen = 0
        async with contextlib.aclosing(source.notifications()) as notes:
            async for _note in notes:
                seen += 1
                if seen == after and how == "aclose":
                    break
                if seen == after:
                    reached.set()

    consumer = asyncio.create_task(consume())
    if how == "cancel":
        await asyncio.wait_for(reached.wait(), 60)
        consumer.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await asyncio.wait_for(consumer, 60)
    await _until(lambda: strap.log[-1] == "disconnected")
    player.cancel()  # it waits for a phone that is gone
    with contextlib.suppress(asyncio.CancelledError):
        await player


async def _until(condition: Callable[[], bool], timeout: float = 10.0) -> None:
    """Wait (bounded) for the virtual strap to see what the phone did."""
    async with asyncio.timeout(timeout):
        while not condition():
            await asyncio.sleep(0.01)


def _source(phone: Device, strap_device: Device, **kwargs: Any) -> BleakSource:
    delays: list[float] = kwargs.pop("delays", [])

    async def no_wait(delay: float) -> None:
        delays.append(delay)
        await asyncio.sleep(0.01)

    return BleakSource(
        str(strap_device.random_address), backend=BumbleBleakBackend, backend_kwargs={"central": phone},
        clock=lambda: START, sleep=no_wait, **kwargs,
    )  # fmt: skip


def test_bleak_client_reads_every_notification_of_a_virtual_strap(tmp_path: Path) -> None:
    box = Outbox(tmp_path / "o.sqlite3")

    async def scenario() -> tuple[list[Notification], VirtualStrap, BleakSource]:
        phone, strap_device = await _devices()
        wearable = VirtualWearable(load_scenario("baseline"), start_time=START, duration_s=20, speed=0)
        strap = VirtualStrap(strap_device, wearable)
        source = _source(phone, strap_device, on_connected=lambda a: remember_strap(box, a))  # as `edge run` does
        return await _collect(source, strap), strap, source

    with box:
        got, strap, source = asyncio.run(scenario())
        assert paired_strap(box) == source.address  # remembered after the connect, for the next run
    battery_read = got[0]
    assert (battery_read.uuid, battery_read.data) == (BATTERY_LEVEL_UUID, bytes([90]))  # read on connect
    assert [(n.uuid, n.data) for n in got[1:]] == strap.sent  # every byte, in order, through bleak
    assert {n.uuid for n in got} == {HEART_RATE_MEASUREMENT_UUID, BATTERY_LEVEL_UUID, PMD_DATA_UUID}
    assert source.health.connects == 1 and source.health.drops == 0 and source.health.pmd_refused == 0


def test_a_strap_that_drops_the_link_every_few_seconds_loses_nothing(tmp_path: Path) -> None:
    delays: list[float] = []

    async def scenario() -> tuple[list[Notification], VirtualStrap, BleakSource]:
        phone, strap_device = await _devices()
        wearable = VirtualWearable(load_scenario("baseline"), start_time=START, duration_s=30, speed=0)
        strap = VirtualStrap(strap_device, wearable, drop_every=15, refuse_acc=True)
        source = _source(phone, strap_device, delays=delays)
        return await _collect(source, strap), strap, source

    got, strap, source = asyncio.run(scenario())
    streamed = [(n.uuid, n.data) for n in got if not (n.uuid == BATTERY_LEVEL_UUID and n.data == bytes([90]))]
    assert [s for s in strap.sent if s != (BATTERY_LEVEL_UUID, bytes([90]))] == streamed
    drops = strap.drops
    assert drops >= 5 and source.health.drops == drops and source.health.connects == drops + 1
    assert source.health.pmd_refused == drops + 1 and "not supported" in source.health.last_error
    assert len(delays) == drops and all(0 < d <= 1.0 for d in delays)  # first retry after each drop
    # no stop on a drop (no link to write to); at the clean end, only the stream the strap accepted
    assert [w for w in strap.writes if w[0] == PMD_OP_STOP] == [bytes([0x03, 0x00])]


@pytest.mark.parametrize("how", ["stop", "aclose", "cancel"])
def test_a_clean_close_stops_the_pmd_streams_before_disconnecting(how: str) -> None:
    async def scenario() -> tuple[VirtualStrap, BleakSource]:
        phone, strap_device = await _devices()
        wearable = VirtualWearable(load_scenario("baseline"), start_time=START, duration_s=30, speed=0)
        strap = VirtualStrap(strap_device, wearable)
        source = _source(phone, strap_device)
        if how == "stop":
            await _collect(source, strap)
        else:
            await _close_mid_stream(source, strap, how)
        return strap, source

    strap, source = asyncio.run(scenario())
    assert strap.writes[-2:] == [bytes([0x03, 0x00]), bytes([0x03, 0x02])]  # Polar's stop ECG, stop ACC
    assert strap.log[-3:] == ["stop ECG: success", "stop ACC: success", "disconnected"]
    assert strap.running_at_disconnect == [set()]  # the streams had ended before the link closed
    h = source.health
    assert (h.pmd_stop_refused, h.pmd_stop_unanswered, h.drops, h.state) == (0, 0, 0, "stopped")


@pytest.mark.parametrize("answer_stops", [True, False], ids=["refused", "unanswered"])
def test_a_strap_that_refuses_or_ignores_the_stop_commands_is_counted(answer_stops: bool, tmp_path: Path) -> None:
    async def scenario() -> tuple[list[Notification], VirtualStrap, BleakSource]:
        phone, strap_device = await _devices()
        wearable = VirtualWearable(load_scenario("baseline"), start_time=START, duration_s=5, speed=0)
        strap = VirtualStrap(strap_device, wearable, stop_status=12, answer_stops=answer_stops)
        source = _source(phone, strap_device, pmd_stop_timeout=0.3)
        return await _collect(source, strap), strap, source  # bounded: it ends, it does not hang

    got, strap, source = asyncio.run(scenario())
    assert [(n.uuid, n.data) for n in got[1:]] == strap.sent  # nothing lost on the way out
    h = source.health
    if answer_stops:
        assert (h.pmd_stop_refused, h.pmd_stop_unanswered) == (2, 0)
        assert h.last_error == "strap refused PMD stop ACC: invalid state"
        assert strap.running_at_disconnect == [{0, 2}]  # it went on streaming until the link closed
    else:  # the first stop is never answered: the wait runs out, and ACC's stop is not even written
        assert (h.pmd_stop_refused, h.pmd_stop_unanswered) == (0, 2)
        assert h.last_error == "strap did not answer stop ACC (no answer in 0.3 s)"
        assert [w for w in strap.writes if w[0] == PMD_OP_STOP] == [bytes([0x03, 0x00])]
    assert strap.log[-1] == "disconnected" and h.state == "stopped"
    with Outbox(tmp_path / "o.sqlite3") as box:
        problems = status_of(EdgeAgent("dev-stop", source, box))["problems"]  # what the patient app shows
    assert problems["strap_pmd_stop_refused" if answer_stops else "strap_pmd_stop_unanswered"] == 2


def test_agent_runs_unchanged_on_the_bleak_source(tmp_path: Path) -> None:
    async def scenario(box: Outbox) -> tuple[dict[str, Any], VirtualStrap]:
        phone, strap_device = await _devices()
        wearable = VirtualWearable(load_scenario("baseline"), start_time=START, duration_s=45, speed=0)
        strap = VirtualStrap(strap_device, wearable, drop_every=50)  # the link drops every ~15 strap seconds
        source = _source(phone, strap_device)
        source.clock = lambda: strap.now  # receive time follows the simulation (it runs flat out)
        player = asyncio.create_task(strap.play())

        class UntilDone:
            health = source.health  # what the patient app shows about the strap
            seen = 0

            async def notifications(self) -> AsyncIterator[Notification]:
                async for note in source.notifications():
                    self.seen += 1
                    yield note

        until_done = UntilDone()

        async def stop_when_all_in() -> None:
            await player
            await _until(lambda: until_done.seen - source.health.connects >= len(strap.sent))
            source.stop()  # the agent's run ends once the strap's streams are stopped

        stopper = asyncio.create_task(stop_when_all_in())
        agent = EdgeAgent("dev-ble", until_done, box, window_seconds=10, batch_windows=1)
        await asyncio.wait_for(agent.run(), 60)
        await stopper
        await _until(lambda: strap.log[-1] == "disconnected")
        return status_of(agent), strap

    with Outbox(tmp_path / "o.sqlite3") as box:
        status, strap = asyncio.run(scenario(box))
        drops = strap.drops
        summaries = [m for m in (decode(p.payload) for p in box.pending(1000)) if isinstance(m, Summary)]
    windows = [w for s in summaries for w in s.windows]
    assert len(windows) >= 4
    full = [w for w in windows if w.end - w.start == 10 and w.beats > 5]
    assert full and all(w.hr_mean is not None and 55 <= w.hr_mean <= 90 for w in full)

    assert drops >= 2 and status["problems"]["strap_drops"] == drops  # visible in the app's status
    assert strap.log[-3:] == ["stop ECG: success", "stop ACC: success", "disconnected"]  # the agent's own close
    assert strap.running_at_disconnect[-1] == set()
