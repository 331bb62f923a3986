"""A patient's entire data as one zip archive in open formats, written as a stream.

Layout of the archive::

    manifest.json                 format, patient, who asked and why, when, every file with its rows
    patient.json                  the patient record, care team and home location
    tables/<table>.csv            every row of every table holding the patient's data (found in the
                                  catalog, :mod:`server.patient_tables`), all columns, a header line;
                                  times ISO 8601 in UTC, arrays as PostgreSQL {a,b}, JSON as text;
                                  tables/audit_log.csv: who read or changed the data, when and why
    fhir/bundle.json              HL7 FHIR R4 collection Bundle: Patient, heart/respiratory rate
                                  Observations of usable windows, symptom periods, panics, alerts
                                  (Flag), ECG strips (SampledData) - :mod:`server.exports`
    ecg/RECORDS, ecg/<device>_<seq>.hea/.dat   ECG strips as PhysioNet WFDB records (format 16)

:func:`export_archive` reads everything in one REPEATABLE READ snapshot and
yields the zip in pieces of about :data:`CHUNK` bytes: tables stream through
``COPY ... TO STDOUT``, windows and strips through server-side cursors, so a
year of data never sits in memory. Who may ask is the caller's business (the
API: the patient's clinician or an admin; the CLI: an operator naming an admin).
"""

from __future__ import annotations

import io
import json
import zipfile
from collections.abc import Iterable, Iterator
from dataclasses import asdict
from datetime import datetime, timezone
from typing import Any

import psycopg
from psycopg import sql
from psycopg.rows import class_row

from server import exports, wfdb_writer
from server.patient_tables import Scope, discover
from server.records import ROLLUPS
from server.queries import STRIP_DATA_SELECT, SUMMARY_SELECT, PatientRow, SummaryRow, patient_by_id, strip_data

FORMAT = "pisces-export/1"
CHUNK = 64 * 1024  # bytes handed to the client at a time
CURSOR_ROWS = 2000  # rows per round trip of the server-side cursors
AUDIT_SELECT = (
    "SELECT a.id, a.at, u.username, u.role, a.action, a.reason, a.detail FROM audit_log a"
    " JOIN users u ON u.id = a.user_id WHERE a.patient_id = %(patient)s ORDER BY a.id"
)


class ExportError(Exception):
    """The archive cannot be made, e.g. for an unknown patient."""


class _Spool(io.RawIOBase):
    """A write-only sink for :class:`zipfile.ZipFile` that hands back what was written (not seekable)."""

    def __init__(self) -> None:
        super().__init__()
        self._parts: list[bytes] = []
        self.size = 0

    def writable(self) -> bool:
        return True

    def write(self, data: Any) -> int:
        self._parts.append(bytes(data))
        self.size += len(data)
        return len(data)

    def drain(self) -> bytes:
        out = b"".join(self._parts)
        self._parts.clear()
        self.size = 0
        return out


def export_archive(conn: psycopg.Connection[Any], patient_id: int, requested_by: str, reason: str | None,
                   now: datetime, usable_quality: float) -> Iterator[bytes]:  # fmt: skip
    """The archive of one patient, in pieces; ``conn`` (autocommit, not shared) is busy until it is consumed.

    Args:
        requested_by: who asked (a username), written to the manifest.
        reason: why, if given (the manifest; the audit row is the caller's).
        now: the export's time stamp.
        usable_quality: windows below it give no FHIR vitals (0..1), as in the period export.

    Raises:
        ExportError: no such patient (raised on the first piece).
    """
    with conn.transaction():
        conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
        conn.execute("SET LOCAL TimeZone = 'UTC'")
        conn.execute("SET LOCAL DateStyle = 'ISO, YMD'")
        patient = patient_by_id(conn, patient_id)
        if patient is None:
            raise ExportError(f"no patient {patient_id} (or erased)")
        spool = _Spool()
        files: list[dict[str, Any]] = []
        with zipfile.ZipFile(spool, "w", zipfile.ZIP_DEFLATED) as archive:
            for name, pieces, meta in _members(conn, patient, usable_quality, now):
                with archive.open(name, "w", force_zip64=True) as member:
                    for piece in pieces:
                        member.write(piece)
                        if spool.size >= CHUNK:
                            yield spool.drain()
                files.append({"name": name} | meta)
            manifest = {"format": FORMAT, "patient_id": patient_id,
                        "generated_at": now.astimezone(timezone.utc).isoformat(),
                        "requested_by": requested_by, "reason": reason, "files": files}  # fmt: skip
            archive.writestr("manifest.json", json.dumps(manifest, indent=2, default=str))
        yield spool.drain()


Member = tuple[str, Iterable[bytes], dict[str, Any]]


def _members(conn: psycopg.Connection[Any], patient: PatientRow, usable_quality: float,
             now: datetime) -> Iterator[Member]:  # fmt: skip
    args = {"patient": patient.id, "device": patient.device_id}
    yield "patient.json", [_patient_json(conn, patient)], {"format": "json", "what": "the patient record"}
    patients = Scope("patients", "id = %(patient)s", "id", 0)
    scopes = discover(conn)
    # The rollups too: retention may have dropped the windows they sum. On TimescaleDB they are continuous
    # aggregates (views), which the catalog walk does not list.
    found = {s.table for s in scopes}
    views = [Scope(name, "patient_id = %(patient)s", "patient_id", 0) for name, _ in ROLLUPS if name not in found]
    for scope in [patients, *scopes, *views]:
        rows = conn.execute(scope.select("count(*)"), args).fetchone()
        yield (f"tables/{scope.table}.csv", _copy_csv(conn, scope.select(), args),
               {"format": "csv", "table": scope.table, "rows": rows[0] if rows else 0})  # fmt: skip
    audit_rows = conn.execute(f"SELECT count(*) FROM ({AUDIT_SELECT}) a", args).fetchone()
    yield ("tables/audit_log.csv", _copy_csv(conn, sql.SQL(AUDIT_SELECT), args),
           {"format": "csv", "table": "audit_log", "rows": audit_rows[0] if audit_rows else 0})  # fmt: skip
    counter: dict[str, int] = {}
    bundle = exports.fhir_bundle_text(_counted(_fhir_resources(conn, patient, usable_quality), counter), now)
    yield "fhir/bundle.json", (text.encode() for text in bundle), {"format": "fhir-r4-bundle", "entries": counter}
    names: list[str] = []
    for strip in _strips(conn, patient.id):
        name = wfdb_writer.record_name(strip.info.device_id, strip.info.seq)
        names.append(name)
        record = wfdb_writer.strip_record(name, strip.info.fs, strip.samples_uv, strip.info.start,
                                          f"ECG {strip.info.reason}")  # fmt: skip
        for file_name, data in record.items():
            yield f"ecg/{file_name}", [data], {"format": "wfdb", "samples": len(strip.samples_uv)}
    yield "ecg/RECORDS", ["".join(f"{n}\n" for n in names).encode()], {"format": "wfdb", "records": len(names)}


def _patient_json(conn: psycopg.Connection[Any], patient: PatientRow) -> bytes:
    team = conn.execute(
        "SELECT u.username, u.role, c.contact_rank FROM care_assignments c JOIN users u ON u.id = c.user_id"
        " WHERE c.patient_id = %s ORDER BY c.contact_rank, u.username", (patient.id,),
    ).fetchall()  # fmt: skip
    home = conn.execute("SELECT lat, lon FROM patient_homes WHERE patient_id = %s", (patient.id,)).fetchone()
    care_team = [{"username": u, "role": r, "contact_rank": k} for u, r, k in team]
    body = {"patient": asdict(patient), "care_team": care_team,
            "home": {"lat": home[0], "lon": home[1]} if home else None}  # fmt: skip
    return json.dumps(body, indent=2, default=str).encode()


def _copy_csv(conn: psycopg.Connection[Any], query: sql.Composable, args: dict[str, Any]) -> Iterator[bytes]:
    statement = sql.SQL("COPY ({}) TO STDOUT WITH (FORMAT csv, HEADER)").format(query)
    with conn.cursor().copy(statement, args) as copy:
        for data in copy:
            yield bytes(data)


def _counted(resources: Iterator[dict[str, Any]], counter: dict[str, int]) -> Iterator[dict[str, Any]]:
    for resource in resources:
        counter[resource["resourceType"]] = counter.get(resource["resourceType"], 0) + 1
        yield resource


def _cursor_rows(conn: psycopg.Connection[Any], query: str, args: tuple[Any, ...]) -> Iterator[tuple[Any, ...]]:
    """Rows of ``query`` through a server-side cursor, :data:`CURSOR_ROWS` at a time."""
    with conn.cursor(name="pisces_export") as cur:
        cur.itersize = CURSOR_ROWS
        cur.execute(query, args)
        yield from cur


def _windows(conn: psycopg.Connection[Any], patient_id: int) -> Iterator[SummaryRow]:
    with conn.cursor(name="pisces_export_windows", row_factory=class_row(SummaryRow)) as cur:
        cur.itersize = CURSOR_ROWS
        cur.execute(f"{SUMMARY_SELECT} WHERE patient_id = %s ORDER BY start_at", (patient_id,))
        yield from cur


def _strips(conn: psycopg.Connection[Any], patient_id: int) -> Iterator[Any]:
    rows = _cursor_rows(conn, f"{STRIP_DATA_SELECT} WHERE patient_id = %s ORDER BY start_at, seq", (patient_id,))
    return (strip_data(row) for row in rows)


def _fhir_resources(conn: psycopg.Connection[Any], patient: PatientRow,
                    usable_quality: float) -> Iterator[dict[str, Any]]:  # fmt: skip
    person = exports.fhir_patient(patient)
    ref = f"urn:uuid:{person['id']}"
    yield person
    for window in _windows(conn, patient.id):
        if window.quality >= usable_quality:
            yield from exports.fhir_vitals(ref, window)
    periods = _cursor_rows(conn, "SELECT id, started_at, ended_at, tags, severity, note FROM symptom_periods"
                                 " WHERE patient_id = %s ORDER BY id", (patient.id,))  # fmt: skip
    yield from (exports.fhir_symptom_period(ref, *row) for row in periods)
    panics = _cursor_rows(conn, "SELECT device_id, seq, at FROM events WHERE patient_id = %s AND type = 'panic'"
                                " ORDER BY at", (patient.id,))  # fmt: skip
    yield from (exports.fhir_panic(ref, *row) for row in panics)
    alerts = _cursor_rows(conn, "SELECT id, level, parameter, state, opened_at, closed_at FROM alerts"
                                " WHERE patient_id = %s ORDER BY id", (patient.id,))  # fmt: skip
    yield from (exports.fhir_alert(ref, *row) for row in alerts)
    yield from (exports.fhir_strip(ref, strip) for strip in _strips(conn, patient.id))


def archive_name(patient_id: int, now: datetime) -> str:
    """The archive's file name, e.g. ``pisces-patient-7-20261201.zip``."""
    return f"pisces-patient-{patient_id}-{now.astimezone(timezone.utc):%Y%m%d}.zip"
