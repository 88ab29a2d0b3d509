"""Docking proposals against the database: read today's grids and units, propose, and
count what would move (households, incidents, key sites) with the docking score before
and after. The geometry is pure (:mod:`gridgov.gis.docking_proposal`); nothing is written.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, replace
from typing import Any

import shapely
from shapely.geometry import mapping
from shapely.geometry.base import BaseGeometry
from sqlalchemy import Connection, text

from gridgov.errors import InvalidInputError, NotFoundError
from gridgov.gis.docking import docking_summary
from gridgov.gis.docking_proposal import (
    LEFT_REASONS,
    GridsFollowUnits,
    grid_shares,
    grids_follow_units,
    units_from_grids,
)
from gridgov.gis.grid_codes import community_of
from gridgov.gis.grid_edit import Options, Update
from gridgov.gis.measures import area_m2, polygon_parts
from gridgov.layers import docking, grid_edit, plans, unit_edit
from gridgov.layers.assignment import UNIT_TARGETS
from gridgov.layers.docking import UnitKind
from gridgov.layers.measures import Period, gather
from gridgov.layers.registry import Registry
from gridgov.layers.scope import AreaScope, scope_sql

_IN_FORCE = "g.valid_from <= now() AND (g.valid_to IS NULL OR g.valid_to > now())"


def _level_filter(kind: UnitKind) -> str:
    for target in UNIT_TARGETS:
        if (target.layer, target.level) == (kind.layer, kind.level):
            return target.level_filter
    raise ValueError(f"no unit target for {kind}")  # unit_kind() only makes known kinds


def _geoms(rows: Any) -> dict[str, BaseGeometry]:
    return {str(r.code): shapely.from_wkb(bytes(r.wkb)) for r in rows}


def _township_grids(conn: Connection, township_code: str) -> dict[str, BaseGeometry]:
    rows = conn.execute(
        text(
            f"SELECT g.code, ST_AsBinary(g.geom) AS wkb FROM grid g "
            f"WHERE g.township_code = :t AND {_IN_FORCE} ORDER BY g.code"
        ),
        {"t": township_code},
    )
    return _geoms(rows)


def _units_meeting_grids(
    conn: Connection, kind: UnitKind, where: str, params: Mapping[str, Any]
) -> dict[str, BaseGeometry]:
    """The units of ``kind`` whose interior meets a grid in force matching ``where``."""
    rows = conn.execute(
        text(
            f"""
            SELECT u.code, ST_AsBinary(u.geom) AS wkb FROM {kind.layer} u
            WHERE {_level_filter(kind)} AND EXISTS (
                SELECT 1 FROM grid g
                WHERE {where} AND {_IN_FORCE}
                  AND ST_Intersects(g.geom, u.geom) AND NOT ST_Touches(g.geom, u.geom))
            ORDER BY u.code
            """
        ),
        dict(params),
    )
    return _geoms(rows)


def summary(grids: Mapping[str, BaseGeometry], units: Mapping[str, BaseGeometry]) -> dict[str, Any]:
    found = docking_summary(grid_shares(grids, units), docking.ONE_UNIT_SHARE, docking.SLIVER_SHARE)
    return {k: v for k, v in asdict(found).items() if k != "items"}


def _counts(
    conn: Connection, geoms: Mapping[str, BaseGeometry], period: Period
) -> dict[str, dict[str, int]]:
    """Buildings, households, population, incidents of the period and key sites in each."""
    counted = gather(conn, geoms, period)
    return {
        key: {
            "buildings": c.buildings,
            "households": c.households,
            "population": c.population,
            "incidents": c.incidents,
            "key_sites": c.key_sites,
        }
        for key, c in counted.items()
    }


def _kind_out(kind: UnitKind) -> dict[str, str]:
    return {
        "unit_layer": kind.layer,
        "unit_level": kind.level,
        "title": kind.title_zh,
        "title_en": kind.title_en,
    }


def _follow(
    conn: Connection, township_code: str, kind: UnitKind
) -> tuple[dict[str, BaseGeometry], dict[str, BaseGeometry], GridsFollowUnits]:
    grids = _township_grids(conn, township_code)
    if not grids:
        raise NotFoundError(
            f"镇街 {township_code} 没有现行网格", f"no grids in force in {township_code}"
        )
    units = _units_meeting_grids(conn, kind, "g.township_code = :t", {"t": township_code})
    result = grids_follow_units(
        grids,
        units,
        one_unit_share=docking.ONE_UNIT_SHARE,
        group_of={code: community_of(code) for code in grids},
    )
    return grids, units, result


def grids_follow_units_proposal(
    conn: Connection,
    registry: Registry,
    township_code: str,
    kind: UnitKind,
    period: Period,
) -> dict[str, Any]:
    """For a township: its grids adjusted to follow the units' boundaries, with what moves."""
    grids, units, result = _follow(conn, township_code, kind)
    pieces = {f"move-{i}": m.geometry for i, m in enumerate(result.moves)}
    changed = result.changed
    before = _counts(conn, {c: grids[c] for c in changed}, period)
    after = _counts(conn, {c: result.grids[c] for c in changed}, period)
    moved = _counts(conn, pieces, period)
    return {
        "township_code": township_code,
        **_kind_out(kind),
        "period": period.as_dict(),
        "docking": {"before": summary(grids, units), "after": summary(result.grids, units)},
        "moves": [
            {
                "from_code": m.from_code,
                "to_code": m.to_code,
                "unit_code": m.unit,
                "area_m2": m.area_m2,
                **moved[f"move-{i}"],
                "geometry": mapping(m.geometry),
            }
            for i, m in enumerate(result.moves)
        ],
        "left": [
            {
                "code": p.code,
                "unit_code": p.unit,
                "area_m2": p.area_m2,
                "reason": p.reason,
                "message": LEFT_REASONS[p.reason][0],
                "message_en": LEFT_REASONS[p.reason][1],
                "geometry": mapping(p.geometry),
            }
            for p in result.left
        ],
        "grids": {
            "type": "FeatureCollection",
            "features": [
                {
                    "type": "Feature",
                    "id": code,
                    "geometry": mapping(result.grids[code]),
                    "properties": {
                        "code": code,
                        "unit_code": result.main_unit[code],
                        "before": before[code],
                        "after": after[code],
                    },
                }
                for code in changed
            ],
        },
    }


def plan_grids_follow_units(
    conn: Connection,
    registry: Registry,
    township_code: str,
    kind: UnitKind,
    *,
    actor: str,
    reason: str,
    name: str,
    tolerance_m: float,
    max_vertices: int,
) -> int:
    """The grid-side proposal as a draft plan of the township: one edit per move, each the
    receiving grid taking its piece from the giver (``overlap=take``), validated like any
    plan edit. Nothing live changes; a refused edit leaves no plan behind."""
    _grids, _units, result = _follow(conn, township_code, kind)
    if not result.moves:
        raise InvalidInputError(
            f"镇街 {township_code} 的网格无需或无法随{kind.title_zh}调整",
            f"no grid of {township_code} can be moved to follow the {kind.layer} units",
            public={"reason": "nothing_to_move"},
        )
    with conn.begin_nested():
        plan_id = plans.create(
            conn,
            name=name,
            actor=actor,
            reason=reason,
            township_code=township_code,
            origin="proposal",
        )
        plan = plans.get(conn, plan_id)
        target = plans.PlanTarget(plan_id)
        for move in result.moves:
            receiver = plans.grid(conn, plan, move.to_code)
            grid_edit.apply_edit(
                conn,
                registry,
                Update(code=move.to_code, geometry=shapely.union(receiver.geometry, move.geometry)),
                actor=actor,
                reason=f"{reason}（{move.from_code} → {move.to_code}，{move.unit}）",
                if_match=[receiver.etag],
                options=Options(overlap="take", max_vertices=max_vertices),
                tolerance_m=tolerance_m,
                target=target,
            )
    return plan_id


def _unit(
    conn: Connection, registry: Registry, kind: UnitKind, code: str, scope: AreaScope
) -> BaseGeometry:
    condition, params = scope_sql(registry.get(kind.layer), scope, "u")
    row = conn.execute(
        text(
            f"SELECT ST_AsBinary(u.geom) AS wkb FROM {kind.layer} u "
            f"WHERE u.code = :code AND {_level_filter(kind)} AND {condition}"
        ),
        {"code": code, **params},
    ).first()
    if row is None:
        raise NotFoundError(f"没有责任区 {code}", f"no {kind.layer} {code}")
    return shapely.from_wkb(bytes(row.wkb))


def container(conn: Connection, group: unit_edit.Group) -> BaseGeometry:
    """The parent unit of ``group``, else (no parent, or a parent code that names no unit
    in force) its district."""
    try:
        return unit_edit.container_of(conn, group)
    except NotFoundError:
        return unit_edit.container_of(conn, replace(group, parent_code=None))


def grids_within(conn: Connection, area: BaseGeometry) -> dict[str, BaseGeometry]:
    """The grids in force meeting ``area``'s interior, clipped to it."""
    rows = conn.execute(
        text(
            f"SELECT g.code, ST_AsBinary(g.geom) AS wkb FROM grid g "
            f"WHERE {_IN_FORCE} AND ST_Intersects(g.geom, ST_GeomFromWKB(:a, 4490)) "
            f"AND NOT ST_Touches(g.geom, ST_GeomFromWKB(:a, 4490)) ORDER BY g.code"
        ),
        {"a": shapely.to_wkb(area)},
    )
    return {
        code: inside
        for code, grid in _geoms(rows).items()
        if area_m2(inside := _pieces(shapely.intersection(grid, area))) > 0
    }


def _pieces(geom: BaseGeometry) -> BaseGeometry:
    """Only the polygonal part of an overlay, and nothing for float noise."""
    parts = [p for p in polygon_parts(geom) if area_m2(p) >= 1.0]
    return shapely.union_all(parts) if parts else shapely.Polygon()


def units_from_grids_proposal(
    conn: Connection,
    registry: Registry,
    kind: UnitKind,
    unit_code: str,
    period: Period,
    scope: AreaScope,
) -> dict[str, Any]:
    """For one unit: its boundary made of whole grids, with what it gains and loses.

    Within what the unit must stay inside (its parent unit, else its district): a grid that
    straddles that edge counts only with its part inside, and area moves only between units
    of the same parent. Units nest; aligning the parent with the grids is the parent's own
    proposal. (Whole grids across the parent's edge made most proposals for policing areas
    impossible to save: they moved area into another station or district.)
    """
    geom = _unit(conn, registry, kind, unit_code, scope)
    home = unit_edit.group_of([unit_edit.current(conn, kind.layer, unit_code)])
    rows = conn.execute(
        text(
            f"SELECT g.code, ST_AsBinary(g.geom) AS wkb FROM grid g "
            f"WHERE {_IN_FORCE} AND ST_Intersects(g.geom, ST_GeomFromWKB(:u, 4490)) "
            f"AND NOT ST_Touches(g.geom, ST_GeomFromWKB(:u, 4490)) ORDER BY g.code"
        ),
        {"u": shapely.to_wkb(geom)},
    )
    whole = _geoms(rows)
    meeting = (
        _units_meeting_grids(conn, kind, "g.code = ANY(:codes)", {"codes": list(whole)})
        if whole
        else {unit_code: geom}
    )
    siblings = unit_edit.group_codes(conn, home)
    units = {code: unit for code, unit in meeting.items() if code in siblings}
    # Where area may move: inside the parent (or district), never into a unit of another.
    room = shapely.difference(
        container(conn, home),
        shapely.union_all([u for code, u in meeting.items() if code not in siblings]),
    )
    grids = {
        code: inside
        for code, grid in whole.items()
        if area_m2(inside := _pieces(shapely.intersection(grid, room))) > 0
    }
    result = units_from_grids(grids, units, one_unit_share=docking.ONE_UNIT_SHARE)
    proposed = result.units[unit_code]
    gained = _pieces(shapely.difference(proposed, geom))
    lost = _pieces(shapely.difference(geom, proposed))
    moved = _counts(conn, {"gained": gained, "lost": lost}, period)
    neighbours = sorted(set(units) - {unit_code})
    return {
        "unit_code": unit_code,
        **_kind_out(kind),
        "period": period.as_dict(),
        "grids": [{"code": g, "unit_code": result.main_unit[g]} for g in sorted(grids)],
        "docking": {
            "before": summary(grids, units),
            "after": summary(grids, result.units),
        },
        "gained": {
            "area_m2": round(area_m2(gained), 1),
            **moved["gained"],
            "geometry": mapping(gained),
        },
        "lost": {"area_m2": round(area_m2(lost), 1), **moved["lost"], "geometry": mapping(lost)},
        "neighbours": [
            {"unit_code": n, "emptied": n in result.emptied, "geometry": mapping(result.units[n])}
            for n in neighbours
        ],
        "geometry": mapping(proposed),
    }
