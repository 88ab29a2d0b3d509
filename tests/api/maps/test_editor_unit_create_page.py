"""``/editor`` unit mode's 新建单元 tool in real Chromium on the committed demo city: a
polygon drawn with the mouse inside a selected unit becomes a new unit of its group, its
area taken from the unit it covers (``overlap=take``) — into a unit plan for a police
account (no live unit changes), and live for an admin's emergency units (a new unit in
force, with the department of the unit it was drawn in)."""

from __future__ import annotations

from pathlib import Path

import httpx2
from playwright.sync_api import Browser
from shapely.geometry import Polygon, shape
from shapely.ops import polylabel
from sqlalchemy import Engine, text

from tests.api.maps.pages import Watched, open_page
from tests.api.maps.test_editor_page import LOADED
from tests.api.maps.test_editor_unit_plans_page import open_new_plan, station_units
from tests.api.maps.test_editor_units_page import landed, police_token, township, unit_versions

# The drawn square's half side, as a share of the distance from its centre (the unit's
# pole of inaccessibility) to the unit's edge: its corners stay well inside the unit.
HALF = 0.35

__all__ = ["police_token", "township"]  # the unit pages' fixtures, shared


def draw_new_unit(watched: Watched, code: str, name: str) -> Polygon:
    """With ``code`` selected: 新建单元, a name, then a square drawn with the mouse around
    the unit's pole of inaccessibility (four clicks, then the first vertex again). The
    square as aimed at (lon/lat); snapping may move a corner by a few pixels."""
    page = watched.page
    unit = shape(page.evaluate(f"GridGovPage.state.grids['{code}'].base"))
    largest = max(getattr(unit, "geoms", [unit]), key=lambda p: p.area)
    centre = polylabel(largest, tolerance=1e-7)
    d = HALF * largest.exterior.distance(centre)
    corners = [(centre.x - d, centre.y - d), (centre.x + d, centre.y - d)]
    corners += [(centre.x + d, centre.y + d), (centre.x - d, centre.y + d)]
    page.click("#gg-unit-new")
    page.fill("#gg-unit-new-name", name)
    points = page.evaluate(
        """([code, corners]) => { const m = GridGovPage.map;
          m.fitBounds(GridGovPage.state.grids[code].layer.getBounds(), {animate: false,
            paddingTopLeft: [80, 80], paddingBottomRight: [80, 80]});
          const box = m.getContainer().getBoundingClientRect();
          return corners.map(c => { const p = m.latLngToContainerPoint(
            GridGov.datum.latLng(c[0], c[1])); return [p.x + box.left, p.y + box.top]; }); }""",
        [code, corners],
    )
    page.click("#gg-unit-new-draw")
    watched.wait("GridGovPage.state.drawing === true")
    for x, y in [*points, points[0]]:
        page.mouse.click(x, y)
        page.wait_for_timeout(60)
    return Polygon(corners)


def test_police_create_a_unit_into_a_plan(
    browser: Browser,
    live_url: str,
    live_auth: dict[str, str],
    engine: Engine,
    township: str,
    police_token: str,
    artifacts: Path,
) -> None:
    with engine.connect() as conn:
        target, station = conn.execute(
            text(
                "SELECT code, parent_code FROM police_unit WHERE level = 'policing_area' "
                "AND township_code = :t ORDER BY ST_Area(geom) DESC LIMIT 1"
            ),
            {"t": township},
        ).one()
    live_before = station_units(engine, station)
    versions_before = unit_versions(live_url, live_auth, target)
    auth = {"Authorization": f"Bearer {police_token}"}
    watched = open_page(browser, live_url, "/editor", token=police_token)
    page = watched.page
    landed(watched, township)
    assert page.locator("#gg-unit-new").is_disabled()  # nothing selected: no group
    plan_id = open_new_plan(watched, target, f"{station} 新建警务区（页面测试）")
    page.click(f"#gg-grids tbody tr[data-code='{target}']")
    watched.wait(f"GridGovPage.state.grids['{target}'].etag")

    aimed = draw_new_unit(watched, target, "新警务区（页面测试）")
    watched.wait("GridGovPage.state.ops.length === 1")
    op = page.evaluate("GridGovPage.state.ops[0]")
    assert op["op"] == "create"
    drawn = shape(op["geometry"])
    assert drawn.symmetric_difference(aimed).area < 0.2 * aimed.area  # snapped a little
    # a plan's group fills in the district, level and parent: the body names none
    assert set(op["body"]) == {"type", "geometry", "properties"}
    assert "新建警务单元 新警务区（页面测试）" in page.inner_text("#gg-pending")
    assert page.locator(".leaflet-overlay-pane path[stroke='#e6550d']").count() > 0  # drawn
    watched.screenshot(artifacts, "editor-unit-new-drawn.png")
    page.fill("#gg-reason", "新设警务区（方案，页面测试）")
    with page.expect_response(
        lambda r: (
            r.url.split("?")[0].endswith(f"/plans/{plan_id}/units") and r.request.method == "POST"
        )
    ) as made:
        page.click("#gg-save")
    assert made.value.status == 201, made.value.text()
    assert "overlap=take" in made.value.url
    new_code = made.value.json()["created"][0]
    watched.wait(f"({LOADED}) && GridGovPage.state.ops.length === 0", timeout=60_000)
    assert page.evaluate("GridGovPage.state.refusals") == 0, page.inner_text("#gg-problem")
    assert f"单元 {new_code} 已新建" in page.inner_text("#gg-saved")
    assert new_code in page.evaluate("GridGovPage.state.order")  # the plan's group shows it
    watched.screenshot(artifacts, "editor-unit-new-plan.png")

    # the plan: a new unit of the station's group, its area taken from the unit it covers
    answer = httpx2.get(f"{live_url}/plans/{plan_id}/units", headers=auth).json()
    group = {f["properties"]["code"]: f for f in answer["group"]["features"]}
    assert group[new_code]["properties"]["change"] == "created"
    assert group[new_code]["properties"]["name"] == "新警务区（页面测试）"
    assert group[new_code]["properties"]["parent_code"] == station
    new = shape(group[new_code]["geometry"])
    assert new.symmetric_difference(drawn).area < 1e-10
    today = shape(
        httpx2.get(f"{live_url}/units/police_unit/{target}", headers=auth).json()["geometry"]
    )
    rest = shape(group[target]["geometry"])
    assert group[target]["properties"]["change"] == "changed"
    assert today.difference(new).symmetric_difference(rest).area < 1e-10
    assert {c for c, f in group.items() if f["properties"]["change"] != "unchanged"} == {
        new_code,
        target,
    }
    # nothing in force changed
    assert station_units(engine, station) == live_before
    assert unit_versions(live_url, live_auth, target) == versions_before
    watched.assert_clean()


def test_admin_creates_an_emergency_unit_live(
    browser: Browser,
    live_url: str,
    live_auth: dict[str, str],
    live_token: str,
    engine: Engine,
    artifacts: Path,
) -> None:
    """Live, in the last township with emergency units (the page tests of other layers
    use the first ones)."""
    with engine.connect() as conn:
        township, target, department = conn.execute(
            text(
                "SELECT township_code, code, department FROM emergency_unit "
                "WHERE township_code = (SELECT max(township_code) FROM emergency_unit) "
                "ORDER BY ST_Area(geom) DESC LIMIT 1"
            )
        ).one()
        count = conn.execute(text("SELECT count(*) FROM emergency_unit")).scalar_one()
    watched = open_page(browser, live_url, "/editor", token=live_token)
    page = watched.page
    page.select_option("#gg-layer", "emergency_unit/emergency_unit")
    watched.wait("document.querySelector('#gg-area-district').options.length > 1")
    page.evaluate("codes => GridGovPage.selector.choose(codes)", [township[:6], township])
    watched.wait(f"({LOADED}) && GridGovPage.state.area.code === '{township}'", timeout=60_000)
    page.click(f"#gg-grids tbody tr[data-code='{target}']")
    watched.wait(f"GridGovPage.state.grids['{target}'].etag")
    before = shape(
        httpx2.get(f"{live_url}/units/emergency_unit/{target}", headers=live_auth).json()[
            "geometry"
        ]
    )

    draw_new_unit(watched, target, "新应急单元（页面测试）")
    watched.wait("GridGovPage.state.ops.length === 1")
    # the department is the one of the unit it was drawn in, the group its district's
    assert page.locator("#gg-unit-new-form").is_hidden()  # put away once drawn
    op = page.evaluate("GridGovPage.state.ops[0]")
    assert op["body"]["properties"] == {"name": "新应急单元（页面测试）", "department": department}
    assert op["body"]["district_code"] == township[:6]
    assert "新建应急单元" in page.inner_text("#gg-pending")
    page.fill("#gg-reason", "新设应急单元（页面测试）")
    with page.expect_response(
        lambda r: (
            r.url.split("?")[0].endswith("/units/emergency_unit") and r.request.method == "POST"
        )
    ) as made:
        page.click("#gg-save")
    assert made.value.status == 201, made.value.text()
    new_code = made.value.json()["created"][0]
    watched.wait(f"({LOADED}) && GridGovPage.state.ops.length === 0", timeout=60_000)
    assert page.evaluate("GridGovPage.state.refusals") == 0, page.inner_text("#gg-problem")
    assert new_code in page.evaluate("GridGovPage.state.order")
    watched.screenshot(artifacts, "editor-unit-new-live.png")

    # in force: the new unit, and the unit it was drawn in without its area
    current = httpx2.get(f"{live_url}/units/emergency_unit/{new_code}", headers=live_auth)
    assert current.status_code == 200, current.text
    new = shape(current.json()["geometry"])
    assert new.symmetric_difference(shape(op["geometry"])).area < 1e-10
    assert current.json()["properties"]["department"] == department
    after = shape(
        httpx2.get(f"{live_url}/units/emergency_unit/{target}", headers=live_auth).json()[
            "geometry"
        ]
    )
    assert before.difference(new).symmetric_difference(after).area < 1e-10
    with engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM emergency_unit")).scalar_one() == count + 1
    watched.assert_clean()
