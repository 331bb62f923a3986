"""Fuzz targets of the wire and GATT decoders: bytes in, an outcome counted by reason, a crash raised.

Shared by the coverage-guided fuzzer (``bench/fuzz_decoders.py``, atheris) and
the test suite (``tests/wire/test_fuzz.py``, hypothesis and a corpus replay).
Each target feeds one input to one decoder. Allowed outcomes: the decoder
accepts it, or rejects it with its contract's error (``WireDecodeError`` /
``GattDecodeError``, ``TopicError`` for a bad topic; ``ValueError`` for the
bare ``dvz`` decoder, which the codec turns into ``WireDecodeError``). Anything
else propagates: that is a crash. An accepted message must also survive a
round trip (encode, decode again, equal), so that "accepted" means "valid".

:func:`mutate` makes structure-aware inputs: a valid message with one field
(at a path) replaced, dropped or added, which reaches the validation code far
more often than random bytes do.
"""

from __future__ import annotations

import json
import zlib
from collections import Counter
from collections.abc import Callable
from typing import Any

from wire import codec
from wire.codec import decode, decode_uplink, encode
from wire.dvz import strip_decode
from wire.errors import TopicError, WireDecodeError
from wire.gatt import (
    decode_battery_level,
    decode_heart_rate_measurement,
    decode_pmd_control_request,
    decode_pmd_control_response,
    decode_pmd_frame,
)

# A topic for decode_uplink, chosen by the input's first byte: own kinds, a downlink, another
# device (payloads say "dev-f"), and topics that are not ours.
TOPICS = (
    "pisces/v1/dev-f/summary", "pisces/v1/dev-f/event", "pisces/v1/dev-f/strip", "pisces/v1/dev-f/status",
    "pisces/v1/dev-f/config", "pisces/v1/dev-g/summary", "pisces/v2/dev-f/summary", "pisces/v1/+/summary",
)  # fmt: skip


def _uplink(data: bytes) -> object:
    topic = TOPICS[data[0] % len(TOPICS)] if data else TOPICS[0]
    return decode_uplink(topic, data[1:])


TARGETS: dict[str, Callable[[bytes], object]] = {
    "codec.decode": decode,
    "codec.decode_uplink": _uplink,
    "dvz.strip_decode": lambda data: strip_decode(data, max_samples=120_000),
    "gatt.heart_rate": decode_heart_rate_measurement,
    "gatt.battery": decode_battery_level,
    "gatt.pmd_frame": decode_pmd_frame,
    "gatt.pmd_control": decode_pmd_control_response,
    "gatt.pmd_request": decode_pmd_control_request,
}


class Tally:
    """Outcomes per target: ``accepted`` or ``<reason>`` (``WireDecodeError.reason``, ``topic``, ``dvz``)."""

    def __init__(self) -> None:
        self.counts: dict[str, Counter[str]] = {name: Counter() for name in TARGETS}

    def run(self, target: str, data: bytes) -> str:
        """Feed ``data`` to ``target``; count and return the outcome; raise whatever is a crash."""
        outcome = _outcome(target, data)
        self.counts[target][outcome] += 1
        return outcome

    @property
    def cases(self) -> int:
        """Inputs run so far, all targets."""
        return sum(sum(c.values()) for c in self.counts.values())


def _outcome(target: str, data: bytes) -> str:
    try:
        result = TARGETS[target](data)
    except WireDecodeError as exc:
        return exc.reason
    except TopicError:
        return "topic"
    except ValueError:
        if target == "dvz.strip_decode":
            return "dvz"
        raise
    if target.startswith("codec."):
        _check_round_trip(result)
        _check_one_pass_agrees(target, data, result)
    return "accepted"


def _check_one_pass_agrees(target: str, data: bytes, result: object) -> None:
    """An accepted message is built the same (to the byte) with summaries' one-pass decoder switched off.

    That decoder only accepts; a payload it refuses is decoded field by field
    anyway, so rejections agree by construction and accepted ones are checked.
    """
    if not codec.one_pass_summaries:
        return
    codec.one_pass_summaries = False
    try:
        slow = TARGETS[target](data)
    except (WireDecodeError, TopicError) as exc:
        raise AssertionError(f"the one-pass decoder accepted what the checks refuse: {exc!r}") from exc
    finally:
        codec.one_pass_summaries = True
    message, again = (r[1] if isinstance(r, tuple) else r for r in (result, slow))
    if again != message or encode(again) != encode(message):  # type: ignore[arg-type]
        raise AssertionError(f"the one-pass decoder built {message!r}, the checks {again!r}")


def _check_round_trip(result: object) -> None:
    message = result[1] if isinstance(result, tuple) else result
    again = decode(encode(message))  # type: ignore[arg-type]
    if again != message:
        raise AssertionError(f"accepted message does not survive a round trip: {message!r} != {again!r}")


# Replacement values that probe the validators: wrong types, edges, huge and special numbers.
ODD_VALUES: tuple[Any, ...] = (
    None, True, False, 0, -1, 1, 2**63, -(2**63) - 1, 10**400, 1e308, -0.0, 0.5, "", "x", "x" * 5000,
    "\u0000", "\ud800", [], [1], [[[]]], {}, {"a": 1}, "dev-f/+", 1e11 + 1, 301, 3601,
)  # fmt: skip


def mutate(message: dict[str, Any], path: tuple[str | int, ...], action: str, value: Any = None) -> bytes:
    """A message (JSON object) with the field at ``path`` replaced by ``value``, deleted or added.

    Args:
        message: a valid message as a JSON object (it is copied, never changed).
        path: keys and list indexes down to the field, e.g. ``("windows", 0, "hr_mean")``.
        action: ``"set"`` (replace or add), ``"delete"``, or ``"compress"`` (the whole payload
            zlib-compressed after setting, as the phone sends summaries).
    """
    copy: Any = json.loads(json.dumps(message))
    target = copy
    for key in path[:-1]:
        target = target[key]
    last = path[-1] if path else None
    if last is not None and action == "delete" and isinstance(target, dict):
        target.pop(last, None)
    elif isinstance(target, list) and not isinstance(last, int):
        target.append(value)  # a "new key" in a list: one more element
    elif last is not None:
        target[last] = value
    raw = json.dumps(copy, ensure_ascii=False, allow_nan=True).encode("utf-8", "surrogatepass")
    return zlib.compress(raw) if action == "compress" else raw


def paths(obj: Any, prefix: tuple[str | int, ...] = ()) -> list[tuple[str | int, ...]]:
    """Every path to a field or list element of a JSON object (for :func:`mutate`)."""
    out: list[tuple[str | int, ...]] = []
    items = obj.items() if isinstance(obj, dict) else enumerate(obj) if isinstance(obj, list) else []
    for key, child in items:
        out.append((*prefix, key))
        out.extend(paths(child, (*prefix, key)))
    return out


def seed_messages() -> list[bytes]:
    """One valid message of every kind and shape (device ``dev-f``), as the seeds of mutation."""
    from wire.messages import Config, Event, EventType, Level, Limits, Notify, Status, Strip, Summary, SummaryWindow

    t = 1_790_000_000.0
    windows = (
        SummaryWindow(t, t + 60, 70, 71.5, 60.0, 90.0, 845.0, 40.0, 30.0, ("ectopic",), 14.0, "walk", 0.1, 0.9, 80,
                      12.0, 1.1, 2, 90, 1, False, 48.1, 11.5),
        SummaryWindow(t + 60, t + 120, 0, quality=0.0),
    )  # fmt: skip
    messages: list[Any] = [
        Summary("dev-f", 1, windows),
        Event("dev-f", 2, EventType.SYMPTOM_START, t, "p1", ("dizzy",), 3, "note", 48.1, 11.5),
        Event("dev-f", 3, EventType.PANIC, t),
        Strip("dev-f", 4, t, 130.0, "panic", tuple(range(-50, 50)), 3),
        Strip("dev-f", 5, t, 130.0, "rhythm:pause", (1, 2, 3), encoding="i16"),
        Status("dev-f", 6, t, True, "connected", 50),
        Notify("dev-f", t, Level.YELLOW, "title", "body", 7, "hr"),
        Config("dev-f", 1, t, 30.0, 3, (("hr", Limits(50, 111, 40, 131)),), True),
    ]
    return [encode(m) for m in messages]
