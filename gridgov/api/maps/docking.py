"""``/map/docking`` (条例第六十二条): grids over department units, straddling grids with the
share of their area on each side, and a docking score per township."""

from __future__ import annotations

from html import escape
from typing import Final

from gridgov.api.maps import base, layers
from gridgov.layers import docking
from gridgov.layers.registry import Registry
from gridgov.settings import Settings

TITLE: Final = "网格对接 · gridgov 网格化服务管理 (grid docking)"
# Colours of the pieces of a straddling grid: the unit holding most of it, and the rest.
MAIN_PIECE: Final = "#fd8d3c"
OTHER_PIECE: Final = "#756bb1"
# Share labels are drawn from this zoom on (below it they would cover each other).
LABEL_ZOOM: Final = 13

PANEL: Final = """
<div id="gg-panel" class="gg-panel">
  <h1>网格化服务管理 · 网格对接</h1>
  {nav}
  <label class="gg-field">责任区类型 (units) {kinds}</label>
  <h2>区划选择 (area)</h2>
  <div id="gg-area"></div>
  <p class="gg-note">跨两个及以上责任区的网格按责任区分块着色，并标注各部分面积占比
    （{label_zoom} 级以上显示）；网格 {one_unit:.0%} 以上面积位于同一责任区即视为已对接。
    Grids straddling units are split by unit with each part's share of the grid.</p>
  <ul class="gg-legend" id="gg-docking-legend">
    <li><span class="gg-swatch" id="gg-unit-swatch"></span><span id="gg-unit-title"></span></li>
    <li><span class="gg-swatch" style="border-color:#1b9e77"></span>网格 (grid)</li>
    <li><span class="gg-swatch" style="border-color:#444;background:{main}"></span>
      跨区网格·主要部分</li>
    <li><span class="gg-swatch" style="border-color:#444;background:{other}"></span>
      跨区网格·其他部分</li>
  </ul>
  <div id="gg-summary" class="gg-note"></div>
  <h2>各镇街对接得分 (docking score)</h2>
  <p class="gg-note">得分 = 各网格位于其主要责任区的面积占比（按面积加权）×100；
    点击一行定位到该镇街。</p>
  <table class="gg-table" id="gg-townships">
    <thead><tr><th>镇街</th><th title="现行网格数">网格</th>
      <th title="位于单一责任区的网格占比">对接率</th>
      <th title="跨两个及以上责任区的网格数">跨区</th><th>得分</th></tr></thead>
    <tbody></tbody>
  </table>
  <div id="gg-status" role="status"></div>
  <div id="gg-error" role="alert" hidden></div>
</div>
"""


def page(settings: Settings, registry: Registry, synthetic: dict[str, bool]) -> str:
    kinds = docking.unit_kinds(registry)
    options = "".join(
        f'<option value="{escape(k.layer)}/{escape(k.level)}"'
        + (" selected" if k.level == "policing_area" else "")
        + f">{escape(k.title_zh)}</option>"
        for k in kinds
    )
    panel = PANEL.format(
        nav=base.nav("/map/docking"),
        kinds=f'<select id="gg-unit-kind">{options}</select>',
        label_zoom=LABEL_ZOOM,
        one_unit=docking.ONE_UNIT_SHARE,
        main=MAIN_PIECE,
        other=OTHER_PIECE,
    )
    unit_layers = {k.layer for k in kinds}
    config = {
        **base.map_config(settings, synthetic),
        **base.api_urls(),
        "levels": layers.levels(),
        "kinds": [
            {
                "layer": k.layer,
                "level": k.level,
                "title": k.title_zh,
                # Filter the unit layer's features by level only where it has levels.
                "byLevel": any(c.name == "level" for c in registry.get(k.layer).columns),
            }
            for k in kinds
        ],
        "unitLayers": {
            spec.id: layers.layer_config(spec, synthetic.get(spec.id, False))
            for spec in registry
            if spec.id in unit_layers
        },
        "grid": layers.layer_config(registry.get("grid"), synthetic.get("grid", False)),
        "colours": {"main": MAIN_PIECE, "other": OTHER_PIECE},
        "labelZoom": LABEL_ZOOM,
        "geojsonLimit": layers.GEOJSON_LIMIT,
    }
    return base.render_page(
        settings,
        title=TITLE,
        page="docking",
        panel=panel,
        config=config,
        plugins=(base.VECTORGRID_JS,),
    )
