"""The console in a real browser: Debian's Chromium driven by Playwright, against the real
app (uvicorn), PostgreSQL and the Tansu broker.

Fails on any console error, page error, failed request, HTTP error or request that leaves
the machine (everything must be served by the app itself).
"""

from __future__ import annotations

import re
import socket
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import numpy as np
import pytest
import uvicorn
from api_support import ADMIN_TOKEN as ADMIN
from playwright.sync_api import ConsoleMessage, Page, Request, Response, Route, sync_playwright
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from adgen.api import create_app
from adgen.db.models import ArmStats, GateDecision, ModelVersion, Variant
from adgen.settings import Settings
from tests import seed_evidence as seed

CHROMIUM = Path("/usr/bin/chromium")
ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
]
LINEAGE = "console-test-base"

pytestmark = pytest.mark.skipif(
    not CHROMIUM.exists(), reason="needs Debian's chromium (.ci/run installs it)"
)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def server(settings: Settings) -> Iterator[str]:
    """The real app served by uvicorn on a free port; its base URL."""
    port = _free_port()
    app = create_app(settings, rng=np.random.default_rng(7))
    srv = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=srv.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 60
    while not srv.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("uvicorn did not start")
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}"
    srv.should_exit = True
    thread.join(timeout=15)


@pytest.fixture
def seeded(pg_sessions: sessionmaker[Session]) -> dict[str, int]:
    """A campaign with an active version's variants and a candidate's, events over hours."""
    start = datetime.now(UTC) - timedelta(hours=5)
    with pg_sessions.begin() as session:
        champion = seed.version(session, LINEAGE, "active")
        candidate = seed.version(session, LINEAGE, "candidate", parent_id=champion.id)
        cid = seed.campaign(session, name="Trail shoes spring")
        best, other = seed.arms(
            session,
            cid,
            [(seed.WINNERS[0], 40, 9), (seed.LOSERS[0], 40, 2)],
            version_id=champion.id,
            at=start,
        )
        (new,) = seed.arms(
            session, cid, [(seed.WINNERS[1], 10, 2)], version_id=candidate.id, at=start
        )
        for hour in range(1, 5):
            at = start + timedelta(hours=hour)
            seed.log(session, cid, best, 30, 6, at=at)
            seed.log(session, cid, other, 10, 1, at=at)
            seed.log(session, cid, new, 10, 2, at=at)
    return {
        "campaign": cid, "best": best, "other": other, "new": new,
        "champion": champion.id, "candidate": candidate.id,
    }


class _Watch:
    """Collects everything that must not happen while the pages are used."""

    def __init__(self, page: Page, base: str) -> None:
        self.problems: list[str] = []
        self.base = base
        page.on("console", self._console)
        page.on("pageerror", lambda exc: self.problems.append(f"page error: {exc}"))
        page.on("requestfailed", self._failed)
        page.on("response", self._response)
        page.route("**/*", self._route)

    def _console(self, msg: ConsoleMessage) -> None:
        if msg.type == "error":
            self.problems.append(f"console error: {msg.text}")

    def _failed(self, request: Request) -> None:
        # net::ERR_ABORTED is the browser cancelling a request in flight when the page
        # navigates on (a stylesheet still loading on a busy machine): not the app failing.
        # Errors the server answers are caught by _response, refused or cut connections here.
        if request.failure != "net::ERR_ABORTED":
            self.problems.append(f"request failed: {request.url} {request.failure}")

    def _response(self, response: Response) -> None:
        if response.status >= 400:
            self.problems.append(f"HTTP {response.status}: {response.url}")

    def _route(self, route: Route, request: Request) -> None:
        if request.url.startswith(self.base) or request.url.startswith("data:"):
            route.continue_()
        else:
            self.problems.append(f"request leaves the app: {request.url}")
            route.abort()


def _shot(page: Page, tmp_path: Path, name: str) -> None:
    path = tmp_path / f"console-{name}.png"
    page.screenshot(path=str(path), full_page=True)
    print(f"screenshot: {path}")


def _number(text: str) -> int:
    return int(text.strip().replace(",", ""))


def test_console_login_leaderboard_pause_rollback(
    server: str,
    seeded: dict[str, int],
    pg_sessions: sessionmaker[Session],
    tmp_path: Path,
) -> None:
    cid = seeded["campaign"]
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=ARGS, headless=True)
        page = browser.new_page(viewport={"width": 1280, "height": 800})
        watch = _Watch(page, server)

        # not logged in: every page leads to the login form; a wrong token is refused
        page.goto(f"{server}/ui/campaigns/{cid}")
        assert page.url.endswith("/ui/login")
        _shot(page, tmp_path, "login")
        page.fill("input[name=token]", "not-the-token")
        page.click("button[type=submit]")
        assert "not valid" in page.inner_text("p.error")
        page.fill("input[name=token]", ADMIN)
        page.click("button[type=submit]")
        cookie = next(c for c in page.context.cookies() if c["name"] == "adgen_console")
        assert cookie["httpOnly"] and cookie["sameSite"] == "Strict" and cookie["expires"] > 0

        # campaigns page
        assert page.inner_text("h1") == "Campaigns"
        assert "Trail shoes spring" in page.inner_text("table")
        # events that happened an hour or more before they were stored: amber, and why
        assert page.inner_text("td.health").startswith("amber ingest lag")
        _shot(page, tmp_path, "campaigns")

        # the leaderboard shows what PostgreSQL holds
        page.click("text=Trail shoes spring")
        page.wait_for_selector("#chart-rate")
        with pg_sessions() as session:
            stats = {
                s.variant_id: s for s in session.scalars(
                    select(ArmStats).where(ArmStats.campaign_id == cid)
                )
            }
        assert set(stats) == {seeded["best"], seeded["other"], seeded["new"]}
        for vid, s in stats.items():
            row = page.locator(f"#leaderboard tr[data-variant='{vid}']")
            assert _number(row.locator("td.impressions").inner_text()) == s.impressions
            assert _number(row.locator("td.clicks").inner_text()) == s.clicks
            assert row.locator("td.ctr").inner_text() == f"{100 * s.clicks / s.impressions:.2f}%"
        # ... and the same figures as the API
        api = httpx.get(f"{server}/v1/campaigns/{cid}", timeout=10).json()
        for v in api["variants"]:
            row = page.locator(f"#leaderboard tr[data-variant='{v['id']}']")
            interval = f"{100 * v['ci95_low']:.2f}% – {100 * v['ci95_high']:.2f}%"
            assert interval in row.locator("td.ci95").inner_text()
            assert row.locator("td.pbest").inner_text() == f"{100 * v['prob_best']:.1f}%"
        assert page.locator("canvas").count() == 3
        assert page.evaluate("Chart.instances ? Object.keys(Chart.instances).length : 0") == 3
        assert "Improvement over an equal split" in page.inner_text("#improvement")
        _shot(page, tmp_path, "campaign")

        # the best variant is served before the pause ...
        def served(n: int) -> set[int]:
            with httpx.Client(base_url=server, timeout=10) as client:
                return {
                    client.post("/v1/allocate", json={"campaign_id": cid}).json()["variant_id"]
                    for _ in range(n)
                }

        assert seeded["best"] in served(200)
        # ... and never in the 1,000 allocations after it
        page.locator(f"#leaderboard tr[data-variant='{seeded['best']}'] button").click()
        assert "paused" in page.inner_text("p.msg")
        row = page.locator(f"#leaderboard tr[data-variant='{seeded['best']}']")
        assert row.locator(".badge").inner_text() == "paused"
        after = served(1000)
        assert seeded["best"] not in after
        assert after == {seeded["other"], seeded["new"]}
        with pg_sessions() as session:
            assert session.get_one(Variant, seeded["best"]).status == "paused"

        # roll the candidate back from the versions page
        page.click("nav >> text=Model versions")
        _shot(page, tmp_path, "versions")
        candidate_row = f"tr[data-version='{seeded['candidate']}']"
        page.locator(f"{candidate_row} button", has_text="Roll back").click()
        assert "rolled back" in page.inner_text("p.msg")
        with pg_sessions() as session:
            version = session.get(ModelVersion, seeded["candidate"])
            assert version is not None and version.status == "rolled_back"
            assert session.get_one(Variant, seeded["new"]).status == "paused"
            decision = session.scalars(
                select(GateDecision).where(
                    GateDecision.candidate_version_id == seeded["candidate"]
                )
            ).one()
            assert (decision.decision, decision.decided_by) == ("rollback", "operator")
        assert "rolled_back" in page.inner_text(candidate_row)

        page.click("nav >> text=Health")
        assert "Dead letters" in page.inner_text("main")
        _shot(page, tmp_path, "health")
        page.click("nav >> text=Audit log")
        audit = page.inner_text("#audit")
        paused = rf"admin \(console\)\s+variant\.pause\s+variant {seeded['best']}\b"
        rolled = rf"model\.rollback\s+model_version {seeded['candidate']}\b"
        assert re.search(paused, audit) and re.search(rolled, audit)
        _shot(page, tmp_path, "audit")

        # the API docs work offline: Swagger UI from the vendored assets
        page.goto(f"{server}/docs")
        page.wait_for_selector(".swagger-ui .opblock", timeout=20_000)
        assert "/v1/allocate" in page.inner_text(".swagger-ui")
        _shot(page, tmp_path, "docs")

        # logging out ends the session
        page.goto(f"{server}/ui/")
        page.click("text=Log out")
        assert page.url.endswith("/ui/login?msg=logged%20out")
        page.goto(f"{server}/ui/")
        assert page.url.endswith("/ui/login")
        browser.close()
    assert watch.problems == []
