"""The statements that gather what lies in grids, and the measure reports built from them.

Inputs are counted spatially against the geometries given (stored or proposed alike):
a point on the shared edge of two given geometries counts once, for the lowest key (the
assignment engine's rule); a polygon (a hazard area, a site) counts for every geometry
whose interior it reaches. The measures themselves are pure (:mod:`gridgov.gis.measures`,
:mod:`gridgov.gis.coverage`, :mod:`gridgov.gis.docking`).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any

import shapely
from shapely.geometry.base import BaseGeometry
from sqlalchemy import Connection, text

from gridgov.errors import InvalidInputError, NotFoundError
from gridgov.gis.coverage import KIND_TITLES, Piece, coverage_pieces, totals
from gridgov.gis.docking import GridShares, docking_summary
from gridgov.gis.measures import (
    RISK_LEVELS,
    GridCounts,
    WorkloadWeights,
    area_m2,
    balance,
    grid_measures,
)
from gridgov.layers import docking, grid_edit
from gridgov.layers.assignment import UNIT_TARGETS
from gridgov.layers.registry import Registry


@dataclass(frozen=True)
class Period:
    """Incidents reported in ``[start, end)``."""

    start: datetime
    end: datetime

    @property
    def days(self) -> float:
        return (self.end - self.start).total_seconds() / 86_400.0

    def as_dict(self) -> dict[str, Any]:
        return {"from": self.start.isoformat(), "to": self.end.isoformat(), "days": self.days}


def _stage(conn: Connection, geoms: Mapping[str, BaseGeometry]) -> None:
    conn.execute(
        text(
            "CREATE TEMP TABLE IF NOT EXISTS measure_input "
            "(key text PRIMARY KEY, geom geometry(Geometry, 4490) NOT NULL) ON COMMIT DROP"
        )
    )
    conn.execute(text("DELETE FROM measure_input"))
    if geoms:
        conn.execute(
            text("INSERT INTO measure_input (key, geom) VALUES (:key, ST_GeomFromWKB(:wkb, 4490))"),
            [{"key": k, "wkb": shapely.to_wkb(g)} for k, g in geoms.items()],
        )
    conn.execute(text("ANALYZE measure_input"))


def _hits(table: str, aggregates: str, where: str = "TRUE", by: str = "") -> str:
    """Per key (and ``by`` columns), aggregates over the rows of ``table`` lying in it."""
    return f"""
        SELECT key{by}, {aggregates} FROM (
            SELECT m.key, p.*, row_number() OVER (PARTITION BY p.id ORDER BY m.key) AS rn
            FROM measure_input m
            JOIN {table} p ON ST_Intersects(m.geom, p.geom)
                 AND (ST_Dimension(p.geom) = 0 OR NOT ST_Touches(m.geom, p.geom))
            WHERE {where}
        ) h
        WHERE rn = 1 OR ST_Dimension(geom) > 0
        GROUP BY key{by}
    """


_IN_PERIOD = "p.reported_at >= :start AND p.reported_at < :end"


def gather(
    conn: Connection, geoms: Mapping[str, BaseGeometry], period: Period
) -> dict[str, GridCounts]:
    """What lies in each geometry: buildings, incidents of the period, rentals, sites."""
    _stage(conn, geoms)
    values: dict[str, dict[str, Any]] = {k: {"hazards": {}} for k in geoms}
    for row in conn.execute(
        text(
            _hits(
                "building",
                "count(*) AS buildings, sum(households) AS households, "
                "sum(residents) AS population",
            )
        )
    ):
        values[row.key].update(
            buildings=int(row.buildings),
            households=int(row.households or 0),
            population=int(row.population or 0),
        )
    for row in conn.execute(
        text(_hits("incident", "count(*) AS n", _IN_PERIOD)),
        {"start": period.start, "end": period.end},
    ):
        values[row.key]["incidents"] = int(row.n)
    for row in conn.execute(
        text(
            _hits(
                "rental_housing",
                "count(*) AS n, count(*) FILTER (WHERE is_group_rental) AS groups",
            )
        )
    ):
        values[row.key].update(rentals=int(row.n), group_rentals=int(row.groups))
    for row in conn.execute(text(_hits("key_site", "count(*) AS n"))):
        values[row.key]["key_sites"] = int(row.n)
    for row in conn.execute(text(_hits("hazard_zone", "count(*) AS n", by=", risk_level"))):
        values[row.key]["hazards"][row.risk_level] = int(row.n)
    return {key: GridCounts(**v) for key, v in values.items()}


def unit_shares(
    conn: Connection, registry: Registry, geoms: Mapping[str, BaseGeometry]
) -> dict[tuple[str, str], dict[str, dict[str, float]]]:
    """Per unit kind (layer, level): per key, the share of its area in each unit.

    Computed from the geometries (the same formula as ``grid_unit``), so it works for
    proposed grids that are not stored.
    """
    _stage(conn, geoms)
    out: dict[tuple[str, str], dict[str, dict[str, float]]] = {}
    for target in UNIT_TARGETS:
        shares: dict[str, dict[str, float]] = {key: {} for key in geoms}
        for row in conn.execute(
            text(
                f"""
                SELECT m.key, u.code,
                       ST_Area(ST_Intersection(m.geom, u.geom)) / ST_Area(m.geom) AS share
                FROM measure_input m
                JOIN {target.layer} u ON ST_Intersects(m.geom, u.geom)
                WHERE {target.level_filter} AND ST_Area(m.geom) > 0
                """
            )
        ):
            if row.share > 0:
                shares[row.key][row.code] = float(row.share)
        out[(target.layer, target.level)] = shares
    return out


def _docking(
    registry: Registry,
    geoms: Mapping[str, BaseGeometry],
    shares: dict[tuple[str, str], dict[str, dict[str, float]]],
    with_items: bool,
) -> list[dict[str, Any]]:
    areas = {key: area_m2(g) for key, g in geoms.items()}
    result = []
    for kind in docking.unit_kinds(registry):
        per_key = shares[(kind.layer, kind.level)]
        summary = docking_summary(
            [GridShares(key, areas[key], per_key[key]) for key in sorted(geoms)],
            docking.ONE_UNIT_SHARE,
            docking.SLIVER_SHARE,
        )
        entry: dict[str, Any] = {
            "unit_layer": kind.layer,
            "unit_level": kind.level,
            "title": kind.title_zh,
            "title_en": kind.title_en,
            "grids": summary.grids,
            "docked": summary.docked,
            "straddling": summary.straddling,
            "docked_share": summary.docked_share,
            "wrong_side_m2": summary.wrong_side_m2,
            "score": summary.score,
        }
        if with_items:
            entry["items"] = [asdict(item) for item in summary.items]
        result.append(entry)
    return result


def _measures(
    geoms: Mapping[str, BaseGeometry],
    counts: Mapping[str, GridCounts],
    weights: WorkloadWeights,
    period: Period,
) -> dict[str, dict[str, Any]]:
    return {
        key: asdict(grid_measures(geom, counts[key], weights, period.days))
        for key, geom in geoms.items()
    }


def measure_geometries(
    conn: Connection,
    registry: Registry,
    geoms: Mapping[str, BaseGeometry],
    period: Period,
    weights: WorkloadWeights,
    *,
    with_docking: bool = True,
) -> dict[str, Any]:
    """Measures of proposed (or any) geometries, their balance and (unless they are
    department units themselves) their docking as a set."""
    counts = gather(conn, geoms, period)
    measures = _measures(geoms, counts, weights, period)
    report = {
        "period": period.as_dict(),
        "weights": weights.as_dict(),
        "grids": [{"key": key, **measures[key]} for key in geoms],
        "balance": _balance(measures),
    }
    if with_docking:
        shares = unit_shares(conn, registry, geoms)
        report["docking"] = _docking(registry, geoms, shares, with_items=True)
    return report


def _balance(measures: Mapping[str, Mapping[str, Any]]) -> dict[str, Any]:
    return {
        name: asdict(balance([float(m[name]) for m in measures.values()]))
        for name in ("households", "workload")
    }


def grid_report(
    conn: Connection,
    registry: Registry,
    code: str,
    period: Period,
    weights: WorkloadWeights,
) -> dict[str, Any]:
    """Measures of one grid in force, with its docking against each unit kind.

    Counted among its community's grids, so that a building on a shared edge counts for
    the grid the rule gives it to (the lowest code), as in the area report.
    """
    version = grid_edit.current(conn, code)
    neighbours = {v.code: v.geometry for v in grid_edit.in_force(conn, version.community_code)}
    neighbours[code] = version.geometry
    geom = version.geometry
    counts = gather(conn, neighbours, period)
    shares = unit_shares(conn, registry, {code: geom})
    dock = _docking(registry, {code: geom}, shares, with_items=True)
    return {
        "code": code,
        "period": period.as_dict(),
        "weights": weights.as_dict(),
        **_measures({code: geom}, counts, weights, period)[code],
        "docking": [
            {
                "unit_layer": d["unit_layer"],
                "unit_level": d["unit_level"],
                "title": d["title"],
                "unit": d["items"][0]["unit"],
                "share": d["items"][0]["share"],
                "docked": d["items"][0]["docked"],
                "wrong_side_m2": d["items"][0]["wrong_side_m2"],
            }
            for d in dock
        ],
    }


def _area(conn: Connection, level: str, code: str) -> tuple[str, BaseGeometry]:
    row = conn.execute(
        text(f"SELECT name, ST_AsBinary(geom) AS wkb FROM {level} WHERE code = :code"),
        {"code": code},
    ).first()
    if row is None:
        raise NotFoundError(f"区域 {code} 不存在", f"no {level} {code}", public={"code": code})
    return row.name, shapely.from_wkb(bytes(row.wkb))


def _piece_feature(piece: Piece, level: str, parent: str) -> dict[str, Any]:
    zh, en = KIND_TITLES[piece.kind]
    return {
        "type": "Feature",
        "geometry": json.loads(shapely.to_geojson(piece.geometry)),
        "properties": {
            "kind": piece.kind,
            "title": zh,
            "title_en": en,
            "level": level,
            "parent_code": parent,
            "codes": list(piece.codes),
            "area_m2": piece.area_m2,
            "sliver": piece.sliver,
        },
    }


def area_report(
    conn: Connection,
    registry: Registry,
    code: str,
    period: Period,
    weights: WorkloadWeights,
) -> dict[str, Any]:
    """A community's (12 digits) or township's (9 digits) grids in force now: each grid's
    measures, balance of households and workload, nesting and coverage (every gap,
    overlap, spill-over and sliver with its geometry) and the docking score per unit kind."""
    if len(code) == 12 and code.isdigit():
        level, column = "community", "community_code"
    elif len(code) == 9 and code.isdigit():
        level, column = "township", "township_code"
    else:
        raise InvalidInputError(
            "区域代码须为 12 位村社区代码或 9 位镇街代码",
            "give a 12-digit community or a 9-digit township code",
        )
    name, area_geom = _area(conn, level, code)
    rows = conn.execute(
        text(
            f"""
            SELECT g.code, g.name, g.community_code, ST_AsBinary(g.geom) AS wkb FROM grid g
            WHERE g.{column} = :code AND g.valid_from <= statement_timestamp()
              AND (g.valid_to IS NULL OR g.valid_to > statement_timestamp())
            ORDER BY g.code
            """
        ),
        {"code": code},
    ).all()
    geoms = {r.code: shapely.from_wkb(bytes(r.wkb)) for r in rows}
    names = {r.code: r.name for r in rows}
    counts = gather(conn, geoms, period)
    measures = _measures(geoms, counts, weights, period)
    shares = unit_shares(conn, registry, geoms)
    features: list[dict[str, Any]] = []
    pieces: list[Piece] = []
    if level == "community":
        found = coverage_pieces(area_geom, geoms)
        pieces += found
        features += [_piece_feature(p, "grid", code) for p in found]
    else:
        communities = {
            r.code: shapely.from_wkb(bytes(r.wkb))
            for r in conn.execute(
                text(
                    "SELECT code, ST_AsBinary(geom) AS wkb FROM community "
                    "WHERE township_code = :code ORDER BY code"
                ),
                {"code": code},
            )
        }
        found = coverage_pieces(area_geom, communities)
        pieces += found
        features += [_piece_feature(p, "community", code) for p in found]
        for community_code, community_geom in communities.items():
            inside = {c: g for c, g in geoms.items() if c.startswith(community_code)}
            found = coverage_pieces(community_geom, inside)
            pieces += found
            features += [_piece_feature(p, "grid", community_code) for p in found]
    return {
        "code": code,
        "level": level,
        "name": name,
        "period": period.as_dict(),
        "weights": weights.as_dict(),
        "grids": [{"code": c, "name": names[c], **measures[c]} for c in geoms],
        "balance": _balance(measures),
        "contiguous_share": (
            round(sum(m["contiguous"] for m in measures.values()) / len(measures), 4)
            if measures
            else None
        ),
        "coverage": {
            "totals_m2": totals(pieces),
            "slivers": sum(p.sliver for p in pieces),
            "pieces": {"type": "FeatureCollection", "features": features},
        },
        "docking": _docking(registry, geoms, shares, with_items=False),
        "risk_levels": list(RISK_LEVELS),
    }
