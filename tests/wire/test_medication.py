"""The medication plan of the wire contract: when doses are due (local times, daylight saving, intervals),
strict validation naming the field, and the config / event payloads that carry plans and confirmations."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from wire import Config, Event, EventType, WireDecodeError, decode, encode
from wire.codec import plan_from_dict
from wire.medication import Drug, MedicationPlan, dose_key, schedule

LJ = ZoneInfo("Europe/Ljubljana")


def at(day: str, hhmm: str, tz: ZoneInfo = LJ) -> float:
    return datetime.fromisoformat(f"{day}T{hhmm}").replace(tzinfo=tz).timestamp()


def plan(*drugs: Drug, since: float = 0.0, tz: str = "Europe/Ljubljana", on_time: int = 60,
         grace: int = 180) -> MedicationPlan:  # fmt: skip
    return MedicationPlan(1, since, tz, drugs, on_time, grace)


def local(t: float) -> str:
    return datetime.fromtimestamp(t, LJ).strftime("%m-%d %H:%M")


def test_times_of_day_are_local_wall_clock_times_across_both_daylight_saving_changes() -> None:
    p = plan(Drug("bisoprolol", "5 mg", ("08:00", "20:00")))
    spring = schedule(p, at("2026-03-28", "00:00"), at("2026-03-30", "00:00"))
    autumn = schedule(p, at("2026-10-24", "00:00"), at("2026-10-26", "00:00"))
    assert [local(d.planned) for d in spring] == ["03-28 08:00", "03-28 20:00", "03-29 08:00", "03-29 20:00"]
    assert [local(d.planned) for d in autumn] == ["10-24 08:00", "10-24 20:00", "10-25 08:00", "10-25 20:00"]
    # the night the clocks go forward has an hour less between two doses, the autumn one an hour more
    assert spring[2].planned - spring[1].planned == 11 * 3600
    assert autumn[2].planned - autumn[1].planned == 13 * 3600


def test_a_time_that_does_not_exist_is_taken_after_the_change_and_a_repeated_one_first() -> None:
    p = plan(Drug("x", "1", ("02:30",)))
    (gap,) = schedule(p, at("2026-03-29", "00:00"), at("2026-03-29", "12:00"))
    assert datetime.fromtimestamp(gap.planned, LJ).strftime("%H:%M") == "03:30"
    (twice,) = schedule(p, at("2026-10-25", "00:00"), at("2026-10-25", "12:00"))
    assert datetime.fromtimestamp(twice.planned, timezone.utc).strftime("%H:%M") == "00:30"  # 02:30 CEST, the first


def test_two_times_that_fall_on_one_instant_make_one_dose() -> None:
    p = plan(Drug("x", "1", ("02:30", "03:30")))
    day = schedule(p, at("2026-03-29", "00:00"), at("2026-03-30", "00:00"))
    assert len(day) == 1 and len(schedule(p, at("2026-03-30", "00:00"), at("2026-03-31", "00:00"))) == 2


def test_an_interval_counts_real_hours_from_its_first_dose_across_a_clock_change() -> None:
    p = plan(Drug("furosemide", "40 mg", ("06:00",), every_hours=8, start="2026-03-28"))
    doses = schedule(p, at("2026-03-27", "00:00"), at("2026-03-30", "00:00"))
    gaps = {b.planned - a.planned for a, b in zip(doses, doses[1:])}
    assert gaps == {8 * 3600} and local(doses[0].planned) == "03-28 06:00"
    assert local(doses[-1].planned) == "03-29 23:00"  # 22:00 before the change, 23:00 after it


def test_first_and_last_days_are_inclusive_local_days_and_since_cuts_earlier_doses() -> None:
    p = plan(Drug("x", "1", ("00:00", "23:59"), start="2026-05-02", end="2026-05-03"),
             since=at("2026-05-02", "12:00"))  # fmt: skip
    doses = schedule(p, at("2026-05-01", "00:00"), at("2026-05-10", "00:00"))
    assert [local(d.planned) for d in doses] == ["05-02 23:59", "05-03 00:00", "05-03 23:59"]


def test_deadlines_never_overlap_the_next_dose_of_the_same_drug() -> None:
    p = plan(Drug("x", "1", ("08:00", "09:00", "20:00")), on_time=90, grace=180)
    first, second, third = schedule(p, at("2026-05-01", "00:00"), at("2026-05-01", "23:00"))
    assert (first.on_time_until - first.planned, first.closes_at - first.planned) == (3600, 3600)
    assert (second.on_time_until - second.planned, second.closes_at - second.planned) == (5400, 10800)
    assert third.closes_at - third.planned == 10800  # the next one is tomorrow's 08:00


def test_doses_are_named_by_drug_and_whole_second() -> None:
    (d,) = schedule(plan(Drug("bisoprolol", "5 mg", ("08:00",))), at("2026-05-01", "00:00"), at("2026-05-02", "00:00"))
    assert d.key == dose_key("bisoprolol", d.planned + 0.2) == f"bisoprolol@{int(d.planned)}"


@pytest.mark.parametrize(("change", "field"), [
    ({"time_zone": "Europe/Nowhere"}, "time_zone"),
    ({"time_zone": "../../etc/passwd"}, "time_zone"),
    ({"time_zone": "localtime"}, "time_zone"),
    ({"grace_minutes": 30}, "grace_minutes"),
    ({"drugs": [{"name": "a", "dose": "1", "times": ["8:00"]}]}, "drugs[0].times[0]"),
    ({"drugs": [{"name": "a", "dose": "1", "times": ["24:00"]}]}, "drugs[0].times[0]"),
    ({"drugs": [{"name": "a", "dose": "1", "times": []}]}, "drugs[0].times"),
    ({"drugs": [{"name": "a", "dose": "1", "times": ["08:00", "08:00"]}]}, "drugs[0].times"),
    ({"drugs": [{"name": "a", "dose": "1", "times": ["08:00"], "every_hours": 8}]}, "drugs[0].start"),
    ({"drugs": [{"name": "a", "dose": "1", "times": ["08:00"], "every_hours": 0, "start": "2026-01-01"}]},
     "drugs[0].every_hours"),
    ({"drugs": [{"name": "a", "dose": "1", "times": ["08:00"], "start": "2026-02-30"}]}, "drugs[0].start"),
    ({"drugs": [{"name": "a", "dose": "1", "times": ["08:00"], "every_hours": 1, "start": "0001-01-01"}]},
     "drugs[0].start"),
    ({"drugs": [{"name": "a", "dose": "1", "times": ["08:00"], "end": "9999-12-31"}]}, "drugs[0].end"),
    ({"drugs": [{"name": "a", "dose": "1", "times": ["08:00"], "start": "2026-02-03", "end": "2026-02-01"}]},
     "drugs[0].end"),
    ({"drugs": [{"name": " ", "dose": "1", "times": ["08:00"]}]}, "drugs[0].name"),
    ({"drugs": [{"name": "a", "dose": "1", "times": ["08:00"], "critical": "yes"}]}, "drugs[0].critical"),
    ({"drugs": [{"name": "a", "dose": "1", "times": ["08:00"], "dosage": "1"}]}, "drugs[0].dosage"),
    ({"drugs": [{"name": "A", "dose": "1", "times": ["08:00"]}, {"name": "a", "dose": "2", "times": ["09:00"]}]},
     "drugs[1].name"),
])  # fmt: skip
def test_a_bad_plan_is_refused_naming_the_field(change: dict[str, object], field: str) -> None:
    body = {"version": 1, "since": 0.0, "time_zone": "Europe/Ljubljana",
            "drugs": [{"name": "a", "dose": "1", "times": ["08:00"]}], **change}  # fmt: skip
    with pytest.raises(WireDecodeError) as err:
        plan_from_dict(body)
    assert err.value.field == field


CONFIG = {"v": 1, "kind": "config", "device": "dev-001", "version": 3, "time": 1763900000.0}


def test_a_config_without_a_plan_still_decodes_and_one_with_a_bad_plan_names_the_nested_field() -> None:
    old = decode(json.dumps(CONFIG).encode())
    assert isinstance(old, Config) and old.medication is None
    bad = {**CONFIG, "medication": {"version": 1, "since": 0, "time_zone": "UTC",
                                    "drugs": [{"name": "a", "dose": "1", "times": ["08:00"], "every_hours": 2.5,
                                               "start": "2026-01-01"}]}}  # fmt: skip
    with pytest.raises(WireDecodeError) as err:
        decode(json.dumps(bad).encode())
    assert (err.value.reason, err.value.field) == ("type", "medication.drugs[0].every_hours")


def test_dose_events_name_their_dose_and_other_events_do_not() -> None:
    taken = Event("dev-1", 5, EventType.DOSE_TAKEN, 1_700_000_100.0, drug="bisoprolol", planned=1_700_000_000.0)
    assert decode(encode(taken)) == taken
    with pytest.raises(WireDecodeError) as err:
        Event("dev-1", 6, EventType.DOSE_MISSED, 1_700_000_100.0, drug="bisoprolol")
    assert err.value.field == "planned"
    with pytest.raises(WireDecodeError) as err:
        Event("dev-1", 7, EventType.PANIC, 1_700_000_100.0, drug="bisoprolol")
    assert err.value.field == "drug"


names = st.text(st.sampled_from("abcdefghijklmnopqrstuvwxyzABCZčšžåé0123456789-. "), min_size=1, max_size=12).filter(
    str.strip)
clock = st.builds(lambda h, m: f"{h:02d}:{m:02d}", st.integers(0, 23), st.integers(0, 59))
drugs = st.builds(
    lambda name, times, critical, every: Drug(name, "5 mg", times[:1] if every else times, every_hours=every,
                                              start="2026-03-01" if every else None, critical=critical),
    names, st.lists(clock, min_size=1, max_size=4, unique=True).map(tuple), st.booleans(),
    st.none() | st.integers(1, 168),
)  # fmt: skip
plans = st.builds(
    lambda ds, zone, on_time, extra: MedicationPlan(2, 1_772_000_000.0, zone, ds, on_time, on_time + extra),
    st.lists(drugs, max_size=4, unique_by=lambda d: d.name.casefold()).map(tuple),
    st.sampled_from(["Europe/Ljubljana", "America/New_York", "Australia/Lord_Howe", "UTC", "Asia/Kolkata"]),
    st.integers(1, 240), st.integers(0, 600),
)  # fmt: skip


@settings(max_examples=60, deadline=None)
@given(plans, st.floats(0, 40 * 86_400.0), st.floats(0, 20 * 86_400.0))
def test_any_plan_round_trips_and_its_doses_are_ordered_and_well_formed(p: MedicationPlan, a: float, span: float) -> None:
    config = Config("dev-001", 9, 1_772_000_000.0, medication=p)
    assert decode(encode(config)) == config
    start = p.since - 5 * 86_400.0 + a
    doses = schedule(p, start, start + span)
    assert [(d.planned, d.drug) for d in doses] == sorted((d.planned, d.drug) for d in doses)
    assert len({d.key for d in doses}) == len(doses)
    for d in doses:
        assert max(start, p.since) <= d.planned < start + span
        assert d.planned < d.on_time_until <= d.closes_at <= d.planned + p.grace_minutes * 60
    # splitting the range in two gives the same doses (the phone and the server expand different spans)
    cut = start + span / 3
    assert schedule(p, start, cut) + schedule(p, cut, start + span) == doses


def test_on_time_windows_of_a_day_match_local_times_in_a_timezone_with_half_hours() -> None:
    p = plan(Drug("x", "1", ("08:00",)), tz="Australia/Lord_Howe")
    start = datetime(2026, 4, 4, tzinfo=ZoneInfo("Australia/Lord_Howe")).timestamp()
    doses = schedule(p, start, start + 3 * 86_400)
    tz = ZoneInfo("Australia/Lord_Howe")
    assert [datetime.fromtimestamp(d.planned, tz).strftime("%H:%M") for d in doses] == ["08:00"] * 3
    assert {round((b.planned - a.planned) / 3600, 1) for a, b in zip(doses, doses[1:])} == {24.5, 24.0}
    assert timedelta(seconds=doses[1].planned - doses[0].planned) != timedelta(days=1)


def test_the_dose_alert_of_a_drug_with_the_longest_name_goes_down_to_the_phone() -> None:
    from server.dose_alerts import parameter_of
    from wire import Level, Notify
    from wire.medication import MAX_TEXT

    name = "b" * MAX_TEXT
    Drug(name, "5 mg", times=("08:00",))  # a name the plan accepts
    notice = Notify("dev-1", 1_700_000_000.0, Level.YELLOW, "missed dose", parameter=parameter_of(name))
    assert decode(encode(notice)) == notice
    with pytest.raises(WireDecodeError):
        Notify("dev-1", 1_700_000_000.0, Level.YELLOW, "x", parameter=parameter_of(name) + "b")


@pytest.mark.parametrize("drug", ["   ", "", "b" * 65])
def test_a_dose_event_names_a_drug_a_plan_could_have(drug: str) -> None:
    with pytest.raises(WireDecodeError) as err:
        Event("dev-1", 5, EventType.DOSE_TAKEN, 1_700_000_100.0, drug=drug, planned=1_700_000_000.0)
    assert err.value.field == "drug"
