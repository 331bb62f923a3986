"""Erasure on request: every table holding the patient's rows is emptied of them (found in the catalog),
the audit log and the erasure record are kept with the patient as a pseudonym, sessions with access
are closed, the device's broker credentials and retained config go; and every table of the schema is
classified, so a table holding patient data is never left out by accident.
"""

from __future__ import annotations

import secrets
import time
from datetime import datetime, timezone
from pathlib import Path

import psycopg
import pytest
from psycopg import sql

from server import cli, consent, credentials, phone_config
from server.consent import PURPOSES
from server.erasure import ErasureError, device_cleanup, erase_patient
from server.ingest import handle_message, rule_config
from server.patient_tables import KEEP, KEPT_RECORDS, NO_PATIENT_DATA, discover, schema_tables
from server.retention import run_retention
from server.settings import ServerSettings
from server.store import User, add_user, authenticate, migrate, refresh_rollups
from tests.fix_db import scratch_database
from tests.server.helpers import mqtt_client, wait_for
from tests.server.patient_data import PASSWORD, Filled, fill_patient
from tests.server.test_api import World, client, world  # noqa: F401 - `world` is a fixture
from tests.server.test_store_timeseries import own_timescale  # noqa: F401 - a fixture (skips without TimescaleDB)
from wire import Kind, Summary, SummaryWindow, encode, topic_for

pytestmark = pytest.mark.db

T0 = 1_766_000_000.0  # 2025-12-17, apart from the other tests' data


def unclassified(conn: psycopg.Connection) -> set[str]:
    """Tables that are neither erased (discovered), kept, declared free of patient data, nor ``patients``."""
    discovered = {s.table for s in discover(conn)}
    return set(schema_tables(conn)) - discovered - set(KEEP) - set(NO_PATIENT_DATA) - {"patients"}


def admin(conn: psycopg.Connection) -> User:
    name = f"adm-{secrets.token_hex(3)}"
    return User(add_user(conn, name, PASSWORD, "admin"), name, "admin")


def traces(conn: psycopg.Connection, needles: tuple[str, ...], skip: set[str]) -> list[str]:
    """``table.column`` of every text, JSON or array column outside ``skip`` holding one of the needles."""
    columns = conn.execute(
        "SELECT table_name, column_name FROM information_schema.columns WHERE table_schema = current_schema()"
        " AND data_type IN ('text', 'character varying', 'jsonb', 'json', 'ARRAY') ORDER BY 1, 2"
    ).fetchall()
    found = []
    for table, column in columns:
        if table in skip or table not in schema_tables(conn):
            continue
        for needle in needles:
            query = sql.SQL("SELECT count(*) FROM {} WHERE strpos({}::text, %s) > 0").format(
                sql.Identifier(table), sql.Identifier(column))
            if conn.execute(query, (needle,)).fetchone()[0]:  # type: ignore[index]
                found.append(f"{table}.{column}")
    return found


def patient_counts(conn: psycopg.Connection, f: Filled) -> dict[str, int]:
    args = {"patient": f.patient_id, "device": f.device_id}
    counted = {s.table: conn.execute(s.select("count(*)"), args).fetchone() for s in discover(conn)}
    return {table: row[0] if row else 0 for table, row in counted.items()}


def test_every_table_of_the_schema_is_classified(db_url: str) -> None:
    with psycopg.connect(db_url) as conn:
        assert unclassified(conn) == set()
        discovered = {s.table for s in discover(conn)}
    assert not discovered & (set(KEEP) | set(NO_PATIENT_DATA))
    assert {"summaries", "events", "strips", "alerts", "alert_history", "dead_letters", "uplink_messages"} <= discovered


def test_a_table_added_later_is_erased_or_else_fails_the_classification(pg_server_url: str) -> None:
    with scratch_database(pg_server_url, "pisces_erasure") as url:
        migrate(url, timescale=False)
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute("CREATE TABLE later_forms (id bigserial PRIMARY KEY, patient_id bigint REFERENCES patients(id),"
                         " purpose text)")  # fmt: skip
            conn.execute("CREATE TABLE later_form_events (form_id bigint REFERENCES later_forms(id), note text)")
            assert unclassified(conn) == set()  # both found: one by patient_id, one by its foreign key
            f = fill_patient(conn, T0)
            consent = conn.execute("INSERT INTO later_forms (patient_id, purpose) VALUES (%s, 'research') RETURNING id",
                                   (f.patient_id,)).fetchone()[0]  # type: ignore[index]
            conn.execute("INSERT INTO later_form_events VALUES (%s, 'granted')", (consent,))
            done = erase_patient(conn, f.patient_id, admin(conn), "asked", f.device_id)
            assert done.erased["later_forms"] == 1 and done.erased["later_form_events"] == 1
            conn.execute("CREATE TABLE caregiver_notes (patient_ref bigint, note text)")  # names the patient oddly
            assert unclassified(conn) == {"caregiver_notes"}


def test_erasure_deletes_the_patients_rows_keeps_the_audit_and_records_it(
    db_url: str, mqtt_url: str, tmp_path: Path
) -> None:
    password_file = tmp_path / "passwd"
    with psycopg.connect(db_url, autocommit=True) as conn:
        gone, other = fill_patient(conn, T0 + 100), fill_patient(conn, T0 + 200)
        before, other_before = patient_counts(conn, gone), patient_counts(conn, other)
        audit_before = conn.execute("SELECT count(*) FROM audit_log WHERE patient_id = %s",
                                    (gone.patient_id,)).fetchone()  # fmt: skip
        credentials.add_device(password_file, gone.device_id)
        credentials.add_device(password_file, other.device_id)
        publish_retained_config(mqtt_url, gone.device_id)
        boss = admin(conn)
        settings = ServerSettings(database_url=db_url, mqtt_url=mqtt_url, mqtt_client_id=f"erase-{gone.device_id}")
        done = erase_patient(conn, gone.patient_id, boss, "the patient asked (GDPR art. 17)", gone.device_id,
                             device_step=device_cleanup(settings, password_file))  # fmt: skip
        after, other_after = patient_counts(conn, gone), patient_counts(conn, other)
        row = conn.execute("SELECT name, device_id, erased_at IS NOT NULL FROM patients WHERE id = %s",
                           (gone.patient_id,)).fetchone()  # fmt: skip
        audit_rows = conn.execute("SELECT action FROM audit_log WHERE patient_id = %s ORDER BY id",
                                  (gone.patient_id,)).fetchall()  # fmt: skip
        sessions = dict(conn.execute("SELECT u, (SELECT count(*) FROM sessions WHERE user_id = u)"
                                     " FROM unnest(%s::bigint[]) AS u",
                                     ([gone.clinician_id, other.clinician_id, gone.caregiver_id],)))
        account = conn.execute("SELECT username, password_hash FROM users WHERE username LIKE %s",
                               (f"erased-user-%",)).fetchall()  # fmt: skip
        signs_in = authenticate(conn, gone.account, PASSWORD)
        consents_now = {c.purpose: c.granted for c in consent.current(conn, gone.patient_id)}
        configs_due = {d.patient_id for d in phone_config.due_configs(conn, time.time())}  # no phone to configure
        left = traces(conn, (gone.device_id, gone.name), set(KEEP))
        stored = conn.execute("SELECT reason, erased, kept, device FROM erasures WHERE id = %s", (done.id,)).fetchone()
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            conn.execute("UPDATE erasures SET reason = 'edited' WHERE id = %s", (done.id,))
    erased = set(after) - set(KEPT_RECORDS)
    assert {t: after[t] for t in erased} == dict.fromkeys(erased, 0), after
    assert after["consents"] == before["consents"] + len(PURPOSES)  # the record, ending in withdrawals
    assert consents_now == dict.fromkeys(PURPOSES, False) and gone.patient_id not in configs_due
    assert other_after == other_before
    assert done.erased == {t: n for t, n in before.items() if t in erased}
    assert done.erased["summaries"] == gone.windows and done.erased["caregivers"] == 1
    assert row == ("[erased]", f"erased:{gone.patient_id}", True)
    assert len(audit_rows) == audit_before[0] + 1 and audit_rows[-1] == ("erase:patient",)  # type: ignore[index]
    assert sessions == {gone.clinician_id: 0, other.clinician_id: 1, gone.caregiver_id: 0}
    assert done.sessions_closed == 2
    assert signs_in is None and ("!",) == tuple({h for _, h in account})  # her own account, pseudonymised
    assert left == [], f"the erased patient's name or device id is still in {left}"
    assert stored is not None and stored[0] == done.reason and stored[1] == done.erased
    assert set(stored[2]) == {"audit_log", "erasures", "consents"}
    assert stored[3] == {"credentials": "revoked", "retained_config": "cleared"}
    assert set(credentials.read_users(password_file)) == {other.device_id}
    assert retained_config(mqtt_url, gone.device_id) is None


def rollups_of(conn: psycopg.Connection, patient_id: int) -> tuple[int, int]:
    """The patient's 1-minute and 1-hour rollup rows, as the portal reads them."""
    row = conn.execute("SELECT (SELECT count(*) FROM summary_1m WHERE patient_id = %(p)s),"
                       " (SELECT count(*) FROM summary_1h WHERE patient_id = %(p)s)", {"p": patient_id}).fetchone()
    assert row is not None
    return row[0], row[1]


def test_erasure_on_timescaledb_removes_the_rollups_also_of_windows_retention_dropped(
    own_timescale: str,  # noqa: F811
) -> None:
    """The continuous aggregates keep the rollups of windows that retention dropped (their buckets are
    never refreshed again), so no refresh can take the patient's out of them: the erasure must."""
    now, old = time.time(), (time.time() - 400 * 86400) // 3600 * 3600  # 12 windows: 2 minutes of one hour
    with psycopg.connect(own_timescale, autocommit=True) as conn:
        gone, other = fill_patient(conn, old, people=False), fill_patient(conn, old)
        recent = Summary(gone.device_id, 100, (SummaryWindow(start=now - 7200, end=now - 7190, beats=12, quality=0.9),))
        handle_message(conn, topic_for(gone.device_id, Kind.SUMMARY), encode(recent), rule_config(ServerSettings()))
        refresh_rollups(conn)  # the recent window is materialised too, as the policy would have done
        (kept,) = run_retention(conn, {"summaries": 30}, datetime.now(timezone.utc))
        windows = conn.execute("SELECT count(*) FROM summaries WHERE patient_id = %s", (gone.patient_id,)).fetchone()
        before, other_before = rollups_of(conn, gone.patient_id), rollups_of(conn, other.patient_id)
        done = erase_patient(conn, gone.patient_id, admin(conn), "asked", gone.device_id)
        refresh_rollups(conn)  # whatever a later refresh does, the rollups stay as the erasure left them
        after, other_after = rollups_of(conn, gone.patient_id), rollups_of(conn, other.patient_id)
    assert kept.dropped and windows == (1,) and done.erased["summaries"] == 1
    assert before == (2 + 1, 1 + 1) and other_before == (2, 1)
    assert after == (0, 0) and other_after == other_before


def publish_retained_config(url: str, device: str) -> None:
    c = mqtt_client(url)
    try:
        c.publish(topic_for(device, Kind.CONFIG), b'{"limits": "hers"}', qos=1, retain=True).wait_for_publish(5)
    finally:
        c.disconnect()
        c.loop_stop()
    assert retained_config(url, device) == b'{"limits": "hers"}'


def retained_config(url: str, device: str) -> bytes | None:
    """The retained config message of a device, or None once the broker confirmed the subscription without one."""
    got: list[bytes] = []
    granted: list[bool] = []
    c = mqtt_client(url)
    c.on_message = lambda _c, _u, msg: got.append(msg.payload)
    c.on_subscribe = lambda *_: granted.append(True)
    try:
        c.subscribe(topic_for(device, Kind.CONFIG), qos=1)
        wait_for(lambda: granted, what="subscription granted")
        time.sleep(0.3)  # a retained message follows the SUBACK at once
    finally:
        c.disconnect()
        c.loop_stop()
    return got[0] if got else None


def test_refusals_change_nothing(db_url: str) -> None:
    with psycopg.connect(db_url, autocommit=True) as conn:
        f = fill_patient(conn, T0 + 300)
        before = patient_counts(conn, f)
        boss = admin(conn)
        cases = [
            ({"confirm_device": "someone-else"}, 422, "confirm_device"),
            ({"reason": "  "}, 422, "reason"),
            ({"keep": ["no_such_table"]}, 422, "erasure_keep"),
            ({"keep": ["alert_history"]}, 422, "refer to erased"),  # its alerts would go
            ({"patient_id": 2**62}, 404, "no patient"),
        ]
        for change, status, words in cases:
            kwargs = {"patient_id": f.patient_id, "user": boss, "reason": "asked", "confirm_device": f.device_id}
            with pytest.raises(ErasureError, match=words) as caught:
                erase_patient(conn, **(kwargs | change))  # type: ignore[arg-type]
            assert caught.value.status == status
        assert patient_counts(conn, f) == before
        kept = erase_patient(conn, f.patient_id, boss, "asked", f.device_id, keep=["alerts"])
        with pytest.raises(ErasureError, match="was erased") as again:
            erase_patient(conn, f.patient_id, boss, "asked", f"erased:{f.patient_id}")
        left = patient_counts(conn, f)
    assert again.value.status == 409
    assert kept.kept["alerts"].startswith("configured")
    assert kept.kept["alert_history"] == "belongs to kept rows of alerts"
    assert left["alerts"] == 1 and left["alert_history"] == 1 and left["summaries"] == 0
    assert "alerts" not in kept.erased and kept.erased["events"] == 3


def test_erasure_over_http_is_for_admins_and_hides_the_patient(world: World) -> None:  # noqa: F811
    with psycopg.connect(world.db_url, autocommit=True) as conn:
        f = fill_patient(conn, T0 + 400)
    body = {"reason": "asked by the patient", "confirm_device": f.device_id}
    with client(world, f.clinician) as doc, client(world, world.admin) as adm:
        assert doc.post(f"/api/patients/{f.patient_id}/erase", json=body).status_code == 403
        assert adm.get(f"/api/patients/{f.patient_id}").status_code == 200
        done = adm.post(f"/api/patients/{f.patient_id}/erase", json=body)
        twice = adm.post(f"/api/patients/{f.patient_id}/erase", json=body)
        hidden = [adm.get(f"/api/patients/{f.patient_id}").status_code,
                  adm.get(f"/api/patients/{f.patient_id}/export.zip").status_code]  # fmt: skip
        listed = adm.get("/api/patients").json()
        record = adm.get("/api/erasures").json()
        signed_out = doc.get("/api/auth/me").status_code
    assert done.status_code == 200, done.text
    assert done.json()["erased"]["summaries"] == f.windows and done.json()["requested_by"] == world.admin
    assert twice.status_code == 409 and hidden == [404, 404]
    assert f.patient_id not in [p["id"] for p in listed]
    assert record[0]["id"] == done.json()["id"] and record[0]["reason"] == "asked by the patient"
    assert signed_out == 401  # the clinician's session could read the patient: closed


def test_the_cli_exports_and_erases(db_url: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
                                    capsys: pytest.CaptureFixture[str]) -> None:  # fmt: skip
    with psycopg.connect(db_url, autocommit=True) as conn:
        f = fill_patient(conn, T0 + 500)
        boss = admin(conn)
    monkeypatch.setenv("PISCES_DATABASE_URL", db_url)
    monkeypatch.delenv("PISCES_MQTT_URL", raising=False)
    out = tmp_path / "all.zip"
    out.write_bytes(b"an older file, world-readable")
    out.chmod(0o644)
    assert cli.main(["patients", "export", str(f.patient_id), "--by", boss.username, "--out", str(out)]) == 0
    assert out.stat().st_size > 1000
    assert out.stat().st_mode & 0o777 == 0o600  # a health record: its owner's only
    assert cli.main(["patients", "erase", str(f.patient_id), "--by", f.clinician, "--reason", "x",
                     "--confirm-device", f.device_id]) == 2  # not an admin  # fmt: skip
    assert cli.main(["patients", "erase", str(f.patient_id), "--by", boss.username, "--reason", "asked",
                     "--confirm-device", f.device_id]) == 0  # fmt: skip
    shown = capsys.readouterr()
    assert "is not an admin account" in shown.err and '"summaries": 12' in shown.out
    with psycopg.connect(db_url) as conn:
        actions = conn.execute("SELECT a.action, u.username FROM audit_log a JOIN users u ON u.id = a.user_id"
                               " WHERE a.patient_id = %s ORDER BY a.id", (f.patient_id,)).fetchall()  # fmt: skip
    assert actions[-2:] == [("export:all", boss.username), ("erase:patient", boss.username)]
