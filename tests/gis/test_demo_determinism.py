"""The demo city is a pure function of its seed."""

from __future__ import annotations

import geopandas as gpd
import pytest
from geopandas.testing import assert_geodataframe_equal

from gridgov.gis import wuxi
from gridgov.gis.demo.city import DemoInputs, DemoOptions, build_city

SMALL = {"incidents": 2_000, "rentals": 500, "hazards": 50}


def _build(seed: int) -> dict[str, gpd.GeoDataFrame]:
    inputs = DemoInputs(wuxi.load_districts(), wuxi.load_townships(), wuxi.load_communities())
    return build_city(inputs, DemoOptions(seed=seed, **SMALL))


@pytest.fixture(scope="module")
def first() -> dict[str, gpd.GeoDataFrame]:
    return _build(7)


def test_same_seed_same_city(first: dict[str, gpd.GeoDataFrame]) -> None:
    again = _build(7)
    assert first.keys() == again.keys()
    for layer, frame in first.items():
        assert_geodataframe_equal(frame, again[layer], check_less_precise=False)


def test_other_seed_other_city(first: dict[str, gpd.GeoDataFrame]) -> None:
    other = _build(8)
    a, b = first["grid"], other["grid"]
    assert len(a) != len(b) or not a.geometry.geom_equals(b.geometry).all()
    # The real parts do not depend on the seed.
    assert_geodataframe_equal(first["district"], other["district"])
    assert sorted(first["community"]["code"]) == sorted(other["community"]["code"])
