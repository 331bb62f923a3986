"""Accelerometer postures and gaits, HR following activity, falls, GPS tracks and weather."""

from __future__ import annotations

import numpy as np
import pytest

from simulators.body import SimulatedBody
from simulators.gps import gps_track
from simulators.profiles import Profile, load_profile
from simulators.scenarios import Incident, Segment, activity_hr
from simulators.weather import weather_hourly

from .conftest import scenario_with


def _accel(body: SimulatedBody, lo: int, hi: int) -> np.ndarray:
    return np.concatenate([body.accel(s + np.arange(25) / 25) for s in range(lo, hi)])


def test_postures_and_gaits() -> None:
    s = scenario_with(
        Segment(at=0, duration=60, activity="lying"), Segment(at=60, duration=60, activity="sitting"),
        Segment(at=120, duration=60, activity="walk"), Segment(at=180, duration=60, activity="run"),
    )
    body = SimulatedBody(s)
    lying, sitting, walk, run = (_accel(body, k, k + 60) for k in (0, 60, 120, 180))
    assert np.argmax(np.abs(lying.mean(axis=0))) == 2 and np.argmax(np.abs(sitting.mean(axis=0))) == 1
    assert sitting.mean(axis=0)[2] > 0.2  # reclined
    for a, step_hz in ((walk, 1.9), (run, 2.8)):
        spec = np.abs(np.fft.rfft(a[:, 1] - a[:, 1].mean()))
        f = np.fft.rfftfreq(a.shape[0], 1 / 25)
        assert f[np.argmax(spec)] == pytest.approx(step_hz, abs=0.1)

    def mad(a: np.ndarray) -> float:
        return float(np.mean(np.abs(np.linalg.norm(a, axis=1) - 1)))

    assert mad(lying) < 0.03 < mad(walk) < mad(run)


def test_heart_rate_follows_activity_and_fitness() -> None:
    fit, unfit = load_profile("healthy_adult"), load_profile("hf_elderly")
    s = scenario_with(Segment(at=120, duration=300, activity="walk", ramp=40))
    body = SimulatedBody(s, noise=False)
    beats = body.beats_until(420)
    rest = [60 / b.rr for b in beats if 20 < b.time < 110]
    walking = [60 / b.rr for b in beats if 200 < b.time < 400]
    assert np.mean(walking) == pytest.approx(activity_hr(fit, "walk"), rel=0.05)
    assert np.mean(walking) > np.mean(rest) + 20

    def reserve(p: Profile, a: str) -> float:
        return (activity_hr(p, a) - p.resting_hr) / (p.peak_hr - p.resting_hr)

    assert reserve(fit, "walk") < reserve(unfit, "walk") and activity_hr(fit, "run") > activity_hr(fit, "walk")


def test_a_fall_is_an_impact_then_lying() -> None:
    s = scenario_with(incidents=(Incident(at=30.5, type="fall", duration=60),))
    body = SimulatedBody(s)
    a = _accel(body, 25, 40)
    norm = np.linalg.norm(a, axis=1)
    t = 25 + np.arange(norm.size) / 25
    assert norm.max() > 2.5 and abs(t[np.argmax(norm)] - 30.5) < 0.1
    assert norm[(t > 30.0) & (t < 30.4)].min() < 0.5  # free fall before the impact
    after = a[t > 33]
    assert np.argmax(np.abs(after.mean(axis=0))) == 2 and s.activity_at(80) == "lying" and s.activity_at(95) == "rest"


def test_gps_stays_home_at_rest_and_moves_at_walking_speed() -> None:
    s = scenario_with(Segment(at=600, duration=1200, activity="walk"))
    fixes = gps_track(s, 2400, np.random.default_rng(1), step_s=10)
    lat0, lon0 = s.patient.home

    def metres(f) -> float:  # type: ignore[no-untyped-def]
        return float(np.hypot((f.lat - lat0) * 111_320, (f.lon - lon0) * 111_320 * np.cos(np.radians(lat0))))

    assert max(metres(f) for f in fixes if f.time < 600) < 25
    assert max(metres(f) for f in fixes if 600 <= f.time < 1800) > 300  # got somewhere
    assert metres(fixes[-1]) < 60  # and came back
    walk = [f for f in fixes if 700 <= f.time < 1100]
    step = [np.hypot((b.lat - a.lat) * 111_320, (b.lon - a.lon) * 111_320 * np.cos(np.radians(lat0))) / 10
            for a, b in zip(walk, walk[1:])]
    assert np.median(step) == pytest.approx(1.3, abs=0.35)


def test_weather_is_hourly_plausible_and_per_place() -> None:
    start = 1_781_000_000.0  # mid-June 2026
    berlin = weather_hourly(52.52, 13.40, start, 24 * 14)
    assert [h.time for h in berlin] == [berlin[0].time + 3600 * i for i in range(24 * 14)]
    temps = np.array([h.temperature_c for h in berlin])
    assert 5 < temps.mean() < 28 and all(950 < h.pressure_hpa < 1060 and 5 <= h.humidity_pct <= 100 for h in berlin)
    hours = np.array([(h.time / 3600) % 24 for h in berlin])
    afternoon, dawn = temps[(hours >= 12) & (hours < 16)].mean(), temps[(hours >= 2) & (hours < 6)].mean()
    assert afternoon > dawn + 4
    hum = np.array([h.humidity_pct for h in berlin])
    assert hum[(hours >= 2) & (hours < 6)].mean() > hum[(hours >= 12) & (hours < 16)].mean()
    assert weather_hourly(52.52, 13.40, start, 24 * 14) == berlin  # deterministic
    winter = weather_hourly(52.52, 13.40, start - 180 * 86400, 24 * 14)
    assert np.mean([h.temperature_c for h in winter]) < temps.mean() - 8
    tropics = weather_hourly(1.35, 103.8, start, 48)
    assert np.mean([h.temperature_c for h in tropics]) > 22
    with pytest.raises(ValueError):
        weather_hourly(95, 0, start, 1)
