"""Which tables hold a patient's rows, found in the catalog, and how to select them.

Export and erasure both work from :func:`discover`, so a table another part of
the system adds later is exported and erased without a change here, provided it
names the patient the usual way:

- a ``patient_id`` column (or else a ``device_id`` column: the patient's phone);
- or a foreign key to such a table (``alert_history.alert_id -> alerts``), to any depth;
- ``dead_letters``, which names the device only in its topic, is the one listed by hand.

``patients`` itself is not in the list: an erasure keeps its row as a pseudonym
(:mod:`server.erasure`). :data:`KEEP` are tables an erasure never deletes from
(and that are not patient tables); :data:`KEPT_RECORDS` are patient tables it keeps;
:data:`NO_PATIENT_DATA` are the tables that hold none. Every table of the schema
must be in exactly one of: discovered, KEEP, NO_PATIENT_DATA, ``patients``
(tests/server/test_erasure.py fails otherwise, so a new table is classified on purpose).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import psycopg
from psycopg import sql

from wire.topics import PREFIX, VERSION

# Kept by every erasure, with the reason recorded in the erasure row.
KEEP: dict[str, str] = {
    "audit_log": "who read or changed the patient's data, kept as proof of lawful access (pseudonymised)",
    "erasures": "the record of the erasure itself",
}
# Patient tables an erasure keeps although they are exported with the rest (discovered as usual).
KEPT_RECORDS: dict[str, str] = {
    "consents": "what the patient agreed to and when: proof that the data were processed lawfully (pseudonymised)",
}
# Tables that hold no patient's data (the classification the erasure test checks).
NO_PATIENT_DATA: dict[str, str] = {
    "users": "portal accounts", "sessions": "sign-in sessions (an erasure closes the ones that could read the patient)",
    "schema_migrations": "applied migrations", "store_info": "engine facts", "alert_channels": "delivery targets",
    "weather_hourly": "weather per place and hour", "weather_rejects": "weather input lines refused",
    "retention_runs": "what retention removed, counts only",
    "caregiver_settings": "a caregiver's own quiet hours and time zone",
}  # fmt: skip
# Tables named by hand: (table, condition) for tables that name the patient in another way.
BY_HAND: dict[str, str] = {
    "dead_letters": f"starts_with(topic, '{PREFIX}/{VERSION}/' || %(device)s || '/')",
}
MAX_DEPTH = 5  # foreign-key chains below a patient table (alerts -> alert_history is 1)


@dataclass(frozen=True)
class Scope:
    """The rows of one table that belong to a patient.

    Attributes:
        table: the table's name (schema: the connection's current schema).
        where: SQL condition binding ``%(patient)s`` (patient id) and ``%(device)s`` (device id).
        via: how the table names the patient: ``patient_id``, ``device_id``, ``by hand`` or ``fk:<parent>``.
        depth: 0 for tables naming the patient themselves, n for n foreign keys below one.
    """

    table: str
    where: str
    via: str
    depth: int

    def delete(self) -> sql.Composed:
        """``DELETE FROM <table> WHERE <where>`` (parameters still to bind)."""
        return sql.SQL("DELETE FROM {} WHERE {}").format(sql.Identifier(self.table), sql.SQL(self.where))

    def select(self, columns: str = "*") -> sql.Composed:
        """``SELECT <columns> FROM <table> WHERE <where>`` (parameters still to bind)."""
        return sql.SQL("SELECT {} FROM {} WHERE {}").format(sql.SQL(columns), sql.Identifier(self.table),
                                                            sql.SQL(self.where))  # fmt: skip


def schema_tables(conn: psycopg.Connection[Any]) -> list[str]:
    """Every table of the current schema: ordinary, partitioned and hypertables, no partitions or chunks."""
    rows = conn.execute(
        "SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace"
        " WHERE n.nspname = current_schema() AND c.relkind IN ('r', 'p') AND NOT c.relispartition ORDER BY 1"
    ).fetchall()
    return [r[0] for r in rows]


def _columns(conn: psycopg.Connection[Any], tables: list[str]) -> dict[str, set[str]]:
    rows = conn.execute(
        "SELECT table_name, column_name FROM information_schema.columns"
        " WHERE table_schema = current_schema() AND table_name = ANY(%s)", (tables,),
    ).fetchall()  # fmt: skip
    out: dict[str, set[str]] = {t: set() for t in tables}
    for table, column in rows:
        out[table].add(column)
    return out


def _foreign_keys(conn: psycopg.Connection[Any]) -> list[tuple[str, list[str], str, list[str]]]:
    """``(child, child columns, parent, parent columns)`` of every foreign key within the schema."""
    rows = conn.execute(
        "SELECT c.conrelid::regclass::text, array_agg(a.attname ORDER BY k.i),"
        " c.confrelid::regclass::text, array_agg(af.attname ORDER BY k.i)"
        " FROM pg_constraint c CROSS JOIN LATERAL unnest(c.conkey, c.confkey) WITH ORDINALITY AS k(ck, fk, i)"
        " JOIN pg_attribute a ON a.attrelid = c.conrelid AND a.attnum = k.ck"
        " JOIN pg_attribute af ON af.attrelid = c.confrelid AND af.attnum = k.fk"
        " WHERE c.contype = 'f' AND c.connamespace = current_schema()::regnamespace"
        " GROUP BY c.oid, c.conrelid, c.confrelid"
    ).fetchall()
    return [(r[0], list(r[1]), r[2], list(r[3])) for r in rows]


def discover(conn: psycopg.Connection[Any]) -> list[Scope]:
    """Every table holding rows of a patient and how to select them, parents before children (by foreign key).

    Tables in :data:`KEEP` and :data:`NO_PATIENT_DATA` are left out (as is ``patients``).
    """
    tables = schema_tables(conn)
    skip = set(KEEP) | set(NO_PATIENT_DATA) | {"patients"}
    columns = _columns(conn, tables)
    scopes: dict[str, Scope] = {}
    for table in tables:
        if table in skip:
            continue
        if "patient_id" in columns[table]:
            scopes[table] = Scope(table, "patient_id = %(patient)s", "patient_id", 0)
        elif "device_id" in columns[table]:
            scopes[table] = Scope(table, "device_id = %(device)s", "device_id", 0)
        elif table in BY_HAND:
            scopes[table] = Scope(table, BY_HAND[table], "by hand", 0)
    keys = _foreign_keys(conn)
    for depth in range(1, MAX_DEPTH + 1):
        parents = {t: s for t, s in scopes.items() if s.depth == depth - 1}
        for child, child_cols, parent, parent_cols in keys:
            if parent in parents and child not in scopes and child not in skip:
                inner = parents[parent].select(", ".join(parent_cols)).as_string(conn)
                where = f"({', '.join(child_cols)}) IN ({inner})"
                scopes[child] = Scope(child, where, f"fk:{parent}", depth)
    return _parents_first(scopes, keys)


def _parents_first(scopes: dict[str, Scope], keys: list[tuple[str, list[str], str, list[str]]]) -> list[Scope]:
    """The scopes so that every table comes after each table it has a foreign key to (by (depth, name)
    among those free to come next): deleting in reverse then never breaks a key, even between two
    tables naming the patient themselves (``caregivers.invitation_id -> invitations``)."""
    parents = {t: {p for c, _, p, _ in keys if c == t and p in scopes and p != t} for t in scopes}
    order: list[Scope] = []
    while parents:
        ready = [t for t, ps in parents.items() if not ps]
        if not ready:
            raise RuntimeError(f"foreign keys in a cycle among {sorted(parents)}")
        first = min(ready, key=lambda t: (scopes[t].depth, t))
        order.append(scopes[first])
        del parents[first]
        for ps in parents.values():
            ps.discard(first)
    return order


def kept_referencing(conn: psycopg.Connection[Any], scopes: list[Scope], kept: set[str]) -> list[str]:
    """``child -> parent`` for each kept table with a foreign key into a table to be erased (erasure fails on those)."""
    erased = {s.table for s in scopes}
    return sorted(f"{child} -> {parent}" for child, _, parent, _ in _foreign_keys(conn)
                  if child in kept and parent in erased)  # fmt: skip
