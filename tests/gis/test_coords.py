"""China's coordinate systems: published reference pairs, exact round trips, validation."""

from __future__ import annotations

import numpy as np
import pytest
import shapely
from pyproj import CRS, Geod
from shapely.geometry import LineString, Point, Polygon

from gridgov.errors import InvalidInputError
from gridgov.gis import coords
from gridgov.gis.coords import (
    PROBLEM_MESSAGES,
    PROBLEM_NAN,
    PROBLEM_OK,
    PROBLEM_OUTSIDE,
    PROBLEM_SWAPPED,
    CoordinateError,
    bd09_to_gcj02,
    bd09_to_wgs84,
    from_cgcs2000,
    from_projected,
    gauss_kruger_epsg,
    gcj02_to_bd09,
    gcj02_to_wgs84,
    geometry_from_cgcs2000,
    geometry_to_cgcs2000,
    locate_problems,
    outside_china,
    parse_crs,
    to_cgcs2000,
    to_projected,
    wgs84_to_bd09,
    wgs84_to_gcj02,
)

GEOD = Geod(ellps="GRS80")  # CGCS2000's ellipsoid; distances in metres
BAR_M = 0.05  # the accuracy the product brief asks of every inverse
N_RANDOM = 6000
WUXI = (120.3, 31.5)


def metres(lon1: object, lat1: object, lon2: object, lat2: object) -> np.ndarray:
    """Geodesic distance, so that errors are judged in metres, not degrees."""
    return np.asarray(GEOD.inv(lon1, lat1, lon2, lat2)[2])


@pytest.fixture(scope="module")
def china_points() -> tuple[np.ndarray, np.ndarray]:
    """Seeded uniform points over China's extent (73–136°E, 18–54°N)."""
    rng = np.random.default_rng(20240531)
    return rng.uniform(73.0, 136.0, N_RANDOM), rng.uniform(18.0, 54.0, N_RANDOM)


# --------------------------------------------------------------------------- reference pairs

# googollee/eviltransform, python/test.py ("TESTS": wgsLat, wgsLng, gcjLat, gcjLng).
EVILTRANSFORM_WGS_GCJ = [
    (31.1774276, 121.5272106, 31.17530398364597, 121.531541859215),  # Shanghai
    (22.543847, 113.912316, 22.540796131694766, 113.9171764808363),  # Shenzhen
    (39.911954, 116.377817, 39.91334545536069, 116.38404722455657),  # Beijing
]


@pytest.mark.parametrize(("wlat", "wlon", "glat", "glon"), EVILTRANSFORM_WGS_GCJ)
def test_wgs84_to_gcj02_matches_published_pairs(
    wlat: float, wlon: float, glat: float, glon: float
) -> None:
    lon, lat = wgs84_to_gcj02(wlon, wlat)
    assert float(lon) == pytest.approx(glon, abs=1e-9)
    assert float(lat) == pytest.approx(glat, abs=1e-9)
    back_lon, back_lat = gcj02_to_wgs84(glon, glat)
    assert metres(back_lon, back_lat, wlon, wlat) < 0.01


def test_coordtransform_readme_pairs() -> None:
    """wandergis/coordtransform, test/app.js: the results printed for (116.404, 39.915)."""
    assert np.allclose(wgs84_to_gcj02(116.404, 39.915), (116.41024449916938, 39.91640428150164))
    assert np.allclose(gcj02_to_bd09(116.404, 39.915), (116.41036949371029, 39.92133699351021))
    # Their gcj02towgs84 and bd09togcj02 are the one-step approximations: ours must be close
    # to them (within a few metres / centimetres) and exact where theirs is not.
    approx_wgs = (116.39775550083061, 39.91359571849836)
    exact_wgs = gcj02_to_wgs84(116.404, 39.915)
    assert 0.05 < metres(*exact_wgs, *approx_wgs) < 5.0
    assert metres(*wgs84_to_gcj02(*exact_wgs), 116.404, 39.915) < 1e-4
    assert metres(*wgs84_to_gcj02(*approx_wgs), 116.404, 39.915) > BAR_M
    approx_gcj = (116.39762729119315, 39.90865673957631)
    exact_gcj = bd09_to_gcj02(116.404, 39.915)
    assert metres(*exact_gcj, *approx_gcj) < 0.5
    assert metres(*gcj02_to_bd09(*exact_gcj), 116.404, 39.915) < 1e-4


def test_gcj02_to_bd09_matches_gcoord() -> None:
    """hujiulong/gcoord, test/unit/crs/GCJ02.spec.js: GCJ02 (123, 45) → BD09, to 1e-5."""
    lon, lat = gcj02_to_bd09(123.0, 45.0)
    assert float(lon) == pytest.approx(123.00636499, abs=1e-5)
    assert float(lat) == pytest.approx(45.00636899, abs=1e-5)


# --------------------------------------------------------------------------- round trips


def test_gcj02_round_trips_everywhere_in_china(china_points: tuple[np.ndarray, ...]) -> None:
    lon, lat = china_points
    g_lon, g_lat = wgs84_to_gcj02(lon, lat)
    assert metres(*gcj02_to_wgs84(g_lon, g_lat), lon, lat).max() < BAR_M
    # And the other way: treat the random points as GCJ-02 input.
    assert metres(*wgs84_to_gcj02(*gcj02_to_wgs84(lon, lat)), lon, lat).max() < BAR_M


def test_bd09_round_trips_everywhere_in_china(china_points: tuple[np.ndarray, ...]) -> None:
    lon, lat = china_points
    assert metres(*bd09_to_wgs84(*wgs84_to_bd09(lon, lat)), lon, lat).max() < BAR_M
    assert metres(*bd09_to_gcj02(*gcj02_to_bd09(lon, lat)), lon, lat).max() < BAR_M
    assert metres(*gcj02_to_bd09(*bd09_to_gcj02(lon, lat)), lon, lat).max() < BAR_M


def test_one_step_inverse_would_not_meet_the_bar(china_points: tuple[np.ndarray, ...]) -> None:
    """wgs ≈ 2·gcj − f(gcj), the common shortcut, is metres off: iterating is needed."""
    lon, lat = china_points
    g_lon, g_lat = wgs84_to_gcj02(lon, lat)
    f_lon, f_lat = wgs84_to_gcj02(g_lon, g_lat)
    one_step = metres(2 * g_lon - f_lon, 2 * g_lat - f_lat, lon, lat)
    assert one_step.max() > 1.0
    assert np.mean(one_step > BAR_M) > 0.5


def test_gcj02_offset_in_wuxi_is_about_500_m() -> None:
    g_lon, g_lat = wgs84_to_gcj02(*WUXI)
    assert 400.0 < metres(*WUXI, g_lon, g_lat) < 600.0
    b_lon, b_lat = wgs84_to_bd09(*WUXI)
    assert metres(*WUXI, b_lon, b_lat) > 600.0  # BD-09 adds roughly another kilometre


def test_vectorised_shapes_and_scalars() -> None:
    lon = np.full((3, 4), 120.3)
    lat = np.linspace(31.0, 32.0, 12).reshape(3, 4)
    out_lon, out_lat = gcj02_to_wgs84(lon, lat)
    assert out_lon.shape == out_lat.shape == (3, 4)
    s_lon, s_lat = wgs84_to_gcj02(120.3, 31.5)
    assert isinstance(s_lon, np.ndarray)
    assert s_lon.shape == ()
    assert np.isfinite(s_lat)


# --------------------------------------------------------------------------- the GCJ rectangle


@pytest.mark.parametrize(
    ("inside", "outside"),
    [
        ((72.0041, 30.0), (72.0039, 30.0)),
        ((137.8346, 30.0), (137.8348, 30.0)),
        ((100.0, 0.8294), (100.0, 0.8292)),
        ((100.0, 55.8270), (100.0, 55.8272)),
    ],
)
def test_gcj_rectangle_edges(inside: tuple[float, float], outside: tuple[float, float]) -> None:
    assert not outside_china(*inside)
    assert outside_china(*outside)
    assert metres(*inside, *wgs84_to_gcj02(*inside)) > 10.0
    assert np.array_equal(np.array(wgs84_to_gcj02(*outside)), np.array(outside))
    assert np.array_equal(np.array(gcj02_to_wgs84(*outside)), np.array(outside))


def test_outside_china_is_vectorised_and_nan_is_outside() -> None:
    result = outside_china([120.0, 10.0, np.nan], [31.0, 31.0, 31.0])
    assert result.tolist() == [False, True, True]


# --------------------------------------------------------------------------- problems


def test_locate_problems_codes_each_case() -> None:
    lon = [120.3, np.nan, 120.3, np.inf, 2.35, 31.5, 73.0001, 72.9999, 120.0, 120.0, 136.0001]
    lat = [31.5, 31.5, -np.inf, 31.5, 48.85, 120.3, 30.0, 30.0, 17.9999, 54.0001, 40.0]
    expected = [
        PROBLEM_OK,
        PROBLEM_NAN,
        PROBLEM_NAN,
        PROBLEM_NAN,
        PROBLEM_OUTSIDE,  # Paris
        PROBLEM_SWAPPED,
        PROBLEM_OK,
        PROBLEM_OUTSIDE,
        PROBLEM_OUTSIDE,
        PROBLEM_OUTSIDE,
        PROBLEM_OUTSIDE,
    ]
    problems = locate_problems(lon, lat)
    assert problems.dtype == np.int8
    assert problems.tolist() == expected


def test_problem_codes_are_distinct_with_chinese_and_english_messages() -> None:
    codes = {PROBLEM_OK, PROBLEM_NAN, PROBLEM_OUTSIDE, PROBLEM_SWAPPED}
    assert len(codes) == 4
    assert set(PROBLEM_MESSAGES) == codes
    for zh, en in PROBLEM_MESSAGES.values():
        assert any("\u4e00" <= ch <= "\u9fff" for ch in zh)
        assert en
        assert not any("\u4e00" <= ch <= "\u9fff" for ch in en)


@pytest.mark.parametrize(
    ("lon", "lat", "crs", "index", "reason"),
    [
        ([120.3, np.nan, 120.4], [31.5, 31.5, 31.6], "wgs84", 1, "nan"),
        ([120.3, 120.3, np.inf], [31.5, 31.5, 31.6], "gcj02", 2, "nan"),
        ([120.3, 120.3, 120.4], [31.5, 31.5, np.nan], "EPSG:4549", 2, "nan"),
        ([120.3, 31.5], [31.5, 120.3], "wgs84", 1, "swapped"),
        ([120.3, 31.5], [31.5, 120.3], "gcj02", 1, "swapped"),
        ([120.3, 31.5], [31.5, 120.3], "bd09", 1, "swapped"),
        ([2.35, 120.3], [48.85, 31.5], "cgcs2000", 0, "outside_china"),
        ([120.3, 150.0], [31.5, -10.0], "gcj02", 1, "outside_china"),
    ],
)
def test_to_cgcs2000_names_first_bad_point_and_reason(
    lon: list[float], lat: list[float], crs: str, index: int, reason: str
) -> None:
    with pytest.raises(CoordinateError) as caught:
        to_cgcs2000(lon, lat, crs)
    error = caught.value
    assert isinstance(error, InvalidInputError)
    assert error.code == "coordinates"
    assert error.public == {"index": index, "reason": reason}
    assert error.detail.startswith(f"第 {index} 个坐标点")
    assert f"(point {index}:" in error.detail


def test_swapped_projected_input_is_recognised() -> None:
    x, y = to_projected(*WUXI)
    with pytest.raises(CoordinateError) as caught:
        to_cgcs2000([float(x), float(y)], [float(y), float(x)], "EPSG:4549")
    assert caught.value.public == {"index": 1, "reason": "swapped"}


def test_to_cgcs2000_converts_each_supported_crs() -> None:
    lon = np.array([120.3, 119.9, 120.6])
    lat = np.array([31.5, 31.3, 31.8])
    assert np.array_equal(np.array(to_cgcs2000(lon, lat, "WGS84")), np.array([lon, lat]))
    assert np.array_equal(np.array(to_cgcs2000(lon, lat, "EPSG:4490")), np.array([lon, lat]))
    assert metres(*to_cgcs2000(*wgs84_to_gcj02(lon, lat), "gcj-02"), lon, lat).max() < BAR_M
    assert metres(*to_cgcs2000(*wgs84_to_bd09(lon, lat), "bd09"), lon, lat).max() < BAR_M
    for epsg in ("EPSG:4549", "EPSG:3857", "EPSG:32651"):
        x, y = from_cgcs2000(lon, lat, epsg)
        assert metres(*to_cgcs2000(x, y, epsg), lon, lat).max() < 1e-3


def test_from_cgcs2000_exports_and_refuses_bad_stored_points() -> None:
    g = from_cgcs2000(*WUXI, "gcj02")
    assert np.array_equal(np.array(g), np.array(wgs84_to_gcj02(*WUXI)))
    with pytest.raises(CoordinateError) as caught:
        from_cgcs2000([120.3, np.nan], [31.5, 31.5], "gcj02")
    assert caught.value.public == {"index": 1, "reason": "nan"}


# --------------------------------------------------------------------------- geometries


def test_geometry_to_cgcs2000_moves_every_vertex() -> None:
    ring = [(120.30, 31.50), (120.32, 31.50), (120.32, 31.52), (120.30, 31.52), (120.30, 31.50)]
    hole = [(120.305, 31.505), (120.31, 31.505), (120.31, 31.51), (120.305, 31.505)]
    polygon = Polygon(ring, [hole])
    converted = geometry_to_cgcs2000(polygon, "gcj02")
    assert converted.geom_type == "Polygon"
    assert converted.is_valid
    source = shapely.get_coordinates(polygon)
    expected = np.column_stack(gcj02_to_wgs84(source[:, 0], source[:, 1]))
    assert np.array_equal(shapely.get_coordinates(converted), expected)
    # The GCJ-02 offset near Wuxi is ~500 m: every vertex moved by about that much.
    moved = metres(source[:, 0], source[:, 1], expected[:, 0], expected[:, 1])
    assert moved.min() > 400.0
    back = geometry_from_cgcs2000(converted, "gcj02")
    got = shapely.get_coordinates(back)
    assert metres(got[:, 0], got[:, 1], source[:, 0], source[:, 1]).max() < BAR_M


def test_geometry_errors_name_the_vertex() -> None:
    line = LineString([(120.3, 31.5), (120.4, 31.5), (31.6, 120.5)])
    with pytest.raises(CoordinateError) as caught:
        geometry_to_cgcs2000(line, "wgs84")
    assert caught.value.public == {"index": 2, "reason": "swapped"}
    with pytest.raises(CoordinateError) as caught:
        geometry_to_cgcs2000(Point(120.3, float("nan")), "gcj02")
    assert caught.value.public == {"index": 0, "reason": "nan"}


def test_geometry_to_cgcs2000_from_projected_metres() -> None:
    x, y = to_projected(*WUXI)
    square = shapely.box(float(x), float(y), float(x) + 1000.0, float(y) + 1000.0)
    converted = geometry_to_cgcs2000(square, "EPSG:4549")
    assert converted.is_valid
    lon, lat = shapely.get_coordinates(converted).T
    reprojected = np.column_stack(to_projected(lon, lat))
    assert np.abs(reprojected - shapely.get_coordinates(square)).max() < 1e-4


def test_empty_geometry_passes_through() -> None:
    assert geometry_to_cgcs2000(Polygon(), "gcj02").is_empty


# --------------------------------------------------------------------------- Gauss-Kruger


def test_epsg_4549_round_trip(china_points: tuple[np.ndarray, ...]) -> None:
    rng = np.random.default_rng(7)
    lon = rng.uniform(118.5, 121.5, N_RANDOM)
    lat = rng.uniform(18.0, 54.0, N_RANDOM)
    x, y = to_projected(lon, lat)
    assert metres(*from_projected(x, y, 4549), lon, lat).max() < 1e-4
    # The central meridian maps to the false easting, 500 km.
    cm_x, _ = to_projected(120.0, 31.5, 4549)
    assert float(cm_x) == pytest.approx(500_000.0, abs=1e-6)


def test_projected_distances_are_metres() -> None:
    x, y = to_projected([120.3, 120.3], [31.5, 31.6])
    grid = float(np.hypot(np.diff(x), np.diff(y))[0])
    assert grid == pytest.approx(float(metres(120.3, 31.5, 120.3, 31.6)), rel=1e-4)


@pytest.mark.parametrize("lon", [73.5, 75.0, 100.2, 118.6, 120.3, 121.49, 121.5, 134.0, 136.0])
def test_gauss_kruger_zone_names_its_central_meridian(lon: float) -> None:
    code = gauss_kruger_epsg(lon)
    name = CRS.from_epsg(code).name
    assert name.startswith("CGCS2000 / 3-degree Gauss-Kruger CM ")
    central = int(name.rsplit(" ", 1)[-1].rstrip("E"))
    assert central - 1.5 <= lon < central + 1.5


def test_gauss_kruger_zone_of_wuxi_and_refusals() -> None:
    assert gauss_kruger_epsg(WUXI[0]) == 4549
    assert gauss_kruger_epsg(121.5) == 4550  # an edge goes east
    with pytest.raises(CoordinateError):
        gauss_kruger_epsg(10.0)
    with pytest.raises(CoordinateError):
        gauss_kruger_epsg(float("nan"))


# --------------------------------------------------------------------------- CRS names


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("wgs84", "wgs84"),
        ("WGS84", "wgs84"),
        ("EPSG:4326", "wgs84"),
        (" epsg:4326 ", "wgs84"),
        ("cgcs2000", "cgcs2000"),
        ("CGCS2000", "cgcs2000"),
        ("EPSG:4490", "cgcs2000"),
        ("gcj02", "gcj02"),
        ("GCJ-02", "gcj02"),
        ("bd09", "bd09"),
        ("BD-09", "bd09"),
        ("EPSG:4549", "EPSG:4549"),
        ("epsg:3857", "EPSG:3857"),
        ("EPSG:32650", "EPSG:32650"),
    ],
)
def test_parse_crs_aliases(value: str, expected: str) -> None:
    assert parse_crs(value) == expected


@pytest.mark.parametrize(
    "value",
    [
        "",
        "mars",
        "gcj03",
        "EPSG:",
        "EPSG:999999",  # not in the EPSG database
        "EPSG:5773",  # EGM96 height: vertical
        "EPSG:4479",  # CGCS2000 geocentric
        "EPSG:4480",  # CGCS2000 3-D geographic
        "4326",
        None,
    ],
)
def test_parse_crs_refusals(value: str) -> None:
    with pytest.raises(CoordinateError) as caught:
        parse_crs(value)
    assert caught.value.public == {"reason": "unknown_crs"}


def test_unknown_crs_is_not_echoed() -> None:
    with pytest.raises(CoordinateError) as caught:
        parse_crs("<script>secret-crs</script>")
    assert "secret" not in str(caught.value)


def test_unknown_crs_is_refused_before_converting() -> None:
    with pytest.raises(CoordinateError) as caught:
        to_cgcs2000([120.3], [31.5], "baidu-mercator")
    assert caught.value.public["reason"] == "unknown_crs"
    with pytest.raises(CoordinateError):
        geometry_from_cgcs2000(Point(120.3, 31.5), "EPSG:5773")


def test_china_bounds_match_the_database_check() -> None:
    """The database refuses rows outside the same box (gridgov.layers.tables)."""
    from gridgov.layers.tables import CHINA_BOUNDS

    assert coords.CHINA_BOUNDS == CHINA_BOUNDS
