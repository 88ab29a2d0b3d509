/*
 * gridgov — /editor, unit mode: a unit plan's figures (条例第六十二条 §3, §5).
 *
 * While a unit plan is the save target, the measures box shows, from the plan's own routes,
 *   - GET /plans/{id}/measures: each unit's households and workload today → in the plan,
 *     their balance (CV, max/min) and the docking score of the grids within the group's
 *     container before → after;
 *   - GET /plans/{id}/moves: the households (buildings), incidents and key sites that
 *     would change unit, per from → to pair.
 * They are read again every time the plan's units are (editor_units.js renderPlan: opening
 * the plan and after every edit saved into it). The tables are editor_plans.js's renderers
 * (GG.planFigures), the ones the compare tool draws with.
 */
(function () {
  "use strict";
  var GG = (window.GridGov = window.GridGov || {});

  var CHANGE_ZH = { changed: "调整", created: "新增", retired: "撤销", unchanged: "未变" };

  /**
   * The figures of the unit plan edited in ``page``: ``refresh(id)`` reads them (the latest
   * call wins), ``render(box, id)`` draws them into the measures box and shows it (false:
   * no plan, the box stays hidden as in unit mode), ``clear()`` forgets them. Their state is
   * ``page.unitFigures`` ({plan, data, pending, done, error}) for the page tests.
   */
  GG.unitPlanFigures = function (page, config) {
    var F = GG.planFigures;
    var state = (page.unitFigures = { plan: null, data: null, pending: false, done: 0, error: null, noun: "单元" });

    var load = GG.latest(function (id) {
      var base = config.plansUrl + "/" + encodeURIComponent(id);
      return Promise.all([page.call("GET", base + "/measures"), page.call("GET", base + "/moves")]);
    });

    function box() {
      return document.getElementById("gg-measures-box");
    }

    function problem(answer) {
      var d = answer.data || {};
      return (d.title || "请求失败 (request failed)") + "：" + (d.detail || "HTTP " + answer.status);
    }

    /** Read the plan's figures again, then redraw the box. */
    function refresh(id, noun) {
      if (!id || !config.plansUrl || !F) return;
      state.plan = String(id);
      state.noun = noun || "单元";
      state.pending = true;
      state.error = null;
      page.renderMeasures();
      load(id).then(function (answers) {
        if (state.plan !== String(id)) return;
        state.pending = false;
        state.done += 1;
        var failed = answers.filter(function (a) { return !a.ok; })[0];
        state.error = failed ? problem(failed) : null;
        state.data = failed ? null : { measures: answers[0].data, moves: answers[1].data };
        page.renderMeasures();
      }, function () {
        state.pending = false;
        state.error = "无法连接 gridgov 服务 (cannot reach the server)";
        page.renderMeasures();
      });
    }

    function clear() {
      state.plan = null;
      state.data = null;
      state.pending = false;
      state.error = null;
    }

    /** A unit's code as the map labels it (-01), the full code in its title. */
    function short(code) {
      return page.label ? page.label(code) : code;
    }

    function unitsTable(m, noun) {
      var today = {}, planned = {}, codes = [];
      m.today.units.forEach(function (u) { today[u.code] = u; codes.push(u.code); });
      m.plan.units.forEach(function (u) {
        planned[u.code] = u;
        if (!today[u.code]) codes.push(u.code);
      });
      codes.sort();
      return F.table([GG.escape(noun), "变化", "户数 现行 → 方案", "工作量", "面积 km²"], codes.map(function (code) {
        var t = today[code] || {}, p = planned[code] || {};
        var change = planned[code] ? p.change || "unchanged" : "retired";
        return '<tr data-code="' + GG.escape(code) + '" data-change="' + change + '"' +
          (change === "unchanged" ? "" : ' class="gg-pending"') + '><td title="' + GG.escape(code) + '">' + GG.escape(short(code)) +
          '</td><td class="gg-change-' +
          change + '">' + CHANGE_ZH[change] + "</td>" + F.pairCell("households", t.households, p.households) +
          F.pairCell("workload", t.workload, p.workload, 0) + F.pairCell("area_km2", t.area_km2, p.area_km2, 3) + "</tr>";
      }), "gg-unit-figures-units");
    }

    function html(id, data, noun) {
      var m = data.measures, mine = "plan/" + id;
      return '<p id="gg-unit-figures" data-plan="' + GG.escape(id) + '"><b>方案 #' + GG.escape(id) + " 与现行" +
        GG.escape(noun) + "对比</b>（现行 → 方案）</p>" +
        unitsTable(m, noun) +
        F.balanceTable(m.today, m.plan, "live", mine, "gg-unit-figures-balance") +
        F.unitDockingTable(m.docking.before, m.docking.after, m.docking.grids, "gg-unit-figures-docking") +
        F.movesText(data.moves, noun, "gg-unit-figures-moved") +
        F.movePairs(data.moves, { noun: noun, head: "变更所属" + noun + "（现行 → 方案）", id: "gg-unit-figures-moves",
          label: function (code) { return code ? short(code) : "（组外）"; } }) +
        '<p class="gg-note">统计期 ' + GG.escape(m.period.from.slice(0, 10)) + " 至 " + GG.escape(m.period.to.slice(0, 10)) +
        "；工作量权重同网格测度。保存到方案的调整在保存后重新计算。</p>";
    }

    /** Draw the plan's figures (true), or nothing when no plan is edited (false). */
    function render(target, id) {
      var shown = !!(id && config.plansUrl && F);
      box().style.display = shown ? "" : "none"; // unit mode keeps it hidden otherwise
      if (!shown) return false;
      if (state.plan !== String(id)) refresh(id, state.noun);
      if (state.error) {
        target.textContent = "方案测度读取失败：" + state.error;
      } else if (!state.data || state.pending) {
        target.textContent = "读取方案测度… (reading the plan's figures)";
      } else {
        target.innerHTML = html(state.plan, state.data, state.noun);
      }
      return true;
    }

    return { refresh: refresh, render: render, clear: clear };
  };
})();
