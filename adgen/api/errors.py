"""Exception handlers: adgen's errors become 4xx/503 with a message; nothing becomes a 500.

NotFound 404, Validation 422, Conflict 409, Token and admin auth 401, Storage (database)
and Bus (Kafka) 503, Config 503; request validation 422 with a readable message.
"""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy.exc import InterfaceError, OperationalError

from adgen.api.state import AppState
from adgen.errors import (
    AdgenError,
    AuthError,
    BusError,
    ConfigError,
    ConflictError,
    NotFoundError,
    StorageError,
    TokenError,
    ValidationError,
)

logger = logging.getLogger(__name__)

#: (status, metrics kind) of each error class; the first match in order wins.
STATUS: list[tuple[type[AdgenError], int, str]] = [
    (NotFoundError, 404, "not_found"),
    (ValidationError, 422, "validation"),
    (ConflictError, 409, "conflict"),
    (TokenError, 401, "token"),
    (AuthError, 401, "auth"),
    (StorageError, 503, "storage"),
    (BusError, 503, "bus"),
    (ConfigError, 503, "config"),
]


def _count(request: Request, kind: str) -> None:
    state: AppState = request.app.state.adgen
    state.metrics.errors[kind].inc()


async def _adgen_error(request: Request, exc: Exception) -> JSONResponse:
    for cls, status, kind in STATUS:
        if isinstance(exc, cls):
            _count(request, kind)
            headers = {"WWW-Authenticate": "Bearer"} if isinstance(exc, AuthError) else None
            if status >= 500:
                logger.warning("%s %s: %s", request.method, request.url.path, exc)
            return JSONResponse({"detail": str(exc)}, status_code=status, headers=headers)
    raise exc  # an AdgenError subclass nobody mapped: let it surface


async def _request_invalid(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    _count(request, "validation")
    parts = []
    for err in exc.errors():
        where = ".".join(str(p) for p in err.get("loc", ()) if p != "body")
        msg = str(err.get("msg", "invalid")).removeprefix("Value error, ")
        parts.append(f"{where}: {msg}" if where else msg)
    return JSONResponse(
        {"detail": "; ".join(parts) or "invalid request", "errors": _plain(exc.errors())},
        status_code=422,
    )


def _plain(errors: object) -> object:
    """Validation errors made JSON-safe (their ``ctx`` may hold exception objects)."""
    if isinstance(errors, dict):  # the input is left out: it may be large or not JSON
        return {k: _plain(v) for k, v in errors.items() if k not in ("url", "input")}
    if isinstance(errors, list | tuple):
        return [_plain(v) for v in errors]
    if isinstance(errors, str | int | float | bool) or errors is None:
        return errors
    return str(errors)


async def _database_down(request: Request, exc: Exception) -> JSONResponse:
    _count(request, "storage")
    logger.warning("%s %s: database unavailable: %s", request.method, request.url.path, exc)
    return JSONResponse({"detail": "the database is unavailable; try again later"}, 503)


def install(app: FastAPI) -> None:
    """Register the handlers on ``app``."""
    app.add_exception_handler(AdgenError, _adgen_error)
    app.add_exception_handler(RequestValidationError, _request_invalid)
    app.add_exception_handler(OperationalError, _database_down)
    app.add_exception_handler(InterfaceError, _database_down)
