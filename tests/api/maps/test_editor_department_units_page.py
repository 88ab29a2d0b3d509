"""``/editor`` unit mode for the urban-management (城管单元) and emergency (应急单元) layers,
in real Chromium on the committed demo city: an admin switches the layer selector to the
layer, picks a township, moves the shared boundary of two units with a real mouse drag,
saves, and finds the new version through ``/units/{layer}/{code}``; a drag of another unit
into its neighbour without the neighbour following is refused (409), titled by the layer
and drawn. (Police units: ``test_editor_units_page.py``.)"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx2
import pytest
import shapely
from playwright.sync_api import Browser
from shapely.geometry import Point, shape
from sqlalchemy import Engine, text

from tests.api.maps.pages import open_page
from tests.api.maps.test_editor_page import (
    LOADED,
    REFUSED_LOG,
    Pair,
    drag,
    pairs_in,
    start_editing,
    vertex_and_target,
)

TITLES = {"urban_unit": "城管单元", "emergency_unit": "应急单元"}


def township_pairs(engine: Engine, layer: str) -> tuple[str, Pair, Pair]:
    """The first township holding two disjoint pairs of the layer's units that share an
    edge away from their district's boundary (a unit's group is its district)."""
    with engine.connect() as conn:
        rows = conn.execute(
            text(
                f"SELECT u.township_code, u.code, ST_AsBinary(u.geom), ST_AsBinary(d.geom) "
                f"FROM {layer} u JOIN district d ON d.code = u.district_code "
                "WHERE u.township_code IS NOT NULL ORDER BY u.township_code, u.code"
            )
        ).all()
    units: dict[str, dict[str, Any]] = {}
    edge: dict[str, Any] = {}
    for township, code, geom, district in rows:
        units.setdefault(township, {})[code] = shapely.from_wkb(geom)
        edge[township] = shapely.from_wkb(district).boundary
    for township in sorted(units):
        pairs = pairs_in(township, units[township], edge[township])
        for i, first in enumerate(pairs):
            for second in pairs[i + 1 :]:
                if {second.code, second.neighbour}.isdisjoint({first.code, first.neighbour}):
                    return township, first, second
    raise AssertionError(f"no township with two pairs of {layer}")


def versions(url: str, auth: dict[str, str], layer: str, code: str) -> list[dict[str, Any]]:
    answer = httpx2.get(f"{url}/units/{layer}/{code}/versions", headers=auth)
    assert answer.status_code == 200, answer.text
    found: list[dict[str, Any]] = answer.json()["versions"]
    return found


@pytest.mark.parametrize("layer", ["urban_unit", "emergency_unit"])
def test_admin_edits_urban_and_emergency_units(
    browser: Browser,
    live_url: str,
    live_auth: dict[str, str],
    live_token: str,
    engine: Engine,
    artifacts: Path,
    layer: str,
) -> None:
    township, first, second = township_pairs(engine, layer)
    before = versions(live_url, live_auth, layer, first.code)
    watched = open_page(browser, live_url, "/editor", token=live_token)
    page = watched.page
    assert page.evaluate("GridGovPage.unitState.mode") == "grid"  # admins open on grids
    page.select_option("#gg-layer", f"{layer}/{layer}")
    assert page.evaluate("GridGovPage.units.kind().layer") == layer
    watched.wait("document.querySelector('#gg-area-district').options.length > 1")
    page.evaluate("codes => GridGovPage.selector.choose(codes)", [township[:6], township])
    watched.wait(
        f"({LOADED}) && GridGovPage.state.area && GridGovPage.state.area.code === '{township}'"
        " || GridGov.errors.length",
        timeout=60_000,
    )
    assert page.evaluate("GridGov.errors") == []
    with engine.connect() as conn:
        mine = (
            conn.execute(
                text(f"SELECT code FROM {layer} WHERE township_code = :t ORDER BY code"),
                {"t": township},
            )
            .scalars()
            .all()
        )
    assert page.evaluate("GridGovPage.state.order") == list(mine)
    assert page.inner_text("#gg-grids thead th") == "单元编码"

    # 1. the shared boundary of two units moves: a real drag into the neighbour, saved
    start_editing(watched, first, follow=True)
    at = vertex_and_target(watched, first)
    url = f"{live_url}/units/{layer}/{first.neighbour}"
    neighbour = shape(httpx2.get(url, headers=live_auth).json()["geometry"])
    assert neighbour.contains(Point(at["lon"], at["lat"]))
    drag(watched, at)
    watched.wait("GridGovPage.state.ops.length === 1")
    op = page.evaluate("GridGovPage.state.ops[0]")
    assert (op["op"], op["code"], op["neighbour"]) == ("geometry", first.code, first.neighbour)
    page.fill("#gg-reason", f"{TITLES[layer]}边界对齐道路（页面测试）")
    with page.expect_response(lambda r: f"/units/{layer}/{first.code}/boundary" in r.url) as saved:
        page.click("#gg-save")
    assert saved.value.status == 200, saved.value.text()
    edit_id = saved.value.json()["edit"]["id"]
    watched.wait("GridGovPage.state.saved.length > 0 || GridGovPage.state.refusals > 0", 60_000)
    assert page.evaluate("GridGovPage.state.refusals") == 0, page.inner_text("#gg-problem")
    watched.wait(LOADED, timeout=60_000)
    assert first.code in page.inner_text("#gg-saved")
    watched.screenshot(artifacts, f"editor-{layer}-saved.png")
    after = versions(live_url, live_auth, layer, first.code)
    assert len(after) == (len(before) + 1 if before[0]["recorded"] else 2)
    assert after[-1]["valid_to"] is None
    assert after[-1]["edit_id"] == edit_id
    current = httpx2.get(f"{live_url}/units/{layer}/{first.code}", headers=live_auth)
    assert current.status_code == 200
    new = shape(current.json()["geometry"])
    assert new.symmetric_difference(shape(op["geometry"])).area < 1e-10
    assert new.intersection(neighbour).area > 1e-9  # it took area from the neighbour
    followed = shape(httpx2.get(url, headers=live_auth).json()["geometry"])
    assert followed.intersection(new).area < 1e-12  # the neighbour followed: no overlap

    # 2. a drag into the neighbour that does not follow: an overlap, refused and drawn
    # (start_editing clicks the row once: a second click's late answer would move the map)
    start_editing(watched, second, follow=False)
    drag(watched, vertex_and_target(watched, second))
    watched.wait("GridGovPage.state.ops.length === 1")
    page.fill("#gg-reason", "越界测试")
    with page.expect_response(
        lambda r: f"/units/{layer}/{second.code}" in r.url and r.request.method == "PATCH"
    ) as refused:
        page.click("#gg-save")
    assert refused.value.status == 409
    assert refused.value.json()["title"].startswith(f"{TITLES[layer]}编辑与相邻单元冲突")
    watched.wait("GridGovPage.state.refusals === 1")
    problem = page.inner_text("#gg-problem")
    assert "保存被拒绝" in problem
    assert f"{TITLES[layer]}编辑与相邻单元冲突" in problem
    # the hint names the option as the page shows it in unit mode
    assert "可选择“与相邻单元重叠时：从相邻单元划入”后重新保存" in problem
    assert "网格" not in problem
    assert page.locator(".leaflet-overlay-pane path[stroke='#d7191c']").count() > 0
    watched.screenshot(artifacts, f"editor-{layer}-refused.png")
    untouched = versions(live_url, live_auth, layer, second.code)
    assert untouched[-1]["valid_to"] is None
    assert len(untouched) == 1
    assert [e.split()[0] for e in watched.http_errors] == ["409"], watched.http_errors
    assert all(REFUSED_LOG in e for e in watched.console_errors), watched.console_errors
    assert watched.blocked == []
