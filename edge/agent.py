"""The edge agent: sensor notifications in, durable uplink messages out.

    source --GATT bytes--> wire.gatt decode --> Summarizer --> Outbox --> Uplink (MQTT)
                                  \\--ECG ring buffer--> Strip on panic, symptom and rhythm events

ECG strips (``strip_seconds`` long, sent in the compact ``dvz`` encoding) end
at the time of their request: a panic or symptom mark (always sent), or a
rhythm request ``(time, "rhythm:<flag>")`` of the summariser, which comes when
the window holding the event closes, up to a window plus the lateness after
the event; the ring buffer therefore holds ``strip_seconds + window_seconds +
lateness + RING_SLACK_S`` of ECG. Rhythm strips pass the de-duplication and
rate limit of :mod:`edge.strip_policy` (skips counted in
``counters["rhythm_strips_duplicate"]`` / ``["rhythm_strips_rate_limited"]``;
requests with no ECG in the ring, e.g. from a heart-rate-only strap, in
``["rhythm_strips_without_ecg"]``).

Bad GATT frames are counted (``counters["bad_frames"]``) and skipped, never
fatal. Summary windows are batched ``batch_windows`` to a message, and flushed
at once when a window is urgent: a rhythm flag, or HR beyond the limits of the
latest :class:`wire.Config`. Patient actions (:func:`mark_symptom`,
:func:`press_panic`) only write into the outbox, so the CLI can call them while
the agent runs in another process; the agent picks up their strip requests and
the uplink their messages on its next poll. Nothing here reads a clock: time
comes from the notifications, or from the ``clock`` argument.
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets
import sqlite3
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from edge.location import LocationSource, panic_position, window_position, without_position
from edge.doses import DoseKeeper
from edge.outbox import Outbox, StripRequest
from edge.sensors import Notification, SensorSource
from edge.strip_policy import RhythmStripPolicy, StripLimits
from edge.summary import Summarizer
from edge.uplink import Uplink
from wire import Config, Event, EventType, Kind, Level, Notify, Strip, Summary, SummaryWindow, WireError, decode, encode
from wire.gatt import (
    BATTERY_LEVEL_UUID,
    HEART_RATE_MEASUREMENT_UUID,
    PMD_DATA_UUID,
    PmdEcgFrame,
    decode_battery_level,
    decode_heart_rate_measurement,
    decode_pmd_frame,
)

ECG_FS = 130.0  # Hz, Polar H10 PMD ECG
ACC_FS = 25.0  # Hz, as the agent asks the strap for
POLL_INTERVAL_S = 0.2
OPEN_PERIOD = "open_symptom_period"
URGENT_FLAGS = frozenset({"pause", "brady", "tachy", "irregular", "af_suspected", "vt"})
CONFIG_STATE = "config"
BATCH_STATE = "open_batch"  # closed windows not yet in a summary message, kept across a kill
STRAP_STATE = "paired_strap"  # BLE address of the strap this phone last connected to
RHYTHM_STRIPS_STATE = "rhythm_strips"  # rhythm strips sent in the last hour (the rate limit survives a restart)
RING_SLACK_S = 10.0  # ECG kept beyond a strip, a window and the lateness (late rhythm episodes)
CLOCK_BACK_TOLERANCE_S = 5.0  # receive times this far behind the newest one mean the phone's clock jumped back
TIME_GAP_S = 30.0  # a strap notifies about once a second: a longer silence is a forward clock jump or a lost link
MAX_NOTIFICATIONS = 50  # kept for the app


def mark_symptom(
    outbox: Outbox,
    device_id: str,
    action: str = "start",
    period: str | None = None,
    tags: Sequence[str] = (),
    severity: int | None = None,
    note: str = "",
    time: float | None = None,
) -> Event:
    """Record the start or stop of a period in which the patient does not feel well.

    A start also asks the running agent for an ECG strip.

    Args:
        outbox: the device's outbox (may be open in another process too).
        device_id: the device.
        action: ``"start"`` or ``"stop"``.
        period: id tying a start to its stop; None: a new id on start, the last
            open period on stop.
        tags, severity, note: symptom tags, 1-5, free text.
        time: s since epoch of the mark (default: now).
    """
    if action not in ("start", "stop"):
        raise ValueError("action must be 'start' or 'stop'")
    at = _now(time)
    start = action == "start"
    period_id = period or (None if start else outbox.get_state(OPEN_PERIOD)) or secrets.token_hex(6)
    kind = EventType.SYMPTOM_START if start else EventType.SYMPTOM_STOP
    event = outbox.put(
        lambda seq: Event(device_id, seq, kind, at, period_id, tuple(tags), severity, note),
        created=at,
        strip_reason="symptom" if start else None,
    )
    outbox.set_state(OPEN_PERIOD, period_id if start else None)
    return event


def press_panic(
    outbox: Outbox, device_id: str, time: float | None = None, where: tuple[float, float] | None = None
) -> Event:
    """Record a panic press; the running agent adds an ECG strip of the seconds before it.

    ``where`` is (lat, lon) in degrees, only with the patient's consent (:meth:`EdgeAgent.panic_position`).
    """
    at = _now(time)
    lat, lon = where or (None, None)
    return outbox.put(lambda seq: Event(device_id, seq, EventType.PANIC, at, lat=lat, lon=lon), created=at,
                      strip_reason="panic")  # fmt: skip


def send_feedback(outbox: Outbox, device_id: str, text: str, time: float | None = None) -> Event:
    """Record feedback for the people who design the service (never dropped by the outbox bound)."""
    at = _now(time)
    return outbox.put(lambda seq: Event(device_id, seq, EventType.FEEDBACK, at, note=text), created=at)


def remember_strap(outbox: Outbox, address: str) -> None:
    """Remember ``address`` as this phone's paired strap (called after each successful connect)."""
    if outbox.get_state(STRAP_STATE) != address:
        outbox.set_state(STRAP_STATE, address)


def paired_strap(outbox: Outbox) -> str | None:
    """The address of the strap this phone last connected to, if any."""
    return outbox.get_state(STRAP_STATE)


def hr_level(config: Config | None, hr: float | None) -> Level | None:
    """The level of a heart rate under the limits of ``config``: RED, YELLOW or None (inside, or unknown).

    Pure; the same comparison the server's rules make on a window's mean HR (limits inclusive).
    """
    limits = dict(config.limits).get("hr") if config else None
    if limits is None or hr is None:
        return None
    if (limits.red_low is not None and hr <= limits.red_low) or (limits.red_high is not None and hr >= limits.red_high):
        return Level.RED
    if (limits.yellow_low is not None and hr <= limits.yellow_low) or (
        limits.yellow_high is not None and hr >= limits.yellow_high
    ):
        return Level.YELLOW
    return None


def _now(at: float | None) -> float:
    return time.time() if at is None else float(at)


@dataclass
class AgentReport:
    """What one run of the agent did."""

    windows: int = 0
    summaries: int = 0
    strips: int = 0
    notifications: int = 0
    counters: dict[str, int] = field(default_factory=dict)


@dataclass
class Vitals:
    """The latest readings, for the patient's status screen (times in s since epoch)."""

    hr: int | None = None
    hr_time: float | None = None
    battery: int | None = None
    contact: bool | None = None
    last_time: float | None = None
    local_level: Level | None = None


class EdgeAgent:
    """Composition of source, decoding, summariser, outbox and (optionally) uplink.

    Args:
        device_id: this phone's device id.
        source: where notifications come from (a strap or a virtual one).
        outbox: the durable outbox.
        uplink: the MQTT link, started and stopped by :meth:`run`; None to only fill the outbox.
        window_seconds, batch_windows: summary cadence until a ``config`` says otherwise.
        strip_seconds: length of ECG strips.
        strip_limits: de-duplication and rate limit of rhythm strips (None: the defaults
            for ``strip_seconds``).
        poll_interval: s between outbox polls (uplink pump, strip requests).
        on_notify: called on the event loop with each ``Notify`` for the patient
            (from the server, or a local warning while offline).
        location: the phone's position fixes; used only while the latest config has
            ``share_location`` (windows get their median fix, panics the newest one).
        clock: s since epoch now, read on each poll for the dose reminders (:attr:`doses`),
            which also advance with the notifications' times; a simulation passes its own.
    """

    def __init__(
        self,
        device_id: str,
        source: SensorSource,
        outbox: Outbox,
        uplink: Uplink | None = None,
        *,
        window_seconds: float = 60.0,
        batch_windows: int = 5,
        strip_seconds: float = 30.0,
        strip_limits: StripLimits | None = None,
        poll_interval: float = POLL_INTERVAL_S,
        on_notify: Callable[[Notify], None] | None = None,
        location: LocationSource | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.device_id = device_id
        self.location = location
        self.source, self.outbox, self.uplink = source, outbox, uplink
        self.batch_windows = batch_windows
        self.strip_seconds = strip_seconds
        self.poll_interval = poll_interval
        self.on_notify = on_notify
        self.summarizer = Summarizer(window_seconds, ecg_fs=ECG_FS, acc_fs=ACC_FS)
        self.config: Config | None = None
        self.notifications: deque[Notify] = deque(maxlen=MAX_NOTIFICATIONS)
        self.vitals = Vitals()
        self.report = AgentReport(
            counters={"bad_frames": 0, "unknown_uuid": 0, "clock_jumps": 0, "local_warnings": 0, "outbox_errors": 0,
                      "time_gaps": 0, "rhythm_strips": 0, "rhythm_strips_duplicate": 0,
                      "rhythm_strips_rate_limited": 0, "rhythm_strips_without_ecg": 0,
                      "located_windows": 0, "positions_withdrawn": 0}
        )
        self.strip_policy = self._restore_strip_policy(strip_limits or StripLimits(strip_seconds=strip_seconds))
        self.clock = clock
        self.doses = DoseKeeper(outbox, device_id, self.report.counters)
        self._batch: list[SummaryWindow] = []
        self._ring: deque[tuple[float, np.ndarray]] = deque()  # (time of first sample, µV samples)
        self._held: list[Callable[[], object]] = []  # outbox writes that failed (disk full), retried on poll
        self._withdrawing = False  # positions to strip from the outbox before anything more is sent
        self._late: deque[tuple[Callable[[Any], None], Any]] = deque()  # downlink that came after run()'s loop closed
        self._restore_config()
        self._restore_batch()

    async def run(self) -> AgentReport:
        """Consume the source until it ends, then flush; returns what was done."""
        loop = asyncio.get_running_loop()
        if self.uplink is not None:
            self.uplink.on_notify = lambda n: self._hand_over(loop, self._notified, n)
            self.uplink.on_config = lambda c: self._hand_over(loop, self.apply_config, c)
            self.uplink.start()
        poller = asyncio.create_task(self._poll_forever())
        try:
            async for note in self.source.notifications():
                self.handle(note)
            self._emit(self.summarizer.finish(), force=True)
            self._serve_strip_requests()
        finally:
            poller.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await poller
        self.poll()
        return self.report

    async def drain(self, timeout: float) -> bool:
        """Keep polling until the outbox is empty (all acked) or ``timeout`` real seconds passed."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while self.outbox.pending_count() and loop.time() < deadline:
            self.poll()
            await asyncio.sleep(min(self.poll_interval, 0.05))
        self.poll()
        return self.outbox.pending_count() == 0

    @property
    def online(self) -> bool:
        """Whether the broker link is up."""
        return self.uplink is not None and self.uplink.connected

    def apply_config(self, config: Config) -> None:
        """Apply a ``config`` from the server (newer versions only) and keep it for offline use."""
        if self.config is not None and config.version < self.config.version:
            return
        was_sharing, self.config = self.sharing_location, config
        if was_sharing and not self.sharing_location:
            self._withdraw_positions()
        self.batch_windows = config.batch_windows
        self.doses.set_plan(config.medication)
        if config.window_seconds != self.summarizer.window_seconds:
            self._restart_summarizer(config.window_seconds)
        self._attempt(lambda: self.outbox.set_state(CONFIG_STATE, encode(config).decode()))

    @property
    def sharing_location(self) -> bool:
        """Whether positions may leave the phone: the latest config says so and there is a location source."""
        return self.location is not None and self.config is not None and self.config.share_location

    def panic_position(self, at: float) -> tuple[float, float] | None:
        """Where to say a panic pressed at ``at`` happened: the newest recent fix, only with consent."""
        return panic_position(self.location, at) if self.sharing_location and self.location else None

    def _withdraw_positions(self) -> None:
        """Consent withdrawn: take positions out of the open batch and of every message still in the outbox.

        A message published before and awaiting its PUBACK may still arrive with its position.
        Until the outbox is rewritten (a full disk may hold the rewrite back), nothing is sent.
        """
        self._batch = [w.without_position() for w in self._batch]
        self._keep_batch()
        self._withdrawing = True
        self._attempt(self._strip_outbox)

    def _strip_outbox(self) -> None:
        stripped = self.outbox.rewrite_pending((Kind.SUMMARY.value, Kind.EVENT.value), without_position)
        self.report.counters["positions_withdrawn"] += stripped
        self._withdrawing = False

    def _locate(self, w: SummaryWindow) -> SummaryWindow:
        """The window with the median of its fixes, while the patient shares their location."""
        if not self.sharing_location or self.location is None:
            return w
        where = window_position(self.location.fixes(w.start, w.end))
        if where is None:
            return w
        self.report.counters["located_windows"] += 1
        return replace(w, lat=where[0], lon=where[1])

    def _restore_config(self) -> None:
        config = self._saved(CONFIG_STATE, Kind.CONFIG)
        if isinstance(config, Config):
            self.apply_config(config)

    def _restore_strip_policy(self, limits: StripLimits) -> RhythmStripPolicy:
        try:
            return RhythmStripPolicy.loads(self.outbox.get_state(RHYTHM_STRIPS_STATE), limits)
        except ValueError:
            self.report.counters[f"bad_saved_{RHYTHM_STRIPS_STATE}"] = 1
            return RhythmStripPolicy(limits)

    def _restore_batch(self) -> None:
        """Take up the windows a killed agent had closed but not yet sent (see :meth:`_emit`)."""
        kept = self._saved(BATCH_STATE, Kind.SUMMARY)
        if isinstance(kept, Summary):
            self._batch = list(kept.windows)

    def _saved(self, name: str, kind: Kind) -> object:
        """A message kept in the outbox's state; None if absent, counted in ``bad_saved_<name>`` if unreadable."""
        saved = self.outbox.get_state(name)
        if saved is None:
            return None
        try:
            return decode(saved.encode(), kind)
        except WireError:
            self.report.counters[f"bad_saved_{name}"] = 1
            return None

    def _restart_summarizer(self, window_seconds: float) -> None:
        """Close the open windows (partial) and continue with a fresh summariser."""
        self._emit(self.summarizer.finish(), force=True)
        self.summarizer = Summarizer(window_seconds, ecg_fs=ECG_FS, acc_fs=ACC_FS)

    def _notified(self, message: Notify) -> None:
        self.notifications.append(message)
        if self.on_notify:
            self.on_notify(message)

    def _hand_over(self, loop: asyncio.AbstractEventLoop, apply: Callable[[Any], None], message: Any) -> None:
        """From the uplink's thread: apply a downlink message on the agent's loop, or on the next poll once
        that loop has closed (a notify arriving after :meth:`run` returned is kept, never lost or raised)."""
        try:
            loop.call_soon_threadsafe(apply, message)
        except RuntimeError:  # the event loop is closed
            self._late.append((apply, message))

    async def _poll_forever(self) -> None:
        while True:
            await asyncio.sleep(self.poll_interval)
            self.poll()

    def poll(self) -> None:
        """Retry held writes, serve strip requests, bring the dose reminders to now, let the uplink publish/ack.

        Called every ``poll_interval``, and at once after anything urgent.
        """
        while self._late:
            apply, message = self._late.popleft()
            apply(message)
        self._retry_held()
        self._serve_strip_requests()
        self.doses.tick(self.clock())  # reminders due, doses missed (written before the pump sends them)
        if self.uplink is not None and not self._withdrawing:  # withdrawn positions are stripped first
            self.uplink.pump()

    def _attempt(self, write: Callable[[], object]) -> None:
        """Run an outbox write; if the disk refuses it, hold it in memory and retry on the next poll.

        While writes are held, later ones queue behind them, so seqs keep the order of events.
        """
        if self._held:
            self._held.append(write)
            return
        try:
            write()
        except sqlite3.OperationalError:  # "database or disk is full", a locked file beyond the busy timeout
            self.report.counters["outbox_errors"] += 1
            self._held.append(write)

    def _retry_held(self) -> None:
        """Retry held writes in order, stopping at the first the disk still refuses."""
        while self._held:
            try:
                self._held[0]()
            except sqlite3.OperationalError:
                return  # still full; counted once, when the write was first refused
            self._held.pop(0)

    @property
    def held_writes(self) -> int:
        """Outbox writes waiting in memory for disk space."""
        return len(self._held)

    def handle(self, note: Notification) -> None:
        """Decode one notification and feed it on; bad frames are counted, not raised."""
        self.report.notifications += 1
        last = self.vitals.last_time
        if last is not None and note.time < last - CLOCK_BACK_TOLERANCE_S:
            self.report.counters["clock_jumps"] += 1
            self._restart_summarizer(self.summarizer.window_seconds)
            self._ring.clear()
        elif last is not None and note.time > last + TIME_GAP_S:
            self.report.counters["time_gaps"] += 1  # nothing to repair: the windows in between stay empty
        self.vitals.last_time = note.time if last is None else max(note.time, last) if note.time >= last - CLOCK_BACK_TOLERANCE_S else note.time
        self.doses.tick(note.time)  # cheap until a reminder is due: the strap's times drive a simulation too
        try:
            windows = self._dispatch(note)
        except WireError:
            self.report.counters["bad_frames"] += 1
            return
        self._emit(windows)

    def _dispatch(self, note: Notification) -> list[SummaryWindow]:
        uuid = note.uuid.lower()
        if uuid == HEART_RATE_MEASUREMENT_UUID:
            m = decode_heart_rate_measurement(note.data)
            self.vitals.hr, self.vitals.hr_time, self.vitals.contact = m.heart_rate, note.time, m.sensor_contact
            return self.summarizer.feed_hrm(note.time, m)
        if uuid == BATTERY_LEVEL_UUID:
            self.vitals.battery = decode_battery_level(note.data)
            return self.summarizer.feed_battery(note.time, self.vitals.battery)
        if uuid == PMD_DATA_UUID:
            frame = decode_pmd_frame(note.data)
            if isinstance(frame, PmdEcgFrame):
                uv = np.asarray(frame.samples_uv, dtype=float)
                start = note.time - (uv.size - 1) / ECG_FS
                self._keep_ecg(start, uv)
                return self.summarizer.feed_ecg(start, uv / 1000.0)
            mg = np.asarray(frame.samples_mg, dtype=float)
            return self.summarizer.feed_acc(note.time - (mg.shape[0] - 1) / ACC_FS, mg / 1000.0)
        self.report.counters["unknown_uuid"] += 1
        return []

    @property
    def ring_seconds(self) -> float:
        """ECG kept for strips: a strip, plus how late a rhythm request may come after its event."""
        return self.strip_seconds + self.summarizer.window_seconds + self.summarizer.lateness + RING_SLACK_S

    def _keep_ecg(self, start: float, uv: np.ndarray) -> None:
        self._ring.append((start, uv))
        while self._ring and self._ring[0][0] + self._ring[0][1].size / ECG_FS < start - self.ring_seconds:
            self._ring.popleft()
        self._serve_strip_requests()

    def _emit(self, windows: list[SummaryWindow], force: bool = False) -> None:
        self._emit_windows(windows, force)
        self._serve_rhythm_requests()

    def _emit_windows(self, windows: list[SummaryWindow], force: bool) -> None:
        windows = [self._locate(w) for w in windows]
        self.report.windows += len(windows)
        self._batch.extend(windows)
        for w in windows:
            self._warn_locally(w)
        urgent = any(self._is_urgent(w) for w in windows)
        if self._batch and (force or urgent or len(self._batch) >= self.batch_windows):
            batch, self._batch = tuple(self._batch), []
            self._attempt(lambda: self.outbox.put(
                lambda seq: Summary(self.device_id, seq, batch), created=batch[-1].end, state={BATCH_STATE: None}
            ))  # fmt: skip
            self.report.summaries += 1
            if urgent:
                self.poll()  # out at once, not at the next poll
        elif windows:
            self._keep_batch()

    def _keep_batch(self) -> None:
        """Persist the open batch, so a kill loses at most the window still open, never closed ones.

        The write encodes the batch as it is when it runs (a held write must not bring back sent windows).
        """
        self._attempt(lambda: self.outbox.set_state(BATCH_STATE, self._encoded_batch()))

    def _encoded_batch(self) -> str | None:
        return encode(Summary(self.device_id, 0, tuple(self._batch))).decode() if self._batch else None

    def _is_urgent(self, w: SummaryWindow) -> bool:
        return bool(set(w.flags) & URGENT_FLAGS) or hr_level(self.config, w.hr_mean) is not None

    def _warn_locally(self, w: SummaryWindow) -> None:
        """While offline, warn the patient from the last limits received (once per change of level)."""
        level = hr_level(self.config, w.hr_mean)
        previous, self.vitals.local_level = self.vitals.local_level, level
        if level is None or level == previous or self.online:
            return
        self.report.counters["local_warnings"] += 1
        title = "Heart rate outside your limits" if level is Level.YELLOW else "Heart rate far outside your limits"
        body = f"{w.hr_mean:.0f} bpm. The phone is offline: if you feel unwell, call your care team."
        self._notified(Notify(self.device_id, w.end, level, title, body, parameter="hr_local"))

    def _serve_strip_requests(self) -> None:
        try:
            requests = self.outbox.take_strip_requests()
        except sqlite3.OperationalError:
            self.report.counters["outbox_errors"] += 1
            return
        for request in requests:
            self._send_strip(request)

    def _serve_rhythm_requests(self) -> None:
        """Strips for the summariser's rhythm requests that pass the policy (after their summary, so later seqs)."""
        for at, reason in self.summarizer.take_strip_requests():
            if self._strip_before(at)[1].size == 0:  # e.g. a heart-rate-only strap flagged a tachycardia
                self.report.counters["rhythm_strips_without_ecg"] += 1
                continue
            skipped = self.strip_policy.admit(at, reason)
            if skipped is not None:
                self.report.counters[f"rhythm_strips_{skipped}"] += 1
                continue
            self._send_strip(StripRequest(None, reason, at))
            self.report.counters["rhythm_strips"] += 1
            history = self.strip_policy.dumps()
            self._attempt(lambda: self.outbox.set_state(RHYTHM_STRIPS_STATE, history))

    def _send_strip(self, request: StripRequest) -> bool:
        """Put a strip of the ECG ending at the request's time into the outbox; False if the ring has none."""
        start, samples = self._strip_before(request.time)
        if samples.size == 0:
            self.report.counters["strips_without_ecg"] = self.report.counters.get("strips_without_ecg", 0) + 1
            return False
        clipped = tuple(int(v) for v in np.clip(np.round(samples), -32768, 32767))
        self._attempt(lambda: self.outbox.put(
            lambda seq: Strip(self.device_id, seq, start, ECG_FS, request.reason, clipped, request.ref_seq),
            created=request.time,
        ))  # fmt: skip
        self.report.strips += 1
        return True

    def _strip_before(self, end: float) -> tuple[float, np.ndarray]:
        chunks = [(t0, uv) for t0, uv in self._ring if t0 < end and t0 + uv.size / ECG_FS > end - self.strip_seconds]
        if not chunks:
            return 0.0, np.zeros(0)
        t = np.concatenate([t0 + np.arange(uv.size) / ECG_FS for t0, uv in chunks])
        x = np.concatenate([uv for _, uv in chunks])
        keep = (t <= end) & (t > end - self.strip_seconds)
        return (float(t[keep][0]), x[keep]) if keep.any() else (0.0, np.zeros(0))
