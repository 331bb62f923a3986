"""Message schemas of protocol version 1, as frozen, self-validating dataclasses.

Units are part of the contract and are named in every field's comment:
times are seconds since the Unix epoch (UTC, float, millisecond precision),
heart rate in beats per minute, RR statistics in milliseconds, respiration in
breaths per minute, acceleration in g, battery in percent, ECG in microvolts.

Every uplink message carries ``device`` and ``seq``: the per-device, strictly
increasing sequence number that the phone's outbox assigns. ``(device, seq)``
is the idempotency key from the phone to the database.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import MISSING, dataclass, field, fields
from enum import Enum
from typing import Any, Union

from wire.errors import WireDecodeError
from wire.medication import DOSE_PARAMETER_PREFIX, MAX_TEXT, MedicationPlan
from wire.topics import Kind, validate_device_id

SCHEMA_VERSION = 1

RHYTHM_FLAGS = frozenset({"irregular", "af_suspected", "pause", "ectopic", "brady", "tachy", "vt"})
ACTIVITY_CLASSES = frozenset({"rest", "walk", "run", "lying", "unknown"})
MAX_WINDOWS_PER_MESSAGE = 1000
MAX_STRIP_SAMPLES = 1000 * 120  # 120 s at 1 kHz
STRIP_ENCODINGS = frozenset({"i16", "dvz"})  # how Strip.samples travel (see wire.codec, wire.dvz)
MAX_NOTE_CHARS = 1000
MAX_PARAMETER_CHARS = len(DOSE_PARAMETER_PREFIX) + MAX_TEXT  # "hr", "panic", ..., or a drug's "dose:<name>"
MAX_TAGS = 20


class EventType(str, Enum):
    """What a patient (or the agent on their behalf) reported."""

    SYMPTOM_START = "symptom_start"
    SYMPTOM_STOP = "symptom_stop"
    PANIC = "panic"
    FEEDBACK = "feedback"
    DOSE_TAKEN = "dose_taken"  # the patient took a planned dose (time: when)
    DOSE_SKIPPED = "dose_skipped"  # ... decided not to take it (note: the reason, if given)
    DOSE_SNOOZED = "dose_snoozed"  # ... asked to be reminded again later
    DOSE_MISSED = "dose_missed"  # the phone reminded and nobody confirmed before the dose closed


DOSE_EVENTS = frozenset({EventType.DOSE_TAKEN, EventType.DOSE_SKIPPED, EventType.DOSE_SNOOZED, EventType.DOSE_MISSED})


class Level(str, Enum):
    """Alert levels: yellow notifies the patient, red informs clinicians at once."""

    INFO = "info"
    YELLOW = "yellow"
    RED = "red"


def check_range(name: str, value: float | None, lo: float, hi: float) -> None:
    """Raise WireDecodeError("range") unless ``value`` is None or finite within [lo, hi]."""
    if value is None:
        return
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise WireDecodeError("type", name, f"expected a number, got {type(value).__name__}")
    # An int is compared as it is: math.isfinite() of a 400-digit int overflows (found by fuzzing).
    if not (isinstance(value, int) or math.isfinite(value)) or not lo <= value <= hi:
        raise WireDecodeError("range", name, f"{value!r:.40} outside [{lo}, {hi}]")


def check_int(name: str, value: int | None, lo: int, hi: int) -> None:
    """Raise WireDecodeError("type") unless ``value`` is None or an integer, ("range") unless within [lo, hi]."""
    if value is not None and (isinstance(value, bool) or not isinstance(value, int)):
        raise WireDecodeError("type", name, f"expected an integer, got {type(value).__name__}")
    check_range(name, value, lo, hi)


def check_text(name: str, value: object, most: int, optional: bool = False) -> None:
    """Raise WireDecodeError unless ``value`` is a string of at most ``most`` characters (or None if optional)."""
    if value is None and optional:
        return
    if not isinstance(value, str):
        raise WireDecodeError("type", name, f"expected a string, got {type(value).__name__}")
    if len(value) > most:
        raise WireDecodeError("range", name, f"at most {most} characters")


def _check_uplink(device: str, seq: int) -> None:
    try:
        validate_device_id(device)
    except ValueError as exc:
        raise WireDecodeError("range", "device", str(exc)) from exc
    if isinstance(seq, bool) or not isinstance(seq, int):
        raise WireDecodeError("type", "seq", "expected an integer")
    check_range("seq", seq, 0, 2**63 - 1)


LOCATION_RANGES = {"lat": (-90.0, 90.0), "lon": (-180.0, 180.0)}  # degrees


def _check_location(lat: float | None, lon: float | None) -> None:
    if (lat is None) != (lon is None):
        raise WireDecodeError("missing", "lat" if lat is None else "lon", "lat and lon go together")
    check_range("lat", lat, *LOCATION_RANGES["lat"])
    check_range("lon", lon, *LOCATION_RANGES["lon"])


@dataclass(frozen=True)
class SummaryWindow:
    """One analysis window of the edge pipeline (typically 10-60 s)."""

    start: float  # s since epoch
    end: float  # s since epoch, > start
    beats: int  # beats detected in the window
    hr_mean: float | None = None  # bpm; None when no usable beats
    hr_min: float | None = None  # bpm
    hr_max: float | None = None  # bpm
    rr_mean: float | None = None  # ms
    sdnn: float | None = None  # ms
    rmssd: float | None = None  # ms
    flags: tuple[str, ...] = ()  # subset of RHYTHM_FLAGS
    resp_rate: float | None = None  # breaths/min
    activity: str = "unknown"  # one of ACTIVITY_CLASSES
    intensity: float | None = None  # g, mean absolute deviation of |a| from 1 g
    quality: float = 1.0  # 0 (unusable) .. 1 (clean)
    battery: int | None = None  # % of the wearable's battery
    pnn50: float | None = None  # % of successive RR differences > 50 ms
    pause_max: float | None = None  # s, the longest RR interval (a pause when >= 2 s)
    ectopic: int | None = None  # premature (ectopic) beats in the window
    steps: int | None = None  # steps counted in the window
    posture_changes: int | None = None  # e.g. lying -> upright transitions
    fall: bool = False  # a fall candidate was detected in the window
    lat: float | None = None  # degrees, only with the patient's consent
    lon: float | None = None  # degrees

    def __post_init__(self) -> None:
        flags = _window_flags_if_valid(self.__dict__)
        if flags is None:
            self._check()  # something is wrong: the field-by-field checks name it
        else:
            object.__setattr__(self, "flags", flags)

    @classmethod
    def from_fields(cls, values: Mapping[str, Any]) -> SummaryWindow:
        """A window from field values (absent ones take their defaults), validated exactly as ``__init__`` does.

        The decoder's path (it runs for every window the server ingests): a valid
        window is built without the frozen ``__init__``, ~4x faster; anything the
        fast check does not accept goes through ``__init__``, which raises the
        error (or builds the window) as it always did. ``values`` must name fields
        only (the codec checks that first).
        """
        window = cls.if_valid(values)
        return cls(**values) if window is None else window

    @classmethod
    def if_valid(cls, values: Mapping[str, Any]) -> SummaryWindow | None:
        """The window of :meth:`from_fields` if ``values`` names exactly its fields and all are valid, else None.

        None says nothing of why: the codec then checks the names and builds the
        window the slow way, for an error naming the field.
        """
        every = {**_WINDOW_DEFAULTS, **values}
        try:
            flags = _window_flags_if_valid(every) if len(every) == _WINDOW_FIELD_COUNT else None
        except KeyError:  # a required field missing, its place taken by an unknown one
            return None
        if flags is None:
            return None
        every["flags"] = flags
        window = object.__new__(cls)
        window.__dict__.update(every)  # what the frozen __init__ stores, set in one step
        return window

    def without_position(self) -> SummaryWindow:
        """This window without ``lat``/``lon`` (still valid: a position is optional), built without re-checking.

        The server strips positions a patient did not consent to share from every such
        window it ingests, so this is on its hot path (``dataclasses.replace`` re-runs
        every check, ~8x the cost).
        """
        if self.lat is None and self.lon is None:
            return self
        window = object.__new__(SummaryWindow)
        window.__dict__.update(self.__dict__, lat=None, lon=None)
        return window

    def _check(self) -> None:
        """Every check, in order; the first that fails raises (field-by-field, for the error's reason and field)."""
        for name in ("start", "end", "beats", "quality"):  # _WINDOW_REQUIRED_NUMBERS: the range checks pass None
            if getattr(self, name) is None:
                raise WireDecodeError("type", name, "null is not a value here")
        check_range("start", self.start, *WINDOW_RANGES["start"])
        check_range("end", self.end, *WINDOW_RANGES["end"])
        if self.end <= self.start:
            raise WireDecodeError("range", "end", "end must be after start")
        check_int("beats", self.beats, *WINDOW_RANGES["beats"])  # type: ignore[arg-type]
        for name in ("hr_mean", "hr_min", "hr_max"):
            check_range(name, getattr(self, name), *WINDOW_RANGES[name])
        if None not in (self.hr_min, self.hr_max) and self.hr_min > self.hr_max:  # type: ignore[operator]
            raise WireDecodeError("range", "hr_min", "hr_min above hr_max")
        for name in ("rr_mean", "sdnn", "rmssd"):
            check_range(name, getattr(self, name), *WINDOW_RANGES[name])
        unknown = set(self.flags) - RHYTHM_FLAGS
        if unknown:
            raise WireDecodeError("range", "flags", f"unknown flags {sorted(unknown)}")
        object.__setattr__(self, "flags", tuple(sorted(set(self.flags))))
        check_range("resp_rate", self.resp_rate, *WINDOW_RANGES["resp_rate"])
        if self.activity not in ACTIVITY_CLASSES:
            raise WireDecodeError("range", "activity", f"one of {sorted(ACTIVITY_CLASSES)}")
        for name in ("intensity", "quality", "pnn50", "pause_max"):
            check_range(name, getattr(self, name), *WINDOW_RANGES[name])
        check_int("battery", self.battery, *WINDOW_RANGES["battery"])  # type: ignore[arg-type]
        for name in WINDOW_COUNTS:
            _check_count(name, getattr(self, name))
        if not isinstance(self.fall, bool):
            raise WireDecodeError("type", "fall", "expected true or false")
        _check_location(self.lat, self.lon)


# Bounds of a window's numbers, inclusive (units as in SummaryWindow); lat/lon: LOCATION_RANGES.
WINDOW_RANGES: dict[str, tuple[float, float]] = {
    "start": (0, 1e11), "end": (0, 1e11), "beats": (0, 100_000),
    "hr_mean": (20, 300), "hr_min": (20, 300), "hr_max": (20, 300),
    "rr_mean": (150, 6000), "sdnn": (0, 5000), "rmssd": (0, 5000), "resp_rate": (1, 80),
    "intensity": (0, 16), "quality": (0, 1), "battery": (0, 100), "pnn50": (0, 100), "pause_max": (0, 60),
}  # fmt: skip
WINDOW_COUNTS = ("ectopic", "steps", "posture_changes")  # integers 0..MAX_COUNT or None
MAX_COUNT = 1_000_000
_WINDOW_REQUIRED_NUMBERS = frozenset({"start", "end", "beats", "quality"})  # None is not valid here (_check too)
_LAT, _LON = LOCATION_RANGES["lat"], LOCATION_RANGES["lon"]
_WINDOW_INTEGERS = frozenset({"beats", "battery"})  # a float is refused here, as check_int refuses it
_WINDOW_NUMBER_CHECKS = tuple((name, lo, hi, name not in _WINDOW_REQUIRED_NUMBERS, name in _WINDOW_INTEGERS)
                              for name, (lo, hi) in WINDOW_RANGES.items())


def _window_flags_if_valid(f: Mapping[str, Any]) -> tuple[str, ...] | None:
    """The normalised flags if every field of a window (all of them in ``f``) is valid, else None.

    The fast test behind :class:`SummaryWindow`: it only accepts what the
    field-by-field checks accept (plain ints and floats; with finite bounds the
    comparisons also refuse NaN and infinities), and says None for anything else,
    which then goes through those checks for the error.
    """
    for name, lo, hi, optional, integer in _WINDOW_NUMBER_CHECKS:
        v = f[name]
        t = type(v)
        if t is int or (t is float and not integer):
            if not lo <= v <= hi:
                return None
        elif not (v is None and optional):
            return None
    if f["end"] <= f["start"] or type(f["fall"]) is not bool:
        return None
    low, high = f["hr_min"], f["hr_max"]
    if low is not None and high is not None and low > high:
        return None
    activity = f["activity"]
    if type(activity) is not str or activity not in ACTIVITY_CLASSES:
        return None
    for name in WINDOW_COUNTS:
        v = f[name]
        if v is not None and not (type(v) is int and 0 <= v <= MAX_COUNT):
            return None
    lat, lon = f["lat"], f["lon"]
    if lat is not None or lon is not None:
        if type(lat) not in (int, float) or type(lon) not in (int, float):
            return None
        if not (_LAT[0] <= lat <= _LAT[1] and _LON[0] <= lon <= _LON[1]):
            return None
    flags = f["flags"]
    if type(flags) not in (tuple, list):
        return None
    if not flags:
        return ()
    if any(type(x) is not str or x not in RHYTHM_FLAGS for x in flags):
        return None
    return tuple(flags) if len(flags) < 2 else tuple(sorted(set(flags)))


_WINDOW_DEFAULTS: dict[str, Any] = {f.name: f.default for f in fields(SummaryWindow) if f.default is not MISSING}
_WINDOW_FIELD_COUNT = len(fields(SummaryWindow))

def _check_count(name: str, value: int | None) -> None:
    check_int(name, value, 0, MAX_COUNT)


@dataclass(frozen=True)
class Summary:
    """A batch of consecutive summary windows (the phone batches to spare the link)."""

    device: str
    seq: int
    windows: tuple[SummaryWindow, ...]
    kind: Kind = field(default=Kind.SUMMARY, init=False, repr=False)

    def __post_init__(self) -> None:
        _check_uplink(self.device, self.seq)
        if not 1 <= len(self.windows) <= MAX_WINDOWS_PER_MESSAGE:
            raise WireDecodeError("range", "windows", f"1..{MAX_WINDOWS_PER_MESSAGE} windows")


@dataclass(frozen=True)
class Event:
    """Something the patient did: symptom period start/stop, panic, feedback, a dose confirmation.

    Dose events name their dose by ``drug`` and ``planned`` (see :mod:`wire.medication`); other
    events carry neither.
    """

    device: str
    seq: int
    type: EventType
    time: float  # s since epoch
    period: str | None = None  # id of the symptom period, required for symptom_start/stop
    tags: tuple[str, ...] = ()  # symptom tags, e.g. "palpitations", "dizzy"
    severity: int | None = None  # 1 (mild) .. 5 (severe)
    note: str = ""  # free text, at most MAX_NOTE_CHARS
    lat: float | None = None
    lon: float | None = None
    drug: str | None = None  # dose events: the drug's name in the plan
    planned: float | None = None  # dose events: s since epoch the dose was planned for
    kind: Kind = field(default=Kind.EVENT, init=False, repr=False)

    def __post_init__(self) -> None:
        _check_uplink(self.device, self.seq)
        try:
            object.__setattr__(self, "type", EventType(self.type))
        except ValueError as exc:
            raise WireDecodeError("range", "type", str(exc)) from exc
        check_range("time", self.time, 0, 1e11)
        symptom = self.type in (EventType.SYMPTOM_START, EventType.SYMPTOM_STOP)
        if symptom and not self.period:
            raise WireDecodeError("missing", "period", "symptom events need a period id")
        if self.period is not None and not (isinstance(self.period, str) and 0 < len(self.period) <= 64):
            raise WireDecodeError("range", "period", "1-64 characters")
        if len(self.tags) > MAX_TAGS or any(not isinstance(t, str) or not 0 < len(t) <= 40 for t in self.tags):
            raise WireDecodeError("range", "tags", f"at most {MAX_TAGS} tags of 1-40 characters")
        if self.severity is not None:
            if isinstance(self.severity, bool) or not isinstance(self.severity, int):
                raise WireDecodeError("type", "severity", "expected an integer")
            check_range("severity", self.severity, 1, 5)
        if not isinstance(self.note, str) or len(self.note) > MAX_NOTE_CHARS:
            raise WireDecodeError("range", "note", f"a string of at most {MAX_NOTE_CHARS} characters")
        _check_location(self.lat, self.lon)
        self._check_dose()

    def _check_dose(self) -> None:
        if self.type not in DOSE_EVENTS:
            if self.drug is not None or self.planned is not None:
                raise WireDecodeError("range", "drug" if self.drug is not None else "planned", "only for dose events")
            return
        if self.drug is None or self.planned is None:
            raise WireDecodeError("missing", "drug" if self.drug is None else "planned", "dose events name their dose")
        if not isinstance(self.drug, str) or not 0 < len(self.drug) <= MAX_TEXT or not self.drug.strip():
            raise WireDecodeError("range", "drug", f"a plan's drug name, 1-{MAX_TEXT} characters")
        check_range("planned", self.planned, 0, 1e11)


@dataclass(frozen=True)
class Strip:
    """A short raw ECG segment around an event, in microvolts at ``fs`` Hz.

    ``encoding`` only chooses how ``samples`` travel on the wire; both decode to
    the same samples. ``"dvz"`` (the default; ``wire.dvz``) takes about half the
    bytes of ``"i16"`` (base64 of little-endian int16), which a payload without
    ``encoding`` has, as before this field existed.
    """

    device: str
    seq: int
    start: float  # s since epoch of the first sample
    fs: float  # Hz
    reason: str  # "panic", "symptom", "rhythm:<flag>"
    samples: tuple[int, ...]  # µV, each within int16
    ref_seq: int | None = None  # seq of the event that caused the strip, if any
    encoding: str = "dvz"  # wire encoding of the samples: "dvz" (compact, lossless) or "i16"
    kind: Kind = field(default=Kind.STRIP, init=False, repr=False)

    def __post_init__(self) -> None:
        _check_uplink(self.device, self.seq)
        check_range("start", self.start, 0, 1e11)
        check_range("fs", self.fs, 50, 2000)
        if not isinstance(self.reason, str) or not 0 < len(self.reason) <= 64:
            raise WireDecodeError("range", "reason", "1-64 characters")
        if not 1 <= len(self.samples) <= MAX_STRIP_SAMPLES:
            raise WireDecodeError("range", "samples", f"1..{MAX_STRIP_SAMPLES} samples")
        if min(self.samples) < -32768 or max(self.samples) > 32767:
            raise WireDecodeError("range", "samples", "each sample must fit int16 (µV)")
        check_int("ref_seq", self.ref_seq, 0, 2**63 - 1)
        if self.encoding not in STRIP_ENCODINGS:
            raise WireDecodeError("range", "encoding", f"one of {sorted(STRIP_ENCODINGS)}")

    @property
    def duration(self) -> float:
        """Length of the strip in seconds."""
        return len(self.samples) / self.fs


@dataclass(frozen=True)
class Status:
    """Liveness of the agent and its wearable (retained; the offline one is the last will)."""

    device: str
    seq: int
    time: float  # s since epoch
    online: bool
    sensor: str = "unknown"  # "connected", "disconnected", "unknown"
    battery: int | None = None  # % of the phone's battery
    kind: Kind = field(default=Kind.STATUS, init=False, repr=False)

    def __post_init__(self) -> None:
        _check_uplink(self.device, self.seq)
        check_range("time", self.time, 0, 1e11)
        if not isinstance(self.online, bool):
            raise WireDecodeError("type", "online", "expected true or false")
        if self.sensor not in ("connected", "disconnected", "unknown"):
            raise WireDecodeError("range", "sensor", "connected, disconnected or unknown")
        check_int("battery", self.battery, 0, 100)


@dataclass(frozen=True)
class Notify:
    """A message for the patient's phone, e.g. a yellow alert."""

    device: str
    time: float  # s since epoch
    level: Level
    title: str
    body: str = ""
    alert_id: int | None = None
    parameter: str | None = None  # e.g. "hr", "panic"
    kind: Kind = field(default=Kind.NOTIFY, init=False, repr=False)

    def __post_init__(self) -> None:
        validate_device_id(self.device)
        object.__setattr__(self, "level", Level(self.level))
        check_range("time", self.time, 0, 1e11)
        check_text("title", self.title, MAX_NOTE_CHARS)
        check_text("body", self.body, MAX_NOTE_CHARS)
        check_int("alert_id", self.alert_id, 0, 2**63 - 1)
        check_text("parameter", self.parameter, MAX_PARAMETER_CHARS, optional=True)


@dataclass(frozen=True)
class Limits:
    """Yellow and red limits of one parameter; None means no limit on that side."""

    yellow_low: float | None = None
    yellow_high: float | None = None
    red_low: float | None = None
    red_high: float | None = None

    def __post_init__(self) -> None:
        for name in ("yellow_low", "yellow_high", "red_low", "red_high"):
            check_range(name, getattr(self, name), -1e6, 1e6)


@dataclass(frozen=True)
class Config:
    """Settings pushed to the phone (retained): limits in force, the summary cadence, the medication plan."""

    device: str
    version: int
    time: float  # s since epoch
    window_seconds: float = 60.0  # length of one summary window
    batch_windows: int = 5  # windows per summary message unless something is urgent
    limits: tuple[tuple[str, Limits], ...] = ()  # (parameter, limits), e.g. ("hr", Limits(...))
    # The patient's consent to location sharing: without it no GPS position leaves the phone.
    share_location: bool = False
    medication: MedicationPlan | None = None  # the plan in force (None: the server sent none)
    kind: Kind = field(default=Kind.CONFIG, init=False, repr=False)

    def __post_init__(self) -> None:
        validate_device_id(self.device)
        check_int("version", self.version, 0, 2**63 - 1)
        check_range("time", self.time, 0, 1e11)
        check_range("window_seconds", self.window_seconds, 1, 3600)
        check_int("batch_windows", self.batch_windows, 1, MAX_WINDOWS_PER_MESSAGE)
        if not isinstance(self.share_location, bool):
            raise WireDecodeError("type", "share_location", "expected true or false")
        if self.medication is not None and not isinstance(self.medication, MedicationPlan):
            raise WireDecodeError("type", "medication", "expected a medication plan")


Uplink = Union[Summary, Event, Strip, Status]
Downlink = Union[Notify, Config]
Message = Union[Summary, Event, Strip, Status, Notify, Config]
