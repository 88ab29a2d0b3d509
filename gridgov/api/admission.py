"""Admission control: a server process works on a few requests at once; the rest wait in line.

The server is CPU-bound. With 25 requests at work in one Python process, a transaction
holding a row lock (every incident write bumps the layer's generation) waits for the GIL
among two dozen other threads, and every writer behind it waits on the lock: under the
load benchmark, writers queued behind transactions sitting idle between two statements,
and requests then timed out waiting for a pooled connection (503). Admitted a few at a
time, each request finishes sooner and the line moves faster. A request that has waited
``request_queue_timeout_s`` is answered 503 with ``Retry-After``. ``/health`` and static
files bypass the line: they touch no database and must answer while it is long.
"""

from __future__ import annotations

import weakref
from asyncio import AbstractEventLoop, get_running_loop

import anyio
from starlette.types import ASGIApp, Receive, Scope, Send

from gridgov.api.errors import problem

EXEMPT_PREFIXES = ("/health", "/static/")


class AdmissionMiddleware:
    """Pure ASGI middleware: at most ``limit`` requests inside ``app`` at once."""

    def __init__(self, app: ASGIApp, limit: int, wait_s: float, retry_after_s: int) -> None:
        self.app = app
        self.limit = limit
        self.wait_s = wait_s
        self.retry_after_s = retry_after_s
        # One line per event loop (test clients each run their own loop).
        self._slots: weakref.WeakKeyDictionary[AbstractEventLoop, anyio.Semaphore] = (
            weakref.WeakKeyDictionary()
        )

    def _line(self) -> anyio.Semaphore:
        loop = get_running_loop()
        slots = self._slots.get(loop)
        if slots is None:
            slots = self._slots[loop] = anyio.Semaphore(self.limit)
        return slots

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if self.limit <= 0 or scope["type"] != "http" or scope["path"].startswith(EXEMPT_PREFIXES):
            await self.app(scope, receive, send)
            return
        slots = self._line()
        admitted = False
        with anyio.move_on_after(self.wait_s):
            await slots.acquire()
            admitted = True
        if not admitted:
            response = problem(
                503,
                "服务繁忙 (Service busy)",
                f"服务器繁忙，请求排队超过 {self.wait_s:g} 秒，请稍后重试 "
                f"(the server is busy: the request waited {self.wait_s:g} s in line; retry later)",
                code="busy",
                instance=scope["path"],
            )
            response.headers["Retry-After"] = str(self.retry_after_s)
            await response(scope, receive, send)
            return
        try:
            await self.app(scope, receive, send)
        finally:
            slots.release()
