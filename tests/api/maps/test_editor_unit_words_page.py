"""``/editor`` speaks of what it edits, in real Chromium on the committed demo city: in
grid mode the tools say 网格; in each unit mode (police stations and policing areas,
urban-management units, emergency units) no visible text of a control, hint, option,
status or message says 网格 but the explicit allow-list below, and the layer's own word
(警务单元 / 城管单元 / 应急单元, 单元 for a neighbour) is there instead."""

from __future__ import annotations

from pathlib import Path

from playwright.sync_api import Browser
from sqlalchemy import Engine, text

from tests.api.maps.pages import Watched, open_page
from tests.api.maps.test_editor_page import LOADED, mouse_drag

# Where 网格 is right in unit mode: the product's name, the switch back to grid mode, the
# emergency layer's registered name (an option of the layer selector, as on every map),
# the grids beneath (the legend of the thin green lines) and the docking with them.
ALLOWED = (
    "网格化服务管理",
    "网格 (grids)",
    "应急网格",
    "网格为细绿线，仅供对照",
    "由整网格组成的边界",
    "与网格的对接情况",
)
# Whole parts that are about grids, not about what is edited: the links to the other
# pages, the selected unit's docking with the grids, and the plan review tools of
# editor_plans.js (compare, proposals: the grid plan tools).
SKIPPED = (
    "nav.gg-nav",
    "#gg-unit-docking",
    "#gg-unit-propose",
    "#gg-unit-proposal",
    "#gg-compare-section",
    "#gg-propose-section",
    "#gg-review-box",
)
# Every visible text node and the title / placeholder of every visible element; options
# of a visible select count as visible.
SHOWN = """(skipped) => {
  const out = [];
  const skip = el => skipped.some(s => el.closest(s));
  const seen = el => el.tagName === 'OPTION' ? seen(el.closest('select')) :
    el.checkVisibility({visibilityProperty: true});
  const walk = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
  for (let n = walk.nextNode(); n; n = walk.nextNode()) {
    const el = n.parentElement, t = n.textContent.trim();
    const code = el.tagName === 'SCRIPT' || el.tagName === 'STYLE';
    if (t && !code && !skip(el) && seen(el)) out.push(t);
  }
  document.querySelectorAll('[title], [placeholder]').forEach(el => {
    if (skip(el) || !seen(el)) return;
    ['title', 'placeholder'].forEach(a => {
      if (el.getAttribute(a)) out.push(el.getAttribute(a));
    });
  });
  return out;
}"""
KINDS = {
    "police_unit/station": "警务单元",
    "police_unit/policing_area": "警务单元",
    "urban_unit/urban_unit": "城管单元",
    "emergency_unit/emergency_unit": "应急单元",
}


def shown(watched: Watched) -> list[str]:
    texts: list[str] = watched.page.evaluate(SHOWN, list(SKIPPED))
    return texts


def saying_grid(texts: list[str]) -> list[str]:
    """The texts that say 网格 once the allowed phrases are taken out."""
    found = []
    for t in texts:
        rest = t
        for phrase in ALLOWED:
            rest = rest.replace(phrase, "")
        if "网格" in rest:
            found.append(t)
    return found


def township_of_every_layer(engine: Engine) -> str:
    """The first township holding policing areas, urban and emergency units."""
    with engine.connect() as conn:
        code: str = conn.execute(
            text(
                "SELECT min(p.township_code) FROM police_unit p WHERE p.level = 'policing_area' "
                "AND EXISTS (SELECT FROM urban_unit u WHERE u.township_code = p.township_code) "
                "AND EXISTS (SELECT FROM emergency_unit e "
                "WHERE e.township_code = p.township_code)"
            )
        ).scalar_one()
    return code


def open_on_every_layer(browser: Browser, url: str, token: str, engine: Engine) -> Watched:
    """The editor as an admin, opened on the township of every unit layer, in grid mode."""
    township = township_of_every_layer(engine)
    watched = open_page(browser, url, "/editor", token=token)
    watched.wait("document.querySelector('#gg-area-district').options.length > 1")
    watched.page.evaluate("codes => GridGovPage.selector.choose(codes)", [township[:6], township])
    watched.wait(f"({LOADED}) && GridGovPage.state.area.code === '{township}'", timeout=60_000)
    return watched


def test_unit_modes_speak_of_units(
    browser: Browser, live_url: str, live_token: str, engine: Engine, artifacts: Path
) -> None:
    watched = open_on_every_layer(browser, live_url, live_token, engine)
    page = watched.page

    # grid mode: the grid words, as before
    grid = "\n".join(shown(watched))
    for phrase in (
        "与相邻网格重叠时",
        "另一所选网格随之调整",
        "从相邻网格划入",
        "现行网格（直接生效）",
    ):
        assert phrase in grid, phrase
    assert page.get_attribute("#gg-split", "title") == "在所选网格上画一条线将其拆分"
    assert page.inner_text("h1") == "网格化服务管理 · 网格编辑"
    assert page.title().startswith("网格编辑 · gridgov")

    for mode, word in KINDS.items():
        page.select_option("#gg-layer", mode)
        watched.wait(f"({LOADED}) && GridGovPage.unitState.mode === '{mode}'", timeout=60_000)
        first = page.evaluate("GridGovPage.state.order[0]")
        assert first, f"no {mode} in the township"
        # a unit selected (its tools on), then split started: the drawing hint
        page.click(f"#gg-grids tbody tr[data-code='{first}']")
        watched.wait(f"GridGovPage.state.grids['{first}'].etag")
        page.click("#gg-split")
        status = page.inner_text("#gg-status")
        assert status.startswith(f"在{word} {first} 上画线"), status
        texts = shown(watched)
        assert saying_grid(texts) == [], (mode, saying_grid(texts))
        joined = "\n".join(texts)
        assert "与相邻单元重叠时" in joined
        assert "另一所选单元随之调整" in joined
        assert "现行单元（直接生效）" in joined
        assert page.get_attribute("#gg-split", "title") == f"在所选{word}上画一条线将其拆分"
        assert page.inner_text("h1") == f"网格化服务管理 · {word}编辑"
        assert page.title().startswith(f"{word}编辑 · gridgov"), page.title()
        page.evaluate("GridGovPage.map.pm.disableDraw()")  # Escape: no split
        watched.wait("!GridGovPage.state.splitting")
        # a pending retire, then undone: the pending list and the tools say units too
        page.click("#gg-retire")
        watched.wait("GridGovPage.state.ops.length === 1")
        assert saying_grid(shown(watched)) == []
        page.click("#gg-undo")
        watched.wait("GridGovPage.state.ops.length === 0")
    watched.screenshot(artifacts, "editor-unit-words.png")

    # and back to grids: the grid words again
    page.select_option("#gg-layer", "grid")
    watched.wait(f"({LOADED}) && GridGovPage.unitState.mode === 'grid'", timeout=60_000)
    back = "\n".join(shown(watched))
    assert "与相邻网格重叠时" in back
    assert "现行网格（直接生效）" in back
    assert page.get_attribute("#gg-split", "title") == "在所选网格上画一条线将其拆分"
    assert page.title().startswith("网格编辑 · gridgov")
    watched.assert_clean()


CROSSED = """([code, i]) => {
  const s = GridGovPage.state, m = GridGovPage.map;
  const layer = s.grids[code].layer;
  let ring = layer.getLatLngs();
  while (Array.isArray(ring[0])) ring = ring[0];
  const box = m.getContainer().getBoundingClientRect();
  const v = m.latLngToContainerPoint(ring[i]);
  const c = m.latLngToContainerPoint(layer.getBounds().getCenter());
  // through the middle and as far again beyond it: the vertex's two edges cross the others
  const t = L.point(c.x + (c.x - v.x), c.y + (c.y - v.y));
  return {x: v.x + box.left, y: v.y + box.top, tx: t.x + box.left, ty: t.y + box.top,
          n: ring.length};
}"""


def drag_vertex_across(watched: Watched, code: str) -> None:
    """Drag one of ``code``'s own vertices (a Geoman vertex marker, not a middle one) with
    the mouse through the polygon's middle and beyond: its boundary crosses itself."""
    page = watched.page
    for i in range(page.evaluate(CROSSED, [code, 0])["n"]):
        at = page.evaluate(CROSSED, [code, i])
        found = page.evaluate(
            "([x, y]) => { const e = document.elementFromPoint(x, y); return e && e.className; }",
            [at["x"], at["y"]],
        )
        if "marker-icon" in str(found) and "middle" not in str(found):
            break
    else:
        raise AssertionError(f"no vertex marker of {code} on screen")
    mouse_drag(page, at)


def test_a_crossed_boundary_is_caught_in_the_browser_in_the_mode_s_words(
    browser: Browser, live_url: str, live_token: str, engine: Engine, artifacts: Path
) -> None:
    """本地检查: a vertex dragged across its own polygon is found before anything is sent —
    named in the mode's words, marked on the map, saving off — and undone cleanly."""
    watched = open_on_every_layer(browser, live_url, live_token, engine)
    page = watched.page
    for mode, word in (("grid", "网格"), ("urban_unit/urban_unit", "城管单元")):
        if mode != "grid":
            page.select_option("#gg-layer", mode)
            watched.wait(f"({LOADED}) && GridGovPage.unitState.mode === '{mode}'", timeout=60_000)
        code = page.evaluate(
            "(() => { const s = GridGovPage.state; return s.order.reduce((a, b) => "
            "s.grids[a].layer.getBounds().getNorthEast().distanceTo("
            "s.grids[a].layer.getBounds().getSouthWest()) >= "
            "s.grids[b].layer.getBounds().getNorthEast().distanceTo("
            "s.grids[b].layer.getBounds().getSouthWest()) ? a : b); })()"
        )
        page.click(f"#gg-grids tbody tr[data-code='{code}']")
        watched.wait(f"GridGovPage.state.grids['{code}'].etag")
        page.evaluate(
            "c => GridGovPage.map.fitBounds(GridGovPage.state.grids[c].layer.getBounds(), "
            "{animate: false, paddingTopLeft: [40, 40], paddingBottomRight: [420, 40]})",
            code,
        )
        page.click("#gg-edit")
        watched.wait("document.querySelectorAll('.marker-icon').length > 0")
        requests = len(watched.requests)
        drag_vertex_across(watched, code)
        watched.wait("GridGovPage.state.localProblems > 0", timeout=30_000)
        problem = page.inner_text("#gg-problem")
        assert f"本地检查：{word}边界自相交" in problem, problem
        assert page.locator("#gg-save").is_disabled()
        assert page.locator(".leaflet-overlay-pane path[stroke='#d7191c']").count() > 0
        if mode != "grid":
            watched.screenshot(artifacts, "editor-unit-local-check.png")
        # nothing was sent for it: no edit request (only the live measures may be read)
        sent = [u for u in watched.requests[requests:] if "/measures" not in u]
        assert not any(f"/{code}" in u for u in sent), sent
        page.click("#gg-undo")
        watched.wait("GridGovPage.state.localProblems === 0 && GridGovPage.state.ops.length === 0")
        page.click("#gg-edit")  # leave vertex editing before the next mode
    watched.assert_clean()
