"""Baseline statistics and proposed personalised limits (pure, seeded data)."""

from __future__ import annotations

import numpy as np

from server.baseline import BaselinePolicy, BaselineSample, check_limits, phase_status, propose_limits
from server.rules import HARD_LIMITS, NEWS2_LIMITS
from wire import Limits

T0 = 1_700_000_000.0
POLICY = BaselinePolicy(days=7, min_good_hours=48, min_context_hours=4)


def week(rest_hr: float, sleep_hr: float, active_hr: float, seed: int = 42, quality: float = 0.9) -> list[BaselineSample]:
    """Seven days of one-minute windows: 8 h sleep, 2 h active, the rest at rest, 2 bpm noise."""
    rng = np.random.default_rng(seed)
    out = []
    for minute in range(7 * 24 * 60):
        hour = (minute // 60) % 24
        activity, hr = ("lying", sleep_hr) if hour < 8 else ("walk", active_hr) if hour in (17, 18) else ("rest", rest_hr)
        start = T0 + 60 * minute
        out.append(BaselineSample(start, start + 60, activity, quality, float(hr + rng.normal(0, 2)),
                                  float(14 + rng.normal(0, 1))))  # fmt: skip
    return out


def test_an_athletes_limits_follow_their_low_resting_rate_but_stay_inside_the_hard_limits() -> None:
    proposal = propose_limits(week(rest_hr=45, sleep_hr=40, active_hr=100), POLICY)
    rest, sleep = proposal.limits["hr@rest"], proposal.limits["hr@sleep"]
    assert 30 < rest.yellow_low < 40 and rest.red_low < rest.yellow_low  # no yellow at their normal 45 bpm
    assert rest.yellow_high < 70 and rest.red_high == NEWS2_LIMITS["hr"].red_high  # red: never tighter than NEWS2
    assert sleep.red_low == HARD_LIMITS["hr"].red_low  # 40 - 2*2 - 20 would be laxer than the hard limit
    assert abs(proposal.stats["hr@rest"].median - 45) < 1
    assert proposal.limits["hr"] == NEWS2_LIMITS["hr"]  # the plain default stays as the fallback


def test_an_elderly_patients_limits_rise_with_their_resting_rate() -> None:
    proposal = propose_limits(week(rest_hr=95, sleep_hr=85, active_hr=115), POLICY)
    rest, active = proposal.limits["hr@rest"], proposal.limits["hr@active"]
    assert rest.yellow_high > 100 and rest.red_high > rest.yellow_high
    assert active.yellow_high > 115 and active.red_high <= HARD_LIMITS["hr"].red_high


def test_a_few_minutes_of_an_episode_do_not_move_the_limits() -> None:
    clean = week(rest_hr=70, sleep_hr=60, active_hr=100)
    spiked = [s if not 5000 <= i < 5030 else BaselineSample(s.start, s.end, s.activity, s.quality, 160.0, s.resp_rate)
              for i, s in enumerate(clean)]  # fmt: skip
    a, b = propose_limits(clean, POLICY).limits["hr@rest"], propose_limits(spiked, POLICY).limits["hr@rest"]
    assert abs(a.yellow_high - b.yellow_high) <= 1.0  # type: ignore[operator]


def test_a_context_without_enough_good_data_keeps_the_default() -> None:
    samples = [s for s in week(70, 60, 100) if s.activity != "walk"]
    noisy = [BaselineSample(s.start, s.end, s.activity, 0.2, s.hr_mean, s.resp_rate) for s in samples if s.activity == "lying"]
    proposal = propose_limits([s for s in samples if s.activity == "rest"] + noisy, POLICY)
    assert "hr@active" not in proposal.limits and "hr@sleep" not in proposal.limits
    assert any(n.startswith("hr@sleep: 0.0 h") for n in proposal.notes)


def test_the_phase_needs_its_days_and_its_good_hours() -> None:
    assert phase_status(None, 0, T0, POLICY).phase == "no_data"
    assert phase_status(T0, 100, T0 + 6 * 86400, POLICY).phase == "collecting"
    assert phase_status(T0, 20, T0 + 8 * 86400, POLICY).phase == "collecting"
    ready = phase_status(T0, 60, T0 + 8 * 86400, POLICY)
    assert ready.phase == "ready" and ready.days_left == 0


def test_limits_out_of_order_or_laxer_than_hard_limits_are_named() -> None:
    assert check_limits("hr@rest", Limits(35, 100, 30, 130)) == []
    assert check_limits("hr", Limits(60, 50, 40, 130))[0].startswith("hr: limits must rise")
    problems = check_limits("hr@sleep", Limits(35, 100, 20, 190))
    assert len(problems) == 2 and "red_low" in problems[0] and "red_high" in problems[1]
