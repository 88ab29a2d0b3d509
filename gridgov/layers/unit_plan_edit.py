"""Edits into a unit plan (部门单元方案): the unit edit rules on the plan's copy of a group.

A unit plan covers one *group* (:class:`gridgov.layers.unit_edit.Group`: the plan's unit
and its siblings). The plan's view of the group is today's units overlaid with its
``plan_unit`` rows: a changed unit (new shape and / or attributes, with the ``updated_at``
of the live unit it was based on), a unit it retires (no shape) and a unit it creates
(a code reserved at once, so that no live edit or other plan gives it again). Edits run
exactly the live rules (:func:`gridgov.gis.grid_edit.validate`, the parent's children
check) against that view, under the plan's row lock, and write only ``plan_unit`` and the
plan's edit log: nothing in force changes until the plan is published
(:func:`gridgov.layers.unit_plans.publish`).

ETags: a unit the plan holds a row for has a plan-side ETag (``"pu{plan}-{row}-{stamp}"``,
never equal to a live one); a unit it does not touch keeps its live ETag.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import shapely
from shapely.geometry.base import BaseGeometry
from sqlalchemy import Connection, text
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.sql.expression import bindparam

from gridgov.errors import ConflictError, InvalidInputError
from gridgov.gis.grid_edit import CommunityState, Operation, Options, validate
from gridgov.gis.measures import area_m2
from gridgov.layers import plans, unit_edit
from gridgov.layers.grid_edit import check_etags
from gridgov.layers.unit_edit import Group, Unit

# A changed unit whose shape differs from today's by less than this (and whose attributes
# equal today's) is unchanged again: its plan row goes.
SAME_M2 = 1.0


@dataclass(frozen=True)
class PlanUnit:
    """One unit of the group as the plan has it."""

    layer: str
    code: str
    change: str  # unchanged / changed / created / retired
    attrs: dict[str, Any]
    geometry: BaseGeometry | None  # None: retired in the plan
    etag: str
    live: Unit | None  # the unit in force (None: created by the plan)
    row_id: int | None = None
    base_updated_at: datetime | None = None

    @property
    def district_code(self) -> str | None:
        return self.live.district_code if self.live else None

    @property
    def township_code(self) -> str | None:
        return self.live.township_code if self.live else None

    def feature(self, plan_id: int) -> dict[str, Any]:
        base = f"/plans/{plan_id}/units/{self.code}"
        return {
            "type": "Feature",
            "id": self.code,
            "geometry": None
            if self.geometry is None
            else json.loads(shapely.to_geojson(self.geometry)),
            "properties": {
                "layer": self.layer,
                "code": self.code,
                "district_code": self.district_code,
                "township_code": self.township_code,
                **self.attrs,
                "change": self.change,
                "etag": self.etag,
            },
            "links": [{"rel": "self", "href": base}],
        }


def _row_etag(plan_id: int, row_id: int, updated_at: datetime) -> str:
    return f'"pu{plan_id}-{row_id}-{int(updated_at.timestamp() * 1_000_000)}"'


def require_unit_plan(plan: plans.Plan) -> str:
    if plan.unit_layer is None:
        raise InvalidInputError(
            f"方案 {plan.id} 不是部门单元方案（网格方案见 /plans/{plan.id}/grids）",
            f"plan {plan.id} is no unit plan (its grids are at /plans/{plan.id}/grids)",
        )
    return plan.unit_layer


def group_of_plan(conn: Connection, plan: plans.Plan) -> Group:
    """The group the plan covers: that of its unit, which must still be in force."""
    layer = require_unit_plan(plan)
    code = str(plan.row["unit_code"])
    found = conn.execute(text(f"SELECT 1 FROM {layer} WHERE code = :c"), {"c": code}).first()
    if found is None:
        raise ConflictError(
            f"方案 {plan.id} 所属的单元 {code} 已不在现行单元中；请重新编制方案",
            f"unit {code} of plan {plan.id} is no longer in force; make the plan again",
            public={"codes": code},
        )
    return unit_edit.group_of([unit_edit.current(conn, layer, code)])


def members(conn: Connection, plan: plans.Plan, group: Group) -> dict[str, PlanUnit]:
    """Every unit of the group as the plan has it, retired ones included."""
    layer = group.layer
    _, _, live = unit_edit.state_of(conn, group, lock=False)
    out = {
        code: PlanUnit(layer, code, "unchanged", dict(u.attrs), u.geometry, u.etag, u)
        for code, u in live.items()
    }
    rows = conn.execute(
        text(
            "SELECT id, code, change, attrs, base_updated_at, updated_at, "
            "ST_AsBinary(geom) AS wkb FROM plan_unit WHERE plan_id = :p ORDER BY code"
        ),
        {"p": plan.id},
    ).all()
    for row in rows:
        today = live.get(row.code)
        attrs = dict(row.attrs) if row.attrs is not None else dict(today.attrs if today else {})
        out[row.code] = PlanUnit(
            layer,
            row.code,
            row.change,
            attrs,
            None if row.wkb is None else shapely.from_wkb(bytes(row.wkb)),
            _row_etag(plan.id, int(row.id), row.updated_at),
            today,
            int(row.id),
            row.base_updated_at,
        )
    return out


def plan_state(
    conn: Connection, plan: plans.Plan
) -> tuple[Group, CommunityState, dict[str, PlanUnit]]:
    """The plan's group, its state for the edit rules and its members."""
    group = group_of_plan(conn, plan)
    found = members(conn, plan, group)
    standing = {c: m for c, m in found.items() if m.geometry is not None}
    state = CommunityState(
        community_code=group.parent_code or group.district_code,
        community=unit_edit.container_of(conn, group),
        grids={c: m.geometry for c, m in standing.items() if m.geometry is not None},
        attrs={c: m.attrs for c, m in standing.items()},
        labels=unit_edit.labels(group.layer, group.parent_code),
    )
    return group, state, found


@dataclass
class PlanUnitEditResult:
    edit_id: int
    operation: str
    at: datetime
    plan: plans.Plan
    units: list[PlanUnit]
    created: list[str]
    retired: list[str]
    followers: list[str] = field(default_factory=list)


def apply(
    conn: Connection,
    plan_id: int,
    operation: Operation,
    *,
    actor: str,
    reason: str,
    if_match: Sequence[str] | None,
    options: Options,
    attrs: Mapping[str, Any] | None = None,
) -> PlanUnitEditResult:
    """Validate one unit edit against the plan's view and store it in the plan (only a
    draft takes edits); refusals raise and write nothing."""
    if not actor.strip() or not reason.strip():
        raise InvalidInputError(
            "每次部门单元调整都须注明操作人与原因", "every unit edit needs an actor and a reason"
        )
    plan = plans.lock_plan(conn, plan_id)
    plans.require_status(plan, "draft")
    group, state, found = plan_state(conn, plan)
    standing = {c: m for c, m in found.items() if m.geometry is not None}
    check_etags(standing, operation.named, if_match, state.labels)
    changes = operation.build(state)
    unit_edit.set_attributes(group.layer, group, operation, state, changes, attrs or {})
    changes = validate(state, changes, options)
    unit_edit.check_children(conn, group.layer, changes, options)
    gone = [c for c in changes.touched if found[c].change != "created" and found[c].live is None]
    if gone:
        raise ConflictError(
            f"单元 {'、'.join(gone)} 已不在现行单元中（方案编制后被撤销），请重新编制方案",
            f"unit {', '.join(gone)} is no longer in force (retired since the plan was made); "
            "make the plan again",
            public={"codes": ",".join(gone)},
        )
    at: datetime = conn.execute(text("SELECT clock_timestamp()")).scalar_one()
    retired = sorted(c for c, g in changes.geometries.items() if g is None)
    for code in changes.touched:
        _store(conn, plan.id, found[code], changes.geometries, changes.attrs.get(code))
    new_codes = unit_edit.next_unit_codes(
        unit_edit.code_prefix(group.layer, group, operation.operation, changes.touched),
        unit_edit.ever_used_codes(conn, group.layer),
        len(changes.new),
    )
    for code, (geom, values) in zip(new_codes, changes.new, strict=True):
        _insert(conn, plan.id, group.layer, code, "created", None, geom, values)
    edit_id = plans.log_edit(
        conn,
        plan.id,
        at,
        actor,
        reason,
        operation.operation,
        plan.township_code,
        sorted({*changes.touched, *new_codes}),
        retired,
        {"layer": group.layer, "created": new_codes, "followers": list(changes.followers)},
    )
    after = members(conn, plan, group)
    shown = [after[c] for c in sorted({*changes.touched, *new_codes}) if c in after]
    return PlanUnitEditResult(
        edit_id=edit_id,
        operation=operation.operation,
        at=at,
        plan=plans.get(conn, plan.id),
        units=shown,
        created=new_codes,
        retired=retired,
        followers=list(changes.followers),
    )


def _same_as_today(unit: Unit, geom: BaseGeometry, attrs: Mapping[str, Any]) -> bool:
    moved = area_m2(shapely.symmetric_difference(geom, unit.geometry))
    return moved < SAME_M2 and dict(attrs) == dict(unit.attrs)


def _store(
    conn: Connection,
    plan_id: int,
    member: PlanUnit,
    geometries: Mapping[str, BaseGeometry | None],
    attrs: Mapping[str, Any] | None,
) -> None:
    """One touched unit into the plan: a created unit retired again is gone; a changed
    unit back to today's shape and attributes is unchanged again (its row goes)."""
    geom = geometries.get(member.code, member.geometry)
    values = dict(attrs) if attrs is not None else dict(member.attrs)
    if member.change == "created":
        if geom is None:
            conn.execute(
                text("DELETE FROM plan_unit WHERE plan_id = :p AND code = :c"),
                {"p": plan_id, "c": member.code},
            )
        else:
            _update(conn, plan_id, member.code, "created", geom, values)
        return
    live = member.live
    assert live is not None  # apply() refused edits of units no longer in force
    if geom is not None and _same_as_today(live, geom, values):
        conn.execute(
            text("DELETE FROM plan_unit WHERE plan_id = :p AND code = :c"),
            {"p": plan_id, "c": member.code},
        )
        return
    change = "retired" if geom is None else "changed"
    if member.row_id is None:
        _insert(conn, plan_id, live.layer, live.code, change, live.updated_at, geom, values)
    else:
        _update(conn, plan_id, member.code, change, geom, values)


def _wkb(geom: BaseGeometry | None) -> bytes | None:
    return None if geom is None else shapely.to_wkb(geom)


def _insert(
    conn: Connection,
    plan_id: int,
    layer: str,
    code: str,
    change: str,
    base: datetime | None,
    geom: BaseGeometry | None,
    attrs: Mapping[str, Any],
) -> None:
    conn.execute(
        text(
            """
            INSERT INTO plan_unit (plan_id, layer, code, change, base_updated_at, attrs, geom)
            VALUES (:p, :l, :c, :change, :b, :attrs,
                    ST_Multi(ST_GeomFromWKB(CAST(:wkb AS bytea), 4490)))
            """
        ).bindparams(bindparam("attrs", type_=JSONB)),
        {
            "p": plan_id,
            "l": layer,
            "c": code,
            "change": change,
            "b": base,
            "attrs": dict(attrs),
            "wkb": _wkb(geom),
        },
    )


def _update(
    conn: Connection,
    plan_id: int,
    code: str,
    change: str,
    geom: BaseGeometry | None,
    attrs: Mapping[str, Any],
) -> None:
    conn.execute(
        text(
            """
            UPDATE plan_unit SET change = :change, attrs = :attrs,
                   geom = ST_Multi(ST_GeomFromWKB(CAST(:wkb AS bytea), 4490)),
                   updated_at = clock_timestamp()
            WHERE plan_id = :p AND code = :c
            """
        ).bindparams(bindparam("attrs", type_=JSONB)),
        {"p": plan_id, "c": code, "change": change, "attrs": dict(attrs), "wkb": _wkb(geom)},
    )


def create(
    conn: Connection,
    layer: str,
    unit_code: str,
    *,
    name: str,
    reason: str,
    actor: str,
    scope: Any = None,
) -> int:
    """An empty draft unit plan for ``unit_code``'s group (404 outside the caller's area)."""
    if not name.strip() or not reason.strip() or not actor.strip():
        raise InvalidInputError(
            "方案须有名称、原因与创建人", "a plan needs a name, reason and actor"
        )
    unit = unit_edit.current(conn, unit_edit.require_layer(layer), unit_code, scope)
    township = unit.township_code
    if township is None:
        raise InvalidInputError(
            f"单元 {unit_code} 没有所属镇街，无法建立方案",
            f"unit {unit_code} has no township code; a plan needs one",
        )
    return int(
        conn.execute(
            text(
                """
                INSERT INTO plan (name, origin, district_code, township_code, reason, author,
                                  unit_layer, unit_code)
                VALUES (:name, 'editor', :d, :t, :reason, :author, :l, :u)
                RETURNING id
                """
            ),
            {
                "name": name.strip(),
                "d": township[:6],
                "t": township,
                "reason": reason.strip(),
                "author": actor.strip(),
                "l": layer,
                "u": unit_code,
            },
        ).scalar_one()
    )
