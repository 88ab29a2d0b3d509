"""``/map/heatmap`` in real Chromium, offline: hexagons, heat, filters, hover, trend chart."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from playwright.sync_api import Browser
from sqlalchemy import Engine, text

from tests.api.maps.pages import Watched, open_page

LOADED = (
    "window.GridGovPage && GridGovPage.state.ready === GridGovPage.state.loads && GridGov.idle()"
)


@pytest.fixture(scope="module")
def heatmap(browser: Browser, live_url: str) -> Watched:
    watched = open_page(browser, live_url, "/map/heatmap")
    watched.wait(LOADED)
    watched.idle()
    return watched


def reload_done(watched: Watched, before: int) -> None:
    """Wait for the reload after a control change (loads counts every reload)."""
    watched.wait(f"GridGovPage.state.loads > {before} && ({LOADED})")


def scalar(engine: Engine, sql: str) -> int:
    with engine.connect() as conn:
        return int(conn.execute(text(sql)).scalar_one())


def test_heatmap_shows_every_incident_as_hexagons(
    heatmap: Watched, engine: Engine, artifacts: Path
) -> None:
    page = heatmap.page
    heatmap.screenshot(artifacts, "heatmap-hexagons.png")
    assert page.title().startswith("事件热力")
    state = page.evaluate("({total: GridGovPage.state.total, cells: GridGovPage.state.cells})")
    assert state["total"] == scalar(engine, "SELECT count(*) FROM incident")
    assert state["cells"] > 10
    assert page.locator(".leaflet-gg-areas-pane path").count() == state["cells"]
    assert page.locator("#gg-scale span").count() >= 2  # the class legend
    assert page.locator("#gg-chart rect.bar").count() > 6  # months of two years
    assert "合成数据" in page.locator(".leaflet-control-attribution").inner_text()
    heatmap.assert_clean()


def test_category_filter_changes_the_counts(heatmap: Watched, engine: Engine) -> None:
    page = heatmap.page
    total = page.evaluate("GridGovPage.state.total")
    loads = page.evaluate("GridGovPage.state.loads")
    page.select_option("#gg-category", "dispute")
    reload_done(heatmap, loads)
    disputes = page.evaluate("GridGovPage.state.total")
    assert disputes == scalar(engine, "SELECT count(*) FROM incident WHERE category = 'dispute'")
    assert 0 < disputes < total
    asked = heatmap.requested("/aggregates/incidents/h3")
    assert asked[-1]["category"] == ["dispute"]
    shown = page.locator("#gg-total").inner_text().replace(",", "")
    assert int(shown) == disputes
    trend = page.evaluate("GridGovPage.state.trend.reduce((a, d) => a + d.count, 0)")
    assert trend == disputes

    loads = page.evaluate("GridGovPage.state.loads")
    overdue_disputes = page.evaluate("GridGovPage.state.overdue")
    page.locator("#gg-overdue").check()
    reload_done(heatmap, loads)
    assert page.evaluate("GridGovPage.state.total") == overdue_disputes
    assert heatmap.requested("/aggregates/incidents/h3")[-1]["overdue"] == ["true"]

    loads = page.evaluate("GridGovPage.state.loads")
    page.locator("#gg-overdue").uncheck()
    page.select_option("#gg-category", "")
    reload_done(heatmap, loads)
    assert page.evaluate("GridGovPage.state.total") == total
    heatmap.assert_clean()


def test_date_range_narrows_the_trend(heatmap: Watched, engine: Engine) -> None:
    page = heatmap.page
    loads = page.evaluate("GridGovPage.state.loads")
    page.fill("#gg-from", "2025-03-01")
    page.fill("#gg-to", "2025-03-31")
    page.locator("#gg-to").dispatch_event("change")
    reload_done(heatmap, loads)
    expected = scalar(
        engine,
        "SELECT count(*) FROM incident WHERE reported_at >= '2025-03-01T00:00:00+08:00' "
        "AND reported_at < '2025-04-01T00:00:00+08:00'",
    )
    assert page.evaluate("GridGovPage.state.total") == expected
    periods = page.evaluate("GridGovPage.state.trend.map(d => String(d.period))")
    assert periods
    assert all(p.startswith("2025-03") for p in periods), periods
    loads = page.evaluate("GridGovPage.state.loads")
    page.fill("#gg-from", "")
    page.fill("#gg-to", "")
    page.locator("#gg-to").dispatch_event("change")
    reload_done(heatmap, loads)
    heatmap.assert_clean()


def test_kernel_heat_and_grid_counts_on_hover(
    heatmap: Watched, engine: Engine, artifacts: Path
) -> None:
    page = heatmap.page
    loads = page.evaluate("GridGovPage.state.loads")
    page.locator('input[name="gg-mode"][value="heat"]').check()
    reload_done(heatmap, loads)
    assert page.locator("canvas.leaflet-heatmap-layer").count() == 1
    assert page.locator(".leaflet-gg-areas-pane path").count() == 0
    heatmap.screenshot(artifacts, "heatmap-kernel.png")

    with engine.connect() as conn:
        district, township = conn.execute(
            text(
                "SELECT left(township_code, 6), township_code FROM incident "
                "GROUP BY township_code ORDER BY count(*) DESC LIMIT 1"
            )
        ).one()
    page.select_option("#gg-area-district", district)
    heatmap.wait(f"document.querySelector('#gg-area-township option[value=\"{township}\"]')")
    loads = page.evaluate("GridGovPage.state.loads")
    page.select_option("#gg-area-township", township)
    reload_done(heatmap, loads)
    heatmap.idle()
    assert heatmap.requested("/aggregates/incidents/trend")[-1]["township_code"] == [township]
    expected = scalar(engine, f"SELECT count(*) FROM incident WHERE township_code = '{township}'")
    assert page.evaluate("GridGovPage.state.total") == expected

    if page.evaluate("GridGovPage.map.getZoom()") < 12:
        page.evaluate("GridGovPage.map.setZoom(12)")
    heatmap.wait("document.querySelectorAll('.leaflet-gg-tiles-pane path').length > 0")
    heatmap.idle()
    # Hover grids until one answers; its counts must be the database's.
    paths = page.locator(".leaflet-gg-tiles-pane path")
    hovered = None
    for i in range(min(paths.count(), 400)):
        box = paths.nth(i).bounding_box()
        if not box or box["width"] < 4:
            continue
        page.mouse.move(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
        info = page.locator("#gg-grid-info").inner_text()
        if info.startswith("网格 "):
            hovered = info
            break
    assert hovered is not None, "no grid could be hovered"
    match = re.search(r"网格 (\d{15}).*事件 ([\d,]+) 件，逾期 ([\d,]+) 件", hovered, re.S)
    assert match, hovered
    code, count = match.group(1), int(match.group(2).replace(",", ""))
    assert code.startswith(township)
    assert count == scalar(engine, f"SELECT count(*) FROM incident WHERE grid_code = '{code}'")
    heatmap.screenshot(artifacts, "heatmap-township-hover.png")
    heatmap.assert_clean()
