"""JSON request bodies parsed strictly: ``NaN``, ``Infinity`` and ``-Infinity`` are refused.

Python's ``json`` accepts those literals although RFC 8259 has no such numbers; a value
that slipped through would reach PostGIS as NaN. Routes of routers built with
``route_class=StrictJSONRoute`` answer such a body with a 422 naming the literal.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Coroutine
from typing import Any

from fastapi import Request, Response
from fastapi.routing import APIRoute


class _NonFiniteError(ValueError):
    def __init__(self, token: str) -> None:
        super().__init__(token)
        self.token = token


def _refuse(token: str) -> Any:
    raise _NonFiniteError(token)


def loads_strict(body: bytes | str) -> Any:
    """``json.loads`` that raises :class:`json.JSONDecodeError` on NaN / ±Infinity."""
    try:
        return json.loads(body, parse_constant=_refuse)
    except _NonFiniteError as exc:
        text = body.decode("utf-8", "replace") if isinstance(body, bytes) else body
        raise json.JSONDecodeError(
            f"{exc.token} is not a JSON number (RFC 8259); NaN and Infinity are refused",
            text,
            max(text.find(exc.token), 0),
        ) from None


class StrictJSONRequest(Request):
    async def json(self) -> Any:
        if not hasattr(self, "_json"):
            self._json = loads_strict(await self.body())
        return self._json


class StrictJSONRoute(APIRoute):
    """An ``APIRoute`` whose handler sees a :class:`StrictJSONRequest`."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def strict_handler(request: Request) -> Response:
            return await handler(StrictJSONRequest(request.scope, request.receive))

        return strict_handler


__all__ = ["StrictJSONRequest", "StrictJSONRoute", "loads_strict"]
