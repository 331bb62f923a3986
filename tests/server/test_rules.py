"""The rule state machine, without a database: hold, hysteresis, quality gate, panic."""

from __future__ import annotations

import json
from dataclasses import replace
from typing import Any

from server import rules
from server.rules import NEWS2_LIMITS, RHYTHMS, RuleConfig, RuleState, classify, evaluate_event, evaluate_windows
from server.rules import ParamState, judge_rhythm, judge_vital, ok_band, rhythm_quiet, sync_levels
from hypothesis import given, settings
from hypothesis import strategies as st

from wire import Limits
from wire import SummaryWindow

T0 = 1_700_000_000.0
CONFIG = RuleConfig(hold_seconds=60, clear_seconds=120, min_quality=0.5)


def windows(hrs: list[float | None], t0: float = T0, length: float = 30.0, quality: float = 0.9,
            resp: float | None = None) -> list[SummaryWindow]:  # fmt: skip
    return [
        SummaryWindow(start=t0 + length * i, end=t0 + length * (i + 1), beats=30, hr_mean=hr,
                      quality=quality, resp_rate=resp)
        for i, hr in enumerate(hrs)
    ]  # fmt: skip


def run(hrs: list[float | None], config: RuleConfig = CONFIG, **kw: float) -> list[tuple[str, str, float]]:
    _, actions = evaluate_windows(RuleState(), windows(hrs, **kw), config)
    return [(a.kind, a.level, a.time - T0) for a in actions]


def test_news2_pulse_bands_are_inclusive() -> None:
    hr = NEWS2_LIMITS["hr"]
    assert [classify(v, hr) for v in (40, 41, 50, 51, 110, 111, 130, 131)] == [
        "red", "yellow", "yellow", "ok", "ok", "yellow", "yellow", "red"
    ]  # fmt: skip


def test_a_level_opens_only_after_the_hold() -> None:
    assert run([80, 115]) == []  # 30 s beyond: not yet
    assert run([80, 115, 115]) == [("open", "yellow", 90)]  # 60 s beyond
    assert run([115, 80, 115, 80, 115]) == []  # never 60 s in a row


def test_hold_zero_opens_at_once() -> None:
    assert run([135], RuleConfig(hold_seconds=0)) == [("open", "red", 30)]


def test_escalation_to_red_needs_its_own_hold_and_never_steps_down() -> None:
    assert run([115, 115, 135, 135, 115, 115, 115, 115]) == [("open", "yellow", 60), ("escalate", "red", 120)]


def test_red_straight_from_ok_opens_red() -> None:
    assert run([135, 135, 135]) == [("open", "red", 60)]


def test_resolve_needs_clear_seconds_within_limits() -> None:
    # 60 s yellow, then 90 s normal (not enough), a blip, then 120 s normal.
    hrs = [115, 115, 80, 80, 80, 115, 80, 80, 80, 80]
    assert run(hrs) == [("open", "yellow", 60), ("resolve", "yellow", 300)]


def test_poor_quality_windows_neither_raise_nor_clear() -> None:
    assert run([135] * 10, quality=0.2) == []
    state, actions = evaluate_windows(RuleState(), windows([135, 135]), CONFIG)
    assert [a.kind for a in actions] == ["open"]
    noisy = windows([70] * 10, t0=T0 + 60, quality=0.1)
    state, actions = evaluate_windows(state, noisy, CONFIG)
    assert actions == [] and state.param("hr").level == "red"


def test_missing_values_are_ignored_and_a_long_gap_restarts_the_hold() -> None:
    assert run([115, None, 115]) == [("open", "yellow", 90)]
    state, _ = evaluate_windows(RuleState(), windows([115]), CONFIG)
    state, actions = evaluate_windows(state, windows([115], t0=T0 + 3600), CONFIG)
    assert actions == []


def test_windows_already_judged_are_skipped() -> None:
    state, first = evaluate_windows(RuleState(), windows([115, 115]), CONFIG)
    again, second = evaluate_windows(state, windows([115, 115]), CONFIG)
    assert len(first) == 1 and second == [] and again == state


def test_the_trigger_names_window_value_and_limits() -> None:
    _, (action,) = evaluate_windows(RuleState(), windows([80, 118, 119]), CONFIG)
    assert action.trigger["window"] == {"start": T0 + 60, "end": T0 + 90, "quality": 0.9, "activity": "unknown",
                                        "flags": []}  # fmt: skip
    assert action.trigger["source"] == "NEWS2" and action.trigger["threshold_version"] is None
    assert action.trigger["value"] == 119 and action.trigger["since"] == T0 + 30
    assert action.trigger["limits"] == {"yellow_low": 50, "yellow_high": 111, "red_low": 40, "red_high": 131}


def test_respiration_rate_has_its_own_state() -> None:
    state, actions = evaluate_windows(RuleState(), windows([80, 80], resp=26), CONFIG)
    assert [(a.parameter, a.level) for a in actions] == [("resp_rate", "red")]
    assert state.param("hr").level == "ok"


def test_panic_is_red_at_once_and_not_repeated_while_active() -> None:
    state, actions = evaluate_event(RuleState(), "panic", T0, (60.0, 24.0))
    assert [(a.kind, a.level, a.parameter) for a in actions] == [("open", "red", "panic")]
    assert actions[0].trigger == {"event": "panic", "time": T0, "lat": 60.0, "lon": 24.0}
    state, actions = evaluate_event(state, "panic", T0 + 5)
    assert actions == []
    state = sync_levels(state, {})  # a clinician resolved it
    _, actions = evaluate_event(state, "panic", T0 + 10)
    assert len(actions) == 1
    assert evaluate_event(RuleState(), "feedback", T0)[1] == []


def test_a_manual_resolve_restarts_the_hold() -> None:
    state, _ = evaluate_windows(RuleState(), windows([115, 115]), CONFIG)
    state = sync_levels(state, {})
    state, actions = evaluate_windows(state, windows([115], t0=T0 + 60), CONFIG)
    assert actions == []
    _, actions = evaluate_windows(state, windows([115], t0=T0 + 90), CONFIG)
    assert [a.kind for a in actions] == ["open"]


def test_state_round_trips_through_json() -> None:
    state, _ = evaluate_windows(RuleState(), windows([115, 115, 135]), CONFIG)
    state, _ = evaluate_event(state, "panic", T0 + 200)
    assert RuleState.from_json(json.loads(json.dumps(state.to_json()))) == state
    assert RuleState.from_json({}) == RuleState()


def test_state_stored_in_the_older_form_still_reads() -> None:
    """Rows written before the compact form (one object per parameter) load as the same state."""
    state, _ = evaluate_windows(RuleState(), windows([115, 115, 135]), CONFIG)
    older = {"params": {k: {"level": v.level, "yellow_since": v.yellow_since, "red_since": v.red_since,
                            "within_since": v.within_since, "last_end": v.last_end} for k, v in state.params.items()},
             "last_end": state.last_end}  # fmt: skip
    assert RuleState.from_json(json.loads(json.dumps(older))) == state
    assert state.params["hr"].red_since is not None  # the round trip above had a run of each kind to keep


def test_levels_already_in_line_keep_the_state() -> None:
    state, _ = evaluate_windows(RuleState(), windows([80, 81]), CONFIG)
    assert sync_levels(state, {}) == state
    assert sync_levels(state, {"hr": "yellow"}).params["hr"] == ParamState(level="yellow", last_end=state.params["hr"].last_end)


def flagged(flags: list[tuple[str, ...]], hr: float = 80, activity: str = "rest", **extra: float) -> list[SummaryWindow]:
    return [
        SummaryWindow(start=T0 + 30 * i, end=T0 + 30 * (i + 1), beats=30, hr_mean=hr, flags=f, activity=activity,
                      quality=0.9, **extra)
        for i, f in enumerate(flags)
    ]  # fmt: skip


def kinds(actions: list) -> list[tuple[str, str, str, float]]:  # type: ignore[type-arg]
    return [(a.kind, a.parameter, a.level, a.time - T0) for a in actions]


def test_a_heart_rate_beyond_the_hard_limit_is_red_at_once() -> None:
    _, actions = evaluate_windows(RuleState(), windows([80, 185]), CONFIG)
    assert kinds(actions) == [("open", "hr", "red", 60)]
    assert actions[0].trigger["source"] == "hard limit"
    assert run([80, 175]) == []  # beyond NEWS2 red but within the hard limit: waits for the hold


def test_vt_is_red_at_once_and_a_bare_pause_flag_is_yellow_after_the_hold() -> None:
    _, actions = evaluate_windows(RuleState(), flagged([(), ("vt",)]), CONFIG)
    assert kinds(actions) == [("open", "vt", "red", 60)] and actions[0].trigger["source"] == "Holter"
    _, actions = evaluate_windows(RuleState(), flagged([("pause",)]), CONFIG)
    assert actions == []
    _, actions = evaluate_windows(RuleState(), flagged([("pause",), ("pause",)]), CONFIG)
    assert kinds(actions) == [("open", "pause", "yellow", 60)]


def test_af_with_a_fast_rate_is_red_and_at_a_normal_rate_yellow() -> None:
    _, fast = evaluate_windows(RuleState(), flagged([("af_suspected",)] * 2, hr=105 + 20), CONFIG)
    _, slow = evaluate_windows(RuleState(), flagged([("af_suspected",)] * 2, hr=85), CONFIG)
    assert ("open", "af", "red", 60) in kinds(fast)
    assert kinds(slow) == [("open", "af", "yellow", 60)]


def test_rhythm_flags_of_a_noisy_window_raise_nothing() -> None:
    noisy = [replace(w, quality=0.1) for w in flagged([("vt",), ("vt",)])]
    assert evaluate_windows(RuleState(), noisy, CONFIG)[1] == []


def test_context_limits_apply_to_windows_of_that_activity() -> None:
    athlete = dict(NEWS2_LIMITS) | {"hr@rest": Limits(yellow_low=38, yellow_high=90, red_low=32, red_high=120)}
    config = replace(CONFIG, limits=athlete, version=3)
    rest = [replace(w, activity="rest") for w in windows([45] * 4)]
    walk = [replace(w, activity="walk") for w in windows([45] * 4)]
    assert evaluate_windows(RuleState(), rest, config)[1] == []  # 45 bpm is this athlete's rest
    _, actions = evaluate_windows(RuleState(), walk, config)  # walking: the plain NEWS2 entry
    assert kinds(actions) == [("open", "hr", "yellow", 60)]
    _, actions = evaluate_windows(RuleState(), [replace(w, activity="rest") for w in windows([100] * 2)], config)
    assert actions[0].trigger["source"] == "personalised" and actions[0].trigger["threshold_version"] == 3
    assert actions[0].trigger["limits"]["yellow_high"] == 90


def test_a_pause_of_3_s_or_more_is_red_at_once_and_names_its_length() -> None:
    slow = replace(CONFIG, hold_seconds=3600)  # no hold could be met: only "at once" opens
    _, actions = evaluate_windows(RuleState(), flagged([("pause",)], pause_max=3.0), slow)
    assert kinds(actions) == [("open", "pause", "red", 30)]  # one window; the limit is inclusive
    assert actions[0].trigger["value"] == 3.0 and actions[0].trigger["source"] == "Holter"
    assert actions[0].trigger["limits"]["criterion"].startswith("pause >= 3 s")
    _, actions = evaluate_windows(RuleState(), flagged([(), ()], pause_max=4.2), slow)  # the length alone suffices
    assert kinds(actions) == [("open", "pause", "red", 30)]


def test_a_pause_shorter_than_3_s_is_yellow_only_after_the_hold() -> None:
    _, once = evaluate_windows(RuleState(), flagged([("pause",)], pause_max=2.9), CONFIG)
    _, held = evaluate_windows(RuleState(), flagged([("pause",)] * 2, pause_max=2.9), CONFIG)
    assert once == [] and kinds(held) == [("open", "pause", "yellow", 60)]
    assert held[0].trigger["value"] == 2.9
    _, ordinary = evaluate_windows(RuleState(), flagged([()] * 4, pause_max=1.4), CONFIG)  # longest RR of a slow beat
    assert ordinary == []


def test_a_long_pause_in_a_noisy_window_raises_nothing_and_a_yellow_pause_becomes_red() -> None:
    noisy = [replace(w, quality=0.2) for w in flagged([("pause",)] * 3, pause_max=5.0)]
    assert evaluate_windows(RuleState(), noisy, CONFIG)[1] == []
    state, first = evaluate_windows(RuleState(), flagged([("pause",)] * 2, pause_max=2.5), CONFIG)
    late = [replace(w, start=w.start + 60, end=w.end + 60, pause_max=3.6) for w in flagged([("pause",)])]
    _, then = evaluate_windows(state, late, CONFIG)
    assert kinds(first) == [("open", "pause", "yellow", 60)] and kinds(then) == [("escalate", "pause", "red", 90)]


def test_the_quiet_rhythm_shortcut_agrees_with_the_full_judgement() -> None:
    """Wherever the evaluator skips judging the rhythm, the full Holter judgement finds nothing."""
    flag_sets = [(), ("pause",), ("vt",), ("af_suspected",), ("tachy",), ("ectopic",), ("pause", "af_suspected")]
    seen_quiet = seen_loud = 0
    for flags in flag_sets:
        for pause_max in (None, 0.9, 2.99, 3.0, 6.5):
            for hr in (None, 45.0, 80.0, 125.0):
                w = SummaryWindow(start=T0, end=T0 + 30, beats=30, hr_mean=hr, flags=flags, quality=0.9,
                                  pause_max=pause_max)  # fmt: skip
                levels = {judge_rhythm(name, w).level for name in RHYTHMS}
                if rhythm_quiet(w):
                    seen_quiet += 1
                    assert levels == {"ok"}, (flags, pause_max, hr)
                seen_loud += levels != {"ok"}
    assert seen_quiet == 12 and seen_loud > 0


limit_values = st.one_of(st.none(), st.sampled_from([8.0, 11.0, 21.0, 25.0, 40.0, 50.0, 111.0, 131.0, 180.0]),
                         st.floats(1, 250))  # fmt: skip


VITAL_VALUES = {
    "hr": st.one_of(st.floats(20, 300), st.sampled_from([30.0, 40.0, 50.0, 111.0, 131.0, 180.0])),
    "resp_rate": st.one_of(st.floats(1, 80), st.sampled_from([5.0, 8.0, 11.0, 21.0, 25.0, 40.0])),
}


@settings(max_examples=2000)
@given(st.sampled_from(sorted(VITAL_VALUES)), st.builds(Limits, limit_values, limit_values, limit_values, limit_values),
       st.data())  # fmt: skip
def test_the_ok_band_is_exactly_where_a_vital_judges_ok(name: str, limits: Limits, data: st.DataObject) -> None:
    """The steady-state shortcut: inside the band if and only if the full judgement says ok."""
    value = data.draw(VITAL_VALUES[name])
    window = SummaryWindow(start=T0, end=T0 + 60, beats=60, **{"hr_mean" if name == "hr" else name: value})
    judged = judge_vital(name, window, limits)
    low, high = ok_band(name, limits)
    assert judged is not None
    assert (low < value < high) == (judged.level == "ok")
    assert ok_band(name, None)[0] > ok_band(name, None)[1]  # no limits: nothing is ok


def test_a_value_on_a_limit_after_a_steady_run_is_beyond_it() -> None:
    """Limits are inclusive on the steady-state shortcut too: 50 and 111 bpm are yellow (NEWS2)."""
    for edge in (50, 111):
        state, actions = evaluate_windows(RuleState(), windows([80, 80, 80, edge, edge, edge]), CONFIG)
        assert [(a.kind, a.level, a.parameter) for a in actions] == [("open", "yellow", "hr")]


def history() -> st.SearchStrategy[list[list[SummaryWindow]]]:
    """Messages of consecutive 30 s windows, most of them ordinary, some with one thing off: a value near or
    beyond a limit, a rhythm flag, a missing value, poor quality, a gap, another activity."""
    ordinary = (72.0, 14.0, (), 0.9, "rest", 0.0)
    odd = st.one_of(
        st.sampled_from([50.0, 51.0, 110.0, 111.0, 135.0, 185.0]).map(lambda v: (v, *ordinary[1:])),
        st.floats(35, 140).map(lambda v: (v, *ordinary[1:])),
        st.sampled_from([None, 11.0, 12.0, 20.0, 21.0, 26.0]).map(lambda v: (ordinary[0], v, *ordinary[2:])),
        st.sampled_from([("pause",), ("vt",), ("af_suspected",), ("ectopic",)]).map(lambda f: (*ordinary[:2], f, *ordinary[3:])),
        st.sampled_from([0.2, 0.5]).map(lambda q: (*ordinary[:3], q, *ordinary[4:])),
        st.sampled_from(["walk", "lying"]).map(lambda a: (*ordinary[:4], a, 0.0)),
        st.sampled_from([299.0, 300.0, 301.0, 400.0]).map(lambda g: (*ordinary[:5], g)),
        st.just((None, *ordinary[1:])),
    )
    window = st.one_of(st.just(ordinary), st.just(ordinary), st.just(ordinary), odd)
    return st.lists(st.lists(window, min_size=1, max_size=6), min_size=1, max_size=12).map(_as_windows)


def _as_windows(raw: list[list[tuple[Any, ...]]]) -> list[list[SummaryWindow]]:
    t, messages = T0, []
    for message in raw:
        found = []
        for hr, resp, flags, quality, activity, gap in message:
            t += gap
            found.append(SummaryWindow(start=t, end=t + 30, beats=30, hr_mean=hr, resp_rate=resp, flags=flags,
                                       quality=quality, activity=activity))  # fmt: skip
            t += 30
        messages.append(found)
    return messages


@settings(max_examples=600, deadline=None)
@given(history(), st.sampled_from([CONFIG, RuleConfig(limits={**NEWS2_LIMITS, "hr@active": Limits(45, 140, 35, 160)})]))
def test_the_shortcuts_change_nothing(messages: list[list[SummaryWindow]], config: RuleConfig) -> None:
    """Every state and action equals those of judging each window of each parameter in full."""
    def run(full: bool) -> list[Any]:
        state, out = RuleState(), []
        saved = rules._all_quiet, rules._surely_ok
        if full:
            rules._all_quiet, rules._surely_ok = (lambda *_a: None), (lambda *_a: False)  # type: ignore[assignment]
        try:
            for batch in messages:
                state, actions = evaluate_windows(state, batch, config)
                out.append((state, actions))
        finally:
            rules._all_quiet, rules._surely_ok = saved
        return out

    assert run(full=False) == run(full=True)
