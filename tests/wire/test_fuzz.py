"""Fuzzing the wire and GATT decoders inside the suite: structure-aware hypothesis runs and a corpus replay.

Every input ends in an accepted message (which must survive a round trip) or
a rejection with a reason, counted; any other exception fails the test. The
long, coverage-guided runs are ``bench/fuzz_decoders.py`` (atheris).
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from wire.fuzz import ODD_VALUES, TARGETS, TOPICS, Tally, mutate, paths, seed_messages

SEEDS = [json.loads(s) for s in seed_messages()]
TALLY = Tally()
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3),
    max_leaves=6,
)

# Inputs the fuzzers found that crashed a decoder before it was fixed (docs/security.md), and edges.
CRASHERS = [
    b'{"v":1,"kind":"status","device":"dev-f","seq":1,"time":1' + b"0" * 400 + b',"online":true}',  # OverflowError
    b'{"v":1,"kind":"status","device":"dev-f","seq":1,"time":1' + b"0" * 5000 + b',"online":true}',  # ValueError
    b'{"v":1,"kind":"summary","device":"dev-f","seq":1,"windows":' + b"[" * 100_000 + b"]" * 100_000 + b"}",
    b'{"v":1,"kind":"config","device":"dev-f","version":1' + b"0" * 400 + b',"time":1}',
    b'{"v":1,"kind":"config","device":"dev-f","version":"x","time":1}',  # accepted before, then compared
    b'{"v":1,"kind":"notify","device":"dev-f","time":1,"level":"red","title":5}',
    b'{"v":1,"kind":"config","device":"dev-f","version":1,"time":1,"limits":{"hr":{"red_low":"x"}}}',
    b'{"v":1,"kind":"summary","device":"dev-f","seq":1,"windows":[{"start":1,"end":2,"beats":1.5}]}',
    b'{"v":1,"kind":"event","device":"dev-f","seq":1,"type":"panic","time":null}',  # hypothesis
    b'{"v":1,"kind":"config","device":"dev-f","version":1,"time":1,"window_seconds":null}',  # atheris
]


@pytest.mark.parametrize("data", CRASHERS + seed_messages())
def test_corpus_replays_cleanly(data: bytes) -> None:
    for target in TARGETS:
        TALLY.run(target, data)
    assert TALLY.run("codec.decode", data) == ("accepted" if data in seed_messages() else TALLY_REASON[data])


TALLY_REASON = dict(zip(CRASHERS, ["range", "not_json", "too_deep", "range", "type", "type", "type", "type",
                                   "type", "type"]))  # fmt: skip


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.sampled_from(SEEDS), data=st.data())
def test_valid_messages_with_one_field_mutated_are_accepted_or_rejected_cleanly(seed: dict[str, Any], data: Any) -> None:
    path = data.draw(st.sampled_from(paths(seed)))
    action = data.draw(st.sampled_from(["set", "set", "delete", "compress"]))
    value = data.draw(st.sampled_from(ODD_VALUES) | json_values)
    payload = mutate(seed, path, action, value)
    TALLY.run("codec.decode", payload)
    topic = TOPICS.index(f"pisces/v1/dev-f/{seed['kind']}") if f"pisces/v1/dev-f/{seed['kind']}" in TOPICS else 0
    TALLY.run("codec.decode_uplink", bytes([topic]) + payload)


@settings(max_examples=150, deadline=None)
@given(seed=st.sampled_from(SEEDS), key=st.text(min_size=1, max_size=12), value=json_values)
def test_an_added_field_is_an_unknown_field(seed: dict[str, Any], key: str, value: Any) -> None:
    if key in seed:
        return
    assert TALLY.run("codec.decode", mutate(seed, (key,), "set", value)) == "unknown_field"


@settings(max_examples=300, deadline=None)
@given(target=st.sampled_from(sorted(TARGETS)), data=st.binary(max_size=200))
def test_any_bytes_are_accepted_or_rejected_cleanly(target: str, data: bytes) -> None:
    TALLY.run(target, data)


@settings(max_examples=200, deadline=None)
@given(st.sampled_from(["gatt.heart_rate", "gatt.pmd_frame", "gatt.pmd_control", "gatt.pmd_request"]), st.data())
def test_gatt_frames_with_one_byte_changed_or_cut(target: str, data: Any) -> None:
    from wire.gatt import HeartRateMeasurement, encode_heart_rate_measurement, encode_pmd_ecg_frame

    frame = {
        "gatt.heart_rate": encode_heart_rate_measurement(HeartRateMeasurement(72, True, 10, (0.8, 0.9))),
        "gatt.pmd_frame": encode_pmd_ecg_frame(123, [1, -2, 3]),
        "gatt.pmd_control": bytes([0xF0, 2, 0, 0, 1]),
        "gatt.pmd_request": bytes([0x02, 0x02, 0x00, 0x01, 0x19, 0x00, 0x02, 0x01, 0x08, 0x00]),  # start ACC
    }[target]
    i = data.draw(st.integers(0, len(frame) - 1))
    changed = frame[:i] + bytes([data.draw(st.integers(0, 255))]) + frame[i + 1 :]
    TALLY.run(target, changed)
    TALLY.run(target, frame[: data.draw(st.integers(0, len(frame)))])


def test_every_rejection_was_counted_by_reason() -> None:
    """Run last in this module: the tally saw every target and both outcomes, and nothing uncounted."""
    if TALLY.cases < 100:
        pytest.skip("run with the whole module")
    assert all(TALLY.counts[t] for t in TARGETS)
    decoded = TALLY.counts["codec.decode"]
    assert decoded["accepted"] > 0 and {"type", "range", "missing", "unknown_field", "not_json"} <= set(decoded)
