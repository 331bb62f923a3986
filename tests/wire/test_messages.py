"""The fast validity test of summary windows accepts exactly what the field-by-field checks accept."""

from __future__ import annotations

import math
from dataclasses import astuple
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from wire import SummaryWindow, WireDecodeError
from wire.messages import LOCATION_RANGES, WINDOW_RANGES

T0 = 1_763_000_000.0

# Values of every JSON type and then some (what a phone or an attacker may send).
ODD = st.sampled_from([None, True, False, "7", [], [1], {}, math.nan, math.inf, -math.inf, 0, -1, 10**30, -0.0])
VALID: dict[str, Any] = dict(
    start=T0, end=T0 + 60, beats=72, hr_mean=72.0, hr_min=61.0, hr_max=88.0, rr_mean=833.0, sdnn=42.0, rmssd=31.0,
    flags=("ectopic",), resp_rate=14.0, activity="rest", intensity=0.01, quality=0.97, battery=80, pnn50=3.0,
    pause_max=1.2, ectopic=1, steps=0, posture_changes=2, fall=False, lat=46.05, lon=14.5,
)  # fmt: skip


def values_for(name: str) -> st.SearchStrategy[Any]:
    """Values of one field: inside, on and just beyond its bounds, and odd ones."""
    if name in WINDOW_RANGES or name in LOCATION_RANGES:
        lo, hi = {**WINDOW_RANGES, **LOCATION_RANGES}[name]
        edges = [lo, hi, lo - 1e-9, hi + 1e-9, int(lo), int(hi), int(hi) + 1]
        near = {"end": [T0, T0 - 1], "hr_min": [88.0, 88.5], "hr_max": [61.0, 60.5]}.get(name, [])  # vs start, each other
        return st.one_of(st.floats(lo, hi), st.integers(int(lo), int(hi)), st.sampled_from(edges + near), ODD)
    if name in ("ectopic", "steps", "posture_changes"):
        return st.one_of(st.integers(-2, 1_000_001), st.sampled_from([1.5, True, "3"]), ODD)
    if name == "flags":
        some = st.lists(st.sampled_from(["af_suspected", "pause", "vt", "ectopic", "hiccup", 3]), max_size=4)
        return st.one_of(some.map(tuple), some, ODD)
    if name == "activity":
        return st.one_of(st.sampled_from(["rest", "walk", "lying", "swim", "REST"]), ODD)
    return ODD


def window_fields() -> st.SearchStrategy[dict[str, Any]]:
    """A valid window's fields with up to three of them changed or left out (a required one too)."""
    change = st.sampled_from(sorted(VALID)).flatmap(lambda n: st.tuples(st.just(n), st.one_of(values_for(n), st.just(KeyError))))

    def apply(changes: list[tuple[str, Any]]) -> dict[str, Any]:
        fields = dict(VALID)
        for name, value in changes:
            if value is KeyError:
                fields.pop(name, None)
            else:
                fields[name] = value
        return fields

    return st.lists(change, max_size=3).map(apply)


def outcome(build: Any, fields: dict[str, Any]) -> tuple[Any, ...]:
    """What building a window gives: its fields, or the error (type, reason, field)."""
    try:
        return ("ok", astuple(build(fields)))
    except WireDecodeError as exc:
        return ("error", exc.reason, exc.field)
    except (TypeError, ValueError) as exc:
        return ("error", type(exc).__name__)


def checked_one_by_one(fields: dict[str, Any]) -> SummaryWindow:
    """The reference: a window holding ``fields`` as given, put through every check in turn."""
    window = object.__new__(SummaryWindow)
    defaults = {k: v for k, v in SummaryWindow(T0, T0 + 1, 0).__dict__.items() if k not in ("start", "end", "beats")}
    SummaryWindow(**fields)  # the same TypeError for a missing or unknown field
    window.__dict__.update({**defaults, **fields})
    window._check()
    return window


@settings(max_examples=3000)
@given(window_fields())
def test_the_fast_path_agrees_with_the_field_by_field_checks(fields: dict[str, Any]) -> None:
    reference = outcome(checked_one_by_one, fields)
    assert outcome(SummaryWindow.from_fields, fields) == reference
    assert outcome(lambda f: SummaryWindow(**f), fields) == reference


def test_flags_come_out_sorted_and_unique_either_way() -> None:
    fields = {"start": T0, "end": T0 + 60, "beats": 60, "flags": ("vt", "pause", "vt")}
    assert SummaryWindow.from_fields(fields).flags == ("pause", "vt")
    assert SummaryWindow(**fields).flags == ("pause", "vt")  # type: ignore[arg-type]
    assert SummaryWindow.from_fields(fields) == SummaryWindow(**fields)  # type: ignore[arg-type]


def test_a_missing_field_is_the_same_error_as_from_init() -> None:
    try:
        SummaryWindow.from_fields({"start": T0, "end": T0 + 60, "colour": 3})
    except TypeError as exc:
        assert "beats" in str(exc) or "colour" in str(exc)
    else:
        raise AssertionError("a window without beats was built")


@pytest.mark.parametrize("name", ["start", "end", "beats", "quality"])
def test_a_required_number_given_as_none_is_refused_the_same_way_by_every_path(name: str) -> None:
    fields = {"start": T0, "end": T0 + 60, "beats": 60, "quality": 0.9, name: None}
    with pytest.raises(WireDecodeError) as built:
        SummaryWindow(**fields)  # type: ignore[arg-type]
    assert (built.value.reason, built.value.field) == ("type", name)
    assert SummaryWindow.if_valid(fields) is None
