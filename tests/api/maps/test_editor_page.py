"""``/editor`` in real Chromium, offline, on the committed demo city: a township planner
drags a shared boundary (a real mouse drag on Geoman's middle marker of a shared edge),
sees the measures change, saves a boundary move with a reason and finds the new version
through the API; an overlapping edit is refused and drawn in red; undo / redo; a viewer
gets no tools."""

from __future__ import annotations

from dataclasses import dataclass
from itertools import pairwise
from pathlib import Path
from typing import Any

import httpx2
import shapely
from playwright.sync_api import Browser, Page
from shapely.geometry import Point, shape
from sqlalchemy import Engine, text

from tests.api.maps.pages import Watched, open_page

LOADED = (
    "window.GridGovPage && GridGovPage.state.before && "
    "GridGovPage.state.ready === GridGovPage.state.loads && GridGov.idle()"
)
DRAG_PX = 30
# Grids lying in their community: some demo grids spill over its edge by a few m², which
# the server refuses for any edit that touches them (the spill is not the page's business).
# Same for grids overlapping a neighbour already (by more than float dust).
INSIDE = (
    "ST_Area(ST_Difference(g.geom, c.geom)::geography) < 0.5 AND NOT EXISTS ("
    "SELECT FROM grid o WHERE o.valid_to IS NULL AND o.code <> g.code "
    "AND ST_Relate(o.geom, g.geom, '2********') "
    "AND ST_Area(ST_Intersection(o.geom, g.geom)::geography) > 0.01)"
)
# Chromium logs every answer >= 400 as a console error: the refusals the test provokes.
REFUSED_LOG = "the server responded with a status of"


@dataclass(frozen=True)
class Pair:
    """Two grids of one community sharing an edge segment (both ends are vertices of both
    grids) whose middle no other grid and no community edge touches: dragging Geoman's
    middle marker of that segment moves only their common boundary. (The demo's grids
    share every vertex along their common edges, so the segment's ends are shared too.)"""

    community: str
    code: str
    neighbour: str
    start: tuple[float, float]
    end: tuple[float, float]


MIN_SEGMENT_DEG = 5e-4  # about 50 m: the middle marker stands well apart from the vertices


def shared_pairs(engine: Engine, township: str) -> list[Pair]:
    with engine.connect() as conn:
        rows = conn.execute(
            text(
                "SELECT g.community_code, g.code, ST_AsBinary(g.geom), ST_AsBinary(c.geom) "
                "FROM grid g JOIN community c ON c.code = g.community_code "
                "WHERE g.valid_to IS NULL AND g.township_code = :t "
                f"AND {INSIDE} ORDER BY g.code"
            ),
            {"t": township},
        ).all()
    by_community: dict[str, dict[str, Any]] = {}
    boundary: dict[str, Any] = {}
    for community, code, geom, community_geom in rows:
        by_community.setdefault(community, {})[code] = shapely.from_wkb(geom)
        boundary[community] = shapely.from_wkb(community_geom).boundary
    pairs = []
    for community, grids in by_community.items():
        pairs += pairs_in(community, grids, boundary[community])
    return pairs


def pairs_in(group: str, grids: dict[str, Any], edge: Any) -> list[Pair]:
    """The shared segments of ``grids`` (code → shape) whose middle lies away from the
    container's boundary ``edge`` (grids of a community, or units of a station)."""
    pairs = []
    vertices = {
        code: {tuple(p) for p in shapely.get_coordinates(g.boundary)} for code, g in grids.items()
    }
    for code, grid in grids.items():
        if len(shapely.get_parts(grid)) != 1:
            continue
        ring = [tuple(p) for p in shapely.get_coordinates(shapely.get_parts(grid)[0].exterior)]
        best: dict[str, Pair] = {}
        for start, end in pairwise(ring):
            length = Point(start).distance(Point(end))
            middle = Point((start[0] + end[0]) / 2, (start[1] + end[1]) / 2)
            if length < MIN_SEGMENT_DEG or edge.distance(middle) < 1e-4:
                continue
            owners = [c for c, g in grids.items() if g.boundary.distance(middle) < 1e-9]
            if len(owners) != 2:
                continue
            other = owners[0] if owners[1] == code else owners[1]
            if other <= code or not {start, end} <= vertices[other]:
                continue
            kept = best.get(other)
            if kept is None or length > Point(kept.start).distance(Point(kept.end)):
                best[other] = Pair(group, code, other, start, end)
        pairs += [best[o] for o in sorted(best)]
    return pairs


def open_community(watched: Watched, community: str) -> None:
    page = watched.page
    watched.wait("document.querySelector('#gg-area-district').options.length > 1")
    codes = [community[:6], community[:9], community]
    page.evaluate("codes => GridGovPage.selector.choose(codes)", codes)
    watched.wait(f"({LOADED}) || GridGov.errors.length", timeout=60_000)
    assert page.evaluate("GridGov.errors") == []
    assert page.evaluate("GridGovPage.state.area.code") == community


def draw_split_line(watched: Watched, code: str, right_padding: int) -> None:
    """Split ``code`` with the mouse: a line drawn west to east through its middle, past
    both edges (the map first fitted to it, ``right_padding`` px kept clear of panels)."""
    page = watched.page
    line = page.evaluate(
        """([code, right]) => { const m = GridGovPage.map;
          const l = GridGovPage.state.grids[code].layer;
          m.fitBounds(l.getBounds(), {animate: false, paddingTopLeft: [80, 80],
            paddingBottomRight: [right, 80]});
          const b = l.getBounds(), box = m.getContainer().getBoundingClientRect();
          const w = m.latLngToContainerPoint(b.getSouthWest()).x - 30;
          const e = m.latLngToContainerPoint(b.getNorthEast()).x + 30;
          const y = m.latLngToContainerPoint(b.getCenter()).y;
          return [w + box.left, e + box.left, y + box.top]; }""",
        [code, right_padding],
    )
    page.click("#gg-split")
    page.mouse.click(line[0], line[2])
    page.mouse.click((line[0] + line[1]) / 2, line[2] + 3)
    page.mouse.dblclick(line[1], line[2])


def vertex_and_target(watched: Watched, pair: Pair) -> dict[str, float]:
    """Screen position of the middle marker of the shared segment (Geoman puts it at the
    segment's middle in pixels) and a point DRAG_PX from it towards the neighbour."""
    found: dict[str, float] = watched.page.evaluate(
        """([a, b, neighbour, px]) => {
          const s = GridGovPage.state, m = GridGovPage.map;
          const box = m.getContainer().getBoundingClientRect();
          const pa = m.latLngToContainerPoint(GridGov.datum.latLng(a[0], a[1]));
          const pb = m.latLngToContainerPoint(GridGov.datum.latLng(b[0], b[1]));
          const v = L.point((pa.x + pb.x) / 2, (pa.y + pb.y) / 2);
          const c = m.latLngToContainerPoint(s.grids[neighbour].layer.getBounds().getCenter());
          const d = Math.hypot(c.x - v.x, c.y - v.y);
          const t = L.point(v.x + px * (c.x - v.x) / d, v.y + px * (c.y - v.y) / d);
          const ll = m.containerPointToLatLng(t);
          return {x: v.x + box.left, y: v.y + box.top, tx: t.x + box.left, ty: t.y + box.top,
                  lon: ll.lng, lat: ll.lat};
        }""",
        [list(pair.start), list(pair.end), pair.neighbour, DRAG_PX],
    )
    return found


def drag(watched: Watched, at: dict[str, float]) -> None:
    """A real mouse drag, starting on the Geoman middle marker of the shared segment."""
    page = watched.page
    marker = page.evaluate(
        "([x, y]) => { const e = document.elementFromPoint(x, y); return e && e.className; }",
        [at["x"], at["y"]],
    )
    assert "marker-icon-middle" in str(marker), marker
    mouse_drag(page, at)


def mouse_drag(page: Page, at: dict[str, float]) -> None:
    """Press at (x, y), move to (tx, ty) in ten steps as a hand would, release."""
    page.mouse.move(at["x"], at["y"])
    page.mouse.down()
    for step in range(1, 11):
        page.mouse.move(
            at["x"] + (at["tx"] - at["x"]) * step / 10, at["y"] + (at["ty"] - at["y"]) * step / 10
        )
        page.wait_for_timeout(40)
    page.mouse.up()


def start_editing(watched: Watched, pair: Pair, follow: bool) -> None:
    page = watched.page
    page.click(f"#gg-grids tbody tr[data-code='{pair.code}']")
    if follow:
        page.click(f"#gg-grids tbody tr[data-code='{pair.neighbour}']", modifiers=["Shift"])
        page.check("#gg-follow")
    selected = [pair.code, pair.neighbour] if follow else [pair.code]
    watched.wait(f"{selected}.every(c => GridGovPage.state.grids[c].etag)")
    page.evaluate(
        """([a, b]) => { const s = GridGovPage.state;
          GridGovPage.map.fitBounds(s.grids[a].layer.getBounds().extend(s.grids[b].layer.getBounds()),
            {animate: false, paddingTopLeft: [40, 40], paddingBottomRight: [420, 40]}); }""",
        [pair.code, pair.neighbour],
    )
    page.click("#gg-edit")
    watched.wait("document.querySelectorAll('.marker-icon').length > 0")


def measured(watched: Watched, count: int) -> None:
    watched.wait(
        f"GridGovPage.state.measured > {count} && !GridGovPage.state.measuring && GridGov.idle()",
        timeout=60_000,
    )


def test_planner_moves_a_boundary_and_an_overlap_is_refused(
    browser: Browser,
    live_url: str,
    live_auth: dict[str, str],
    engine: Engine,
    township: str,
    planner_token: str,
    artifacts: Path,
) -> None:
    pairs = shared_pairs(engine, township)
    assert len(pairs) >= 2
    first = pairs[0]
    # a second pair elsewhere in the same community, for the refused edit
    second = next(
        p
        for p in pairs[1:]
        if p.community == first.community
        and {p.code, p.neighbour}.isdisjoint({first.code, first.neighbour})
    )
    before = httpx2.get(f"{live_url}/grids/{first.code}/versions", headers=live_auth).json()

    watched = open_page(browser, live_url, "/editor", token=planner_token)
    page = watched.page
    assert page.title().startswith("网格编辑")
    assert page.evaluate("GridGov.config.canEdit") is True
    # The app serves plans: the save target offers "live" and the planner's draft plans.
    watched.wait("!document.getElementById('gg-target-field').hidden")
    assert page.locator("#gg-target option[value='live']").count() == 1
    open_community(watched, first.community)
    assert page.locator("#gg-grids tbody tr").count() == page.evaluate(
        "GridGovPage.state.order.length"
    )
    watched.screenshot(artifacts, "editor-community.png")

    # 1. move the boundary between the pair: drag the shared vertex into the neighbour
    start_editing(watched, first, follow=True)
    at = vertex_and_target(watched, first)
    a_geom = shape(before["features"][-1]["geometry"])
    n_geom = shape(
        httpx2.get(f"{live_url}/grids/{first.neighbour}", headers=live_auth).json()["geometry"]
    )
    assert n_geom.contains(Point(at["lon"], at["lat"]))  # the target lies in the neighbour
    done = page.evaluate("GridGovPage.state.measured")
    drag(watched, at)
    watched.wait("GridGovPage.state.ops.length === 1")
    measured(watched, done)
    op = page.evaluate("GridGovPage.state.ops[0]")
    assert op["op"] == "geometry"
    assert op["code"] == first.code
    assert op["neighbour"] == first.neighbour
    area = page.locator(f"#gg-measures td[data-code='{first.code}'][data-measure='area_km2']")
    assert area.get_attribute("data-after") not in ("", area.get_attribute("data-before"))
    watched.screenshot(artifacts, "editor-dragged.png")
    watched.assert_clean()

    page.fill("#gg-reason", "按道路调整共用边界（页面测试）")
    page.click("#gg-save")
    watched.wait("GridGovPage.state.saved.length > 0 || GridGovPage.state.refusals > 0", 60_000)
    assert page.evaluate("GridGovPage.state.refusals") == 0, page.inner_text("#gg-problem")
    watched.wait(LOADED, timeout=60_000)
    assert page.evaluate("GridGovPage.state.ops.length") == 0
    assert first.code in page.inner_text("#gg-saved")
    watched.screenshot(artifacts, "editor-saved.png")
    watched.assert_clean()

    after = httpx2.get(f"{live_url}/grids/{first.code}/versions", headers=live_auth).json()
    assert len(after["features"]) == len(before["features"]) + 1
    new = shape(after["features"][-1]["geometry"])
    assert after["features"][-1]["properties"]["valid_to"] is None
    assert new.symmetric_difference(shape(op["geometry"])).area < 1e-12
    assert not new.equals(a_geom)
    # one vertex was added, where the mouse let go (or within Geoman's snap distance)
    old_vertices = {tuple(p) for p in shapely.get_coordinates(a_geom)}
    new_vertices = {tuple(p) for p in shapely.get_coordinates(new)}
    assert old_vertices <= new_vertices
    added = sorted(new_vertices - old_vertices)
    assert len(added) == 1, added
    where = page.evaluate(
        """p => { const m = GridGovPage.map, box = m.getContainer().getBoundingClientRect();
          const q = m.latLngToContainerPoint(GridGov.datum.latLng(p[0], p[1]));
          return [q.x + box.left, q.y + box.top]; }""",
        list(added[0]),
    )
    snap = page.evaluate("GridGov.config.snapDistance")
    assert abs(where[0] - at["tx"]) <= snap + 1
    assert abs(where[1] - at["ty"]) <= snap + 1
    shown = page.evaluate(f"GridGovPage.state.grids['{first.code}'].props.version_id")
    assert shown == after["features"][-1]["properties"]["version_id"]

    # 2. the same kind of drag without the neighbour following: an overlap, refused
    page.click(f"#gg-grids tbody tr[data-code='{second.code}']")
    start_editing(watched, second, follow=False)
    at2 = vertex_and_target(watched, second)
    drag(watched, at2)
    watched.wait("GridGovPage.state.ops.length === 1")
    page.fill("#gg-reason", "越界测试")
    with page.expect_response(
        lambda r: f"/grids/{second.code}" in r.url and r.request.method == "PATCH"
    ) as answer:
        page.click("#gg-save")
    assert answer.value.status == 409
    watched.wait("GridGovPage.state.refusals === 1")
    assert "保存被拒绝" in page.inner_text("#gg-problem")
    assert page.evaluate("GridGovPage.problemLayer.getLayers().length") > 0
    red = page.locator(".leaflet-overlay-pane path[stroke='#d7191c']")
    assert red.count() > 0
    watched.screenshot(artifacts, "editor-refused.png")
    versions = httpx2.get(f"{live_url}/grids/{second.code}/versions", headers=live_auth).json()
    assert len(versions["features"]) == 1  # nothing was written
    assert versions["features"][0]["properties"]["valid_to"] is None

    # 3. undo puts the grid back, redo brings the edit again
    edited = page.evaluate("GridGovPage.state.ops[0].geometry")
    page.click("#gg-undo")
    assert page.evaluate("GridGovPage.state.ops.length") == 0
    base_now = page.evaluate(
        f"""(() => {{ const g = GridGovPage.state.grids['{second.code}'];
          return [g.base, g.layer.toGeoJSON(false).geometry]; }})()"""
    )
    assert shape(base_now[1]).symmetric_difference(shape(base_now[0])).area < 1e-14
    page.click("#gg-redo")
    assert page.evaluate("GridGovPage.state.ops.length") == 1
    assert shape(page.evaluate("GridGovPage.state.ops[0].geometry")).equals(shape(edited))
    page.click("#gg-discard")
    assert page.evaluate("GridGovPage.state.ops.length") == 0
    # only the refusal was an error: its 409 (and Chromium's log line of it)
    assert all(" 409 " in e or e.startswith("409") for e in watched.http_errors), (
        watched.http_errors
    )
    assert all(REFUSED_LOG in e for e in watched.console_errors), watched.console_errors
    assert watched.blocked == []
    assert watched.failed == []


def test_planner_saves_into_a_plan(
    browser: Browser,
    live_url: str,
    live_auth: dict[str, str],
    engine: Engine,
    township: str,
    planner_token: str,
    artifacts: Path,
) -> None:
    pair = shared_pairs(engine, township)[-1]
    auth = {"Authorization": f"Bearer {planner_token}"}
    made = httpx2.post(
        f"{live_url}/plans",
        json={"name": "页面测试方案", "community_code": pair.community, "reason": "试画"},
        headers=auth,
    )
    assert made.status_code == 201, made.text
    plan_id = made.json()["id"]
    live_before = httpx2.get(f"{live_url}/grids/{pair.code}/versions", headers=live_auth).json()

    watched = open_page(browser, live_url, "/editor", token=planner_token)
    page = watched.page
    open_community(watched, pair.community)
    watched.wait(f"document.querySelector(\"#gg-target option[value='{plan_id}']\") !== null")
    page.select_option("#gg-target", str(plan_id))
    watched.wait(f"({LOADED}) && GridGovPage.state.target === '{plan_id}'", timeout=60_000)
    start_editing(watched, pair, follow=True)
    at = vertex_and_target(watched, pair)
    drag(watched, at)
    watched.wait("GridGovPage.state.ops.length === 1")
    page.fill("#gg-reason", "方案内调整共用边界（页面测试）")
    page.click("#gg-save")
    watched.wait("GridGovPage.state.saved.length > 0 || GridGovPage.state.refusals > 0", 60_000)
    assert page.evaluate("GridGovPage.state.refusals") == 0, page.inner_text("#gg-problem")
    watched.wait(LOADED, timeout=60_000)
    watched.screenshot(artifacts, "editor-plan.png")
    watched.assert_clean()

    in_plan = httpx2.get(f"{live_url}/plans/{plan_id}/grids", headers=auth).json()["features"]
    changes = {f["properties"]["code"]: f["properties"]["change"] for f in in_plan}
    assert changes[pair.code] == "changed"
    assert changes[pair.neighbour] == "changed"
    planned = next(f for f in in_plan if f["properties"]["code"] == pair.code)
    live_after = httpx2.get(f"{live_url}/grids/{pair.code}/versions", headers=live_auth).json()
    # Live grids are untouched: the edit went into the plan only.
    assert len(live_after["features"]) == len(live_before["features"])
    live_geom = shape(live_after["features"][-1]["geometry"])
    assert not shape(planned["geometry"]).equals(live_geom)


def test_viewer_gets_no_edit_tools(
    browser: Browser, live_url: str, township: str, viewer_token: str, artifacts: Path
) -> None:
    watched = open_page(browser, live_url, "/editor", token=viewer_token)
    page = watched.page
    assert page.evaluate("GridGov.config.canEdit") is False
    assert page.locator("#gg-edit").count() == 0
    assert page.locator("#gg-save").count() == 0
    assert "无权编辑" in page.inner_text("#gg-readonly")
    community = shared_community(watched, township)
    open_community(watched, community)
    first = page.evaluate("GridGovPage.state.order[0]")
    page.click(f"#gg-grids tbody tr[data-code='{first}']")
    watched.wait(f"GridGovPage.state.grids['{first}'].etag")
    assert page.locator(".marker-icon").count() == 0
    watched.screenshot(artifacts, "editor-viewer.png")
    watched.assert_clean()


def shared_community(watched: Watched, township: str) -> str:
    """The first community of the township, as the selector lists it."""
    watched.wait("document.querySelector('#gg-area-district').options.length > 1")
    watched.page.evaluate("codes => GridGovPage.selector.choose(codes)", [township[:6], township])
    watched.wait("document.querySelector('#gg-area-community').options.length > 1")
    code: str = watched.page.evaluate(
        "document.querySelector('#gg-area-community').options[1].value"
    )
    return code


def test_planner_splits_by_a_drawn_line_and_merges(
    browser: Browser,
    live_url: str,
    live_auth: dict[str, str],
    engine: Engine,
    township: str,
    planner_token: str,
    artifacts: Path,
) -> None:
    pair = shared_pairs(engine, township)[-1]
    with engine.connect() as conn:
        target: str = conn.execute(
            text(
                "SELECT g.code FROM grid g JOIN community c ON c.code = g.community_code "
                "WHERE g.valid_to IS NULL AND g.community_code = :c "
                f"AND g.code NOT IN (:a, :b) AND {INSIDE} "
                "ORDER BY ST_Area(g.geom) DESC LIMIT 1"
            ),
            {"c": pair.community, "a": pair.code, "b": pair.neighbour},
        ).scalar_one()
        last_code: str = conn.execute(
            text("SELECT max(code) FROM grid WHERE community_code = :c"), {"c": pair.community}
        ).scalar_one()
    history = f"{live_url}/grids/{target}/versions"
    versions = len(httpx2.get(history, headers=live_auth).json()["features"])
    watched = open_page(browser, live_url, "/editor", token=planner_token)
    page = watched.page
    open_community(watched, pair.community)
    grids = page.evaluate("GridGovPage.state.order.length")

    # split: a line drawn with the mouse across the grid, west to east through its middle
    page.click(f"#gg-grids tbody tr[data-code='{target}']")
    watched.wait(f"GridGovPage.state.grids['{target}'].etag")
    draw_split_line(watched, target, right_padding=460)
    watched.wait("GridGovPage.state.ops.length === 1")
    assert page.evaluate("GridGovPage.state.ops[0].op") == "split"
    assert "拆分" in page.inner_text("#gg-pending")

    # merge: two adjacent grids selected, one pending edit; the preview has one grid fewer
    done = page.evaluate("GridGovPage.state.measured")
    page.click(f"#gg-grids tbody tr[data-code='{pair.code}']")
    page.click(f"#gg-grids tbody tr[data-code='{pair.neighbour}']", modifiers=["Shift"])
    watched.wait(f"GridGovPage.state.grids['{pair.neighbour}'].etag")
    page.click("#gg-merge")
    watched.wait("GridGovPage.state.ops.length === 2")
    measured(watched, done)
    assert page.evaluate("GridGovPage.state.after.grids.length") == grids - 1
    watched.screenshot(artifacts, "editor-split-merge.png")

    page.fill("#gg-reason", "拆分大网格、合并小网格（页面测试）")
    page.click("#gg-save")
    watched.wait("GridGovPage.state.saved.length > 0 || GridGovPage.state.refusals > 0", 60_000)
    assert page.evaluate("GridGovPage.state.refusals") == 0, page.inner_text("#gg-problem")
    watched.wait(LOADED, timeout=60_000)
    watched.assert_clean()
    assert page.evaluate("GridGovPage.state.order.length") == grids  # one more, one fewer
    created = f"{pair.community}{int(last_code[-3:]) + 1:03d}"
    assert httpx2.get(f"{live_url}/grids/{created}", headers=live_auth).status_code == 200
    assert len(httpx2.get(history, headers=live_auth).json()["features"]) == versions + 1
    retired = max(pair.code, pair.neighbour)
    assert httpx2.get(f"{live_url}/grids/{retired}", headers=live_auth).status_code == 404
