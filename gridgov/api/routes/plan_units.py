"""``/plans/{id}/units``: a unit plan's units, and edits made into the plan.

The very routes of ``/units/{layer}`` (:mod:`gridgov.api.routes.unit_editing`: same
bodies, query parameters, ``If-Match`` rules and refusals) with the plan as their side,
minus the layer: the plan has it, and its group (the plan's unit and its siblings) is
where every edit must stay. Nothing in force changes: the plan is published through
``/plans/{id}/publish``. Thin: the rules are :mod:`gridgov.layers.unit_plan_edit`.
"""

from __future__ import annotations

from typing import Any, Literal

from fastapi import APIRouter, Response
from pydantic import BaseModel, ConfigDict, Field

from gridgov.api.auth import PrincipalDep
from gridgov.api.deps import ConnectionDep
from gridgov.api.routes.grid_editing import POLYGONAL, CrsQ, EditCall, EditCallDep, OverlapQ, Reason
from gridgov.api.routes.plans import PlanId, require_editor, visible
from gridgov.api.routes.unit_editing import (
    UnitEdit,
    UnitProperties,
    UnitSide,
    add_unit_edit_routes,
    attrs_of,
    record,
    shape,
)
from gridgov.api.strict_json import StrictJSONRoute
from gridgov.gis.grid_edit import Create, Labels, Operation
from gridgov.layers import unit_edit, unit_plan_edit, unit_plans
from gridgov.layers.unit_plan_edit import PlanUnitEditResult

router = APIRouter(
    prefix="/plans/{plan_id}/units", tags=["plans 网格调整方案"], route_class=StrictJSONRoute
)


class PlanCreateIn(BaseModel):
    """A new unit in the plan's group (its district, level and parent are the group's)."""

    model_config = ConfigDict(extra="forbid")
    type: Literal["Feature"] = "Feature"
    geometry: dict[str, Any] = Field(description="GeoJSON Polygon / MultiPolygon")
    properties: UnitProperties
    reason: Reason


class PlanUnits:
    """Edits of ``/plans/{id}/units`` go into that plan (see :class:`UnitSide`)."""

    def __init__(self, plan_id: int) -> None:
        self.plan_id = plan_id

    def read(self, call: EditCall, code: str) -> dict[str, Any]:
        plan = visible(call.conn, call.principal, self.plan_id)
        call.principal.require_read(unit_plan_edit.require_unit_plan(plan))
        unit = unit_plans.unit(call.conn, plan, code)
        call.response.headers["ETag"] = unit.etag
        return unit.feature(plan.id)

    def labels(self, call: EditCall) -> Labels:
        plan = visible(call.conn, call.principal, self.plan_id)
        return unit_edit.labels(unit_plan_edit.require_unit_plan(plan), None)

    def edit(self, call: EditCall, operation: Operation, edit: UnitEdit) -> dict[str, Any]:
        conn, principal = call.conn, call.principal
        plan = visible(conn, principal, self.plan_id)
        unit_plan_edit.require_unit_plan(plan)
        require_editor(principal, plan)
        result = unit_plan_edit.apply(
            conn,
            plan.id,
            operation,
            actor=principal.user.username,
            reason=edit.reason,
            if_match=edit.tags(),
            options=edit.options(call),
            attrs=edit.attrs,
        )
        record(call, "plan_edit", f"plan/{plan.id}/{plan.unit_layer}", edit, result)
        etag_of = result.created[0] if isinstance(operation, Create) else edit.etag_of
        return _answer(result, call.response, etag_of)


def plan_units_side(plan_id: PlanId) -> UnitSide:
    return PlanUnits(plan_id)


def _answer(result: PlanUnitEditResult, response: Response, etag_of: str | None) -> dict[str, Any]:
    plan_id = result.plan.id
    for unit in result.units:
        if unit.code == etag_of:
            response.headers["ETag"] = unit.etag
            response.headers["Location"] = f"/plans/{plan_id}/units/{unit.code}"
    return {
        "edit": {"id": result.edit_id, "operation": result.operation, "at": result.at.isoformat()},
        "plan": result.plan.as_dict(),
        "created": result.created,
        "retired": result.retired,
        "followers": result.followers,
        "units": {
            "type": "FeatureCollection",
            "features": [u.feature(plan_id) for u in result.units if u.geometry is not None],
        },
    }


@router.get("", summary="部门单元方案的单元（方案与现状，及整组单元）(a unit plan's units)")
def plan_units(plan_id: PlanId, conn: ConnectionDep, principal: PrincipalDep) -> dict[str, Any]:
    plan = visible(conn, principal, plan_id)
    principal.require_read(unit_plan_edit.require_unit_plan(plan))
    return unit_plans.units(conn, plan)


@router.post("", status_code=201, summary="在方案中新建部门单元 (create in the plan)")
def create_unit(
    plan_id: PlanId,
    body: PlanCreateIn,
    call: EditCallDep,
    overlap: OverlapQ = "refuse",
    crs: CrsQ = "wgs84",
) -> dict[str, Any]:
    side = PlanUnits(plan_id)
    geometry = shape(side, call, body.geometry, crs, POLYGONAL)
    edit = UnitEdit(body.reason, None, overlap, attrs=attrs_of(body.properties))
    return side.edit(call, Create(geometry), edit)


add_unit_edit_routes(router, plan_units_side, "方案中的部门单元")
