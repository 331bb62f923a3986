"""Exports: CSV and an HL7 FHIR R4 Bundle, validated with a FHIR library (fhir.resources, R4B models)."""

from __future__ import annotations

import csv
import io
from datetime import datetime, timezone

import pytest
from fhir.resources.R4B.bundle import Bundle
from fhir.resources.R4B.observation import Observation

from server.exports import CSV_COLUMNS, fhir_bundle, summaries_csv
from server.queries import PatientRow, StripData, StripInfo, SummaryRow
from tests.server.test_api import World, client, world  # noqa: F401 - `world` is a fixture
from tests.server.test_api_portal import T, data, iso  # noqa: F401 - `data` is a fixture

UTC = timezone.utc


def window(start: float, hr: float | None, resp: float | None, quality: float = 0.9) -> SummaryRow:
    return SummaryRow(datetime.fromtimestamp(start, UTC), datetime.fromtimestamp(start + 60, UTC), 70, hr,
                      None if hr is None else hr - 3, None if hr is None else hr + 4, 850.0, 40.0, 31.5,
                      ["ectopic", "pause"], resp, "rest", 0.01, quality, 80)  # fmt: skip


PATIENT = PatientRow(7, "Ana Novak", "dev-7", "ok", "ok", None, None, 80, True)
STRIP = StripData(StripInfo(7, "dev-7", 42, datetime.fromtimestamp(T, UTC), 250.0, 0.02, "symptom", 41),
                  [10, -20, 300, 1200, -5])


def test_the_bundle_is_valid_fhir_with_loinc_vitals_and_a_sampled_ecg() -> None:
    rows = [window(T, 72.4, 14.0), window(T + 60, None, 16.0), window(T + 120, 150.0, 30.0, quality=0.1)]
    bundle = fhir_bundle(PATIENT, rows, [STRIP], 0.5, datetime.fromtimestamp(T + 999, UTC))
    parsed = Bundle.model_validate(bundle)  # raises on any structural error
    assert parsed.type == "collection"
    observations = [e.resource for e in parsed.entry if e.resource.__resource_type__ == "Observation"]
    codes = [(o.code.coding[0].system, o.code.coding[0].code) for o in observations]
    # the noisy window gives nothing; the window without HR gives only a respiratory rate
    assert codes == [("http://loinc.org", "8867-4"), ("http://loinc.org", "9279-1"),
                     ("http://loinc.org", "9279-1"), ("urn:oid:2.16.840.1.113883.6.24", "131328")]  # fmt: skip
    hr = observations[0]
    assert (float(hr.valueQuantity.value), hr.valueQuantity.code, hr.valueQuantity.system) == (
        72.4, "/min", "http://unitsofmeasure.org")  # fmt: skip
    assert hr.category[0].coding[0].code == "vital-signs" and hr.effectivePeriod.start.isoformat().startswith("2025-10-09T09:00")
    ecg = observations[-1].valueSampledData
    assert ecg.data == "10 -20 300 1200 -5" and float(ecg.period) == 4.0 and ecg.origin.code == "uV"
    patient_url = parsed.entry[0].fullUrl
    assert all(o.subject.reference == patient_url for o in observations)
    ids = [e.fullUrl for e in parsed.entry]
    assert len(set(ids)) == len(ids)
    again = fhir_bundle(PATIENT, rows, [STRIP], 0.5, datetime.fromtimestamp(T, UTC))
    assert [e["fullUrl"] for e in again["entry"]] == ids  # stable resource ids


def test_a_broken_resource_is_caught_by_the_validator() -> None:
    bundle = fhir_bundle(PATIENT, [window(T, 72.0, None)], [], 0.5, datetime.fromtimestamp(T, UTC))
    obs = dict(bundle["entry"][1]["resource"])
    del obs["status"]  # required (1..1) in R4
    with pytest.raises(ValueError):
        Observation.model_validate(obs)


def test_csv_has_a_header_and_every_window() -> None:
    text = "".join(summaries_csv([window(T, 72.4, 14.0), window(T + 60, None, None, quality=0.1)]))
    rows = list(csv.reader(io.StringIO(text)))
    assert rows[0] == list(CSV_COLUMNS)
    assert rows[1][:4] == [iso(T), iso(T + 60), "70", "72.4"] and rows[1][9] == "ectopic;pause"
    assert rows[2][3] == "" and rows[2][13] == "0.1"


def test_exports_over_http(data: World) -> None:  # noqa: F811
    params = {"start": iso(T), "end": iso(T + 86400)}
    with client(data, data.nurse) as c:
        r = c.get(f"/api/patients/{data.mine}/export.csv", params=params)
        f = c.get(f"/api/patients/{data.mine}/export.fhir.json", params=params)
        too_long = c.get(f"/api/patients/{data.mine}/export.csv", params={"start": iso(T), "end": iso(T + 40 * 86400)})
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/csv")
    assert "attachment" in r.headers["content-disposition"]
    lines = list(csv.reader(io.StringIO(r.text)))
    assert len(lines) == 1 + 10 + 5 + 5 + 5 + 3  # header + every window of the day
    assert f.status_code == 200 and f.headers["content-type"] == "application/fhir+json"
    bundle = Bundle.model_validate_json(f.content)
    kinds = [e.resource.code.coding[0].code for e in bundle.entry if e.resource.__resource_type__ == "Observation"]
    assert kinds.count("8867-4") == 10 + 5 + 5 + 3 and kinds.count("131328") == 1  # noisy windows left out
    assert too_long.status_code == 422 and "31 days" in too_long.json()["detail"]


def test_csv_keeps_every_measured_field() -> None:
    row = SummaryRow(*window(T, 72.0, 14.0).__dict__.values())
    full = SummaryRow(**(row.__dict__ | {"pnn50": 12.5, "pause_max": 2.25, "ectopic": 3, "steps": 41,
                                          "posture_changes": 2, "fall": True}))  # fmt: skip
    lines = list(csv.reader(io.StringIO("".join(summaries_csv([full, row])))))
    named = [dict(zip(lines[0], line)) for line in lines[1:]]
    measured = ("pnn50_pct", "pause_max_s", "ectopic_beats", "steps", "posture_changes", "fall")
    assert {k: named[0][k] for k in measured} == {
        "pnn50_pct": "12.5", "pause_max_s": "2.25", "ectopic_beats": "3", "steps": "41", "posture_changes": "2",
        "fall": "true",
    }  # fmt: skip
    assert (named[1]["pnn50_pct"], named[1]["steps"], named[1]["fall"]) == ("", "", "false")
