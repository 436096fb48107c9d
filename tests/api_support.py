"""What the API tests share: the admin credentials the ``settings`` fixture configures and
the app's state."""

from __future__ import annotations

from fastapi import FastAPI

from adgen.api.state import AppState

ADMIN_TOKEN = "test-admin-token-0123456789abcdef"
ADMIN = {"Authorization": f"Bearer {ADMIN_TOKEN}"}


def state(app: FastAPI) -> AppState:
    """The adgen state of a running app."""
    app_state: AppState = app.state.adgen
    return app_state
