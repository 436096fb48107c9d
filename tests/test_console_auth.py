"""The console's login, session cookie and CSRF checks, and the offline ``/docs``."""

from __future__ import annotations

import re
from collections.abc import Iterator

import numpy as np
import pytest
from api_support import ADMIN_TOKEN as ADMIN
from api_support import state
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session, sessionmaker

from adgen.api import create_app
from adgen.api.console.session import COOKIE, SessionKeeper, check_csrf
from adgen.db.models import Campaign, Variant
from adgen.errors import AuthError
from adgen.settings import Settings
from tests import seed_evidence as seed


def test_session_keeper_refuses_wrong_altered_expired_and_rotated() -> None:
    keeper = SessionKeeper("token-a", b"secret")
    with pytest.raises(AuthError, match="not valid"):
        keeper.login("token-b")
    cookie = keeper.login("token-a")
    session = keeper.read(cookie)
    assert session is not None and len(session.csrf) >= 32
    assert keeper.read(cookie[:-2] + ("A" if cookie[-2] != "A" else "B") + cookie[-1]) is None
    assert keeper.read("") is None and keeper.read(None) is None
    assert SessionKeeper("token-a", b"secret", ttl_s=-1).read(cookie) is None
    # a new admin token (or token secret) ends every session
    assert SessionKeeper("token-c", b"secret").read(cookie) is None
    assert SessionKeeper("token-a", b"other").read(cookie) is None
    check_csrf(session, session.csrf)
    for bad in (None, "", session.csrf[:-1], "x" * len(session.csrf)):
        with pytest.raises(AuthError, match="CSRF"):
            check_csrf(session, bad)


@pytest.fixture
def app(settings: Settings) -> FastAPI:
    return create_app(settings, rng=np.random.default_rng(3))


@pytest.fixture
def client(app: FastAPI) -> Iterator[TestClient]:
    with TestClient(app, follow_redirects=False) as c:
        yield c


def _login(client: TestClient) -> str:
    """Log in; the CSRF token of the session."""
    response = client.post("/ui/login", data={"token": ADMIN})
    assert response.status_code == 303 and response.headers["location"] == "/ui/"
    page = client.get("/ui/audit")
    match = re.search(r'name="csrf" value="([^"]+)"', page.text)
    assert match is not None
    return match.group(1)


def test_pages_need_a_login_and_the_cookie_is_strict(client: TestClient) -> None:
    for path in ("/ui/", "/ui/campaigns/1", "/ui/versions", "/ui/health", "/ui/audit"):
        response = client.get(path)
        assert (response.status_code, response.headers["location"]) == (303, "/ui/login")
    wrong = client.post("/ui/login", data={"token": "guess"})
    assert wrong.status_code == 303 and "error=" in wrong.headers["location"]
    assert COOKIE not in wrong.headers.get("set-cookie", "")
    ok = client.post("/ui/login", data={"token": ADMIN})
    cookie = ok.headers["set-cookie"]
    for flag in ("HttpOnly", "SameSite=strict", "Path=/ui", "Max-Age=28800"):
        assert flag in cookie
    assert client.get("/ui/").status_code == 200
    client.cookies.clear()
    client.cookies.set(COOKIE, "forged")
    assert client.get("/ui/").status_code == 303


def test_state_changes_need_the_csrf_token(
    client: TestClient, pg_sessions: sessionmaker[Session]
) -> None:
    with pg_sessions.begin() as session:
        cid = seed.campaign(session)
        (vid,) = seed.arms(session, cid, [(seed.WINNERS[0], 10, 2)])
    csrf = _login(client)
    for data in ({}, {"csrf": "forged"}):
        assert client.post(f"/ui/variants/{vid}/pause", data=data).status_code == 401
        assert client.post(f"/ui/campaigns/{cid}/pause", data=data).status_code == 401
        assert client.post("/ui/logout", data=data).status_code == 401
    with pg_sessions() as session:
        assert session.get_one(Variant, vid).status == "active"
        assert session.get_one(Campaign, cid).status == "active"
    done = client.post(f"/ui/variants/{vid}/pause", data={"csrf": csrf})
    assert done.status_code == 303 and "msg=" in done.headers["location"]
    again = client.post(f"/ui/variants/{vid}/pause", data={"csrf": csrf})
    assert "error=" in again.headers["location"]  # already paused: said, nothing changes
    with pg_sessions() as session:
        assert session.get_one(Variant, vid).status == "paused"
    bad = client.post(f"/ui/campaigns/{cid}/controls", data={"csrf": csrf, "floor": "lots"})
    assert "error=" in bad.headers["location"]
    refused = client.post(
        f"/ui/campaigns/{cid}/controls", data={"csrf": csrf, "floor": "0.5", "cap": "0.2"}
    )
    assert "error=" in refused.headers["location"]
    with pg_sessions() as session:
        campaign = session.get_one(Campaign, cid)
        assert (campaign.traffic_floor, campaign.traffic_cap) == (None, None)
    saved = client.post(
        f"/ui/campaigns/{cid}/controls", data={"csrf": csrf, "floor": "0.1", "cap": "0.3"}
    )
    assert "msg=" in saved.headers["location"]
    with pg_sessions() as session:
        campaign = session.get_one(Campaign, cid)
        assert (campaign.traffic_floor, campaign.traffic_cap) == (0.1, 0.3)
    out = client.post("/ui/logout", data={"csrf": csrf})
    assert out.status_code == 303 and 'adgen_console=""' in out.headers["set-cookie"]


def test_docs_are_served_from_vendored_assets(client: TestClient) -> None:
    html = client.get("/docs").text
    assert "cdn" not in html.lower()
    assets = re.findall(r'(?:href|src)="(/ui/static/[^"]+)"', html)
    assert len(assets) >= 2
    for url in assets:
        assert client.get(url).status_code == 200
    assert client.get("/redoc").status_code == 404


def test_pausing_a_campaign_stops_its_allocations_at_once(
    app: FastAPI, client: TestClient, pg_sessions: sessionmaker[Session]
) -> None:
    with pg_sessions.begin() as session:
        cid = seed.campaign(session)
        seed.arms(session, cid, [(seed.WINNERS[0], 10, 2), (seed.LOSERS[0], 10, 1)])
    state(app).allocator.refresh()
    assert client.post("/v1/allocate", json={"campaign_id": cid}).status_code == 200
    csrf = _login(client)
    paused = client.post(f"/ui/campaigns/{cid}/pause", data={"csrf": csrf})
    assert "msg=" in paused.headers["location"]
    refused = client.post("/v1/allocate", json={"campaign_id": cid})
    assert refused.status_code == 409 and "paused" in refused.json()["detail"]
    page = client.get(f"/ui/campaigns/{cid}").text
    assert "Resume campaign" in page and "Pause campaign" not in page
    client.post(f"/ui/campaigns/{cid}/resume", data={"csrf": csrf})
    assert client.post("/v1/allocate", json={"campaign_id": cid}).status_code == 200
    audit = client.get("/ui/audit").text
    assert "campaign.pause" in audit and "campaign.resume" in audit
