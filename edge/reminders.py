"""The phone's dose reminders: a pure state machine over the plan in force, fed with times.

The *book* holds every dose the phone has reminded of (or that was confirmed
early), keyed by :func:`wire.medication.dose_key`, with its state::

    due --snooze--> snoozed --(snooze over)--> shown again
     |  \\--taken / skipped--> closed (the patient's answer)
     '--(closes_at passed, no answer)--> missed (recorded by the phone)

:func:`review` at ``now`` opens a ``due`` entry for each dose of the plan whose
time has come and whose deadline has not passed (so a dose whose whole window
passed while the phone was off is never reminded of, nor recorded as missed:
the server shows it as unconfirmed), closes the open ones past their deadline
as ``missed`` and returns them (the caller records them), drops open entries
the current plan no longer has (from the plan's ``since`` on), and forgets
closed entries after :data:`KEEP_S`. :func:`confirm` applies one tap. Nothing
here reads a clock or touches a file; :mod:`edge.doses` does.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, replace
from typing import Any

from wire.medication import MedicationPlan, ScheduledDose, dose_key, schedule

KEEP_S = 2 * 86_400.0  # closed entries are remembered this long after their deadline
EARLY_S = 3_600.0  # a dose may be confirmed as taken up to this long before its time
SNOOZE_S = 600.0  # how long "snooze" puts a reminder away
OPEN_STATES = frozenset({"due", "snoozed"})
ACTIONS = frozenset({"taken", "skipped", "snoozed"})
LOOKAHEAD_S = 2 * 86_400.0  # how far ahead the next dose is looked for


class DoseError(ValueError):
    """A tap that cannot be applied; ``reason`` is ``unknown`` (no such dose) or ``closed``."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(detail)
        self.reason = reason


@dataclass(frozen=True)
class Reminder:
    """One dose in the book; times in s since epoch."""

    drug: str
    dose: str
    planned: float
    on_time_until: float
    closes_at: float
    state: str = "due"  # due, snoozed, taken, skipped, missed
    snoozed_until: float | None = None
    critical: bool = False
    instructions: str = ""

    @property
    def key(self) -> str:
        """The dose's name, shared with the server."""
        return dose_key(self.drug, self.planned)

    @property
    def is_open(self) -> bool:
        """Not yet answered nor missed."""
        return self.state in OPEN_STATES

    @classmethod
    def of(cls, dose: ScheduledDose) -> Reminder:
        """A fresh ``due`` entry for a scheduled dose."""
        return cls(dose.drug, dose.dose, dose.planned, dose.on_time_until, dose.closes_at,
                   critical=dose.critical, instructions=dose.instructions)  # fmt: skip


@dataclass(frozen=True)
class DoseBook:
    """The doses the phone knows about, by key (JSON-serialisable, kept in the outbox's state)."""

    entries: Mapping[str, Reminder] = field(default_factory=dict)

    def to_json(self) -> str:
        """Compact JSON; :meth:`from_json` reads it back."""
        return json.dumps([asdict(r) for r in self.entries.values()], separators=(",", ":"))

    @classmethod
    def from_json(cls, text: str | None) -> DoseBook:
        """The book saved by :meth:`to_json` (None: an empty book); ValueError if unreadable."""
        if not text:
            return cls()
        try:
            rows: list[dict[str, Any]] = json.loads(text)
            entries = [Reminder(**row) for row in rows]
        except (TypeError, json.JSONDecodeError) as exc:
            raise ValueError(f"unreadable dose book: {exc}") from exc
        return cls({r.key: r for r in entries})

    def open_entries(self) -> list[Reminder]:
        """Entries still waiting for an answer, by planned time."""
        return sorted((r for r in self.entries.values() if r.is_open), key=lambda r: (r.planned, r.drug))


def review(book: DoseBook, plan: MedicationPlan | None, now: float) -> tuple[DoseBook, list[Reminder]]:
    """The book at ``now`` and the entries that have just become missed (oldest first).

    Args:
        book: the book so far.
        plan: the plan in force on the phone (None: none received; open entries still run out).
        now: s since epoch.
    """
    entries = dict(book.entries)
    if plan is not None:
        open_since = min((r.planned for r in entries.values() if r.is_open), default=now)
        current = {d.key: d for d in schedule(plan, min(open_since, now - plan.grace_minutes * 60.0), now + 1e-6)}
        for key, r in list(entries.items()):
            if r.is_open and r.planned >= plan.since and key not in current:
                del entries[key]  # withdrawn by a newer plan
        for key, dose in current.items():
            if key not in entries and dose.planned <= now < dose.closes_at:
                entries[key] = Reminder.of(dose)
    for key, r in list(entries.items()):
        if not r.is_open and r.closes_at < now - KEEP_S:
            del entries[key]
    missed = [replace(r, state="missed", snoozed_until=None) for r in
              sorted((r for r in entries.values() if r.is_open and r.closes_at <= now), key=lambda r: r.planned)]
    entries.update((r.key, r) for r in missed)
    return DoseBook(entries), missed


def showing(book: DoseBook, now: float) -> list[Reminder]:
    """The reminders to show at ``now``: due ones and snoozed ones whose snooze is over, by time."""
    return [r for r in book.open_entries()
            if r.state == "due" or (r.snoozed_until is not None and r.snoozed_until <= now)]  # fmt: skip


def next_dose(book: DoseBook, plan: MedicationPlan | None, now: float) -> ScheduledDose | None:
    """The next planned dose after ``now`` that the book does not hold yet (within two days)."""
    if plan is None:
        return None
    return next((d for d in schedule(plan, now, now + LOOKAHEAD_S) if d.key not in book.entries
                 and d.planned > now), None)  # fmt: skip


def next_change(book: DoseBook, plan: MedicationPlan | None, now: float) -> float:
    """The earliest time after ``now`` at which :func:`review` or :func:`showing` can change."""
    times = [r.closes_at for r in book.open_entries()]
    times += [r.snoozed_until for r in book.open_entries() if r.snoozed_until is not None and r.snoozed_until > now]
    upcoming = next_dose(book, plan, now)
    times.append(upcoming.planned if upcoming is not None else now + LOOKAHEAD_S / 2)
    times += [r.closes_at + KEEP_S for r in book.entries.values() if not r.is_open]
    return min(times)


def confirm(
    book: DoseBook, plan: MedicationPlan | None, key: str, action: str, now: float, snooze_s: float = SNOOZE_S
) -> tuple[DoseBook, Reminder]:
    """Apply a tap (``taken``, ``skipped`` or ``snoozed``) on dose ``key`` at ``now``.

    A dose the book does not hold yet may be confirmed taken up to :data:`EARLY_S`
    before its time. Raises :class:`DoseError` for an unknown dose, an answered or
    missed one, or an early skip or snooze.
    """
    if action not in ACTIONS:
        raise DoseError("unknown", f"action must be one of {sorted(ACTIONS)}")
    book, _ = review(book, plan, now)
    entry = book.entries.get(key) or _early(plan, key, action, now)
    if not entry.is_open:
        raise DoseError("closed", f"dose {key} is already {entry.state}")
    if action == "snoozed":
        changed = replace(entry, state="snoozed", snoozed_until=now + snooze_s)
    else:
        changed = replace(entry, state=action, snoozed_until=None)
    return DoseBook({**book.entries, key: changed}), changed


def _early(plan: MedicationPlan | None, key: str, action: str, now: float) -> Reminder:
    soon = [] if plan is None else schedule(plan, now, now + EARLY_S + 1e-6)
    dose = next((d for d in soon if d.key == key), None)
    if dose is None:
        raise DoseError("unknown", f"no dose {key} is due or within the next {EARLY_S / 60:.0f} minutes")
    if action != "taken":
        raise DoseError("closed", f"dose {key} is not due yet: only 'taken' may come early")
    return Reminder.of(dose)
