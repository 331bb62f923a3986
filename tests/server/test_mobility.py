"""GPS mobility: distance, time at home, jumps and gaps."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from server import mobility
from server.mobility import Fix

T0 = datetime(2025, 3, 1, 8, tzinfo=timezone.utc)
HOME = (48.1400, 11.5800)


def test_distance_matches_a_known_arc() -> None:
    # One degree of latitude on the mean sphere: 2 pi R / 360.
    assert mobility.gps_distance_m(0.0, 0.0, 1.0, 0.0) == pytest.approx(111_195.08, abs=0.1)
    assert mobility.gps_distance_m(*HOME, *HOME) == 0.0


def test_a_walk_from_home_and_back() -> None:
    north = 48.1400 + 0.009  # about 1 km
    fixes = [Fix(T0 + timedelta(minutes=m), lat, 11.58) for m, lat in
             [(0, 48.14), (10, 48.14), (20, north), (30, north), (40, 48.14), (50, 48.14)]]
    (day,) = mobility.mobility_days(fixes, HOME)
    assert day.distance_m == pytest.approx(2 * mobility.gps_distance_m(48.14, 11.58, north, 11.58))
    assert day.observed_s == 3000 and day.home_s == 1200 and day.jumps == 0 and day.fixes == 6


def test_jumps_are_counted_and_left_out_gaps_count_distance_not_time() -> None:
    fixes = [Fix(T0, *HOME), Fix(T0 + timedelta(seconds=10), 49.14, 11.58),   # 111 km in 10 s
             Fix(T0 + timedelta(seconds=20), *HOME), Fix(T0 + timedelta(hours=3), 48.15, 11.58)]
    (day,) = mobility.mobility_days(fixes, None)
    assert day.jumps == 2 and day.home_s is None
    assert day.distance_m == pytest.approx(mobility.gps_distance_m(*HOME, 48.15, 11.58))
    assert day.observed_s == 0


def test_days_split_at_utc_midnight_and_no_gps_means_no_days() -> None:
    fixes = [Fix(T0, *HOME), Fix(T0 + timedelta(minutes=1), *HOME), Fix(T0 + timedelta(days=1), *HOME)]
    days = mobility.mobility_days(fixes, HOME)
    assert [d.day.isoformat() for d in days] == ["2025-03-01", "2025-03-02"]
    assert days[1].observed_s == 0
    assert mobility.mobility_days([], HOME) == []
