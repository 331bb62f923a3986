"""The portal's pages and assets are served by create_app, with no CDN and no inline data."""

from __future__ import annotations

import re

import anyio
import httpx

from clinician_portal.routes import STATIC_DIR
from server.app import create_app
from server.settings import ServerSettings


class Portal:
    """A synchronous view of the ASGI app; the lifespan (database pool) is not run: static pages need none."""

    def __init__(self) -> None:
        self.app = create_app(ServerSettings(database_url="postgresql://unused", ingest_in_server=False))

    def get(self, path: str) -> httpx.Response:
        async def fetch() -> httpx.Response:
            transport = httpx.ASGITransport(app=self.app)
            async with httpx.AsyncClient(transport=transport, base_url="http://portal") as client:
                return await client.get(path)

        return anyio.run(fetch)


def portal() -> Portal:
    return Portal()


def test_pages_and_assets_are_served() -> None:
    c = portal()
    index = c.get("/")
    assert index.status_code == 200 and "text/html" in index.headers["content-type"]
    assert 'id="alert-list"' in index.text and 'aria-live="assertive"' in index.text
    assert 'id="login-form"' in c.get("/login").text
    assert "EventSource(\"/api/alerts/stream\")" in c.get("/static/app.js").text
    assert c.get("/static/login.js").status_code == 200
    assert c.get("/static/style.css").status_code == 200
    assert c.get("/static/missing.js").status_code == 404


def test_every_page_is_served_with_its_scripts() -> None:
    c = portal()
    for path in ("/patients/3", "/patients/3/thresholds", "/patients/3/report", "/search", "/strips/3/dev-1/42"):
        page = c.get(path)
        assert page.status_code == 200 and "text/html" in page.headers["content-type"], path
        for script in re.findall(r'<script src="([^"]+)"', page.text):
            assert c.get(script).status_code == 200, (path, script)
    assert c.get("/patients/abc").status_code == 422


def test_no_external_assets_and_no_html_injection() -> None:
    c = portal()
    static = sorted(p.name for p in STATIC_DIR.iterdir())
    assert {"chart.js", "ecg.js", "cue.js", "search.js", "strip.js", "thresholds.js"} <= set(static)
    for path in ["/", "/login", "/search"] + [f"/static/{name}" for name in static]:
        text = c.get(path).text
        assert not re.search(r"(src|href)=\"https?://|url\(https?://|fetch\(\"https?://", text), path
        assert "innerHTML" not in text and "insertAdjacentHTML" not in text and "eval(" not in text, path


def test_create_app_refuses_a_missing_database() -> None:
    import pytest

    with pytest.raises(ValueError, match="database_url"):
        create_app(ServerSettings(database_url=None))
    with pytest.raises(ValueError, match="mqtt_url"):
        create_app(ServerSettings(database_url="postgresql://x", ingest_in_server=True, mqtt_url=None))
