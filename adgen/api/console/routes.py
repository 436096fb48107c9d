"""The operator's console under ``/ui``: login, pages, and the forms that change state.

Pages are server-rendered (Jinja2). Every state-changing form is a POST carrying the
session's CSRF token; the handler answers with a redirect back to the page (303), with
the outcome in the ``msg`` or ``error`` query parameter.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import quote

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates

from adgen import audit, operations
from adgen.api.console import views
from adgen.api.console.session import COOKIE, ConsoleSession, SessionKeeper, check_csrf
from adgen.api.deps import app_state
from adgen.api.state import AppState
from adgen.cell_results import campaign_cells
from adgen.errors import AdgenError, AuthError, ValidationError
from adgen.model.versions import promote as promote_version
from adgen.model.versions import rollback as rollback_version
from adgen.srm import campaign_srm

logger = logging.getLogger(__name__)

PREFIX = "/ui"
#: Who the audit log names for changes made in the console (one admin token, one role).
ACTOR = "admin (console)"
#: Held-out figures of a reward model shown on the versions page (the primary one in bold).
HELDOUT_KEYS = ("pairwise_acc", "sig_pairwise_acc", "auc", "spearman", "ece")
#: Rows per audit-log page.
AUDIT_PAGE = 50
templates = Jinja2Templates(directory=Path(__file__).parent / "templates")
router = APIRouter(prefix=PREFIX, include_in_schema=False)


class LoginRequired(Exception):
    """Raised by the session dependency; answered with a redirect to the login page."""


def keeper(request: Request) -> SessionKeeper:
    """The app's session keeper."""
    k: SessionKeeper = request.app.state.console_sessions
    return k


async def current_session(request: Request) -> ConsoleSession:
    """The logged-in operator's session, or LoginRequired."""
    session = keeper(request).read(request.cookies.get(COOKIE))
    if session is None:
        raise LoginRequired()
    return session


SessionDep = Annotated[ConsoleSession, Depends(current_session)]
CsrfField = Annotated[str | None, Form()]


def _page(request: Request, name: str, session: ConsoleSession | None, **context: Any) -> Response:
    context.update(
        csrf=session.csrf if session else None,
        msg=request.query_params.get("msg"),
        error=request.query_params.get("error"),
        prefix=PREFIX,
    )
    return templates.TemplateResponse(request, name, context)


def _back(path: str, *, msg: str | None = None, error: str | None = None) -> RedirectResponse:
    query = f"?msg={quote(msg)}" if msg else f"?error={quote(error)}" if error else ""
    return RedirectResponse(f"{PREFIX}{path}{query}", status_code=303)


# --- login ---------------------------------------------------------------------------------
@router.get("/login")
def login_form(request: Request) -> Response:
    """The login page."""
    return _page(request, "login.html", None)


@router.post("/login")
def login(request: Request, token: Annotated[str, Form()]) -> Response:
    """Exchange the admin token for a session cookie."""
    k = keeper(request)
    try:
        cookie = k.login(token)
    except AuthError as exc:
        client = request.client.host if request.client else "?"
        logger.warning("console login refused from %s", client)
        return _back("/login", error=str(exc))
    response = RedirectResponse(f"{PREFIX}/", status_code=303)
    response.set_cookie(
        COOKIE,
        cookie,
        max_age=k.ttl_s,
        path=PREFIX,
        httponly=True,
        samesite="strict",
        secure=request.url.scheme == "https",
    )
    return response


@router.post("/logout")
def logout(session: SessionDep, csrf: CsrfField = None) -> Response:
    """End the session (the cookie is deleted)."""
    check_csrf(session, csrf)
    response = _back("/login", msg="logged out")
    response.delete_cookie(COOKIE, path=PREFIX, httponly=True, samesite="strict")
    return response


# --- pages ---------------------------------------------------------------------------------
@router.get("/", response_class=HTMLResponse)
def campaigns_page(request: Request, session: SessionDep) -> Response:
    """Campaigns with today's counts, the best variant and the posterior refresh age."""
    state: AppState = app_state(request)
    with state.sessions() as db:
        rows = views.campaigns_overview(db, state.allocator, state.settings)
    return _page(
        request, "campaigns.html", session, rows=rows, refresh_age_s=state.allocator.refresh_age_s
    )


@router.get("/campaigns/{campaign_id}", response_class=HTMLResponse)
def campaign_page(request: Request, campaign_id: int, session: SessionDep) -> Response:
    """One campaign: leaderboard, charts over time, improvement over an equal split."""
    state: AppState = app_state(request)
    with state.sessions() as db:
        detail, rows = views.leaderboard(db, campaign_id, state.allocator, state.settings)
        series = views.series(db, campaign_id)
        srm = campaign_srm(db, campaign_id)
        cells = campaign_cells(db, campaign_id)
    texts = {r.variant.id: r.variant.text for r in rows}
    chart = {
        "labels": series.labels,
        "markers": series.markers,
        "variants": [{**v, "label": f"#{v['id']} {texts.get(v['id'], '')[:40]}"}
                     for v in series.variants],
    }
    return _page(
        request,
        "campaign.html",
        session,
        campaign=detail,
        rows=rows,
        improvement=views.improvement(rows),
        srm=srm,
        cells=cells,
        controls=detail.controls,
        chart_json=json.dumps(chart),
    )


@router.get("/versions", response_class=HTMLResponse)
def versions_page(request: Request, session: SessionDep) -> Response:
    """Model versions per lineage, gate decisions, reward models, training runs."""
    state: AppState = app_state(request)
    with state.sessions() as db:
        page = views.versions_page(db)
        return _page(request, "versions.html", session, page=page, heldout_keys=HELDOUT_KEYS)


@router.get("/health", response_class=HTMLResponse)
def health_page(request: Request, session: SessionDep) -> Response:
    """Ingest lag and throughput, dead letters, event spool, database and bus status."""
    state: AppState = app_state(request)
    allocator = state.allocator
    with state.sessions() as db:
        ingest = views.ingest_figures(db)
        total, letters = views.dead_letters(db)
        letters_view = [
            {
                "id": d.id,
                "reason": d.reason,
                "where": f"{d.topic}[{d.kafka_partition}]@{d.kafka_offset}",
                "received_at": d.received_at,
                "payload": (d.payload or b"")[:300].decode("utf-8", "replace"),
            }
            for d in letters
        ]
    return _page(
        request,
        "health.html",
        session,
        ingest=ingest,
        dead_total=total,
        letters=letters_view,
        database="reachable" if not allocator.degraded else allocator.last_error,
        posterior_age_s=allocator.refresh_age_s if allocator.loaded else None,
        bus="running" if state.shipper is not None else "the event producer is not running",
        pending=state.shipper.pending if state.shipper else None,
    )


@router.get("/audit", response_class=HTMLResponse)
def audit_page(request: Request, session: SessionDep, page: int = 1) -> Response:
    """The audit log, newest first."""
    state: AppState = app_state(request)
    page = max(1, page)
    with state.sessions() as db:
        entries = audit.recent(db, AUDIT_PAGE + 1, (page - 1) * AUDIT_PAGE)
    return _page(
        request,
        "audit.html",
        session,
        entries=entries[:AUDIT_PAGE],
        page=page,
        more=len(entries) > AUDIT_PAGE,
    )


# --- actions -------------------------------------------------------------------------------
def _act(
    request: Request, path: str, action: Any, done: str, campaign_id: int | None = None
) -> RedirectResponse:
    """Run ``action(db)`` in one transaction, then reload the allocator (at once for a
    campaign's change, so the next allocation follows it) and redirect with the outcome."""
    state: AppState = app_state(request)
    try:
        with state.sessions.begin() as db:
            action(db)
    except AdgenError as exc:
        return _back(path, error=str(exc))
    if campaign_id is None:
        state.allocator.wake()
    else:
        state.allocator.reload_campaign(campaign_id)
    logger.info("console: %s", done)
    return _back(path, msg=done)


def _campaign_of_variant(request: Request, variant_id: int) -> int:
    state: AppState = app_state(request)
    with state.sessions() as db:
        return views.campaign_of_variant(db, variant_id)


@router.post("/variants/{variant_id}/{verb}")
def variant_action(
    request: Request, variant_id: int, verb: str, session: SessionDep, csrf: CsrfField = None
) -> Response:
    """Pause or resume a variant; it is (not) served from the next allocation on."""
    check_csrf(session, csrf)
    change = {"pause": operations.pause_variant, "resume": operations.resume_variant}.get(verb)
    if change is None:
        raise ValidationError(f"unknown action {verb!r}: use pause or resume")
    try:
        campaign_id = _campaign_of_variant(request, variant_id)
    except AdgenError as exc:
        return _back("/", error=str(exc))
    return _act(
        request,
        f"/campaigns/{campaign_id}",
        lambda db: change(db, variant_id, ACTOR),
        f"variant {variant_id}: {verb}d",
        campaign_id,
    )


@router.post("/campaigns/{campaign_id}/controls")
def controls(
    request: Request,
    campaign_id: int,
    session: SessionDep,
    floor: Annotated[str, Form()] = "",
    cap: Annotated[str, Form()] = "",
    csrf: CsrfField = None,
) -> Response:
    """Store a campaign's traffic floor and cap (blank leaves a value as it is)."""
    check_csrf(session, csrf)
    path = f"/campaigns/{campaign_id}"
    try:
        floor_value = float(floor) if floor.strip() else None
        cap_value = float(cap) if cap.strip() else None
    except ValueError:
        return _back(path, error=f"floor and cap must be numbers in [0, 1], got {floor!r}, {cap!r}")
    return _act(
        request,
        path,
        lambda db: operations.set_campaign_controls(
            db, campaign_id, ACTOR, floor=floor_value, cap=cap_value
        ),
        f"campaign {campaign_id}: traffic controls saved",
        campaign_id,
    )


@router.post("/campaigns/{campaign_id}/{verb}")
def campaign_action(
    request: Request, campaign_id: int, verb: str, session: SessionDep, csrf: CsrfField = None
) -> Response:
    """Pause or resume a whole campaign."""
    check_csrf(session, csrf)
    change = {"pause": operations.pause_campaign, "resume": operations.resume_campaign}.get(verb)
    if change is None:
        raise ValidationError(f"unknown action {verb!r}: use pause or resume")
    return _act(
        request,
        f"/campaigns/{campaign_id}",
        lambda db: change(db, campaign_id, ACTOR),
        f"campaign {campaign_id}: {verb}d",
        campaign_id,
    )


@router.post("/versions/{version_id}/promote")
def promote(request: Request, version_id: int, session: SessionDep, csrf: CsrfField = None):
    """Promote a version (as the operator)."""
    check_csrf(session, csrf)
    return _act(
        request,
        "/versions",
        lambda db: audit.record_version_change(
            db, ACTOR, "model.promote", version_id,
            lambda: promote_version(db, version_id),
        ),
        f"version {version_id} promoted",
    )


@router.post("/versions/{version_id}/rollback")
def rollback(request: Request, version_id: int, session: SessionDep, csrf: CsrfField = None):
    """Roll a version back (as the operator): its variants are paused."""
    check_csrf(session, csrf)
    return _act(
        request,
        "/versions",
        lambda db: audit.record_version_change(
            db, ACTOR, "model.rollback", version_id,
            lambda: rollback_version(db, version_id),
        ),
        f"version {version_id} rolled back",
    )
