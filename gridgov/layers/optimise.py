"""Grid proposals for a community or township (条例第六十二条：优化网格划分) — the statements.

Loads a community's outline, buildings, grids in force and community policing areas
(社区警务区) from PostGIS, counts what lies in each building block with the measures engine
(:func:`gridgov.layers.measures.gather`) and hands the rest to the pure optimiser
(:mod:`gridgov.gis.optimise`). The proposal is measured before and after with the same
engine (:func:`gridgov.layers.measures.measure_geometries`). Nothing is written: a
proposal becomes a plan (``gridgov.layers.plans``) only when a planner saves it.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import shapely
from shapely.geometry import Point, Polygon
from shapely.geometry.base import BaseGeometry
from sqlalchemy import Connection, text

from gridgov.errors import InvalidInputError, NotFoundError
from gridgov.gis import optimise
from gridgov.gis.measures import WorkloadWeights, workload
from gridgov.layers import measures, plans
from gridgov.layers.measures import Period
from gridgov.layers.registry import Registry

# The unit kind proposals dock with: community policing areas lie inside one station, so
# a grid docked with its policing area is docked with the station too.
DOCK_LAYER, DOCK_LEVEL = "police_unit", "policing_area"
Progress = Callable[[str, float], None]  # (community code, 0–1 over the whole run)


@dataclass(frozen=True)
class ProposalOptions:
    target_households: int = 400
    seed: int = 0
    min_change: bool = False
    objective: optimise.ObjectiveWeights = field(default_factory=optimise.ObjectiveWeights)
    workload: WorkloadWeights = field(default_factory=WorkloadWeights)
    period: Period | None = None  # incidents counted over it; default: the last 365 days

    def search_options(self) -> optimise.Options:
        return optimise.Options(
            target_households=self.target_households,
            seed=self.seed,
            min_change=self.min_change,
            weights=self.objective,
        )


def split_weights(
    values: Mapping[str, float], base: WorkloadWeights
) -> tuple[optimise.ObjectiveWeights, WorkloadWeights]:
    """``balance``/``compactness``/``docking``/``moved`` weigh the objective; any workload
    weight name (``households``, ``incidents_per_year``, ``hazard_major``, …) overrides
    the settings' workload index. Unknown names are a 400 naming them."""
    objective = {k: v for k, v in values.items() if k in optimise.OBJECTIVE_NAMES}
    rest = {k: v for k, v in values.items() if k not in optimise.OBJECTIVE_NAMES}
    try:
        flat = base.as_dict()
        flat.update(rest)
        return optimise.ObjectiveWeights.from_mapping(objective), WorkloadWeights.from_mapping(flat)
    except ValueError as error:
        raise InvalidInputError(f"权重无效：{error}", f"bad weights: {error}") from error


def last_year(now: datetime | None = None) -> Period:
    end = now or datetime.now(UTC)
    return Period(end - timedelta(days=365), end)


@dataclass(frozen=True)
class CommunityInputs:
    code: str
    name: str
    township_code: str
    outline: BaseGeometry
    buildings: tuple[Point, ...]
    grids: Mapping[str, BaseGeometry]  # today's grids in force, by code
    units: Mapping[str, BaseGeometry]  # community policing areas reaching the community


@dataclass(frozen=True)
class CommunityProposal:
    code: str
    name: str
    grids: list[Polygon]  # the proposed grids; their union is the community
    blocks: int
    households: int
    households_moved: int
    before: dict[str, Any]
    after: dict[str, Any]


@dataclass(frozen=True)
class Proposal:
    area_code: str
    options: dict[str, Any]
    communities: list[CommunityProposal]
    before: dict[str, Any]  # summary over all communities (see :func:`summary`)
    after: dict[str, Any]

    def grids_by_community(self) -> dict[str, list[Polygon]]:
        """The plain polygons per community, as ``plans.create_from_proposal`` takes them."""
        return {c.code: list(c.grids) for c in self.communities}

    def feature_collection(self) -> dict[str, Any]:
        features = []
        for community in self.communities:
            for index, geom in enumerate(community.grids, start=1):
                grid = community.after["grids_detail"][index - 1]
                features.append(
                    {
                        "type": "Feature",
                        "id": f"{community.code}-{index:03d}",
                        "geometry": json.loads(shapely.to_geojson(geom)),
                        "properties": {
                            "community_code": community.code,
                            "index": index,
                            "households": grid["households"],
                            "workload": grid["workload"],
                            "compactness": grid["compactness"],
                            "contiguous": grid["contiguous"],
                        },
                    }
                )
        return {"type": "FeatureCollection", "features": features}

    def as_dict(self) -> dict[str, Any]:
        return {
            "area_code": self.area_code,
            "options": self.options,
            "before": self.before,
            "after": self.after,
            "communities": [
                {
                    "code": c.code,
                    "name": c.name,
                    "grids": len(c.grids),
                    "blocks": c.blocks,
                    "households": c.households,
                    "households_moved": c.households_moved,
                    "before": c.before,
                    "after": c.after,
                }
                for c in self.communities
            ],
            "proposal": self.feature_collection(),
        }


def community_codes(conn: Connection, area_code: str) -> list[str]:
    """The community itself (12 digits) or a township's communities (9 digits)."""
    if len(area_code) == 12 and area_code.isdigit():
        sql, what = "SELECT code FROM community WHERE code = :code", "community"
    elif len(area_code) == 9 and area_code.isdigit():
        sql = "SELECT code FROM community WHERE township_code = :code ORDER BY code"
        what = "township"
    else:
        raise InvalidInputError(
            "区域代码须为 12 位村社区代码或 9 位镇街代码",
            "give a 12-digit community or a 9-digit township code",
        )
    codes = [r.code for r in conn.execute(text(sql), {"code": area_code})]
    if not codes:
        raise NotFoundError(
            f"区域 {area_code} 不存在或没有村社区",
            f"no {what} {area_code} (or it has no communities)",
            public={"code": area_code},
        )
    return codes


def load_community(conn: Connection, code: str) -> CommunityInputs:
    row = conn.execute(
        text(
            "SELECT code, name, township_code, ST_AsBinary(geom) AS wkb "
            "FROM community WHERE code = :code"
        ),
        {"code": code},
    ).first()
    if row is None:
        raise NotFoundError(f"村社区 {code} 不存在", f"no community {code}", public={"code": code})
    outline = shapely.from_wkb(bytes(row.wkb))
    if len(outline.geoms if hasattr(outline, "geoms") else [outline]) == 1:
        outline = outline.geoms[0] if hasattr(outline, "geoms") else outline
    buildings = tuple(
        Point(float(r.x), float(r.y))
        for r in conn.execute(
            text(
                """
                SELECT ST_X(ST_PointOnSurface(b.geom)) AS x, ST_Y(ST_PointOnSurface(b.geom)) AS y
                FROM building b, community c
                WHERE c.code = :code AND ST_Intersects(b.geom, c.geom)
                ORDER BY b.id
                """
            ),
            {"code": code},
        )
    )
    grids = {
        r.code: shapely.from_wkb(bytes(r.wkb))
        for r in conn.execute(
            text(
                """
                SELECT code, ST_AsBinary(geom) AS wkb FROM grid
                WHERE community_code = :code AND valid_from <= statement_timestamp()
                  AND (valid_to IS NULL OR valid_to > statement_timestamp())
                ORDER BY code
                """
            ),
            {"code": code},
        )
    }
    units = {
        r.code: shapely.from_wkb(bytes(r.wkb))
        for r in conn.execute(
            text(
                """
                SELECT u.code, ST_AsBinary(u.geom) AS wkb FROM police_unit u, community c
                WHERE c.code = :code AND u.level = :level AND ST_Intersects(u.geom, c.geom)
                  AND NOT ST_Touches(u.geom, c.geom)
                ORDER BY u.code
                """
            ),
            {"code": code, "level": DOCK_LEVEL},
        )
    }
    return CommunityInputs(code, row.name, row.township_code, outline, buildings, grids, units)


def summary(report: Mapping[str, Any], households_moved: int | None = None) -> dict[str, Any]:
    """The figures a planner compares before and after (from ``measure_geometries``)."""
    grids = report["grids"]
    docking = next(
        d
        for d in report["docking"]
        if (d["unit_layer"], d["unit_level"]) == (DOCK_LAYER, DOCK_LEVEL)
    )
    return {
        "grids": len(grids),
        "households": int(sum(g["households"] for g in grids)),
        "workload_cv": report["balance"]["workload"]["cv"],
        "households_cv": report["balance"]["households"]["cv"],
        "workload_max_min": report["balance"]["workload"]["max_min_ratio"],
        "compactness": round(float(np.mean([g["compactness"] for g in grids])), 4)
        if grids
        else None,
        "docking_score": docking["score"],
        "docked_share": docking["docked_share"],
        "contiguous_share": round(sum(bool(g["contiguous"]) for g in grids) / len(grids), 4)
        if grids
        else None,
        "households_moved": households_moved,
        "grid_measures": grids,
    }


def measure_report(
    conn: Connection,
    registry: Registry,
    geoms: Mapping[str, BaseGeometry],
    period: Period,
    weights: WorkloadWeights,
    moved: int | None = None,
) -> dict[str, Any]:
    """:func:`summary` of ``measure_geometries`` (each grid's measures in ``grids_detail``)."""
    report = measures.measure_geometries(conn, registry, geoms, period, weights)
    result = summary(report, moved)
    result["grids_detail"] = result.pop("grid_measures")
    return result


@dataclass(frozen=True)
class Partitioned:
    """One community cut into blocks and partitioned: what the benchmark compares."""

    inputs: CommunityInputs
    blocks: optimise.Blocks
    workload: np.ndarray[Any, np.dtype[np.float64]]
    households: np.ndarray[Any, np.dtype[np.float64]]
    today: np.ndarray[Any, np.dtype[np.int64]]


def prepare(conn: Connection, code: str, weights: WorkloadWeights, period: Period) -> Partitioned:
    """Blocks of one community with their workload and households (counted with the
    measures engine) and today's grid of each."""
    inputs = load_community(conn, code)
    geoms, owners = optimise.tessellate(inputs.outline, inputs.buildings, inputs.units)
    blocks = optimise.build_blocks(geoms, owners)
    counts = measures.gather(conn, {str(i): g for i, g in enumerate(blocks.geoms)}, period)
    load = np.array([workload(counts[str(i)], weights, period.days) for i in range(len(blocks))])
    households = np.array([float(counts[str(i)].households) for i in range(len(blocks))])
    grid_list = list(inputs.grids.values())
    if grid_list:
        today = optimise.today_index(blocks, grid_list, optimise.anchors(blocks, inputs.buildings))
    else:
        today = np.full(len(blocks), -1, dtype=np.int64)
    return Partitioned(inputs, blocks, load, households, today)


def propose(
    conn: Connection,
    registry: Registry,
    area_code: str,
    options: ProposalOptions,
    progress: Progress | None = None,
) -> Proposal:
    """Proposed grids for a community or each community of a township, measured before
    and after. Read-only: the caller decides what to do with it (a plan, a GeoPackage)."""
    period = options.period or last_year()
    codes = community_codes(conn, area_code)
    results: list[CommunityProposal] = []
    all_before: dict[str, BaseGeometry] = {}
    all_after: dict[str, BaseGeometry] = {}
    total_moved = 0
    for n, code in enumerate(codes):
        share = 1.0 / len(codes)

        def step(fraction: float, code: str = code, n: int = n, share: float = share) -> None:
            if progress is not None:
                progress(code, (n + 0.2 + 0.7 * fraction) * share)

        if progress is not None:
            progress(code, n * share)
        part = prepare(conn, code, options.workload, period)
        labels = optimise.partition(
            part.blocks,
            part.workload,
            part.households,
            options.search_options(),
            today=part.today,
            progress=step,
        )
        regions = optimise.region_geometries(part.blocks, labels)
        grids = [g for g in regions if isinstance(g, Polygon)]
        if len(grids) != len(regions):  # regions are grown over shared edges: a bug
            raise RuntimeError(f"community {code}: a proposed grid is not one polygon")
        moved = (
            optimise.households_moved(labels, part.today, part.households)
            if part.inputs.grids
            else 0
        )
        after_geoms = {f"{code}-{i:03d}": g for i, g in enumerate(regions, start=1)}
        before = measure_report(conn, registry, part.inputs.grids, period, options.workload, 0)
        after = measure_report(conn, registry, after_geoms, period, options.workload, moved)
        results.append(
            CommunityProposal(
                code=code,
                name=part.inputs.name,
                grids=grids,
                blocks=len(part.blocks),
                households=int(part.households.sum()),
                households_moved=moved,
                before=before,
                after=after,
            )
        )
        all_before.update(part.inputs.grids)
        all_after.update(after_geoms)
        total_moved += moved
    if len(results) == 1:
        before_all, after_all = results[0].before, results[0].after
    else:
        before_all = measure_report(conn, registry, all_before, period, options.workload, 0)
        after_all = measure_report(conn, registry, all_after, period, options.workload, total_moved)
    if progress is not None:
        progress(codes[-1], 1.0)
    return Proposal(
        area_code=area_code,
        options={
            "target_households": options.target_households,
            "seed": options.seed,
            "min_change": options.min_change,
            "objective": {k: getattr(options.objective, k) for k in optimise.OBJECTIVE_NAMES},
            "workload": options.workload.as_dict(),
            "period": period.as_dict(),
        },
        communities=results,
        before=before_all,
        after=after_all,
    )


def save_as_plans(
    conn: Connection,
    registry: Registry,
    grids_by_community: Mapping[str, Sequence[BaseGeometry]],
    *,
    name: str,
    actor: str,
    reason: str,
    max_vertices: int,
) -> dict[str, int]:
    """Each community's proposed grids as a draft plan (``plans.create_from_proposal``:
    validated like any edit, live grids untouched); community code → plan id."""
    several = len(grids_by_community) > 1
    return {
        code: plans.create_from_proposal(
            conn,
            registry,
            name=f"{name}（{code}）" if several else name,
            actor=actor,
            reason=reason,
            community_code=code,
            grids=list(grids_by_community[code]),
            max_vertices=max_vertices,
        )
        for code in sorted(grids_by_community)
    }
