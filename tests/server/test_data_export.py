"""The whole-record export: one zip with CSV per table, JSON, a FHIR R4 Bundle and WFDB strips.

The Bundle is validated with fhir.resources (R4B models), the strips are read back
with the ``wfdb`` package (an independent reader), and the archive is checked
against the database table by table.
"""

from __future__ import annotations

import csv
import io
import json
import time
import tracemalloc
import zipfile
from collections import Counter
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import psycopg
import pytest
import wfdb
from fhir.resources.R4B.bundle import Bundle

from server import wfdb_writer
from server.data_export import CHUNK, ExportError, export_archive
from server.patient_tables import discover
from server.records import ensure_partitions
from tests.server.patient_data import STRIP_SAMPLES, Filled, fill_patient
from tests.server.test_api import World, client, world  # noqa: F401 - `world` is a fixture

pytestmark = pytest.mark.db

UTC = timezone.utc
T0 = 1_765_000_000.0  # 2025-12-06, apart from the other tests' data


def archive(conn: psycopg.Connection, patient_id: int) -> zipfile.ZipFile:
    data = b"".join(export_archive(conn, patient_id, "tester", "a test", datetime.now(UTC), 0.5))
    return zipfile.ZipFile(io.BytesIO(data))


def text(zf: zipfile.ZipFile) -> str:
    return "\n".join(zf.read(n).decode("utf-8", "replace") for n in zf.namelist() if not n.endswith(".dat"))


def test_every_table_of_the_patient_is_in_the_archive_and_nothing_of_another(db_url: str) -> None:
    with psycopg.connect(db_url, autocommit=True) as conn:
        mine, other = fill_patient(conn, T0), fill_patient(conn, T0 + 500)
        zf = archive(conn, mine.patient_id)
        scopes = discover(conn)
        args = {"patient": mine.patient_id, "device": mine.device_id}
        stored = {s.table: conn.execute(s.select("count(*)"), args).fetchone()[0] for s in scopes}  # type: ignore[index]
    manifest = json.loads(zf.read("manifest.json"))
    rows = {f["table"]: f["rows"] for f in manifest["files"] if "table" in f}
    for table, count in stored.items():  # the rollups too: retention may have dropped the windows they sum
        lines = list(csv.reader(io.StringIO(zf.read(f"tables/{table}.csv").decode())))
        assert rows[table] == count == len(lines) - 1, table
    assert rows["summaries"] == mine.windows and rows["alert_history"] == 1 and rows["audit_log"] >= 1
    assert rows["summary_1m"] > 0 and rows["summary_1h"] > 0
    assert manifest["requested_by"] == "tester" and manifest["reason"] == "a test"
    patient = json.loads(zf.read("patient.json"))
    assert patient["patient"]["device_id"] == mine.device_id and patient["home"] == {"lat": 46.05, "lon": 14.51}
    assert [m["username"] for m in patient["care_team"]] == [mine.clinician]
    everything = text(zf)
    assert mine.device_id in everything and other.device_id not in everything and other.name not in everything


def test_the_bundle_is_valid_fhir_with_everything_fhir_has_a_resource_for(db_url: str) -> None:
    with psycopg.connect(db_url, autocommit=True) as conn:
        filled = fill_patient(conn, T0 + 1000)
        zf = archive(conn, filled.patient_id)
    bundle = Bundle.model_validate_json(zf.read("fhir/bundle.json"))
    kinds = Counter(e.resource.__resource_type__ for e in bundle.entry)
    assert kinds == {"Patient": 1, "Observation": 2 * filled.windows + 3, "Flag": 1}
    texts = Counter(e.resource.code.text for e in bundle.entry if e.resource.__resource_type__ != "Patient")
    assert texts["Patient-marked symptom period"] == 1 and texts["Panic button pressed"] == 1
    assert texts["red alert: panic"] == 1 and texts["Heart rate"] == filled.windows
    symptom = next(e.resource for e in bundle.entry if getattr(e.resource, "code", None)
                   and e.resource.code.text == "Patient-marked symptom period")  # fmt: skip
    assert symptom.valueString == "palpitations" and symptom.component[0].valueInteger == 3
    strip = next(e.resource for e in bundle.entry if getattr(e.resource, "valueSampledData", None))
    assert [int(v) for v in strip.valueSampledData.data.split()] == list(STRIP_SAMPLES)
    assert len({e.fullUrl for e in bundle.entry}) == len(bundle.entry)


def test_strips_read_back_with_wfdb_give_the_same_samples(db_url: str, tmp_path: Path) -> None:
    with psycopg.connect(db_url, autocommit=True) as conn:
        filled = fill_patient(conn, T0 + 2000)
        zf = archive(conn, filled.patient_id)
    names = zf.read("ecg/RECORDS").decode().split()
    assert names == [f"{filled.device_id}_5"]
    zf.extractall(tmp_path, [n for n in zf.namelist() if n.startswith("ecg/")])
    record = wfdb.rdrecord(str(tmp_path / "ecg" / names[0]), physical=False)
    assert record.fs == 250 and record.sig_name == ["ECG panic"] and record.units == ["mV"]
    assert record.d_signal[:, 0].tolist() == list(STRIP_SAMPLES)
    assert record.base_datetime == datetime.fromtimestamp(T0 + 2000 + 40, UTC).replace(tzinfo=None)
    physical = wfdb.rdrecord(str(tmp_path / "ecg" / names[0]))
    assert np.allclose(physical.p_signal[:, 0] * 1000, STRIP_SAMPLES)


def test_the_wfdb_writer_round_trips_the_int16_range(tmp_path: Path) -> None:
    samples = [-32768, -1, 0, 1, 32767, 1200, -300]
    start = datetime(2026, 3, 4, 5, 6, 7, 890_000, tzinfo=UTC)
    for name, data in wfdb_writer.strip_record("dev-1_9", 130.0, samples, start).items():
        (tmp_path / name).write_bytes(data)
    record = wfdb.rdrecord(str(tmp_path / "dev-1_9"), physical=False)
    assert record.d_signal[:, 0].tolist() == samples and record.fs == 130
    assert record.checksum == [wfdb_writer.checksum(samples)] == [(sum(samples) + 32768) % 65536 - 32768]
    assert record.base_datetime == datetime(2026, 3, 4, 5, 6, 7, 890_000)
    with pytest.raises(ValueError, match="int16"):
        wfdb_writer.signal_file([40_000])
    with pytest.raises(ValueError, match="record name"):
        wfdb_writer.record_name("dev/1", 2)


def test_a_long_record_streams_in_pieces_with_bounded_memory(db_url: str) -> None:
    windows = 12_000  # 1.4 days of 10-s windows; its FHIR text alone is ~12 MB
    with psycopg.connect(db_url, autocommit=True) as conn:
        filled = fill_patient(conn, T0 + 10_000, windows=1)
        start = datetime.fromtimestamp(T0 + 20_000, UTC)
        ensure_partitions(conn, {datetime.fromtimestamp(T0 + 20_000 + d * 86400, UTC).date() for d in range(3)})
        conn.execute(
            "INSERT INTO summaries (patient_id, device_id, seq, idx, start_at, end_at, beats, hr_mean, resp_rate,"
            " activity, quality) SELECT %s, %s, 1000, i, %s + i * interval '10 s', %s + (i + 1) * interval '10 s',"
            " 12, 70 + i %% 20, 15, 'rest', 0.9 FROM generate_series(0, %s - 1) AS i",
            (filled.patient_id, filled.device_id, start, start, windows),
        )  # fmt: skip
        tracemalloc.start()
        try:
            sizes = [len(p) for p in export_archive(conn, filled.patient_id, "t", None, datetime.now(UTC), 0.5)]
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
    assert len(sizes) > 10 and max(sizes) < 4 * CHUNK, (len(sizes), max(sizes))
    assert peak < 8_000_000, f"peak {peak} bytes while exporting {windows} windows"


def test_an_unknown_patient_is_refused(db_url: str) -> None:
    with psycopg.connect(db_url, autocommit=True) as conn, pytest.raises(ExportError, match="no patient"):
        b"".join(export_archive(conn, 2**62, "t", None, datetime.now(UTC), 0.5))


def test_the_archive_over_http_is_audited_with_the_reason(world: World) -> None:  # noqa: F811
    with psycopg.connect(world.db_url, autocommit=True) as conn:
        filled: Filled = fill_patient(conn, T0 + 3000)
    with client(world, filled.clinician) as c:
        reply = c.get(f"/api/patients/{filled.patient_id}/export.zip", headers={"X-Access-Reason": "patient asked"})
        too_long = c.get(f"/api/patients/{filled.patient_id}/export.zip", headers={"X-Access-Reason": "x" * 201})
    assert reply.status_code == 200 and reply.headers["content-type"] == "application/zip"
    assert "attachment" in reply.headers["content-disposition"]
    zf = zipfile.ZipFile(io.BytesIO(reply.content))
    assert json.loads(zf.read("manifest.json"))["requested_by"] == filled.clinician
    assert too_long.status_code == 422 and "X-Access-Reason" in too_long.json()["detail"]
    with psycopg.connect(world.db_url) as conn:
        rows = conn.execute("SELECT action, reason FROM audit_log WHERE patient_id = %s AND action = 'export:all'",
                            (filled.patient_id,)).fetchall()  # fmt: skip
    assert rows == [("export:all", "patient asked")]
