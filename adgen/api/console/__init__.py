"""The operator's console (``/ui``) and the offline API docs (``/docs``).

Everything the browser loads is served from this package (templates, CSS, the vendored
Chart.js and Swagger UI), so both work on a closed network.
"""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse, RedirectResponse
from fastapi.staticfiles import StaticFiles

from adgen.api.console.routes import PREFIX, LoginRequired, router
from adgen.api.console.session import SessionKeeper

STATIC = Path(__file__).parent / "static"
SWAGGER = f"{PREFIX}/static/vendor/swagger-ui"


def mount(app: FastAPI, admin_token: str, token_secret: bytes) -> None:
    """Add the console's routes, its static files and ``/docs`` to ``app``.

    Create ``app`` with ``docs_url=None, redoc_url=None``: the default pages load their
    scripts from a CDN.
    """
    app.state.console_sessions = SessionKeeper(admin_token, token_secret)
    app.include_router(router)
    app.mount(f"{PREFIX}/static", StaticFiles(directory=STATIC), name="console-static")

    async def _login_required(_request: Request, _exc: Exception) -> RedirectResponse:
        return RedirectResponse(f"{PREFIX}/login", status_code=303)

    app.add_exception_handler(LoginRequired, _login_required)

    @app.get("/docs", include_in_schema=False)
    async def docs() -> HTMLResponse:
        """Swagger UI from the vendored assets."""
        return get_swagger_ui_html(
            openapi_url=app.openapi_url or "/openapi.json",
            title=f"{app.title} API",
            swagger_js_url=f"{SWAGGER}/swagger-ui-bundle.js",
            swagger_css_url=f"{SWAGGER}/swagger-ui.css",
            swagger_favicon_url=f"{SWAGGER}/favicon-32x32.png",
        )
