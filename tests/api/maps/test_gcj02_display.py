"""With a GCJ-02 base map, gridgov's own data is shifted to GCJ-02 for display.

The shift is done in the browser (``static/gridgov/gcj02.js``, a port of
``gridgov.gis.coords.wgs84_to_gcj02``): GeoJSON vertex by vertex, vector tiles tile by tile.
These tests check the port against the Python formula, and that a page drawn over a GCJ-02
base map puts features where GCJ-02 says, while a CGCS2000 base map leaves them alone.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from playwright.sync_api import Browser

from gridgov.api.app import create_app
from gridgov.gis.coords import gcj02_to_wgs84, wgs84_to_gcj02
from gridgov.settings import Settings
from tests.api.maps.conftest import with_test_basemap
from tests.api.maps.pages import Watched, open_page
from tests.live import serve

READY = "window.GridGovPage && GridGovPage.entries.district.drawn > 0 && GridGov.idle()"
# First vertex of the first district as drawn, and as the API served it.
FIRST_VERTEX = """(() => {
  const layers = GridGovPage.entries.district.leaflet.getLayers();
  const drawn = layers[0].getLatLngs().flat(3)[0];
  return [drawn.lng, drawn.lat, layers[0].feature.properties.code];
})()"""


@pytest.fixture(scope="module")
def gcj_url(settings: Settings, demo_city: None, live_token: str) -> Iterator[str]:
    shifted = settings.model_copy(
        update={
            "basemap_url": "/test-basemap/{z}/{x}/{y}.png",
            "basemap_attribution": "测试底图 (test base map, GCJ-02)",
            "basemap_datum": "gcj02",
        }
    )
    with serve(with_test_basemap(create_app(shifted))) as url:
        yield url


def test_js_port_matches_python(browser: Browser, live_url: str) -> None:
    lon, lat = np.meshgrid(np.linspace(119.3, 120.7, 25), np.linspace(31.0, 32.1, 25))
    points = [*zip(lon.ravel().tolist(), lat.ravel().tolist(), strict=True)]
    points += [(116.39, 39.91), (113.26, 23.13), (87.6, 43.8), (2.35, 48.86)]  # last: Paris
    watched = open_page(browser, live_url, "/map")
    shifted = watched.page.evaluate(
        "pts => pts.map(p => GridGov.gcj02.wgs84ToGcj02(p[0], p[1]))", points
    )
    expected_lon, expected_lat = wgs84_to_gcj02([p[0] for p in points], [p[1] for p in points])
    got = np.array(shifted)
    assert np.abs(got[:, 0] - expected_lon).max() < 1e-9
    assert np.abs(got[:, 1] - expected_lat).max() < 1e-9
    assert shifted[-1] == [2.35, 48.86]  # outside GCJ-02's rectangle: unchanged
    watched.page.context.close()


def _first_vertex(browser: Browser, url: str) -> tuple[Watched, float, float, str]:
    watched = open_page(browser, url, "/map")
    watched.wait(READY)
    watched.idle()
    lon, lat, code = watched.page.evaluate(FIRST_VERTEX)
    return watched, lon, lat, code


def test_geojson_is_shifted_over_a_gcj02_base_map(
    browser: Browser, live_url: str, gcj_url: str, artifacts: Path
) -> None:
    plain, lon, lat, code = _first_vertex(browser, live_url)
    assert plain.page.evaluate("GridGov.datum.shifted()") is False
    plain.assert_clean()
    plain.page.context.close()

    shifted, gcj_lon, gcj_lat, gcj_code = _first_vertex(browser, gcj_url)
    assert gcj_code == code
    assert shifted.page.evaluate("GridGov.datum.shifted()") is True
    expected_lon, expected_lat = wgs84_to_gcj02(lon, lat)
    assert gcj_lon == pytest.approx(float(expected_lon), abs=1e-9)
    assert gcj_lat == pytest.approx(float(expected_lat), abs=1e-9)
    # About 500 m in Wuxi: what makes unshifted data miss the base map.
    assert abs(gcj_lon - lon) + abs(gcj_lat - lat) > 0.003
    # The base map came from gridgov itself and is credited.
    assert any("/test-basemap/" in u for u in shifted.requests)
    assert "测试底图" in shifted.page.locator(".leaflet-control-attribution").inner_text()
    # The bbox asked of the API is in storage coordinates again (the shift undone), just
    # wider than the view so that nothing at its edge is missed.
    bbox = [
        float(v) for v in shifted.requested("/collections/township/items")[-1]["bbox"][0].split(",")
    ]
    view = shifted.page.evaluate(
        "(() => { const b = GridGovPage.map.getBounds();"
        " return [b.getWest(), b.getSouth(), b.getEast(), b.getNorth()]; })()"
    )
    lons, lats = gcj02_to_wgs84([view[0], view[0], view[2], view[2]], [view[1], view[3]] * 2)
    true_box = [min(lons), min(lats), max(lons), max(lats)]
    for side, true, sign in zip(bbox, true_box, (-1, -1, 1, 1), strict=True):
        assert 0 <= sign * (side - true) < 0.001, (side, true)
    shifted.screenshot(artifacts, "map-gcj02.png")
    shifted.assert_clean()
    shifted.page.context.close()


def mercator_y(lat: float) -> float:
    """Web Mercator y of a latitude, 0 at the top of the world and 1 at the bottom."""
    phi = math.radians(lat)
    return (1 - math.log(math.tan(phi) + 1 / math.cos(phi)) / math.pi) / 2


def test_vector_tiles_are_moved_by_the_offset(browser: Browser, gcj_url: str) -> None:
    watched = open_page(browser, gcj_url, "/map")
    watched.wait(READY)
    watched.page.evaluate("GridGovPage.map.setView([31.57, 120.30], 14)")
    watched.wait("document.querySelectorAll('.leaflet-gg-tiles-pane path').length > 0")
    watched.idle()
    tiles = watched.page.evaluate(
        """Object.values(GridGovPage.entries.grid.leaflet._tiles).map(t => [
             t.coords.x, t.coords.y, t.coords.z,
             parseFloat(t.el.style.marginLeft), parseFloat(t.el.style.marginTop)])"""
    )
    assert tiles
    for x, y, z, dx, dy in tiles:
        # The GCJ-02 offset at the tile's centre, in pixels at the tile's zoom (Python).
        scale = 256 * 2**z
        lon = (x + 0.5) / 2**z * 360 - 180
        lat = math.degrees(math.atan(math.sinh(math.pi * (1 - 2 * (y + 0.5) / 2**z))))
        gcj_lon, gcj_lat = (float(v) for v in wgs84_to_gcj02(lon, lat))
        expected_dx = (gcj_lon - lon) / 360 * scale
        expected_dy = (mercator_y(gcj_lat) - mercator_y(lat)) * scale
        assert abs(expected_dx) > 20  # ~500 m is ~50 px at zoom 14
        assert dx == pytest.approx(expected_dx, abs=0.05)
        assert dy == pytest.approx(expected_dy, abs=0.05)
    watched.assert_clean()
    watched.page.context.close()
