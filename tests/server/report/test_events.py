"""The report's symptom periods on constructed data: what the data showed, which strips are drawn."""

from __future__ import annotations

from datetime import timedelta

from server.queries import StripInfo
from server.report.events import MAX_STRIPS, finding, symptoms_section
from server.search import HrStats, PeriodVitals, SymptomResult
from server.thresholds import InForce
from tests.server.report.data import T0, data
from wire import Limits


def vitals(hr: float | None, flags: list[str], windows: int = 5) -> PeriodVitals:
    return PeriodVitals(windows, hr, None if hr is None else hr - 5, None if hr is None else hr + 10, 15.0, 30.0, 0.9,
                        flags)  # fmt: skip


def symptom(i: int, hours: float, v: PeriodVitals, severity: int | None, strip: bool = True) -> SymptomResult:
    t = T0 + timedelta(hours=hours)
    info = StripInfo(7, "dev-7", 100 + i, t, 250.0, 30.0, "symptom", i) if strip else None
    return SymptomResult(i, 7, "Ana", f"p{i}", t, t + timedelta(minutes=5), ["palpitations"], severity, "",
                         HrStats(v.hr_mean, v.hr_min, v.hr_max, v.windows), v, None, info)  # fmt: skip


def test_what_the_data_showed_during_a_period() -> None:
    news2 = Limits(50, 111, 40, 131)
    assert finding(vitals(140, ["irregular"]), news2) == ("HR 140 bpm (135–150), beyond the red limit, irregular rhythm", True)
    assert finding(vitals(72, []), news2) == ("HR 72 bpm (67–82), no rhythm flag", False)
    assert finding(vitals(72, ["ectopic"]), news2) == ("HR 72 bpm (67–82), ectopic beats", False)  # isolated ectopy
    assert finding(vitals(72, ["pause"]), news2)[1] is True
    assert finding(vitals(None, [], windows=0), news2) == ("no usable signal", False)
    assert finding(vitals(115, []), news2) == ("HR 115 bpm (110–125), beyond the yellow limit, no rhythm flag", True)


def test_strips_are_drawn_for_the_relevant_periods_first() -> None:
    periods = [symptom(1, 1, vitals(72, []), 5), symptom(2, 2, vitals(140, ["irregular"]), 1),
               symptom(3, 3, vitals(75, []), 2), symptom(4, 4, vitals(72, ["pause"]), 3),
               symptom(5, 5, vitals(118, []), None, strip=False), symptom(6, 6, vitals(70, []), 4),
               symptom(7, 7, vitals(71, []), 1)]  # fmt: skip
    headline, body = symptoms_section(data(symptoms=list(reversed(periods))))  # the search gives newest first
    assert [p.period.id for p in body.periods] == [1, 2, 3, 4, 5, 6, 7]
    assert [p.notable for p in body.periods] == [False, True, False, True, True, False, False]
    # notable ones with a strip (2, 4), then by severity (1: 5, 6: 4); period 5 is notable but has no strip
    assert sorted(s.seq - 100 for s in body.strips) == [1, 2, 4, 6] and len(body.strips) == MAX_STRIPS
    assert [p.period.id for p in body.periods if p.strip_shown] == [1, 2, 4, 6]
    assert headline == "7 marked periods; 3 with an arrhythmia flag or a heart rate beyond the limits."


def test_a_period_is_judged_by_the_personal_limits_at_rest() -> None:
    personal = InForce(1, {"hr": Limits(45, 130, 35, 150), "hr@rest": Limits(55, 100, 40, 131)})
    _, body = symptoms_section(data(limits=personal, symptoms=[symptom(1, 1, vitals(105, []), 2)]))
    assert body.periods[0].notable and "beyond the yellow limit" in body.periods[0].finding
