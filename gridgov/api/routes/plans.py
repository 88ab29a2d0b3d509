"""``/plans``: grid plans (网格调整方案) — edits not yet in force, what-if, review, publish.

Thin: every statement is in :mod:`gridgov.layers.plans`. The grid routes of a plan
(``/plans/{id}/grids…``) are the very routes of ``/grids`` (same bodies, ETags,
If-Match rules and refusals) registered with a plan as their side
(:mod:`gridgov.api.routes.grid_editing`).

Who may do what: anyone who may read grids sees the plans of their area (404 outside
it); admins and planners edit and submit plans of their area; approving, rejecting and
publishing need a district role (an admin, or a planner / supervisor whose area is the
plan's whole district or more), and the author or submitter of a plan never approves it.
"""

from __future__ import annotations

from datetime import date
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Path, Query, Response
from pydantic import BaseModel, ConfigDict, Field

from gridgov.api.auth import Principal, PrincipalDep
from gridgov.api.deps import ConnectionDep, RegistryDep, SettingsDep
from gridgov.api.routes.grid_editing import EditSide, add_edit_routes, feature
from gridgov.api.routes.measures import FromQ, ToQ, period, weights
from gridgov.api.strict_json import StrictJSONRoute
from gridgov.errors import ConflictError, InvalidInputError, PermissionDeniedError
from gridgov.layers import audit, docking, docking_proposal, plans, unit_plan_edit, unit_plans
from gridgov.layers.catalog import UNIT_CODE
from gridgov.layers.plans import Plan, PlanTarget
from gridgov.security.roles import Role

router = APIRouter(prefix="/plans", tags=["plans 网格调整方案"], route_class=StrictJSONRoute)
grids_router = APIRouter(
    prefix="/plans/{plan_id}/grids", tags=["plans 网格调整方案"], route_class=StrictJSONRoute
)

PlanId = Annotated[int, Path(ge=1, le=2**62, description="方案编号 (plan id)")]
LimitQ = Annotated[int, Query(ge=1, le=10_000, description="每对迁移最多列出的编号数")]
Status = Literal["draft", "submitted", "approved", "published"]
GPKG = "application/geopackage+sqlite3"


class PlanIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = Field(min_length=1, max_length=200, description="方案名称")
    township_code: str | None = Field(default=None, pattern=r"^[0-9]{9}$")
    community_code: str | None = Field(default=None, pattern=r"^[0-9]{12}$")
    reason: str = Field(min_length=1, max_length=2000, description="调整原因 (why)")


class RejectIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    note: str = Field(min_length=1, max_length=2000, description="退回意见")


class PublishIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    effective_date: date = Field(description="生效日期（北京时间；今天或以后）")


def visible(conn: ConnectionDep, principal: Principal, plan_id: int) -> Plan:
    """The plan if the caller may see it; 404 exactly as for a missing one otherwise."""
    principal.require_read("grid")
    return plans.get(conn, plan_id, principal.scope)


def require_editor(principal: Principal, plan: Plan) -> None:
    principal.require_edit(plan.unit_layer or "grid")
    if not principal.scope.covers_code(plan.area_code):
        raise PermissionDeniedError(
            f"无权编辑方案 {plan.id}（{plan.area_code} 不全在账户的区域内）",
            f"plan {plan.id} ({plan.area_code}) is not wholly inside the account's area",
        )


def _require_district_role(principal: Principal, plan: Plan) -> None:
    """Admins, or planners / supervisors whose area holds the plan's whole district."""
    if principal.role is Role.ADMIN:
        return
    if principal.role in (Role.PLANNER, Role.SUPERVISOR):
        codes = principal.scope.codes
        if codes is None or any(len(c) <= 6 and plan.district_code.startswith(c) for c in codes):
            return
    raise PermissionDeniedError(
        f"审批与发布方案须由区级账户操作"
        f"（管理员，或负责区 {plan.district_code} 的规划、指挥中心账户）",
        f"approving and publishing need a district role (admin, or a planner / supervisor "
        f"of district {plan.district_code})",
    )


def _audit(
    conn: ConnectionDep, principal: Principal, action: str, plan: Plan, **detail: Any
) -> None:
    audit.record(
        conn,
        principal.event(
            action, "ok", target=f"plan/{plan.id}", detail={"name": plan.name, **detail}
        ),
    )


def _created(
    conn: ConnectionDep, principal: Principal, response: Response, plan_id: int, **detail: Any
) -> dict[str, Any]:
    """The answer to every route that makes a plan: audited (its area: the township
    unless given), with its Location."""
    plan = plans.get(conn, plan_id)
    _audit(conn, principal, "plan_create", plan, **{"area_code": plan.township_code, **detail})
    response.headers["Location"] = f"/plans/{plan_id}"
    return plan_body(conn, plan)


def plan_body(conn: ConnectionDep, plan: Plan) -> dict[str, Any]:
    base = f"/plans/{plan.id}"
    if plan.unit_layer is not None:
        return {
            **plan.as_dict(),
            "changes": unit_plans.change_counts(conn, plan.id),
            "links": [
                {"rel": "self", "href": base},
                {"rel": "units", "href": f"{base}/units"},
                {"rel": "measures", "href": f"{base}/measures"},
                {"rel": "moves", "href": f"{base}/moves"},
                {"rel": "diff", "href": f"{base}/diff?against=live"},
                {"rel": "edits", "href": f"{base}/edits"},
                {"rel": "export", "href": f"{base}/export.gpkg"},
            ],
        }
    counts = dict.fromkeys(plans.CHANGES, 0)
    for item in plans.grids(conn, plan):
        counts[item.change] += 1
    return {
        **plan.as_dict(),
        "changes": counts,
        "links": [
            {"rel": "self", "href": base},
            {"rel": "grids", "href": f"{base}/grids"},
            {"rel": "measures", "href": f"{base}/measures"},
            {"rel": "moves", "href": f"{base}/moves"},
            {"rel": "diff", "href": f"{base}/diff?against=live"},
            {"rel": "edits", "href": f"{base}/edits"},
            {"rel": "export", "href": f"{base}/export.gpkg"},
        ],
    }


@router.post("", status_code=201, summary="新建方案 (a draft plan for a township or community)")
def create_plan(
    body: PlanIn, conn: ConnectionDep, principal: PrincipalDep, response: Response
) -> dict[str, Any]:
    principal.require_edit("grid")
    area = body.community_code or body.township_code
    if area is None or (body.community_code and body.township_code):
        raise InvalidInputError(
            "须指定 township_code 或 community_code 之一",
            "give exactly one of township_code and community_code",
        )
    if not principal.scope.covers_code(area):
        raise PermissionDeniedError(
            f"区域 {area} 不在账户的区域内", f"area {area} lies outside the account's area"
        )
    plan_id = plans.create(
        conn,
        name=body.name,
        actor=principal.user.username,
        reason=body.reason,
        township_code=None if body.community_code else body.township_code,
        community_code=body.community_code,
    )
    return _created(conn, principal, response, plan_id, area_code=area, reason=body.reason)


class DockingPlanIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = Field(min_length=1, max_length=200, description="方案名称")
    township_code: str = Field(pattern=r"^[0-9]{9}$")
    unit_layer: str = Field(description="police_unit / urban_unit / emergency_unit")
    unit_level: str | None = Field(default=None, description="e.g. station / policing_area")
    reason: str = Field(min_length=1, max_length=2000, description="调整原因 (why)")


@router.post(
    "/from-docking",
    status_code=201,
    summary="由对接方案生成方案：网格随责任区边界调整 (a plan from the grid-side docking proposal)",
)
def plan_from_docking(
    body: DockingPlanIn,
    conn: ConnectionDep,
    registry: RegistryDep,
    settings: SettingsDep,
    principal: PrincipalDep,
    response: Response,
) -> dict[str, Any]:
    """``GET /docking/proposals/townships/{code}`` as a draft plan: one edit per move."""
    principal.require_edit("grid")
    kind = docking.unit_kind(registry, body.unit_layer, body.unit_level)
    principal.require_read(kind.layer)
    if not principal.scope.covers_code(body.township_code):
        raise PermissionDeniedError(
            f"区域 {body.township_code} 不在账户的区域内",
            f"area {body.township_code} lies outside the account's area",
        )
    plan_id = docking_proposal.plan_grids_follow_units(
        conn,
        registry,
        body.township_code,
        kind,
        actor=principal.user.username,
        reason=body.reason,
        name=body.name,
        tolerance_m=settings.assign_tolerance_m,
        max_vertices=settings.grid_max_vertices,
    )
    return _created(
        conn,
        principal,
        response,
        plan_id,
        area_code=body.township_code,
        reason=body.reason,
        origin=f"docking:{kind.layer}/{kind.level}",
    )


class UnitPlanIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = Field(min_length=1, max_length=200, description="方案名称")
    unit_layer: Literal["police_unit", "urban_unit", "emergency_unit"]
    unit_code: str = Field(pattern=UNIT_CODE, description="单元编码：方案覆盖它及其同级单元")
    reason: str = Field(min_length=1, max_length=2000, description="调整原因 (why)")


@router.post(
    "/units",
    status_code=201,
    summary="新建部门单元方案：在方案中手工调整一组同级单元 (an empty unit plan to edit by hand)",
)
def create_unit_plan(
    body: UnitPlanIn, conn: ConnectionDep, principal: PrincipalDep, response: Response
) -> dict[str, Any]:
    principal.require_edit(body.unit_layer)
    plan_id = unit_plan_edit.create(
        conn,
        body.unit_layer,
        body.unit_code,
        name=body.name,
        reason=body.reason,
        actor=principal.user.username,
        scope=principal.scope,
    )
    return _created(
        conn,
        principal,
        response,
        plan_id,
        reason=body.reason,
        origin=f"editor-unit:{body.unit_layer}/{body.unit_code}",
    )


class UnitDockingPlanIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = Field(min_length=1, max_length=200, description="方案名称")
    unit_code: str = Field(pattern=r"^[0-9A-Za-z_-]{1,32}$", description="责任区代码")
    unit_layer: str = Field(description="police_unit / urban_unit / emergency_unit")
    unit_level: str | None = Field(default=None, description="e.g. station / policing_area")
    reason: str = Field(min_length=1, max_length=2000, description="调整原因 (why)")


@router.post(
    "/from-docking/unit",
    status_code=201,
    summary="由对接方案生成部门单元方案：责任区边界由整网格构成 (a unit plan)",
)
def unit_plan_from_docking(
    body: UnitDockingPlanIn,
    conn: ConnectionDep,
    registry: RegistryDep,
    settings: SettingsDep,
    principal: PrincipalDep,
    response: Response,
    start: FromQ = None,
    end: ToQ = None,
) -> dict[str, Any]:
    """``GET /docking/proposals/units/{code}`` as a draft unit plan (police for their
    units, admins for every layer); checked by the unit edit rules before it is saved."""
    kind = docking.unit_kind(registry, body.unit_layer, body.unit_level)
    principal.require_read("grid")
    principal.require_edit(kind.layer)
    plan_id = unit_plans.create_from_unit_docking(
        conn,
        registry,
        kind,
        body.unit_code,
        period(start, end),
        principal.scope,
        name=body.name,
        actor=principal.user.username,
        reason=body.reason,
        max_vertices=settings.grid_max_vertices,
    )
    return _created(
        conn,
        principal,
        response,
        plan_id,
        reason=body.reason,
        origin=f"docking-unit:{kind.layer}/{kind.level}/{body.unit_code}",
    )


@router.get("", summary="方案列表 (plans of the caller's area, newest first)")
def list_plans(
    conn: ConnectionDep,
    principal: PrincipalDep,
    status: Annotated[Status | None, Query(description="状态")] = None,
    township: Annotated[str | None, Query(pattern=r"^[0-9]{9}$", description="镇街代码")] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> dict[str, Any]:
    principal.require_read("grid")
    found = plans.search(conn, principal.scope, status, township, limit)
    groups = unit_plans.group_keys(conn, found)
    items = [p.as_dict() for p in found]
    for item in items:
        if item["kind"] == "unit":
            item["unit_group"] = groups.get(item["id"])
    return {"items": items}


@router.get("/{plan_id}", summary="方案 (a plan, its workflow state and how many grids change)")
def get_plan(plan_id: PlanId, conn: ConnectionDep, principal: PrincipalDep) -> dict[str, Any]:
    return plan_body(conn, visible(conn, principal, plan_id))


@router.get("/{plan_id}/edits", summary="方案编辑记录 (edits made into the plan)")
def plan_edits(
    plan_id: PlanId,
    conn: ConnectionDep,
    principal: PrincipalDep,
    limit: Annotated[int, Query(ge=1, le=1000)] = 200,
) -> dict[str, Any]:
    plan = visible(conn, principal, plan_id)
    return {"items": plans.edit_log(conn, plan.id, limit)}


@router.get("/{plan_id}/measures", summary="方案测度与现状对比 (measures, balance, docking)")
def plan_measures(
    plan_id: PlanId,
    conn: ConnectionDep,
    registry: RegistryDep,
    settings: SettingsDep,
    principal: PrincipalDep,
    start: FromQ = None,
    end: ToQ = None,
) -> dict[str, Any]:
    plan = visible(conn, principal, plan_id)
    if plan.unit_layer is not None:
        principal.require_read(plan.unit_layer)
        return unit_plans.measures(conn, registry, plan, period(start, end), weights(settings))
    return plans.plan_measures(conn, registry, plan, period(start, end), weights(settings))


@router.get("/{plan_id}/moves", summary="将改变网格的住户、楼栋、重点场所与事件 (what moves)")
def plan_moves(
    plan_id: PlanId,
    conn: ConnectionDep,
    principal: PrincipalDep,
    start: FromQ = None,
    end: ToQ = None,
    limit: LimitQ = 100,
) -> dict[str, Any]:
    plan = visible(conn, principal, plan_id)
    if plan.unit_layer is not None:
        principal.require_read(plan.unit_layer)
        return unit_plans.moves(conn, plan, period(start, end), limit)
    before = plans.live_geometries(conn, plan)
    after = plans.plan_geometries(conn, plan)
    return {"plan_id": plan.id, **plans.moves(conn, before, after, period(start, end), limit)}


@router.get("/{plan_id}/diff", summary="两方案或方案与现状的对比 (side-by-side diff)")
def plan_diff(
    plan_id: PlanId,
    conn: ConnectionDep,
    registry: RegistryDep,
    settings: SettingsDep,
    principal: PrincipalDep,
    against: Annotated[
        str, Query(pattern=r"^(live|[0-9]{1,18})$", description="live 或另一方案编号")
    ] = "live",
    start: FromQ = None,
    end: ToQ = None,
    limit: LimitQ = 100,
) -> dict[str, Any]:
    plan = visible(conn, principal, plan_id)
    other = None if against == "live" else visible(conn, principal, int(against))
    if plan.unit_layer is not None:
        principal.require_read(plan.unit_layer)
        return unit_plans.diff(conn, plan, other, period(start, end), limit)
    if other is not None and other.unit_layer is not None:
        raise InvalidInputError(
            f"方案 {other.id} 是部门单元方案，不能与网格方案 {plan.id} 对比",
            f"plan {other.id} is a unit plan; it cannot be compared with grid plan {plan.id}",
        )
    return plans.diff(conn, registry, plan, other, period(start, end), weights(settings), limit)


@router.get(
    "/{plan_id}/export.gpkg",
    summary="导出方案为 GeoPackage (plan grids or units, today's, what moves; for QGIS)",
    response_class=Response,
    responses={200: {"content": {GPKG: {"schema": {"type": "string", "format": "binary"}}}}},
)
def export_plan(
    plan_id: PlanId,
    conn: ConnectionDep,
    principal: PrincipalDep,
    start: FromQ = None,
    end: ToQ = None,
) -> Response:
    plan = visible(conn, principal, plan_id)
    if plan.unit_layer is not None:
        principal.require_read(plan.unit_layer)
        content = unit_plans.export_gpkg(conn, plan)
    else:
        content = plans.export_gpkg(conn, plan, period(start, end))
    _audit(conn, principal, "export", plan, format="gpkg", bytes=len(content))
    return Response(
        content,
        media_type=GPKG,
        headers={"Content-Disposition": f'attachment; filename="plan-{plan.id}.gpkg"'},
    )


@router.post("/{plan_id}/submit", summary="提交方案（此后只读）(submit: read-only from now)")
def submit_plan(plan_id: PlanId, conn: ConnectionDep, principal: PrincipalDep) -> dict[str, Any]:
    plan = visible(conn, principal, plan_id)
    require_editor(principal, plan)
    plan = plans.submit(conn, plan.id, principal.user.username)
    _audit(conn, principal, "plan_submit", plan)
    return plan_body(conn, plan)


@router.post("/{plan_id}/approve", summary="批准方案（区级账户）(approve: district role)")
def approve_plan(plan_id: PlanId, conn: ConnectionDep, principal: PrincipalDep) -> dict[str, Any]:
    plan = visible(conn, principal, plan_id)
    _require_district_role(principal, plan)
    plan = plans.approve(conn, plan.id, principal.user.username)
    _audit(conn, principal, "plan_approve", plan)
    return plan_body(conn, plan)


@router.post("/{plan_id}/reject", summary="退回方案为草稿（区级账户）(reject back to draft)")
def reject_plan(
    plan_id: PlanId, body: RejectIn, conn: ConnectionDep, principal: PrincipalDep
) -> dict[str, Any]:
    plan = visible(conn, principal, plan_id)
    _require_district_role(principal, plan)
    plan = plans.reject(conn, plan.id, principal.user.username, body.note)
    _audit(conn, principal, "plan_reject", plan, note=body.note)
    return plan_body(conn, plan)


@router.post("/{plan_id}/publish", summary="发布方案，自生效日期起施行 (publish with a date)")
def publish_plan(
    plan_id: PlanId,
    body: PublishIn,
    conn: ConnectionDep,
    registry: RegistryDep,
    settings: SettingsDep,
    principal: PrincipalDep,
) -> dict[str, Any]:
    plan = visible(conn, principal, plan_id)
    _require_district_role(principal, plan)
    result = plans.publish(
        conn,
        registry,
        plan.id,
        actor=principal.user.username,
        effective_from=plans.effective_moment(body.effective_date),
        tolerance_m=settings.assign_tolerance_m,
        max_vertices=settings.grid_max_vertices,
    )
    edits = [
        {
            "id": e.edit_id,
            "community_code": e.community_code,
            "created": e.created,
            "retired": e.retired,
            "codes": sorted(v.code for v in e.versions),
            "incidents_moved": e.incidents_moved,
        }
        for e in result.edits
    ]
    _audit(
        conn,
        principal,
        "plan_publish",
        result.plan,
        effective_from=result.effective_from.isoformat(),
        edits=[e["id"] for e in edits],
        unit_edit=result.unit_edit,
    )
    return {
        **plan_body(conn, result.plan),
        "effective_from": result.effective_from.isoformat(),
        "edits": edits,
        "unit_edit": result.unit_edit,
    }


# --------------------------------------------------------------------------- plan grids


def plan_side(plan_id: PlanId, conn: ConnectionDep, principal: PrincipalDep) -> EditSide:
    """Edits of ``/plans/{id}/grids`` go into that plan (404 when it is not visible)."""
    plan = visible(conn, principal, plan_id)
    if plan.unit_layer is not None:
        raise ConflictError(
            f"方案 {plan.id} 是部门单元方案，没有网格（见 /plans/{plan.id}/units）",
            f"plan {plan.id} is a unit plan and holds no grids (see /plans/{plan.id}/units)",
        )

    def read(c: Any, code: str) -> Any:
        return plans.grid(c, plan, code)

    def require_edit(who: Principal) -> None:
        require_editor(who, plan)

    return EditSide(
        base=f"/plans/{plan.id}/grids",
        target=PlanTarget(plan.id),
        read=read,
        require_edit=require_edit,
        audit_action="plan_edit",
        audit_prefix=f"plan/{plan.id}/",
    )


@grids_router.get("", summary="方案中的网格及其变化 (the plan's grids, with their change)")
def plan_grids(plan_id: PlanId, conn: ConnectionDep, principal: PrincipalDep) -> dict[str, Any]:
    plan = visible(conn, principal, plan_id)
    base = f"/plans/{plan.id}/grids"
    features = []
    for item in plans.grids(conn, plan):
        found = feature(item.version, base)
        found["properties"]["change"] = item.change
        features.append(found)
    return {"type": "FeatureCollection", "plan": plan.as_dict(), "features": features}


add_edit_routes(grids_router, plan_side, "方案中的网格")

__all__ = ["grids_router", "router"]
