"""BLE GATT payloads of heart-rate straps: UUIDs, decoders and matching encoders.

Sans-I/O and stdlib only. Decoders turn a characteristic value (``bytes``) into
a frozen dataclass and raise nothing but :class:`wire.errors.GattDecodeError`;
encoders produce exactly the bytes a strap would send, so that the simulators
and the tests speak the same wire as real hardware.

Formats:

* Heart Rate Measurement (0x2A37, Bluetooth Heart Rate Service spec): a flags
  byte, then HR (uint8 or uint16), optional Energy Expended (uint16, kJ), then
  optional RR intervals (uint16 each, 1/1024 s). Flag bits: 0 = HR is uint16,
  1 = sensor contact detected, 2 = sensor contact supported, 3 = energy
  expended present, 4 = RR intervals present.
* Battery Level (0x2A19): one uint8, percent (0-100).
* Polar PMD data (``fb005c82-...``): byte 0 measurement type (0 = ECG,
  2 = ACC), bytes 1-8 uint64 LE sensor timestamp in ns (of the last sample,
  Polar's convention), byte 9 frame type, then samples. ECG frame type 0: int24
  LE microvolts. ACC frame type 1: int16 LE x, y, z per sample, milli-g.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import Callable, Union

from wire.errors import GattDecodeError

_BASE_SUFFIX = "-0000-1000-8000-00805f9b34fb"


def sig_uuid(short: int) -> str:
    """The full 128-bit UUID string of a 16-bit Bluetooth SIG UUID."""
    return f"0000{short:04x}{_BASE_SUFFIX}"


HEART_RATE_SERVICE_UUID = sig_uuid(0x180D)
HEART_RATE_MEASUREMENT_UUID = sig_uuid(0x2A37)
BATTERY_SERVICE_UUID = sig_uuid(0x180F)
BATTERY_LEVEL_UUID = sig_uuid(0x2A19)
_PMD_SUFFIX = "-02e7-f387-1cad-8acd2d8df0c8"
PMD_SERVICE_UUID = f"fb005c80{_PMD_SUFFIX}"
PMD_CONTROL_POINT_UUID = f"fb005c81{_PMD_SUFFIX}"
PMD_DATA_UUID = f"fb005c82{_PMD_SUFFIX}"

PMD_MEASUREMENT_ECG = 0
PMD_MEASUREMENT_ACC = 2
PMD_HEADER = struct.Struct("<BQB")  # measurement type, timestamp ns, frame type

_HR_UINT16 = 0x01
_CONTACT_DETECTED = 0x02
_CONTACT_SUPPORTED = 0x04
_ENERGY_PRESENT = 0x08
_RR_PRESENT = 0x10
RR_UNITS_PER_SECOND = 1024


@dataclass(frozen=True)
class HeartRateMeasurement:
    """One Heart Rate Measurement notification.

    Attributes:
        heart_rate: bpm as the strap reports it.
        sensor_contact: None when the strap does not report contact, else whether
            the skin contact is good.
        energy_expended: kJ since the last reset, or None.
        rr: RR intervals in seconds (multiples of 1/1024 s), oldest first.
    """

    heart_rate: int
    sensor_contact: bool | None = None
    energy_expended: int | None = None
    rr: tuple[float, ...] = ()


@dataclass(frozen=True)
class PmdEcgFrame:
    """A Polar PMD ECG frame: ``samples_uv`` in microvolts, sensor time in ns."""

    timestamp_ns: int
    samples_uv: tuple[int, ...]


@dataclass(frozen=True)
class PmdAccFrame:
    """A Polar PMD accelerometer frame: (x, y, z) per sample in milli-g."""

    timestamp_ns: int
    samples_mg: tuple[tuple[int, int, int], ...]


PmdFrame = Union[PmdEcgFrame, PmdAccFrame]


def _fail(uuid: str, reason: str, detail: str) -> GattDecodeError:
    return GattDecodeError(uuid, reason, detail)


def _as_bytes(uuid: str, data: object) -> bytes:
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise _fail(uuid, "type", f"expected bytes, got {type(data).__name__}")
    return bytes(data)


def decode_heart_rate_measurement(data: bytes) -> HeartRateMeasurement:
    """Decode a Heart Rate Measurement (0x2A37) value.

    Raises:
        GattDecodeError: empty, truncated or with a dangling odd RR byte.
    """
    uuid = HEART_RATE_MEASUREMENT_UUID
    raw = _as_bytes(uuid, data)
    if not raw:
        raise _fail(uuid, "truncated", "empty value")
    flags = raw[0]
    hr_fmt = "<H" if flags & _HR_UINT16 else "<B"
    pos = 1
    hr, pos = _take(uuid, raw, pos, hr_fmt, "heart rate")
    energy = None
    if flags & _ENERGY_PRESENT:
        energy, pos = _take(uuid, raw, pos, "<H", "energy expended")
    rr: tuple[float, ...] = ()
    if flags & _RR_PRESENT:
        rest = raw[pos:]
        if len(rest) % 2:
            raise _fail(uuid, "truncated", f"odd number of RR bytes ({len(rest)})")
        ticks = struct.unpack(f"<{len(rest) // 2}H", rest)
        rr = tuple(t / RR_UNITS_PER_SECOND for t in ticks)
    elif pos != len(raw):
        raise _fail(uuid, "trailing", f"{len(raw) - pos} unexpected bytes")
    contact = bool(flags & _CONTACT_DETECTED) if flags & _CONTACT_SUPPORTED else None
    return HeartRateMeasurement(hr, contact, energy, rr)


def _take(uuid: str, raw: bytes, pos: int, fmt: str, what: str) -> tuple[int, int]:
    size = struct.calcsize(fmt)
    if len(raw) < pos + size:
        raise _fail(uuid, "truncated", f"{what} needs {size} bytes at offset {pos}")
    return int(struct.unpack_from(fmt, raw, pos)[0]), pos + size


def encode_heart_rate_measurement(m: HeartRateMeasurement, *, uint16: bool = False) -> bytes:
    """Encode a Heart Rate Measurement; HR above 255 bpm always uses uint16.

    RR intervals are rounded to the nearest 1/1024 s.
    """
    wide = uint16 or m.heart_rate > 0xFF
    flags = _HR_UINT16 if wide else 0
    if m.sensor_contact is not None:
        flags |= _CONTACT_SUPPORTED | (_CONTACT_DETECTED if m.sensor_contact else 0)
    out = bytearray()
    out += struct.pack("<H" if wide else "<B", m.heart_rate)
    if m.energy_expended is not None:
        flags |= _ENERGY_PRESENT
        out += struct.pack("<H", m.energy_expended)
    if m.rr:
        flags |= _RR_PRESENT
        out += struct.pack(f"<{len(m.rr)}H", *(round(r * RR_UNITS_PER_SECOND) for r in m.rr))
    return bytes([flags]) + bytes(out)


def decode_battery_level(data: bytes) -> int:
    """Decode a Battery Level (0x2A19) value to percent (0-100)."""
    uuid = BATTERY_LEVEL_UUID
    raw = _as_bytes(uuid, data)
    if len(raw) != 1:
        raise _fail(uuid, "truncated" if not raw else "trailing", f"expected 1 byte, got {len(raw)}")
    if raw[0] > 100:
        raise _fail(uuid, "range", f"{raw[0]} % > 100 %")
    return raw[0]


def encode_battery_level(percent: int) -> bytes:
    """Encode a battery level in percent (0-100)."""
    if not 0 <= percent <= 100:
        raise ValueError(f"battery level {percent} outside 0-100")
    return bytes([percent])


def _ecg_samples(raw: bytes) -> tuple[int, ...]:
    return tuple(int.from_bytes(raw[i : i + 3], "little", signed=True) for i in range(0, len(raw), 3))


def _acc_samples(raw: bytes) -> tuple[tuple[int, int, int], ...]:
    flat = struct.unpack(f"<{len(raw) // 2}h", raw)
    return tuple((flat[i], flat[i + 1], flat[i + 2]) for i in range(0, len(flat), 3))


# (measurement type, frame type) -> (bytes per sample, sample decoder, frame class)
_PMD_FORMATS: dict[tuple[int, int], tuple[int, Callable[[bytes], tuple[object, ...]], type]] = {
    (PMD_MEASUREMENT_ECG, 0): (3, _ecg_samples, PmdEcgFrame),
    (PMD_MEASUREMENT_ACC, 1): (6, _acc_samples, PmdAccFrame),
}


def decode_pmd_frame(data: bytes) -> PmdFrame:
    """Decode a Polar PMD data notification (ECG type 0 or ACC frame type 1).

    Raises:
        GattDecodeError: truncated header, unknown measurement/frame type, a
            partial sample, or no samples at all.
    """
    uuid = PMD_DATA_UUID
    raw = _as_bytes(uuid, data)
    if len(raw) < PMD_HEADER.size:
        raise _fail(uuid, "truncated", f"header needs {PMD_HEADER.size} bytes, got {len(raw)}")
    measurement, timestamp, frame_type = PMD_HEADER.unpack_from(raw)
    fmt = _PMD_FORMATS.get((measurement, frame_type))
    if fmt is None:
        raise _fail(uuid, "unsupported", f"measurement {measurement} frame type {frame_type}")
    size, decode_samples, cls = fmt
    body = raw[PMD_HEADER.size :]
    if not body or len(body) % size:
        raise _fail(uuid, "truncated", f"{len(body)} sample bytes is not a positive multiple of {size}")
    frame: PmdFrame = cls(timestamp, decode_samples(body))
    return frame


def encode_pmd_ecg_frame(timestamp_ns: int, samples_uv: tuple[int, ...] | list[int]) -> bytes:
    """Encode a PMD ECG frame (frame type 0, int24 LE microvolts)."""
    body = b"".join(int(s).to_bytes(3, "little", signed=True) for s in samples_uv)
    return PMD_HEADER.pack(PMD_MEASUREMENT_ECG, timestamp_ns, 0) + body


def encode_pmd_acc_frame(
    timestamp_ns: int, samples_mg: tuple[tuple[int, int, int], ...] | list[tuple[int, int, int]]
) -> bytes:
    """Encode a PMD ACC frame (frame type 1, int16 LE x, y, z in milli-g)."""
    flat = [int(v) for xyz in samples_mg for v in xyz]
    return PMD_HEADER.pack(PMD_MEASUREMENT_ACC, timestamp_ns, 1) + struct.pack(f"<{len(flat)}h", *flat)


# --- Polar PMD control point (fb005c81-...) ---------------------------------
# Polar's PMD specification (its BLE SDK documentation and sources). Requests,
# written with response: op code, measurement type, then, for a start only,
# (setting type, count, count values) groups, each value little-endian and as
# wide as its setting type (``PMD_SETTING_SIZES``). The type byte's low 6 bits
# are the measurement, its top 2 bits the recording kind (0 = online streaming,
# the only kind used here). Answers arrive as indications: 0xF0, op code,
# measurement type, status (0 = success), "more" (non-zero: another part
# follows), then optional parameters. E.g. stop ECG is ``03 00``, and an H10
# answers it with ``F0 03 00 00 00``.

PMD_OP_GET_SETTINGS = 0x01
PMD_OP_START = 0x02
PMD_OP_STOP = 0x03
PMD_RESPONSE = 0xF0
PMD_SETTING_SAMPLE_RATE = 0x00  # Hz
PMD_SETTING_RESOLUTION = 0x01  # bits
PMD_SETTING_RANGE = 0x02  # g (accelerometer)
PMD_SETTING_RANGE_MILLIUNIT = 0x03
PMD_SETTING_CHANNELS = 0x04
PMD_SETTING_FACTOR = 0x05

# op code -> (name, whether the request carries settings)
PMD_OPS: dict[int, tuple[str, bool]] = {
    PMD_OP_GET_SETTINGS: ("get settings", False),
    PMD_OP_START: ("start", True),
    PMD_OP_STOP: ("stop", False),
}
# setting type -> bytes per value
PMD_SETTING_SIZES = {
    PMD_SETTING_SAMPLE_RATE: 2, PMD_SETTING_RESOLUTION: 2, PMD_SETTING_RANGE: 2,
    PMD_SETTING_RANGE_MILLIUNIT: 4, PMD_SETTING_CHANNELS: 1, PMD_SETTING_FACTOR: 4,
}  # fmt: skip
# measurement type -> name (for messages; the H10 offers ECG and ACC)
PMD_MEASUREMENTS = {0: "ECG", 1: "PPG", 2: "ACC", 3: "PPI", 5: "gyroscope", 6: "magnetometer"}
_PMD_TYPE_MASK = 0x3F

# status code -> meaning
PMD_STATUS = {
    0: "success",
    1: "invalid op code",
    2: "invalid measurement type",
    3: "not supported",
    4: "invalid length",
    5: "invalid parameter",
    6: "already in state",
    7: "invalid resolution",
    8: "invalid sample rate",
    9: "invalid range",
    10: "invalid MTU",
    11: "invalid number of channels",
    12: "invalid state",
    13: "device in charger",
    14: "disk full",
}


def pmd_measurement_name(measurement: int) -> str:
    """The measurement type in words, e.g. ``"ECG"`` (``"measurement 9"`` when not in the table)."""
    return PMD_MEASUREMENTS.get(measurement & _PMD_TYPE_MASK, f"measurement {measurement}")


@dataclass(frozen=True)
class PmdControlRequest:
    """A request written to the control point.

    Attributes:
        op: op code (``PMD_OP_*``).
        measurement: measurement type byte (``PMD_MEASUREMENT_*``).
        settings: (setting type, value) pairs in request order (a start only).
    """

    op: int
    measurement: int
    settings: tuple[tuple[int, int], ...] = ()

    @property
    def name(self) -> str:
        """The request in words, e.g. ``"stop ECG"``."""
        return f"{PMD_OPS[self.op][0]} {pmd_measurement_name(self.measurement)}"


@dataclass(frozen=True)
class PmdControlResponse:
    """The strap's answer to a control point request (``status`` 0 is success)."""

    op: int
    measurement: int
    status: int

    @property
    def ok(self) -> bool:
        """Whether the request succeeded."""
        return self.status == 0

    @property
    def reason(self) -> str:
        """The status in words."""
        return PMD_STATUS.get(self.status, f"status {self.status}")

    def answers(self, request: bytes) -> bool:
        """Whether this is the answer to ``request`` (same op code and measurement type)."""
        return len(request) >= 2 and (self.op, self.measurement) == (request[0], request[1])


def encode_pmd_request(op: int, measurement: int, settings: dict[int, int] | None = None) -> bytes:
    """A control point request; ``settings`` (setting type -> value) only for a start.

    Raises:
        ValueError: an op code or setting type not in the tables, settings on a
            request that takes none, or a value that does not fit its width.
    """
    if op not in PMD_OPS or not 0 <= measurement <= 0xFF:
        raise ValueError(f"PMD request op {op} measurement {measurement} is not one of the table's")
    if settings and not PMD_OPS[op][1]:
        raise ValueError(f"a PMD {PMD_OPS[op][0]} request takes no settings")
    body = b"".join(_setting_bytes(kind, value) for kind, value in sorted((settings or {}).items()))
    return bytes([op, measurement]) + body


def _setting_bytes(kind: int, value: int) -> bytes:
    size = PMD_SETTING_SIZES.get(kind)
    if size is None or not 0 <= value < 1 << (8 * size):
        raise ValueError(f"PMD setting {kind} = {value} is not in the table or does not fit")
    return bytes([kind, 1]) + value.to_bytes(size, "little")


def encode_pmd_start(measurement: int, settings: dict[int, int]) -> bytes:
    """A "start measurement" request, e.g. ``{PMD_SETTING_SAMPLE_RATE: 130, PMD_SETTING_RESOLUTION: 14}``."""
    return encode_pmd_request(PMD_OP_START, measurement, settings)


def encode_pmd_stop(measurement: int) -> bytes:
    """A "stop measurement" request: ``03`` and the measurement type (stop ECG: ``03 00``)."""
    return encode_pmd_request(PMD_OP_STOP, measurement)


def decode_pmd_control_request(data: bytes) -> PmdControlRequest:
    """Decode a control point request (what a strap receives; used by virtual straps).

    Raises:
        GattDecodeError: shorter than 2 bytes, an unknown op code or setting type,
            a partial setting, or settings on a request that takes none.
    """
    uuid = PMD_CONTROL_POINT_UUID
    raw = _as_bytes(uuid, data)
    if len(raw) < 2:
        raise _fail(uuid, "truncated", f"a request needs 2 bytes, got {len(raw)}")
    if raw[0] not in PMD_OPS:
        raise _fail(uuid, "unsupported", f"op code {raw[0]:#04x}")
    if len(raw) > 2 and not PMD_OPS[raw[0]][1]:
        raise _fail(uuid, "trailing", f"a {PMD_OPS[raw[0]][0]} request takes no settings ({len(raw) - 2} bytes)")
    return PmdControlRequest(raw[0], raw[1], _settings(uuid, raw[2:]))


def _settings(uuid: str, raw: bytes) -> tuple[tuple[int, int], ...]:
    """(setting type, value) pairs of a start request's body (offsets in messages count from the request's start)."""
    found: list[tuple[int, int]] = []
    pos = 0
    while pos < len(raw):
        if pos + 2 > len(raw):
            raise _fail(uuid, "truncated", f"setting at offset {pos + 2} has no count")
        kind, count = raw[pos], raw[pos + 1]
        size = PMD_SETTING_SIZES.get(kind)
        if size is None or count == 0:
            raise _fail(uuid, "unsupported", f"setting type {kind} with {count} values at offset {pos + 2}")
        end = pos + 2 + count * size
        if end > len(raw):
            raise _fail(uuid, "truncated", f"setting type {kind} needs {count} x {size} bytes at offset {pos + 4}")
        found += [(kind, int.from_bytes(raw[i : i + size], "little")) for i in range(pos + 2, end, size)]
        pos = end
    return tuple(found)


def decode_pmd_control_response(data: bytes) -> PmdControlResponse:
    """Decode a PMD control point indication (parameters after the status are not kept).

    Raises:
        GattDecodeError: shorter than 4 bytes or not a response (first byte not 0xF0).
    """
    uuid = PMD_CONTROL_POINT_UUID
    raw = _as_bytes(uuid, data)
    if len(raw) < 4:
        raise _fail(uuid, "truncated", f"a response needs 4 bytes, got {len(raw)}")
    if raw[0] != PMD_RESPONSE:
        raise _fail(uuid, "unsupported", f"not a control point response (first byte {raw[0]:#04x})")
    return PmdControlResponse(raw[1], raw[2], raw[3])


def encode_pmd_control_response(op: int, measurement: int, status: int = 0) -> bytes:
    """The indication a strap sends in answer to a request, as an H10 does: ``F0 op type status 00``."""
    return bytes([PMD_RESPONSE, op, measurement, status, 0])
