"""Docking score of a set of grids against one kind of department unit (网格与责任区对接).

The same score as the docking map (:mod:`gridgov.layers.docking`): 100 × the area-weighted
mean of each grid's largest share in one unit. A grid is docked when one unit holds at
least ``one_unit_share`` of it; for the rest, the area outside their main unit is the
"wrong side" a planner or the police would have to move.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class GridShares:
    key: str
    area_m2: float
    shares: Mapping[str, float]  # unit code -> share of the grid's area (0–1)


@dataclass(frozen=True)
class GridDocking:
    key: str
    unit: str | None  # the unit holding most of the grid
    share: float
    docked: bool
    wrong_side_m2: float  # 0 for docked grids


@dataclass(frozen=True)
class DockingSummary:
    grids: int
    docked: int
    straddling: int  # in two or more units and docked in none
    docked_share: float  # docked / grids
    wrong_side_m2: float  # summed over the grids that are not docked
    score: float  # 0–100
    items: tuple[GridDocking, ...]


def docking_summary(
    grids: Sequence[GridShares], one_unit_share: float, sliver_share: float
) -> DockingSummary:
    items = []
    weighted = total = wrong = 0.0
    docked = straddling = 0
    for grid in grids:
        unit, share = None, 0.0
        for code in sorted(grid.shares):
            if grid.shares[code] > share:
                unit, share = code, min(1.0, grid.shares[code])
        is_docked = share >= one_unit_share
        outside = 0.0 if is_docked else grid.area_m2 * (1.0 - share)
        items.append(GridDocking(grid.key, unit, round(share, 4), is_docked, round(outside, 1)))
        docked += is_docked
        pieces = sum(1 for s in grid.shares.values() if s >= sliver_share)
        straddling += (not is_docked) and pieces >= 2
        weighted += share * grid.area_m2
        total += grid.area_m2
        wrong += outside
    n = len(grids)
    return DockingSummary(
        grids=n,
        docked=docked,
        straddling=straddling,
        docked_share=round(docked / n, 4) if n else 0.0,
        wrong_side_m2=round(wrong, 1),
        score=round(100.0 * weighted / total, 1) if total > 0 else 0.0,
        items=tuple(items),
    )
