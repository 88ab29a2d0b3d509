"""``/map``: every layer of the registry, grouped, with legends, popups and an area selector."""

from __future__ import annotations

from typing import Final

from gridgov.api.maps import base, layers
from gridgov.layers.registry import Registry
from gridgov.settings import Settings

TITLE: Final = "综合地图 · gridgov 网格化服务管理 (overview map)"
# Switched on when the page opens: the pyramid and the hazards (a planner's first look).
DEFAULT_ON: Final = ("district", "township", "community", "grid", "hazard_zone")

PANEL: Final = """
<div id="gg-panel" class="gg-panel">
  <h1>网格化服务管理 · 综合地图</h1>
  {nav}
  <h2>区划选择 (area)</h2>
  <div id="gg-area"></div>
  <h2>图层 (layers)</h2>
  <div id="gg-layers"></div>
  <p class="gg-note">点击要素查看属性；灰色图层需放大后显示。
    Click a feature for its attributes; grey layers show when zoomed in.</p>
  <div id="gg-status" role="status"></div>
  <div id="gg-error" role="alert" hidden></div>
</div>
"""


def page(settings: Settings, registry: Registry, synthetic: dict[str, bool]) -> str:
    config = {
        **base.map_config(settings, synthetic),
        **base.api_urls(),
        "layers": layers.registry_config(registry, synthetic),
        "groups": layers.groups(),
        "levels": layers.levels(),
        "defaultOn": [layer for layer in DEFAULT_ON if layer in registry],
        "geojsonLimit": layers.GEOJSON_LIMIT,
    }
    return base.render_page(
        settings,
        title=TITLE,
        page="overview",
        panel=PANEL.format(nav=base.nav("/map")),
        config=config,
        plugins=(base.VECTORGRID_JS,),
    )
