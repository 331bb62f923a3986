"""GATT payload decoding on literal bytes, and encoder round trips."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from hypothesis import given
from hypothesis import strategies as st

from wire import GattDecodeError
from wire.gatt import (
    BATTERY_LEVEL_UUID,
    HEART_RATE_MEASUREMENT_UUID,
    HEART_RATE_SERVICE_UUID,
    PMD_CONTROL_POINT_UUID,
    PMD_DATA_UUID,
    PMD_OP_STOP,
    PMD_SERVICE_UUID,
    PMD_SETTING_RANGE,
    PMD_SETTING_RESOLUTION,
    PMD_SETTING_SAMPLE_RATE,
    HeartRateMeasurement,
    PmdAccFrame,
    PmdControlRequest,
    PmdEcgFrame,
    decode_battery_level,
    decode_heart_rate_measurement,
    decode_pmd_control_request,
    decode_pmd_control_response,
    decode_pmd_frame,
    encode_battery_level,
    encode_heart_rate_measurement,
    encode_pmd_acc_frame,
    encode_pmd_control_response,
    encode_pmd_ecg_frame,
    encode_pmd_request,
    encode_pmd_start,
    encode_pmd_stop,
)


def test_uuids() -> None:
    assert HEART_RATE_SERVICE_UUID == "0000180d-0000-1000-8000-00805f9b34fb"
    assert HEART_RATE_MEASUREMENT_UUID == "00002a37-0000-1000-8000-00805f9b34fb"
    assert BATTERY_LEVEL_UUID == "00002a19-0000-1000-8000-00805f9b34fb"
    assert PMD_SERVICE_UUID == "fb005c80-02e7-f387-1cad-8acd2d8df0c8"
    assert PMD_CONTROL_POINT_UUID == "fb005c81-02e7-f387-1cad-8acd2d8df0c8"
    assert PMD_DATA_UUID == "fb005c82-02e7-f387-1cad-8acd2d8df0c8"


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (b"\x00\x48", HeartRateMeasurement(72)),
        (b"\x01\x48\x00", HeartRateMeasurement(72)),
        (b"\x01\x2c\x01", HeartRateMeasurement(300)),
        (b"\x04\x48", HeartRateMeasurement(72, sensor_contact=False)),
        (b"\x06\x48", HeartRateMeasurement(72, sensor_contact=True)),
        (b"\x02\x48", HeartRateMeasurement(72)),  # "detected" without "supported" means nothing
        (b"\x08\x48\x10\x00", HeartRateMeasurement(72, energy_expended=16)),
        (b"\x10\x48\x00\x04", HeartRateMeasurement(72, rr=(1.0,))),
        (b"\x10\x48\x00\x04\x00\x02", HeartRateMeasurement(72, rr=(1.0, 0.5))),
        (b"\x10\x48", HeartRateMeasurement(72, rr=())),
        (b"\x1f\x2c\x01\x05\x00\x00\x03", HeartRateMeasurement(300, True, 5, (0.75,))),
    ],
)
def test_hrm_literals(data: bytes, expected: HeartRateMeasurement) -> None:
    assert decode_heart_rate_measurement(data) == expected


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b"", "truncated"),
        (b"\x00", "truncated"),
        (b"\x01\x48", "truncated"),
        (b"\x08\x48\x10", "truncated"),
        (b"\x10\x48\x00\x04\x00", "truncated"),
        (b"\x00\x48\x00", "trailing"),
    ],
)
def test_hrm_malformed(data: bytes, reason: str) -> None:
    with pytest.raises(GattDecodeError) as info:
        decode_heart_rate_measurement(data)
    assert info.value.reason == reason
    assert info.value.uuid == HEART_RATE_MEASUREMENT_UUID


def test_battery() -> None:
    assert decode_battery_level(b"\x55") == 85
    assert encode_battery_level(85) == b"\x55"
    for bad in (b"", b"\x65", b"\x01\x02"):
        with pytest.raises(GattDecodeError):
            decode_battery_level(bad)


ECG_HEADER = b"\x00" + (1_000_000_000).to_bytes(8, "little") + b"\x00"
ACC_HEADER = b"\x02" + (2_000_000_000).to_bytes(8, "little") + b"\x01"


def test_pmd_ecg_literal() -> None:
    frame = decode_pmd_frame(ECG_HEADER + b"\x01\x00\x00\xff\xff\xff\xe8\x03\x00\x00\x00\x80")
    assert frame == PmdEcgFrame(1_000_000_000, (1, -1, 1000, -(2**23)))


def test_pmd_acc_literal() -> None:
    frame = decode_pmd_frame(ACC_HEADER + b"\x01\x00\xff\xff\xe8\x03" + b"\x00\x00\x00\x00\x18\xfc")
    assert frame == PmdAccFrame(2_000_000_000, ((1, -1, 1000), (0, 0, -1000)))


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b"", "truncated"),
        (ECG_HEADER[:9], "truncated"),
        (ECG_HEADER, "truncated"),  # no samples
        (ECG_HEADER + b"\x01\x00", "truncated"),  # partial int24
        (ACC_HEADER + b"\x01\x00\x02\x00", "truncated"),  # partial xyz
        (b"\x00" + bytes(8) + b"\x01" + bytes(6), "unsupported"),  # ECG with ACC frame type
        (b"\x02" + bytes(8) + b"\x00" + bytes(6), "unsupported"),  # ACC with frame type 0
        (b"\x01" + bytes(8) + b"\x00" + bytes(6), "unsupported"),  # PPG: not supported
        (b"\x00" + bytes(8) + b"\x80" + bytes(6), "unsupported"),  # compressed (delta) frames: later work
    ],
)
def test_pmd_malformed(data: bytes, reason: str) -> None:
    with pytest.raises(GattDecodeError) as info:
        decode_pmd_frame(data)
    assert info.value.reason == reason


def test_not_bytes_is_a_gatt_error() -> None:
    with pytest.raises(GattDecodeError):
        decode_pmd_frame("abc")  # type: ignore[arg-type]


@given(
    hr=st.integers(0, 0xFFFF),
    contact=st.none() | st.booleans(),
    energy=st.none() | st.integers(0, 0xFFFF),
    ticks=st.lists(st.integers(0, 0xFFFF), max_size=8),
    wide=st.booleans(),
)
def test_hrm_round_trip(hr: int, contact: bool | None, energy: int | None, ticks: list[int], wide: bool) -> None:
    m = HeartRateMeasurement(hr, contact, energy, tuple(t / 1024 for t in ticks))
    assert decode_heart_rate_measurement(encode_heart_rate_measurement(m, uint16=wide)) == m


@given(ts=st.integers(0, 2**64 - 1), samples=st.lists(st.integers(-(2**23), 2**23 - 1), min_size=1, max_size=80))
def test_ecg_round_trip(ts: int, samples: list[int]) -> None:
    assert decode_pmd_frame(encode_pmd_ecg_frame(ts, samples)) == PmdEcgFrame(ts, tuple(samples))


xyz = st.tuples(*[st.integers(-(2**15), 2**15 - 1)] * 3)


@given(ts=st.integers(0, 2**64 - 1), samples=st.lists(xyz, min_size=1, max_size=40))
def test_acc_round_trip(ts: int, samples: list[tuple[int, int, int]]) -> None:
    assert decode_pmd_frame(encode_pmd_acc_frame(ts, samples)) == PmdAccFrame(ts, tuple(samples))


@given(st.binary(max_size=64))
def test_decoders_raise_only_gatt_errors(data: bytes) -> None:
    for decoder in (decode_heart_rate_measurement, decode_battery_level, decode_pmd_frame):
        try:
            decoder(data)
        except GattDecodeError:
            pass


# Every combination of the five defined flag bits (plus the reserved bits 5-7,
# which the specification says receivers ignore), built byte by byte here
# rather than through the encoder under test.
@pytest.mark.parametrize("flags", range(256))
def test_hrm_every_flag_combination(flags: int) -> None:
    body = b"\x2c\x01" if flags & 0x01 else b"\x48"
    if flags & 0x08:
        body += b"\x34\x12"  # 0x1234 = 4660 kJ
    if flags & 0x10:
        body += b"\x00\x04\x00\x02"  # 1024/1024 s, 512/1024 s
    m = decode_heart_rate_measurement(bytes([flags]) + body)
    assert m.heart_rate == (300 if flags & 0x01 else 72)
    assert m.sensor_contact == (bool(flags & 0x02) if flags & 0x04 else None)
    assert m.energy_expended == (4660 if flags & 0x08 else None)
    assert m.rr == ((1.0, 0.5) if flags & 0x10 else ())


@pytest.mark.parametrize("flags", range(32))
def test_hrm_every_flag_combination_truncated_is_rejected(flags: int) -> None:
    full = bytes([flags]) + (b"\x2c\x01" if flags & 0x01 else b"\x48")
    full += b"\x34\x12" if flags & 0x08 else b""
    full += b"\x00\x04" if flags & 0x10 else b""
    for cut in range(1, len(full)):
        part = full[:cut]
        if flags & 0x10 and cut >= len(full) - 2 and (len(full) - cut) % 2 == 0:
            continue  # cutting whole RR values off leaves a valid, shorter frame
        with pytest.raises(GattDecodeError):
            decode_heart_rate_measurement(part)


def test_pmd_control_point_requests_and_responses() -> None:
    ecg = encode_pmd_start(0, {PMD_SETTING_SAMPLE_RATE: 130, PMD_SETTING_RESOLUTION: 14})
    assert ecg == bytes([0x02, 0x00, 0x00, 0x01, 0x82, 0x00, 0x01, 0x01, 0x0E, 0x00])
    acc = encode_pmd_start(2, {PMD_SETTING_SAMPLE_RATE: 25, PMD_SETTING_RESOLUTION: 16, PMD_SETTING_RANGE: 8})
    assert acc == bytes([0x02, 0x02, 0x00, 0x01, 0x19, 0x00, 0x01, 0x01, 0x10, 0x00, 0x02, 0x01, 0x08, 0x00])
    assert encode_pmd_stop(0) == b"\x03\x00"
    ok = decode_pmd_control_response(b"\xf0\x02\x00\x00\x00")
    assert (ok.op, ok.measurement, ok.ok, ok.reason) == (2, 0, True, "success")
    busy = decode_pmd_control_response(b"\xf0\x02\x02\x06")
    assert not busy.ok and busy.reason == "already in state"
    assert decode_pmd_control_response(b"\xf0\x02\x00\x63").reason == "status 99"
    for bad in (b"", b"\xf0\x02\x00", b"\x02\x00\x00\x01", "f0020000"):
        with pytest.raises(GattDecodeError):
            decode_pmd_control_response(bad)  # type: ignore[arg-type]


def test_pmd_stop_requests_and_answers_literal() -> None:
    """Polar's stop measurement: op 0x03 and the type; an H10 answers ``F0 03 <type> <status> 00``."""

    assert encode_pmd_stop(0x00) == bytes([0x03, 0x00])  # stop ECG
    assert encode_pmd_stop(0x02) == bytes([0x03, 0x02])  # stop ACC
    assert decode_pmd_control_request(b"\x03\x02") == PmdControlRequest(PMD_OP_STOP, 2)
    assert decode_pmd_control_request(b"\x03\x00").name == "stop ECG"
    ok = decode_pmd_control_response(b"\xf0\x03\x00\x00\x00")
    assert (ok.op, ok.measurement, ok.ok) == (3, 0, True)
    assert ok.answers(b"\x03\x00") and not ok.answers(b"\x03\x02") and not ok.answers(b"\x02\x00")
    refused = decode_pmd_control_response(b"\xf0\x03\x02\x0c\x00")
    assert not refused.ok and refused.reason == "invalid state" and refused.answers(b"\x03\x02")
    assert encode_pmd_control_response(3, 2, 0) == b"\xf0\x03\x02\x00\x00"


def test_pmd_start_request_decodes_with_the_setting_widths() -> None:
    acc = decode_pmd_control_request(
        bytes([0x02, 0x02, 0x00, 0x01, 0x19, 0x00, 0x01, 0x01, 0x10, 0x00, 0x02, 0x01, 0x08, 0x00])
    )
    assert (acc.op, acc.measurement, acc.settings) == (2, 2, ((0, 25), (1, 16), (2, 8)))
    assert acc.name == "start ACC"
    channels = decode_pmd_control_request(bytes([0x02, 0x01, 0x04, 0x01, 0x04, 0x03, 0x01, 0xA0, 0x86, 0x01, 0x00]))
    assert channels.settings == ((4, 4), (3, 100_000))  # channels: 1 byte; range in milliunits: 4 bytes
    assert decode_pmd_control_request(b"\x03\x09").name == "stop measurement 9"


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b"", "truncated"),
        (b"\x03", "truncated"),
        (b"\x07\x00", "unsupported"),  # op code not in the table
        (b"\x03\x00\x00", "trailing"),  # a stop takes no settings
        (b"\x02\x00\x00", "truncated"),  # a setting without its count
        (b"\x02\x00\x00\x01\x82", "truncated"),  # half a uint16 sample rate
        (b"\x02\x00\x09\x01\x00\x00", "unsupported"),  # setting type not in the table
        (b"\x02\x00\x00\x00", "unsupported"),  # a setting with no values
    ],
)
def test_pmd_malformed_requests(data: bytes, reason: str) -> None:
    with pytest.raises(GattDecodeError) as err:
        decode_pmd_control_request(data)
    assert err.value.reason == reason


def test_pmd_request_encoder_refuses_what_the_tables_do_not_have() -> None:
    bad_requests: list[Callable[[], bytes]] = [
        lambda: encode_pmd_request(0x07, 0),
        lambda: encode_pmd_request(PMD_OP_STOP, 0, {PMD_SETTING_SAMPLE_RATE: 130}),
        lambda: encode_pmd_start(0, {0x09: 1}),
        lambda: encode_pmd_start(0, {PMD_SETTING_SAMPLE_RATE: 70_000}),
        lambda: encode_pmd_stop(256),
    ]
    for bad in bad_requests:
        with pytest.raises(ValueError):
            bad()
