"""``/map``: every layer of the registry, grouped, with legends, popups and an area selector."""

from __future__ import annotations

import html
from typing import Final

from gridgov.api.maps import base, layers
from gridgov.layers.catalog import ASSIGN_METHODS
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
  {importer}
  <div id="gg-status" role="status"></div>
  <div id="gg-error" role="alert" hidden></div>
</div>
"""

# 数据导入: the form of ``POST /layers/{layer}/import``, for accounts that may change a layer.
IMPORTER: Final = """
<h2>数据导入 (import)</h2>
<form id="gg-import" class="gg-import">
  <label>图层 (layer) <select id="gg-import-layer" name="layer">{options}</select></label>
  <label>文件 (file) <input type="file" id="gg-import-file" name="file"
    accept=".csv,.txt,.xlsx,.xlsm,.xls,.geojson,.json,.gpkg,.zip"></label>
  <label>坐标系 (CRS) <select id="gg-import-crs" name="crs">
    <option value="">文件自带，表格默认 WGS84</option>
    <option value="wgs84">WGS84（GPS）</option>
    <option value="gcj02">GCJ-02（高德、腾讯、微信）</option>
    <option value="bd09">BD-09（百度）</option>
    <option value="cgcs2000">CGCS2000（国家2000）</option>
  </select></label>
  <label><input type="checkbox" id="gg-import-dry" name="dry_run" checked>
    试导入：只检查，不写入 (dry run)</label>
  <label><input type="checkbox" id="gg-import-skip" name="skip_invalid">
    跳过有问题的行，导入其余 (skip invalid rows)</label>
  <button type="submit" id="gg-import-go">导入 (import)</button>
  <div id="gg-import-result" role="status"></div>
</form>
"""


def importer(specs: list[tuple[str, str]]) -> str:
    """The import form for layers ``(id, Chinese title)``; nothing when there are none."""
    if not specs:
        return ""
    options = "".join(
        f'<option value="{layer}">{html.escape(title)}</option>' for layer, title in specs
    )
    return IMPORTER.format(options=options)


def page(
    settings: Settings,
    registry: Registry,
    synthetic: dict[str, bool],
    *,
    importable: list[str] | None = None,
    api_token: str | None = None,
) -> str:
    """``importable``: layers the account may import into (the form lists them, incidents
    first, the layer a township office loads daily); ``api_token``: the session's own, for
    the upload's Bearer header."""
    ordered = sorted(importable or [], key=lambda layer: layer != "incident")
    config = {
        **base.map_config(settings, synthetic),
        **base.api_urls(),
        "layers": layers.registry_config(registry, synthetic),
        "groups": layers.groups(),
        "levels": layers.levels(),
        "defaultOn": [layer for layer in DEFAULT_ON if layer in registry],
        "geojsonLimit": layers.GEOJSON_LIMIT,
        "importUrl": "/layers/{layer}/import",
        "apiToken": api_token,
        "maxUploadBytes": settings.max_upload_bytes,
        "methodTitles": {c.value: c.title_zh for c in ASSIGN_METHODS},
    }
    titles = [(layer, registry.get(layer).title_zh) for layer in ordered]
    return base.render_page(
        settings,
        title=TITLE,
        page="overview",
        panel=PANEL.format(nav=base.nav("/map"), importer=importer(titles)),
        config=config,
        plugins=(base.VECTORGRID_JS,),
    )
