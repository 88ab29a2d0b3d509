"""Split a polygon into pieces that cover it exactly: no gaps, no overlaps.

Two ways, both deterministic for a given random generator:
- :func:`voronoi_partition`: k-means on density-weighted sample points, then Voronoi cells
  clipped to the polygon; pieces carry about equal "mass" (dense areas get small pieces).
- :func:`bisect_partition`: recursive cuts at weighted medians, for grids balanced by the
  households of their buildings.
Detached fragments of a piece are merged into the neighbour they share most boundary with,
so pieces are contiguous wherever the parent is.
"""

from __future__ import annotations

import numpy as np
import shapely
from numpy.typing import NDArray
from shapely.geometry import MultiPoint, MultiPolygon, Polygon, box
from shapely.geometry.base import BaseGeometry

from gridgov.gis.demo.sampling import Density, points_in

FloatArray = NDArray[np.float64]


def polygonal(geom: BaseGeometry) -> BaseGeometry:
    """Only the polygonal parts of an overlay result (drop stray lines and points)."""
    if isinstance(geom, Polygon | MultiPolygon):
        return geom
    parts = [g for g in getattr(geom, "geoms", []) if isinstance(g, Polygon | MultiPolygon)]
    return shapely.union_all(parts) if parts else Polygon()


def kmeans(points: FloatArray, k: int, rng: np.random.Generator, rounds: int = 25) -> FloatArray:
    """Plain k-means with k-means++ seeding; small inputs, so brute-force distances."""
    centres = [points[rng.integers(len(points))]]
    for _ in range(1, k):
        d2 = np.min(((points[:, None, :] - np.array(centres)[None]) ** 2).sum(-1), axis=1)
        total = d2.sum()
        pick = rng.choice(len(points), p=d2 / total) if total > 0 else rng.integers(len(points))
        centres.append(points[pick])
    c = np.array(centres, dtype=float)
    for _ in range(rounds):
        labels = np.argmin(((points[:, None, :] - c[None]) ** 2).sum(-1), axis=1)
        for j in range(k):
            members = points[labels == j]
            if len(members):
                c[j] = members.mean(axis=0)
    # Identical centres would give empty Voronoi cells; nudge them apart.
    _, first = np.unique(c.round(3), axis=0, return_index=True)
    for j in set(range(k)) - set(first.tolist()):
        c[j] += rng.normal(0.0, 1.0, 2)
    return c


def merge_fragments(pieces: list[BaseGeometry]) -> list[BaseGeometry]:
    """Give each detached fragment to the neighbour sharing the longest edge with it."""
    pieces = [polygonal(p) for p in pieces]
    for i in range(len(pieces)):
        piece = pieces[i]
        if not isinstance(piece, MultiPolygon):
            continue
        parts = sorted(piece.geoms, key=lambda g: g.area, reverse=True)
        keep: list[Polygon] = [parts[0]]
        for fragment in parts[1:]:
            best, best_length = -1, 0.0
            for j, other in enumerate(pieces):
                if j == i or other.is_empty:
                    continue
                shared = fragment.boundary.intersection(other.boundary).length
                if shared > best_length:
                    best, best_length = j, shared
            if best < 0:
                keep.append(fragment)  # an island of the parent itself
            else:
                pieces[best] = polygonal(shapely.union(pieces[best], fragment))
        pieces[i] = keep[0] if len(keep) == 1 else MultiPolygon(keep)
    return pieces


def voronoi_partition(
    polygon: BaseGeometry,
    k: int,
    rng: np.random.Generator,
    density: Density | None = None,
    samples_per_piece: int = 60,
) -> list[BaseGeometry]:
    """``k`` contiguous pieces covering ``polygon``, sized to hold similar density mass."""
    if k <= 1:
        return [polygon]
    samples = points_in(polygon, max(k * samples_per_piece, 400), rng, density)
    centres = kmeans(samples, k, rng)
    cells = shapely.voronoi_polygons(MultiPoint(centres.tolist()), extend_to=polygon, ordered=True)
    pieces = [polygonal(cell.intersection(polygon)) for cell in cells.geoms]
    pieces = merge_fragments(pieces)
    if any(p.is_empty for p in pieces):
        raise ValueError("a partition produced an empty piece")
    return pieces


def bisect_partition(
    polygon: BaseGeometry, k: int, points: FloatArray, weights: FloatArray
) -> list[BaseGeometry]:
    """``k`` pieces with about equal total weight of the given points (e.g. households).

    Cuts alternate with the longer side of the bounding box, at the weighted quantile
    that gives each side its share of ``k``; cut lines run half-way between points, so
    no point ever lies on a boundary.
    """
    if k <= 1 or len(points) < 2:
        return [polygon]
    xmin, ymin, xmax, ymax = polygon.bounds
    axis = 0 if (xmax - xmin) >= (ymax - ymin) else 1
    order = np.argsort(points[:, axis], kind="stable")
    sorted_points, sorted_weights = points[order], weights[order]
    k_low = k // 2
    target = sorted_weights.sum() * k_low / k
    index = int(np.searchsorted(np.cumsum(sorted_weights), target))
    index = min(max(index, 1), len(points) - 1)
    cut = (sorted_points[index - 1, axis] + sorted_points[index, axis]) / 2
    if axis == 0:
        low_box, high_box = (
            box(xmin - 1, ymin - 1, cut, ymax + 1),
            box(cut, ymin - 1, xmax + 1, ymax + 1),
        )
    else:
        low_box, high_box = (
            box(xmin - 1, ymin - 1, xmax + 1, cut),
            box(xmin - 1, cut, xmax + 1, ymax + 1),
        )
    low_poly = polygonal(polygon.intersection(low_box))
    high_poly = polygonal(polygon.intersection(high_box))
    if low_poly.is_empty or high_poly.is_empty:
        return [polygon]
    low_mask = np.zeros(len(points), dtype=bool)
    low_mask[order[:index]] = True
    return bisect_partition(
        low_poly, k_low, points[low_mask], weights[low_mask]
    ) + bisect_partition(high_poly, k - k_low, points[~low_mask], weights[~low_mask])
