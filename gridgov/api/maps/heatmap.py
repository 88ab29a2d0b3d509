"""``/map/heatmap``: incident heat for supervisors (kernel heat or H3 hexagons), filters,
per-grid counts on hover and a trend chart of the chosen area."""

from __future__ import annotations

from html import escape
from typing import Final

from gridgov.api.maps import base, layers
from gridgov.layers.registry import Registry
from gridgov.layers.spec import Column
from gridgov.settings import Settings

TITLE: Final = "事件热力 · gridgov 网格化服务管理 (incident heatmap)"
# H3 resolution by the area shown: about a thousand cells at most whatever the area
# (res 7 ≈ 5 km², 8 ≈ 0.7 km², 9 ≈ 0.1 km², 10 ≈ 0.015 km²).
RESOLUTION_BY_AREA: Final = {"city": 7, "district": 8, "township": 9, "community": 10}
RESOLUTIONS: Final = (7, 8, 9, 10)
# Colour ramp of the hexagon classes (light → dark: few → many incidents).
RAMP: Final = ("#ffffb2", "#fed976", "#feb24c", "#fd8d3c", "#f03b20", "#bd0026")

PANEL: Final = """
<div id="gg-panel" class="gg-panel">
  <h1>网格化服务管理 · 事件热力</h1>
  {nav}
  <h2>区划选择 (area)</h2>
  <div id="gg-area"></div>
  <h2>筛选 (filters)</h2>
  <label class="gg-field">起始日期 <input type="date" id="gg-from"></label>
  <label class="gg-field">截止日期 <input type="date" id="gg-to"></label>
  <label class="gg-field">事件类别 {category}</label>
  <label class="gg-field">办理状态 {status}</label>
  <label class="gg-field">仅看逾期 (overdue) <input type="checkbox" id="gg-overdue"></label>
  <h2>显示方式 (display)</h2>
  <div class="gg-field" role="radiogroup">
    <label><input type="radio" name="gg-mode" value="hex" checked> H3 六边形</label>
    <label><input type="radio" name="gg-mode" value="heat"> 核密度热力</label>
  </div>
  <label class="gg-field">六边形分辨率 {resolution}</label>
  <div id="gg-summary" class="gg-note"></div>
  <div id="gg-scale" class="gg-scale"></div>
  <p class="gg-note">放大到 12 级以上，鼠标悬停网格可查看该网格事件数。
    Zoom to 12+ and hover a grid for its counts.</p>
  <h2>事件趋势 (trend) <select id="gg-interval">
    <option value="day">按日</option><option value="week">按周</option>
    <option value="month" selected>按月</option></select></h2>
  <div id="gg-chart" class="gg-chart"></div>
  <div id="gg-status" role="status"></div>
  <div id="gg-error" role="alert" hidden></div>
</div>
"""


def _select(element_id: str, column: Column) -> str:
    options = "".join(
        f'<option value="{escape(c.value)}">{escape(c.title_zh)}</option>' for c in column.choices
    )
    return f'<select id="{element_id}"><option value="">全部</option>{options}</select>'


def _resolution_select() -> str:
    options = "".join(f'<option value="{r}">{r}</option>' for r in RESOLUTIONS)
    return f'<select id="gg-resolution"><option value="">自动</option>{options}</select>'


def page(settings: Settings, registry: Registry, synthetic: dict[str, bool]) -> str:
    incident = registry.get("incident")
    grid = registry.get("grid")
    panel = PANEL.format(
        nav=base.nav("/map/heatmap"),
        category=_select("gg-category", incident.column("category")),
        status=_select("gg-status-filter", incident.column("status")),
        resolution=_resolution_select(),
    )
    config = {
        **base.map_config(settings, synthetic),
        **base.api_urls(),
        "levels": layers.levels(),
        "incident": layers.layer_config(incident, synthetic.get("incident", False)),
        "grid": layers.layer_config(grid, synthetic.get("grid", False)),
        "resolutionByArea": RESOLUTION_BY_AREA,
        "ramp": list(RAMP),
    }
    return base.render_page(
        settings,
        title=TITLE,
        page="heatmap",
        panel=panel,
        config=config,
        plugins=(base.VECTORGRID_JS, base.HEAT_JS, base.CHART_JS),
    )
