"""Unit plans (部门单元调整方案): the unit-side docking proposal saved as a plan.

A unit plan is a row of ``plan`` with ``unit_layer`` / ``unit_code`` set, so that it goes
through the plan workflow unchanged (draft → submitted → approved → published, the same
roles and audit). It holds the proposed shapes of the units the proposal changes in
``plan_unit`` (each with the ``updated_at`` of the live unit it was based on) and, in its
edit log, the proposal's figures: what moves (area, households, incidents, key sites
gained and lost) and the docking score before and after.

Made from :func:`gridgov.layers.docking_proposal.units_from_grids_proposal` (the unit's
boundary made of whole grids; its neighbours give or take the rest), validated at once by
the unit edit rules, and published through the unit write path
(:mod:`gridgov.layers.unit_edit`, operation ``publish``) after checking that none of the
units changed since (409 naming them). Unit plans take force when published: the unit
tables hold the units in force only, so a later effective date is refused.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import shapely
from shapely.geometry import shape
from shapely.geometry.base import BaseGeometry
from sqlalchemy import Connection, text

from gridgov.errors import ConflictError, InvalidInputError
from gridgov.gis.grid_edit import Changes, Options, validate
from gridgov.gis.measures import area_m2, polygon_parts
from gridgov.layers import plans, unit_edit
from gridgov.layers.docking import UnitKind
from gridgov.layers.docking_proposal import units_from_grids_proposal
from gridgov.layers.measures import Period
from gridgov.layers.registry import Registry
from gridgov.layers.scope import AreaScope
from gridgov.layers.unit_edit import Group, Unit, UnitEditResult

# A unit whose proposed shape differs from today's by less than this is unchanged.
CHANGE_M2 = 1.0


def _changed(units: dict[str, Unit], proposed: dict[str, BaseGeometry]) -> dict[str, BaseGeometry]:
    return {
        code: geom
        for code, geom in proposed.items()
        if area_m2(shapely.symmetric_difference(geom, units[code].geometry)) >= CHANGE_M2
    }


def _validated(
    conn: Connection, group: Group, proposed: dict[str, BaseGeometry], max_vertices: int
) -> tuple[Changes, dict[str, Unit]]:
    """The proposal checked by the unit edit rules against the units in force (locked)."""
    unit_edit.lock_group(conn, group.layer, group.district_code)
    _, state, units = unit_edit.state_of(conn, group)
    missing = sorted(set(proposed) - set(units))
    if missing:
        raise ConflictError(
            f"单元 {'、'.join(missing)} 已不在现行单元中",
            f"unit {', '.join(missing)} is no longer in force",
            public={"codes": ",".join(missing)},
        )
    changes = Changes(
        geometries=dict(proposed.items()),
        attrs={code: dict(units[code].attrs) for code in proposed},
    )
    # The proposal is "its neighbours give or take the rest": an overlap left with a
    # neighbour is taken from it, a gap given back, as the explicit edit choices do.
    options = Options(overlap="take", gap="give", max_vertices=max_vertices)
    return validate(state, changes, options), units


def create_from_unit_docking(
    conn: Connection,
    registry: Registry,
    kind: UnitKind,
    unit_code: str,
    period: Period,
    scope: AreaScope,
    *,
    name: str,
    actor: str,
    reason: str,
    max_vertices: int = 5000,
) -> int:
    """A draft unit plan from the unit-side docking proposal; refused (409 / 422 with the
    geometry, nothing written) when the proposal breaks a unit rule."""
    if not name.strip() or not reason.strip() or not actor.strip():
        raise InvalidInputError(
            "方案须有名称、原因与创建人", "a plan needs a name, reason and actor"
        )
    proposal = units_from_grids_proposal(conn, registry, kind, unit_code, period, scope)
    emptied = [n["unit_code"] for n in proposal["neighbours"] if n["emptied"]]
    if emptied:
        raise ConflictError(
            f"按整网格调整后单元 {'、'.join(emptied)} 将不剩面积，不能保存为方案",
            f"unit {', '.join(emptied)} would keep no area; the proposal cannot be a plan",
            public={"codes": ",".join(emptied)},
        )
    proposed = {unit_code: shape(proposal["geometry"])}
    proposed |= {n["unit_code"]: shape(n["geometry"]) for n in proposal["neighbours"]}
    units = {code: unit_edit.current(conn, kind.layer, code) for code in proposed}
    changed = _changed(units, proposed)
    if not changed:
        raise InvalidInputError(
            f"单元 {unit_code} 在其上级单元（或区县）内已由整网格构成，方案没有任何改变",
            f"unit {unit_code} is already made of whole grids within its parent unit (or "
            "district); the plan would change nothing",
        )
    groups = {units[c].group for c in changed}
    if len(groups) > 1:
        parents = sorted({str(g[3] or g[1]) for g in groups})
        raise ConflictError(
            f"按整网格调整会在不同的上级单元或区县（{'、'.join(parents)}）之间移动面积，"
            "下级单元须留在上级单元内；请先调整上级单元",
            f"the proposal moves area between units of different parents or districts "
            f"({', '.join(parents)}); units must stay inside their parent: align the parents "
            "first",
            public={"codes": ",".join(sorted(changed)), "reason": "several_groups"},
        )
    group = unit_edit.group_of([units[c] for c in changed])
    checked, live = _validated(conn, group, changed, max_vertices)
    home = units[unit_code]
    if home.township_code is None:
        raise InvalidInputError(
            f"单元 {unit_code} 没有所属镇街，无法建立方案",
            f"unit {unit_code} has no township code; a plan needs one",
        )
    plan_id = int(
        conn.execute(
            text(
                """
                INSERT INTO plan (name, origin, district_code, township_code, reason, author,
                                  unit_layer, unit_code)
                VALUES (:name, 'proposal', :d, :t, :reason, :author, :l, :u)
                RETURNING id
                """
            ),
            {
                "name": name.strip(),
                "d": home.township_code[:6],
                "t": home.township_code,
                "reason": reason.strip(),
                "author": actor.strip(),
                "l": kind.layer,
                "u": unit_code,
            },
        ).scalar_one()
    )
    for code, geom in sorted(checked.geometries.items()):
        assert geom is not None
        conn.execute(
            text(
                """
                INSERT INTO plan_unit (plan_id, layer, code, base_updated_at, geom)
                VALUES (:p, :l, :c, :b, ST_Multi(ST_GeomFromWKB(:wkb, 4490)))
                """
            ),
            {
                "p": plan_id,
                "l": kind.layer,
                "c": code,
                "b": live[code].updated_at,
                "wkb": shapely.to_wkb(geom),
            },
        )
    summary = {
        "unit_level": kind.level,
        "period": proposal["period"],
        "docking": proposal["docking"],
        "gained": {k: v for k, v in proposal["gained"].items() if k != "geometry"},
        "lost": {k: v for k, v in proposal["lost"].items() if k != "geometry"},
        "grids": proposal["grids"],
    }
    at: datetime = conn.execute(text("SELECT clock_timestamp()")).scalar_one()
    plans.log_edit(
        conn,
        plan_id,
        at,
        actor,
        reason,
        "proposal",
        home.township_code,
        sorted(checked.geometries),
        [],
        summary,
    )
    return plan_id


def _plan_units(conn: Connection, plan_id: int) -> list[Any]:
    rows = conn.execute(
        text(
            "SELECT code, layer, base_updated_at, ST_AsBinary(geom) AS wkb FROM plan_unit "
            "WHERE plan_id = :p ORDER BY code"
        ),
        {"p": plan_id},
    ).all()
    return list(rows)


def units(conn: Connection, plan: plans.Plan) -> dict[str, Any]:
    """The plan's units, proposed and in force today, and the proposal's figures."""
    if plan.unit_layer is None:
        raise InvalidInputError(
            f"方案 {plan.id} 不是部门单元方案", f"plan {plan.id} is no unit plan"
        )
    features = []
    for row in _plan_units(conn, plan.id):
        proposed = shapely.from_wkb(bytes(row.wkb))
        live = conn.execute(
            text(f"SELECT updated_at, ST_AsBinary(geom) AS wkb FROM {row.layer} WHERE code = :c"),
            {"c": row.code},
        ).first()
        today = shapely.from_wkb(bytes(live.wkb)) if live is not None else None
        features.append(
            {
                "type": "Feature",
                "id": row.code,
                "geometry": shapely.geometry.mapping(proposed),
                "properties": {
                    "code": row.code,
                    "layer": row.layer,
                    "stale": live is None or live.updated_at != row.base_updated_at,
                    "today": None if today is None else shapely.geometry.mapping(today),
                    "area_change_m2": None
                    if today is None
                    else round(area_m2(proposed) - area_m2(today), 1),
                },
            }
        )
    log = plans.edit_log(conn, plan.id)
    proposal: dict[str, Any] = next(
        (e["details"] for e in reversed(log) if e["operation"] == "proposal"), {}
    )
    return {
        "plan_id": plan.id,
        "unit_layer": plan.unit_layer,
        "unit_code": plan.row.get("unit_code"),
        "proposal": proposal,
        "units": {"type": "FeatureCollection", "features": features},
    }


def export_gpkg(conn: Connection, plan: plans.Plan) -> bytes:
    """A GeoPackage for QGIS: ``plan_units`` (the proposed shapes), ``today_units`` (the
    same units in force now), ``gained`` and ``lost`` (the pieces that change hands)."""
    body = units(conn, plan)
    proposed: list[dict[str, Any]] = []
    today: list[dict[str, Any]] = []
    gained: list[dict[str, Any]] = []
    lost: list[dict[str, Any]] = []
    for feature in body["units"]["features"]:
        props = feature["properties"]
        after = shape(feature["geometry"])
        row = {"code": props["code"], "layer": props["layer"], "stale": props["stale"]}
        proposed.append({**row, "change": "proposed", "geometry": after})
        if props["today"] is not None:
            before = shape(props["today"])
            today.append({**row, "change": "today", "geometry": before})
            for rows, piece in (
                (gained, shapely.difference(after, before)),
                (lost, shapely.difference(before, after)),
            ):
                parts = [p for p in polygon_parts(piece) if area_m2(p) >= CHANGE_M2]
                if parts:
                    merged = shapely.MultiPolygon(parts)
                    rows.append({**row, "area_m2": round(area_m2(merged), 1), "geometry": merged})
    return plans.geopackage(
        f"plan-{plan.id}",
        {
            "plan_units": (proposed, "MultiPolygon"),
            "today_units": (today, "MultiPolygon"),
            "gained": (gained, "MultiPolygon"),
            "lost": (lost, "MultiPolygon"),
        },
    )


@dataclass
class UnitPublishResult:
    plan: plans.Plan
    edit: UnitEditResult


def publish(
    conn: Connection,
    registry: Registry,
    plan_id: int,
    *,
    actor: str,
    tolerance_m: float,
    max_vertices: int = 5000,
) -> UnitPublishResult:
    """The approved unit plan takes force now, after checking that the units it changes
    are still those it was based on (409 naming them)."""
    plan = plans.lock_plan(conn, plan_id)
    plans.require_status(plan, "approved")
    layer = plan.unit_layer
    if layer is None:
        raise InvalidInputError(
            f"方案 {plan.id} 不是部门单元方案", f"plan {plan.id} is no unit plan"
        )
    rows = _plan_units(conn, plan.id)
    proposed = {r.code: shapely.from_wkb(bytes(r.wkb)) for r in rows}
    bases = {r.code: r.base_updated_at for r in rows}
    live = {}
    for code in proposed:
        found = conn.execute(text(f"SELECT code FROM {layer} WHERE code = :c"), {"c": code}).first()
        if found is not None:
            live[code] = unit_edit.current(conn, layer, code)
    group = unit_edit.group_of(list(live.values())) if live else None
    if group is not None:
        unit_edit.lock_group(conn, layer, group.district_code)
        live = {code: unit_edit.current(conn, layer, code) for code in live}
    stale = sorted(c for c in proposed if c not in live or live[c].updated_at != bases[c])
    if stale or group is None:
        raise ConflictError(
            f"部门单元 {'、'.join(stale)} 在方案创建后已被修改，不能发布；请重新编制方案",
            f"unit {', '.join(stale)} changed since the plan was made; it cannot be published "
            "over them",
            public={"codes": ",".join(stale)},
        )
    checked, units_now = _validated(conn, group, proposed, max_vertices)
    at: datetime = conn.execute(text("SELECT clock_timestamp()")).scalar_one()
    edit = unit_edit.write_unit_changes(
        conn,
        registry,
        layer,
        group,
        "publish",
        units_now,
        checked,
        at,
        actor=actor,
        reason=f"发布方案 {plan.id}「{plan.name}」: {plan.reason}",
        options=Options(max_vertices=max_vertices),
        tolerance_m=tolerance_m,
    )
    conn.execute(
        text(
            "UPDATE plan SET status = 'published', published_at = :now, published_by = :a, "
            "effective_from = :now, updated_at = clock_timestamp() WHERE id = :id"
        ),
        {"now": at, "a": actor, "id": plan.id},
    )
    return UnitPublishResult(plan=plans.get(conn, plan.id), edit=edit)
