"""Pure grid measures, coverage pieces and docking scores (no database)."""

from __future__ import annotations

import math

import numpy as np
import pytest
from shapely.geometry import MultiPolygon, Point, Polygon, box

from gridgov.gis.coords import from_projected
from gridgov.gis.coverage import coverage_pieces, totals
from gridgov.gis.docking import GridShares, docking_summary
from gridgov.gis.grid_codes import codes_for_new
from gridgov.gis.measures import (
    GridCounts,
    WorkloadWeights,
    area_m2,
    balance,
    grid_measures,
    parts_count,
    polsby_popper,
    to_metric,
)

# A corner of Wuxi in EPSG:4549 metres (easting, northing).
X0, Y0 = 500_000.0, 3_495_000.0


def lonlat_box(x0: float, y0: float, x1: float, y1: float) -> Polygon:
    """A rectangle drawn in metres, returned in CGCS2000 lon/lat (densified edges)."""
    xs = np.concatenate([np.linspace(x0, x1, 20), [x1] * 20, np.linspace(x1, x0, 20), [x0] * 20])
    ys = np.concatenate([[y0] * 20, np.linspace(y0, y1, 20), [y1] * 20, np.linspace(y1, y0, 20)])
    lon, lat = from_projected(X0 + xs, Y0 + ys)
    return Polygon(np.column_stack([lon, lat]))


def test_area_in_metres_of_a_square_kilometre() -> None:
    square = lonlat_box(0, 0, 1000, 1000)
    assert area_m2(square) == pytest.approx(1e6, rel=1e-4)


def test_polsby_popper_disc_square_strip() -> None:
    disc = Point(0, 0).buffer(500, quad_segs=64)
    assert polsby_popper(disc) == pytest.approx(1.0, abs=1e-3)
    assert polsby_popper(box(0, 0, 100, 100)) == pytest.approx(math.pi / 4)
    strip = box(0, 0, 1000, 10)
    assert polsby_popper(strip) == pytest.approx(4 * math.pi * 10_000 / 2020**2)
    assert polsby_popper(to_metric(lonlat_box(0, 0, 1000, 1000))) == pytest.approx(
        math.pi / 4, rel=1e-3
    )


def test_contiguity_counts_connected_pieces() -> None:
    assert parts_count(MultiPolygon([box(0, 0, 1, 1), box(2, 0, 3, 1)])) == 2
    assert parts_count(MultiPolygon([box(0, 0, 1, 1), box(1, 0, 2, 1)])) == 1
    assert parts_count(box(0, 0, 1, 1)) == 1


def test_workload_index_uses_the_weights() -> None:
    counts = GridCounts(
        households=400,
        population=1000,
        incidents=730,
        rentals=10,
        group_rentals=2,
        key_sites=1,
        hazards={"major": 1, "low": 3},
    )
    weights = WorkloadWeights.from_mapping({"population": 0.1, "hazard_low": 2})
    measures = grid_measures(lonlat_box(0, 0, 500, 800), counts, weights, period_days=730.5)
    expected = 400 + 0.1 * 1000 + 0.5 * 365.0 + 0.5 * 10 + 5 * 2 + 10 * 1 + 30 * 1 + 2 * 3
    assert measures.workload == pytest.approx(expected)
    assert measures.incidents_per_year == pytest.approx(365.0)
    assert measures.area_km2 == pytest.approx(0.4, rel=1e-4)
    assert measures.hazards == {"major": 1, "high": 0, "moderate": 0, "low": 3}
    assert measures.contiguous
    assert measures.compactness == pytest.approx(4 * math.pi * 0.4e6 / 2600**2, rel=1e-3)


@pytest.mark.parametrize("bad", [{"shoe_size": 1.0}, {"households": -1.0}, {"rentals": math.nan}])
def test_unknown_or_negative_weights_are_refused(bad: dict[str, float]) -> None:
    with pytest.raises(ValueError, match="workload weight"):
        WorkloadWeights.from_mapping(bad)


def test_balance_cv_and_max_min() -> None:
    result = balance([300.0, 500.0])
    assert (result.mean, result.cv) == (400.0, 0.25)
    assert result.max_min_ratio == pytest.approx(5 / 3, abs=1e-4)
    assert balance([0.0, 10.0]).max_min_ratio is None
    assert balance([]).cv is None


def test_coverage_lists_gaps_overlaps_spill_and_slivers() -> None:
    parent = lonlat_box(0, 0, 1000, 1000)
    children = {
        "a": lonlat_box(0, 0, 502, 1000),  # overlaps b by a 2 m strip: a sliver
        "b": lonlat_box(500, 0, 1000, 900),  # leaves a 100 m gap in the north-east
        "c": lonlat_box(500, 900, 800, 1050),  # spills 50 m north
    }
    pieces = coverage_pieces(parent, children)
    kinds = {(p.kind, p.codes): p for p in pieces}
    overlap = kinds[("overlap", ("a", "b"))]
    assert overlap.area_m2 == pytest.approx(2 * 900, rel=1e-3)
    assert overlap.sliver
    assert kinds[("overlap", ("a", "c"))].area_m2 == pytest.approx(2 * 100, rel=1e-3)
    gap = kinds[("gap", ())]
    assert gap.area_m2 == pytest.approx(200 * 100, rel=1e-3)
    assert not gap.sliver
    assert kinds[("outside", ("c",))].area_m2 == pytest.approx(300 * 50, rel=1e-3)
    assert totals(pieces)["overlap"] == pytest.approx(2000, rel=1e-3)


def test_docking_score_and_wrong_side() -> None:
    grids = [
        GridShares("g1", 1000.0, {"u1": 1.0}),
        GridShares("g2", 3000.0, {"u1": 0.6, "u2": 0.4}),
        GridShares("g3", 1000.0, {}),
    ]
    summary = docking_summary(grids, one_unit_share=0.99, sliver_share=0.001)
    assert (summary.grids, summary.docked, summary.straddling) == (3, 1, 1)
    assert summary.wrong_side_m2 == pytest.approx(0.4 * 3000 + 1000)
    assert summary.score == pytest.approx(100 * (1000 + 0.6 * 3000) / 5000, abs=0.05)
    assert summary.items[1].unit == "u1"


def test_new_codes_after_every_used_one_in_reading_order() -> None:
    used = ["320213001001001", "320213001001007"]  # 007 retired: never reused
    x = np.array([900.0, 100.0, 500.0])
    y = np.array([0.0, 1000.0, 0.0])  # the second is north of the others
    codes = codes_for_new("320213001001", used, x, y)
    assert codes == ["320213001001010", "320213001001008", "320213001001009"]
