"""``/editor`` unit mode saving into a unit plan (方案), in real Chromium on the committed
demo city: a police account creates a draft plan for the selected policing area's group
(``POST /plans/units``), which becomes the save target; a real mouse drag moves a shared
boundary into the plan; ``GET /plans/{id}/units`` shows the change while the live unit is
unchanged; the page shows the plan against today and lists the plan as 部门单元; the plan
is submitted and edits go live again."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx2
import pytest
from playwright.sync_api import Browser
from shapely.geometry import shape
from sqlalchemy import Engine

from gridgov.security.roles import Role
from gridgov.settings import Settings
from tests.api.maps.pages import open_page
from tests.api.maps.test_editor_page import LOADED, drag, start_editing, vertex_and_target
from tests.api.maps.test_editor_units_page import (
    area_pairs,
    landed,
    police_township,
    unit_versions,
)
from tests.live import committed_login


@pytest.fixture(scope="module")
def township(engine: Engine, demo_city: None) -> str:
    return police_township(engine)


@pytest.fixture(scope="module")
def police_token(engine: Engine, settings: Settings, township: str) -> Iterator[str]:
    with committed_login(engine, settings, Role.POLICE, (township,), "unitplan_police") as token:
        yield token


def test_police_edit_a_unit_plan(
    browser: Browser,
    live_url: str,
    live_auth: dict[str, str],
    engine: Engine,
    township: str,
    police_token: str,
    artifacts: Path,
) -> None:
    pair = area_pairs(engine, township)[0]
    auth = {"Authorization": f"Bearer {police_token}"}
    live_before = unit_versions(live_url, live_auth, pair.code)
    watched = open_page(browser, live_url, "/editor", token=police_token)
    page = watched.page
    landed(watched, township)
    assert page.input_value("#gg-target") == "live"
    assert page.locator("#gg-unit-plan-new").is_disabled()  # nothing selected yet

    # 1. a draft plan of the selected unit's group becomes the save target
    page.click(f"#gg-grids tbody tr[data-code='{pair.code}']")
    watched.wait(f"GridGovPage.state.grids['{pair.code}'].etag")
    page.click("#gg-unit-plan-new")
    assert pair.code in page.input_value("#gg-unit-plan-new-name")
    page.fill("#gg-unit-plan-new-name", f"{pair.code} 所在组调整（页面测试）")
    page.fill("#gg-unit-plan-new-reason", "警务区边界按道路调整")
    with page.expect_response(lambda r: r.url.endswith("/plans/units")) as made:
        page.click("#gg-unit-plan-create-button")
    assert made.value.status == 201, made.value.text()
    plan = made.value.json()
    plan_id = str(plan["id"])
    assert (plan["kind"], plan["unit_layer"], plan["unit_code"], plan["status"]) == (
        "unit",
        "police_unit",
        pair.code,
        "draft",
    )
    watched.wait(f"GridGovPage.state.target === '{plan_id}' && ({LOADED})", timeout=60_000)
    assert page.input_value("#gg-target") == plan_id
    assert page.locator("#gg-unit-plan-view").is_visible()
    listed = httpx2.get(f"{live_url}/plans/{plan_id}/units", headers=auth)
    assert listed.status_code == 200, listed.text
    group = {f["properties"]["code"] for f in listed.json()["group"]["features"]}
    assert {pair.code, pair.neighbour} <= group
    assert page.evaluate("GridGovPage.state.order") == sorted(group)
    assert "方案尚无调整" in page.inner_text("#gg-unit-plan-changes")

    # 2. a real drag of the shared boundary, saved into the plan
    start_editing(watched, pair, follow=True)
    drag(watched, vertex_and_target(watched, pair))
    watched.wait("GridGovPage.state.ops.length === 1")
    op = page.evaluate("GridGovPage.state.ops[0]")
    page.fill("#gg-reason", "警务区边界对齐道路（方案，页面测试）")
    boundary = f"/plans/{plan_id}/units/{pair.code}/boundary"
    with page.expect_response(lambda r: boundary in r.url) as saved:
        page.click("#gg-save")
    assert saved.value.status == 200, saved.value.text()
    watched.wait("GridGovPage.state.saved.length > 0 || GridGovPage.state.refusals > 0", 60_000)
    assert page.evaluate("GridGovPage.state.refusals") == 0, page.inner_text("#gg-problem")
    watched.wait(f"({LOADED}) && GridGovPage.state.ops.length === 0", timeout=60_000)
    assert page.input_value("#gg-target") == plan_id  # still editing the plan

    # the plan has the change, the live unit does not
    answer = httpx2.get(f"{live_url}/plans/{plan_id}/units", headers=auth).json()
    grouped = {f["properties"]["code"]: f for f in answer["group"]["features"]}
    assert grouped[pair.code]["properties"]["change"] == "changed"
    assert grouped[pair.neighbour]["properties"]["change"] == "changed"
    proposed = shape(grouped[pair.code]["geometry"])
    assert proposed.symmetric_difference(shape(op["geometry"])).area < 1e-10
    changed = {f["properties"]["code"] for f in answer["units"]["features"]}
    assert {pair.code, pair.neighbour} <= changed
    live_after = unit_versions(live_url, live_auth, pair.code)
    assert live_after == live_before
    today = shape(
        httpx2.get(f"{live_url}/units/police_unit/{pair.code}", headers=auth).json()["geometry"]
    )
    assert today.symmetric_difference(proposed).area > 1e-9

    # the page shows the plan against today: the changed units, today's shapes in grey
    row = page.locator(f"#gg-unit-plan-table tr[data-code='{pair.code}']")
    assert row.get_attribute("data-change") == "changed"
    assert page.locator(".leaflet-overlay-pane path[stroke='#636363']").count() >= 2
    shown = page.evaluate(f"GridGovPage.state.grids['{pair.code}'].base")
    assert shape(shown).symmetric_difference(proposed).area < 1e-12
    watched.wait(f"document.querySelector(\"#gg-unit-plans li[data-plan='{plan_id}']\") !== null")
    item = page.inner_text(f"#gg-unit-plans li[data-plan='{plan_id}']")
    assert "部门单元" in item
    assert "草稿" in item
    watched.screenshot(artifacts, "editor-unit-plan.png")

    # 3. submit: the plan is read-only, the page edits live units again
    with page.expect_response(lambda r: r.url.endswith(f"/plans/{plan_id}/submit")) as sent:
        page.click("#gg-unit-plan-submit")
    assert sent.value.status == 200, sent.value.text()
    # the target list no longer offers the plan (drafts only), the live units are shown
    watched.wait(
        f"!document.querySelector(\"#gg-target option[value='{plan_id}']\") && "
        f"GridGovPage.state.target === 'live' && !GridGovPage.unitState.plan && ({LOADED})",
        timeout=60_000,
    )
    assert page.input_value("#gg-target") == "live"
    assert page.locator("#gg-unit-plan-view").is_hidden()
    status = httpx2.get(f"{live_url}/plans/{plan_id}", headers=auth).json()["status"]
    assert status == "submitted"
    watched.wait(
        f"document.querySelector(\"#gg-unit-plans li[data-plan='{plan_id}']\")"
        ".textContent.includes('已提交')"
    )
    watched.assert_clean()
