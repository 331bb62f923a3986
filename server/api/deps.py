"""Dependencies of the API routes, as ``Annotated`` aliases: pool, connection, settings, the user.

Who may call a route is said by its user dependency: ``CurrentUser`` admits
the care team only (clinicians and admins; a patient or caregiver gets 403),
so every clinician route is closed to the other roles by default;
``AdminUser`` admins only; ``PatientSelf`` a patient's own account (their
patient id with it); ``CaregiverUser`` a caregiver; ``AnyUser`` anyone
signed in (sign-out, who am I).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, replace
from datetime import datetime, timezone
from typing import Annotated, Any

import psycopg
from fastapi import Depends, HTTPException, Request, status
from psycopg_pool import ConnectionPool

from server.settings import ServerSettings
from server.store import User, account_patient, session_user

SESSION_COOKIE = "pisces_session"
REASON_HEADER = "X-Access-Reason"  # why a person reads or changes data; recorded in the audit log
MAX_REASON = 200  # characters


def get_settings(request: Request) -> ServerSettings:
    """The settings ``create_app`` was built with."""
    settings: ServerSettings = request.app.state.settings
    return settings


def get_pool(request: Request) -> ConnectionPool[Any]:
    """The connection pool the lifespan opened."""
    pool: ConnectionPool[Any] = request.app.state.pool
    return pool


SettingsDep = Annotated[ServerSettings, Depends(get_settings)]
PoolDep = Annotated[ConnectionPool, Depends(get_pool)]


def get_conn(pool: PoolDep) -> Iterator[psycopg.Connection[Any]]:
    """A pooled connection (autocommit) for the duration of one request."""
    with pool.connection() as conn:
        yield conn


ConnDep = Annotated[psycopg.Connection, Depends(get_conn)]


def request_token(request: Request) -> str | None:
    """The session token from ``Authorization: Bearer`` or else the session cookie."""
    header = request.headers.get("authorization", "")
    scheme, _, value = header.partition(" ")
    if scheme.lower() == "bearer" and value.strip():
        return value.strip()
    return request.cookies.get(SESSION_COOKIE) or None


def access_reason(request: Request) -> str | None:
    """The request's ``X-Access-Reason`` (trimmed; None if absent or blank); 422 if too long or not printable."""
    value = request.headers.get(REASON_HEADER, "").strip()
    if len(value) > MAX_REASON:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT,
                            f"{REASON_HEADER}: at most {MAX_REASON} characters")
    if not value.isprintable():
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, f"{REASON_HEADER}: printable text only")
    return value or None


def signed_in(request: Request, pool: PoolDep) -> User:
    """The signed-in user of any role, or 401, carrying the request's access reason for the audit log.

    Uses its own short-lived connection (streams hold none).
    """
    token = request_token(request)
    user = None
    if token:
        with pool.connection() as conn:
            user = session_user(conn, token)
    if user is None:
        raise HTTPException(
            status.HTTP_401_UNAUTHORIZED, "sign in first", headers={"WWW-Authenticate": "Bearer"}
        )
    return replace(user, reason=access_reason(request))


AnyUser = Annotated[User, Depends(signed_in)]


def current_user(user: AnyUser) -> User:
    """The signed-in clinician or admin; 403 for a patient or a caregiver (their own routes are elsewhere)."""
    if not user.is_staff:
        raise HTTPException(status.HTTP_403_FORBIDDEN, "for the care team only (clinicians and admins)")
    return user


CurrentUser = Annotated[User, Depends(current_user)]


@dataclass(frozen=True)
class Self:
    """A patient signed in to their own account, and the patient they are."""

    user: User
    patient_id: int


def patient_self(user: AnyUser, pool: PoolDep) -> Self:
    """The signed-in patient and their patient id; 403 for any other role."""
    patient_id = None
    if user.role == "patient":
        with pool.connection() as conn:
            patient_id = account_patient(conn, user.id)
    if patient_id is None:
        raise HTTPException(status.HTTP_403_FORBIDDEN, "for a patient's own account only")
    return Self(user, patient_id)


PatientSelf = Annotated[Self, Depends(patient_self)]


def caregiver_user(user: AnyUser) -> User:
    """The signed-in caregiver; 403 for any other role."""
    if user.role != "caregiver":
        raise HTTPException(status.HTTP_403_FORBIDDEN, "for caregivers only")
    return user


CaregiverUser = Annotated[User, Depends(caregiver_user)]


def admin_user(user: CurrentUser) -> User:
    """The signed-in user if an admin, else 403."""
    if not user.is_admin:
        raise HTTPException(status.HTTP_403_FORBIDDEN, "admins only")
    return user


AdminUser = Annotated[User, Depends(admin_user)]


def as_utc(value: datetime | None) -> datetime | None:
    """Read a naive query datetime as UTC."""
    if value is not None and value.tzinfo is None:
        return value.replace(tzinfo=timezone.utc)
    return value


# Query times outside these years are refused: nothing is stored there, and the
# routes' default spans (``end`` minus 30 days, ...) must not step past year 1 or 9999.
EARLIEST_QUERY_TIME = datetime(1900, 1, 1, tzinfo=timezone.utc)
LATEST_QUERY_TIME = datetime(3000, 1, 1, tzinfo=timezone.utc)


def _in_years(name: str, value: datetime | None) -> None:
    if value is not None and not EARLIEST_QUERY_TIME <= value < LATEST_QUERY_TIME:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT,
                            f"{name}: must be between the years {EARLIEST_QUERY_TIME.year} and "
                            f"{LATEST_QUERY_TIME.year - 1}")


def check_time(name: str, value: datetime | None) -> datetime | None:
    """A request time normalised to UTC; 422 naming ``name`` when it is outside the years served."""
    value = as_utc(value)
    _in_years(name, value)
    return value


def check_range(start: datetime | None, end: datetime | None) -> tuple[datetime | None, datetime | None]:
    """Normalise a [start, end) query range to UTC; 422 naming the bound that is out of years or order."""
    start, end = as_utc(start), as_utc(end)
    _in_years("start", start)
    _in_years("end", end)
    if start is not None and end is not None and end <= start:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, "end: must be after start")
    return start, end
