"""PostgreSQL for tests: a real server, and a database of this run's own.

The server is the one named by ``--test-dsn`` or ``PISCES_TEST_DATABASE_URL``;
without either, the fixture starts an embedded PostgreSQL itself, so the
database tests never silently skip. Each test session creates a fresh database
``pisces_test_<random>`` and drops it at the end, so runs never collide.
"""

from __future__ import annotations

import contextlib
import os
import secrets
from collections.abc import Iterator

import psycopg
import pytest
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict, make_conninfo


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--test-dsn", default=None, help="PostgreSQL URL of the server tests may use")


@pytest.fixture(scope="session")
def pg_server_url(request: pytest.FixtureRequest) -> Iterator[str]:
    """URL of a running PostgreSQL server (its maintenance database)."""
    url = request.config.getoption("--test-dsn") or os.environ.get("PISCES_TEST_DATABASE_URL")
    if url:
        yield url
        return
    from server.embedded import embedded_postgres

    with embedded_postgres() as embedded_url:
        yield embedded_url


@contextlib.contextmanager
def scratch_database(server_url: str, prefix: str = "pisces_test") -> Iterator[str]:
    """Create an empty database on the server, yield its URL, drop it afterwards."""
    name = f"{prefix}_{secrets.token_hex(4)}"
    with psycopg.connect(server_url, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    params = conninfo_to_dict(server_url)
    params["dbname"] = name
    try:
        yield make_conninfo(**params)
    finally:
        with psycopg.connect(server_url, autocommit=True) as conn:
            conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


@pytest.fixture(scope="session")
def db_url(pg_server_url: str) -> Iterator[str]:
    """URL of this test session's own, migrated database."""
    from server.store import migrate

    with scratch_database(pg_server_url) as url:
        migrate(url)
        yield url


@pytest.fixture
def db(db_url: str) -> Iterator[psycopg.Connection]:
    """A connection to the session's database (autocommit off; rolled back afterwards)."""
    with psycopg.connect(db_url) as conn:
        yield conn
        conn.rollback()
