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
import shapely
from playwright.sync_api import Browser
from shapely.geometry import shape
from sqlalchemy import Engine, text

from gridgov.security.roles import Role
from gridgov.settings import Settings
from tests.api.maps.pages import Watched, open_page
from tests.api.maps.test_editor_page import (
    LOADED,
    Pair,
    drag,
    draw_split_line,
    start_editing,
    vertex_and_target,
)
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


def station_units(engine: Engine, station: str) -> dict[str, float]:
    """The live policing areas of a station and their areas (m²)."""
    with engine.connect() as conn:
        rows = conn.execute(
            text(
                "SELECT code, ST_Area(geom::geography) FROM police_unit "
                "WHERE parent_code = :s AND level = 'policing_area' ORDER BY code"
            ),
            {"s": station},
        ).all()
    return {code: float(area) for code, area in rows}


def open_new_plan(watched: Watched, code: str, name: str) -> str:
    """Select ``code``, make a draft plan of its group from the page, and wait until the
    page edits into it: the plan's id."""
    page = watched.page
    page.click(f"#gg-grids tbody tr[data-code='{code}']")
    watched.wait(f"GridGovPage.state.grids['{code}'].etag")
    page.click("#gg-unit-plan-new")
    page.fill("#gg-unit-plan-new-name", name)
    page.fill("#gg-unit-plan-new-reason", "警务区拆分、合并、撤并（页面测试）")
    with page.expect_response(lambda r: r.url.endswith("/plans/units")) as made:
        page.click("#gg-unit-plan-create-button")
    assert made.value.status == 201, made.value.text()
    plan_id = str(made.value.json()["id"])
    watched.wait(f"GridGovPage.state.target === '{plan_id}' && ({LOADED})", timeout=60_000)
    return plan_id


def test_police_split_merge_and_retire_into_a_unit_plan(
    browser: Browser,
    live_url: str,
    live_auth: dict[str, str],
    engine: Engine,
    township: str,
    police_token: str,
    artifacts: Path,
) -> None:
    """A split by a line drawn with the mouse, a merge of two areas and a retirement, all
    pending together and saved into one unit plan: the plan holds the three changes (the
    group still covers what it covered), and no live unit changed."""
    pairs = area_pairs(engine, township)
    pair: Pair = next(p for p in pairs if len(station_units(engine, p.community)) >= 4)
    station = pair.community
    live_before = station_units(engine, station)
    others = sorted(
        (c for c in live_before if c not in (pair.code, pair.neighbour)),
        key=lambda c: -live_before[c],
    )
    target, retired = others[0], others[-1]
    versions_before = {c: unit_versions(live_url, live_auth, c) for c in live_before}
    auth = {"Authorization": f"Bearer {police_token}"}
    watched = open_page(browser, live_url, "/editor", token=police_token)
    page = watched.page
    landed(watched, township)
    plan_id = open_new_plan(watched, target, f"{station} 拆分合并撤并（页面测试）")
    group_before = httpx2.get(f"{live_url}/plans/{plan_id}/units", headers=auth).json()["group"]
    assert {f["properties"]["code"] for f in group_before["features"]} == set(live_before)
    covered = shapely.union_all([shape(f["geometry"]) for f in group_before["features"]])

    # split: a line drawn with the mouse across the unit; merge the pair; retire the smallest
    page.click(f"#gg-grids tbody tr[data-code='{target}']")
    watched.wait(f"GridGovPage.state.grids['{target}'].etag")
    draw_split_line(watched, target, right_padding=80)
    watched.wait("GridGovPage.state.ops.length === 1")
    page.click(f"#gg-grids tbody tr[data-code='{pair.code}']")
    page.click(f"#gg-grids tbody tr[data-code='{pair.neighbour}']", modifiers=["Shift"])
    watched.wait(f"GridGovPage.state.grids['{pair.neighbour}'].etag")
    page.click("#gg-merge")
    page.click(f"#gg-grids tbody tr[data-code='{retired}']")
    watched.wait(f"GridGovPage.state.grids['{retired}'].etag")
    page.click("#gg-retire")
    watched.wait("GridGovPage.state.ops.length === 3")
    assert page.evaluate("GridGovPage.state.ops.map(o => o.op)") == ["split", "merge", "retire"]
    page.fill("#gg-reason", "拆分、合并、撤并警务区（方案，页面测试）")
    with page.expect_response(lambda r: f"/plans/{plan_id}/units/{target}/split" in r.url) as cut:
        page.click("#gg-save")
    assert cut.value.status == 200, cut.value.text()
    watched.wait("GridGovPage.state.saved.length > 0 || GridGovPage.state.refusals > 0", 60_000)
    watched.wait(
        f"(({LOADED}) && GridGovPage.state.ops.length === 0) || GridGovPage.state.refusals > 0",
        timeout=60_000,
    )
    assert page.evaluate("GridGovPage.state.refusals") == 0, page.inner_text("#gg-problem")
    assert page.input_value("#gg-target") == plan_id  # still editing the plan
    saved = page.inner_text("#gg-saved")
    assert target in saved
    assert "网格" not in saved  # the save summary speaks of units
    merged_away = max(pair.code, pair.neighbour)
    assert f"单元 {merged_away} 已并入 {min(pair.code, pair.neighbour)}" in saved
    assert f"单元 {retired} 已撤销" in saved
    watched.screenshot(artifacts, "editor-unit-plan-split-merge-retire.png")

    # the plan: one more (split), one fewer (merge), one fewer (retire), the same cover
    answer = httpx2.get(f"{live_url}/plans/{plan_id}/units", headers=auth).json()
    group = {f["properties"]["code"]: f for f in answer["group"]["features"]}
    kept, gone = min(pair.code, pair.neighbour), max(pair.code, pair.neighbour)
    created = set(group) - set(live_before)
    assert len(created) == 1, created
    piece = created.pop()
    assert set(live_before) - set(group) == {gone, retired}
    changes = {c: f["properties"]["change"] for c, f in group.items()}
    assert changes[piece] == "created"
    assert changes[target] == "changed"
    assert changes[kept] == "changed"
    retired_listed = {
        f["properties"]["code"]
        for f in answer["units"]["features"]
        if f["properties"]["code"] not in group
    }
    assert retired_listed == {gone, retired}
    today = {f["properties"]["code"]: shape(f["geometry"]) for f in group_before["features"]}
    halves = shape(group[target]["geometry"]).union(shape(group[piece]["geometry"]))
    # the split cut the unit in two, losing nothing; what the halves gained is the retired
    # unit's (its area goes to the neighbour with the longest shared boundary)
    assert today[target].difference(halves).area < 1e-10
    assert halves.difference(today[target]).difference(today[retired]).area < 1e-10
    assert shape(group[piece]["geometry"]).intersection(today[target]).area > 1e-7
    # the merge: the kept unit holds both
    assert today[kept].union(today[gone]).difference(shape(group[kept]["geometry"])).area < 1e-10
    after = shapely.union_all([shape(f["geometry"]) for f in group.values()])
    assert after.symmetric_difference(covered).area < 1e-10  # retired area went to neighbours
    # the page lists the same changes against today
    rows = page.eval_on_selector_all(
        "#gg-unit-plan-table tbody tr", "rs => rs.map(r => [r.dataset.code, r.dataset.change])"
    )
    listed = {c: v for c, v in changes.items() if v != "unchanged"}
    assert dict(rows) == {**listed, gone: "retired", retired: "retired"}

    # nothing in force changed
    assert station_units(engine, station) == live_before
    for code, versions in versions_before.items():
        assert unit_versions(live_url, live_auth, code) == versions, code
    watched.assert_clean()
