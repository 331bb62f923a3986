"""The report is its list of sections: built in order, each a function, serialised with its body."""

from __future__ import annotations

from dataclasses import dataclass

from pydantic import TypeAdapter

from server.report.inputs import ReportData
from server.report.sections import SECTIONS, Report, Section, build_report
from tests.server.report.data import data


def test_every_section_is_built_in_order_with_a_headline() -> None:
    report = build_report(data())
    assert [s.key for s in report.sections] == ["trends", "alerts", "symptoms", "rhythm", "adherence", "completeness"]
    assert all(s.headline.endswith(".") for s in report.sections)
    assert (report.patient.name, report.limits_source) == ("Ana Novak", "NEWS2")


def test_a_section_is_one_function() -> None:
    @dataclass(frozen=True)
    class Count:
        windows: int

    def windows_section(d: ReportData) -> tuple[str, Count]:
        return f"{len(d.day_stats)} days.", Count(len(d.day_stats))

    report = build_report(data(), (*SECTIONS, Section("count", "Windows", windows_section)))
    assert report.sections[-1].key == "count" and report.sections[-1].body == Count(0)


def test_the_json_model_carries_each_sections_body() -> None:
    model = TypeAdapter(Report).dump_python(build_report(data()), mode="json")
    bodies = {s["key"]: s["body"] for s in model["sections"]}
    assert bodies["adherence"] == {"plan_recorded": False, "message": "no medication plan recorded", "drugs": [],
                                   "plan_versions": [], "low": False, "flag": "", "low_share_pct": None,
                                   "recent_days": None}  # fmt: skip
    assert set(bodies["rhythm"]) >= {"af_burden_pct", "longest_pauses", "ectopic_per_hour", "episode_counts", "episodes"}
    assert len(bodies["completeness"]["days"]) == 0 and bodies["trends"]["stats"][0]["parameter"] == "hr"
    assert model["period"]["basis"] == "requested" and model["period"]["start"] == "2025-03-01T00:00:00Z"
