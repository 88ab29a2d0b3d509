"""Shared edges stay shared through the datum change once T-junctions are closed."""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import shapely
from shapely.geometry import box

from gridgov.gis.demo.topology import share_vertices
from gridgov.gis.measures import area_m2

# Metres in CGCS2000 / 3-degree GK CM 120E, around Wuxi.
X0, X1, Y0, Y1 = 520_000.0, 560_000.0, 3_460_000.0, 3_500_000.0
XM, YM = (X0 + X1) / 2, (Y0 + Y1) / 2


def _halves() -> tuple[np.ndarray, np.ndarray]:
    """A parent cut in two, the right half cut again: a T-junction on the left half's edge."""
    parent = np.array([box(X0, Y0, X1, Y1)], dtype=object)
    children = np.array(
        [box(X0, Y0, XM, Y1), box(XM, YM, X1, Y1), box(XM, Y0, X1, YM)], dtype=object
    )
    return parent, children


def _faults_m2(parent: np.ndarray, children: np.ndarray) -> float:
    """Gap, overlap and spill-over of the children, overlaid in lon/lat as stored."""
    lonlat = gpd.GeoSeries(np.concatenate([parent, children]), crs=4549).to_crs(4490).to_numpy()
    outer, kids = lonlat[0], lonlat[1:]
    union = shapely.union_all(kids)
    overlap = sum(area_m2(k) for k in kids) - area_m2(union)
    return (
        area_m2(shapely.difference(outer, union))
        + area_m2(shapely.difference(union, outer))
        + abs(overlap)
    )


def test_t_junction_opens_a_sliver_in_lonlat_without_shared_vertices() -> None:
    parent, children = _halves()
    assert _faults_m2(parent, children) > 1.0


def test_shared_vertices_keep_the_partition_exact() -> None:
    parent, children = _halves()
    shared_parent, shared_children = share_vertices([parent, children], 1e-4)
    assert _faults_m2(shared_parent, shared_children) < 1e-3
    # Only vertices were added: every polygon keeps its shape in metres.
    for before, after in zip(children, shared_children, strict=True):
        assert shapely.equals(before, after)
    assert len(shapely.get_coordinates(shared_children[0])) == 6  # the T-vertex joined it
    assert len(shapely.get_coordinates(shared_parent[0])) == 8  # the three cut points joined it


def test_vertices_off_the_boundary_are_left_alone() -> None:
    far = np.array([box(X0, Y0, XM, Y1)], dtype=object)
    near = np.array([box(XM + 1.0, YM, X1, Y1)], dtype=object)  # 1 m away, not on the edge
    shared_far, _ = share_vertices([far, near], 1e-4)
    assert len(shapely.get_coordinates(shared_far[0])) == 5
