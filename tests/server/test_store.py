"""Migrations and the people side of the store."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import psycopg
import pytest

from server.store import (
    MIGRATIONS_DIR, StoreError, add_patient, add_user, assign_patient, authenticate, can_see, create_session, end_session,
    migrate, session_user,
)  # fmt: skip
from tests.fix_db import scratch_database

pytestmark = pytest.mark.db


def test_migrate_is_idempotent(db_url: str) -> None:
    assert migrate(db_url) == []


def test_concurrent_migrations_apply_each_once(pg_server_url: str) -> None:
    with scratch_database(pg_server_url, "pisces_mig") as url, ThreadPoolExecutor(3) as pool:
        results = list(pool.map(migrate, [url] * 3))
        numbers = sorted({int(p.name.split("_", 1)[0]) for p in MIGRATIONS_DIR.glob("*.sql")})
        assert sorted(results) == [[], [], numbers]
        with psycopg.connect(url) as conn:
            assert conn.execute("SELECT count(*) FROM schema_migrations").fetchone() == (len(numbers),)


def test_users_sessions_and_care(db: psycopg.Connection, device_id: str) -> None:
    uid = add_user(db, f"nurse-{device_id}", "s3cret!")
    pid = add_patient(db, "Ann", device_id)
    other = add_patient(db, "Bob", f"{device_id}-b")
    assign_patient(db, f"nurse-{device_id}", pid)
    assign_patient(db, f"nurse-{device_id}", pid)  # idempotent
    user = authenticate(db, f"nurse-{device_id}", "s3cret!")
    assert user is not None and user.id == uid and user.role == "clinician"
    assert authenticate(db, f"nurse-{device_id}", "wrong") is None
    assert authenticate(db, "nobody", "s3cret!") is None
    assert can_see(db, user, pid) and not can_see(db, user, other)
    token, _ = create_session(db, uid, hours=1)
    assert session_user(db, token) == user
    end_session(db, token)
    assert session_user(db, token) is None
    with pytest.raises(StoreError):
        add_user(db, "x", "y", role="root")
    with pytest.raises(StoreError):
        assign_patient(db, "nobody", pid)
