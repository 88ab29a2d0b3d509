"""``/units/{layer}``: read and edit department units (部门单元) safely, like ``/grids``.

Layers: ``police_unit`` (edited by police within their area, and admins), ``urban_unit``
and ``emergency_unit`` (admins only: no role speaks for those departments yet). The same
contract as grids: read a unit with its ETag; create, replace / update, retire, split,
merge and move a shared boundary; every write needs ``If-Match`` (428 without, 412 when
stale) and a ``reason``; refusals are 409 / 422 with the offending geometry. Thin: the
rules are :mod:`gridgov.gis.grid_edit`, the statements :mod:`gridgov.layers.unit_edit`.
"""

from __future__ import annotations

import json
from typing import Annotated, Any, Literal

import shapely
from fastapi import APIRouter, Path, Query, Response
from pydantic import BaseModel, ConfigDict, Field
from shapely.geometry.base import BaseGeometry

from gridgov.api.auth import PrincipalDep
from gridgov.api.deps import ConnectionDep
from gridgov.api.routes.grid_editing import (
    LINEAR,
    POLYGONAL,
    CrsQ,
    EditCall,
    EditCallDep,
    GapQ,
    IfMatch,
    OverlapQ,
    Reason,
    if_match_tags,
)
from gridgov.api.strict_json import StrictJSONRoute
from gridgov.errors import InvalidInputError
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
from gridgov.layers import audit, unit_edit
from gridgov.layers.catalog import UNIT_CODE
from gridgov.layers.unit_edit import Group, Unit, UnitEditResult
from gridgov.layers.unit_support import UNIT_LAYERS

router = APIRouter(prefix="/units", tags=["units 部门单元编辑"], route_class=StrictJSONRoute)

UnitLayer = Literal["police_unit", "urban_unit", "emergency_unit"]
LayerP = Annotated[UnitLayer, Path(description="部门单元图层 (department unit layer)")]
UnitCode = Annotated[str, Path(pattern=UNIT_CODE, description="单元编码 (unit code)")]
CodeField = Annotated[str, Field(pattern=UNIT_CODE)]


class UnitProperties(BaseModel):
    """Attributes a request may set; level and parent are fixed when a unit is created."""

    model_config = ConfigDict(extra="forbid")
    name: str | None = Field(default=None, min_length=1, max_length=200)
    department: str | None = Field(
        default=None, min_length=1, max_length=200, description="责任部门 (urban / emergency)"
    )


class CreateIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    type: Literal["Feature"] = "Feature"
    district_code: str = Field(pattern=r"^[0-9]{6}$", description="所属区县代码")
    level: Literal["station", "policing_area", "patrol"] | None = Field(
        default=None, description="警务单元层级 (police units only)"
    )
    parent_code: CodeField | None = Field(default=None, description="上级单元编码")
    geometry: dict[str, Any] = Field(description="GeoJSON Polygon / MultiPolygon")
    properties: UnitProperties
    reason: Reason


class ReplaceIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    type: Literal["Feature"] = "Feature"
    geometry: dict[str, Any]
    properties: UnitProperties = Field(default_factory=UnitProperties)
    reason: Reason


class PatchIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    geometry: dict[str, Any] | None = None
    properties: UnitProperties = Field(default_factory=UnitProperties)
    reason: Reason


class SplitIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    line: dict[str, Any] = Field(description="GeoJSON LineString drawn across the unit")
    reason: Reason


class MergeIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    codes: list[CodeField] = Field(min_length=2, max_length=50)
    reason: Reason


class BoundaryIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    neighbour: CodeField = Field(description="共用边界的同层级相邻单元")
    geometry: dict[str, Any] = Field(description="本单元的新形状（仅在两单元范围内）")
    reason: Reason


def shape(
    layer: str, obj: dict[str, Any], crs: str, allowed: tuple[str, ...], what: str = "geometry"
) -> BaseGeometry:
    """A request's geometry; a refusal is titled by the layer (警务单元编辑无效, not 网格)."""
    return geometry_from_geojson(obj, crs, allowed, what, unit_edit.labels(layer, None))


def feature(unit: Unit) -> dict[str, Any]:
    """A unit in force as GeoJSON (CGCS2000 lon/lat), with its ETag among the properties."""
    base = f"/units/{unit.layer}/{unit.code}"
    return {
        "type": "Feature",
        "id": unit.code,
        "geometry": json.loads(shapely.to_geojson(unit.geometry)),
        "properties": {
            "layer": unit.layer,
            "code": unit.code,
            "district_code": unit.district_code,
            "township_code": unit.township_code,
            **unit.attrs,
            "etag": unit.etag,
        },
        "links": [
            {"rel": "self", "href": base},
            {"rel": "version-history", "href": f"{base}/versions"},
        ],
    }


def _apply(
    layer: str,
    call: EditCall,
    operation: Operation,
    *,
    reason: str,
    if_match: str | None,
    overlap: Literal["refuse", "take"] = "refuse",
    gap: Literal["refuse", "give"] = "refuse",
    group: Group | None = None,
    attrs: dict[str, Any] | None = None,
) -> UnitEditResult:
    conn, settings, principal = call.conn, call.settings, call.principal
    principal.require_edit(layer)  # 403 for roles that may not edit the layer
    result = unit_edit.apply_unit_edit(
        conn,
        call.registry,
        layer,
        operation,
        actor=principal.user.username,
        reason=reason,
        if_match=if_match_tags(if_match),
        options=Options(overlap=overlap, gap=gap, max_vertices=settings.grid_max_vertices),
        tolerance_m=settings.assign_tolerance_m,
        scope=principal.scope,
        group=group,
        attrs=attrs,
    )
    audit.record(
        conn,
        principal.event(
            "unit_edit",
            "ok",
            target=f"{layer}/district/{result.district_code}",
            detail={
                "edit_id": result.edit_id,
                "operation": result.operation,
                "codes": [u.code for u in result.units],
                "created": result.created,
                "retired": result.retired,
                "reason": reason,
            },
        ),
    )
    return result


def _answer(result: UnitEditResult, response: Response, etag_of: str | None) -> dict[str, Any]:
    for unit in result.units:
        if unit.code == etag_of:
            response.headers["ETag"] = unit.etag
            response.headers["Location"] = f"/units/{unit.layer}/{unit.code}"
    return {
        "edit": {
            "id": result.edit_id,
            "operation": result.operation,
            "layer": result.layer,
            "district_code": result.district_code,
            "at": result.at.isoformat(),
        },
        "created": result.created,
        "retired": result.retired,
        "followers": result.followers,
        "units": {"type": "FeatureCollection", "features": [feature(u) for u in result.units]},
        "grids_refreshed": result.grids_refreshed,
        "incidents": {
            "evaluated": result.incidents_evaluated,
            "moved": result.incidents_moved,
            "moves": [
                {"column": c, "from": a, "to": b, "count": n}
                for c, a, b, n in result.incident_moves
            ],
        },
    }


def _attrs(props: UnitProperties) -> dict[str, Any]:
    return props.model_dump(exclude_none=True)


@router.get("/edits", summary="部门单元调整记录 (unit edit log)")
def edits(
    conn: ConnectionDep,
    principal: PrincipalDep,
    layer: Annotated[UnitLayer | None, Query()] = None,
    code: Annotated[str | None, Query(pattern=UNIT_CODE)] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> dict[str, Any]:
    if layer is not None:
        principal.require_read(layer)
    layers = [layer] if layer else [name for name in UNIT_LAYERS if principal.can_read(name)]
    rows = unit_edit.edit_log(conn, layers, code, limit, principal.scope)
    for row in rows:
        row["at"] = row["at"].isoformat()
    return {"items": rows}


@router.get("/{layer}/{code}", summary="部门单元及其 ETag (read a unit with its ETag)")
def get_unit(
    layer: LayerP,
    code: UnitCode,
    conn: ConnectionDep,
    principal: PrincipalDep,
    response: Response,
) -> dict[str, Any]:
    principal.require_read(layer)
    unit = unit_edit.current(conn, layer, code, principal.scope)
    response.headers["ETag"] = unit.etag
    return feature(unit)


@router.get("/{layer}/{code}/versions", summary="部门单元的全部版本 (every version of a unit)")
def versions(
    layer: LayerP, code: UnitCode, conn: ConnectionDep, principal: PrincipalDep
) -> dict[str, Any]:
    principal.require_read(layer)
    items = unit_edit.history(conn, layer, code, principal.scope)
    for item in items:
        for key in ("valid_from", "valid_to"):
            if item[key] is not None:
                item[key] = item[key].isoformat()
    return {"layer": layer, "code": code, "versions": items}


@router.post("/{layer}", status_code=201, summary="新建部门单元 (create; its code is assigned)")
def create_unit(
    layer: LayerP,
    body: CreateIn,
    call: EditCallDep,
    overlap: OverlapQ = "refuse",
    crs: CrsQ = "wgs84",
) -> dict[str, Any]:
    geometry = shape(layer, body.geometry, crs, POLYGONAL)
    is_police = layer == "police_unit"
    if is_police != (body.level is not None) or (not is_police and body.parent_code):
        raise InvalidInputError(
            "警务单元须给出层级（level），其他单元不设层级与上级单元",
            "police units need a level; other units take neither level nor parent_code",
        )
    group = Group(layer, body.district_code, body.level, body.parent_code)
    result = _apply(
        layer,
        call,
        Create(geometry),
        reason=body.reason,
        if_match=None,
        overlap=overlap,
        group=group,
        attrs=_attrs(body.properties),
    )
    return _answer(result, call.response, result.created[0])


@router.put("/{layer}/{code}", summary="替换部门单元形状 (replace the geometry; If-Match)")
def replace_unit(
    layer: LayerP,
    code: UnitCode,
    body: ReplaceIn,
    call: EditCallDep,
    if_match: IfMatch = None,
    overlap: OverlapQ = "refuse",
    gap: GapQ = "refuse",
    crs: CrsQ = "wgs84",
) -> dict[str, Any]:
    geometry = shape(layer, body.geometry, crs, POLYGONAL)
    result = _apply(
        layer,
        call,
        Replace(code, geometry),
        reason=body.reason,
        if_match=if_match,
        overlap=overlap,
        gap=gap,
        attrs=_attrs(body.properties),
    )
    return _answer(result, call.response, code)


@router.patch("/{layer}/{code}", summary="修改部门单元 (name, department and / or geometry)")
def update_unit(
    layer: LayerP,
    code: UnitCode,
    body: PatchIn,
    call: EditCallDep,
    if_match: IfMatch = None,
    overlap: OverlapQ = "refuse",
    gap: GapQ = "refuse",
    crs: CrsQ = "wgs84",
) -> dict[str, Any]:
    geometry = None
    if body.geometry is not None:
        geometry = shape(layer, body.geometry, crs, POLYGONAL)
    result = _apply(
        layer,
        call,
        Update(code, geometry),
        reason=body.reason,
        if_match=if_match,
        overlap=overlap,
        gap=gap,
        attrs=_attrs(body.properties),
    )
    return _answer(result, call.response, code)


@router.delete("/{layer}/{code}", summary="撤销部门单元 (retire; its area goes to neighbours)")
def retire_unit(
    layer: LayerP,
    code: UnitCode,
    call: EditCallDep,
    reason: Annotated[str, Query(min_length=1, max_length=2000, description="撤销原因")],
    if_match: IfMatch = None,
    gap: GapQ = "refuse",
) -> dict[str, Any]:
    result = _apply(
        layer,
        call,
        Retire(code),
        reason=reason,
        if_match=if_match,
        gap=gap,
    )
    return _answer(result, call.response, None)


@router.post("/{layer}/merge", summary="合并相邻部门单元 (merge; the lowest code stays)")
def merge_units(
    layer: LayerP,
    body: MergeIn,
    call: EditCallDep,
    if_match: IfMatch = None,
) -> dict[str, Any]:
    result = _apply(
        layer,
        call,
        Merge(tuple(body.codes)),
        reason=body.reason,
        if_match=if_match,
    )
    return _answer(result, call.response, min(body.codes))


@router.post("/{layer}/{code}/split", summary="按线拆分部门单元 (split a unit by a line)")
def split_unit(
    layer: LayerP,
    code: UnitCode,
    body: SplitIn,
    call: EditCallDep,
    if_match: IfMatch = None,
    crs: CrsQ = "wgs84",
) -> dict[str, Any]:
    line = shape(layer, body.line, crs, LINEAR, what="line")
    result = _apply(
        layer,
        call,
        Split(code, line),
        reason=body.reason,
        if_match=if_match,
    )
    return _answer(result, call.response, code)


@router.post("/{layer}/{code}/boundary", summary="移动共用边界，相邻单元随之调整")
def move_boundary(
    layer: LayerP,
    code: UnitCode,
    body: BoundaryIn,
    call: EditCallDep,
    if_match: IfMatch = None,
    crs: CrsQ = "wgs84",
) -> dict[str, Any]:
    geometry = shape(layer, body.geometry, crs, POLYGONAL)
    result = _apply(
        layer,
        call,
        MoveBoundary(code, body.neighbour, geometry),
        reason=body.reason,
        if_match=if_match,
    )
    return _answer(result, call.response, code)
