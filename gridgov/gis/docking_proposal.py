"""Docking proposals (条例第六十二条): make grids and department units line up, from either side.

- :func:`grids_follow_units`, for a township's planners: every piece of a grid that lies in
  a unit other than the grid's main one is handed to a neighbouring grid of that unit, so
  that each grid lies in one unit. Codes stay; only boundaries move.
- :func:`units_from_grids`, for the police (or urban management, emergency): each unit's
  boundary made of whole grids, the grids whose larger part lies in it.

Both are proposals: they return geometry and what moves, never write anything. Areas are
measured in metres (EPSG:4549) from lon/lat geometry, like every other measure.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Final

import shapely
from shapely.geometry.base import BaseGeometry
from shapely.strtree import STRtree

from gridgov.gis.coverage import is_sliver
from gridgov.gis.docking import GridShares
from gridgov.gis.measures import area_m2, parts_count, polygon_parts

# Pieces of a grid smaller than this in another unit are digitising noise, not a move.
MIN_PIECE_M2: Final = 1.0


@dataclass(frozen=True)
class PieceMove:
    """A piece of ``from_code`` that lies in ``unit`` and goes to ``to_code``."""

    geometry: BaseGeometry
    area_m2: float
    from_code: str
    to_code: str
    unit: str


@dataclass(frozen=True)
class PieceLeft:
    """A piece that cannot be moved; ``reason`` says why (see :data:`LEFT_REASONS`)."""

    geometry: BaseGeometry
    area_m2: float
    code: str
    unit: str
    reason: str


LEFT_REASONS: Final = {
    "no_neighbour_in_unit": (
        "该部分所在责任区内没有本村社区的相邻网格，需新设网格或调整责任区边界",
        "no neighbouring grid of the same community lies in that unit: a new grid, "
        "or a unit boundary move, is needed",
    ),
    "would_split_grid": (
        "移出该部分会使网格分成不相连的两块",
        "moving it would cut the grid into disconnected parts",
    ),
}


@dataclass(frozen=True)
class GridsFollowUnits:
    grids: dict[str, BaseGeometry]  # every grid, moved or not
    main_unit: dict[str, str | None]  # the unit holding most of each grid (before)
    moves: tuple[PieceMove, ...]
    left: tuple[PieceLeft, ...]

    @property
    def changed(self) -> list[str]:
        return sorted({m.from_code for m in self.moves} | {m.to_code for m in self.moves})


class _Units:
    """Units with a spatial index, so that each grid is cut only by the units it meets."""

    def __init__(self, units: Mapping[str, BaseGeometry]) -> None:
        self.codes = sorted(units)
        self.geoms = [units[c] for c in self.codes]
        self.tree = STRtree(self.geoms)

    def shares(self, grid: BaseGeometry) -> dict[str, float]:
        """Square metres of ``grid`` in each unit it overlaps."""
        out = {}
        for i in sorted(self.tree.query(grid, predicate="intersects").tolist()):
            piece = shapely.intersection(grid, self.geoms[i])
            area = area_m2(piece) if not piece.is_empty else 0.0
            if area > 0:
                out[self.codes[i]] = area
        return out


def _main(shares: Mapping[str, float]) -> tuple[str | None, float]:
    """The unit holding most of a grid (lowest code on a tie) and its share (0–1)."""
    total = sum(shares.values())
    if total <= 0:
        return None, 0.0
    unit = max(sorted(shares), key=lambda u: shares[u])
    return unit, shares[unit] / total


def main_units(
    grids: Mapping[str, BaseGeometry], units: Mapping[str, BaseGeometry]
) -> dict[str, str | None]:
    """The unit holding the largest part of each grid (the lowest code on a tie)."""
    index = _Units(units)
    return {code: _main(index.shares(grids[code]))[0] for code in sorted(grids)}


def grid_shares(
    grids: Mapping[str, BaseGeometry], units: Mapping[str, BaseGeometry]
) -> list[GridShares]:
    """Each grid's area and its shares in the units, for :func:`docking_summary` of grids
    or units that are only proposed (the stored ones have ``grid_unit``)."""
    index = _Units(units)
    out = []
    for code in sorted(grids):
        area = area_m2(grids[code])
        shares = index.shares(grids[code])
        out.append(GridShares(code, area, {u: a / area for u, a in shares.items()} if area else {}))
    return out


def _shared_length(a: BaseGeometry, b: BaseGeometry) -> float:
    return float(shapely.intersection(a.boundary, b.boundary).length)


def grids_follow_units(
    grids: Mapping[str, BaseGeometry],
    units: Mapping[str, BaseGeometry],
    *,
    one_unit_share: float,
    min_piece_m2: float = MIN_PIECE_M2,
    group_of: Mapping[str, str] | None = None,
) -> GridsFollowUnits:
    """Hand each grid's pieces in other units to the neighbour of that unit it borders most.

    Grids already ``one_unit_share`` in one unit are left alone. A piece goes to a grid
    whose main unit is the piece's unit and which shares a stretch of boundary with it; a
    move that would cut the giver in two is not made. With ``group_of`` (grid → its
    community) a piece only goes to a grid of the same community: grids never leave their
    community. Grids are visited in code order, so the answer does not depend on the
    input's order.
    """
    index = _Units(units)
    shares_of = {code: index.shares(grids[code]) for code in sorted(grids)}
    main = {code: _main(shares)[0] for code, shares in shares_of.items()}
    current = dict(grids)
    moves: list[PieceMove] = []
    left: list[PieceLeft] = []
    for code in sorted(grids):
        shares = shares_of[code]
        unit_of_most, share = _main(shares)
        if unit_of_most is None or share >= one_unit_share:
            continue
        for unit in sorted(shares):
            if unit == main[code] or shares[unit] < min_piece_m2:
                continue
            inside = shapely.intersection(current[code], units[unit])
            for part in polygon_parts(inside):
                area = area_m2(part)
                if area < min_piece_m2 or (area < 100.0 and is_sliver(part)):
                    continue
                receivers = sorted(
                    (
                        (-_shared_length(part, current[other]), other)
                        for other in current
                        if other != code
                        and main[other] == unit
                        and (group_of is None or group_of[other] == group_of[code])
                    ),
                )
                receivers = [r for r in receivers if r[0] < 0]
                if not receivers:
                    left.append(PieceLeft(part, round(area, 1), code, unit, "no_neighbour_in_unit"))
                    continue
                giver = shapely.difference(current[code], part)
                if parts_count(giver) != 1:
                    left.append(PieceLeft(part, round(area, 1), code, unit, "would_split_grid"))
                    continue
                receiver = receivers[0][1]
                current[code] = giver
                current[receiver] = shapely.union(current[receiver], part)
                moves.append(PieceMove(part, round(area, 1), code, receiver, unit))
    return GridsFollowUnits(current, main, tuple(moves), tuple(left))


@dataclass(frozen=True)
class UnitsFromGrids:
    units: dict[str, BaseGeometry]  # every unit, with its proposed boundary
    main_unit: dict[str, str | None]  # grid → the unit it goes to, whole
    gained: dict[str, list[str]]  # unit → the grids it takes whole that straddled before
    emptied: list[str]  # units that met these grids and would keep no area at all


def units_from_grids(
    grids: Mapping[str, BaseGeometry],
    units: Mapping[str, BaseGeometry],
    *,
    one_unit_share: float,
) -> UnitsFromGrids:
    """Each unit's boundary made of whole grids: the grids whose larger part lies in it.

    Outside the given grids a unit keeps its boundary, so a township's grids can be
    docked without touching the rest of the city.
    """
    index = _Units(units)
    main: dict[str, str | None] = {}
    straddling: set[str] = set()
    met: set[str] = set()
    for code in sorted(grids):
        shares = index.shares(grids[code])
        met |= {u for u, area in shares.items() if area >= MIN_PIECE_M2}
        main[code], share = _main(shares)
        if share < one_unit_share:
            straddling.add(code)
    # Only grids some unit takes leave their old units: a grid no unit meets stays as it is.
    covered = shapely.union_all([grids[g] for g in grids if main[g] is not None])
    proposed: dict[str, BaseGeometry] = {}
    gained: dict[str, list[str]] = {}
    taken: BaseGeometry = shapely.Polygon()
    for unit in sorted(units):
        mine = [g for g in sorted(grids) if main[g] == unit]
        kept = shapely.difference(units[unit], covered)
        # A partition: what an earlier unit holds (grids that overlap by slivers, units
        # that already overlapped) is not given twice.
        shape = shapely.difference(shapely.union_all([kept, *(grids[g] for g in mine)]), taken)
        proposed[unit] = shapely.union_all(polygon_parts(shape))  # no stray lines or points
        taken = shapely.union(taken, proposed[unit])
        gained[unit] = [g for g in mine if g in straddling]
    emptied = [u for u in sorted(met) if area_m2(proposed[u]) < MIN_PIECE_M2]
    return UnitsFromGrids(proposed, main, gained, emptied)
