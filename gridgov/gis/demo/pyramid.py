"""Townships, communities, buildings and grids: the admin pyramid below the districts."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from shapely.geometry.base import BaseGeometry

from gridgov.gis.demo.density import residential_density, urban_share
from gridgov.gis.demo.partition import bisect_partition, merge_fragments, voronoi_partition
from gridgov.gis.demo.sampling import points_in
from gridgov.gis.grid_codes import grid_code, reading_order

PROJECTED = "EPSG:4549"
CITY_HOUSEHOLDS = 2_600_000  # about Wuxi's registered households


def township_kind(name: str) -> str:
    if name.endswith("街道"):
        return "street"
    if name.endswith("镇") or name.endswith("乡"):
        return "town"
    return "other"


def _density_at(geoms: list[BaseGeometry]) -> np.ndarray:
    points = shapely.point_on_surface(np.array(geoms, dtype=object))
    return residential_density(shapely.get_x(points), shapely.get_y(points))


def _assign_by_density(pieces: list[BaseGeometry], urban_first: list[int]) -> list[int]:
    """Map pieces to members: the densest piece gets the first (most urban) member."""
    by_density = np.argsort(-_density_at(pieces), kind="stable")
    result = [0] * len(pieces)
    for rank, piece in enumerate(by_density):
        result[int(piece)] = urban_first[rank]
    return result


def _split(
    parent: BaseGeometry, members: pd.DataFrame, urban_rank: pd.Series, rng: np.random.Generator
) -> list[tuple[pd.Series, BaseGeometry]]:
    """Partition ``parent`` among ``members`` (rows), most urban members in the densest parts."""
    pieces = voronoi_partition(parent, len(members), rng, residential_density)
    order = list(np.argsort(urban_rank.to_numpy(), kind="stable"))
    mapping = _assign_by_density(pieces, [int(i) for i in order])
    return [(members.iloc[mapping[i]], piece) for i, piece in enumerate(pieces)]


def _partition_parents(
    parents: gpd.GeoDataFrame,
    children: pd.DataFrame,
    parent_column: str,
    rank: Callable[[pd.DataFrame], pd.Series],
    row: Callable[[pd.Series, Any], dict[str, object]],
    rng: np.random.Generator,
) -> gpd.GeoDataFrame:
    """Each parent split among its real children (most urban child in the densest part)."""
    rows = []
    for parent in parents.itertuples():
        members = children[children[parent_column] == parent.code].reset_index(drop=True)
        if members.empty:
            raise ValueError(f"{parent_column[:-5]} {parent.code} has no children")
        for child, piece in _split(parent.geometry, members, rank(members), rng):
            rows.append({**row(child, parent), "geometry": piece})
    return gpd.GeoDataFrame(rows, geometry="geometry", crs=PROJECTED)


def build_townships(
    districts: gpd.GeoDataFrame, townships: pd.DataFrame, rng: np.random.Generator
) -> gpd.GeoDataFrame:
    """Real townships of each district over a synthetic partition of the district."""
    return _partition_parents(
        districts,
        townships,
        "district_code",
        lambda members: (
            members["name"].map(township_kind).map({"street": 0, "other": 1, "town": 2})
        ),
        lambda child, district: {
            "code": child["code"],
            "name": child["name"],
            "district_code": district.code,
            "kind": township_kind(str(child["name"])),
        },
        rng,
    )


def build_communities(
    townships: gpd.GeoDataFrame, communities: pd.DataFrame, rng: np.random.Generator
) -> gpd.GeoDataFrame:
    """Real communities of each township over a synthetic partition of the township."""
    return _partition_parents(
        townships,
        communities,
        "township_code",
        lambda members: members["kind"].map({"urban": 0, "rural": 1}),
        lambda child, township: {
            "code": child["code"],
            "name": child["name"],
            "township_code": township.code,
            "district_code": township.district_code,
            "kind": child["kind"],
        },
        rng,
    )


def build_buildings(communities: gpd.GeoDataFrame, rng: np.random.Generator) -> gpd.GeoDataFrame:
    """Residential buildings (楼栋) as points; in villages a point is a cluster of houses."""
    geoms = communities.geometry.to_numpy()
    samples = [points_in(g, 40, rng, residential_density) for g in geoms]
    mass = np.array(
        [
            residential_density(s[:, 0], s[:, 1]).mean() * g.area
            for s, g in zip(samples, geoms, strict=True)
        ]
    )
    households = np.maximum(150, np.round(CITY_HOUSEHOLDS * mass / mass.sum())).astype(int)
    frames = []
    for i, community in enumerate(communities.itertuples()):
        centre = shapely.point_on_surface(community.geometry)
        u = float(urban_share(np.array([centre.x]), np.array([centre.y]))[0])
        mean_size = 25 + 95 * u
        count = max(1, int(np.ceil(households[i] / mean_size)))
        sizes = rng.lognormal(np.log(mean_size), 0.5, count)
        sizes = np.maximum(1, np.round(sizes * households[i] / sizes.sum())).astype(int)
        xy = points_in(community.geometry, count, rng, residential_density)
        residents = np.round(sizes * (2.5 + 0.6 * (1 - u)) * rng.uniform(0.85, 1.15, count))
        frames.append(
            pd.DataFrame(
                {
                    "x": xy[:, 0],
                    "y": xy[:, 1],
                    "households": sizes,
                    "residents": residents.astype(int),
                    "floors": np.where(
                        rng.uniform(size=count) < u,
                        rng.integers(6, 33, count),
                        rng.integers(1, 4, count),
                    ),
                    "community_code": community.code,
                    "township_code": community.township_code,
                    "district_code": community.district_code,
                    "address": [f"{community.name}{n + 1}号楼" for n in range(count)],
                }
            )
        )
    table = pd.concat(frames, ignore_index=True)
    return gpd.GeoDataFrame(
        table.drop(columns=["x", "y"]),
        geometry=gpd.points_from_xy(table["x"], table["y"]),
        crs=PROJECTED,
    )


def build_grids(
    communities: gpd.GeoDataFrame,
    buildings: gpd.GeoDataFrame,
    target_households: int,
) -> gpd.GeoDataFrame:
    """Grids partition each community, balanced by the households of its buildings."""
    rows = []
    by_community = buildings.groupby("community_code")
    for community in communities.itertuples():
        members = by_community.get_group(community.code)
        xy = np.column_stack([members.geometry.x.to_numpy(), members.geometry.y.to_numpy()])
        weights = members["households"].to_numpy(dtype=float)
        k = max(1, round(weights.sum() / target_households))
        k = min(k, len(members))
        pieces = merge_fragments(bisect_partition(community.geometry, k, xy, weights))
        anchors = shapely.point_on_surface(np.array(pieces, dtype=object))
        row_height = float(np.sqrt(community.geometry.area / len(pieces)))
        order = reading_order(shapely.get_x(anchors), shapely.get_y(anchors), row_height)
        for sequence, index in enumerate(order, start=1):
            rows.append(
                {
                    "code": grid_code(community.code, sequence),
                    "community_code": community.code,
                    "township_code": community.township_code,
                    "district_code": community.district_code,
                    "name": f"{community.name}第{sequence}网格",
                    "kind": "base",
                    "geometry": pieces[int(index)],
                }
            )
    grids = gpd.GeoDataFrame(rows, geometry="geometry", crs=PROJECTED)
    located = locate(buildings.geometry, grids)
    buildings["grid_code"] = grids["code"].to_numpy()[located]
    totals = buildings.groupby("grid_code")[["households", "residents"]].sum()
    grids["households"] = grids["code"].map(totals["households"]).fillna(0).astype(int)
    grids["population"] = grids["code"].map(totals["residents"]).fillna(0).astype(int)
    return grids


def locate(points: gpd.GeoSeries, polygons: gpd.GeoDataFrame) -> np.ndarray:
    """Index of the polygon containing each point; the nearest one for points in slivers.

    On a shared boundary the lowest index wins, so the answer never depends on order.
    """
    tree = shapely.STRtree(polygons.geometry.to_numpy())
    point_array = points.to_numpy()
    pairs = tree.query(point_array, predicate="intersects")
    result = np.full(len(point_array), -1, dtype=np.int64)
    # Reverse so that, for duplicates, the lowest polygon index is written last.
    order = np.lexsort((-pairs[1], pairs[0]))
    result[pairs[0][order]] = pairs[1][order]
    missing = np.flatnonzero(result < 0)
    if len(missing):
        nearest = tree.nearest(point_array[missing])
        result[missing] = nearest
    return result
