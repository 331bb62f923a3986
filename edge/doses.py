"""Dose reminders on the phone: :mod:`edge.reminders` kept in the outbox, confirmations sent as events.

:class:`DoseKeeper` holds the dose book in memory and in the outbox's state
(``dose_book``), so reminders and answers survive a restart and work offline.
Every confirmation (``dose_taken``, ``dose_skipped``, ``dose_snoozed``) and every
dose the phone closes as ``dose_missed`` is one ``wire.Event`` written by
``Outbox.put`` **in the same transaction** as the book that records it, so an
answer is sent exactly when the book says it was given. It then travels like
every other event (resent until acknowledged, stored once by ``(device, seq)``).

Time comes from the caller (the agent's notifications, its clock, or the tap):
:meth:`DoseKeeper.tick` is cheap until :func:`edge.reminders.next_change`, and
never goes back (a tick older than the newest one counts as the newest).
Thread-safe (one lock): the app's routes run in a thread pool beside the
agent's loop. One keeper per outbox (the agent's).
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Callable

from edge.outbox import Outbox
from edge.reminders import DoseBook, DoseError, Reminder, confirm, next_change, next_dose, review, showing
from wire import Event, EventType
from wire.medication import MedicationPlan, ScheduledDose, dose_key

DOSE_BOOK_STATE = "dose_book"
RETRY_S = 1.0  # a refused write is tried again this much later
EVENT_OF = {"taken": EventType.DOSE_TAKEN, "skipped": EventType.DOSE_SKIPPED, "snoozed": EventType.DOSE_SNOOZED}

__all__ = ["DOSE_BOOK_STATE", "DoseError", "DoseKeeper"]


class DoseKeeper:
    """The phone's reminders for one device.

    Args:
        outbox: the device's outbox (book and events are stored there).
        device_id: the device.
        problems: where to count ``outbox_errors`` and ``bad_saved_dose_book`` (the agent's
            report counters, which the app shows as problems).

    Attributes:
        counts: ``reminders`` opened and doses ``missed`` since the keeper started.
    """

    def __init__(self, outbox: Outbox, device_id: str, problems: dict[str, int]) -> None:
        self.outbox, self.device_id, self.problems = outbox, device_id, problems
        self.counts = {"reminders": 0, "missed": 0}
        self.plan: MedicationPlan | None = None
        self.now = 0.0  # newest time seen
        self._wake = 0.0  # nothing changes before this time
        self._failing = False  # the last write was refused
        self._lock = threading.RLock()
        try:
            self.book = DoseBook.from_json(outbox.get_state(DOSE_BOOK_STATE))
        except ValueError:
            problems[f"bad_saved_{DOSE_BOOK_STATE}"] = 1
            self.book = DoseBook()

    def set_plan(self, plan: MedicationPlan | None) -> None:
        """Use ``plan`` from now on (a newer ``config`` arrived); reviewed on the next tick."""
        with self._lock:
            if plan != self.plan:
                self.plan, self._wake = plan, 0.0

    def tick(self, now: float) -> int:
        """Bring the book to ``now``: open due reminders, record missed doses; returns how many were missed."""
        with self._lock:
            return self._tick(now)

    def _tick(self, now: float) -> int:
        self.now = max(self.now, now)
        if self.now < self._wake:
            return 0
        book, missed = review(self.book, self.plan, self.now)
        opened = sum(1 for k, r in book.entries.items() if r.is_open and k not in self.book.entries)
        try:
            self._record(book, missed)
        except sqlite3.OperationalError:  # disk full or locked: retried a second later, counted once
            if not self._failing:
                self.problems["outbox_errors"] = self.problems.get("outbox_errors", 0) + 1
            self._failing, self._wake = True, self.now + RETRY_S
            return 0
        self._failing = False
        self.counts["reminders"] += opened
        self.counts["missed"] += len(missed)
        self._wake = next_change(self.book, self.plan, self.now)
        return len(missed)

    def _record(self, book: DoseBook, missed: list[Reminder]) -> None:
        """Write one ``dose_missed`` event per missed dose, each with the book as of that dose.

        The in-memory book follows each committed write, so a write the disk refuses
        halfway is retried from there and no dose is recorded twice.
        """
        for i, r in enumerate(missed):
            later = {m.key: self.book.entries[m.key] for m in missed[i + 1:]}  # still open in this write
            state = DoseBook({**book.entries, **later})
            self.outbox.put(self._missed_event(r), created=r.closes_at, state={DOSE_BOOK_STATE: state.to_json()})
            self.book = state
        if book != self.book:
            self.outbox.set_state(DOSE_BOOK_STATE, book.to_json())
            self.book = book

    def _missed_event(self, r: Reminder) -> Callable[[int], Event]:
        return lambda seq: Event(self.device_id, seq, EventType.DOSE_MISSED, r.closes_at, drug=r.drug,
                                 planned=r.planned)

    def showing(self, now: float) -> list[Reminder]:
        """The reminders to show at ``now`` (after a tick)."""
        with self._lock:
            self._tick(now)
            return showing(self.book, self.now)

    def next_dose(self, now: float) -> ScheduledDose | None:
        """The next planned dose not yet in the book."""
        with self._lock:
            return next_dose(self.book, self.plan, max(self.now, now))

    def confirm(self, drug: str, planned: float, action: str, now: float, reason: str = "") -> Event:
        """Record one tap on a dose: ``taken``, ``skipped`` (with an optional reason) or ``snoozed``.

        Raises:
            DoseError: unknown dose, already answered or missed, or an early skip/snooze.
            sqlite3.OperationalError: the outbox refused the write (nothing changed).
        """
        with self._lock:
            self._tick(now)
            book, entry = confirm(self.book, self.plan, dose_key(drug, planned), action, max(self.now, now))
            note = reason if action == "skipped" else ""
            event = self.outbox.put(
                lambda seq: Event(self.device_id, seq, EVENT_OF[action], now, note=note, drug=entry.drug,
                                  planned=entry.planned),
                created=now, state={DOSE_BOOK_STATE: book.to_json()},
            )  # fmt: skip
            self.book, self._wake = book, 0.0
            return event
