"""Export formats of a patient's data (pure): CSV of summary windows, and an HL7 FHIR R4 Bundle.

For the whole record (:mod:`server.data_export`) the Bundle also holds each
symptom period the patient marked and each panic as an Observation (category
``survey``, patient-reported), and each alert as a ``Flag`` (category
``clinical``, active until resolved); :func:`fhir_bundle_text` writes a Bundle
piece by piece so that a year of windows never sits in memory.

The FHIR Bundle (type ``collection``) holds the Patient, one vital-signs
Observation per usable window for heart rate (LOINC 8867-4) and respiratory
rate (LOINC 9279-1), valued as the window's mean in UCUM ``/min`` over its
``effectivePeriod``, and one Observation per ECG strip whose value is a
``SampledData`` in µV (code MDC_ECG_ELEC_POTL, ISO/IEEE 11073-10101, as in
the FHIR R4 ECG example). Resource ids are UUIDs derived from the device, its
sequence number and the window's place, so exporting twice gives the same ids.
"""

from __future__ import annotations

import csv
import io
import uuid
import json
from collections.abc import Iterable, Iterator
from datetime import datetime, timezone
from typing import Any

from server.queries import PatientRow, StripData, SummaryRow

UCUM = "http://unitsofmeasure.org"
LOINC = "http://loinc.org"
MDC = "urn:oid:2.16.840.1.113883.6.24"
OBS_CATEGORY = "http://terminology.hl7.org/CodeSystem/observation-category"
FLAG_CATEGORY = "http://terminology.hl7.org/CodeSystem/flag-category"
DEVICE_SYSTEM = "urn:pisces:device"
ID_NAMESPACE = uuid.UUID("6f1b7f0e-3c59-4d0e-9a8e-5a2b7d1c0f42")

CSV_COLUMNS = (
    "start", "end", "beats", "hr_mean_bpm", "hr_min_bpm", "hr_max_bpm", "rr_mean_ms", "sdnn_ms", "rmssd_ms",
    "flags", "resp_rate_per_min", "activity", "intensity_g", "quality", "battery_pct",
    "pnn50_pct", "pause_max_s", "ectopic_beats", "steps", "posture_changes", "fall",
)  # fmt: skip
VITALS = (("hr_mean", "8867-4", "Heart rate"), ("resp_rate", "9279-1", "Respiratory rate"))


def _iso(t: datetime) -> str:
    return t.astimezone(timezone.utc).isoformat().replace("+00:00", "Z")


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, datetime):
        return _iso(value)
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list):
        return ";".join(value)
    if isinstance(value, float):
        return f"{value:.6g}"
    return str(value)


def summaries_csv(rows: Iterable[SummaryRow]) -> Iterator[str]:
    """CSV text of summary windows, a header line then one line per window (flags joined by ``;``)."""
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\r\n")
    writer.writerow(CSV_COLUMNS)
    yield buf.getvalue()
    for r in rows:
        buf.seek(0)
        buf.truncate()
        writer.writerow(_cell(v) for v in (
            r.start, r.end, r.beats, r.hr_mean, r.hr_min, r.hr_max, r.rr_mean, r.sdnn, r.rmssd, r.flags,
            r.resp_rate, r.activity, r.intensity, r.quality, r.battery,
            r.pnn50, r.pause_max, r.ectopic, r.steps, r.posture_changes, r.fall,
        ))  # fmt: skip
        yield buf.getvalue()


def _id(*parts: object) -> str:
    return str(uuid.uuid5(ID_NAMESPACE, "/".join(str(p) for p in parts)))


def _entry(resource: dict[str, Any]) -> dict[str, Any]:
    return {"fullUrl": f"urn:uuid:{resource['id']}", "resource": resource}


def fhir_patient(patient: PatientRow) -> dict[str, Any]:
    """The Patient resource: the name and the monitoring device's id as an identifier."""
    return {
        "resourceType": "Patient", "id": _id("patient", patient.id),
        "identifier": [{"system": DEVICE_SYSTEM, "value": patient.device_id}],
        "name": [{"text": patient.name}],
    }  # fmt: skip


def fhir_vitals(patient_ref: str, row: SummaryRow) -> Iterator[dict[str, Any]]:
    """Heart-rate and respiratory-rate Observations of one window (those it has a value for)."""
    for attr, code, display in VITALS:
        value = getattr(row, attr)
        if value is None:
            continue
        yield {
            "resourceType": "Observation", "id": _id(code, patient_ref, row.start.timestamp()),
            "status": "final",
            "category": [{"coding": [{"system": OBS_CATEGORY, "code": "vital-signs", "display": "Vital Signs"}]}],
            "code": {"coding": [{"system": LOINC, "code": code, "display": display}], "text": display},
            "subject": {"reference": patient_ref},
            "effectivePeriod": {"start": _iso(row.start), "end": _iso(row.end)},
            "valueQuantity": {"value": round(float(value), 1), "unit": "/min", "system": UCUM, "code": "/min"},
        }  # fmt: skip


def fhir_strip(patient_ref: str, strip: StripData) -> dict[str, Any]:
    """An ECG strip as an Observation valued with SampledData (µV, period in ms)."""
    info = strip.info
    return {
        "resourceType": "Observation", "id": _id("strip", info.device_id, info.seq), "status": "final",
        "category": [{"coding": [{"system": OBS_CATEGORY, "code": "procedure", "display": "Procedure"}]}],
        "code": {"coding": [{"system": MDC, "code": "131328", "display": "MDC_ECG_ELEC_POTL"}],
                 "text": f"ECG strip, single lead ({info.reason})"},
        "subject": {"reference": patient_ref},
        "effectiveDateTime": _iso(info.start),
        "device": {"identifier": {"system": DEVICE_SYSTEM, "value": info.device_id}},
        "valueSampledData": {
            "origin": {"value": 0, "unit": "uV", "system": UCUM, "code": "uV"},
            "period": round(1000.0 / info.fs, 6), "factor": 1, "dimensions": 1,
            "data": " ".join(str(v) for v in strip.samples_uv),
        },
    }  # fmt: skip


def fhir_bundle(
    patient: PatientRow, rows: Iterable[SummaryRow], strips: Iterable[StripData], usable_quality: float,
    now: datetime,
) -> dict[str, Any]:
    """A FHIR R4 ``collection`` Bundle: the Patient, vitals of windows of at least ``usable_quality``, strips."""
    person = fhir_patient(patient)
    ref = f"urn:uuid:{person['id']}"
    resources = [person]
    for row in rows:
        if row.quality >= usable_quality:
            resources.extend(fhir_vitals(ref, row))
    resources.extend(fhir_strip(ref, s) for s in strips)
    return {
        "resourceType": "Bundle", "id": str(uuid.uuid4()), "type": "collection", "timestamp": _iso(now),
        "entry": [_entry(r) for r in resources],
    }  # fmt: skip


def _survey(patient_ref: str, resource_id: str, text: str) -> dict[str, Any]:
    """A patient-reported Observation without its time or value."""
    return {
        "resourceType": "Observation", "id": resource_id, "status": "final",
        "category": [{"coding": [{"system": OBS_CATEGORY, "code": "survey", "display": "Survey"}]}],
        "code": {"text": text}, "subject": {"reference": patient_ref},
    }  # fmt: skip


def fhir_symptom_period(patient_ref: str, period_id: int, started: datetime | None, ended: datetime | None,
                        tags: list[str], severity: int | None, note: str) -> dict[str, Any]:  # fmt: skip
    """A symptom period the patient marked: tags as the value, severity (1-5) as a component, the note."""
    obs = _survey(patient_ref, _id("symptom", patient_ref, period_id), "Patient-marked symptom period")
    obs["effectivePeriod"] = {k: _iso(v) for k, v in (("start", started), ("end", ended)) if v is not None}
    if tags:
        obs["valueString"] = "; ".join(tags)
    if severity is not None:
        obs["component"] = [{"code": {"text": "Severity (1 mild - 5 severe)"}, "valueInteger": severity}]
    if note:
        obs["note"] = [{"text": note}]
    return obs


def fhir_panic(patient_ref: str, device_id: str, seq: int, at: datetime) -> dict[str, Any]:
    """A press of the panic button."""
    obs = _survey(patient_ref, _id("panic", device_id, seq), "Panic button pressed")
    obs["effectiveDateTime"] = _iso(at)
    return obs


def fhir_alert(patient_ref: str, alert_id: int, level: str, parameter: str, state: str, opened: datetime,
               closed: datetime | None) -> dict[str, Any]:  # fmt: skip
    """An alert as a clinical Flag: active while open or acknowledged, inactive once resolved."""
    period = {"start": _iso(opened)} | ({"end": _iso(closed)} if closed is not None else {})
    return {
        "resourceType": "Flag", "id": _id("alert", patient_ref, alert_id),
        "status": "inactive" if state == "resolved" else "active",
        "category": [{"coding": [{"system": FLAG_CATEGORY, "code": "clinical", "display": "Clinical"}]}],
        "code": {"text": f"{level} alert: {parameter}"}, "subject": {"reference": patient_ref}, "period": period,
    }  # fmt: skip


def fhir_bundle_text(resources: Iterable[dict[str, Any]], now: datetime) -> Iterator[str]:
    """A FHIR R4 ``collection`` Bundle as JSON text in pieces, one entry at a time."""
    head = {"resourceType": "Bundle", "id": str(uuid.uuid4()), "type": "collection", "timestamp": _iso(now)}
    yield json.dumps(head, separators=(",", ":"))[:-1] + ',"entry":['
    for i, resource in enumerate(resources):
        yield ("," if i else "") + json.dumps(_entry(resource), separators=(",", ":"))
    yield "]}"
