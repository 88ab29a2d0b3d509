"""``/editor`` unit mode in real Chromium, offline, on the committed demo city: a police
account of one township lands on its community policing areas, drags a shared boundary
(a real mouse drag), saves, and the new unit version shows through the API; an
overlapping edit is refused and drawn; a stale save reloads with a Chinese message; the
selected unit's docking and its "由整网格组成的边界" proposal are shown and saved as a unit
plan; a planner gets no unit mode."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx2
import pytest
import shapely
from playwright.sync_api import Browser
from shapely.geometry import Point, shape
from sqlalchemy import Engine, text

from gridgov.security.roles import Role
from gridgov.settings import Settings
from tests.api.maps.pages import Watched, open_page
from tests.api.maps.test_editor_page import (
    LOADED,
    REFUSED_LOG,
    Pair,
    drag,
    draw_split_line,
    pairs_in,
    start_editing,
    vertex_and_target,
)
from tests.live import committed_login

KIND = {"unit_layer": "police_unit", "unit_level": "policing_area"}


def police_township(engine: Engine) -> str:
    """The first township with a station and several policing areas."""
    with engine.connect() as conn:
        code: str = conn.execute(
            text(
                "SELECT min(township_code) FROM police_unit WHERE level = 'policing_area' "
                "GROUP BY parent_code HAVING count(*) >= 4 ORDER BY 1 LIMIT 1"
            )
        ).scalar_one()
    return code


@pytest.fixture(scope="module")
def township(engine: Engine, demo_city: None) -> str:
    return police_township(engine)


@pytest.fixture(scope="module")
def police_token(engine: Engine, settings: Settings, township: str) -> Iterator[str]:
    with committed_login(engine, settings, Role.POLICE, (township,), "editor_police") as token:
        yield token


@pytest.fixture(scope="module")
def planner_token(engine: Engine, settings: Settings, township: str) -> Iterator[str]:
    with committed_login(engine, settings, Role.PLANNER, (township,), "units_planner") as token:
        yield token


def area_pairs(engine: Engine, township: str) -> list[Pair]:
    """Policing areas of the township's stations sharing an edge away from the station's."""
    with engine.connect() as conn:
        rows = conn.execute(
            text(
                "SELECT u.parent_code, u.code, ST_AsBinary(u.geom), ST_AsBinary(s.geom) "
                "FROM police_unit u JOIN police_unit s ON s.code = u.parent_code "
                "WHERE u.level = 'policing_area' AND u.township_code = :t ORDER BY u.code"
            ),
            {"t": township},
        ).all()
    by_station: dict[str, dict[str, Any]] = {}
    edge: dict[str, Any] = {}
    for station, code, geom, station_geom in rows:
        by_station.setdefault(station, {})[code] = shapely.from_wkb(geom)
        edge[station] = shapely.from_wkb(station_geom).boundary
    pairs: list[Pair] = []
    for station, units in by_station.items():
        pairs += pairs_in(station, units, edge[station])
    return pairs


def unit_versions(url: str, auth: dict[str, str], code: str) -> list[dict[str, Any]]:
    answer = httpx2.get(f"{url}/units/police_unit/{code}/versions", headers=auth)
    assert answer.status_code == 200, answer.text
    versions: list[dict[str, Any]] = answer.json()["versions"]
    return versions


def landed(watched: Watched, township: str) -> None:
    """The police account's page opens on its township's policing areas by itself."""
    watched.wait(
        f"({LOADED}) && GridGovPage.state.area && GridGovPage.state.area.code === '{township}'"
        " || GridGov.errors.length",
        timeout=60_000,
    )
    assert watched.page.evaluate("GridGov.errors") == []


def test_police_edit_their_policing_areas(
    browser: Browser,
    live_url: str,
    live_auth: dict[str, str],
    engine: Engine,
    township: str,
    police_token: str,
    artifacts: Path,
) -> None:
    pairs = area_pairs(engine, township)
    assert len(pairs) >= 2, pairs
    first = pairs[0]
    second = next(
        p for p in pairs[1:] if {p.code, p.neighbour}.isdisjoint({first.code, first.neighbour})
    )
    before = unit_versions(live_url, live_auth, first.code)

    watched = open_page(browser, live_url, "/editor", token=police_token)
    page = watched.page
    # the page is served in grid words; the police account's unit mode retitles it
    watched.wait("document.title.startsWith('警务单元编辑 · gridgov')")
    # only the police kinds: no grid mode, no urban-management or emergency units
    options = page.eval_on_selector_all("#gg-layer option", "os => os.map(o => o.value)")
    assert options == ["police_unit/station", "police_unit/policing_area"]
    assert page.evaluate("GridGovPage.unitState.mode") == "police_unit/policing_area"
    landed(watched, township)
    # units save live or into one of the layer's draft unit plans (none yet)
    assert page.locator("#gg-target-field").is_visible()
    watched.wait("document.querySelector('#gg-target option').textContent.startsWith('现行单元')")
    with engine.connect() as conn:
        mine = (
            conn.execute(
                text(
                    "SELECT code FROM police_unit WHERE level = 'policing_area' "
                    "AND township_code = :t ORDER BY code"
                ),
                {"t": township},
            )
            .scalars()
            .all()
        )
    shown = page.evaluate("GridGovPage.state.order")
    assert shown == list(mine)
    rows = page.eval_on_selector_all("#gg-grids tbody tr", "rs => rs.map(r => r.dataset.code)")
    assert rows == list(mine)
    # the grids beneath: read-only thin lines, not in the editable list
    assert page.evaluate("Object.keys(GridGovPage.unitState.beneath).length") > 0
    watched.screenshot(artifacts, "editor-units.png")

    # 1. move the shared boundary of two policing areas: a real drag into the neighbour
    start_editing(watched, first, follow=True)
    at = vertex_and_target(watched, first)
    neighbour = shape(
        httpx2.get(f"{live_url}/units/police_unit/{first.neighbour}", headers=live_auth).json()[
            "geometry"
        ]
    )
    assert neighbour.contains(Point(at["lon"], at["lat"]))
    drag(watched, at)
    watched.wait("GridGovPage.state.ops.length === 1")
    op = page.evaluate("GridGovPage.state.ops[0]")
    assert (op["op"], op["code"], op["neighbour"]) == ("geometry", first.code, first.neighbour)
    watched.screenshot(artifacts, "editor-units-dragged.png")
    page.fill("#gg-reason", "警务区边界对齐道路（页面测试）")
    with page.expect_response(
        lambda r: f"/units/police_unit/{first.code}/boundary" in r.url
    ) as answer:
        page.click("#gg-save")
    assert answer.value.status == 200, answer.value.text()
    edit_id = answer.value.json()["edit"]["id"]
    watched.wait("GridGovPage.state.saved.length > 0 || GridGovPage.state.refusals > 0", 60_000)
    assert page.evaluate("GridGovPage.state.refusals") == 0, page.inner_text("#gg-problem")
    watched.wait(LOADED, timeout=60_000)
    assert first.code in page.inner_text("#gg-saved")
    watched.assert_clean()

    after = unit_versions(live_url, live_auth, first.code)
    # a unit never edited has one unrecorded version; its first edit records it and the new
    assert len(after) == (len(before) + 1 if before[0]["recorded"] else 2)
    newest = after[-1]
    assert newest["valid_to"] is None
    assert newest["edit_id"] == edit_id
    new = shape(newest["geometry"])
    # what the page sent, up to the server's clean-up along the other units (< 1 m²)
    assert new.symmetric_difference(shape(op["geometry"])).area < 1e-10
    assert new.intersection(neighbour).area > 1e-9  # it took area from the neighbour
    grown = shape(unit_versions(live_url, live_auth, first.neighbour)[-1]["geometry"])
    assert grown.intersection(new).area < 1e-12  # the neighbour followed: no overlap

    # 2. the same kind of drag without the neighbour following: an overlap, refused, drawn
    # (start_editing clicks the row once: a second click's late answer would move the map)
    start_editing(watched, second, follow=False)
    drag(watched, vertex_and_target(watched, second))
    watched.wait("GridGovPage.state.ops.length === 1")
    page.fill("#gg-reason", "越界测试")
    with page.expect_response(
        lambda r: f"/units/police_unit/{second.code}" in r.url and r.request.method == "PATCH"
    ) as refused:
        page.click("#gg-save")
    assert refused.value.status == 409
    watched.wait("GridGovPage.state.refusals === 1")
    assert "保存被拒绝" in page.inner_text("#gg-problem")
    assert page.locator(".leaflet-overlay-pane path[stroke='#d7191c']").count() > 0
    watched.screenshot(artifacts, "editor-units-refused.png")
    untouched = unit_versions(live_url, live_auth, second.code)
    assert untouched[-1]["valid_to"] is None
    assert len(untouched) == 1
    page.click("#gg-undo")
    assert page.evaluate("GridGovPage.state.ops.length") == 0

    # 3. a stale save: someone else changed the unit after the page read its ETag
    page.click(f"#gg-grids tbody tr[data-code='{second.neighbour}']")
    watched.wait(f"GridGovPage.state.grids['{second.neighbour}'].etag")
    url = f"{live_url}/units/police_unit/{second.neighbour}"
    etag = httpx2.get(url, headers=live_auth).headers["ETag"]
    renamed = httpx2.patch(
        url,
        json={"properties": {"name": "另一用户改名"}, "reason": "并发修改"},
        headers={**live_auth, "If-Match": etag},
    )
    assert renamed.status_code == 200, renamed.text
    page.click("#gg-retire")
    assert "撤销" in page.inner_text("#gg-pending")
    page.fill("#gg-reason", "撤并警务区（页面测试）")
    with page.expect_response(lambda r: r.request.method == "DELETE") as stale:
        page.click("#gg-save")
    assert stale.value.status == 412
    watched.wait(f"GridGovPage.state.stale === 1 && ({LOADED})", timeout=60_000)
    watched.wait("!document.getElementById('gg-problem').hidden")
    assert "已被他人修改" in page.inner_text("#gg-problem")
    assert page.evaluate("GridGovPage.state.ops.length") == 0
    name = page.evaluate(f"GridGovPage.state.grids['{second.neighbour}'].props.name")
    assert name == "另一用户改名"  # the page shows today's unit again
    assert httpx2.get(url, headers=live_auth).status_code == 200  # not retired
    # only the refusals were errors: the 409 and the 412
    assert [e.split()[0] for e in watched.http_errors] == ["409", "412"], watched.http_errors
    assert all(REFUSED_LOG in e for e in watched.console_errors), watched.console_errors
    assert watched.blocked == []


MAX_CANDIDATES = 6
MIN_MOVED_M2 = 100.0  # a proposal that changes something visible


def docking_candidates(url: str, auth: dict[str, str], engine: Engine) -> list[dict[str, Any]]:
    """Policing areas whose whole-grid boundary differs from today's, empties no neighbour
    and moves area only among the areas of their own station (a plan across stations is
    refused up front), from the areas lying deepest inside their station."""
    with engine.connect() as conn:
        codes = (
            conn.execute(
                text(
                    "SELECT u.code FROM police_unit u JOIN police_unit s ON s.code = u.parent_code "
                    "WHERE u.level = 'policing_area' "
                    "ORDER BY ST_Distance(ST_Boundary(s.geom), u.geom) DESC, u.code LIMIT 30"
                )
            )
            .scalars()
            .all()
        )
    found = []
    for code in codes:
        answer = httpx2.get(f"{url}/docking/proposals/units/{code}", params=KIND, headers=auth)
        assert answer.status_code == 200, answer.text
        body: dict[str, Any] = answer.json()
        station = code.split("-")[0] + "-"
        if (
            body["gained"]["area_m2"] + body["lost"]["area_m2"] >= MIN_MOVED_M2
            and not any(n["emptied"] for n in body["neighbours"])
            and all(n["unit_code"].startswith(station) for n in body["neighbours"])
        ):
            found.append(body)
    assert found, codes
    return found[:MAX_CANDIDATES]


def test_police_preview_and_save_a_unit_docking_plan(
    browser: Browser,
    live_url: str,
    live_auth: dict[str, str],
    engine: Engine,
    settings: Settings,
    artifacts: Path,
) -> None:
    """Candidates are tried in the page until one is saved: the unit plan rules may still
    refuse one (e.g. a sliver overlap with a neighbour), and then the refusal is drawn."""
    candidates = docking_candidates(live_url, live_auth, engine)
    townships = tuple(sorted({c["unit_code"][3:12] for c in candidates}))
    with committed_login(engine, settings, Role.POLICE, townships, "docking_police") as token:
        watched = open_page(browser, live_url, "/editor", token=token)
        watched.wait("document.querySelector('#gg-area-district').options.length > 1")
        saved = None
        for chosen in candidates:
            saved = try_docking_plan(watched, live_url, token, chosen, artifacts)
            if saved is not None:
                break
        assert saved is not None, "every candidate was refused"
        page = watched.page
        watched.wait(f"document.querySelector(\"#gg-unit-plans li[data-plan='{saved}']\") !== null")
        assert "草稿" in page.inner_text(f"#gg-unit-plans li[data-plan='{saved}']")
        auth = {"Authorization": f"Bearer {token}"}
        plan = httpx2.get(f"{live_url}/plans/{saved}", headers=auth).json()
        assert plan["kind"] == "unit"
        assert plan["status"] == "draft"
        units = httpx2.get(f"{live_url}/plans/{saved}/units", headers=auth)
        assert units.status_code == 200, units.text
        # only refused plans were errors (409 / 422 of the plan request)
        assert all(
            e.split()[0] in ("409", "422") and e.endswith("/plans/from-docking/unit")
            for e in watched.http_errors
        ), watched.http_errors
        assert all(REFUSED_LOG in e for e in watched.console_errors), watched.console_errors
        assert watched.blocked == []


def try_docking_plan(
    watched: Watched, live_url: str, token: str, chosen: dict[str, Any], artifacts: Path
) -> int | None:
    """Select the unit, check its docking panel and preview against the API, save the
    plan: its id, or None when refused (the refusal shown and drawn)."""
    page = watched.page
    code = chosen["unit_code"]
    township = code[3:12]
    auth = {"Authorization": f"Bearer {token}"}
    pieces = httpx2.get(
        f"{live_url}/docking/grids", params={**KIND, "township_code": township}, headers=auth
    ).json()["features"]
    straddling = {
        p["properties"]["grid_code"] for p in pieces if p["properties"]["unit_code"] == code
    }
    page.evaluate("codes => GridGovPage.selector.choose(codes)", [township[:6], township])
    landed(watched, township)
    page.click(f"#gg-grids tbody tr[data-code='{code}']")
    watched.wait("GridGovPage.unitState.docking !== null")
    cell = "#gg-unit-docking-table td[data-measure='{}']"
    assert int(page.get_attribute(cell.format("straddling"), "data-value") or -1) == len(straddling)
    inside = {
        g["code"] for g in chosen["grids"] if g["unit_code"] == code and g["code"] not in straddling
    }
    assert int(page.get_attribute(cell.format("inside"), "data-value") or -1) == len(inside)
    score = float(page.get_attribute(cell.format("score"), "data-value") or "nan")
    assert score == chosen["docking"]["before"]["score"]

    page.click("#gg-unit-propose")
    watched.wait("!document.getElementById('gg-unit-proposal').hidden")
    row = page.locator("#gg-unit-proposal-table td[data-measure='score']")
    assert float(row.get_attribute("data-before") or "nan") == chosen["docking"]["before"]["score"]
    assert float(row.get_attribute("data-after") or "nan") == chosen["docking"]["after"]["score"]
    assert page.locator(".leaflet-overlay-pane path[stroke='#3f007d']").count() > 0
    page.fill("#gg-unit-plan-name", f"{code} 按整网格对齐（页面测试）")
    page.fill("#gg-unit-plan-reason", "对接网格")
    with page.expect_response(lambda r: r.url.endswith("/plans/from-docking/unit")) as made:
        page.click("#gg-unit-plan-button")
    if made.value.status != 201:
        assert made.value.status in (409, 422), made.value.text()
        watched.wait("!document.getElementById('gg-problem').hidden")
        assert "保存被拒绝" in page.inner_text("#gg-problem")
        assert page.evaluate("GridGovPage.problemLayer.getLayers().length") > 0
        watched.screenshot(artifacts, "editor-units-plan-refused.png")
        return None
    watched.screenshot(artifacts, "editor-units-proposal.png")
    plan_id: int = made.value.json()["id"]
    return plan_id


def test_planner_gets_no_unit_mode(
    browser: Browser, live_url: str, township: str, planner_token: str
) -> None:
    watched = open_page(browser, live_url, "/editor", token=planner_token)
    page = watched.page
    assert page.evaluate("GridGov.config.gridEditable") is True
    assert page.evaluate("GridGov.config.units.kinds") == []
    assert page.locator("#gg-layer").count() == 0
    assert page.locator("#gg-retire").count() == 0
    assert page.evaluate("GridGovPage.units") is None
    watched.assert_clean()


def split_merge_and_retire(watched: Watched, target: str, pair: Pair, retired: str) -> None:
    """Three pending edits made with the mouse: ``target`` split by a line drawn west to east
    through its middle, the pair merged, ``retired`` retired."""
    page = watched.page
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


def test_police_split_merge_and_retire_units(
    browser: Browser,
    live_url: str,
    live_auth: dict[str, str],
    engine: Engine,
    township: str,
    police_token: str,
    artifacts: Path,
) -> None:
    pair = area_pairs(engine, township)[-1]
    with engine.connect() as conn:
        rows = (
            conn.execute(
                text(
                    "SELECT code FROM police_unit WHERE level = 'policing_area' "
                    "AND township_code = :t AND code NOT IN (:a, :b) ORDER BY ST_Area(geom) DESC"
                ),
                {"t": township, "a": pair.code, "b": pair.neighbour},
            )
            .scalars()
            .all()
        )
        station: str = conn.execute(
            text("SELECT parent_code FROM police_unit WHERE code = :c"), {"c": pair.code}
        ).scalar_one()
        before = set(
            conn.execute(
                text("SELECT code FROM police_unit WHERE parent_code = :s"), {"s": station}
            ).scalars()
        )
    target, retired = rows[0], rows[-1]
    watched = open_page(browser, live_url, "/editor", token=police_token)
    page = watched.page
    landed(watched, township)
    count = page.evaluate("GridGovPage.state.order.length")

    split_merge_and_retire(watched, target, pair, retired)
    pending = page.inner_text("#gg-pending")
    assert "拆分" in pending
    assert "合并" in pending
    assert "撤销" in pending

    page.fill("#gg-reason", "拆分、合并、撤并警务区（页面测试）")
    page.click("#gg-save")
    watched.wait("GridGovPage.state.saved.length > 0 || GridGovPage.state.refusals > 0", 60_000)
    assert page.evaluate("GridGovPage.state.refusals") == 0, page.inner_text("#gg-problem")
    watched.wait(f"({LOADED}) && GridGovPage.state.ops.length === 0", timeout=60_000)
    watched.screenshot(artifacts, "editor-units-split-merge.png")
    assert "（无）" in page.inner_text("#gg-pending")
    assert page.locator("#gg-measures-box").is_hidden()
    watched.assert_clean()
    # one more (split), one fewer (merge), one fewer (retire)
    assert page.evaluate("GridGovPage.state.order.length") == count - 1
    with engine.connect() as conn:
        after = set(
            conn.execute(
                text("SELECT code FROM police_unit WHERE parent_code = :s"), {"s": station}
            ).scalars()
        )
    gone = {max(pair.code, pair.neighbour), retired}
    assert before - after == gone
    assert len(after - before) == 1  # the split's new piece
    for code in gone:
        answer = httpx2.get(f"{live_url}/units/police_unit/{code}", headers=live_auth)
        assert answer.status_code == 404
        assert unit_versions(live_url, live_auth, code)[-1]["valid_to"] is not None
