"""The report's window sections on constructed data: time beyond limits, AF burden, pauses, ectopy, good hours."""

from __future__ import annotations

from datetime import date, datetime, timedelta, timezone

import pytest

from server.report.inputs import DaySpan, DayStats, Pause
from server.report.limits import limit_edges, limits_at, time_beyond
from server.report.period import PeriodError, day_spans, parse_zone
from server.report.vitals import completeness_section, rhythm_section, trends_section
from server.thresholds import InForce, VersionRow, limits_to_json
from server.trends import Episode
from tests.server.report.data import T0, W, bands, data, period
from wire import Limits

H = 3600.0
DAYS = day_spans(T0, T0 + timedelta(days=2), timezone.utc)


def test_time_beyond_the_limits_counts_a_value_at_a_limit_as_beyond() -> None:
    # NEWS2 heart rate: yellow <= 50 or >= 111, red <= 40 or >= 131 (inclusive)
    windows = [W(70), W(111), W(110.99), W(131), W(50), W(50.01), W(40), W(25, seconds=120)]
    edges, counted = bands("hr", windows)
    beyond, red = time_beyond("hr", counted, {"hr": edges["hr"]}, InForce(None, {"hr": Limits(50, 111, 40, 131)}).limits)
    # 540 s in all; beyond yellow: 111, 131, 50, 40, 25 (= 360 s); red: 131, 40, 25 (hard limit) (= 240 s)
    assert (beyond, red) == (round(100 * 360 / 540, 2), round(100 * 240 / 540, 2))


def test_time_beyond_judges_each_window_by_the_limits_of_its_activity() -> None:
    personal = InForce(2, {"hr": Limits(50, 111, 40, 131), "hr@sleep": Limits(42, 100, 35, 120)})
    windows = [W(45, "lying"), W(45, "rest"), W(105, "lying"), W(105, "walk"), W(34, "lying")]
    edges, counted = bands("hr", windows, personal)
    beyond, red = time_beyond("hr", counted, edges, personal.limits)
    # asleep, 45 is within and 105 beyond; at rest or walking 45 is beyond and 105 within; 34 asleep is beyond red
    assert (beyond, red) == (60.0, 20.0)


def test_edges_separate_float4_values_next_to_a_limit() -> None:
    edges = limit_edges({"hr": Limits(50.1, 111, None, None)})["hr"]
    import numpy as np

    just_below = float(np.nextafter(np.float32(50.1), np.float32(0)))
    just_above = float(np.nextafter(np.float32(50.1), np.float32(200)))
    # 50.1 is not a float4: its nearest float4 (50.0999985) lies below it and is beyond, as is the one below that;
    # the next float4 up (50.1000023) is within
    windows = [W(just_below), W(float(np.float32(50.1))), W(just_above)]
    e, counted = bands("hr", windows, InForce(1, {"hr": Limits(50.1, 111, None, None)}))
    assert e["hr"] == edges
    beyond, _ = time_beyond("hr", counted, e, {"hr": Limits(50.1, 111, None, None)})
    assert float(np.float32(50.1)) < 50.1 < just_above
    assert beyond == round(200 / 3, 2)


def test_limits_in_force_at_the_end_are_the_newest_approved_by_then() -> None:
    def version(n: int, approved: datetime | None, hr_high: float) -> VersionRow:
        return VersionRow(n, 7, "superseded" if n == 1 else "approved", n if approved else None,
                          limits_to_json({"hr": Limits(50, hr_high, 40, 131)}), {}, T0, None, approved, "dr", "x", None)
    versions = [version(1, T0, 105), version(2, T0 + timedelta(days=3), 100), version(3, None, 90)]
    assert limits_at(versions, T0 + timedelta(days=2)) == InForce(1, {"hr": Limits(50, 105, 40, 131)})
    assert limits_at(versions, T0 + timedelta(days=4)).version == 2
    assert limits_at(versions, T0 - timedelta(days=1)).version is None  # the defaults


def day(index: int, **sums: float) -> DayStats:
    return DayStats(index, **{"windows": 0, "recorded_s": 0.0, "usable": 0, "good_s": 0.0} | sums)  # type: ignore[arg-type]


def test_trends_means_are_exact_over_days() -> None:
    stats = [day(0, hr_n=10, hr_sum=700.0, hr_min=48, hr_max=120, rmssd_n=10, rmssd_sum=300.0, resp_n=4,
                 resp_sum=60.0, steps=3000, active_s=2 * H),
             day(1, hr_n=30, hr_sum=2400.0, hr_min=55, hr_max=140, rmssd_n=0, resp_n=1, resp_sum=20.0, steps=5000)]  # fmt: skip
    headline, body = trends_section(data(day_stats=stats))
    hr, rmssd, sdnn, resp, _ = body.stats
    assert (hr.mean, hr.low, hr.high, hr.windows) == (78.0, 48, 140, 40)  # (700 + 2400) / 40, not the mean of means
    assert (rmssd.mean, sdnn.mean, resp.mean) == (30.0, None, 16.0)
    assert body.steps_per_day == 4000 and body.active_hours_per_day == 1.0
    assert [b.source for b in body.limits] == ["NEWS2", "NEWS2"]
    assert headline.startswith("Heart rate 78 bpm (48–140)")


def test_af_burden_is_af_time_over_monitored_time() -> None:
    stats = [day(0, good_s=20 * H, af_s=1.5 * H, pause_windows=2, long_pauses=1, ectopic=30, ectopic_beats=60000,
                 ectopic_s=15 * H),
             day(1, good_s=10 * H, af_s=0.0, pause_windows=1, ectopic=10, ectopic_beats=20000, ectopic_s=5 * H)]  # fmt: skip
    pauses = [Pause(T0 + timedelta(hours=3), T0 + timedelta(hours=3, minutes=1), 3.4),
              Pause(T0 + timedelta(hours=9), T0 + timedelta(hours=9, minutes=1), 2.2)]  # fmt: skip
    episodes = [Episode(T0, T0 + timedelta(minutes=30), ["af_suspected", "irregular"]),
                Episode(T0 + timedelta(hours=5), T0 + timedelta(hours=6), ["af_suspected"]),
                Episode(T0 + timedelta(hours=8), T0 + timedelta(hours=8, seconds=40), ["pause"])]  # fmt: skip
    headline, body = rhythm_section(data(day_stats=stats, pauses=pauses, episodes=episodes))
    assert body.monitored_h == 30.0 and body.af_h == 1.5
    assert body.af_burden_pct == 5.0  # 1.5 h of 30 h
    assert (body.pause_windows, body.long_pauses, body.longest_pauses[0].seconds) == (3, 1, 3.4)
    assert (body.ectopic_beats, body.ectopic_per_hour, body.ectopic_pct_of_beats) == (40, 2.0, 0.05)
    af = next(c for c in body.episode_counts if c.flag == "af_suspected")
    assert (af.episodes, af.total_s, af.longest_s) == (2, 5400.0, 3600.0)
    assert body.longest_episodes[0].start == T0 + timedelta(hours=5)
    assert headline == ("AF burden 5 % over 30.0 h monitored; 3 pauses (longest 3.4 s, 1 of 3 s or more); "
                        "40 ectopic beats (2 an hour).")  # fmt: skip


def test_no_monitored_time_gives_no_burden_rather_than_zero() -> None:
    headline, body = rhythm_section(data())
    assert body.af_burden_pct is None and body.ectopic_per_hour is None
    assert headline == "No monitored time in this period."


def test_completeness_has_every_day_even_without_data() -> None:
    three = day_spans(T0, T0 + timedelta(days=3), timezone.utc)
    stats = [day(0, windows=100, recorded_s=22 * H, usable=90, good_s=20 * H),
             day(2, windows=40, recorded_s=11 * H, usable=30, good_s=7.5 * H)]  # fmt: skip
    headline, body = completeness_section(data(period=period(3), days=three, day_stats=stats))
    assert [(d.day, d.recorded_h, d.good_h, d.short) for d in body.days] == [
        (date(2025, 3, 1), 22.0, 20.0, False), (date(2025, 3, 2), 0.0, 0.0, True), (date(2025, 3, 3), 11.0, 7.5, True)]
    assert body.good_h == 27.5 and body.good_h_per_day == round(27.5 / 3, 1)
    assert (body.short_days, body.days_without_data) == (2, 1)
    assert headline == "9.2 h of good signal a day (38.2 % of the time); 2 of 3 days under 12 h, 1 without any data."


def test_a_part_day_is_short_pro_rata() -> None:
    spans = [DaySpan(date(2025, 3, 1), T0, T0 + timedelta(hours=6))]
    p = period(0.25)
    _, body = completeness_section(data(period=p, days=spans, day_stats=[day(0, good_s=4 * H, recorded_s=4 * H)]))
    assert body.days[0].span_h == 6.0 and not body.days[0].short  # 4 h of 6 is more than 12 h of 24


def test_days_follow_the_time_zone_and_daylight_saving() -> None:
    # Ljubljana: 28 Mar 23:00Z is 29 Mar 00:00 CET; 30 Mar has 23 hours (CET -> CEST); 31 Mar 22:00Z is 1 Apr 00:00
    spans = day_spans(datetime(2025, 3, 28, 23, tzinfo=timezone.utc), datetime(2025, 3, 31, 22, tzinfo=timezone.utc),
                      parse_zone("Europe/Ljubljana"))  # fmt: skip
    assert [s.day for s in spans] == [date(2025, 3, 29), date(2025, 3, 30), date(2025, 3, 31)]
    assert [(s.end - s.start).total_seconds() / H for s in spans] == [24.0, 23.0, 24.0]
    utc = day_spans(datetime(2025, 3, 28, 23, tzinfo=timezone.utc), datetime(2025, 3, 30, 1, tzinfo=timezone.utc),
                    parse_zone("UTC"))  # fmt: skip
    assert [(s.day.day, (s.end - s.start).total_seconds() / H) for s in utc] == [(28, 1.0), (29, 24.0), (30, 1.0)]


@pytest.mark.parametrize("name", ["Mars/Olympus", "../etc/passwd", "/etc/localtime", "", "Europe/"])
def test_an_unknown_time_zone_is_refused_naming_tz(name: str) -> None:
    with pytest.raises(PeriodError, match="^tz: unknown time zone"):
        parse_zone(name)
