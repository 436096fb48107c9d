"""The HTTP API (FastAPI): ``create_app(settings)``; routers live in ``adgen.api.routes``.

``create_app`` is imported on first use, so that importing a light submodule (the schemas,
say, from the CLI) does not load every router and what they import.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from adgen.api.app import create_app

__all__ = ["create_app"]


def __getattr__(name: str) -> Any:
    if name == "create_app":
        from adgen.api.app import create_app

        return create_app
    raise AttributeError(f"module 'adgen.api' has no attribute {name!r}")
