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

from gridgov.api.auth import PrincipalDep
from gridgov.api.deps import ConnectionDep
from gridgov.api.routes.grid_editing import (
    POLYGONAL,
    CrsQ,
    EditCall,
    EditCallDep,
    OverlapQ,
    Reason,
)
from gridgov.api.routes.unit_editing import (
    CodeField,
    UnitCode,
    UnitEdit,
    UnitProperties,
    UnitSide,
    add_unit_edit_routes,
    attrs_of,
    record,
    shape,
)
from gridgov.api.strict_json import StrictJSONRoute
from gridgov.errors import InvalidInputError
from gridgov.gis.grid_edit import (
    Create,
    Labels,
    Operation,
)
from gridgov.layers import unit_edit
from gridgov.layers.catalog import UNIT_CODE
from gridgov.layers.unit_edit import Group, Unit, UnitEditResult
from gridgov.layers.unit_support import UNIT_LAYERS

router = APIRouter(prefix="/units", tags=["units 部门单元编辑"], route_class=StrictJSONRoute)
live_router = APIRouter(
    prefix="/units/{layer}", tags=["units 部门单元编辑"], route_class=StrictJSONRoute
)

UnitLayer = Literal["police_unit", "urban_unit", "emergency_unit"]
LayerP = Annotated[UnitLayer, Path(description="部门单元图层 (department unit layer)")]


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


class LiveUnits:
    """Edits of ``/units/{layer}`` go to the units in force (see :class:`UnitSide`)."""

    def __init__(self, layer: str) -> None:
        self.layer = layer

    def read(self, call: EditCall, code: str) -> dict[str, Any]:
        call.principal.require_read(self.layer)
        unit = unit_edit.current(call.conn, self.layer, code, call.principal.scope)
        call.response.headers["ETag"] = unit.etag
        return feature(unit)

    def labels(self, call: EditCall) -> Labels:
        return unit_edit.labels(self.layer, None)

    def edit(self, call: EditCall, operation: Operation, edit: UnitEdit) -> dict[str, Any]:
        conn, settings, principal = call.conn, call.settings, call.principal
        principal.require_edit(self.layer)  # 403 for roles that may not edit the layer
        result = unit_edit.apply_unit_edit(
            conn,
            call.registry,
            self.layer,
            operation,
            actor=principal.user.username,
            reason=edit.reason,
            if_match=edit.tags(),
            options=edit.options(call),
            tolerance_m=settings.assign_tolerance_m,
            scope=principal.scope,
            group=edit.group,
            attrs=edit.attrs,
        )
        record(call, "unit_edit", f"{self.layer}/district/{result.district_code}", edit, result)
        etag_of = result.created[0] if edit.group is not None else edit.etag_of
        return _answer(result, call.response, etag_of)


def live_units(layer: LayerP) -> UnitSide:
    return LiveUnits(layer)


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
    geometry = shape(LiveUnits(layer), call, body.geometry, crs, POLYGONAL)
    is_police = layer == "police_unit"
    if is_police != (body.level is not None) or (not is_police and body.parent_code):
        raise InvalidInputError(
            "警务单元须给出层级（level），其他单元不设层级与上级单元",
            "police units need a level; other units take neither level nor parent_code",
        )
    group = Group(layer, body.district_code, body.level, body.parent_code)
    edit = UnitEdit(body.reason, None, overlap, attrs=attrs_of(body.properties), group=group)
    return LiveUnits(layer).edit(call, Create(geometry), edit)


add_unit_edit_routes(live_router, live_units, "部门单元")
