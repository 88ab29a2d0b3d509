"""The editor's review tools (条例第六十二条): compare plans, run a proposal and review it.

Kept apart from :mod:`gridgov.api.maps.editor` (drawing) so that each stays small: this
module holds the panel sections and the config of ``static/gridgov/editor_plans.js``, which
calls the existing APIs only — ``GET /plans/{id}/diff`` (and, for unit plans,
``GET /plans/{id}/measures``), ``POST /optimise`` and its job,
``POST /optimise/{job}/plans``, ``GET /docking/proposals/townships/{code}`` and
``POST /plans/from-docking`` — and opens a saved plan in the editor.
"""

from __future__ import annotations

from typing import Any, Final

from gridgov.api.maps import base

JS: Final = ("gg_editor_plans", f"{base.OWN}/editor_plans.js")
CSS: Final = ("gg_editor_plans_css", f"{base.OWN}/editor_plans.css")
# Milliseconds between two reads of a running proposal job's progress.
POLL_MS: Final = 400

COMPARE: Final = """
  <details id="gg-compare-section" class="gg-review-section">
    <summary>方案对比 (compare plans)</summary>
    <label class="gg-field">方案 <select id="gg-compare-a"></select></label>
    <label class="gg-field">对比对象 <select id="gg-compare-b">
      <option value="live">现行网格 (today)</option></select></label>
    <div class="gg-tools">
      <button type="button" id="gg-compare" disabled>对比</button>
      <button type="button" id="gg-review-clear" disabled>清除对比/预览</button>
      <button type="button" id="gg-compare-refresh" title="重新读取方案列表">刷新列表</button>
    </div>
  </details>
"""

PROPOSE: Final = """
  <details id="gg-propose-section" class="gg-review-section">
    <summary>优化方案 (proposals)</summary>
    <p class="gg-note">对所选村社区或镇街自动划分网格（户数与工作量均衡、紧凑、与警务区对接），
      预览后可保存为草稿方案。Nothing changes until a plan is published.</p>
    <label class="gg-field">每格目标户数 <input type="number" id="gg-propose-target"
      min="10" max="5000" step="10" value="{target}"></label>
    <label class="gg-check"><input type="checkbox" id="gg-propose-min-change">
      尽量少调整现有网格 (min-change)</label>
    <details id="gg-propose-weights" class="gg-weights">
      <summary>目标权重 (objective weights)</summary>
      <p class="gg-note">数值越大越重视；0 表示不考虑。默认均为 1。</p>
      <label class="gg-field">工作量均衡 <input type="number" data-weight="balance"
        min="0" max="100" step="0.5" value="1"></label>
      <label class="gg-field">形状紧凑 <input type="number" data-weight="compactness"
        min="0" max="100" step="0.5" value="1"></label>
      <label class="gg-field">与警务区对接 <input type="number" data-weight="docking"
        min="0" max="100" step="0.5" value="1"></label>
      <label class="gg-field">少变动户数（min-change 时） <input type="number"
        data-weight="moved" min="0" max="100" step="0.5" value="1"></label>
    </details>
    <div class="gg-tools">
      <button type="button" id="gg-propose" disabled>生成优化方案</button>
    </div>
    <div id="gg-propose-run" hidden>
      <progress id="gg-propose-progress" max="1" value="0"></progress>
      <span id="gg-propose-state"></span>
    </div>
    <h3>按部门单元边界调整网格</h3>
    <label class="gg-field">部门单元 <select id="gg-dock-kind"></select></label>
    <div class="gg-tools">
      <button type="button" id="gg-dock-propose" disabled>预览对接方案</button>
    </div>
    <div id="gg-review-save" hidden>
      <h3>保存为草稿方案 (save as a plan)</h3>
      <label class="gg-field">方案名称 <input type="text" id="gg-review-name" maxlength="200">
      </label>
      <label for="gg-review-reason">原因（必填）</label>
      <textarea id="gg-review-reason" rows="2" maxlength="2000"
        placeholder="例如：户数不均，按优化方案重新划分"></textarea>
      <button type="button" id="gg-review-save-button" class="gg-primary">保存为方案并打开</button>
    </div>
    <ul id="gg-review-saved" class="gg-saved"></ul>
  </details>
"""

BOX: Final = """
<div class="gg-info gg-float gg-review-box" id="gg-review-box" hidden>
  <h4 id="gg-review-title"></h4>
  <div id="gg-review"></div>
</div>
"""


def panel(*, can_propose: bool, target_households: int) -> str:
    """The panel sections: compare for everyone who reads plans, proposals for planners."""
    return COMPARE + (PROPOSE.replace("{target}", str(target_households)) if can_propose else "")


def config(*, can_propose: bool, target_households: int) -> dict[str, Any]:
    """What ``editor_plans.js`` needs besides the editor's own config."""
    return {
        "canPropose": can_propose,
        "targetHouseholds": target_households,
        "optimiseUrl": "/optimise",
        "dockingUnitsUrl": "/docking/units",
        "dockingProposalUrl": "/docking/proposals/townships/{code}",
        "fromDockingUrl": "/plans/from-docking",
        "pollMs": POLL_MS,
    }
