"""``/editor`` unit mode saving into a unit plan (方案), in real Chromium on the committed
demo city: a police account creates a draft plan for the selected policing area's group
(``POST /plans/units``), which becomes the save target; a real mouse drag moves a shared
boundary into the plan; ``GET /plans/{id}/units`` shows the change while the live unit is
unchanged; the page shows the plan against today and lists the plan as 部门单元; the plan
is submitted and edits go live again."""

from __future__ import annotations

from pathlib import Path

import httpx2
import shapely
from playwright.sync_api import Browser
from shapely.geometry import shape
from sqlalchemy import Engine, text

from tests.api.maps.pages import Watched, open_page
from tests.api.maps.test_editor_page import (
    LOADED,
    REFUSED_LOG,
    Pair,
    drag,
    start_editing,
    vertex_and_target,
)
from tests.api.maps.test_editor_plans_page import open_section
from tests.api.maps.test_editor_units_page import (
    area_pairs,
    landed,
    police_token,
    split_merge_and_retire,
    township,
    unit_versions,
)

__all__ = ["police_token", "township"]  # the unit pages' fixtures, shared


def number(value: str | None) -> float | None:
    return None if value in (None, "") else float(value)


def pair_of(watched: Watched, selector: str) -> tuple[float | None, float | None]:
    found = watched.page.locator(selector)
    assert found.count() == 1, selector
    return number(found.get_attribute("data-before")), number(found.get_attribute("data-after"))


def close(shown: float | None, expected: float | None) -> bool:
    if expected is None or shown is None:
        return shown is expected
    return abs(shown - expected) <= 1e-9 * max(1.0, abs(expected))


def check_figures(
    watched: Watched, url: str, auth: dict[str, str], plan_id: str, changed: set[str]
) -> None:
    """The measures box shows GET /plans/{id}/measures and /moves exactly: every unit's
    households, workload and area today → plan, the balance, docking and who moves."""
    measures = httpx2.get(f"{url}/plans/{plan_id}/measures", headers=auth).json()
    moves = httpx2.get(f"{url}/plans/{plan_id}/moves", headers=auth).json()
    today = {u["code"]: u for u in measures["today"]["units"]}
    planned = {u["code"]: u for u in measures["plan"]["units"]}
    rows = watched.page.eval_on_selector_all(
        "#gg-unit-figures-units tbody tr", "rs => rs.map(r => [r.dataset.code, r.dataset.change])"
    )
    assert sorted(code for code, _ in rows) == sorted(set(today) | set(planned))
    assert {code for code, change in rows if change == "changed"} == changed
    for code in planned:
        for name in ("households", "workload", "area_km2"):
            shown = pair_of(
                watched, f"#gg-unit-figures-units tr[data-code='{code}'] td[data-measure='{name}']"
            )
            assert close(shown[0], today[code][name]), (code, name, shown, today[code][name])
            assert close(shown[1], planned[code][name]), (code, name, shown, planned[code][name])
    # the dragged boundary moved area between the two units: the saved plan's, not today's
    for code in changed:
        assert not close(today[code]["area_km2"], planned[code]["area_km2"])
    for name in ("households", "workload"):
        shown = pair_of(watched, f"#gg-unit-figures-balance td[data-measure='{name}_cv']")
        assert close(shown[0], measures["today"]["balance"][name]["cv"])
        assert close(shown[1], measures["plan"]["balance"][name]["cv"])
    docking = measures["docking"]
    for cell, key in (
        ("docking_score", "score"),
        ("docked", "docked"),
        ("straddling", "straddling"),
    ):
        shown = pair_of(watched, f"#gg-unit-figures-docking td[data-measure='{cell}']")
        assert close(shown[0], docking["before"][key]), (cell, shown, docking)
        assert close(shown[1], docking["after"][key]), (cell, shown, docking)
    # who changes unit, per from → to pair (households by building, incidents, key sites)
    expected: dict[tuple[str, str], list[int]] = {}
    for layer, index in (("building", 0), ("incident", 1), ("key_site", 2)):
        for p in moves[layer]["pairs"]:
            counts = expected.setdefault((p["from"] or "", p["to"] or ""), [0, 0, 0])
            counts[index] += p["households"] if layer == "building" else p["count"]
    shown_moves = watched.page.eval_on_selector_all(
        "#gg-unit-figures-moves tbody tr",
        "rs => rs.map(r => [r.dataset.from, r.dataset.to, "
        "...['households', 'incidents', 'key_sites'].map("
        "m => Number(r.querySelector(`td[data-measure=${m}]`).dataset.value))])",
    )
    assert {(f, t): list(c) for f, t, *c in shown_moves} == expected
    text = watched.page.inner_text("#gg-measures")
    assert f"将变更所属社区警务区：楼栋 {moves['building']['moved']:,} 栋" in text
    assert "网格：" not in text


def new_unit_plan(url: str, auth: dict[str, str], code: str, name: str) -> str:
    made = httpx2.post(
        f"{url}/plans/units",
        json={"name": name, "unit_layer": "police_unit", "unit_code": code, "reason": "对照"},
        headers=auth,
    )
    assert made.status_code == 201, made.text
    return str(made.json()["id"])


def options(watched: Watched, selector: str) -> list[str]:
    values: list[str] = watched.page.eval_on_selector_all(
        f"{selector} option", "os => os.map(o => o.value)"
    )
    return values


def check_compare(
    watched: Watched, url: str, auth: dict[str, str], plan_id: str, against: str
) -> None:
    """The compare box shows GET /plans/{id}/diff's units with each side's figures: the
    plan's from its measures, today's (or the other plan's) from the same route."""
    diff = httpx2.get(f"{url}/plans/{plan_id}/diff", params={"against": against}, headers=auth)
    assert diff.status_code == 200, diff.text
    units = diff.json()["units"]
    mine = httpx2.get(f"{url}/plans/{plan_id}/measures", headers=auth).json()
    if against == "live":
        other = {"units": mine["today"]["units"], "balance": mine["today"]["balance"]}
        other_docking = mine["docking"]["before"]
    else:
        theirs = httpx2.get(f"{url}/plans/{against}/measures", headers=auth).json()
        other = theirs["plan"]
        other_docking = theirs["docking"]["after"]
    rows = watched.page.eval_on_selector_all(
        "#gg-diff-grids tbody tr", "rs => rs.map(r => [r.dataset.code, r.dataset.change])"
    )
    expected = [(c, change) for change in ("changed", "created", "retired") for c in units[change]]
    assert [tuple(r) for r in rows] == expected
    assert units["changed"], units
    before = {u["code"]: u for u in other["units"]}
    after = {u["code"]: u for u in mine["plan"]["units"]}
    for code in units["changed"]:
        for name in ("households", "workload"):
            shown = pair_of(
                watched, f"#gg-diff-grids tr[data-code='{code}'] td[data-measure='{name}']"
            )
            assert close(shown[0], before[code][name]), (code, name, shown)
            assert close(shown[1], after[code][name]), (code, name, shown)
    for name in ("households", "workload"):
        shown = pair_of(watched, f"#gg-diff-balance td[data-measure='{name}_cv']")
        assert close(shown[0], other["balance"][name]["cv"])
        assert close(shown[1], mine["plan"]["balance"][name]["cv"])
    shown = pair_of(watched, "#gg-diff-docking td[data-measure='docking_score']")
    assert close(shown[0], other_docking["score"])
    assert close(shown[1], mine["docking"]["after"]["score"])
    moved = diff.json()["moves"]["building"]["moved"]
    assert f"将变更所属单元：楼栋 {moved:,} 栋" in watched.page.inner_text("#gg-diff-moves")


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
    done = page.evaluate("GridGovPage.unitFigures.done")
    boundary = f"/plans/{plan_id}/units/{pair.code}/boundary"
    with page.expect_response(lambda r: boundary in r.url) as saved:
        page.click("#gg-save")
    assert saved.value.status == 200, saved.value.text()
    watched.wait("GridGovPage.state.saved.length > 0 || GridGovPage.state.refusals > 0", 60_000)
    assert page.evaluate("GridGovPage.state.refusals") == 0, page.inner_text("#gg-problem")
    watched.wait(f"({LOADED}) && GridGovPage.state.ops.length === 0", timeout=60_000)
    assert page.input_value("#gg-target") == plan_id  # still editing the plan

    # the plan's figures, read again after the save, are the API's
    watched.wait(
        f"GridGovPage.unitFigures.plan === '{plan_id}' && !GridGovPage.unitFigures.pending && "
        f"GridGovPage.unitFigures.done > {done} && "
        f"document.querySelector(\"#gg-unit-figures[data-plan='{plan_id}']\") !== null",
        timeout=60_000,
    )
    assert page.locator("#gg-measures-box").is_visible()
    check_figures(watched, live_url, auth, plan_id, changed={pair.code, pair.neighbour})

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

    # 4. compare (方案对比): against today and another plan of the group, never a grid plan
    sibling = new_unit_plan(live_url, auth, pair.neighbour, "同组对照方案（页面测试）")
    stations = new_unit_plan(live_url, auth, pair.community, "派出所组方案（页面测试）")
    gridded = httpx2.post(
        f"{live_url}/plans",
        json={"name": "网格方案（页面测试）", "township_code": township, "reason": "对照"},
        headers=live_auth,
    )
    assert gridded.status_code == 201, gridded.text
    grid_plan = str(gridded.json()["id"])
    units = {plan_id, sibling, stations}
    open_section(watched, "gg-compare-section")
    watched.wait(
        " && ".join(
            f"document.querySelector(\"#gg-compare-a option[value='{p}']\") !== null"
            for p in (*units, grid_plan)
        )
    )
    listed = page.eval_on_selector_all(
        "#gg-compare-a option",
        "os => os.map(o => [o.value, o.parentElement.label || '', o.textContent])",
    )
    marks = {value: (group, label) for value, group, label in listed}
    for p in units:
        assert marks[p][0] == "部门单元方案", marks[p]
        assert "部门单元" in marks[p][1], marks[p]
    assert marks[grid_plan][0] == "网格方案"
    assert "部门单元" not in marks[grid_plan][1]
    page.select_option("#gg-compare-a", grid_plan)
    assert units.isdisjoint(options(watched, "#gg-compare-b"))
    page.select_option("#gg-compare-a", plan_id)
    against = options(watched, "#gg-compare-b")
    assert grid_plan not in against  # a unit plan is never compared with a grid plan
    assert {"live", sibling} <= set(against)
    assert stations not in against  # another group of the layer: the API could not diff it
    assert page.inner_text("#gg-compare-b option[value='live']").startswith("现行单元")

    page.select_option("#gg-compare-b", "live")
    page.click("#gg-compare")
    watched.wait(
        "GridGovPage.review.diff && GridGovPage.review.diff.against === 'live' && GridGov.idle()",
        timeout=60_000,
    )
    assert "部门单元方案对比" in page.inner_text("#gg-review-title")
    check_compare(watched, live_url, auth, plan_id, "live")
    # both sides are drawn: the plan's changed units (orange) over today's (dashed grey)
    assert page.locator(".leaflet-overlay-pane path[stroke='#e6550d']").count() >= 2
    assert page.locator(".leaflet-overlay-pane path[stroke='#555']").count() >= 2
    watched.screenshot(artifacts, "editor-unit-compare.png")

    page.select_option("#gg-compare-b", sibling)
    page.click("#gg-compare")
    watched.wait(
        f"GridGovPage.review.diff.against === 'plan/{sibling}' && GridGov.idle()", timeout=60_000
    )
    check_compare(watched, live_url, auth, plan_id, sibling)
    # the stations' plan compares with today and plans of the stations' group only
    page.select_option("#gg-compare-a", stations)
    plan_list = {
        str(p["id"]): p for p in httpx2.get(f"{live_url}/plans", headers=auth).json()["items"]
    }
    offered = options(watched, "#gg-compare-b")
    assert offered[0] == "live"
    assert {plan_id, sibling}.isdisjoint(offered)
    group = plan_list[stations]["unit_group"]
    assert all(plan_list[p]["unit_group"] == group for p in offered[1:])
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
    split_merge_and_retire(watched, target, pair, retired)
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


def test_a_partly_saved_unit_plan_shows_what_was_saved(
    browser: Browser,
    live_url: str,
    live_auth: dict[str, str],
    engine: Engine,
    township: str,
    police_token: str,
    artifacts: Path,
) -> None:
    """Two pending edits into a plan: a boundary moved with its neighbour (saved), then a
    drag of two other areas without the neighbour following (refused). The
    refused edit stays on screen, and the plan's panel and figures show the saved one."""
    pairs = area_pairs(engine, township)
    first, second = next(
        (a, b)
        for a in pairs
        for b in pairs
        if a.community == b.community and not {a.code, a.neighbour} & {b.code, b.neighbour}
    )
    auth = {"Authorization": f"Bearer {police_token}"}
    watched = open_page(browser, live_url, "/editor", token=police_token)
    page = watched.page
    landed(watched, township)
    plan_id = open_new_plan(watched, first.code, f"{first.code} 部分保存（页面测试）")
    # the figures of the empty plan first, so that a later read can be told apart
    watched.wait(
        f"GridGovPage.unitFigures.plan === '{plan_id}' && !GridGovPage.unitFigures.pending && "
        "GridGovPage.unitFigures.done > 0",
        timeout=60_000,
    )

    start_editing(watched, first, follow=True)
    drag(watched, vertex_and_target(watched, first))
    watched.wait("GridGovPage.state.ops.length === 1")
    start_editing(watched, second, follow=False)
    drag(watched, vertex_and_target(watched, second))
    watched.wait("GridGovPage.state.ops.length === 2")
    page.fill("#gg-reason", "部分保存测试")
    done = page.evaluate("GridGovPage.unitFigures.done")
    refused_path = f"/plans/{plan_id}/units/{second.code}"
    with page.expect_response(
        lambda r: refused_path in r.url and r.request.method == "PATCH"
    ) as refused:
        page.click("#gg-save")
    # an overlap (409), or outside the station when earlier tests moved its edge (422)
    assert refused.value.status in (409, 422), refused.value.text()
    watched.wait("GridGovPage.state.refusals === 1", timeout=60_000)
    assert page.evaluate("GridGovPage.state.ops.length") == 1  # the refused one is kept
    assert "部分调整已保存" in page.inner_text("#gg-status")

    # the plan's panel and figures were read again after the save, without a reload
    watched.wait(
        f"GridGovPage.unitFigures.done > {done} && !GridGovPage.unitFigures.pending && "
        f"document.querySelector(\"#gg-unit-plan-table tr[data-code='{first.code}']\") !== null",
        timeout=60_000,
    )
    check_figures(watched, live_url, auth, plan_id, changed={first.code, first.neighbour})
    rows = page.eval_on_selector_all(
        "#gg-unit-plan-table tbody tr", "rs => rs.map(r => [r.dataset.code, r.dataset.change])"
    )
    assert dict(rows) == {first.code: "changed", first.neighbour: "changed"}
    watched.screenshot(artifacts, "editor-unit-plan-partly-saved.png")
    assert len(watched.http_errors) == 1, watched.http_errors  # the refused PATCH
    assert all(REFUSED_LOG in e for e in watched.console_errors), watched.console_errors
    assert watched.blocked == []
    assert watched.failed == []
