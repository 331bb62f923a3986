"""The visit report: a model built from :class:`~server.report.inputs.ReportData` by a list of sections.

A section is data: a key, a title and one small pure function
``ReportData -> (headline, body)`` (:data:`SECTIONS`). :func:`build_report`
runs them in order; the portal's report page renders each section from the
template block of the same key (``clinician_portal/static/report.html``).
Adding a section is one function here and one template block there. A body
with a non-empty ``flag`` (a short label, e.g. "low adherence") is a finding to
raise: the page lists that section first in "At a glance", marked with it.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from server.report.alerts import AlertsBody, alerts_section
from server.report.events import SymptomsBody, symptoms_section
from server.report.inputs import ReportData, ReportPeriod
from server.report.medication import AdherenceBody, adherence_section
from server.report.vitals import (
    CompletenessBody,
    RhythmBody,
    TrendsBody,
    completeness_section,
    rhythm_section,
    trends_section,
)

SectionBody = TrendsBody | AlertsBody | SymptomsBody | RhythmBody | AdherenceBody | CompletenessBody


@dataclass(frozen=True)
class Section:
    """One section of the report: ``build`` returns its one-line headline and its body."""

    key: str
    title: str
    build: Callable[[ReportData], tuple[str, Any]]


SECTIONS: tuple[Section, ...] = (
    Section("trends", "Trends against the limits", trends_section),
    Section("alerts", "Alerts and their outcomes", alerts_section),
    Section("symptoms", "Symptom periods", symptoms_section),
    Section("rhythm", "Rhythm events", rhythm_section),
    Section("adherence", "Medication adherence", adherence_section),
    Section("completeness", "Data completeness", completeness_section),
)


@dataclass(frozen=True)
class ReportSection:
    """A built section: ``key`` names its template block; ``headline`` is its finding in one line."""

    key: str
    title: str
    headline: str
    body: SectionBody


@dataclass(frozen=True)
class ReportPatient:
    """Who the report is about."""

    id: int
    name: str
    device_id: str


@dataclass(frozen=True)
class Report:
    """A visit report: the patient, the period, when it was made, and its sections in order."""

    patient: ReportPatient
    period: ReportPeriod
    generated_at: datetime
    usable_quality: float  # windows of at least this quality count for vitals, rhythm and good hours
    limits_source: str  # "NEWS2" or "version N": the limits in force at the period's end
    sections: list[ReportSection]


def build_report(data: ReportData, sections: Sequence[Section] = SECTIONS) -> Report:
    """The report model of ``data`` (pure)."""
    built = []
    for section in sections:
        headline, body = section.build(data)
        built.append(ReportSection(section.key, section.title, headline, body))
    p = data.patient
    source = "NEWS2" if data.limits.version is None else f"version {data.limits.version}"
    return Report(ReportPatient(p.id, p.name, p.device_id), data.period, data.generated_at, data.usable_quality,
                  source, built)  # fmt: skip
