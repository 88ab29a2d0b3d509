"""Where children fail to partition their parent: gaps, overlaps and spill-over, as pieces.

:func:`gridgov.layers.checks.coverage` sums these areas for a whole layer in SQL; like it,
this pure version overlays in the stored lon/lat (where points are assigned), and it lists
each piece with its geometry so that a map can draw it and a planner can fix it, and
works on proposed geometries that are not stored yet.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from itertools import combinations
from typing import Final

import shapely
from shapely.geometry.base import BaseGeometry
from shapely.strtree import STRtree

from gridgov.gis.measures import area_m2, polsby_popper, polygon_parts, to_metric

# Pieces smaller than this are float noise of the overlay, not planning errors (the demo
# invariants use the same 1 m²).
TOLERANCE_M2: Final = 1.0
# A piece is a sliver (碎片) when it is small or thin: under 100 m², or a strip whose
# Polsby-Popper compactness is under 0.1.
SLIVER_MAX_M2: Final = 100.0
SLIVER_COMPACTNESS: Final = 0.1

KIND_TITLES: Final = {
    "gap": ("空隙：无网格覆盖", "gap: no grid covers it"),
    "overlap": ("重叠：多个网格覆盖", "overlap: two grids cover it"),
    "outside": ("越界：超出上级范围", "outside the parent area"),
}


@dataclass(frozen=True)
class Piece:
    kind: str  # gap / overlap / outside
    geometry: BaseGeometry  # lon/lat (CGCS2000)
    area_m2: float
    codes: tuple[str, ...]  # the children involved (none for a gap)
    sliver: bool


def is_sliver(geom: BaseGeometry) -> bool:
    metric = to_metric(geom)
    return bool(metric.area < SLIVER_MAX_M2 or polsby_popper(metric) < SLIVER_COMPACTNESS)


def _pieces(
    kind: str, geom: BaseGeometry, codes: tuple[str, ...], tolerance_m2: float
) -> list[Piece]:
    out = []
    for part in polygon_parts(geom):
        area = area_m2(part)
        if area >= tolerance_m2:
            out.append(Piece(kind, part, round(area, 2), codes, is_sliver(part)))
    return out


def overlaps(
    children: Mapping[str, BaseGeometry], tolerance_m2: float = TOLERANCE_M2
) -> list[Piece]:
    """Every area covered by two children, pair by pair (an STRtree finds the candidates)."""
    codes = sorted(children)
    if len(codes) < 2:
        return []
    geoms = [children[c] for c in codes]
    tree = STRtree(geoms)
    left, right = tree.query(geoms, predicate="intersects")
    out: list[Piece] = []
    for i, j in zip(left.tolist(), right.tolist(), strict=True):
        if i < j:
            shared = shapely.intersection(geoms[i], geoms[j])
            out += _pieces("overlap", shared, (codes[i], codes[j]), tolerance_m2)
    return out


def coverage_pieces(
    parent: BaseGeometry,
    children: Mapping[str, BaseGeometry],
    tolerance_m2: float = TOLERANCE_M2,
) -> list[Piece]:
    """Gaps (parent area no child covers), overlaps and children's spill-over outside."""
    union = shapely.union_all(list(children.values())) if children else None
    gaps = parent if union is None else shapely.difference(parent, union)
    out = _pieces("gap", gaps, (), tolerance_m2)
    out += overlaps(children, tolerance_m2)
    for code in sorted(children):
        out += _pieces("outside", shapely.difference(children[code], parent), (code,), tolerance_m2)
    return out


def totals(pieces: list[Piece]) -> dict[str, float]:
    """Square metres per kind, for a summary line."""
    result = dict.fromkeys(KIND_TITLES, 0.0)
    for piece in pieces:
        result[piece.kind] += piece.area_m2
    return {k: round(v, 2) for k, v in result.items()}


def adjacent(a: BaseGeometry, b: BaseGeometry) -> bool:
    """Do two polygons share a stretch of boundary (not just a corner)?"""
    shared = shapely.intersection(a.boundary, b.boundary)
    return bool(shared.length > 0) or bool(shapely.intersection(a, b).area > 0)


def connected(geoms: Mapping[str, BaseGeometry]) -> bool:
    """Is the adjacency graph of these polygons connected (one block)?"""
    codes = list(geoms)
    if len(codes) <= 1:
        return True
    links = {c: set[str]() for c in codes}
    for a, b in combinations(codes, 2):
        if adjacent(geoms[a], geoms[b]):
            links[a].add(b)
            links[b].add(a)
    seen, todo = {codes[0]}, [codes[0]]
    while todo:
        for nxt in links[todo.pop()] - seen:
            seen.add(nxt)
            todo.append(nxt)
    return len(seen) == len(codes)
