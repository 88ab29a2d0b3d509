"""``/map`` in real Chromium, offline: every layer grouped, legends, selector, popups."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
from playwright.sync_api import Browser
from sqlalchemy import Engine, text

from gridgov.layers.registry import Registry
from gridgov.layers.spec import LayerGroup
from tests.api.maps.pages import Watched, open_page

READY = "window.GridGovPage && GridGovPage.entries.district.drawn > 0 && GridGov.idle()"


@pytest.fixture(scope="module")
def overview(browser: Browser, live_url: str) -> Watched:
    watched = open_page(browser, live_url, "/map")
    watched.wait(READY)
    watched.idle()
    return watched


def test_overview_loads_offline_with_every_layer(
    overview: Watched, registry: Registry, artifacts: Path
) -> None:
    page = overview.page
    overview.screenshot(artifacts, "map-overview.png")
    assert page.title().startswith("综合地图")
    assert page.locator("html").get_attribute("lang") == "zh-CN"
    groups = page.locator(".gg-group legend").all_inner_texts()
    assert groups == [g.title_zh for g in LayerGroup]
    for spec in registry:
        row = page.locator(f'.gg-layer[data-layer="{spec.id}"]')
        assert row.count() == 1, spec.id
        assert spec.title_zh in row.inner_text()
        group = row.locator("xpath=ancestor::fieldset").get_attribute("data-group")
        assert group == spec.group.value
        legend = row.locator(".gg-legend li").all_inner_texts()
        assert [t.strip() for t in legend] == [e.title_zh for e in spec.legend()], spec.id
    # The demo is synthetic below district level: said on the layers and on the map.
    assert page.locator('.gg-layer[data-layer="township"] .gg-badge').inner_text() == "合成"
    assert page.locator('.gg-layer[data-layer="district"] .gg-badge').count() == 0
    assert "合成数据" in page.locator(".leaflet-control-attribution").inner_text()
    # Default layers are drawn: 7 districts, the townships in view.
    assert page.evaluate("GridGovPage.entries.district.drawn") == 7
    assert page.evaluate("GridGovPage.entries.township.drawn") > 50
    overview.assert_clean()


def test_switching_a_layer_on_loads_it(overview: Watched) -> None:
    page = overview.page
    before = len(overview.requested("/collections/shelter/items"))
    page.locator("#gg-layer-shelter").check()
    overview.wait("GridGovPage.entries.shelter.enabled && GridGov.idle()")
    # Shelters start at zoom 10; the city view is below it, so the row is greyed, not loaded.
    zoom = page.evaluate("GridGovPage.map.getZoom()")
    row = page.locator('.gg-layer[data-layer="shelter"]')
    if zoom < 10:
        assert "gg-out-of-zoom" in (row.get_attribute("class") or "")
        assert len(overview.requested("/collections/shelter/items")) == before
    page.locator("#gg-layer-shelter").uncheck()
    overview.assert_clean()


def test_selector_zooms_and_filters(overview: Watched, engine: Engine, artifacts: Path) -> None:
    page = overview.page
    with engine.connect() as conn:
        township, district, community = conn.execute(
            text(
                "SELECT t.code, t.district_code, min(c.code) FROM township t "
                "JOIN community c ON c.township_code = t.code "
                "GROUP BY t.code, t.district_code ORDER BY count(*) DESC, t.code LIMIT 1"
            )
        ).one()
    city_zoom = page.evaluate("GridGovPage.map.getZoom()")
    page.select_option("#gg-area-district", district)
    overview.wait(f"document.querySelector('#gg-area-township option[value=\"{township}\"]')")
    page.select_option("#gg-area-township", township)
    overview.wait("GridGov.idle() && GridGovPage.state.area.level === 'township'")
    overview.idle()
    zoom = page.evaluate("GridGovPage.map.getZoom()")
    assert zoom > city_zoom
    inside = page.evaluate(
        "(() => { const a = GridGovPage.state.area, c = GridGovPage.map.getCenter();"
        " return c.lng > a.bbox[0] && c.lng < a.bbox[2] && c.lat > a.bbox[1] && c.lat < a.bbox[3];"
        " })()"
    )
    assert inside
    # Communities are now asked for with the township as a server-side filter.
    asked = overview.requested("/collections/community/items")
    assert any(q.get("township_code") == [township] for q in asked)
    overview.screenshot(artifacts, "map-township.png")

    page.select_option("#gg-area-community", community)
    overview.wait("GridGovPage.state.area.level === 'community'")
    overview.idle()
    assert page.evaluate("GridGovPage.map.getZoom()") >= zoom
    assert page.evaluate("GridGovPage.map.getZoom()") >= 12  # grids (vector tiles) show
    overview.wait("document.querySelectorAll('.leaflet-gg-tiles-pane path').length > 0")
    tiles = [u for u in overview.requests if "/collections/grid/tiles/WebMercatorQuad/" in u]
    assert tiles
    # Tiles are now asked for limited to the community: incident clusters carry only a
    # count, so only the server can leave out the points outside the area.
    limited = [
        parse_qs(urlsplit(u).query).get("area")
        for u in overview.requests
        if "/tiles/WebMercatorQuad/" in u
    ]
    assert [community] in limited
    overview.screenshot(artifacts, "map-community.png")
    overview.assert_clean()


def test_popup_shows_attributes_in_chinese(overview: Watched, artifacts: Path) -> None:
    page = overview.page
    overview.wait("document.querySelectorAll('.leaflet-gg-tiles-pane path').length > 0")
    paths = page.locator(".leaflet-gg-tiles-pane path")
    box = paths.nth(paths.count() // 2).bounding_box()
    assert box is not None
    page.mouse.click(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
    popup = page.locator(".leaflet-popup-content .gg-popup")
    popup.wait_for(timeout=10_000)
    overview.wait("getComputedStyle(document.querySelector('.leaflet-popup')).opacity === '1'")
    content = popup.inner_text()
    assert "网格" in content
    assert "网格代码" in content or "户数" in content
    assert "合成数据" in content
    overview.screenshot(artifacts, "map-popup.png")
    overview.assert_clean()
