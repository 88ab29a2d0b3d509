"""JSON request bodies parsed strictly: ``NaN``, ``Infinity`` and ``-Infinity`` are refused,
and so is a GeoJSON ``crs`` member (RFC 7946 removed it; the API takes the CRS as a field
or a query parameter, never from inside the GeoJSON).

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

from gridgov.api.query import shown_name


class _NonFiniteError(ValueError):
    def __init__(self, token: str) -> None:
        super().__init__(token)
        self.token = token


class _RepeatedKeyError(ValueError):
    def __init__(self, key: str) -> None:
        super().__init__(key)
        self.key = key


def _refuse(token: str) -> Any:
    raise _NonFiniteError(token)


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """An object whose members all have their own names: {"lon": 500, …, "lon": 120.3}
    is ambiguous (Python's json keeps the last silently, other parsers the first)."""
    seen: set[str] = set()
    for key, _value in pairs:
        if key in seen:
            raise _RepeatedKeyError(shown_name(key))
        seen.add(key)
    return dict(pairs)


def loads_strict(body: bytes | str) -> Any:
    """``json.loads`` that raises :class:`json.JSONDecodeError` on NaN / ±Infinity and on
    a member name repeated within one object."""
    try:
        return json.loads(body, parse_constant=_refuse, object_pairs_hook=_unique_keys)
    except _NonFiniteError as exc:
        text = body.decode("utf-8", "replace") if isinstance(body, bytes) else body
        raise json.JSONDecodeError(
            f"{exc.token} is not a JSON number (RFC 8259); NaN and Infinity are refused",
            text,
            max(text.find(exc.token), 0),
        ) from None
    except _RepeatedKeyError as exc:
        text = body.decode("utf-8", "replace") if isinstance(body, bytes) else body
        raise json.JSONDecodeError(
            f"成员名 {exc.key} 在同一对象中重复 (the member name {exc.key} is repeated in one "
            "object)",
            text,
            max(text.rfind(f'"{exc.key}"'), 0),
        ) from None


GEOJSON_TYPES = frozenset(
    {
        "Point",
        "MultiPoint",
        "LineString",
        "MultiLineString",
        "Polygon",
        "MultiPolygon",
        "GeometryCollection",
        "Feature",
        "FeatureCollection",
    }
)
CRS_MEMBER = (
    "GeoJSON 对象不得含 crs 成员（RFC 7946 已删除；坐标系请用请求的 crs 字段或 crs 查询参数） "
    "— a GeoJSON `crs` member is not accepted (RFC 7946 removed it): give the coordinate "
    "system in the request's `crs` field or `crs` query parameter"
)


def crs_member(value: Any) -> bool:
    """Whether a parsed body holds a GeoJSON ``crs`` member: on a GeoJSON object (a
    geometry, feature or collection), or with an object as its value (the GeoJSON 2008
    ``{"type": "name", ...}`` form) anywhere. A plain string field named ``crs`` beside
    the geometry (``"crs": "gcj02"``) is the API's own way to say the CRS."""
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            if "crs" in item and (
                not isinstance(item["crs"], str) or item.get("type") in GEOJSON_TYPES
            ):
                return True
            stack.extend(v for v in item.values() if isinstance(v, dict | list))
        elif isinstance(item, list):
            stack.extend(v for v in item if isinstance(v, dict | list))
    return False


def loads_body(body: bytes | str) -> Any:
    """:func:`loads_strict`, refusing a GeoJSON ``crs`` member (:func:`crs_member`) too."""
    value = loads_strict(body)
    if crs_member(value):
        text = body.decode("utf-8", "replace") if isinstance(body, bytes) else body
        raise json.JSONDecodeError(CRS_MEMBER, text, max(text.find('"crs"'), 0))
    return value


class StrictJSONRequest(Request):
    async def json(self) -> Any:
        if not hasattr(self, "_json"):
            self._json = loads_body(await self.body())
        return self._json


class StrictJSONRoute(APIRoute):
    """An ``APIRoute`` whose handler sees a :class:`StrictJSONRequest`."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def strict_handler(request: Request) -> Response:
            return await handler(StrictJSONRequest(request.scope, request.receive))

        return strict_handler


__all__ = ["StrictJSONRequest", "StrictJSONRoute", "crs_member", "loads_body", "loads_strict"]
