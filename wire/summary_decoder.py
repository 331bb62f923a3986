"""Summary messages decoded and checked in one pass (msgspec), for the server's ingest.

A summary is nearly everything the server ingests (five windows a message by
default), and checking its windows field by field in Python cost ~80 % of
decoding one: ~12 us a window on fleet messages, against ~1.5 us for msgspec
to parse the JSON and check every field's type and range in C, ~4 us in all
with the windows built (docs/benchmarks.md, ingest, 2026-12-02 third session).

This path only ever *accepts*: a payload it takes is exactly one the
field-by-field decoder (:func:`wire.codec.decode`) takes, built into the same
:class:`~wire.messages.Summary` (ints stay ints, flags sorted and unique). For
anything else it says None, and the codec decodes the payload the slow way,
which gives the error that names the field, or the message (a form this path
does not take, such as ``"v": 1.0``). Its schema is made from the contract's
own tables (``WINDOW_RANGES``, ``WINDOW_COUNTS``, ``RHYTHM_FLAGS``,
``ACTIVITY_CLASSES``, ``LOCATION_RANGES``) and :class:`SummaryWindow`'s fields,
so a field added there without a rule here fails at import. The checks
between fields (end after start, hr_min <= hr_max, lat with lon) are made in
Python after it. The fuzz targets (:mod:`wire.fuzz`) check, on every input,
that what this path accepts the slow path accepts and builds alike.

msgspec is a dependency of the server; without it (:data:`AVAILABLE` False)
the codec decodes every summary the slow way, with the same results.
"""

from __future__ import annotations

from dataclasses import MISSING, fields
from typing import Annotated, Any, Literal, Union

from wire.errors import WireDecodeError
from wire.messages import (
    ACTIVITY_CLASSES,
    LOCATION_RANGES,
    MAX_COUNT,
    RHYTHM_FLAGS,
    SCHEMA_VERSION,
    WINDOW_COUNTS,
    WINDOW_RANGES,
    Summary,
    SummaryWindow,
    _WINDOW_INTEGERS,
    _WINDOW_REQUIRED_NUMBERS,
)

try:
    import msgspec
except ImportError:  # pragma: no cover - the slow path alone is tested by switching this one off
    msgspec = None

AVAILABLE = msgspec is not None

def _number(lo: float, hi: float, integer: bool, nullable: bool) -> Any:
    """The msgspec type of a number in ``[lo, hi]``: an int, or (not ``integer``) an int or a float as sent."""
    if lo != int(lo) or hi != int(hi):  # the int branch's bounds must be the same numbers
        raise ValueError(f"bounds {lo}..{hi} are not whole numbers")
    whole = Annotated[int, msgspec.Meta(ge=int(lo), le=int(hi))]
    options: list[Any] = [whole] if integer else [whole, Annotated[float, msgspec.Meta(ge=lo, le=hi)]]
    if nullable:
        options.append(None)
    return Union[tuple(options)]  # noqa: UP007 - a union built at run time


def _window_type(name: str) -> Any:
    """The msgspec type of one window field, from the contract's tables."""
    if name in WINDOW_RANGES:
        lo, hi = WINDOW_RANGES[name]
        return _number(lo, hi, name in _WINDOW_INTEGERS, name not in _WINDOW_REQUIRED_NUMBERS)
    if name in LOCATION_RANGES:
        return _number(*LOCATION_RANGES[name], integer=False, nullable=True)
    if name in WINDOW_COUNTS:
        return _number(0, MAX_COUNT, integer=True, nullable=True)
    if name == "flags":
        return tuple[Literal[tuple(sorted(RHYTHM_FLAGS))], ...]  # type: ignore[valid-type]
    if name == "activity":
        return Literal[tuple(sorted(ACTIVITY_CLASSES))]  # type: ignore[valid-type]
    if name == "fall":
        return bool
    raise TypeError(f"SummaryWindow.{name} has no rule in the summary decoder")


def _schema() -> Any:
    """The msgspec decoder of a whole summary payload (unknown fields refused at every level)."""
    window_fields = []
    for f in fields(SummaryWindow):
        spec: tuple[Any, ...] = (f.name, _window_type(f.name))
        window_fields.append(spec if f.default is MISSING else (*spec, f.default))
    window = msgspec.defstruct("WireWindow", window_fields, forbid_unknown_fields=True, gc=False)
    summary = msgspec.defstruct(
        "WireSummary",
        [("v", Literal[SCHEMA_VERSION]), ("kind", Literal["summary"]), ("device", str), ("seq", int),
         ("windows", list[window])],  # type: ignore[valid-type]
        forbid_unknown_fields=True, gc=False,
    )  # fmt: skip
    return msgspec.json.Decoder(summary)


_DECODER = _schema() if AVAILABLE else None
_NEW = object.__new__
_SET = object.__setattr__
_AS_DICT = msgspec.structs.asdict if AVAILABLE else None


def decode_summary(payload: bytes) -> Summary | None:
    """The summary in ``payload`` (JSON bytes, already inflated) if it is valid in every way, else None."""
    try:
        wire = _DECODER.decode(payload)  # type: ignore[union-attr]
    except (msgspec.ValidationError, msgspec.DecodeError):
        return None
    windows = []
    for w in wire.windows:
        if w.end <= w.start or (w.lat is None) != (w.lon is None):
            return None
        if w.hr_min is not None and w.hr_max is not None and w.hr_min > w.hr_max:
            return None
        values = _AS_DICT(w)  # type: ignore[misc]
        if len(w.flags) > 1:
            values["flags"] = tuple(sorted(set(w.flags)))
        window = _NEW(SummaryWindow)
        _SET(window, "__dict__", values)  # what the frozen __init__ stores, all checked above
        windows.append(window)
    try:
        return Summary(wire.device, wire.seq, tuple(windows))  # device, seq and the number of windows
    except WireDecodeError:
        return None
