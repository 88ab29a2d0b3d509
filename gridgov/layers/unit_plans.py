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
units changed since (409 naming them). Plans edited by hand are made and edited by
:mod:`gridgov.layers.unit_plan_edit`; both kinds publish the same way.

The unit tables hold the units in force only, so a plan published for a later day is
checked at once, then waits (``unit_applied_at`` NULL; its units frozen against live
edits) until :func:`apply_due` writes it on that day: the server runs it every
``GRIDGOV_UNIT_PLAN_POLL_S`` seconds, ``gridgov plans apply-due`` by hand. A plan that can
no longer be applied goes back to approved with the reason in its note.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import shapely
from shapely.geometry import shape
from shapely.geometry.base import BaseGeometry
from sqlalchemy import Connection, Engine, text

from gridgov.errors import ConflictError, InvalidInputError, NotFoundError
from gridgov.gis.grid_edit import Changes, Options, validate
from gridgov.gis.measures import WorkloadWeights, area_m2, polygon_parts
from gridgov.layers import audit, docking_proposal, plans, unit_edit
from gridgov.layers.docking import UnitKind
from gridgov.layers.docking_proposal import units_from_grids_proposal
from gridgov.layers.measures import Period
from gridgov.layers.registry import Registry
from gridgov.layers.scope import AreaScope
from gridgov.layers.unit_edit import Group, Unit, UnitEditResult
from gridgov.layers.unit_plan_edit import PlanUnit, group_of_plan, members, require_unit_plan

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


def _group_members(conn: Connection, plan: plans.Plan) -> dict[str, PlanUnit]:
    """The plan's members, or (its unit gone, e.g. merged away by the plan itself once
    published) nothing: the plan's rows still say what it changed."""
    try:
        return members(conn, plan, group_of_plan(conn, plan))
    except ConflictError:
        return {}


def _rows(conn: Connection, plan_id: int) -> list[Any]:
    return list(
        conn.execute(
            text(
                "SELECT code, layer, change, base_updated_at, ST_AsBinary(geom) AS wkb "
                "FROM plan_unit WHERE plan_id = :p ORDER BY code"
            ),
            {"p": plan_id},
        ).all()
    )


def change_counts(conn: Connection, plan_id: int) -> dict[str, int]:
    """How many units the plan changes, creates and retires."""
    counts = dict.fromkeys(("changed", "created", "retired"), 0)
    rows = conn.execute(
        text("SELECT change, count(*) AS n FROM plan_unit WHERE plan_id = :p GROUP BY change"),
        {"p": plan_id},
    )
    counts.update({str(r.change): int(r.n) for r in rows})
    return counts


def _today(conn: Connection, layer: str, code: str) -> Any:
    return conn.execute(
        text(f"SELECT updated_at, ST_AsBinary(geom) AS wkb FROM {layer} WHERE code = :c"),
        {"c": code},
    ).first()


def units(conn: Connection, plan: plans.Plan) -> dict[str, Any]:
    """The units the plan changes (proposed and in force today), the whole group as the
    plan has it (with plan-side ETags) and the proposal's figures."""
    require_unit_plan(plan)
    features = []
    for row in _rows(conn, plan.id):
        proposed = None if row.wkb is None else shapely.from_wkb(bytes(row.wkb))
        live = _today(conn, row.layer, row.code)
        today = shapely.from_wkb(bytes(live.wkb)) if live is not None else None
        stale = (
            live is not None
            if row.change == "created"
            else live is None or live.updated_at != row.base_updated_at
        )
        features.append(
            {
                "type": "Feature",
                "id": row.code,
                "geometry": None if proposed is None else shapely.geometry.mapping(proposed),
                "properties": {
                    "code": row.code,
                    "layer": row.layer,
                    "change": row.change,
                    "stale": stale,
                    "today": None if today is None else shapely.geometry.mapping(today),
                    "area_change_m2": round(
                        (area_m2(proposed) if proposed is not None else 0.0)
                        - (area_m2(today) if today is not None else 0.0),
                        1,
                    ),
                },
            }
        )
    log = plans.edit_log(conn, plan.id)
    proposal: dict[str, Any] = next(
        (e["details"] for e in reversed(log) if e["operation"] == "proposal"), {}
    )
    group = [m for m in _group_members(conn, plan).values() if m.geometry is not None]
    return {
        "plan_id": plan.id,
        "unit_layer": plan.unit_layer,
        "unit_code": plan.row.get("unit_code"),
        "proposal": proposal,
        "units": {"type": "FeatureCollection", "features": features},
        "group": {"type": "FeatureCollection", "features": [m.feature(plan.id) for m in group]},
    }


def unit(conn: Connection, plan: plans.Plan, code: str) -> PlanUnit:
    """One unit of the plan's group as the plan has it (404 when not there)."""
    found = members(conn, plan, group_of_plan(conn, plan))
    member = found.get(code)
    if member is None or member.geometry is None:
        zh, en = unit_edit.UNIT_TITLES[require_unit_plan(plan)]
        raise NotFoundError(
            f"方案 {plan.id} 中没有{zh} {code}（不在方案的单元组中或已被方案撤销）",
            f"plan {plan.id} holds no {en} {code} (not in its group, or retired by it)",
            public={"code": code},
        )
    return member


def sides(
    conn: Connection, plan: plans.Plan
) -> tuple[dict[str, BaseGeometry], dict[str, BaseGeometry]]:
    """Today's units of the plan's group and the plan's (each code to its shape)."""
    found = members(conn, plan, group_of_plan(conn, plan))
    before = {c: m.live.geometry for c, m in found.items() if m.live is not None}
    after = {c: m.geometry for c, m in found.items() if m.geometry is not None}
    return before, after


def _docked_grids(conn: Connection, plan: plans.Plan) -> dict[str, BaseGeometry]:
    """The grids in force within the group's container, clipped to it."""
    container = docking_proposal.container(conn, group_of_plan(conn, plan))
    return docking_proposal.grids_within(conn, container)


def measures(
    conn: Connection,
    registry: Registry,
    plan: plans.Plan,
    period: Period,
    weights: WorkloadWeights,
) -> dict[str, Any]:
    """Each unit's measures (households, incidents, workload…) and their balance, today
    and in the plan, and the docking score of the grids within the group, before and after."""
    before, after = sides(conn, plan)
    grids = _docked_grids(conn, plan)
    changes = {m.code: m.change for m in members(conn, plan, group_of_plan(conn, plan)).values()}
    planned = plans.side_measures(conn, registry, after, period, weights, with_docking=False)
    today = plans.side_measures(conn, registry, before, period, weights, with_docking=False)
    for item in planned["grids"]:
        item["change"] = changes.get(item["code"], "unchanged")
    return {
        "plan_id": plan.id,
        "unit_layer": plan.unit_layer,
        "period": period.as_dict(),
        "weights": weights.as_dict(),
        "plan": {"units": planned["grids"], "balance": planned["balance"]},
        "today": {"units": today["grids"], "balance": today["balance"]},
        "docking": {
            "grids": len(grids),
            "before": docking_proposal.summary(grids, before),
            "after": docking_proposal.summary(grids, after),
        },
    }


def moves(conn: Connection, plan: plans.Plan, period: Period, limit: int) -> dict[str, Any]:
    """Which buildings (households), key sites and incidents would change unit."""
    before, after = sides(conn, plan)
    return {"plan_id": plan.id, **plans.moves(conn, before, after, period, limit)}


def _side(conn: Connection, plan: plans.Plan | None, area: plans.Plan) -> plans.Side:
    found = members(conn, area if plan is None else plan, group_of_plan(conn, area))
    if plan is None:
        standing = {c: m.live for c, m in found.items() if m.live is not None}
        return plans.Side(
            "live",
            {c: u.geometry for c, u in standing.items()},
            {c: dict(u.attrs) for c, u in standing.items()},
        )
    kept = {c: m for c, m in found.items() if m.geometry is not None}
    return plans.Side(
        f"plan/{plan.id}",
        {c: m.geometry for c, m in kept.items() if m.geometry is not None},
        {c: dict(m.attrs) for c, m in kept.items()},
    )


def group_keys(conn: Connection, found: list[plans.Plan]) -> dict[int, str]:
    """Each unit plan's group as one comparable key (``layer/district/level/parent``), read
    from its unit in force in one query per layer: two unit plans can be compared (diffed)
    exactly when their keys are equal. A plan whose unit is no longer in force has none."""
    keys: dict[int, str] = {}
    for layer in {p.unit_layer for p in found if p.unit_layer}:
        attrs = unit_edit.ATTRIBUTES[layer]
        level = "u.level" if "level" in attrs else "NULL::text"
        parent = "u.parent_code" if "parent_code" in attrs else "NULL::text"
        ids = [p.id for p in found if p.unit_layer == layer]
        rows = conn.execute(
            text(
                f"SELECT p.id, u.district_code, {level} AS level, {parent} AS parent "
                f"FROM plan p JOIN {layer} u ON u.code = p.unit_code WHERE p.id = ANY(:ids)"
            ),
            {"ids": ids},
        )
        for row in rows:
            group = Group(layer, row.district_code, row.level, row.parent)
            keys[int(row.id)] = "/".join(part or "" for part in group.key)
    return keys


def diff(
    conn: Connection, plan: plans.Plan, other: plans.Plan | None, period: Period, limit: int
) -> dict[str, Any]:
    """A unit plan against today (``other`` None) or another plan of the same group."""
    layer = require_unit_plan(plan)
    if other is not None and (
        other.unit_layer != layer or group_of_plan(conn, other) != group_of_plan(conn, plan)
    ):
        raise InvalidInputError(
            f"方案 {other.id} 与方案 {plan.id} 不是同一组部门单元的方案，不能对比",
            f"plan {other.id} does not cover the units of plan {plan.id}; they cannot be compared",
        )
    a = _side(conn, plan, plan)
    b = _side(conn, other, plan)
    changed = sorted(
        code
        for code in set(a.geoms) & set(b.geoms)
        if area_m2(shapely.symmetric_difference(a.geoms[code], b.geoms[code])) >= CHANGE_M2
        or a.attrs[code] != b.attrs[code]
    )
    created = sorted(set(a.geoms) - set(b.geoms))
    retired = sorted(set(b.geoms) - set(a.geoms))
    return {
        "plan_id": plan.id,
        "unit_layer": layer,
        "against": b.label,
        "period": period.as_dict(),
        "units": {
            "changed": changed,
            "created": created,
            "retired": retired,
            "unchanged": sorted(set(a.geoms) & set(b.geoms) - set(changed)),
        },
        "features": plans.diff_features(a, b, changed, created, retired),
        "moves": plans.moves(conn, b.geoms, a.geoms, period, limit),
    }


def export_gpkg(conn: Connection, plan: plans.Plan) -> bytes:
    """A GeoPackage for QGIS: ``plan_units`` (the proposed shapes), ``today_units`` (the
    same units in force now), ``gained`` and ``lost`` (the pieces that change hands)."""
    body = units(conn, plan)
    proposed: list[dict[str, Any]] = []
    today: list[dict[str, Any]] = []
    gained: list[dict[str, Any]] = []
    lost: list[dict[str, Any]] = []
    empty = shapely.Polygon()
    for feature in body["units"]["features"]:
        props = feature["properties"]
        after = shape(feature["geometry"]) if feature["geometry"] is not None else empty
        before = shape(props["today"]) if props["today"] is not None else empty
        row = {
            "code": props["code"],
            "layer": props["layer"],
            "change": props["change"],
            "stale": props["stale"],
        }
        if not after.is_empty:
            proposed.append({**row, "geometry": after})
        if not before.is_empty:
            today.append({**row, "geometry": before})
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


# --------------------------------------------------------------------------- publish


@dataclass
class UnitPublishResult:
    plan: plans.Plan
    effective_from: datetime
    edit: UnitEditResult | None  # None: waits for its later day


@dataclass
class _Prepared:
    group: Group
    live: dict[str, Unit]
    changes: Changes
    new_codes: list[str]


def _prepare(conn: Connection, plan: plans.Plan, max_vertices: int) -> _Prepared:
    """Lock the group and check the plan still applies: the units it changes are those
    it was based on (409 naming them), its codes are free, and the result keeps every
    unit rule (409 / 422 with the geometry). Nothing is written."""
    layer = require_unit_plan(plan)
    group = group_of_plan(conn, plan)
    unit_edit.lock_group(conn, layer, group.district_code)
    _, state, live = unit_edit.state_of(conn, group)
    found = members(conn, plan, group)
    stale = sorted(
        c
        for c, m in found.items()
        if m.change in ("changed", "retired")
        and (m.live is None or m.live.updated_at != m.base_updated_at)
    )
    stale += sorted(c for c, m in found.items() if m.change == "created" and m.live is not None)
    orphans = conn.execute(
        text("SELECT code FROM plan_unit WHERE plan_id = :p AND NOT (code = ANY(:codes))"),
        {"p": plan.id, "codes": list(found)},
    ).scalars()
    stale += sorted(orphans)
    if stale:
        raise ConflictError(
            f"部门单元 {'、'.join(stale)} 在方案编制后已被修改，不能发布；请重新编制方案",
            f"unit {', '.join(stale)} changed since the plan was made; it cannot be published "
            "over them",
            public={"codes": ",".join(stale)},
        )
    changes = Changes()
    new_codes: list[str] = []
    for code, m in sorted(found.items()):
        if m.change == "created" and m.geometry is not None:
            new_codes.append(code)
            changes.new.append((m.geometry, dict(m.attrs)))
        elif m.change == "retired":
            changes.geometries[code] = None
        elif m.change == "changed" and m.geometry is not None:
            changes.geometries[code] = m.geometry
            changes.attrs[code] = dict(m.attrs)
    if not changes.geometries and not changes.new:
        raise InvalidInputError(
            f"方案 {plan.id} 没有任何改变，无需发布", f"plan {plan.id} changes nothing"
        )
    # The plan was checked at every edit; here nothing is taken or given any more: a
    # neighbour changed since must show as a conflict, never be cut silently.
    checked = validate(state, changes, Options(max_vertices=max_vertices))
    unit_edit.check_children(conn, layer, checked, Options(max_vertices=max_vertices))
    unit_edit.refuse_pending(conn, layer, checked.touched, except_plan=plan.id)
    return _Prepared(group, live, checked, new_codes)


def _write(
    conn: Connection,
    registry: Registry,
    plan: plans.Plan,
    prepared: _Prepared,
    at: datetime,
    *,
    actor: str,
    tolerance_m: float,
    max_vertices: int,
) -> UnitEditResult:
    layer = require_unit_plan(plan)
    edit = unit_edit.write_unit_changes(
        conn,
        registry,
        layer,
        prepared.group,
        "publish",
        prepared.live,
        prepared.changes,
        at,
        actor=actor,
        reason=f"发布方案 {plan.id}「{plan.name}」: {plan.reason}",
        options=Options(max_vertices=max_vertices),
        tolerance_m=tolerance_m,
        new_codes=prepared.new_codes,
    )
    conn.execute(
        text(
            "UPDATE plan SET unit_applied_at = :at, updated_at = clock_timestamp() WHERE id = :id"
        ),
        {"at": edit.at, "id": plan.id},
    )
    return edit


def publish(
    conn: Connection,
    registry: Registry,
    plan_id: int,
    *,
    actor: str,
    effective_from: datetime | None,
    tolerance_m: float,
    max_vertices: int = 5000,
) -> UnitPublishResult:
    """The approved unit plan takes force now (``effective_from`` None or past), or is
    checked now and waits for its later moment (:func:`apply_due`)."""
    plan = plans.lock_plan(conn, plan_id)
    plans.require_status(plan, "approved")
    prepared = _prepare(conn, plan, max_vertices)
    now: datetime = conn.execute(text("SELECT clock_timestamp()")).scalar_one()
    later = effective_from is not None and effective_from > now
    at = effective_from if later and effective_from is not None else now
    conn.execute(
        text(
            "UPDATE plan SET status = 'published', published_at = :now, published_by = :a, "
            "effective_from = :at, updated_at = clock_timestamp() WHERE id = :id"
        ),
        {"now": now, "at": at, "a": actor, "id": plan.id},
    )
    edit = None
    if not later:
        edit = _write(
            conn,
            registry,
            plan,
            prepared,
            now,
            actor=actor,
            tolerance_m=tolerance_m,
            max_vertices=max_vertices,
        )
    return UnitPublishResult(plan=plans.get(conn, plan.id), effective_from=at, edit=edit)


@dataclass
class Applied:
    plan_id: int
    edit_id: int | None  # None: it could not be applied and went back to approved
    problem: str | None = None


def due(conn: Connection, now: datetime) -> list[int]:
    """Published unit plans whose moment has come and that are not written yet."""
    return [
        int(i)
        for i in conn.execute(
            text(
                "SELECT id FROM plan WHERE unit_layer IS NOT NULL AND status = 'published' "
                "AND unit_applied_at IS NULL AND effective_from <= :now "
                "ORDER BY effective_from, id"
            ),
            {"now": now},
        ).scalars()
    ]


def apply_one(
    conn: Connection,
    registry: Registry,
    plan_id: int,
    now: datetime,
    *,
    tolerance_m: float,
    max_vertices: int = 5000,
) -> Applied | None:
    """Write one due plan at its effective moment (None: not due, or applied meanwhile).
    A plan that no longer applies goes back to approved, the reason in its note."""
    plan = plans.lock_plan(conn, plan_id)
    row = plan.row
    if (
        plan.status != "published"
        or row.get("unit_applied_at") is not None
        or row["effective_from"] > now
    ):
        return None
    try:
        with conn.begin_nested():
            prepared = _prepare(conn, plan, max_vertices)
            edit = _write(
                conn,
                registry,
                plan,
                prepared,
                row["effective_from"],
                actor=str(row["published_by"]),
                tolerance_m=tolerance_m,
                max_vertices=max_vertices,
            )
        return Applied(plan.id, edit.edit_id)
    except (InvalidInputError, ConflictError, NotFoundError) as refused:
        note = f"定于 {row['effective_from'].isoformat()} 生效时无法施行：{refused.detail_zh}"
        conn.execute(
            text(
                "UPDATE plan SET status = 'approved', published_at = NULL, published_by = NULL, "
                "effective_from = NULL, note = :note, updated_at = clock_timestamp() "
                "WHERE id = :id"
            ),
            {"note": note, "id": plan.id},
        )
        return Applied(plan.id, None, note)


def apply_due(
    engine: Engine,
    registry: Registry,
    *,
    tolerance_m: float,
    max_vertices: int = 5000,
    now: datetime | None = None,
) -> list[Applied]:
    """Write every due unit plan, each in its own transaction, with an audit row (the
    server calls this every ``unit_plan_poll_s`` seconds; so does ``gridgov plan
    apply-due``). Several processes may run it at once: the plan row lock decides."""
    with engine.connect() as conn:
        moment = now or conn.execute(text("SELECT clock_timestamp()")).scalar_one()
        waiting = due(conn, moment)
    done: list[Applied] = []
    for plan_id in waiting:
        with engine.begin() as conn:
            applied = apply_one(
                conn,
                registry,
                plan_id,
                moment,
                tolerance_m=tolerance_m,
                max_vertices=max_vertices,
            )
            if applied is None:
                continue
            audit.record(
                conn,
                audit.AuditEvent(
                    action="plan_apply",
                    outcome="ok" if applied.edit_id is not None else "refused",
                    username="system",
                    target=f"plan/{plan_id}",
                    detail={"unit_edit": applied.edit_id, "problem": applied.problem},
                ),
            )
            done.append(applied)
    return done
