"""The patient's app: a small web server on the phone, serving one offline page and a JSON API.

    GET  /                   the page (static files in ``static/``, no CDN, works offline)
    GET  /api/status         connection, strap, battery, last upload, current HR, counters, notifications
    POST /api/symptom        {"action": "start"|"stop", "tags": [...], "severity": 1-5, "note": "..."}
    POST /api/panic          {"confirmed": true}  (the page asks first; unconfirmed presses are refused)
    POST /api/feedback       {"text": "..."}
    POST /api/dose           {"drug": ..., "planned": s since epoch, "action": "taken"|"skipped"|"snoozed",
                              "reason": "..." (skipped only, optional)}

Thin routes over the agent: every action is one outbox write (durable before
the answer) followed by an immediate uplink poll, so it leaves the phone at
once when the broker is reachable and later, in order, when it is not.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Annotated, Any

from fastapi import Depends, FastAPI, HTTPException, Request
from fastapi.responses import FileResponse
from fastapi.staticfiles import StaticFiles
from pydantic import BaseModel, Field

from edge.agent import EdgeAgent, mark_symptom, press_panic, send_feedback
from edge.app.status import status_of
from edge.reminders import DoseError

STATIC = Path(__file__).parent / "static"
SYMPTOM_TAGS = ("palpitations", "dizziness", "chest pain", "short of breath", "other")


class SymptomIn(BaseModel):
    """A symptom mark from the page."""

    action: str = Field(pattern="^(start|stop)$")
    tags: list[str] = Field(default_factory=list, max_length=len(SYMPTOM_TAGS))
    severity: int | None = Field(default=None, ge=1, le=5)
    note: str = Field(default="", max_length=1000)


class PanicIn(BaseModel):
    """A panic press; ``confirmed`` must be true (the page's second step)."""

    confirmed: bool = False


class FeedbackIn(BaseModel):
    """Feedback text for the service's designers."""

    text: str = Field(min_length=1, max_length=1000)


class DoseIn(BaseModel):
    """One tap on a dose reminder."""

    drug: str = Field(min_length=1, max_length=64)
    planned: float = Field(ge=0, le=1e11)  # s since epoch, as the status listed it
    action: str = Field(pattern="^(taken|skipped|snoozed)$")
    reason: str = Field(default="", max_length=200)


def _agent(request: Request) -> EdgeAgent:
    agent: EdgeAgent = request.app.state.agent
    return agent


AgentDep = Annotated[EdgeAgent, Depends(_agent)]


def create_app(agent: EdgeAgent) -> FastAPI:
    """The app for one running agent."""
    app = FastAPI(title="pisces patient app", docs_url=None, redoc_url=None, openapi_url=None)
    app.state.agent = agent
    app.mount("/static", StaticFiles(directory=STATIC), name="static")

    @app.get("/", include_in_schema=False)
    def index() -> FileResponse:
        return FileResponse(STATIC / "index.html", headers={"Cache-Control": "no-cache"})

    @app.get("/api/status")
    def status(agent: AgentDep) -> dict[str, Any]:
        return status_of(agent)

    @app.post("/api/symptom")
    def symptom(body: SymptomIn, agent: AgentDep) -> dict[str, Any]:
        unknown = set(body.tags) - set(SYMPTOM_TAGS)
        if unknown:
            raise HTTPException(422, f"unknown tags {sorted(unknown)}; use {list(SYMPTOM_TAGS)}")
        event = mark_symptom(agent.outbox, agent.device_id, body.action, None, body.tags, body.severity, body.note)
        agent.poll()
        return {"seq": event.seq, "period": event.period}

    @app.post("/api/panic")
    def panic(body: PanicIn, agent: AgentDep) -> dict[str, Any]:
        if not body.confirmed:
            raise HTTPException(409, "confirm the panic press first")
        now = agent.clock()  # the agent's clock, as its fixes and doses use
        event = press_panic(agent.outbox, agent.device_id, now, where=agent.panic_position(now))
        agent.poll()
        return {"seq": event.seq}

    @app.post("/api/feedback")
    def feedback(body: FeedbackIn, agent: AgentDep) -> dict[str, Any]:
        event = send_feedback(agent.outbox, agent.device_id, body.text)
        agent.poll()
        return {"seq": event.seq}

    @app.post("/api/dose")
    def dose(body: DoseIn, agent: AgentDep) -> dict[str, Any]:
        if body.reason and body.action != "skipped":
            raise HTTPException(422, "reason: only a skipped dose has a reason")
        try:
            event = agent.doses.confirm(body.drug, body.planned, body.action, agent.clock(), body.reason)
        except DoseError as exc:
            raise HTTPException(404 if exc.reason == "unknown" else 409, str(exc)) from exc
        except sqlite3.OperationalError as exc:  # the phone's storage refused the write: nothing was recorded
            raise HTTPException(503, f"could not save on the phone: {exc}") from exc
        agent.poll()
        return {"seq": event.seq, "type": event.type.value}

    return app


def make_server(agent: EdgeAgent, host: str = "127.0.0.1", port: int = 8765) -> Any:
    """A uvicorn server for the app (loopback by default: it is the phone's own page).

    Run it with ``await server.serve()`` on the agent's loop; stop it with ``server.should_exit = True``.
    """
    import uvicorn

    return uvicorn.Server(uvicorn.Config(create_app(agent), host=host, port=port, log_level="warning"))
