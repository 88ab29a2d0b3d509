"""Request-size limits, enforced before a body is read in full.

A declared ``Content-Length`` over the limit is refused at once, without reading a byte; a
chunked (or lying) body is counted while it streams and refused as soon as it passes the
limit. Layer imports have their own, larger limit. Both answer 413 problem+json.

The same gate refuses a NUL character in the path or query (400): PostgreSQL text cannot
hold one, so it would otherwise surface as a database error deep inside a route.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from starlette.datastructures import Headers
from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from gridgov.api.errors import problem


def _too_large_detail(limit: int) -> str:
    return f"请求体超过 {limit} 字节的上限 (the request body exceeds the limit of {limit} bytes)"


class BodyTooLargeError(HTTPException):
    """Raised from ``receive`` inside a route; the app's HTTP error handler answers it."""

    problem_code = "body-too-large"

    def __init__(self, limit: int) -> None:
        super().__init__(413, _too_large_detail(limit))
        self.problem_extra = {"limit_bytes": limit}


class BodyLimitMiddleware:
    """Pure ASGI middleware: ``default`` bytes per request, or the limit of the first
    ``(path pattern, bytes)`` pair whose pattern matches the path."""

    def __init__(self, app: ASGIApp, default: int, larger: Sequence[tuple[str, int]] = ()) -> None:
        self.app = app
        self.default = default
        self.larger = [(re.compile(pattern), limit) for pattern, limit in larger]

    def limit_for(self, path: str) -> int:
        return next((limit for rx, limit in self.larger if rx.fullmatch(path)), self.default)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if "\x00" in scope["path"] or b"%00" in scope.get("query_string", b""):
            await problem(
                400,
                "请求参数无效 (Bad Request)",
                "路径或查询参数含有 NUL 字符 (the path or query contains a NUL character)",
                code="nul-character",
                instance=scope["path"].replace("\x00", ""),
            )(scope, receive, send)
            return
        limit = self.limit_for(scope["path"])
        declared = Headers(scope=scope).get("content-length")
        if declared is not None and declared.strip().isdigit() and int(declared) > limit:
            await self._refuse(scope, receive, send, limit)
            return
        received = 0
        started = False

        async def counted_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise BodyTooLargeError(limit)
            return message

        async def watched_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, counted_receive, watched_send)
        except BodyTooLargeError:
            if started:
                raise
            await self._refuse(scope, receive, send, limit)

    @staticmethod
    async def _refuse(scope: Scope, receive: Receive, send: Send, limit: int) -> None:
        response = problem(
            413,
            "请求体过大 (Content Too Large)",
            _too_large_detail(limit),
            code="body-too-large",
            instance=scope["path"],
            limit_bytes=limit,
        )
        # The client may still be sending: say so, and let the server drop the connection.
        response.headers["Connection"] = "close"
        await response(scope, receive, send)


__all__ = ["BodyLimitMiddleware", "BodyTooLargeError"]
