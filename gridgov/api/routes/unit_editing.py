"""The department unit edit routes, shared by ``/units/{layer}`` (live) and
``/plans/{id}/units`` (a unit plan), like :mod:`gridgov.api.routes.grid_editing` for grids.

Read a unit with its ETag; replace / update, retire, split, merge and move a shared
boundary, each with ``If-Match`` (428 without, 412 stale) and a ``reason``; refusals are
409 / 422 with the offending geometry. :func:`add_unit_edit_routes` registers them on a
router with a dependency giving the :class:`UnitSide` (where reads and writes go). Create
stays with each side: what a new unit needs to say differs (a live unit names its group).
"""

# No "from __future__ import annotations": the routes are closures whose annotations
# (the side dependency) must be evaluated where they are defined.

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Annotated, Any, Literal, Protocol

from fastapi import APIRouter, Depends, Path, Query
from pydantic import BaseModel, ConfigDict, Field
from shapely.geometry.base import BaseGeometry

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
from gridgov.gis.grid_edit import (
    Labels,
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
from gridgov.layers import audit
from gridgov.layers.catalog import UNIT_CODE
from gridgov.layers.unit_edit import Group, UnitEditResult
from gridgov.layers.unit_plan_edit import PlanUnitEditResult

UnitCode = Annotated[str, Path(pattern=UNIT_CODE, description="单元编码 (unit code)")]
CodeField = Annotated[str, Field(pattern=UNIT_CODE)]


class UnitProperties(BaseModel):
    """Attributes a request may set; level and parent are fixed when a unit is created."""

    model_config = ConfigDict(extra="forbid")
    name: str | None = Field(default=None, min_length=1, max_length=200)
    department: str | None = Field(
        default=None, min_length=1, max_length=200, description="责任部门 (urban / emergency)"
    )


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


@dataclass(frozen=True)
class UnitEdit:
    """One edit request besides its operation."""

    reason: str
    if_match: str | None
    overlap: Literal["refuse", "take"] = "refuse"
    gap: Literal["refuse", "give"] = "refuse"
    attrs: dict[str, Any] = field(default_factory=dict)
    group: Group | None = None  # where a created unit goes (live create only)
    etag_of: str | None = None  # the unit whose ETag and Location the answer carries

    def options(self, call: EditCall) -> Options:
        return Options(
            overlap=self.overlap, gap=self.gap, max_vertices=call.settings.grid_max_vertices
        )

    def tags(self) -> list[str] | None:
        return if_match_tags(self.if_match)


def record(
    call: EditCall,
    action: str,
    target: str,
    edit: UnitEdit,
    result: UnitEditResult | PlanUnitEditResult,
) -> None:
    """The audit row of one unit edit, live (``unit_edit``) or into a plan (``plan_edit``)."""
    detail = {
        "edit_id": result.edit_id,
        "operation": result.operation,
        "codes": [u.code for u in result.units],
        "created": result.created,
        "retired": result.retired,
        "reason": edit.reason,
    }
    audit.record(call.conn, call.principal.event(action, "ok", target=target, detail=detail))


class UnitSide(Protocol):
    """Where the unit routes read and write: a layer's units in force, or a unit plan."""

    def read(self, call: EditCall, code: str) -> dict[str, Any]:
        """The unit as a Feature; sets its ``ETag`` on ``call.response``."""
        ...

    def edit(self, call: EditCall, operation: Operation, edit: UnitEdit) -> dict[str, Any]:
        """Apply, audit and answer one edit; sets ``ETag`` / ``Location`` of ``etag_of``."""
        ...

    def labels(self, call: EditCall) -> Labels:
        """What the side's units are called in refusals (警务单元编辑无效, not 网格)."""
        ...


def shape(
    side: UnitSide,
    call: EditCall,
    obj: dict[str, Any],
    crs: str,
    allowed: tuple[str, ...],
    what: str = "geometry",
) -> BaseGeometry:
    """A request's geometry; a malformed one is refused under the side's layer's title."""
    return geometry_from_geojson(obj, crs, allowed, what, side.labels(call))


def attrs_of(props: UnitProperties) -> dict[str, Any]:
    return props.model_dump(exclude_none=True)


def shape_edit(
    code: str,
    body: ReplaceIn | PatchIn,
    if_match: str | None,
    overlap: Literal["refuse", "take"],
    gap: Literal["refuse", "give"],
) -> UnitEdit:
    """The edit settings of a PUT or PATCH: the same reason, choices and attributes."""
    return UnitEdit(body.reason, if_match, overlap, gap, attrs_of(body.properties), etag_of=code)


def add_unit_edit_routes(router: APIRouter, side_dep: Callable[..., UnitSide], where: str) -> None:
    """Register the read and edit routes of one unit collection on ``router`` (``where``
    names it in the summaries: 部门单元 / 方案中的部门单元)."""
    Side = Annotated[UnitSide, Depends(side_dep)]  # noqa: N806 (a type alias)

    @router.get("/{code}", summary=f"{where}及其 ETag (read a unit with its ETag)")
    def get_unit(code: UnitCode, side: Side, call: EditCallDep) -> dict[str, Any]:
        return side.read(call, code)

    @router.put("/{code}", summary=f"替换{where}形状 (replace the geometry; If-Match)")
    def replace_unit(
        code: UnitCode,
        body: ReplaceIn,
        side: Side,
        call: EditCallDep,
        if_match: IfMatch = None,
        overlap: OverlapQ = "refuse",
        gap: GapQ = "refuse",
        crs: CrsQ = "wgs84",
    ) -> dict[str, Any]:
        geometry = shape(side, call, body.geometry, crs, POLYGONAL)
        return side.edit(
            call, Replace(code, geometry), shape_edit(code, body, if_match, overlap, gap)
        )

    @router.patch("/{code}", summary=f"修改{where} (name, department and / or geometry)")
    def update_unit(
        code: UnitCode,
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
            geometry = shape(side, call, body.geometry, crs, POLYGONAL)
        return side.edit(
            call, Update(code, geometry), shape_edit(code, body, if_match, overlap, gap)
        )

    @router.delete("/{code}", summary=f"撤销{where} (retire; its area goes to neighbours)")
    def retire_unit(
        code: UnitCode,
        side: Side,
        call: EditCallDep,
        reason: Annotated[str, Query(min_length=1, max_length=2000, description="撤销原因")],
        if_match: IfMatch = None,
        gap: GapQ = "refuse",
    ) -> dict[str, Any]:
        return side.edit(call, Retire(code), UnitEdit(reason, if_match, gap=gap))

    @router.post("/merge", summary=f"合并相邻{where} (merge; the lowest code stays)")
    def merge_units(
        body: MergeIn, side: Side, call: EditCallDep, if_match: IfMatch = None
    ) -> dict[str, Any]:
        edit = UnitEdit(body.reason, if_match, etag_of=min(body.codes))
        return side.edit(call, Merge(tuple(body.codes)), edit)

    @router.post("/{code}/split", summary=f"按线拆分{where} (split a unit by a line)")
    def split_unit(
        code: UnitCode,
        body: SplitIn,
        side: Side,
        call: EditCallDep,
        if_match: IfMatch = None,
        crs: CrsQ = "wgs84",
    ) -> dict[str, Any]:
        line = shape(side, call, body.line, crs, LINEAR, what="line")
        return side.edit(call, Split(code, line), UnitEdit(body.reason, if_match, etag_of=code))

    @router.post("/{code}/boundary", summary=f"移动{where}共用边界，相邻单元随之调整")
    def move_boundary(
        code: UnitCode,
        body: BoundaryIn,
        side: Side,
        call: EditCallDep,
        if_match: IfMatch = None,
        crs: CrsQ = "wgs84",
    ) -> dict[str, Any]:
        geometry = shape(side, call, body.geometry, crs, POLYGONAL)
        operation = MoveBoundary(code, body.neighbour, geometry)
        return side.edit(call, operation, UnitEdit(body.reason, if_match, etag_of=code))
