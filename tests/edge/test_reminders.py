"""The phone's pure reminder scheduler: due doses at their time, one answer each, missed after the deadline."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from edge.reminders import EARLY_S, KEEP_S, DoseBook, DoseError, confirm, next_change, next_dose, review, showing
from wire.medication import Drug, MedicationPlan, dose_key

LJ = ZoneInfo("Europe/Ljubljana")
DAY = datetime(2026, 6, 1, tzinfo=LJ).timestamp()  # local midnight
H = 3600.0
PLAN = MedicationPlan(1, DAY - 7 * 86_400, "Europe/Ljubljana",
                      (Drug("bisoprolol", "5 mg", ("08:00", "20:00"), critical=True),
                       Drug("furosemide", "40 mg", ("08:00",), instructions="in the morning")), 60, 180)  # fmt: skip


def keys(reminders: list) -> list[str]:  # type: ignore[type-arg]
    return [r.key for r in reminders]


def test_nothing_is_due_before_its_time_and_both_drugs_are_due_at_eight() -> None:
    book, missed = review(DoseBook(), PLAN, DAY + 7.9 * H)
    assert showing(book, DAY + 7.9 * H) == [] and missed == []
    upcoming = next_dose(book, PLAN, DAY + 7.9 * H)
    assert upcoming is not None and upcoming.planned == DAY + 8 * H
    assert next_change(book, PLAN, DAY + 7.9 * H) == DAY + 8 * H
    book, missed = review(book, PLAN, DAY + 8 * H)
    assert [(r.drug, r.state) for r in showing(book, DAY + 8 * H)] == [("bisoprolol", "due"), ("furosemide", "due")]
    assert missed == []


def test_one_tap_answers_a_dose_and_a_second_tap_is_refused() -> None:
    book, _ = review(DoseBook(), PLAN, DAY + 8 * H)
    key = dose_key("bisoprolol", DAY + 8 * H)
    book, taken = confirm(book, PLAN, key, "taken", DAY + 8.2 * H)
    assert taken.state == "taken" and keys(showing(book, DAY + 8.2 * H)) == [dose_key("furosemide", DAY + 8 * H)]
    with pytest.raises(DoseError) as err:
        confirm(book, PLAN, key, "skipped", DAY + 8.3 * H)
    assert err.value.reason == "closed"
    with pytest.raises(DoseError) as err:
        confirm(book, PLAN, dose_key("bisoprolol", DAY + 9 * H), "taken", DAY + 8.3 * H)
    assert err.value.reason == "unknown"


def test_snooze_hides_a_reminder_for_a_while_and_the_deadline_still_holds() -> None:
    book, _ = review(DoseBook(), PLAN, DAY + 8 * H)
    key = dose_key("furosemide", DAY + 8 * H)
    book, snoozed = confirm(book, PLAN, key, "snoozed", DAY + 8 * H, snooze_s=600)
    assert key not in keys(showing(book, DAY + 8 * H + 599)) and key in keys(showing(book, DAY + 8 * H + 600))
    assert next_change(book, PLAN, DAY + 8 * H) == DAY + 8 * H + 600
    book, missed = review(book, PLAN, DAY + 11 * H)  # closes at 11:00 (180 minutes), snoozed or not
    assert (key, "missed") in [(r.key, r.state) for r in missed] and book.entries[key].snoozed_until is None


def test_an_unanswered_dose_is_missed_once_when_it_closes() -> None:
    book, _ = review(DoseBook(), PLAN, DAY + 8 * H)
    book, missed = review(book, PLAN, DAY + 11 * H - 1)
    assert missed == []
    book, missed = review(book, PLAN, DAY + 11 * H)
    assert sorted(r.drug for r in missed) == ["bisoprolol", "furosemide"]
    book, again = review(book, PLAN, DAY + 12 * H)
    assert again == [] and showing(book, DAY + 12 * H) == []


def test_a_dose_whose_window_passed_while_the_phone_was_off_is_neither_reminded_nor_missed() -> None:
    book, _ = review(DoseBook(), PLAN, DAY + 7 * H)
    book, missed = review(book, PLAN, DAY + 12 * H)  # off from 07:00 to 12:00
    assert missed == [] and showing(book, DAY + 12 * H) == [] and book.entries == {}
    book, _ = review(book, PLAN, DAY + 21 * H)  # a late reminder for a dose still open
    assert keys(showing(book, DAY + 21 * H)) == [dose_key("bisoprolol", DAY + 20 * H)]


def test_taken_up_to_an_hour_early_but_never_skipped_early() -> None:
    key = dose_key("bisoprolol", DAY + 20 * H)
    with pytest.raises(DoseError):
        confirm(DoseBook(), PLAN, key, "taken", DAY + 20 * H - EARLY_S - 1)
    with pytest.raises(DoseError) as err:
        confirm(DoseBook(), PLAN, key, "skipped", DAY + 19.5 * H)
    assert err.value.reason == "closed"
    book, early = confirm(DoseBook(), PLAN, key, "taken", DAY + 19.5 * H)
    assert early.state == "taken"
    book, _ = review(book, PLAN, DAY + 20.5 * H)
    assert key not in keys(showing(book, DAY + 20.5 * H))


def test_a_newer_plan_withdraws_open_reminders_of_doses_it_no_longer_has() -> None:
    book, _ = review(DoseBook(), PLAN, DAY + 8 * H)
    newer = MedicationPlan(2, DAY + 7 * H, "Europe/Ljubljana", (Drug("bisoprolol", "5 mg", ("08:00",)),))
    book, _ = review(book, newer, DAY + 8.1 * H)
    assert [r.drug for r in showing(book, DAY + 8.1 * H)] == ["bisoprolol"]
    later = MedicationPlan(3, DAY + 9 * H, "Europe/Ljubljana", ())
    book, _ = review(book, later, DAY + 9.1 * H)  # the 08:00 dose belongs to version 2: still reminded
    assert [r.drug for r in showing(book, DAY + 9.1 * H)] == ["bisoprolol"]


def test_the_book_survives_json_and_forgets_closed_doses_after_two_days() -> None:
    book, _ = review(DoseBook(), PLAN, DAY + 8 * H)
    book, _ = confirm(book, PLAN, dose_key("bisoprolol", DAY + 8 * H), "taken", DAY + 8.1 * H)
    assert DoseBook.from_json(book.to_json()) == book
    book, _ = review(book, PLAN, DAY + 11 * H + KEEP_S + 1)
    assert dose_key("bisoprolol", DAY + 8 * H) not in book.entries
    with pytest.raises(ValueError):
        DoseBook.from_json('[{"drug": 1}]')


taps = st.lists(st.tuples(st.floats(0, 3 * 86_400), st.sampled_from(["taken", "skipped", "snoozed"]),
                          st.integers(0, 20)), max_size=25)  # fmt: skip


@settings(max_examples=80, deadline=None)
@given(st.lists(st.floats(0, 3 * 86_400), min_size=1, max_size=60), taps)
def test_whatever_the_ticks_and_taps_each_dose_is_answered_or_missed_at_most_once(
    ticks: list[float], tap_list: list[tuple[float, str, int]]
) -> None:
    events: list[tuple[str, str]] = []
    book = DoseBook()
    moments = sorted([(t, None) for t in ticks] + [(t, (a, i)) for t, a, i in tap_list], key=lambda m: m[0])
    for offset, tap in moments:
        now = DAY + offset
        book, missed = review(book, PLAN, now)
        events += [(r.key, "missed") for r in missed]
        assert all(now < r.closes_at for r in showing(book, now))
        if tap is not None:
            due = book.open_entries()
            if not due:
                continue
            entry = due[tap[1] % len(due)]
            book, changed = confirm(book, PLAN, entry.key, tap[0], now)
            if changed.state != "snoozed":
                events.append((entry.key, changed.state))
                assert changed.state == "taken" and now <= changed.closes_at or changed.state == "skipped"
    answered = [key for key, _ in events]
    assert len(answered) == len(set(answered))
    for key, state in events:
        assert book.entries.get(key) is None or book.entries[key].state == state
