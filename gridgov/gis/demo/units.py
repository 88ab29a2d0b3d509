"""Departments' units (police, urban management, emergency) built from communities.

Real units mostly follow township and community lines but not always: some communities
sit in a neighbouring unit and some units cut a community in two. That imperfect docking
is what Article 62 asks gridgov to measure, so the demo reproduces it on purpose.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import geopandas as gpd
import numpy as np
import shapely
from shapely.geometry import LineString
from shapely.geometry.base import BaseGeometry
from shapely.ops import split

from gridgov.gis.demo.partition import kmeans, polygonal
from gridgov.gis.demo.pyramid import PROJECTED


@dataclass
class Cells:
    """Pieces of the city, each owned by a unit; units never leave their ``scope``."""

    geoms: list[BaseGeometry]
    owner: list[int]
    scope: list[str]  # cells only move between units of the same scope (e.g. a district)
    origin: list[str] = field(default_factory=list)  # the community each cell came from

    def neighbours(self, i: int) -> list[tuple[int, float]]:
        """Cells sharing an edge with cell ``i`` and the length they share."""
        tree = shapely.STRtree(np.array(self.geoms, dtype=object))
        result = []
        for j in tree.query(self.geoms[i], predicate="intersects"):
            j = int(j)
            if j != i:
                length = self.geoms[i].boundary.intersection(self.geoms[j].boundary).length
                if length > 1.0:
                    result.append((j, float(length)))
        return result


def cells_from(communities: gpd.GeoDataFrame, owner: list[int], scope: list[str]) -> Cells:
    return Cells(list(communities.geometry), list(owner), list(scope), list(communities["code"]))


def _foreign_neighbour(cells: Cells, i: int) -> int | None:
    """A neighbouring cell in the same scope but another unit (the longest shared edge)."""
    options = [
        (length, j)
        for j, length in cells.neighbours(i)
        if cells.owner[j] != cells.owner[i] and cells.scope[j] == cells.scope[i]
    ]
    return max(options)[1] if options else None


def _unit_sizes(cells: Cells) -> dict[int, int]:
    sizes: dict[int, int] = {}
    for o in cells.owner:
        sizes[o] = sizes.get(o, 0) + 1
    return sizes


def move_some(cells: Cells, share: float, rng: np.random.Generator) -> None:
    """Hand ``share`` of units' border cells to the neighbouring unit."""
    units = sorted(set(cells.owner))
    for unit in rng.permutation(units)[: int(len(units) * share)]:
        mine = [i for i, o in enumerate(cells.owner) if o == unit]
        if len(mine) < 2:
            continue
        for i in rng.permutation(mine):
            j = _foreign_neighbour(cells, int(i))
            if j is not None:
                cells.owner[int(i)] = cells.owner[j]
                break


def cut_some(cells: Cells, share: float, rng: np.random.Generator) -> None:
    """For ``share`` of units, cut a border cell in two and give one half to the neighbour."""
    units = sorted(set(cells.owner))
    for unit in rng.permutation(units)[: int(len(units) * share)]:
        mine = [i for i, o in enumerate(cells.owner) if o == unit]
        for i in rng.permutation(mine):
            i = int(i)
            j = _foreign_neighbour(cells, i)
            if j is None:
                continue
            halves = _halve(cells.geoms[i], rng)
            if halves is None:
                continue
            near, far = sorted(
                halves, key=lambda h: -h.boundary.intersection(cells.geoms[j].boundary).length
            )
            cells.geoms[i] = far
            cells.geoms.append(near)
            cells.owner.append(cells.owner[j])
            cells.scope.append(cells.scope[i])
            cells.origin.append(cells.origin[i])
            break


def _halve(
    geom: BaseGeometry, rng: np.random.Generator
) -> tuple[BaseGeometry, BaseGeometry] | None:
    """Two halves of ``geom`` along a random line through its centre."""
    centre = shapely.point_on_surface(geom)
    angle = rng.uniform(0, np.pi)
    reach = 4 * max(geom.bounds[2] - geom.bounds[0], geom.bounds[3] - geom.bounds[1])
    dx, dy = np.cos(angle) * reach, np.sin(angle) * reach
    line = LineString([(centre.x - dx, centre.y - dy), (centre.x + dx, centre.y + dy)])
    parts = [polygonal(p) for p in split(geom, line).geoms] if geom.geom_type == "Polygon" else []
    if len(parts) != 2 or min(p.area for p in parts) < 0.2 * geom.area:
        return None
    return parts[0], parts[1]


def group_within(cells: Cells, per_unit: int, rng: np.random.Generator) -> list[int]:
    """New owners: each current unit's cells clustered into units of about ``per_unit`` cells."""
    new_owner = [0] * len(cells.geoms)
    next_id = 0
    centres = shapely.point_on_surface(np.array(cells.geoms, dtype=object))
    xy = np.column_stack([shapely.get_x(centres), shapely.get_y(centres)])
    for unit in sorted(set(cells.owner)):
        mine = [i for i, o in enumerate(cells.owner) if o == unit]
        k = max(1, round(len(mine) / per_unit))
        if k == 1:
            labels = np.zeros(len(mine), dtype=int)
        else:
            centroids = kmeans(xy[mine], k, rng)
            labels = np.argmin(((xy[mine][:, None, :] - centroids[None]) ** 2).sum(-1), axis=1)
        for label in sorted(set(labels.tolist())):
            for i, lab in zip(mine, labels, strict=True):
                if lab == label:
                    new_owner[i] = next_id
            next_id += 1
    return new_owner


def dissolve(cells: Cells, owner: list[int]) -> gpd.GeoDataFrame:
    """One row per unit: the union of its cells."""
    frame = gpd.GeoDataFrame(
        {"unit": owner, "origin": cells.origin, "area": [g.area for g in cells.geoms]},
        geometry=list(cells.geoms),
        crs=PROJECTED,
    )
    # Each unit is named after the community holding most of its area.
    frame = frame.sort_values(["unit", "area"], ascending=[True, False])
    units = frame.dissolve(by="unit", aggfunc="first").reset_index()
    units["geometry"] = [polygonal(g) for g in units.geometry]
    return units
