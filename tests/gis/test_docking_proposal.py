"""Docking proposals on small drawn cases (metres on a 100 m lattice, stored as lon/lat)."""

from __future__ import annotations

import numpy as np
import pytest
import shapely
from shapely.geometry import Polygon
from shapely.geometry.base import BaseGeometry

from gridgov.gis.coords import from_projected
from gridgov.gis.docking_proposal import grids_follow_units, main_units, units_from_grids
from gridgov.gis.measures import area_m2

X0, Y0 = 530_000.0, 3_490_000.0  # metres in EPSG:4549, in Wuxi
SHARE = 0.99


def box(x0: float, y0: float, x1: float, y1: float) -> Polygon:
    """A rectangle in metres with a vertex every 100 m, so that shapes drawn on the same
    lattice share their edges vertex by vertex once in lon/lat."""

    def run(a: float, b: float) -> np.ndarray:
        return np.linspace(a, b, int(abs(b - a) // 100) + 1)

    xs = np.concatenate(
        [run(x0, x1), [x1] * len(run(y0, y1)), run(x1, x0), [x0] * len(run(y1, y0))]
    )
    ys = np.concatenate(
        [[y0] * len(run(x0, x1)), run(y0, y1), [y1] * len(run(x1, x0)), run(y1, y0)]
    )
    lon, lat = from_projected(X0 + xs, Y0 + ys)
    return Polygon(np.column_stack([lon, lat]))


def union(*geoms: BaseGeometry) -> BaseGeometry:
    return shapely.union_all(list(geoms))


def same_area(a: BaseGeometry, b: BaseGeometry) -> bool:
    return area_m2(shapely.symmetric_difference(a, b)) < 1.0


def test_a_straddling_grid_hands_its_piece_to_the_neighbour_in_that_unit() -> None:
    grids = {"g1": box(0, 0, 500, 1000), "g2": box(500, 0, 1000, 1000)}
    units = {"u1": box(0, 0, 600, 1000), "u2": box(600, 0, 1000, 1000)}
    assert main_units(grids, units) == {"g1": "u1", "g2": "u2"}
    result = grids_follow_units(grids, units, one_unit_share=SHARE)
    assert [(m.from_code, m.to_code, m.unit) for m in result.moves] == [("g2", "g1", "u1")]
    assert result.moves[0].area_m2 == pytest.approx(100 * 1000, rel=1e-3)
    assert same_area(result.grids["g1"], box(0, 0, 600, 1000))
    assert same_area(result.grids["g2"], box(600, 0, 1000, 1000))
    assert result.left == ()
    assert result.changed == ["g1", "g2"]
    # Nothing is lost or gained overall, and every grid now lies in one unit.
    assert same_area(union(*result.grids.values()), union(*grids.values()))
    again = grids_follow_units(result.grids, units, one_unit_share=SHARE)
    assert again.moves == ()


def test_a_piece_with_no_neighbour_in_its_unit_is_left_with_the_reason() -> None:
    grids = {"g1": box(0, 0, 500, 1000), "g2": box(500, 0, 1000, 1000)}
    # u3 is a corner of g2 that no other grid touches.
    units = {
        "u1": box(0, 0, 500, 1000),
        "u2": union(box(500, 0, 1000, 800), box(500, 800, 800, 1000)),
        "u3": box(800, 800, 1000, 1000),
    }
    result = grids_follow_units(grids, units, one_unit_share=SHARE)
    assert result.moves == ()
    assert [(p.code, p.unit, p.reason) for p in result.left] == [
        ("g2", "u3", "no_neighbour_in_unit")
    ]
    assert result.grids == grids


def test_a_move_that_would_cut_the_grid_in_two_is_not_made() -> None:
    grids = {"g1": box(0, 0, 500, 1000), "g2": box(500, 0, 1000, 1000)}
    # u1 reaches across g2 in a band: giving the band to g1 would cut g2 in two.
    units = {
        "u1": union(box(0, 0, 500, 1000), box(500, 400, 1000, 600)),
        "u2": union(box(500, 0, 1000, 400), box(500, 600, 1000, 1000)),
    }
    result = grids_follow_units(grids, units, one_unit_share=SHARE)
    assert result.moves == ()
    assert [(p.code, p.unit, p.reason) for p in result.left] == [("g2", "u1", "would_split_grid")]


def test_units_made_of_whole_grids() -> None:
    grids = {"g1": box(0, 0, 500, 1000), "g2": box(500, 0, 1000, 1000)}
    # The units reach beyond these grids (to x = 1500): that part keeps its boundary.
    units = {"u1": box(0, 0, 600, 1000), "u2": box(600, 0, 1500, 1000)}
    result = units_from_grids(grids, units, one_unit_share=SHARE)
    assert result.main_unit == {"g1": "u1", "g2": "u2"}
    assert same_area(result.units["u1"], box(0, 0, 500, 1000))
    assert same_area(result.units["u2"], box(500, 0, 1500, 1000))
    assert result.gained == {"u1": [], "u2": ["g2"]}
    assert result.emptied == []


def test_units_made_of_whole_grids_never_overlap() -> None:
    """Grids that overlap by a strip (as real grids do by slivers) and units that already
    overlapped: the proposed units are a partition, each piece given once."""
    grids = {"g1": box(0, 0, 600, 1000), "g2": box(500, 0, 1000, 1000)}  # 100 m overlap
    units = {"u1": box(0, 0, 500, 1000), "u2": box(400, 0, 1000, 1000)}  # 100 m overlap
    result = units_from_grids(grids, units, one_unit_share=SHARE)
    assert result.main_unit == {"g1": "u1", "g2": "u2"}
    assert area_m2(shapely.intersection(result.units["u1"], result.units["u2"])) < 1e-3
    assert same_area(union(result.units["u1"], result.units["u2"]), box(0, 0, 1000, 1000))


def test_a_unit_holding_no_grid_mostly_is_reported_emptied() -> None:
    grids = {"g1": box(0, 0, 1000, 1000)}
    units = {"u1": box(0, 0, 700, 1000), "u2": box(700, 0, 1000, 1000)}
    result = units_from_grids(grids, units, one_unit_share=SHARE)
    assert result.emptied == ["u2"]
    assert same_area(result.units["u1"], box(0, 0, 1000, 1000))
    assert area_m2(result.units["u2"]) < 1.0


def test_a_piece_never_leaves_its_community() -> None:
    grids = {"c1-g1": box(0, 0, 500, 1000), "c2-g1": box(500, 0, 1000, 1000)}
    units = {"u1": box(0, 0, 600, 1000), "u2": box(600, 0, 1000, 1000)}
    result = grids_follow_units(
        grids, units, one_unit_share=SHARE, group_of={c: c[:2] for c in grids}
    )
    assert result.moves == ()
    assert [(p.code, p.reason) for p in result.left] == [("c2-g1", "no_neighbour_in_unit")]
