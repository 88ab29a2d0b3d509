"""The grid edit routes, shared by ``/grids`` (live) and ``/plans/{id}/grids`` (a plan).

OGC API – Features Part 4 style: read a grid with its ETag; create, replace, update,
delete (= retire); split, merge and move a boundary. Every write needs ``If-Match`` with
the ETags of the grids it names (428 without, 412 when stale) and a ``reason``; refusals
are 409 / 422 with the offending geometry. The routes are registered on a router by
:func:`add_edit_routes` with a dependency giving the :class:`EditSide` (where reads and
writes go), so that live grids and plans answer one to one from the same code.
"""

# No "from __future__ import annotations": the routes are closures whose annotations
# (the side dependency) must be evaluated where they are defined.

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated, Any, Literal

import shapely
from fastapi import APIRouter, Depends, Header, Path, Query, Response
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import Connection

from gridgov.api.auth import Principal, PrincipalDep
from gridgov.api.deps import ConnectionDep, RegistryDep, SettingsDep
from gridgov.gis.grid_edit import (
    Create,
    Merge,
    MoveBoundary,
    Operation,
    Options,
    Replace,
    Retire,
    Split,
    Update,
    geometry_from_geojson,
)
from gridgov.layers import audit, grid_edit
from gridgov.layers.grid_edit import EditResult, GridVersion
from gridgov.layers.registry import Registry
from gridgov.settings import Settings

GridCode = Annotated[str, Path(pattern=r"^[0-9]{15}$", description="网格编码 (15 digits)")]
IfMatch = Annotated[
    str | None,
    Header(description='读取网格时得到的 ETag，多个用逗号分隔 (ETags read, e.g. "12-1700…")'),
]
OverlapQ = Annotated[
    Literal["refuse", "take"],
    Query(description="与相邻网格重叠时：refuse 拒绝；take 从相邻网格划入"),
]
GapQ = Annotated[
    Literal["refuse", "give"],
    Query(description="编辑留下空隙时：refuse 拒绝；give 退还给相邻网格"),
]
CrsQ = Annotated[
    str,
    Query(max_length=20, description="输入坐标系: wgs84 / cgcs2000 / gcj02 / bd09 / EPSG:n"),
]
POLYGONAL = ("Polygon", "MultiPolygon")
LINEAR = ("LineString", "MultiLineString")
Kind = Literal["base", "dedicated"]
Reason = Annotated[str, Field(min_length=1, max_length=2000, description="调整原因 (why)")]


class GridProperties(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str | None = Field(default=None, max_length=200)
    kind: Kind = Field(default="base", description="base 基础网格 / dedicated 专属网格")
    dedicated_to: str | None = Field(default=None, max_length=200)
    worker_name: str | None = Field(default=None, max_length=100)


class PatchProperties(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str | None = Field(default=None, max_length=200)
    kind: Kind | None = None
    dedicated_to: str | None = Field(default=None, max_length=200)
    worker_name: str | None = Field(default=None, max_length=100)


class CreateIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    type: Literal["Feature"] = "Feature"
    community_code: str = Field(pattern=r"^[0-9]{12}$", description="所属村社区代码")
    geometry: dict[str, Any] = Field(description="GeoJSON Polygon / MultiPolygon")
    properties: GridProperties = Field(default_factory=GridProperties)
    reason: Reason


class ReplaceIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    type: Literal["Feature"] = "Feature"
    geometry: dict[str, Any]
    properties: GridProperties = Field(default_factory=GridProperties)
    reason: Reason


class PatchIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    geometry: dict[str, Any] | None = None
    properties: PatchProperties = Field(default_factory=PatchProperties)
    reason: Reason


class SplitIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    line: dict[str, Any] = Field(description="GeoJSON LineString drawn across the grid")
    reason: Reason


class MergeIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    codes: list[Annotated[str, Field(pattern=r"^[0-9]{15}$")]] = Field(min_length=2, max_length=50)
    reason: Reason


class BoundaryIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    neighbour: str = Field(pattern=r"^[0-9]{15}$", description="共用边界的相邻网格")
    geometry: dict[str, Any] = Field(description="本网格的新形状（仅在两网格范围内）")
    reason: Reason


@dataclass(frozen=True)
class EditSide:
    """Where the edit routes read and write: the live grids, or one plan's copy."""

    base: str  # URL of the collection: "/grids" or "/plans/7/grids"
    target: grid_edit.Target
    read: Callable[[Connection, str], GridVersion]  # the grid (404 when missing)
    require_edit: Callable[[Principal], None]  # 403 when the caller may not edit here
    audit_action: str = "grid_edit"
    audit_prefix: str = ""  # "plan/7/" for a plan


SideDep = Callable[..., EditSide]


def feature(version: GridVersion, base: str = "/grids") -> dict[str, Any]:
    """A grid version as GeoJSON (CGCS2000 lon/lat), with its ETag among the properties."""
    links = [{"rel": "self", "href": f"{base}/{version.code}"}]
    if base == "/grids":
        links += [
            {"rel": "measures", "href": f"/grids/{version.code}/measures"},
            {"rel": "version-history", "href": f"/grids/{version.code}/versions"},
        ]
    return {
        "type": "Feature",
        "id": version.code,
        "geometry": json.loads(shapely.to_geojson(version.geometry)),
        "properties": {
            "code": version.code,
            "version_id": version.id,
            "district_code": version.district_code,
            "township_code": version.township_code,
            "community_code": version.community_code,
            **version.attrs,
            "valid_from": version.valid_from.isoformat(),
            "valid_to": version.valid_to.isoformat() if version.valid_to else None,
            "etag": version.etag,
        },
        "links": links,
    }


def if_match_tags(if_match: str | None) -> list[str] | None:
    if if_match is None:
        return None
    return [tag.strip() for tag in if_match.split(",") if tag.strip() and tag.strip() != "*"]


@dataclass(frozen=True)
class EditCall:
    """What every edit route needs besides its own parameters (grids, plan grids and
    department units alike): one dependency rather than the same five in every route."""

    conn: Connection
    registry: Registry
    settings: Settings
    principal: Principal
    response: Response


def edit_call(
    conn: ConnectionDep,
    registry: RegistryDep,
    settings: SettingsDep,
    principal: PrincipalDep,
    response: Response,
) -> EditCall:
    return EditCall(conn, registry, settings, principal, response)


EditCallDep = Annotated[EditCall, Depends(edit_call, scope="function")]


def _apply(
    side: EditSide,
    call: EditCall,
    operation: Operation,
    *,
    reason: str,
    if_match: str | None,
    overlap: Literal["refuse", "take"] = "refuse",
    gap: Literal["refuse", "give"] = "refuse",
    community_code: str | None = None,
) -> EditResult:
    conn, settings, principal = call.conn, call.settings, call.principal
    side.require_edit(principal)
    result = grid_edit.apply_edit(
        conn,
        call.registry,
        operation,
        actor=principal.user.username,
        reason=reason,
        if_match=if_match_tags(if_match),
        options=Options(overlap=overlap, gap=gap, max_vertices=settings.grid_max_vertices),
        tolerance_m=settings.assign_tolerance_m,
        community_code=community_code,
        target=side.target,
        scope=principal.scope,
    )
    audit.record(
        conn,
        principal.event(
            side.audit_action,
            "ok",
            target=f"{side.audit_prefix}community/{result.community_code}",
            detail={
                "edit_id": result.edit_id,
                "operation": result.operation,
                "created": list(result.created),
                "retired": list(result.retired),
                "reason": reason,
            },
        ),
    )
    return result


def _answer(
    side: EditSide, result: EditResult, response: Response, etag_of: str | None
) -> dict[str, Any]:
    for version in result.versions:
        if version.code == etag_of:
            response.headers["ETag"] = version.etag
            response.headers["Location"] = f"{side.base}/{version.code}"
    return {
        "edit": {
            "id": result.edit_id,
            "operation": result.operation,
            "community_code": result.community_code,
            "at": result.at.isoformat(),
        },
        "created": result.created,
        "retired": result.retired,
        "followers": result.followers,
        "grids": {
            "type": "FeatureCollection",
            "features": [feature(v, side.base) for v in result.versions],
        },
        "incidents": {
            "evaluated": result.incidents_evaluated,
            "moved": result.incidents_moved,
            "moves": [{"from": a, "to": b, "count": n} for a, b, n in result.incident_moves],
        },
    }


def add_edit_routes(router: APIRouter, side_dep: SideDep, where: str) -> None:
    """Register the read and edit routes of one grid collection on ``router``.

    ``where`` names the collection in the summaries (现行网格 / 方案中的网格). The routes
    are closures over ``side_dep``: same bodies, headers and answers for every side.
    """
    Side = Annotated[EditSide, Depends(side_dep)]  # noqa: N806 (a type alias)

    @router.get("/{code}", summary=f"{where}及其 ETag (read a grid with its ETag)")
    def get_grid(
        code: GridCode,
        side: Side,
        conn: ConnectionDep,
        principal: PrincipalDep,
        response: Response,
    ) -> dict[str, Any]:
        principal.require_visible("grid", code)
        version = side.read(conn, code)
        response.headers["ETag"] = version.etag
        return feature(version, side.base)

    @router.post("", status_code=201, summary="新建网格 (create a grid; its code is assigned)")
    def create_grid(
        body: CreateIn,
        side: Side,
        call: EditCallDep,
        overlap: OverlapQ = "refuse",
        crs: CrsQ = "wgs84",
    ) -> dict[str, Any]:
        geometry = geometry_from_geojson(body.geometry, crs, POLYGONAL)
        result = _apply(
            side,
            call,
            Create(geometry, body.properties.model_dump()),
            reason=body.reason,
            if_match=None,
            overlap=overlap,
            community_code=body.community_code,
        )
        return _answer(side, result, call.response, result.created[0])

    @router.put("/{code}", summary="替换网格 (replace geometry and attributes; If-Match)")
    def replace_grid(
        code: GridCode,
        body: ReplaceIn,
        side: Side,
        call: EditCallDep,
        if_match: IfMatch = None,
        overlap: OverlapQ = "refuse",
        gap: GapQ = "refuse",
        crs: CrsQ = "wgs84",
    ) -> dict[str, Any]:
        geometry = geometry_from_geojson(body.geometry, crs, POLYGONAL)
        operation = Replace(code, geometry, body.properties.model_dump())
        result = _apply(
            side,
            call,
            operation,
            reason=body.reason,
            if_match=if_match,
            overlap=overlap,
            gap=gap,
        )
        return _answer(side, result, call.response, code)

    @router.patch("/{code}", summary="修改网格 (update some attributes and / or the geometry)")
    def update_grid(
        code: GridCode,
        body: PatchIn,
        side: Side,
        call: EditCallDep,
        if_match: IfMatch = None,
        overlap: OverlapQ = "refuse",
        gap: GapQ = "refuse",
        crs: CrsQ = "wgs84",
    ) -> dict[str, Any]:
        geometry = None
        if body.geometry is not None:
            geometry = geometry_from_geojson(body.geometry, crs, POLYGONAL)
        attrs = body.properties.model_dump(exclude_unset=True)
        result = _apply(
            side,
            call,
            Update(code, geometry, attrs),
            reason=body.reason,
            if_match=if_match,
            overlap=overlap,
            gap=gap,
        )
        return _answer(side, result, call.response, code)

    @router.delete("/{code}", summary="撤销网格 (retire; its area must be given to neighbours)")
    def retire_grid(
        code: GridCode,
        side: Side,
        call: EditCallDep,
        reason: Annotated[str, Query(min_length=1, max_length=2000, description="撤销原因")],
        if_match: IfMatch = None,
        gap: GapQ = "refuse",
    ) -> dict[str, Any]:
        result = _apply(
            side,
            call,
            Retire(code),
            reason=reason,
            if_match=if_match,
            gap=gap,
        )
        return _answer(side, result, call.response, None)

    @router.post("/{code}/split", summary="按线拆分网格 (split a grid by a line)")
    def split_grid(
        code: GridCode,
        body: SplitIn,
        side: Side,
        call: EditCallDep,
        if_match: IfMatch = None,
        crs: CrsQ = "wgs84",
    ) -> dict[str, Any]:
        line = geometry_from_geojson(body.line, crs, LINEAR, what="line")
        result = _apply(
            side,
            call,
            Split(code, line),
            reason=body.reason,
            if_match=if_match,
        )
        return _answer(side, result, call.response, code)

    @router.post("/merge", summary="合并相邻网格 (merge adjacent grids; the lowest code stays)")
    def merge_grids(
        body: MergeIn,
        side: Side,
        call: EditCallDep,
        if_match: IfMatch = None,
    ) -> dict[str, Any]:
        result = _apply(
            side,
            call,
            Merge(tuple(body.codes)),
            reason=body.reason,
            if_match=if_match,
        )
        return _answer(side, result, call.response, min(body.codes))

    @router.post(
        "/{code}/boundary", summary="移动共用边界，相邻网格随之调整 (move a shared boundary)"
    )
    def move_boundary(
        code: GridCode,
        body: BoundaryIn,
        side: Side,
        call: EditCallDep,
        if_match: IfMatch = None,
        crs: CrsQ = "wgs84",
    ) -> dict[str, Any]:
        geometry = geometry_from_geojson(body.geometry, crs, POLYGONAL)
        result = _apply(
            side,
            call,
            MoveBoundary(code, body.neighbour, geometry),
            reason=body.reason,
            if_match=if_match,
        )
        return _answer(side, result, call.response, code)
