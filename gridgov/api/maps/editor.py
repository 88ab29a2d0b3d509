"""``/editor`` (条例第六十二条): planners redraw grids in the browser.

The page lists the grids of a township or community, lets a planner drag vertices (Geoman,
snapping to the neighbours), split a grid by a drawn line, merge grids and move a shared
boundary; a panel shows the measures before and after (``POST /measures``) while editing,
and saving calls the grid editing API with the grids' ETags. Police (and admins) get the
same tools for the department units they may edit (the unit mode, :mod:`editor_units`).
Roles that edit neither get the same map without the tools.
"""

from __future__ import annotations

from typing import Any, Final

from gridgov.api.maps import base, editor_plans, editor_units, editor_words, layers
from gridgov.layers.docking import UnitKind
from gridgov.layers.registry import Registry
from gridgov.settings import Settings

# The browser tab's title; in unit mode editor.js fills it with the unit's words.
TITLE_TEMPLATE: Final = "{member}编辑 · gridgov 网格化服务管理 ({memberEn} editor)"
TITLE: Final = TITLE_TEMPLATE.format_map(editor_words.GRID)
# Milliseconds between the last change and the measures request (one request per pause).
MEASURES_DEBOUNCE_MS: Final = 400
# Pixels within which a dragged vertex snaps to a neighbour's vertex or edge.
SNAP_DISTANCE_PX: Final = 15

TOOLS: Final = """
  <h2>编辑工具 (tools)</h2>
  <div class="gg-tools">
    <button type="button" id="gg-edit" disabled
      data-gg-title="拖动所选{member}的顶点，自动吸附相邻{neighbour}">
      编辑顶点</button>
    <button type="button" id="gg-split" disabled data-gg-title="在所选{member}上画一条线将其拆分">
      画线拆分</button>
    <button type="button" id="gg-merge" disabled
      data-gg-title="合并所选的相邻{neighbour}（保留最小编码）">
      合并所选</button>
  </div>
  <label class="gg-check"><input type="checkbox" id="gg-follow" disabled>
    <span data-gg-text="移动共用边界：另一所选{neighbour}随之调整
      (the other selected {memberEn} follows)"></span></label>
  <label class="gg-field"><span data-gg-text="与相邻{neighbour}重叠时"></span>
    <select id="gg-overlap">
    <option value="refuse">拒绝 (refuse)</option>
    <option value="take" data-gg-text="从相邻{neighbour}划入 (take)"></option></select></label>
  <label class="gg-field">留下空隙时 <select id="gg-gap">
    <option value="refuse">拒绝 (refuse)</option>
    <option value="give" data-gg-text="退还给相邻{neighbour} (give)"></option></select></label>
  <div class="gg-tools">
    <button type="button" id="gg-undo" disabled title="Ctrl+Z">撤销</button>
    <button type="button" id="gg-redo" disabled title="Ctrl+Y">重做</button>
    <button type="button" id="gg-discard" disabled>放弃全部</button>
  </div>
  <h2>待保存的调整 (pending edits)</h2>
  <ol id="gg-pending" class="gg-pending"></ol>
  <label for="gg-reason">调整原因（必填） (reason)</label>
  <textarea id="gg-reason" rows="2" maxlength="2000"
    data-gg-placeholder="例如：按道路调整边界，均衡{member}工作量"></textarea>
  <button type="button" id="gg-save" class="gg-primary" disabled>保存</button>
"""

READ_ONLY: Final = """
  <p class="gg-note" id="gg-readonly">当前角色（{role}）无权编辑网格，仅可查看。
    Your role may not edit grids: read-only.</p>
"""

PANEL: Final = """
<div id="gg-panel" class="gg-panel">
  <h1 data-gg-text="网格化服务管理 · {{member}}编辑"></h1>
  {nav}
  <h2>区划选择 (area)</h2>
  <div id="gg-area"></div>
  {layers}
  <label class="gg-field" id="gg-target-field" hidden>保存到 (save to)
    <select id="gg-target">
      <option value="live" data-gg-text="现行{{neighbour}}（直接生效）"></option></select></label>
  <p class="gg-note" id="gg-select-note">点击网格选择，按住 Shift 点击可多选（合并、移动共用边界）。
    Click a grid to select it; Shift-click to select several.</p>
  <div class="gg-grid-list"><table class="gg-table" id="gg-grids">
    <thead><tr><th>网格编码</th><th>名称</th><th>户数</th></tr></thead>
    <tbody></tbody>
  </table></div>
  {tools}
  {units}
  {review}
  <div id="gg-problem" class="gg-problem" role="alert" hidden></div>
  <div id="gg-status" role="status"></div>
  <div id="gg-error" role="alert" hidden></div>
</div>
<div class="gg-info gg-float" id="gg-measures-box">
  <h4>测度：调整前 → 调整后 (measures, before → after)</h4>
  <div id="gg-measures" class="gg-note">选择镇街或村社区后显示。</div>
</div>
{box}"""


def page(
    settings: Settings,
    registry: Registry,
    synthetic: dict[str, bool],
    *,
    can_edit: bool,
    role_title: str,
    api_token: str | None,
    plans_url: str | None,
    can_propose: bool = False,
    unit_kinds: list[UnitKind] | None = None,
    home_area: list[str] | None = None,
) -> str:
    """The editor page. ``api_token`` is the session's own token: the cookie authenticates
    GETs only (see ``gridgov.api.auth``), and the script must POST the measures and, for
    editors, the edits. ``plans_url`` lists the draft plans the page may save into (and
    the plans to compare); ``can_propose`` adds the proposal tools (``editor_plans``).
    ``unit_kinds`` are the department unit kinds the account may edit: the unit mode
    (``editor_units``); an account that may not edit grids opens on the first of them."""
    kinds = unit_kinds or []
    tools = TOOLS if can_edit or kinds else READ_ONLY.format(role=role_title)
    # police land on their community policing areas, the level they align with grids
    first = next((k for k in kinds if k.level == "policing_area"), kinds[0] if kinds else None)
    start = "grid" if can_edit or first is None else f"{first.layer}/{first.level}"
    target = settings.grid_target_households
    review = (
        editor_plans.panel(can_propose=can_propose, target_households=target) if plans_url else ""
    )
    config: dict[str, Any] = {
        **base.map_config(settings, synthetic),
        **base.api_urls(),
        "levels": layers.levels(),
        "grid": layers.layer_config(registry.get("grid"), synthetic.get("grid", False)),
        "canEdit": can_edit or bool(kinds),
        "gridEditable": can_edit,
        "apiToken": api_token,
        "gridsUrl": "/grids",
        "plansUrl": plans_url,
        "measuresUrl": "/measures",
        "debounceMs": MEASURES_DEBOUNCE_MS,
        "snapDistance": SNAP_DISTANCE_PX,
        "maxVertices": settings.grid_max_vertices,
        # what the page calls grids: its templates' words in grid mode (editor_words)
        "words": editor_words.GRID,
        "titleTemplate": TITLE_TEMPLATE,
        "geojsonLimit": layers.GEOJSON_LIMIT,
        "review": editor_plans.config(can_propose=can_propose, target_households=target),
        # an account that lands on its units opens on its area (planners choose theirs)
        "units": editor_units.config(
            kinds, start=start, home=home_area if start != "grid" else None
        ),
    }
    return base.render_page(
        settings,
        title=TITLE,
        page="editor",
        panel=editor_words.worded(
            PANEL.format(
                nav=base.nav("/editor"),
                layers=editor_units.selector(kinds, grids=can_edit) if kinds else "",
                tools=tools,
                units=editor_units.SECTION if kinds else "",
                review=review,
                box=editor_plans.BOX,
            )
        ),
        config=config,
        plugins=(base.GEOMAN_JS, editor_plans.JS, editor_units.FIGURES_JS, editor_units.JS),
        plugin_css=(base.GEOMAN_CSS, editor_plans.CSS),
    )
