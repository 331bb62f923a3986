"""Scoring helpers: beat matching and episode overlap on hand-made cases."""

from __future__ import annotations

import pytest

from simulators.scoring import score_beats, score_episodes


def test_beats_match_once_nearest_first() -> None:
    truth = [1.0, 2.0, 3.0, 4.0]
    s = score_beats([1.01, 1.03, 2.2, 3.98, 7.0], truth, tolerance_s=0.1)
    assert (s.tp, s.fn, s.fp) == (2, 2, 3)  # 1.01 takes 1.0 (1.03 is a duplicate), 2.2 too far, 7.0 spurious
    assert s.sensitivity == 0.5 and s.ppv == pytest.approx(0.4) and s.median_error_s == pytest.approx(0.015)
    perfect = score_beats(truth[::-1], truth)
    assert perfect.sensitivity == perfect.ppv == 1.0 and perfect.median_error_s == 0
    none = score_beats([], truth)
    assert (none.tp, none.fn, none.fp, none.ppv) == (0, 4, 0, 1.0)
    assert score_beats([5.0], [5.05]).tp == 1


def test_episodes_overlap() -> None:
    truth = [(100.0, 200.0), (500.0, 520.0)]
    s = score_episodes([(150.0, 160.0), (300.0, 310.0)], truth)
    assert (s.found, s.missed, s.false) == (1, 1, 1)
    assert score_episodes([(521.0, 530.0)], truth, slack_s=5).found == 1
