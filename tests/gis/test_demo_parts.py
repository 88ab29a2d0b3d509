"""The demo city's building blocks: exact partitions, balanced grids, codes, people."""

from __future__ import annotations

from collections.abc import Sequence

import geopandas as gpd
import numpy as np
import pytest
import shapely
from shapely.geometry import Point, Polygon, box
from shapely.geometry.base import BaseGeometry

from gridgov.gis.demo import people
from gridgov.gis.demo.partition import bisect_partition, merge_fragments, voronoi_partition
from gridgov.gis.demo.pyramid import locate
from gridgov.gis.grid_codes import grid_code, next_sequence, reading_order

# A concave, L-shaped "township" 6 km across, in metres.
L_SHAPE = Polygon([(0, 0), (6000, 0), (6000, 2000), (2000, 2000), (2000, 6000), (0, 6000)])


def assert_exact_partition(parent: BaseGeometry, pieces: Sequence[BaseGeometry]) -> None:
    union = shapely.union_all(pieces)
    gaps = parent.difference(union).area
    overlaps = sum(p.area for p in pieces) - union.area
    assert gaps < 1e-3, gaps
    assert overlaps < 1e-3, overlaps
    assert union.difference(parent).area < 1e-3


@pytest.mark.parametrize("k", [2, 7, 25])
def test_voronoi_partition_covers_exactly_and_is_contiguous(k: int) -> None:
    pieces = voronoi_partition(L_SHAPE, k, np.random.default_rng(k))
    assert len(pieces) == k
    assert_exact_partition(L_SHAPE, pieces)
    assert all(p.geom_type == "Polygon" for p in pieces)


def test_voronoi_partition_follows_density() -> None:
    def dense_in_corner(x: np.ndarray, y: np.ndarray) -> np.ndarray:
        result: np.ndarray = 0.02 + np.exp(-((x - 500) ** 2 + (y - 500) ** 2) / (2 * 800.0**2))
        return result

    pieces = voronoi_partition(box(0, 0, 6000, 6000), 20, np.random.default_rng(3), dense_in_corner)
    near = [p.area for p in pieces if p.centroid.distance(Point(500, 500)) < 1500]
    far = [p.area for p in pieces if p.centroid.distance(Point(500, 500)) > 3500]
    assert near
    assert far
    assert np.mean(near) * 3 < np.mean(far)


def test_bisect_partition_balances_households() -> None:
    rng = np.random.default_rng(7)
    points = np.column_stack([rng.uniform(0, 2000, 300), rng.uniform(0, 6000, 300)])
    inside = shapely.contains_xy(L_SHAPE, points[:, 0], points[:, 1])
    points = points[inside]
    weights = rng.integers(20, 200, len(points)).astype(float)
    pieces = merge_fragments(bisect_partition(L_SHAPE, 6, points, weights))
    assert len(pieces) == 6
    assert_exact_partition(L_SHAPE, pieces)
    index = locate(
        gpd.GeoSeries(gpd.points_from_xy(points[:, 0], points[:, 1])),
        gpd.GeoDataFrame(geometry=pieces),
    )
    totals = np.bincount(index, weights=weights, minlength=6)
    assert totals.max() / totals.min() < 1.6, totals


def test_locate_gives_shared_boundaries_to_the_lowest_index() -> None:
    left, right = box(0, 0, 1, 1), box(1, 0, 2, 1)
    frame = gpd.GeoDataFrame(geometry=[right, left])
    points = gpd.GeoSeries([Point(1, 0.5), Point(1.5, 0.5), Point(0.5, 0.5), Point(1, 1)])
    assert locate(points, frame).tolist() == [0, 0, 1, 0]


def test_grid_codes_read_north_to_south_west_to_east() -> None:
    x = np.array([300.0, 100.0, 200.0, 100.0])
    y = np.array([900.0, 905.0, 100.0, 110.0])
    assert reading_order(x, y, row_height=400).tolist() == [1, 0, 3, 2]
    assert grid_code("320213001001", 7) == "320213001001007"
    with pytest.raises(ValueError, match=r"1\.\.999"):
        grid_code("320213001001", 1000)
    # Retired codes are never reused: the next one follows the highest ever used.
    assert next_sequence(["320213001001001", "320213001001004"]) == 5


def test_synthetic_id_numbers_carry_valid_check_digits() -> None:
    rng = np.random.default_rng(1)
    weights = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2]
    for _ in range(200):
        number = people.id_number(rng)
        assert len(number) == 18
        total = sum(int(d) * w for d, w in zip(number[:17], weights, strict=True))
        assert number[17] == "10X98765432"[total % 11]
        assert people.mobile(rng).isdigit()
