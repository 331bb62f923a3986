"""The report's medication adherence section on constructed doses: figures per drug, skip reasons, runs not
taken, the low flag over the period and over the overview's window at its end, and when there is no plan."""

from __future__ import annotations

from datetime import datetime, timedelta

from server.adherence import DoseOutcome
from server.medication import PlanVersion
from server.report.inputs import MedicationData
from server.report.medication import NO_DOSES, NO_PLAN, SkipReason, adherence_section
from tests.server.report.data import T0, data, period

DAY = 86_400.0


def version(n: int, since: datetime, drugs: int = 2, reason: str = "") -> PlanVersion:
    return PlanVersion(n, 7, n, "UTC", 60, 180, [{"name": f"drug {i}"} for i in range(drugs)], reason, since,
                       "dr-ana", since)  # fmt: skip


def doses(drug: str, statuses: list[str], first_h: float = 8.0, every_h: float = 12.0, critical: bool = False,
          reasons: dict[int, str] | None = None, dose: str = "5 mg") -> list[DoseOutcome]:  # fmt: skip
    """One dose of ``drug`` every ``every_h`` hours from T0 + ``first_h`` for each status, in that order."""
    found = []
    for i, status in enumerate(statuses):
        planned = T0.timestamp() + (first_h + i * every_h) * 3600
        found.append(DoseOutcome(drug, dose, critical, 1, planned, planned + 3600, planned + 3 * 3600, status,
                                 reason=(reasons or {}).get(i, "")))  # fmt: skip
    return found


# 14 days of bisoprolol twice a day: the first week all on time; the second 8 on time, 1 late, 2 skipped (for the
# same reason), 2 missed and 1 unconfirmed, four doses in a row not taken
BISO = ["on_time"] * 14 + ["on_time", "late", "skipped", "missed", "missed", "unconfirmed", "on_time", "skipped",
                           "on_time", "on_time", "on_time", "on_time", "on_time", "on_time"]  # fmt: skip
BISO_REASONS = {16: "side effects", 21: "side effects ", 3: "not a skip"}  # the third is on an on-time dose
# apixaban once a day: one late dose in the second week
APIX = ["on_time"] * 10 + ["late"] + ["on_time"] * 3


def meds(*drugs: list[DoseOutcome], share: float = 0.8, days: float = 7.0) -> MedicationData:
    """A plan recorded a month before T0, and these doses; low below ``share`` over the last ``days``."""
    return MedicationData([version(1, T0 - timedelta(days=30))], [d for ds in drugs for d in ds], share, days)


def test_no_plan_in_the_period_says_so_and_nothing_else() -> None:
    headline, body = adherence_section(data())
    assert (headline, body.plan_recorded, body.message, body.drugs, body.low, body.flag) == (
        "No medication plan recorded.", False, NO_PLAN, [], False, "")


def test_a_plan_in_force_without_doses_is_not_no_plan() -> None:
    stopped = MedicationData([version(3, T0 - timedelta(days=3), drugs=0, reason="all stopped")], [], 0.8, 7.0)
    headline, body = adherence_section(data(medication=stopped))
    assert (headline, body.plan_recorded, body.message, body.drugs) == ("No doses planned in this period.", True,
                                                                        NO_DOSES, [])  # fmt: skip
    assert [(v.version, v.reason, v.drugs, v.by) for v in body.plan_versions] == [(3, "all stopped", 0, "dr-ana")]


def test_per_drug_figures_reasons_and_runs_not_taken() -> None:
    plan = meds(doses("bisoprolol", BISO, critical=True, reasons=BISO_REASONS, dose="2.5 mg"),
                doses("Apixaban", APIX, first_h=9, every_h=24))  # fmt: skip
    headline, body = adherence_section(data(period=period(14), generated_at=T0 + timedelta(days=14), medication=plan))
    apix, biso = body.drugs  # by name, ignoring case
    assert (biso.drug, biso.dose, biso.critical, biso.planned) == ("bisoprolol", "2.5 mg", True, 28)
    assert (biso.taken_on_time, biso.taken_late, biso.skipped, biso.missed, biso.unconfirmed, biso.pending) == (
        22, 1, 2, 2, 1, 0)
    assert (biso.on_time_pct, biso.recent_on_time_pct) == (round(100 * 22 / 28, 1), round(100 * 8 / 14, 1))
    assert (biso.longest_missed_streak, biso.current_missed_streak, biso.low) == (4, 0, True)
    assert biso.skip_reasons == [SkipReason("side effects", 2)]
    assert (apix.planned, apix.taken_on_time, apix.taken_late, apix.on_time_pct, apix.low) == (14, 13, 1, 92.9, False)
    assert apix.recent_on_time_pct == round(100 * 6 / 7, 1) and apix.skip_reasons == []
    assert (body.low, body.flag, body.low_share_pct, body.recent_days) == (True, "low adherence", 80.0, 7.0)
    assert headline == ("Below 80 % on time: bisoprolol (critical) 78.6 % (last 7 days 57.1 %), 4 doses in a row"
                        " not taken. Apixaban 92.9 % on time.")  # fmt: skip


def test_a_good_period_whose_last_days_are_poor_is_flagged_like_the_overview() -> None:
    statuses = ["on_time"] * 21 + ["on_time", "missed", "on_time", "missed", "on_time", "on_time", "skipped"]
    plan = meds(doses("digoxin", statuses, every_h=24))
    headline, body = adherence_section(data(period=period(28), generated_at=T0 + timedelta(days=28), medication=plan))
    (dig,) = body.drugs
    assert (dig.on_time_pct, dig.recent_on_time_pct) == (round(100 * 25 / 28, 1), round(100 * 4 / 7, 1))
    assert dig.low and body.low and headline.startswith("Below 80 % on time: digoxin 89.3 % (last 7 days 57.1 %)")
    # the same doses judged against a lower threshold, or over a window as long as the period: not low
    _, lenient = adherence_section(data(period=period(28), generated_at=T0 + timedelta(days=28),
                                        medication=meds(doses("digoxin", statuses, every_h=24), share=0.5)))
    _, whole = adherence_section(data(period=period(28), generated_at=T0 + timedelta(days=28),
                                      medication=meds(doses("digoxin", statuses, every_h=24), days=28)))
    assert (lenient.low, lenient.flag, whole.low, whole.recent_days, whole.drugs[0].recent_on_time_pct) == (
        False, "", False, None, None)


def test_the_window_ends_at_the_periods_end_not_at_generation() -> None:
    statuses = ["missed"] * 7 + ["on_time"] * 7  # a poor first week, then every dose on time
    plan = meds(doses("ramipril", statuses, every_h=24))
    _, body = adherence_section(data(period=period(14), generated_at=T0 + timedelta(days=40), medication=plan))
    assert (body.drugs[0].on_time_pct, body.drugs[0].recent_on_time_pct, body.low) == (50.0, 100.0, True)
    week = meds(doses("ramipril", statuses[:7], every_h=24))
    _, body = adherence_section(data(period=period(7), generated_at=T0 + timedelta(days=40), medication=week))
    assert (body.recent_days, body.drugs[0].recent_on_time_pct, body.low) == (None, None, True)  # the period is the window


def test_pending_doses_are_shown_but_not_judged() -> None:
    plan = meds(doses("furosemide", ["on_time", "pending", "pending"], every_h=24))
    headline, body = adherence_section(data(period=period(3), generated_at=T0 + timedelta(days=3), medication=plan))
    assert (body.drugs[0].planned, body.drugs[0].pending, body.drugs[0].on_time_pct, body.low) == (3, 2, 100.0, False)
    assert headline == "Furosemide 100 % on time."
    only_pending = meds(doses("furosemide", ["pending"], every_h=24))
    headline, body = adherence_section(data(period=period(1), generated_at=T0 + timedelta(hours=9),
                                            medication=only_pending))  # fmt: skip
    assert (headline, body.low, body.drugs[0].on_time_pct) == ("1 dose planned, none decided yet.", False, None)


def test_the_headline_names_the_lowest_drugs_and_counts_the_rest() -> None:
    names = ["a", "b", "c", "d", "e", "f"]  # 10 daily doses each, of which 0, 1, ... 5 late
    plan = meds(*(doses(n, ["on_time"] * (10 - i) + ["late"] * i, every_h=24) for i, n in enumerate(names)), days=10)
    headline, body = adherence_section(data(period=period(10), generated_at=T0 + timedelta(days=10), medication=plan))
    assert [d.drug for d in body.drugs] == names  # the table lists them all, by name
    assert [d.low for d in body.drugs] == [False, False, False, True, True, True]  # 80 % is not below 80 %
    assert headline == "Below 80 % on time: f 50 %; e 60 %; d 70 %. C 80 % on time. 2 more in the table."
