"""The editor's unit mode (条例第六十二条 §5): police (and admins) redraw department units.

Kept apart from :mod:`gridgov.api.maps.editor` so that each stays small: this module holds
the layer selector, the docking section and the config of ``static/gridgov/editor_units.js``,
which points editor.js's own selection / edit / undo / save machinery at
``/units/{layer}`` and calls the existing APIs only — the Features API for the units and
the grids beneath, ``GET /docking/grids``, ``GET /docking/proposals/units/{code}``,
``POST /plans/from-docking/unit`` and, for edits into a plan, ``POST /plans/units`` and
``/plans/{id}/units`` (which mirrors ``/units/{layer}``).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, Final

from gridgov.api.maps import base, editor_words
from gridgov.layers.docking import UnitKind

JS: Final = ("gg_editor_units", f"{base.OWN}/editor_units.js")
# A unit plan's figures (measures, moves) in the measures box; uses editor_plans.js's tables.
FIGURES_JS: Final = ("gg_editor_unit_figures", f"{base.OWN}/editor_unit_figures.js")

# The selector groups a layer's kinds (levels) under the layer's name.
LAYER_TITLES: Final = {
    "police_unit": "派出所辖区·警务区",
    "urban_unit": "城管单元",
    "emergency_unit": "应急单元",
}

SELECTOR: Final = """
  <label class="gg-field" id="gg-layer-field">编辑图层 (layer)
    <select id="gg-layer">{options}</select></label>
"""

SECTION: Final = """
  <div id="gg-unit-tools" hidden>
    <div class="gg-tools">
      <button type="button" id="gg-retire" disabled
        title="撤销所选单元，其范围并入共用边界最长的相邻单元">撤销所选单元</button>
      <button type="button" id="gg-unit-new" disabled
        title="在所选单元的同级单元组内画出新单元的范围，其面积从相邻单元划入">新建单元</button>
    </div>
    <div id="gg-unit-new-form" hidden>
      <label class="gg-field">新单元名称 <input type="text" id="gg-unit-new-name"
        maxlength="200"></label>
      <label class="gg-field" id="gg-unit-new-department-field">责任部门
        <input type="text" id="gg-unit-new-department" maxlength="200"></label>
      <div class="gg-tools">
        <button type="button" id="gg-unit-new-draw" class="gg-primary">画出范围</button>
        <button type="button" id="gg-unit-new-cancel">取消</button>
      </div>
    </div>
    <h2>单元方案 (unit plan)</h2>
    <p class="gg-note" id="gg-unit-target-note">“保存到”选择现行单元（直接生效）或草稿方案。
      新建方案覆盖所选单元及其同级单元（同一上级单元或区县）。</p>
    <div class="gg-tools">
      <button type="button" id="gg-unit-plan-new" disabled
        title="为所选单元所在的同级单元组新建草稿方案，之后的调整保存到方案">
        为所选单元新建方案</button>
    </div>
    <div id="gg-unit-plan-create" hidden>
      <label class="gg-field">方案名称 <input type="text" id="gg-unit-plan-new-name"
        maxlength="200"></label>
      <label for="gg-unit-plan-new-reason">原因（必填）</label>
      <textarea id="gg-unit-plan-new-reason" rows="2" maxlength="2000"
        placeholder="例如：警务区边界按道路调整"></textarea>
      <button type="button" id="gg-unit-plan-create-button" class="gg-primary">创建方案</button>
    </div>
    <div id="gg-unit-plan-view" hidden>
      <h3 id="gg-unit-plan-title">方案与现状 (plan vs today)</h3>
      <div id="gg-unit-plan-changes" class="gg-note"></div>
      <div class="gg-tools">
        <button type="button" id="gg-unit-plan-submit"
          title="提交后方案只读，等待区级账户批准">提交方案</button>
      </div>
    </div>
    <h2>对接 (docking)</h2>
    <div id="gg-unit-docking" class="gg-note">选择一个单元查看其与网格的对接情况。</div>
    <div class="gg-tools">
      <button type="button" id="gg-unit-propose" disabled
        title="单元边界改为由整网格组成（网格较大部分所在的单元）">预览：由整网格组成的边界</button>
    </div>
    <div id="gg-unit-proposal" hidden></div>
    <div id="gg-unit-plan-save" hidden>
      <label class="gg-field">方案名称 <input type="text" id="gg-unit-plan-name" maxlength="200">
      </label>
      <label for="gg-unit-plan-reason">原因（必填）</label>
      <textarea id="gg-unit-plan-reason" rows="2" maxlength="2000"
        placeholder="例如：警务区边界按整网格对齐"></textarea>
      <button type="button" id="gg-unit-plan-button" class="gg-primary">保存为方案</button>
    </div>
    <h3>部门单元方案 (unit plans)</h3>
    <ul id="gg-unit-plans" class="gg-saved"></ul>
  </div>
"""


def selector(kinds: list[UnitKind], *, grids: bool) -> str:
    """网格 (when grids are editable) and one option per unit kind, grouped by layer."""
    options = ['<option value="grid">网格 (grids)</option>'] if grids else []
    for layer, title in LAYER_TITLES.items():
        mine = [k for k in kinds if k.layer == layer]
        if mine:
            options.append(
                f'<optgroup label="{title}">'
                + "".join(
                    f'<option value="{k.layer}/{k.level}">{k.title_zh}</option>' for k in mine
                )
                + "</optgroup>"
            )
    return SELECTOR.format(options="".join(options))


def home_area(codes: Iterable[str] | None) -> list[str] | None:
    """The area selector's codes (district, township[, community]) of an account whose
    area is one township or community: the page opens there. None otherwise."""
    found = sorted(codes or ())
    if len(found) != 1 or len(found[0]) not in (9, 12):
        return None
    code = found[0]
    return [code[:6], code[:9]] + ([code] if len(code) == 12 else [])


def config(kinds: list[UnitKind], *, start: str, home: list[str] | None) -> dict[str, Any]:
    """What editor_units.js needs: the kinds, the mode the page opens in, the APIs."""
    return {
        "kinds": [
            {
                "layer": k.layer,
                "level": k.level,
                "title": k.title_zh,
                "layerTitle": LAYER_TITLES[k.layer],
                # the page's words in this mode: 警务单元 / 城管单元 / 应急单元, 单元
                "words": editor_words.unit_words(k.layer),
            }
            for k in kinds
        ],
        "start": start,
        "home": home,
        "unitsUrl": "/units",
        "proposalUrl": "/docking/proposals/units/{code}",
        "planUrl": "/plans/from-docking/unit",
        # a unit plan of the selected unit's group, its units (/plans/{id}/units mirrors
        # /units/{layer}) and its submission
        "newPlanUrl": "/plans/units",
        "planUnitsUrl": "/plans/{id}/units",
        "submitUrl": "/plans/{id}/submit",
    }
