"""``/editor`` review tools in real Chromium, offline, on the committed demo city: compare a
plan with today's grids and see the changed grid and its numbers; run a proposal on a
small community, watch it complete, save it as a plan, find the plan through the API and
in the editor; the township docking proposal saved as a plan the same way."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx2
import pytest
from playwright.sync_api import Browser
from shapely.geometry import shape
from shapely.ops import unary_union
from sqlalchemy import Engine, text

from tests.api.maps.pages import Watched, open_page
from tests.api.maps.test_editor_page import INSIDE, LOADED, open_community, shared_pairs


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def open_section(watched: Watched, section: str) -> None:
    watched.page.click(f"#{section} summary")
    watched.wait(f"document.getElementById('{section}').open")


def cell(watched: Watched, selector: str) -> tuple[str, str]:
    found = watched.page.locator(selector)
    assert found.count() == 1, selector
    return found.get_attribute("data-before") or "", found.get_attribute("data-after") or ""


def test_compare_a_plan_with_today(
    browser: Browser,
    live_url: str,
    engine: Engine,
    township: str,
    planner_token: str,
    artifacts: Path,
) -> None:
    auth = bearer(planner_token)
    pair = shared_pairs(engine, township)[0]
    made = httpx2.post(
        f"{live_url}/plans",
        json={"name": "对比测试方案", "community_code": pair.community, "reason": "合并两格"},
        headers=auth,
    )
    assert made.status_code == 201, made.text
    plan_id = made.json()["id"]
    base = f"{live_url}/plans/{plan_id}/grids"
    tags = [
        httpx2.get(f"{base}/{c}", headers=auth).headers["ETag"] for c in (pair.code, pair.neighbour)
    ]
    merged = httpx2.post(
        f"{base}/merge",
        json={"codes": [pair.code, pair.neighbour], "reason": "合并（页面测试）"},
        headers={**auth, "If-Match": ", ".join(tags)},
    )
    assert merged.status_code == 200, merged.text
    # the figures the page must show, from another route than the one it calls
    figures = httpx2.get(f"{live_url}/plans/{plan_id}/measures", headers=auth).json()
    today = {g["code"]: g for g in figures["today"]["grids"]}
    planned = {g["code"]: g for g in figures["plan"]["grids"]}

    watched = open_page(browser, live_url, "/editor", token=planner_token)
    page = watched.page
    open_community(watched, pair.community)
    open_section(watched, "gg-compare-section")
    watched.wait(f"document.querySelector(\"#gg-compare-a option[value='{plan_id}']\") !== null")
    page.select_option("#gg-compare-a", str(plan_id))
    page.select_option("#gg-compare-b", "live")
    page.click("#gg-compare")
    watched.wait("GridGovPage.review.diff !== null && GridGov.idle()", timeout=60_000)
    assert not page.locator("#gg-review-box").is_hidden()
    assert "方案对比" in page.inner_text("#gg-review-title")

    rows = page.locator("#gg-diff-grids tbody tr")
    assert rows.count() == 2
    changed = f"#gg-diff-grids tr[data-code='{pair.code}'][data-change='changed']"
    retired = f"#gg-diff-grids tr[data-code='{pair.neighbour}'][data-change='retired']"
    assert "调整" in page.inner_text(changed)
    assert "撤销" in page.inner_text(retired)
    before, after = cell(watched, f"{changed} td[data-measure='households']")
    assert int(before) == today[pair.code]["households"]
    assert int(after) == planned[pair.code]["households"]
    # the merged grid carries both grids' households
    assert int(after) == today[pair.code]["households"] + today[pair.neighbour]["households"]
    gone_before, gone_after = cell(watched, f"{retired} td[data-measure='households']")
    assert int(gone_before) == today[pair.neighbour]["households"]
    assert gone_after == ""
    load_before, load_after = cell(watched, f"{changed} td[data-measure='workload']")
    assert float(load_after) == pytest.approx(planned[pair.code]["workload"])
    assert float(load_after) > float(load_before)
    cv = cell(watched, "#gg-diff-balance td[data-measure='households_cv']")
    assert float(cv[0]) == pytest.approx(figures["today"]["balance"]["households"]["cv"])
    assert float(cv[1]) == pytest.approx(figures["plan"]["balance"]["households"]["cv"])
    docking = page.locator("#gg-diff-docking td[data-measure='docking']")
    assert docking.count() == len(figures["docking"]) > 0
    first_kind = figures["docking"][0]
    assert float(docking.first.get_attribute("data-after") or "nan") == pytest.approx(
        first_kind["after"]
    )
    assert "户" in page.inner_text("#gg-diff-moves")
    # a row of the table brings its grid into view
    page.evaluate("GridGovPage.map.setZoom(10, {animate: false})")
    page.click(changed)
    watched.wait(
        f"""(() => {{ const m = GridGovPage.map; let shown = false;
          GridGovPage.reviewLayer.eachLayer(g => g.eachLayer(l => {{
            if (l.reviewKey === '{pair.code}') shown = m.getBounds().contains(l.getBounds());
          }}));
          return shown && m.getZoom() > 12; }})()"""
    )

    # drawn: the changed grid (orange) over today's outlines, the retired one (violet)
    paths = ".leaflet-overlay-pane path[stroke='{}']"
    assert page.locator(paths.format("#e6550d")).count() >= 1
    assert page.locator(paths.format("#7b3294")).count() >= 1
    # either side can be hidden: today's outlines (grey, dashed) go and come back
    today_paths = page.locator(paths.format("#555"))
    assert today_paths.count() >= 1
    page.uncheck("#gg-review input[data-side='other']")
    assert today_paths.count() == 0
    assert page.locator(paths.format("#e6550d")).count() >= 1
    page.check("#gg-review input[data-side='other']")
    assert today_paths.count() >= 1
    watched.screenshot(artifacts, "editor-compare.png")
    # the comparison lies over the grids: a click on it still selects the grid beneath
    grid = httpx2.get(f"{live_url}/grids/{pair.code}", headers=auth).json()
    inner = shape(grid["geometry"]).representative_point()
    page.evaluate(f"GridGovPage.select('{pair.neighbour}')")
    watched.wait(f"GridGovPage.state.selected.join() === '{pair.neighbour}'")
    spot = page.evaluate(
        """([lon, lat]) => { const m = GridGovPage.map;
          const box = m.getContainer().getBoundingClientRect();
          const p = m.latLngToContainerPoint(GridGov.datum.latLng(lon, lat));
          return [p.x + box.left, p.y + box.top]; }""",
        [inner.x, inner.y],
    )
    page.mouse.click(spot[0], spot[1])
    watched.wait(f"GridGovPage.state.selected.join() === '{pair.code}'")
    watched.assert_clean()

    page.click("#gg-review-clear")
    assert page.locator("#gg-review-box").is_hidden()
    assert not page.locator("#gg-measures-box").is_hidden()
    assert page.locator(paths.format("#7b3294")).count() == 0

    # two plans: a fresh copy of today's grids against the merged plan
    copy = httpx2.post(
        f"{live_url}/plans",
        json={"name": "现状副本", "community_code": pair.community, "reason": "对照"},
        headers=auth,
    ).json()["id"]
    page.click("#gg-compare-refresh")
    watched.wait(f"document.querySelector(\"#gg-compare-a option[value='{copy}']\") !== null")
    page.select_option("#gg-compare-a", str(copy))
    page.select_option("#gg-compare-b", str(plan_id))
    page.click("#gg-compare")
    watched.wait(f"GridGovPage.review.diff && GridGovPage.review.diff.plan_id === {copy}", 60_000)
    watched.wait("GridGov.idle()")
    assert f"方案 #{copy} 对 方案 #{plan_id}" in page.inner_text("#gg-review-title")
    # seen from the merged plan, the copy brings the neighbour back and splits the grid
    created = f"#gg-diff-grids tr[data-code='{pair.neighbour}'][data-change='created']"
    assert cell(watched, f"{created} td[data-measure='households']") == (
        "",
        str(today[pair.neighbour]["households"]),
    )
    back = cell(
        watched, f"#gg-diff-grids tr[data-code='{pair.code}'] td[data-measure='households']"
    )
    assert back == (str(planned[pair.code]["households"]), str(today[pair.code]["households"]))
    watched.assert_clean()


def small_community(engine: Engine, township: str) -> tuple[str, int]:
    """The community of the township with the fewest households among those with at least
    200 whose grids all lie inside it (the demo has a few grids spilling over by some m²,
    which a plan refuses: not the page's business)."""
    with engine.connect() as conn:
        row = conn.execute(
            text(
                "SELECT g.community_code, sum(g.households)::int AS households "
                "FROM grid g JOIN community c ON c.code = g.community_code "
                "WHERE g.valid_to IS NULL AND g.township_code = :t "
                f"GROUP BY g.community_code HAVING bool_and({INSIDE}) "
                "AND sum(g.households) >= 200 ORDER BY 2 LIMIT 1"
            ),
            {"t": township},
        ).one()
    return str(row.community_code), int(row.households)


def live_versions(engine: Engine, community: str) -> int:
    with engine.connect() as conn:
        count: int = conn.execute(
            text("SELECT count(*) FROM grid WHERE community_code = :c"), {"c": community}
        ).scalar_one()
    return count


def test_run_a_proposal_and_save_it_as_a_plan(
    browser: Browser,
    live_url: str,
    engine: Engine,
    township: str,
    planner_token: str,
    artifacts: Path,
) -> None:
    auth = bearer(planner_token)
    community, households = small_community(engine, township)
    versions = live_versions(engine, community)
    target = max(10, households // 3)  # about three grids

    watched = open_page(browser, live_url, "/editor", token=planner_token)
    page = watched.page
    open_community(watched, community)
    open_section(watched, "gg-propose-section")
    page.fill("#gg-propose-target", str(target))
    page.click("#gg-propose-weights summary")
    page.fill("#gg-propose-weights input[data-weight='docking']", "3")
    page.click("#gg-propose")
    watched.wait(
        "GridGovPage.review.job && ['done', 'failed'].includes(GridGovPage.review.job.status)",
        timeout=120_000,
    )
    job: dict[str, Any] = page.evaluate("GridGovPage.review.job")
    assert job["status"] == "done", job
    assert job["progress"] == 1
    assert page.evaluate("GridGovPage.review.polls") >= 1
    assert page.evaluate("document.getElementById('gg-propose-progress').value") == 1
    assert "已完成" in page.inner_text("#gg-propose-state")
    proposal = job["result"]["proposal"]["features"]
    assert job["result"]["options"]["target_households"] == target
    assert job["result"]["options"]["objective"]["docking"] == 3.0  # the weight typed in
    assert job["result"]["options"]["objective"]["balance"] == 1.0
    assert len(proposal) >= 2
    assert sum(f["properties"]["households"] for f in proposal) == households
    # drawn over today's grids, with the figures before → after
    drawn = page.evaluate("GridGovPage.reviewLayer.getLayers()[0].getLayers().length")
    assert drawn == len(proposal)
    assert page.locator(".leaflet-overlay-pane path[stroke='#3f007d']").count() == len(proposal)
    grids = cell(watched, "#gg-proposal-summary td[data-measure='grids']")
    assert int(grids[1]) == len(proposal)
    assert int(grids[0]) == page.evaluate("GridGovPage.state.order.length")
    cv = cell(watched, "#gg-proposal-summary td[data-measure='workload_cv']")
    assert float(cv[1]) == pytest.approx(job["result"]["after"]["workload_cv"])
    assert page.locator(f"#gg-proposal-grids-{community} tbody tr").count() == len(proposal)
    watched.screenshot(artifacts, "editor-proposal.png")
    watched.assert_clean()

    # save as a plan: the editor opens it
    assert not page.locator("#gg-review-save").is_hidden()
    page.fill("#gg-review-name", "优化方案（页面测试）")
    page.fill("#gg-review-reason", "户数不均，按优化方案重新划分（页面测试）")
    page.click("#gg-review-save-button")
    watched.wait("GridGovPage.review.saved.length > 0 || GridGov.errors.length", 60_000)
    assert page.evaluate("GridGov.errors") == []
    saved = page.evaluate("GridGovPage.review.saved")
    assert [s["community_code"] for s in saved] == [community]
    plan_id = saved[0]["plan_id"]
    watched.wait(f"({LOADED}) && GridGovPage.state.target === '{plan_id}'", timeout=60_000)
    assert page.input_value("#gg-target") == str(plan_id)
    assert f"#{plan_id}" in page.inner_text("#gg-review-saved")
    watched.screenshot(artifacts, "editor-proposal-plan.png")
    watched.assert_clean()

    plan = httpx2.get(f"{live_url}/plans/{plan_id}", headers=auth).json()
    assert plan["origin"] == "proposal"
    assert plan["status"] == "draft"
    assert plan["community_code"] == community
    assert plan["name"] == "优化方案（页面测试）"
    in_plan = httpx2.get(f"{live_url}/plans/{plan_id}/grids", headers=auth).json()["features"]
    kept = [f for f in in_plan if f["properties"]["change"] != "retired"]
    assert len(kept) == len(proposal)
    assert sorted(page.evaluate("GridGovPage.state.order")) == sorted(
        f["properties"]["code"] for f in kept
    )
    # the plan's grids are the proposed ones, one for one
    proposed = [shape(f["geometry"]) for f in proposal]
    for feature in kept:
        geom = shape(feature["geometry"])
        best = max(proposed, key=lambda p: p.intersection(geom).area)
        assert best.symmetric_difference(geom).area < 1e-10
    assert unary_union([shape(f["geometry"]) for f in kept]).area == pytest.approx(
        unary_union(proposed).area, rel=1e-9
    )
    assert live_versions(engine, community) == versions  # nothing live changed


def test_township_docking_proposal_saved_as_a_plan(
    browser: Browser,
    live_url: str,
    engine: Engine,
    township: str,
    planner_token: str,
    artifacts: Path,
) -> None:
    auth = bearer(planner_token)
    watched = open_page(browser, live_url, "/editor", token=planner_token)
    page = watched.page
    # from one of its communities: the proposal is the township's
    open_community(watched, shared_pairs(engine, township)[0].community)
    open_section(watched, "gg-propose-section")
    watched.wait("document.querySelectorAll('#gg-dock-kind option').length > 0")
    kind = page.input_value("#gg-dock-kind")
    assert kind == "police_unit/policing_area"
    page.click("#gg-dock-propose")
    watched.wait("GridGovPage.review.docking !== null || GridGov.errors.length", 60_000)
    assert page.evaluate("GridGov.errors") == []
    expected = httpx2.get(
        f"{live_url}/docking/proposals/townships/{township}",
        params={"unit_layer": "police_unit", "unit_level": "policing_area"},
        headers=auth,
    ).json()
    assert expected["moves"], "the demo township has grids straddling policing areas"
    score = cell(watched, "#gg-docking-summary td[data-measure='docking_score']")
    assert float(score[0]) == pytest.approx(expected["docking"]["before"]["score"])
    assert float(score[1]) == pytest.approx(expected["docking"]["after"]["score"])
    assert page.locator("#gg-docking-moves tbody tr").count() == len(expected["moves"])
    assert page.locator(".leaflet-overlay-pane path[stroke='#e6550d']").count() >= len(
        expected["moves"]
    )
    watched.screenshot(artifacts, "editor-docking-proposal.png")
    watched.assert_clean()

    page.fill("#gg-review-name", "警务区对接方案（页面测试）")
    page.fill("#gg-review-reason", "网格随社区警务区边界调整（页面测试）")
    page.click("#gg-review-save-button")
    watched.wait("GridGovPage.review.saved.length > 0 || GridGov.errors.length", 120_000)
    assert page.evaluate("GridGov.errors") == []
    plan_id = page.evaluate("GridGovPage.review.saved[0].plan_id")
    watched.wait(f"({LOADED}) && GridGovPage.state.target === '{plan_id}'", timeout=60_000)
    watched.assert_clean()
    plan = httpx2.get(f"{live_url}/plans/{plan_id}", headers=auth).json()
    assert plan["township_code"] == township
    assert plan["status"] == "draft"
    changed = {
        f["properties"]["code"]
        for f in httpx2.get(f"{live_url}/plans/{plan_id}/grids", headers=auth).json()["features"]
        if f["properties"]["change"] == "changed"
    }
    assert changed == {f["properties"]["code"] for f in expected["grids"]["features"]}


def test_viewer_compares_but_gets_no_proposals(
    browser: Browser, live_url: str, viewer_token: str
) -> None:
    watched = open_page(browser, live_url, "/editor", token=viewer_token)
    page = watched.page
    assert page.locator("#gg-compare-section").count() == 1
    assert page.locator("#gg-propose-section").count() == 0
    assert page.evaluate("GridGov.config.review.canPropose") is False
    watched.wait("GridGov.idle()")
    watched.assert_clean()
