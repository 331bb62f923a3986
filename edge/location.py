"""Where the phone is, and the rule that no position leaves it without the patient's consent.

A :class:`LocationSource` answers "which fixes fell in [start, end)?". A real
phone plugs its OS location service in through :class:`FixBuffer` (the
service's callback calls :meth:`FixBuffer.push`); the simulators' GPS track
(:func:`simulators.gps.track_source`) fills a :class:`FixBuffer` with its track.

The agent (:mod:`edge.agent`) asks only while the latest applied
``wire.Config`` has ``share_location`` true: a summary window gets the
component-wise median of its fixes (robust to a stray fix; the window's typical
place, not a route), a panic the newest fix of the last
:data:`PANIC_FIX_MAX_AGE_S`. When a config withdraws the consent, positions
already waiting in the outbox are removed from the payloads
(:func:`without_position`) before anything more is sent.

Pure apart from :class:`FixBuffer`'s in-memory list; no clock reads.
"""

from __future__ import annotations

import bisect
import statistics
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Protocol

from wire import Event, Kind, Summary, decode, encode_for_uplink
from wire.errors import WireDecodeError

PANIC_FIX_MAX_AGE_S = 120.0  # an older fix says little about where the patient is now
FIX_BUFFER_S = 3600.0  # FixBuffer keeps this much history (an hour of windows)


@dataclass(frozen=True)
class Fix:
    """One position fix: ``time`` s since epoch, ``lat``/``lon`` degrees (WGS 84)."""

    time: float
    lat: float
    lon: float


class LocationSource(Protocol):
    """Anything that can list the phone's position fixes of a time span."""

    def fixes(self, start: float, end: float) -> Sequence[Fix]:
        """The fixes with ``start <= time < end``, oldest first."""
        ...


def window_position(fixes: Sequence[Fix]) -> tuple[float, float] | None:
    """The median latitude and longitude of a window's fixes (None without fixes)."""
    if not fixes:
        return None
    return statistics.median(f.lat for f in fixes), statistics.median(f.lon for f in fixes)


def panic_position(source: LocationSource, at: float) -> tuple[float, float] | None:
    """The newest fix of the :data:`PANIC_FIX_MAX_AGE_S` up to ``at`` (inclusive), if any."""
    recent = source.fixes(at - PANIC_FIX_MAX_AGE_S, at + 1e-6)
    return (recent[-1].lat, recent[-1].lon) if recent else None


class FixBuffer:
    """The fixes an OS location service reported, kept for :data:`FIX_BUFFER_S` (a :class:`LocationSource`)."""

    def __init__(self, keep_s: float = FIX_BUFFER_S) -> None:
        self._times: list[float] = []
        self._fixes: list[Fix] = []
        self._keep_s = keep_s

    def push(self, fix: Fix) -> None:
        """Add a fix (from the OS callback); fixes older than the newest minus ``keep_s`` are forgotten."""
        i = bisect.bisect_right(self._times, fix.time)
        self._times.insert(i, fix.time)
        self._fixes.insert(i, fix)
        cut = bisect.bisect_left(self._times, self._times[-1] - self._keep_s)
        del self._times[:cut], self._fixes[:cut]

    def fixes(self, start: float, end: float) -> list[Fix]:
        """The fixes with ``start <= time < end``, oldest first."""
        return self._fixes[bisect.bisect_left(self._times, start) : bisect.bisect_left(self._times, end)]


def without_position(kind: str, payload: bytes) -> bytes | None:
    """The payload with every ``lat``/``lon`` removed, or None if it carries none (or is not ours to read).

    Summaries come back compressed as the uplink sends them; other kinds carry no position.
    """
    if kind not in (Kind.SUMMARY.value, Kind.EVENT.value):
        return None
    try:
        message = decode(payload, Kind(kind))
    except WireDecodeError:
        return None  # never ours to rewrite: it goes out as it is
    if isinstance(message, Summary) and any(w.lat is not None for w in message.windows):
        return encode_for_uplink(replace(message, windows=tuple(replace(w, lat=None, lon=None) for w in message.windows)))
    if isinstance(message, Event) and message.lat is not None:
        return encode_for_uplink(replace(message, lat=None, lon=None))
    return None
