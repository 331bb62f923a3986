"""Encoding and strict decoding of wire messages."""

from __future__ import annotations

import base64
import json
import zlib
import struct
import zlib
from dataclasses import replace

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from wire import (
    Config,
    Event,
    EventType,
    Kind,
    Level,
    Limits,
    Notify,
    Status,
    Strip,
    Summary,
    SummaryWindow,
    WireDecodeError,
    decode,
    decode_uplink,
    encode,
    encode_for_uplink,
)
from wire import codec
from wire.dvz import strip_encode

T0 = 1_763_000_000.0


def window(**overrides: object) -> SummaryWindow:
    values: dict[str, object] = dict(
        start=T0, end=T0 + 60, beats=72, hr_mean=72.0, hr_min=61.0, hr_max=88.0,
        rr_mean=833.0, sdnn=42.0, rmssd=31.0, flags=("ectopic",), resp_rate=14.0,
        activity="rest", intensity=0.01, quality=0.97, battery=80, lat=46.05, lon=14.5,
    )
    values.update(overrides)
    return SummaryWindow(**values)  # type: ignore[arg-type]


MESSAGES = [
    Summary("dev-001", 1, (window(), window(start=T0 + 60, end=T0 + 120, flags=()))),
    Event("dev-001", 2, EventType.SYMPTOM_START, T0, period="p1", tags=("palpitations",), severity=3, note="ž"),
    Event("dev-001", 3, EventType.PANIC, T0, lat=1.0, lon=2.0),
    Strip("dev-001", 4, T0, 130.0, "panic", tuple(range(-500, 500)), ref_seq=3),
    Status("dev-001", 5, T0, online=False, sensor="disconnected", battery=12),
    Notify("dev-001", T0, Level.YELLOW, "Heart rate high", "Please rest", alert_id=7, parameter="hr"),
    Config("dev-001", 2, T0, 10.0, 1, (("hr", Limits(50, 110, 40, 130)),)),
    Config("dev-001", 3, T0, 60.0, 5, share_location=True),
]


@pytest.mark.parametrize("message", MESSAGES, ids=lambda m: f"{m.kind.value}-{MESSAGES.index(m)}")
def test_round_trip(message: object) -> None:
    payload = encode(message)  # type: ignore[arg-type]
    assert json.loads(payload)["v"] == 1
    assert decode(payload) == message


def test_a_config_without_share_location_shares_nothing() -> None:
    payload = json.loads(encode(MESSAGES[7]))
    del payload["share_location"]
    decoded = decode(json.dumps(payload).encode())
    assert isinstance(decoded, Config) and decoded.share_location is False


def test_strip_is_compact() -> None:
    strip = MESSAGES[3]
    assert len(encode(strip)) < 3 * len(strip.samples)  # type: ignore[union-attr]


def test_decode_uplink_checks_topic_against_payload() -> None:
    payload = encode(MESSAGES[0])
    topic, message = decode_uplink("pisces/v1/dev-001/summary", payload)
    assert topic.device_id == "dev-001" and message == MESSAGES[0]
    with pytest.raises(WireDecodeError) as info:
        decode_uplink("pisces/v1/dev-002/summary", payload)
    assert (info.value.reason, info.value.field) == ("mismatch", "device")
    with pytest.raises(WireDecodeError) as info:
        decode_uplink("pisces/v1/dev-001/event", payload)
    assert info.value.reason == "mismatch"
    with pytest.raises(WireDecodeError):
        decode_uplink("pisces/v1/dev-001/notify", encode(MESSAGES[5]))


def _mutated(message: object, path: list[object], value: object) -> bytes:
    obj = json.loads(encode(message))  # type: ignore[arg-type]
    target = obj
    for key in path[:-1]:
        target = target[key]
    if value is KeyError:
        del target[path[-1]]
    else:
        target[path[-1]] = value
    return json.dumps(obj).encode()


@pytest.mark.parametrize(
    ("path", "value", "reason", "field"),
    [
        (["windows", 0, "hr_mean"], 400, "range", "windows[0].hr_mean"),
        (["windows", 0, "hr_mean"], "fast", "type", "windows[0].hr_mean"),
        (["windows", 0, "end"], T0 - 1, "range", "windows[0].end"),
        (["windows", 0, "flags"], ["hiccup"], "range", "windows[0].flags"),
        (["windows", 0, "activity"], "swim", "range", "windows[0].activity"),
        (["windows", 0, "quality"], 1.5, "range", "windows[0].quality"),
        (["windows", 0, "lat"], KeyError, "missing", "windows[0].lat"),
        (["windows", 0, "hr_min"], 100, "range", "windows[0].hr_min"),
        (["windows", 0, "colour"], "red", "unknown_field", "windows[0].colour"),
        (["windows", 0, "beats"], KeyError, "missing", "windows[0].beats"),
        (["windows"], [], "range", "windows"),
        (["seq"], -1, "range", "seq"),
        (["seq"], 1.5, "type", "seq"),
        (["seq"], True, "type", "seq"),
        (["device"], "a/b", "range", "device"),
        (["v"], 2, "version", "v"),
        (["kind"], "gossip", "range", "kind"),
    ],
)
def test_summary_validation(path: list[object], value: object, reason: str, field: str) -> None:
    with pytest.raises(WireDecodeError) as info:
        decode(_mutated(MESSAGES[0], path, value))
    assert (info.value.reason, info.value.field) == (reason, field)


@pytest.mark.parametrize(
    ("message", "path", "value", "reason"),
    [
        (MESSAGES[1], ["period"], None, "missing"),
        (MESSAGES[1], ["severity"], 9, "range"),
        (MESSAGES[1], ["note"], "x" * 5000, "range"),
        (MESSAGES[1], ["type"], "sneeze", "range"),
        (MESSAGES[3], ["samples"], "***", "not_base64"),
        (MESSAGES[3], ["samples"], "AA==", "corrupt"),
        (MESSAGES[3], ["encoding"], "gzip", "range"),
        (MESSAGES[3], ["encoding"], 1, "range"),
        (replace(MESSAGES[3], encoding="i16"), ["samples"], "AA==", "range"),  # type: ignore[type-var]
        (MESSAGES[3], ["fs"], 0, "range"),
        (MESSAGES[4], ["online"], "yes", "type"),
        (MESSAGES[7], ["share_location"], "yes", "type"),
        (MESSAGES[7], ["share_location"], 1, "type"),
    ],
)
def test_other_validation(message: object, path: list[object], value: object, reason: str) -> None:
    with pytest.raises(WireDecodeError) as info:
        decode(_mutated(message, path, value))
    assert info.value.reason == reason


@pytest.mark.parametrize(
    ("payload", "reason"),
    [
        (b"\xff\xfe", "not_utf8"),
        (b"{not json", "not_json"),
        (b"[1, 2]", "type"),
        (b'{"v": 1, "kind": "summary", "device": "d", "seq": 1, "windows": [{"start": NaN}]}', "range"),
        (b"x" * 2_000_000, "too_large"),
    ],
)
def test_garbage_is_rejected_cleanly(payload: bytes, reason: str) -> None:
    with pytest.raises(WireDecodeError) as info:
        decode(payload)
    assert info.value.reason == reason


def test_expected_kind_pins_type() -> None:
    with pytest.raises(WireDecodeError):
        decode(encode(MESSAGES[1]), Kind.SUMMARY)


@given(st.binary(max_size=300))
def test_decode_never_raises_anything_else(payload: bytes) -> None:
    try:
        decode(payload)
    except WireDecodeError:
        pass


@given(
    st.lists(st.integers(-32768, 32767), min_size=1, max_size=500),
    st.floats(50, 2000, allow_nan=False),
)
def test_strip_samples_survive(samples: list[int], fs: float) -> None:
    for encoding in ("dvz", "i16"):
        strip = Strip("d1", 9, T0, fs, "rhythm:pause", tuple(samples), encoding=encoding)
        assert decode(encode(strip)) == strip


def _strip_body(strip: Strip) -> dict[str, object]:
    return json.loads(encode(strip))  # type: ignore[no-any-return]


def test_a_strip_without_encoding_is_int16_as_before() -> None:
    i16 = replace(MESSAGES[3], encoding="i16")  # type: ignore[type-var]
    body = _strip_body(i16)
    assert "encoding" not in body
    assert base64.b64decode(str(body["samples"])) == struct.pack("<1000h", *range(-500, 500))
    assert decode(json.dumps(body).encode()) == i16


def test_dvz_strips_are_smaller_and_decode_to_the_same_samples() -> None:
    dvz = MESSAGES[3]
    i16 = replace(dvz, encoding="i16")  # type: ignore[type-var]
    assert _strip_body(dvz)["encoding"] == "dvz"
    assert len(encode(dvz)) < 0.2 * len(encode(i16))  # a ramp is nearly free after delta + DEFLATE
    assert decode(encode(dvz)).samples == decode(encode(i16)).samples  # type: ignore[union-attr]


def test_a_dvz_bomb_is_refused_and_out_of_range_samples_are_a_range_error() -> None:
    body = _strip_body(MESSAGES[3])
    body["samples"] = base64.b64encode(b"\x01" + zlib.compress(bytes(2_000_000), 9)).decode()
    with pytest.raises(WireDecodeError) as info:
        decode(json.dumps(body).encode())
    assert (info.value.reason, info.value.field) == ("corrupt", "samples")
    body["samples"] = base64.b64encode(strip_encode([0, 40_000])).decode()
    with pytest.raises(WireDecodeError) as info:
        decode(json.dumps(body).encode())
    assert (info.value.reason, info.value.field) == ("range", "samples")


def test_rhythm_and_activity_details_round_trip() -> None:
    detailed = window(pnn50=12.5, pause_max=3.4, ectopic=3, steps=812, posture_changes=2, fall=True)
    message = Summary("dev-001", 9, (detailed,))
    assert decode(encode(message)) == message
    assert b'"fall"' not in encode(MESSAGES[0])  # absent means false


@pytest.mark.parametrize(
    ("field", "value", "reason"),
    [("pause_max", 99, "range"), ("pnn50", -1, "range"), ("steps", 1.5, "type"), ("ectopic", -2, "range"),
     ("fall", "yes", "type")],
)
def test_rhythm_and_activity_details_are_validated(field: str, value: object, reason: str) -> None:
    with pytest.raises(WireDecodeError) as info:
        decode(_mutated(MESSAGES[0], ["windows", 0, field], value))
    assert (info.value.reason, info.value.field) == (reason, f"windows[0].{field}")


def test_summaries_from_the_phone_are_compressed_and_decode_alike() -> None:
    windows = tuple(window(start=T0 + 60 * i, end=T0 + 60 * (i + 1), hr_mean=70.0 + i % 7) for i in range(10))
    message = Summary("dev-001", 12, windows)
    packed = encode_for_uplink(message)
    assert packed[:1] == b"\x78" and len(packed) < len(encode(message)) / 2
    assert decode(packed) == message
    assert decode_uplink("pisces/v1/dev-001/summary", packed)[1] == message
    event = MESSAGES[1]
    assert encode_for_uplink(event) == encode(event)  # only summaries are packed


@pytest.mark.parametrize(
    ("payload", "reason"),
    [
        (zlib.compress(b" " * 2_000_000), "too_large"),  # a small bomb
        (zlib.compress(encode(MESSAGES[0]))[:-3], "corrupt"),
        (zlib.compress(encode(MESSAGES[0])) + b"junk", "corrupt"),
        (b"\x78\x9c not zlib", "corrupt"),
        (zlib.compress(b"[1]"), "type"),
    ],
)
def test_compressed_garbage_is_rejected(payload: bytes, reason: str) -> None:
    with pytest.raises(WireDecodeError) as info:
        decode(payload)
    assert info.value.reason == reason


def _outcome(payload: bytes, fast: bool) -> tuple[str, str]:
    """What the JSON stage gives (repr of the value, or the error), with orjson or with the stdlib alone."""
    saved = codec.orjson
    codec.orjson = saved if fast else None
    try:
        return ("ok", repr(codec._parse(payload)))
    except (ValueError, WireDecodeError) as exc:  # JSONDecodeError and UnicodeDecodeError are ValueErrors
        return ("error", type(exc).__name__ + getattr(exc, "reason", ""))
    finally:
        codec.orjson = saved


json_values = st.recursive(
    st.one_of(st.none(), st.booleans(), st.floats(), st.integers(), st.integers(-(2**70), 2**70),
              st.sampled_from([2**63, 2**64, -(2**63) - 1, -(2**64)]), st.text(max_size=8)),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=4), inner, max_size=4),
    max_leaves=12,
)  # fmt: skip


@pytest.mark.skipif(codec.orjson is None, reason="orjson not installed: only the stdlib parser runs")
@settings(max_examples=1500)
@given(json_values, st.sampled_from([b"", b" ", b"x", b"\xff", b"\x00", b"1e400", b"NaN", b'"\\ud800"']),
       st.integers(0, 40))  # fmt: skip
def test_the_fast_json_parser_reads_what_the_stdlib_reads(value: object, junk: bytes, at: int) -> None:
    """Any document, and the same with junk put in: the same values (ints stay ints), or the same error."""
    text = json.dumps(value, ensure_ascii=False).encode()
    for payload in (text, text[:at] + junk + text[at:]):
        assert _outcome(payload, fast=True) == _outcome(payload, fast=False)


def test_the_stdlib_parser_alone_decodes_every_message() -> None:
    saved, codec.orjson = codec.orjson, None
    try:
        assert [decode(encode(m)) for m in MESSAGES] == MESSAGES  # type: ignore[arg-type]
    finally:
        codec.orjson = saved


@pytest.mark.parametrize("field", ["beats", "battery"])
def test_a_window_count_given_as_a_fraction_is_refused_on_the_fast_path_too(field: str) -> None:
    body = json.loads(encode(MESSAGES[0]))
    body["windows"][0][field] = 70.5
    with pytest.raises(WireDecodeError) as info:
        decode(json.dumps(body).encode())
    assert (info.value.reason, info.value.field) == ("type", f"windows[0].{field}")


def test_a_window_without_its_position_equals_the_checked_copy() -> None:
    located = window()
    stripped = located.without_position()
    assert stripped == replace(located, lat=None, lon=None) and stripped.lat is None and stripped.lon is None
    assert located.lat == 46.05  # the original is untouched
    assert stripped.without_position() is stripped
