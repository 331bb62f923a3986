"""Messages <-> bytes: compact JSON (UTF-8) with strict validation.

Every payload is one JSON object with ``"v": 1`` and ``"kind": <kind>``
(the topic's last level, repeated so that a payload can be checked against its topic),
sent as is or, for summaries from the phone, as a zlib stream of that JSON
(:func:`encode_for_uplink`; told apart by its first byte, inflated under a bound).
Unknown fields are rejected, so that a typo in a field name is an error and
never a silently missing value. ECG strip samples travel as base64 (``"samples"``)
of either little-endian int16 microvolts (``"encoding":"i16"``, or no
``encoding``: the original form) or of the compact lossless ``dvz`` format
(``"encoding":"dvz"``, :mod:`wire.dvz`), which the decoder inflates under a
bound (``MAX_STRIP_SAMPLES``), so a small payload cannot blow up.
Decoding never raises anything but :class:`WireDecodeError` (or
:class:`TopicError` for a bad topic): fuzzed with hypothesis and atheris
(:mod:`wire.fuzz`, docs/security.md).
"""

from __future__ import annotations

import base64
import binascii
import functools
import json
import struct
import zlib
from dataclasses import MISSING, asdict, fields
from typing import Any, Callable, TypeVar

from wire.dvz import strip_decode, strip_encode
from wire.errors import WireDecodeError
from wire.medication import Drug, MedicationPlan
from wire.messages import (
    MAX_STRIP_SAMPLES,
    SCHEMA_VERSION,
    STRIP_ENCODINGS,
    Config,
    Event,
    Limits,
    Message,
    Notify,
    Status,
    Strip,
    Summary,
    SummaryWindow,
    Uplink,
)
from wire.summary_decoder import AVAILABLE as _ONE_PASS
from wire.summary_decoder import decode_summary
from wire.topics import Kind, Topic

try:  # a faster JSON parser where installed (the server has it); the decoder reads the same without it
    import orjson
except ImportError:  # pragma: no cover - the stdlib path is tested by forcing it
    orjson = None

MAX_PAYLOAD_BYTES = 1_000_000  # also the bound on an inflated payload
_DIGITS_AS_NINES = bytes.maketrans(b"012345678", b"999999999")
_LONG_NUMBER = b"9" * 19  # 19 digits in a row: a number orjson may not read as json does (see _parse)
ZLIB_MAGIC = b"\x78"  # first byte of a zlib stream (deflate, 32 KiB window); JSON starts with "{"
one_pass_summaries = _ONE_PASS  # summaries through wire.summary_decoder first (tests switch it off to compare)


def encode_for_uplink(message: Message) -> bytes:
    """The bytes the phone sends: summaries zlib-compressed (RFC 1950) when that is smaller.

    Batches of summary windows repeat their field names and similar values, so
    they shrink to a third or less; everything else is sent as plain JSON (strips
    are compressed by their own ``dvz`` encoding). :func:`decode` accepts both.
    """
    plain = encode(message)
    if message.kind is not Kind.SUMMARY:
        return plain
    packed = zlib.compress(plain, 9)
    return packed if len(packed) < len(plain) else plain


def encode(message: Message) -> bytes:
    """Serialise a message to its wire bytes."""
    body: dict[str, Any] = {"v": SCHEMA_VERSION, "kind": message.kind.value}
    for f in fields(message):
        if f.name == "kind" or getattr(message, f.name) is None:
            continue  # absent optional fields are left out rather than sent as null
        if f.name == "encoding" and isinstance(message, Strip) and message.encoding == "i16":
            continue  # absent means i16: the payload stays what it was before "encoding" existed
        body[f.name] = _encode_value(message, f.name, getattr(message, f.name))
    return json.dumps(body, separators=(",", ":"), ensure_ascii=False, allow_nan=False).encode()


def _encode_value(message: Message, name: str, value: Any) -> Any:
    if isinstance(message, Strip) and name == "samples":
        raw = strip_encode(value) if message.encoding == "dvz" else struct.pack(f"<{len(value)}h", *value)
        return base64.b64encode(raw).decode("ascii")
    if isinstance(message, Summary) and name == "windows":
        return [_window_dict(w) for w in value]
    if isinstance(message, Config) and name == "limits":
        return {param: _drop_none(asdict(lim)) for param, lim in value}
    if isinstance(message, Config) and name == "medication":
        return plan_dict(value)
    if isinstance(value, tuple):
        return list(value)
    if hasattr(value, "value"):  # enums
        return value.value
    return value


_WINDOW_FIELDS = tuple(f.name for f in fields(SummaryWindow))


def _window_dict(w: SummaryWindow) -> dict[str, Any]:
    # asdict() deep-copies; a flat getattr is ~3x faster on the phone's hot path.
    out: dict[str, Any] = {}
    for name in _WINDOW_FIELDS:
        v = getattr(w, name)
        if v is not None and not (name == "fall" and v is False):
            out[name] = list(v) if name == "flags" else v
    return out


def plan_dict(plan: MedicationPlan) -> dict[str, Any]:
    """A medication plan as its JSON object: a drug's unset fields, empty instructions and
    ``critical: false`` are left out (as absent optional fields are everywhere)."""
    body = {f.name: getattr(plan, f.name) for f in fields(MedicationPlan) if f.name != "drugs"}
    body["drugs"] = [
        {k: (list(v) if isinstance(v, tuple) else v) for k, v in asdict(d).items()
         if v is not None and not (k == "instructions" and v == "") and not (k == "critical" and v is False)}
        for d in plan.drugs
    ]  # fmt: skip
    return body


def _drop_none(d: dict[str, Any]) -> dict[str, Any]:
    return {k: (list(v) if isinstance(v, tuple) else v) for k, v in d.items() if v is not None}


def decode(payload: bytes, expected: Kind | None = None) -> Message:
    """Parse and validate wire bytes; ``expected`` pins the kind (e.g. from the topic).

    A summary (``expected`` summary or None) is tried first in one pass
    (:mod:`wire.summary_decoder`); anything that path does not take is decoded
    here field by field, which names the error.
    """
    payload = _inflated(payload)
    if one_pass_summaries and expected in (None, Kind.SUMMARY):
        summary = decode_summary(payload)
        if summary is not None:
            return summary
    obj = _load(payload)
    kind = _kind_of(obj)
    if expected is not None and kind != expected:
        raise WireDecodeError("mismatch", "kind", f"payload is {kind.value!r}, topic says {expected.value!r}")
    builder = _BUILDERS[kind]
    body = {k: v for k, v in obj.items() if k not in ("v", "kind")}
    try:
        return builder(body)
    except WireDecodeError:
        raise
    except (TypeError, ValueError, KeyError) as exc:
        raise WireDecodeError("invalid", "", str(exc)) from exc


def decode_uplink(topic: str, payload: bytes) -> tuple[Topic, Uplink]:
    """Decode an uplink message and check that topic and payload agree on device and kind."""
    parsed = Topic.parse(topic)
    if not parsed.kind.is_uplink:
        raise WireDecodeError("mismatch", "kind", f"{parsed.kind.value!r} is not an uplink kind")
    message = decode(payload, parsed.kind)
    if message.device != parsed.device_id:  # type: ignore[union-attr]
        raise WireDecodeError(
            "mismatch", "device", f"payload device {message.device!r} != topic device {parsed.device_id!r}"
        )
    return parsed, message  # type: ignore[return-value]


def _inflated(payload: bytes) -> bytes:
    """The payload's JSON bytes: a bounded size, inflated if the phone compressed it."""
    if not isinstance(payload, (bytes, bytearray, memoryview)):
        raise WireDecodeError("type", "", "payload must be bytes")
    if len(payload) > MAX_PAYLOAD_BYTES:
        raise WireDecodeError("too_large", "", f"{len(payload)} bytes > {MAX_PAYLOAD_BYTES}")
    payload = bytes(payload)
    return _inflate(payload) if payload[:1] == ZLIB_MAGIC else payload


def _load(payload: bytes) -> dict[str, Any]:
    try:
        obj = _parse(payload)
    except UnicodeDecodeError as exc:
        raise WireDecodeError("not_utf8", "", str(exc)) from exc
    except ValueError as exc:  # JSONDecodeError, or an integer beyond Python's 4300-digit limit (fuzzing)
        raise WireDecodeError("not_json", "", str(exc)[:200]) from exc
    except RecursionError as exc:  # nesting deeper than the interpreter's limit (ours is 4 levels; fuzzing)
        raise WireDecodeError("too_deep", "", "JSON nested too deeply") from exc
    if not isinstance(obj, dict):
        raise WireDecodeError("type", "", "payload must be a JSON object")
    if obj.get("v") != SCHEMA_VERSION:
        raise WireDecodeError("version", "v", f"expected {SCHEMA_VERSION}, got {obj.get('v')!r}")
    return obj


def _parse(payload: bytes) -> Any:
    """JSON bytes -> Python values, exactly as ``json.loads`` gives them, by orjson where installed (~4x faster).

    orjson refuses some inputs json takes (NaN, Infinity, 1e400, lone surrogates)
    or refuses them for another reason (bad UTF-8): those go to json, which
    gives the result or error it always gave. The one input both take but read
    differently is an integer beyond 64 bits (orjson makes it a float), so a
    payload with a run of 19 or more digits goes to json too.
    """
    if orjson is not None and _LONG_NUMBER not in payload.translate(_DIGITS_AS_NINES):
        try:
            return orjson.loads(payload)
        except orjson.JSONDecodeError:
            pass
    return json.loads(payload.decode("utf-8"), parse_constant=_reject_constant)


def _inflate(payload: bytes) -> bytes:
    """Undo :func:`encode_for_uplink`'s compression, refusing anything that inflates past the bound."""
    inflater = zlib.decompressobj()
    try:
        out = inflater.decompress(payload, MAX_PAYLOAD_BYTES + 1)
    except zlib.error as exc:
        raise WireDecodeError("corrupt", "", f"bad zlib stream: {exc}") from exc
    if len(out) > MAX_PAYLOAD_BYTES or inflater.unconsumed_tail:
        raise WireDecodeError("too_large", "", f"inflates past {MAX_PAYLOAD_BYTES} bytes")
    if not inflater.eof or inflater.unused_data:
        raise WireDecodeError("corrupt", "", "truncated or trailing bytes after the zlib stream")
    return out


def _reject_constant(name: str) -> Any:
    raise WireDecodeError("range", "", f"{name} is not a number")


def _kind_of(obj: dict[str, Any]) -> Kind:
    try:
        return Kind(obj.get("kind"))
    except ValueError as exc:
        raise WireDecodeError("range", "kind", f"unknown message kind {obj.get('kind')!r}") from exc


@functools.cache
def _schema(cls: type) -> tuple[frozenset[str], tuple[str, ...]]:
    """(all init field names, names that must not be null: required or with a non-None default)."""
    init = [f for f in fields(cls) if f.init]
    not_null = tuple(f.name for f in init if f.default is not None)
    return frozenset(f.name for f in init), not_null


def _fields_of(cls: type, body: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """Check that ``body`` names only fields of ``cls`` and has all required ones."""
    known, not_null = _schema(cls)
    for name in body:
        if name not in known:
            raise WireDecodeError("unknown_field", prefix + name, f"not a field of {cls.__name__}")
    for name in not_null:  # null is no value: fuzzing found a null time and a null window_seconds accepted
        if name in body and body[name] is None:
            raise WireDecodeError("type", prefix + name, "null is not a value here")
        if name not in body and _is_required(cls, name):
            raise WireDecodeError("missing", prefix + name, "required")
    return dict(body)


@functools.cache
def _is_required(cls: type, name: str) -> bool:
    f = next(f for f in fields(cls) if f.name == name)
    return f.default is MISSING and f.default_factory is MISSING


def _as_tuple(value: Any, name: str) -> tuple[Any, ...]:
    if not isinstance(value, list):
        raise WireDecodeError("type", name, "expected a list")
    return tuple(value)


def _build_summary(body: dict[str, Any]) -> Summary:
    data = _fields_of(Summary, body)
    windows = []
    for i, raw in enumerate(_as_tuple(data["windows"], "windows")):
        window = SummaryWindow.if_valid(raw) if type(raw) is dict else None  # the common case, checked at once
        windows.append(window or _checked_window(i, raw))
    data["windows"] = tuple(windows)
    return Summary(**data)


def _checked_window(i: int, raw: Any) -> SummaryWindow:
    """Window ``i`` through every check in turn: raises the error naming its field (or builds it)."""
    return _object(SummaryWindow, raw, f"windows[{i}].", "flags")


T = TypeVar("T")


def _objects(cls: Callable[..., T], raw: Any, where: str, listed: str) -> tuple[T, ...]:
    """``cls`` built from each object of the JSON list ``raw`` (at field ``where``); field ``listed`` is a list."""
    return tuple(_object(cls, item, f"{where}[{i}].", listed) for i, item in enumerate(_as_tuple(raw, where)))


def _object(cls: Callable[..., T], item: Any, prefix: str, listed: str) -> T:
    """``cls`` built from the JSON object ``item`` (its fields named under ``prefix``); field ``listed`` is a list."""
    if not isinstance(item, dict):
        raise WireDecodeError("type", prefix[:-1], "expected an object")
    data = _fields_of(cls, item, prefix)  # type: ignore[arg-type]
    if listed in data:
        data[listed] = _as_tuple(data[listed], prefix + listed)
    return _prefixed(prefix, lambda: cls(**data))


def _prefixed(prefix: str, build: Callable[[], T]) -> T:
    """``build()``, with the field of a WireDecodeError it raises put under ``prefix``."""
    try:
        return build()
    except WireDecodeError as exc:
        raise WireDecodeError(exc.reason, prefix + exc.field if exc.field else prefix[:-1], exc.detail) from exc


def _build_event(body: dict[str, Any]) -> Event:
    data = _fields_of(Event, body)
    if "tags" in data:
        data["tags"] = _as_tuple(data["tags"], "tags")
    return Event(**data)


def _build_strip(body: dict[str, Any]) -> Strip:
    data = _fields_of(Strip, body)
    encoding = data.setdefault("encoding", "i16")
    if not isinstance(encoding, str) or encoding not in STRIP_ENCODINGS:
        raise WireDecodeError("range", "encoding", f"one of {sorted(STRIP_ENCODINGS)}")
    encoded = data["samples"]
    if not isinstance(encoded, str):
        raise WireDecodeError("type", "samples", f"expected base64 of {encoding} samples")
    try:
        raw = base64.b64decode(encoded, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise WireDecodeError("not_base64", "samples", str(exc)) from exc
    data["samples"] = _dvz_samples(raw) if encoding == "dvz" else _i16_samples(raw)
    return Strip(**data)


def _i16_samples(raw: bytes) -> tuple[int, ...]:
    if len(raw) % 2:
        raise WireDecodeError("range", "samples", "odd number of bytes for int16 samples")
    return struct.unpack(f"<{len(raw) // 2}h", raw)


def _dvz_samples(raw: bytes) -> tuple[int, ...]:
    """Samples of a dvz payload; corrupt or oversized data is a ``corrupt`` error, out-of-int16 a ``range`` one."""
    try:
        samples = strip_decode(raw, max_samples=MAX_STRIP_SAMPLES)
    except ValueError as exc:
        raise WireDecodeError("corrupt", "samples", str(exc)) from exc
    if samples.size and (samples.min() < -32768 or samples.max() > 32767):
        raise WireDecodeError("range", "samples", "each sample must fit int16 (µV)")
    return tuple(samples.tolist())


def _build_status(body: dict[str, Any]) -> Status:
    return Status(**_fields_of(Status, body))


def _build_notify(body: dict[str, Any]) -> Notify:
    return Notify(**_fields_of(Notify, body))


def _build_config(body: dict[str, Any]) -> Config:
    data = _fields_of(Config, body)
    raw = data.get("limits", {})
    if not isinstance(raw, dict):
        raise WireDecodeError("type", "limits", "expected an object of parameter -> limits")
    limits = []
    for param, lim in sorted(raw.items()):
        if not isinstance(lim, dict):
            raise WireDecodeError("type", f"limits.{param}", "expected an object")
        limits.append((param, Limits(**_fields_of(Limits, lim, f"limits.{param}."))))
    data["limits"] = tuple(limits)
    if data.get("medication") is not None:
        data["medication"] = plan_from_dict(data["medication"], "medication.")
    return Config(**data)


def plan_from_dict(raw: Any, prefix: str = "") -> MedicationPlan:
    """Build and validate a medication plan from its JSON object; errors name the field under ``prefix``."""
    if not isinstance(raw, dict):
        raise WireDecodeError("type", prefix[:-1], "expected an object")
    data = _fields_of(MedicationPlan, raw, prefix)
    data["drugs"] = _objects(Drug, data.get("drugs", []), prefix + "drugs", "times")
    return _prefixed(prefix, lambda: MedicationPlan(**data))


_BUILDERS: dict[Kind, Callable[[dict[str, Any]], Message]] = {
    Kind.SUMMARY: _build_summary,
    Kind.EVENT: _build_event,
    Kind.STRIP: _build_strip,
    Kind.STATUS: _build_status,
    Kind.NOTIFY: _build_notify,
    Kind.CONFIG: _build_config,
}
