"""Request limits applied before routing (pure ASGI): a bounded body (413) and no NUL
character in the query string or body (422), which PostgreSQL text cannot store."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

_NUL_MARKS = (b"\x00", b"\\u0000")


class RequestLimits:
    """Refuses a body over ``max_body_bytes`` with 413 and any NUL with 422; the body is
    read (at most the limit) and replayed to the app. ``on_refused`` is called for each
    refusal (the API counts them as validation errors)."""

    def __init__(
        self, app: ASGIApp, max_body_bytes: int, on_refused: Callable[[], None] | None = None
    ) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes
        self.on_refused = on_refused

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        query: bytes = scope.get("query_string", b"")
        if b"\x00" in query or b"%00" in query:
            await self._refuse(send, 422, "the query string contains a NUL character")
            return
        declared = dict(scope.get("headers", [])).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.max_body_bytes:
            await self._refuse(send, 413, self._too_large())
            return
        chunks: list[bytes] = []
        size = 0
        more = True
        while more:
            message = await receive()
            if message["type"] != "http.request":
                await self.app(scope, _replay([message]), send)  # disconnected
                return
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_body_bytes:
                await self._refuse(send, 413, self._too_large())
                return
            chunks.append(chunk)
            more = bool(message.get("more_body", False))
        body = b"".join(chunks)
        if any(mark in body for mark in _NUL_MARKS):
            await self._refuse(send, 422, "the request body contains a NUL character")
            return
        await self.app(scope, _replay([{"type": "http.request", "body": body}], receive), send)

    async def _refuse(self, send: Send, status: int, detail: str) -> None:
        if self.on_refused is not None:
            self.on_refused()
        await _respond(send, status, detail)

    def _too_large(self) -> str:
        return (f"request body larger than {self.max_body_bytes} bytes "
                "(ADGEN_API_MAX_BODY_BYTES)")


def _replay(messages: list[Message], then: Receive | None = None) -> Receive:
    queue = list(messages)

    async def receive() -> Message:
        if queue:
            return queue.pop(0)
        if then is not None:
            return await then()
        return {"type": "http.disconnect"}

    return receive


async def _respond(send: Send, status: int, detail: str) -> None:
    body = json.dumps({"detail": detail}).encode()
    headers: list[Any] = [(b"content-type", b"application/json"),
                          (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
