"""The one-pass summary decoder: it accepts only what the field-by-field decoder accepts, built alike."""

from __future__ import annotations

import json
import zlib
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from wire import codec, summary_decoder
from wire.codec import decode, encode, encode_for_uplink
from wire.errors import WireDecodeError
from wire.messages import WINDOW_RANGES, Summary, SummaryWindow

pytestmark = pytest.mark.skipif(not summary_decoder.AVAILABLE, reason="msgspec not installed: no one-pass path")

T = 1_790_000_000.0
FULL = SummaryWindow(T, T + 10, 12, 71.5, 60.0, 90.0, 845.0, 40.0, 30.0, ("pause", "ectopic"), 14.0, "walk", 0.1,
                     0.9, 80, 12.0, 1.1, 2, 90, 1, False, 48.1, 11.5)  # fmt: skip
BARE = SummaryWindow(T + 10, T + 20, 0, quality=0.0)


def slow(payload: bytes) -> Summary | str:
    """What the field-by-field decoder makes of ``payload``: the message, or the error's reason and field."""
    codec.one_pass_summaries = False
    try:
        return decode(payload)  # type: ignore[return-value]
    except WireDecodeError as exc:
        return f"{exc.reason}:{exc.field}"
    finally:
        codec.one_pass_summaries = summary_decoder.AVAILABLE


def body(*windows: dict[str, Any], **top: Any) -> dict[str, Any]:
    return {"v": 1, "kind": "summary", "device": "dev-1", "seq": 7, "windows": list(windows), **top}


def as_json(w: SummaryWindow) -> dict[str, Any]:
    return json.loads(encode(Summary("d", 1, (w,))))["windows"][0]


def test_valid_summaries_take_the_one_pass_path_and_equal_the_checked_ones() -> None:
    for windows in [(FULL,), (BARE,), (FULL, BARE)]:
        payload = encode(Summary("dev-1", 7, windows))
        fast = summary_decoder.decode_summary(payload)
        assert fast is not None  # the path is taken, not always refused
        assert fast == slow(payload) and encode(fast) == encode(slow(payload))  # type: ignore[arg-type]
        assert fast.windows[0].flags == tuple(sorted(set(windows[0].flags)))


def test_the_codec_uses_it_for_compressed_summaries_too(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[bytes] = []
    real = codec.decode_summary
    monkeypatch.setattr(codec, "decode_summary", lambda p: calls.append(p) or real(p))
    message = Summary("dev-1", 7, (FULL,))
    assert decode(encode_for_uplink(message)) == message
    assert calls and calls[0][:1] == b"{"  # inflated before it is read


def test_numbers_keep_their_json_type() -> None:
    raw = as_json(BARE) | {"hr_mean": 70, "quality": 1, "start": int(T + 10)}
    fast = summary_decoder.decode_summary(json.dumps(body(raw)).encode())
    assert fast is not None
    w = fast.windows[0]
    assert (type(w.hr_mean), type(w.quality), type(w.start)) == (int, int, int)


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"end": T}, "range:windows[0].end"),  # end not after start
        ({"hr_min": 95.0, "hr_max": 90.0}, "range:windows[0].hr_min"),
        ({"lat": 48.1, "lon": None}, "missing:windows[0].lon"),
        ({"hr_mean": 19.99}, "range:windows[0].hr_mean"),
        ({"beats": 12.0}, "type:windows[0].beats"),
        ({"battery": True}, "type:windows[0].battery"),
        ({"flags": ["pause", "afib"]}, "range:windows[0].flags"),
        ({"activity": "swim"}, "range:windows[0].activity"),
        ({"quality": None}, "type:windows[0].quality"),
        ({"fall": 1}, "type:windows[0].fall"),
        ({"steps": -1}, "range:windows[0].steps"),
        ({"colour": "red"}, "unknown_field:windows[0].colour"),
    ],
)
def test_what_it_refuses_is_decoded_field_by_field_for_the_error(change: dict[str, Any], reason: str) -> None:
    payload = json.dumps(body(as_json(FULL) | change)).encode()
    assert summary_decoder.decode_summary(payload) is None
    assert slow(payload) == reason
    with pytest.raises(WireDecodeError) as info:
        decode(payload)
    assert f"{info.value.reason}:{info.value.field}" == reason


@pytest.mark.parametrize(
    "top",
    [{"device": "dev/1"}, {"seq": -1}, {"seq": 2**63}, {"seq": True}, {"extra": 1}, {"windows": []}, {"v": 2}],
)
def test_a_bad_envelope_is_left_to_the_checks(top: dict[str, Any]) -> None:
    payload = json.dumps(body(as_json(FULL), **top)).encode()
    assert summary_decoder.decode_summary(payload) is None
    assert isinstance(slow(payload), str)


def test_forms_only_the_checks_accept_still_decode() -> None:
    payload = json.dumps(body(as_json(FULL), v=1.0)).encode()  # "v": 1.0 equals 1 to the checks
    assert summary_decoder.decode_summary(payload) is None
    assert decode(payload) == slow(payload) and isinstance(slow(payload), Summary)


def test_a_repeated_key_counts_its_last_value_as_the_checks_do() -> None:
    text = json.dumps(body(as_json(FULL))).replace('"hr_mean": 71.5', '"hr_mean": 500, "hr_mean": 72.5')
    payload = text.encode()
    result = decode(payload)
    assert result == slow(payload) and result.windows[0].hr_mean == 72.5  # type: ignore[union-attr]


numbers = st.one_of(
    st.sampled_from([None, True, False, 0, -1, 1, 20, 300, 301, 1e11, 1e11 + 1, 0.5, -0.0, 2**63, 2**64, "x"]),
    st.integers(-10, 400), st.floats(-10, 7000, allow_nan=False), st.integers(0, 2**70),
)  # fmt: skip
FIELDS = [*WINDOW_RANGES, "lat", "lon", "ectopic", "steps", "posture_changes", "fall", "flags", "activity"]
odd = st.one_of(numbers, st.lists(st.sampled_from(["pause", "vt", "ectopic", "afib", 1]), max_size=3),
                st.sampled_from(["rest", "run", "swim", "", None]))  # fmt: skip


@settings(max_examples=600, deadline=None)
@given(changes=st.dictionaries(st.sampled_from(FIELDS), odd, max_size=3), drop=st.sets(st.sampled_from(FIELDS)),
       squeeze=st.booleans())  # fmt: skip
def test_any_window_decodes_alike_on_both_paths(changes: dict[str, Any], drop: set[str], squeeze: bool) -> None:
    raw = {k: v for k, v in as_json(FULL).items() if k not in drop} | changes
    payload = json.dumps(body(raw, as_json(BARE))).encode()
    if squeeze:
        payload = zlib.compress(payload)
    try:
        result: Summary | str = decode(payload)  # type: ignore[assignment]
    except WireDecodeError as exc:
        result = f"{exc.reason}:{exc.field}"
    expected = slow(payload)
    assert result == expected
    if isinstance(result, Summary):
        assert encode(result) == encode(expected)  # type: ignore[arg-type]
