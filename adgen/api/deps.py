"""FastAPI dependencies as ``Annotated`` aliases: settings, a session, the admin check."""

from __future__ import annotations

import hmac
from collections.abc import Iterator
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy.orm import Session

from adgen.allocator import Allocator
from adgen.api.state import AppState
from adgen.errors import AuthError
from adgen.settings import Settings


def app_state(request: Request) -> AppState:
    """The app's shared state (a plain call: the hot paths skip dependency solving)."""
    state: AppState = request.app.state.adgen
    return state


# Dependencies that do no I/O are ``async def``: FastAPI would run plain ``def`` ones in
# its thread pool, a cost the allocation path cannot afford.
async def get_state(request: Request) -> AppState:
    """The app's shared state."""
    return app_state(request)


StateDep = Annotated[AppState, Depends(get_state)]


async def get_settings_dep(state: StateDep) -> Settings:
    """The settings the app was created with."""
    return state.settings


SettingsDep = Annotated[Settings, Depends(get_settings_dep)]


async def get_allocator(state: StateDep) -> Allocator:
    """The app's allocator."""
    return state.allocator


AllocatorDep = Annotated[Allocator, Depends(get_allocator)]


def get_session(state: StateDep) -> Iterator[Session]:
    """A session in a transaction: committed after the handler returns, rolled back on error."""
    with state.sessions.begin() as session:
        yield session


# scope="function": the transaction commits before the response is sent, so a client never
# sees a 201 for something a failed commit lost, nor reads ahead of its own write.
SessionDep = Annotated[Session, Depends(get_session, scope="function")]

_bearer = HTTPBearer(auto_error=False, description="The admin token (ADGEN_ADMIN_TOKEN).")


async def require_admin(
    state: StateDep,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> None:
    """Refuse the request unless it carries ``Authorization: Bearer <admin token>``."""
    if credentials is None:
        raise AuthError("this endpoint needs the admin token: Authorization: Bearer <token>")
    if not hmac.compare_digest(credentials.credentials.encode(), state.admin_token.encode()):
        raise AuthError("the admin token is not valid")


AdminDep = Depends(require_admin)
