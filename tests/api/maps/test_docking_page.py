"""``/map/docking`` and its JSON in real Chromium, offline: straddling grids with shares,
unit kinds switchable, a docking score per township."""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path

import httpx2
import pytest
from playwright.sync_api import Browser
from sqlalchemy import Engine, text

from gridgov.layers.docking import ONE_UNIT_SHARE
from tests.api.maps.pages import Watched, open_page

LOADED = (
    "window.GridGovPage && GridGovPage.state.ready === GridGovPage.state.loads && GridGov.idle()"
)


@pytest.fixture(scope="module")
def docking(browser: Browser, live_url: str) -> Watched:
    watched = open_page(browser, live_url, "/map/docking")
    watched.wait(LOADED)
    watched.idle()
    return watched


def test_docking_api_shares_add_up(
    live_url: str, live_auth: dict[str, str], engine: Engine
) -> None:
    params = {"unit_layer": "police_unit", "unit_level": "policing_area"}
    pieces = httpx2.get(f"{live_url}/docking/grids", params=params, headers=live_auth).json()[
        "features"
    ]
    assert pieces
    shares: dict[str, list[float]] = defaultdict(list)
    for feature in pieces:
        shares[feature["properties"]["grid_code"]].append(feature["properties"]["share"])
    for code, parts in shares.items():
        assert len(parts) >= 2, code
        assert max(parts) < ONE_UNIT_SHARE, code
        assert sum(parts) == pytest.approx(1.0, abs=0.01), code
    table = httpx2.get(f"{live_url}/docking/townships", params=params, headers=live_auth).json()
    with engine.connect() as conn:
        grids: dict[str, int] = dict(
            conn.execute(
                text("SELECT township_code, count(*) FROM grid WHERE valid_to IS NULL GROUP BY 1")
            ).all()
        )
    assert {r["code"]: r["grids"] for r in table["items"]} == grids
    assert sum(r["straddling"] for r in table["items"]) == len(shares)
    assert all(0 <= r["score"] <= 100 for r in table["items"])
    bad = httpx2.get(f"{live_url}/docking/grids", params={"unit_layer": "grid"}, headers=live_auth)
    assert bad.status_code == 422
    assert bad.headers["content-type"].startswith("application/problem+json")
    assert "责任区" in bad.json()["detail"]


def test_docking_page_highlights_straddling_grids(
    docking: Watched, engine: Engine, artifacts: Path
) -> None:
    page = docking.page
    docking.screenshot(artifacts, "docking-city.png")
    assert page.title().startswith("网格对接")
    with engine.connect() as conn:
        townships = conn.execute(
            text("SELECT count(DISTINCT township_code) FROM grid WHERE valid_to IS NULL")
        ).scalar_one()
    assert page.locator("#gg-townships tbody tr").count() == townships
    assert page.evaluate("GridGovPage.state.straddling") > 0
    assert page.locator(".leaflet-gg-highlight-pane path").count() == page.evaluate(
        "GridGovPage.state.pieces"
    )
    assert page.evaluate("GridGovPage.state.units") > 0
    assert "社区警务区" in page.locator("#gg-unit-title").inner_text()
    # Scores are sorted worst first, so the planner sees the problems at the top.
    scores = [float(s) for s in page.locator("#gg-townships tbody td:last-child").all_inner_texts()]
    assert scores == sorted(scores)
    docking.assert_clean()


def test_switching_unit_kind_reloads_everything(docking: Watched) -> None:
    page = docking.page
    before = page.evaluate("GridGovPage.state.townships.map(r => r.score)")
    loads = page.evaluate("GridGovPage.state.loads")
    page.select_option("#gg-unit-kind", "urban_unit/urban_unit")
    docking.wait(f"GridGovPage.state.loads > {loads} && ({LOADED})")
    assert docking.requested("/docking/grids")[-1]["unit_layer"] == ["urban_unit"]
    assert docking.requested("/collections/urban_unit/items")
    assert "城管责任区" in page.locator("#gg-unit-title").inner_text()
    after = page.evaluate("GridGovPage.state.townships.map(r => r.score)")
    assert after != before
    loads = page.evaluate("GridGovPage.state.loads")
    page.select_option("#gg-unit-kind", "police_unit/policing_area")
    docking.wait(f"GridGovPage.state.loads > {loads} && ({LOADED})")
    docking.assert_clean()


def test_table_row_zooms_to_township_with_share_labels(docking: Watched, artifacts: Path) -> None:
    page = docking.page
    # The worst-docked township that has straddling grids.
    code = page.evaluate("GridGovPage.state.townships.find(r => r.straddling > 0).code")
    row = page.locator(f'#gg-townships tbody tr[data-code="{code}"]')
    zoom = page.evaluate("GridGovPage.map.getZoom()")
    loads = page.evaluate("GridGovPage.state.loads")
    row.click()
    docking.wait(
        f"GridGovPage.state.area && GridGovPage.state.area.code === '{code}'"
        f" && GridGovPage.state.loads > {loads} && ({LOADED})"
    )
    docking.idle()
    assert page.evaluate("GridGovPage.map.getZoom()") > zoom
    assert docking.requested("/docking/grids")[-1]["township_code"] == [code]
    assert page.evaluate("GridGovPage.state.straddling") > 0
    if page.evaluate("GridGovPage.map.getZoom()") < 13:
        page.evaluate("GridGovPage.map.setZoom(13)")
    docking.wait("document.querySelectorAll('.gg-share-label').length > 0")
    docking.wait("!GridGovPage.map._animatingZoom")
    docking.idle()
    # The straddling grids are drawn where the camera now is, not just in the DOM.
    assert page.evaluate(
        "Object.values(GridGovPage.map._layers).some(l => l.getBounds && l._map &&"
        " GridGovPage.map.getBounds().intersects(l.getBounds()))"
    )
    labels = page.locator(".gg-share-label").all_inner_texts()
    assert labels
    assert all(label.endswith("%") for label in labels)
    docking.screenshot(artifacts, "docking-township.png")
    docking.assert_clean()
