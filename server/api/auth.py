"""Sign in and out: ``POST /api/auth/login``, ``POST /api/auth/logout``, ``GET /api/auth/me``,
``POST /api/auth/sessions/revoke-all`` (sign out everywhere).

Failed sign-ins are rate-limited per username and per client address (429 with
``Retry-After``; see :mod:`server.security`).
"""

from __future__ import annotations

from datetime import datetime
from math import ceil

from fastapi import APIRouter, HTTPException, Request, Response, status
from pydantic import BaseModel, Field

from server import store
from server.api.deps import SESSION_COOKIE, AnyUser, ConnDep, SettingsDep, request_token
from server.security import LoginLimiter, login_keys, revoke_sessions
from server.store import User

router = APIRouter(prefix="/api/auth", tags=["auth"])


class LoginIn(BaseModel):
    """Credentials."""

    username: str = Field(min_length=1, max_length=200)
    password: str = Field(min_length=1, max_length=1000)


class UserOut(BaseModel):
    """Who is signed in."""

    id: int
    username: str
    role: str


class LoginOut(BaseModel):
    """A new session: the bearer token (also set as an HttpOnly cookie) and its expiry."""

    token: str
    expires_at: datetime
    user: UserOut


def _out(user: User) -> UserOut:
    return UserOut(id=user.id, username=user.username, role=user.role)


def limiter_of(request: Request) -> LoginLimiter:
    """The app's sign-in limiter (also counts wrong invitation codes)."""
    limiter: LoginLimiter = request.app.state.login_limiter
    return limiter


def refuse_if_limited(request: Request, keys: list[str]) -> None:
    """429 with ``Retry-After`` while any of ``keys`` has too many recent failures."""
    wait = limiter_of(request).retry_after(keys)
    if wait > 0:
        raise HTTPException(
            status.HTTP_429_TOO_MANY_REQUESTS, f"too many failed sign-ins: try again in {ceil(wait)} s",
            headers={"Retry-After": str(ceil(wait))},
        )  # fmt: skip


def open_session(conn: ConnDep, response: Response, settings: SettingsDep, user: User) -> LoginOut:
    """A new session of ``settings.session_hours`` for ``user``, also set as the HttpOnly cookie."""
    token, expires = store.create_session(conn, user.id, settings.session_hours)
    response.set_cookie(
        SESSION_COOKIE, token, max_age=int(settings.session_hours * 3600), httponly=True,
        samesite="strict", secure=settings.mode == "production", path="/",
    )  # fmt: skip
    return LoginOut(token=token, expires_at=expires, user=_out(user))


@router.post("/login")
def login(body: LoginIn, request: Request, response: Response, conn: ConnDep, settings: SettingsDep) -> LoginOut:
    """Check the credentials and open a session of ``settings.session_hours``; 429 after too many failures."""
    keys = login_keys(body.username, request.client.host if request.client else None)
    refuse_if_limited(request, keys)
    user = store.authenticate(conn, body.username, body.password)
    if user is None:
        limiter_of(request).failed(keys)
        raise HTTPException(status.HTTP_401_UNAUTHORIZED, "wrong username or password")
    limiter_of(request).succeeded(keys[:1])
    return open_session(conn, response, settings, user)


@router.post("/logout")
def logout(request: Request, response: Response, conn: ConnDep) -> dict[str, bool]:
    """End the current session (if any) and clear the cookie."""
    token = request_token(request)
    if token:
        store.end_session(conn, token)
    response.delete_cookie(SESSION_COOKIE, path="/")
    return {"ok": True}


@router.get("/me")
def me(user: AnyUser) -> UserOut:
    """The signed-in user."""
    return _out(user)


class RevokedOut(BaseModel):
    """How many sessions were ended."""

    revoked: int


@router.post("/sessions/revoke-all")
def revoke_all(user: AnyUser, response: Response, conn: ConnDep) -> RevokedOut:
    """End every session of the signed-in user, this one included (e.g. after a lost phone or laptop)."""
    revoked = revoke_sessions(conn, user.id)
    response.delete_cookie(SESSION_COOKIE, path="/")
    return RevokedOut(revoked=revoked)
