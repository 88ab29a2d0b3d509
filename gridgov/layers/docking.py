"""Docking of grids with department units (条例第六十二条：网格与警务、城管、应急单元对接).

Reads the precomputed ``grid_unit`` table (see :func:`gridgov.layers.assignment.
refresh_grid_units`): for each grid version in force now, the share of its area in each
unit of one layer and level. A grid is *docked* when one unit holds at least
:data:`ONE_UNIT_SHARE` of it; otherwise it *straddles* units, and the pieces are shown
with their shares so that police or planners can see which boundary to move.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Final

from sqlalchemy import Connection, text

from gridgov.errors import InvalidInputError
from gridgov.layers.assignment import UNIT_TARGETS
from gridgov.layers.catalog import GRID
from gridgov.layers.registry import Registry
from gridgov.layers.scope import AreaScope, scope_sql

# A grid lying this much in one unit counts as wholly in it: a sliver along a shared
# boundary is digitising noise, not a docking problem.
ONE_UNIT_SHARE: Final = 0.99
# Pieces smaller than this share of a grid are not drawn or listed (float noise).
SLIVER_SHARE: Final = 0.001

# Grid versions in force now, optionally inside one district / township.
_CURRENT_GRIDS = """
    SELECT g.id, g.code, g.name, g.township_code, g.geom
    FROM grid g
    WHERE g.valid_from <= now() AND (g.valid_to IS NULL OR g.valid_to > now())
      AND (CAST(:district AS text) IS NULL OR g.district_code = :district)
      AND (CAST(:township AS text) IS NULL OR g.township_code = :township)
      AND {scope}
"""


def _current_grids(scope: AreaScope | None) -> tuple[str, dict[str, Any]]:
    """Grids in force (and in the caller's area) as SQL, with its parameters."""
    condition, params = scope_sql(GRID, scope or AreaScope.everything(), "g")
    return _CURRENT_GRIDS.format(scope=condition), params


@dataclass(frozen=True)
class UnitKind:
    """One kind of department unit a grid can dock with (a layer, and a level of it)."""

    layer: str
    level: str
    title_zh: str
    title_en: str


@dataclass(frozen=True)
class TownshipDocking:
    code: str
    name: str
    grids: int  # grid versions in force
    docked: int  # of those, lying (>= ONE_UNIT_SHARE) in one unit
    straddling: int  # lying in two or more units (the rest lie in none: uncovered)
    score: float  # 0–100: area-weighted mean of each grid's largest share


def unit_kinds(registry: Registry) -> tuple[UnitKind, ...]:
    """The kinds ``grid_unit`` holds, titled from the registry (a level's choice, else the
    layer): 派出所辖区, 社区警务区, 城管责任区, 应急网格."""
    kinds = []
    for target in UNIT_TARGETS:
        spec = registry.get(target.layer)
        title_zh, title_en = spec.title_zh, spec.title_en
        if any(col.name == "level" for col in spec.columns):
            choice = spec.column("level").choice(target.level)
            title_zh, title_en = choice.title_zh, choice.title_en
        kinds.append(UnitKind(target.layer, target.level, title_zh, title_en))
    return tuple(kinds)


def unit_kind(registry: Registry, layer: str, level: str | None) -> UnitKind:
    """The kind named by a request; its layer is then safe to use as a table name."""
    for kind in unit_kinds(registry):
        if kind.layer == layer and (level is None or kind.level == level):
            return kind
    raise InvalidInputError(
        "不支持的责任区类型；可选：" + "、".join(k.title_zh for k in unit_kinds(registry)),
        "unknown unit layer / level; use one of "
        + ", ".join(f"{k.layer}/{k.level}" for k in unit_kinds(registry)),
        public={"reason": "unknown_unit_kind"},
    )


def straddling_grids(
    conn: Connection,
    kind: UnitKind,
    district_code: str | None = None,
    township_code: str | None = None,
    scope: AreaScope | None = None,
) -> dict[str, Any]:
    """GeoJSON: one feature per piece of a straddling grid (grid ∩ unit), with its share.

    ``rank`` 1 is the unit holding most of the grid; the pieces of one grid share
    ``grid_code``. Coordinates are CGCS2000 lon/lat, 6 decimals (about 0.1 m).
    """
    current, scope_params = _current_grids(scope)
    rows = conn.execute(
        text(
            f"""
            WITH current AS ({current}),
            shares AS (
                SELECT gu.grid_id, gu.unit_code, gu.share
                FROM grid_unit gu JOIN current c ON c.id = gu.grid_id
                WHERE gu.unit_layer = :layer AND gu.unit_level = :level
                  AND gu.share >= :sliver
            ),
            straddling AS (
                SELECT grid_id FROM shares GROUP BY grid_id
                HAVING max(share) < :one AND count(*) >= 2
            )
            SELECT c.code, c.name, c.township_code, s.unit_code, u.name AS unit_name,
                   s.share,
                   row_number() OVER (PARTITION BY c.id ORDER BY s.share DESC, s.unit_code)
                       AS rank,
                   ST_AsGeoJSON(ST_CollectionExtract(ST_Intersection(c.geom, u.geom), 3), 6)
                       AS piece
            FROM straddling t
            JOIN current c ON c.id = t.grid_id
            JOIN shares s ON s.grid_id = t.grid_id
            JOIN {kind.layer} u ON u.code = s.unit_code
            ORDER BY c.code, rank
            """
        ),
        {
            "layer": kind.layer,
            "level": kind.level,
            "district": district_code,
            "township": township_code,
            "sliver": SLIVER_SHARE,
            "one": ONE_UNIT_SHARE,
            **scope_params,
        },
    )
    features = [
        {
            "type": "Feature",
            "id": f"{r.code}:{r.unit_code}",
            "geometry": json.loads(r.piece),
            "properties": {
                "grid_code": r.code,
                "grid_name": r.name,
                "township_code": r.township_code,
                "unit_code": r.unit_code,
                "unit_name": r.unit_name,
                "share": round(float(r.share), 4),
                "rank": int(r.rank),
            },
        }
        for r in rows
    ]
    return {"type": "FeatureCollection", "features": features}


def township_docking(
    conn: Connection,
    kind: UnitKind,
    district_code: str | None = None,
    scope: AreaScope | None = None,
) -> list[TownshipDocking]:
    """Per township: grids in force (in ``scope``), how many lie in one unit, and a score."""
    current, scope_params = _current_grids(scope)
    rows = conn.execute(
        text(
            f"""
            WITH current AS ({current}),
            best AS (
                SELECT c.id, c.township_code,
                       ST_Area(c.geom::geography) AS area,
                       COALESCE(max(gu.share), 0) AS best,
                       count(gu.unit_code) FILTER (WHERE gu.share >= :sliver) AS units
                FROM current c
                LEFT JOIN grid_unit gu ON gu.grid_id = c.id
                     AND gu.unit_layer = :layer AND gu.unit_level = :level
                GROUP BY c.id, c.township_code, c.geom
            )
            SELECT t.code, t.name, count(*) AS grids,
                   count(*) FILTER (WHERE b.best >= :one) AS docked,
                   count(*) FILTER (WHERE b.best < :one AND b.units >= 2) AS straddling,
                   100.0 * sum(b.best * b.area) / NULLIF(sum(b.area), 0) AS score
            FROM best b JOIN township t ON t.code = b.township_code
            GROUP BY t.code, t.name
            ORDER BY t.code
            """
        ),
        {
            "layer": kind.layer,
            "level": kind.level,
            "district": district_code,
            "township": None,
            "one": ONE_UNIT_SHARE,
            "sliver": SLIVER_SHARE,
            **scope_params,
        },
    )
    return [
        TownshipDocking(
            code=r.code,
            name=r.name,
            grids=int(r.grids),
            docked=int(r.docked),
            straddling=int(r.straddling),
            score=round(float(r.score or 0.0), 1),
        )
        for r in rows
    ]
