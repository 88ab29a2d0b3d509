/*
 * gridgov — /editor, review tools (条例第六十二条): compare plans, run a proposal, review it.
 *
 *   - compare: a plan against today's grids or another plan (GET /plans/{id}/diff): the
 *     grids changed / created / retired drawn on the map over both sides, a table of each
 *     grid's households and workload on both sides, the balance and docking of each side
 *     and what would move; a unit plan (部门单元) against today's units or a unit plan of its
 *     group, each side's figures from GET /plans/{id}/measures (never against a grid plan);
 *     the tables are GG.planFigures, shared with the unit mode (editor_unit_figures.js);
 *   - proposal: POST /optimise for the chosen community or township, its progress read
 *     every few hundred ms (GET /optimise/{job}), the proposed grids drawn over today's with
 *     their measures; saved as draft plans (POST /optimise/{job}/plans);
 *   - docking proposal (按部门单元边界调整网格): GET /docking/proposals/townships/{code},
 *     saved with POST /plans/from-docking;
 *   - a saved plan is opened in the editor (page.openPlan, editor.js).
 *
 * Only the page's own `call` (editor.js, with the session token) talks to gridgov. Nothing
 * here writes grids: every result is a draft plan that goes through the plans workflow.
 */
(function () {
  "use strict";
  var GG = (window.GridGov = window.GridGov || {});

  var STYLE = {
    other: { color: "#555", weight: 2, opacity: 0.9, dashArray: "5 5", fill: false },
    changed: { color: "#e6550d", weight: 3, opacity: 1, fillColor: "#e6550d", fillOpacity: 0.22 },
    created: { color: "#31a354", weight: 3, opacity: 1, fillColor: "#31a354", fillOpacity: 0.25 },
    retired: { color: "#7b3294", weight: 2.5, opacity: 1, dashArray: "2 6", fillColor: "#7b3294", fillOpacity: 0.18 },
    proposal: { color: "#3f007d", weight: 2.5, opacity: 1, fillColor: "#807dba", fillOpacity: 0.16 },
    move: { color: "#e6550d", weight: 1.5, opacity: 1, fillColor: "#fd8d3c", fillOpacity: 0.55 },
    left: { color: "#d7191c", weight: 1.5, opacity: 1, fillColor: "#d7191c", fillOpacity: 0.45 }
  };
  var CHANGE_ZH = { changed: "调整", created: "新增", retired: "撤销", unchanged: "未变" };
  var STATUS_ZH = { draft: "草稿", submitted: "已提交", approved: "已批准", published: "已发布" };
  var FIT = { paddingTopLeft: [40, 40], paddingBottomRight: [460, 40], maxZoom: 16, animate: false };

  function $(id) {
    return document.getElementById(id);
  }

  function fmt(value, digits) {
    return GG.fmt(value, digits);
  }

  /** "before → after" in one cell, with both values as data attributes (tests, copy). */
  function pairCell(name, before, after, digits) {
    var changed = before !== undefined && after !== undefined && fmt(before, digits) !== fmt(after, digits);
    return '<td data-measure="' + name + '" data-before="' + (before === undefined || before === null ? "" : before) +
      '" data-after="' + (after === undefined || after === null ? "" : after) + '"' +
      (changed ? ' class="gg-changed"' : "") + ">" + fmt(before, digits) + " → " + fmt(after, digits) + "</td>";
  }

  function table(head, rows, id) {
    return "<table class=\"gg-table\"" + (id ? ' id="' + id + '"' : "") + "><thead><tr>" +
      head.map(function (h) { return "<th>" + h + "</th>"; }).join("") + "</tr></thead><tbody>" +
      rows.join("") + "</tbody></table>";
  }

  function short(code) {
    return code && code.length > 3 ? "…" + code.slice(-3) : String(code);
  }

  /** A grid code within its township: community and grid parts ("015-004"). */
  function inTownship(code) {
    return code && code.length === 15 ? code.slice(9, 12) + "-" + code.slice(12) : String(code);
  }

  /** The township's name as the area selector lists it (else its code). */
  function townshipName(code) {
    var select = document.getElementById("gg-area-township"), name = null;
    ((select && select._items) || []).forEach(function (a) { if (a.code === code) name = a.name; });
    return name || "镇街 " + code;
  }

  function sideName(label) {
    if (label === "live") return "现行";
    var id = label.split("/")[1];
    return "方案 #" + id;
  }

  /** The balance (CV, max/min of households and workload) of two sides, other → mine. */
  function balanceTable(b, a, other, mine, id) {
    function row(name, title) {
      return "<tr><td>" + title + "</td>" + pairCell(name + "_cv", b.balance[name].cv, a.balance[name].cv, 3) +
        pairCell(name + "_max_min", b.balance[name].max_min_ratio, a.balance[name].max_min_ratio, 2) + "</tr>";
    }
    return table(["均衡度 " + GG.escape(sideName(other)) + " → " + GG.escape(sideName(mine)),
      '<span title="变异系数，越小越均衡">CV</span>', "最大/最小"],
      [row("households", "户数"), row("workload", "工作量")], id || "gg-diff-balance");
  }

  /** What would change hands, in one sentence; ``noun`` is what they change (网格, 单元…). */
  function movesText(moves, noun, id) {
    if (!moves) return "";
    return '<p id="' + (id || "gg-diff-moves") + '">将变更所属' + GG.escape(noun || "网格") + "：楼栋 " +
      fmt(moves.building.moved) + " 栋（" + fmt(moves.households_moved) + " 户）、重点场所 " +
      fmt(moves.key_site.moved) + " 处、统计期内事件 " + fmt(moves.incident.moved) + " 件。</p>";
  }

  /** What would change hands, per from → to pair: households (buildings), incidents of the
   * period and key sites. ``o``: {noun (单元…), head (the first column), id, label (names a
   * code; null: outside every one)}. */
  function movePairs(moves, o) {
    if (!moves) return "";
    var rows = {}, order = [];
    function pair(p) {
      var k = (p.from || "") + "|" + (p.to || "");
      if (!rows[k]) {
        rows[k] = { from: p.from, to: p.to, buildings: 0, households: 0, incidents: 0, key_sites: 0 };
        order.push(k);
      }
      return rows[k];
    }
    moves.building.pairs.forEach(function (p) {
      var r = pair(p);
      r.buildings += p.count;
      r.households += p.households;
    });
    moves.incident.pairs.forEach(function (p) { pair(p).incidents += p.count; });
    moves.key_site.pairs.forEach(function (p) { pair(p).key_sites += p.count; });
    if (!order.length) {
      return '<p class="gg-note" id="' + o.id + '">没有住户、事件或重点场所变更所属' + GG.escape(o.noun) + "。</p>";
    }
    order.sort();
    var name = o.label || function (code) { return code || "（范围外）"; };
    return table([GG.escape(o.head), "户数（楼栋）", "事件", "重点场所"], order.map(function (k) {
      var r = rows[k];
      return '<tr data-from="' + GG.escape(r.from || "") + '" data-to="' + GG.escape(r.to || "") + '"><td>' +
        GG.escape(name(r.from)) + " → " + GG.escape(name(r.to)) + '</td><td data-measure="households" data-value="' +
        r.households + '">' + fmt(r.households) + "（" + fmt(r.buildings) + "）</td>" +
        '<td data-measure="incidents" data-value="' + r.incidents + '">' + fmt(r.incidents) + "</td>" +
        '<td data-measure="key_sites" data-value="' + r.key_sites + '">' + fmt(r.key_sites) + "</td></tr>";
    }), o.id);
  }

  /** The docking of the grids within a unit group's container: score, grids lying in one
   * unit, grids straddling, other → mine (GET /plans/{id}/measures ``docking``). */
  function unitDockingTable(b, a, grids, id) {
    return table(["与网格对接（" + fmt(grids) + " 个网格）", "得分"], [
      "<tr><td>对接得分</td>" + pairCell("docking_score", b.score, a.score, 1) + "</tr>",
      "<tr><td>位于单一单元的网格</td>" + pairCell("docked", b.docked, a.docked) + "</tr>",
      "<tr><td>跨单元网格</td>" + pairCell("straddling", b.straddling, a.straddling) + "</tr>"
    ], id);
  }

  // The renderers of plan figures, shared with the unit mode (editor_unit_figures.js).
  GG.planFigures = {
    fmt: fmt,
    pairCell: pairCell,
    table: table,
    sideName: sideName,
    balanceTable: balanceTable,
    movesText: movesText,
    movePairs: movePairs,
    unitDockingTable: unitDockingTable
  };

  GG.editorPlans = {
    init: function (page, config) {
      if (!config.plansUrl || !document.getElementById("gg-compare-section")) return;
      var map = page.map, state = page.state, call = page.call;
      var cfg = config.review || {};
      var review = (page.review = {
        plans: [],
        kind: null, // "compare" | "optimise" | "docking": what the box shows
        diff: null,
        job: null, // the last job's view (GET /optimise/{job})
        polls: 0,
        docking: null,
        dockingRequest: null,
        saved: [] // plans saved from a proposal: [{plan_id, community_code}]
      });
      var layer = L.featureGroup({ pmIgnore: true, snapIgnore: true }).addTo(map);
      page.reviewLayer = layer;

      function problem(answer) {
        var d = answer.data || {};
        return (d.title || "请求失败 (request failed)") + "：" + (d.detail || "HTTP " + answer.status);
      }

      function fail(message) {
        GG.showError(message);
      }

      /** fetch itself failed (server gone, network): say so, never leave a tool stuck. */
      function unreachable(what) {
        return function () {
          fail(what + "：无法连接 gridgov 服务 (cannot reach the server)");
          if (review.job && (review.job.status === "queued" || review.job.status === "running")) {
            review.job.status = "failed";
            review.job.error = { detail_zh: "无法连接服务" };
            renderProgress();
          }
          $("gg-compare").disabled = false;
          if ($("gg-review-save-button")) $("gg-review-save-button").disabled = false;
          renderButtons();
        };
      }

      /** GeoJSON (CGCS2000) → display layers, each feature styled by ``styleOf``. */
      function draw(collection, styleOf, tooltipOf) {
        var shown = GG.datum.shiftGeoJSON(JSON.parse(JSON.stringify(collection)));
        return L.geoJSON(shown, {
          pmIgnore: true,
          snapIgnore: true,
          interactive: !!tooltipOf,
          style: styleOf,
          onEachFeature: function (f, l) {
            l.reviewKey = f.properties.code || f.id; // a table row with data-key shows it
            if (tooltipOf) l.bindTooltip(tooltipOf(f), { sticky: true });
            // The overlay lies over the grids: a click on it selects the grid beneath.
            l.on("click", function (e) {
              var o = e.originalEvent || {};
              if (page.clickAt(e.latlng, !!(o.shiftKey || o.ctrlKey))) L.DomEvent.stopPropagation(e);
            });
          }
        }).addTo(layer);
      }

      function showBox(title, html) {
        $("gg-review-title").textContent = title;
        $("gg-review").innerHTML = html;
        $("gg-review-box").hidden = false;
        $("gg-measures-box").hidden = true; // the review takes its place until cleared
        $("gg-review-clear").disabled = false;
      }

      function clear() {
        layer.clearLayers();
        review.kind = null;
        review.diff = null;
        review.sides = null;
        review.docking = null;
        $("gg-review-box").hidden = true;
        $("gg-measures-box").hidden = false;
        $("gg-review").innerHTML = "";
        $("gg-review-clear").disabled = true;
        if ($("gg-review-save")) $("gg-review-save").hidden = true;
        renderButtons();
      }
      page.clearReview = clear;

      function fit() {
        var bounds = layer.getBounds();
        if (bounds.isValid()) map.fitBounds(bounds, FIT);
      }

      function area() {
        var a = state.area;
        return a && (a.level === "township" || a.level === "community") ? a : null;
      }

      function renderButtons() {
        $("gg-compare").disabled = !$("gg-compare-a").value;
        if (!cfg.canPropose) return;
        var running = review.job && (review.job.status === "queued" || review.job.status === "running");
        $("gg-propose").disabled = !area() || !!running;
        $("gg-dock-propose").disabled = !area() || !$("gg-dock-kind").value;
      }

      /* ---------------------------------------------------------------- compare */

      function planLabel(p) {
        return "#" + p.id + " " + (p.name || "") + "（" + (STATUS_ZH[p.status] || p.status) + "）" +
          (isUnit(p) ? " · 部门单元 " + (p.unit_code || "") : "");
      }

      function isUnit(p) {
        return !!p && p.kind === "unit";
      }

      function planOf(id) {
        return review.plans.filter(function (p) { return String(p.id) === String(id); })[0] || null;
      }

      /** What plan ``a`` may be compared with besides today: plans of its kind (a unit plan:
       * unit plans of its layer; the API refuses another group's with a 422). */
      /** Plans the API can diff with ``a``: grid plans with grid plans, a unit plan with the
       *  unit plans of its own group (the list's ``unit_group``: layer, district, level, parent). */
      function comparable(a, p) {
        if (String(p.id) === String(a.id) || isUnit(a) !== isUnit(p)) return false;
        return !isUnit(a) || (p.unit_layer === a.unit_layer && p.unit_group === a.unit_group);
      }

      function optionsOf(plans) {
        return plans.map(function (p) {
          return '<option value="' + GG.escape(p.id) + '" data-kind="' + (isUnit(p) ? "unit" : "grid") + '">' +
            GG.escape(planLabel(p)) + "</option>";
        }).join("");
      }

      /** Grid plans and unit plans (部门单元) in two groups of the list. */
      function groupedOptions(plans) {
        var grid = plans.filter(function (p) { return !isUnit(p); });
        var unit = plans.filter(isUnit);
        if (!unit.length) return optionsOf(grid);
        return (grid.length ? '<optgroup label="网格方案">' + optionsOf(grid) + "</optgroup>" : "") +
          '<optgroup label="部门单元方案">' + optionsOf(unit) + "</optgroup>";
      }

      /** The second list follows the first: today (网格 or 单元) and the plans of its kind. */
      function fillAgainst() {
        var b = $("gg-compare-b"), keep = b.value, a = planOf($("gg-compare-a").value);
        var others = a ? review.plans.filter(function (p) { return comparable(a, p); }) : review.plans;
        b.innerHTML = '<option value="live">' + (isUnit(a) ? "现行单元 (today)" : "现行网格 (today)") + "</option>" +
          groupedOptions(others);
        if (keep && b.querySelector('option[value="' + keep + '"]')) b.value = keep;
      }

      /** Every plan the account can see (any status): the two lists of the compare tool. */
      function loadPlans() {
        return call("GET", config.plansUrl + "?limit=1000").then(function (answer) {
          if (!answer.ok) {
            fail("方案列表读取失败：" + problem(answer));
            return;
          }
          review.plans = (answer.data && answer.data.items) || [];
          var a = $("gg-compare-a");
          var keepA = a.value;
          a.innerHTML = groupedOptions(review.plans) || '<option value="">（没有方案）</option>';
          if (keepA && a.querySelector('option[value="' + keepA + '"]')) a.value = keepA;
          fillAgainst();
          renderButtons();
        });
      }
      page.loadComparePlans = loadPlans;

      function compare() {
        var a = $("gg-compare-a").value, b = $("gg-compare-b").value || "live";
        if (!a) return Promise.resolve();
        if (a === b) {
          fail("请选择两个不同的方案 (choose two different plans)");
          return Promise.resolve();
        }
        var pa = planOf(a), pb = b === "live" ? null : planOf(b);
        if (pa && pb && isUnit(pa) !== isUnit(pb)) {
          fail("部门单元方案只能与现行单元或同组的部门单元方案对比，不能与网格方案对比" +
            " (a unit plan compares with today's units or a unit plan of its group, never with a grid plan)");
          return Promise.resolve();
        }
        $("gg-compare").disabled = true;
        var today = isUnit(pa) ? "现行单元" : "现行网格";
        GG.status("正在对比方案 #" + a + " 与 " + (b === "live" ? today : "方案 #" + b) + "…");
        var plan = config.plansUrl + "/";
        return call("GET", plan + a + "/diff" + GG.query({ against: b })).then(function (answer) {
          if (!answer.ok || !answer.data.units) return [answer, null];
          // a unit plan's diff has no figures: each side's from GET /plans/{id}/measures
          return Promise.all([call("GET", plan + a + "/measures"),
            b === "live" ? null : call("GET", plan + b + "/measures")]).then(function (figures) {
            return [answer, figures];
          });
        }).then(function (answers) {
          var answer = answers[0], figures = answers[1];
          $("gg-compare").disabled = false;
          var failed = !answer.ok ? answer : (figures || []).filter(function (f) { return f && !f.ok; })[0];
          if (failed) {
            fail("方案对比失败：" + problem(failed));
            return;
          }
          clear();
          review.kind = "compare";
          review.diff = answer.data;
          renderDiff(answer.data, figures && figures.map(function (f) { return f && f.data; }));
          GG.status("方案对比完成");
        }, unreachable("方案对比失败"));
      }
      page.compare = compare;

      /** A unit plan's two sides as the grid diff's ``measures`` has them (units for grids):
       * the plan from its measures, the other side from today's or the other plan's. */
      function unitSides(d, figures) {
        var a = figures[0], b = figures[1], out = {};
        out["plan/" + d.plan_id] = { grids: a.plan.units, balance: a.plan.balance, docking: a.docking.after };
        out[d.against] = b ? { grids: b.plan.units, balance: b.plan.balance, docking: b.docking.after } :
          { grids: a.today.units, balance: a.today.balance, docking: a.docking.before };
        return out;
      }

      function renderDiff(d, figures) {
        var mine = "plan/" + d.plan_id, other = d.against;
        var unit = !!d.units, noun = unit ? "单元" : "网格";
        var changes = unit ? d.units : d.grids;
        var otherFeatures = d.features.features.filter(function (f) { return f.properties.side === other; });
        var mineFeatures = d.features.features.filter(function (f) { return f.properties.side === mine; });
        // the other side first, as dashed outlines (retired ones filled), then this plan's
        review.sides = {};
        review.sides.other = draw({ type: "FeatureCollection", features: otherFeatures }, function (f) {
          return f.properties.change === "retired" ? STYLE.retired : STYLE.other;
        }, function (f) {
          return GG.escape(sideName(other) + " " + f.properties.code + "（" + CHANGE_ZH[f.properties.change] + "）");
        });
        review.sides.mine = draw({ type: "FeatureCollection", features: mineFeatures }, function (f) {
          return STYLE[f.properties.change] || STYLE.changed;
        }, function (f) {
          return GG.escape(sideName(mine) + " " + f.properties.code + "（" + CHANGE_ZH[f.properties.change] + "）");
        });
        fit();

        var m = unit ? unitSides(d, figures) : d.measures, before = {}, after = {};
        m[other].grids.forEach(function (g) { before[g.code] = g; });
        m[mine].grids.forEach(function (g) { after[g.code] = g; });
        var rows = [];
        ["changed", "created", "retired"].forEach(function (change) {
          changes[change].forEach(function (code) {
            var b = before[code] || {}, a = after[code] || {};
            rows.push('<tr data-code="' + GG.escape(code) + '" data-key="' + GG.escape(code) + '" data-change="' + change +
              '"><td>' + GG.escape(code) +
              '</td><td class="gg-change-' + change + '">' + CHANGE_ZH[change] + "</td>" +
              pairCell("households", b.households, a.households) +
              pairCell("workload", b.workload, a.workload, 0) + "</tr>");
          });
        });
        var legend = '<p class="gg-legend-line"><span class="gg-swatch gg-swatch-other"></span>' + GG.escape(sideName(other)) +
          '（虚线） <span class="gg-swatch gg-swatch-changed"></span>调整 <span class="gg-swatch gg-swatch-created"></span>新增 ' +
          '<span class="gg-swatch gg-swatch-retired"></span>撤销</p>' +
          '<p class="gg-legend-line">显示 <label><input type="checkbox" data-side="other" checked> ' + GG.escape(sideName(other)) +
          '</label> <label><input type="checkbox" data-side="mine" checked> ' + GG.escape(sideName(mine)) + "</label></p>";
        var counts = "<p>调整 <b>" + changes.changed.length + "</b> 个、新增 <b>" + changes.created.length +
          "</b> 个、撤销 <b>" + changes.retired.length + "</b> 个" + noun + "；未变 " + changes.unchanged.length + " 个。</p>";
        var grids = rows.length ?
          table([noun, "变化", "户数 " + GG.escape(sideName(other)) + " → " + GG.escape(sideName(mine)), "工作量"], rows, "gg-diff-grids") :
          '<p class="gg-note">两者' + noun + "相同 (no difference)。</p>";
        var docking = unit ? GG.planFigures.unitDockingTable(m[other].docking, m[mine].docking,
          figures[0].docking.grids, "gg-diff-docking") : dockingTable(m[other].docking, m[mine].docking);
        var moves = movesText(d.moves, noun) + (unit ? movePairs(d.moves, { noun: noun, id: "gg-diff-move-pairs",
          head: noun + " " + sideName(other) + " → " + sideName(mine) }) : "");
        showBox((unit ? "部门单元方案对比：" : "方案对比：") + sideName(mine) + " 对 " + sideName(other),
          counts + legend + grids + balanceTable(m[other], m[mine], other, mine) + docking +
          moves + '<p class="gg-note">统计期 ' + GG.escape(d.period.from.slice(0, 10)) + " 至 " +
          GG.escape(d.period.to.slice(0, 10)) + "。</p>");
      }

      function dockingTable(before, after) {
        var byKind = {};
        after.forEach(function (d) { byKind[d.unit_layer + "/" + d.unit_level] = d; });
        return table(["对接得分 (docking)", "得分"], before.map(function (d) {
          var k = d.unit_layer + "/" + d.unit_level, y = byKind[k] || {};
          return "<tr><td>" + GG.escape(d.title) + "</td>" + pairCell("docking", d.score, y.score, 1).replace(
            "<td ", '<td data-kind="' + GG.escape(k) + '" ') + "</tr>";
        }), "gg-diff-docking");
      }

      /** A row of the box's tables: zoom to its shapes on the map and flash them. */
      function showKey(key) {
        var bounds = null, found = [];
        layer.eachLayer(function (group) {
          group.eachLayer(function (l) {
            if (l.reviewKey !== key) return;
            found.push(l);
            bounds = bounds ? bounds.extend(l.getBounds()) : L.latLngBounds(l.getBounds().getSouthWest(), l.getBounds().getNorthEast());
          });
        });
        if (!bounds) return;
        map.fitBounds(bounds, L.extend({}, FIT, { maxZoom: 17 }));
        found.forEach(function (l) {
          var weight = l.options.weight;
          l.setStyle({ weight: 6 });
          setTimeout(function () { l.setStyle({ weight: weight }); }, 1200);
        });
      }
      page.showReviewKey = showKey;
      $("gg-review").addEventListener("change", function (e) {
        var side = e.target.getAttribute && e.target.getAttribute("data-side");
        if (!side || !review.sides || !review.sides[side]) return;
        if (e.target.checked) review.sides[side].addTo(layer);
        else layer.removeLayer(review.sides[side]);
      });
      $("gg-review").addEventListener("click", function (e) {
        var row = e.target.closest("tr[data-key]");
        if (row) showKey(row.getAttribute("data-key"));
      });

      $("gg-compare").addEventListener("click", compare);
      $("gg-compare-a").addEventListener("change", function () {
        fillAgainst();
        renderButtons();
      });
      $("gg-review-clear").addEventListener("click", clear);
      $("gg-compare-refresh").addEventListener("click", loadPlans);
      $("gg-compare-section").addEventListener("toggle", function () {
        if ($("gg-compare-section").open) loadPlans();
      });
      loadPlans();

      /* ---------------------------------------------------------------- proposals */

      if (!cfg.canPropose) {
        page.onArea = function () { clear(); renderButtons(); };
        return;
      }

      function propose() {
        var a = area();
        if (!a) return Promise.resolve();
        var target = parseInt($("gg-propose-target").value, 10);
        if (!(target >= 10 && target <= 5000)) {
          fail("每格目标户数须在 10 至 5000 之间 (target households: 10–5000)");
          return Promise.resolve();
        }
        var weights = {}, badWeight = null;
        document.querySelectorAll("#gg-propose-weights input[data-weight]").forEach(function (input) {
          var value = Number(input.value);
          if (input.value === "" || !isFinite(value) || value < 0 || value > 100) {
            badWeight = input.closest("label").textContent.trim();
          } else {
            weights[input.getAttribute("data-weight")] = value;
          }
        });
        if (badWeight) {
          fail("目标权重须为 0 至 100 的数 (weights: 0–100)：" + badWeight);
          return Promise.resolve();
        }
        var body = {
          target_households: target,
          min_change: $("gg-propose-min-change").checked,
          weights: weights
        };
        body[a.level === "community" ? "community_code" : "township_code"] = a.code;
        clear();
        review.job = { status: "queued", progress: 0 };
        review.saved = [];
        $("gg-review-saved").innerHTML = "";
        renderProgress();
        renderButtons();
        return call("POST", cfg.optimiseUrl, body).then(function (answer) {
          if (!answer.ok) {
            review.job = { status: "failed", progress: 0, error: { detail_zh: problem(answer) } };
            renderProgress();
            renderButtons();
            fail("优化方案未能启动：" + problem(answer));
            return;
          }
          review.job = { job_id: answer.data.job_id, status: answer.data.status, progress: 0, area: a };
          poll(answer.data.job_id);
        }, unreachable("优化方案未能启动"));
      }
      page.propose = propose;

      function poll(jobId) {
        call("GET", cfg.optimiseUrl + "/" + jobId).then(function (answer) {
          if (!review.job || review.job.job_id !== jobId) return; // another job took its place
          review.polls += 1;
          if (!answer.ok) {
            review.job.status = "failed";
            review.job.error = { detail_zh: problem(answer) };
            renderProgress();
            renderButtons();
            fail("优化任务读取失败：" + problem(answer));
            return;
          }
          var view = answer.data;
          view.area = review.job.area;
          review.job = view;
          renderProgress();
          if (view.status === "done") {
            renderButtons();
            showProposal(view);
          } else if (view.status === "failed") {
            renderButtons();
            fail("优化失败：" + ((view.error && view.error.detail_zh) || ""));
          } else {
            setTimeout(function () { poll(jobId); }, cfg.pollMs);
          }
        }, unreachable("优化任务读取失败"));
      }

      function renderProgress() {
        var job = review.job;
        $("gg-propose-run").hidden = !job;
        if (!job) return;
        $("gg-propose-progress").value = job.progress || 0;
        var text = {
          queued: "排队中…",
          running: "计算中 " + Math.round((job.progress || 0) * 100) + "%" +
            (job.community_code ? "（村社区 " + job.community_code + "）" : ""),
          done: "已完成 100%",
          failed: "失败：" + ((job.error && job.error.detail_zh) || "")
        }[job.status] || job.status;
        $("gg-propose-state").textContent = text;
      }

      var SUMMARY = [
        ["grids", "网格数"],
        ["households_cv", "户数变异系数", 3],
        ["workload_cv", "工作量变异系数", 3],
        ["workload_max_min", "工作量最大/最小", 2],
        ["compactness", "平均紧凑度", 3],
        ["docking_score", "警务区对接得分", 1],
        ["contiguous_share", "连通网格占比", 3],
        ["households_moved", "变动户数"]
      ];

      function showProposal(view) {
        var r = view.result;
        review.kind = "optimise";
        layer.clearLayers();
        draw(r.proposal, function () { return STYLE.proposal; }, function (f) {
          var p = f.properties;
          return "方案网格 " + GG.escape(p.community_code + "-" + ("00" + p.index).slice(-3)) + "：户数 " +
            fmt(p.households) + "，工作量 " + fmt(p.workload, 0) + "，紧凑度 " + fmt(p.compactness, 3);
        });
        fit();
        var summary = table(["指标", "现状 → 方案"], SUMMARY.map(function (s) {
          return "<tr><td>" + s[1] + "</td>" + pairCell(s[0], r.before[s[0]], r.after[s[0]], s[2]) + "</tr>";
        }), "gg-proposal-summary");
        var communities = r.communities.map(function (c) {
          var today = table(["现行网格", "户数", "工作量", "紧凑度"], c.before.grids_detail.map(function (g) {
            return "<tr><td>" + GG.escape(short(g.key)) + "</td><td>" + fmt(g.households) + "</td><td>" +
              fmt(g.workload, 0) + "</td><td>" + fmt(g.compactness, 3) + "</td></tr>";
          }));
          var proposed = table(["方案网格", "户数", "工作量", "紧凑度"], c.after.grids_detail.map(function (g, i) {
            return '<tr data-index="' + (i + 1) + '" data-key="' + GG.escape(c.code + "-" + ("00" + (i + 1)).slice(-3)) +
              '"><td>' + (i + 1) + "</td><td>" + fmt(g.households) + "</td><td>" +
              fmt(g.workload, 0) + "</td><td>" + fmt(g.compactness, 3) + "</td></tr>";
          }), "gg-proposal-grids-" + c.code);
          return "<h5>" + GG.escape(c.name + "（" + c.code + "）") + "：现行 " + c.before.grids + " 格 → 方案 " +
            c.after.grids + " 格，变动 " + fmt(c.households_moved) + " 户</h5>" +
            '<div class="gg-side-by-side"><div>' + today + "</div><div>" + proposed + "</div></div>";
        }).join("");
        var o = r.options;
        showBox("优化方案预览（未保存）", '<p class="gg-legend-line"><span class="gg-swatch gg-swatch-proposal"></span>' +
          "方案网格（紫色） 与现行网格（绿色）叠加；目标 " + fmt(o.target_households) + " 户/格" +
          (o.min_change ? "，尽量少调整" : "") + "。</p>" + summary + communities);
        $("gg-review-name").value = (view.area ? view.area.name : "") + "网格优化方案";
        $("gg-review-save").hidden = false;
      }

      /* ---------------------------------------------------------------- docking */

      function loadKinds() {
        return call("GET", cfg.dockingUnitsUrl).then(function (answer) {
          if (!answer.ok) return; // a role that may not read units: the tool stays off
          var kinds = answer.data || [];
          // community policing areas first: the optimiser docks with them too
          kinds.sort(function (a, b) {
            return (b.unit_level === "policing_area") - (a.unit_level === "policing_area");
          });
          $("gg-dock-kind").innerHTML = kinds.map(function (k) {
            return '<option value="' + GG.escape(k.unit_layer + "/" + k.unit_level) + '">' + GG.escape(k.title) + "</option>";
          }).join("");
          renderButtons();
        });
      }

      function kindOf() {
        var parts = $("gg-dock-kind").value.split("/");
        return { unit_layer: parts[0], unit_level: parts[1] };
      }

      function dockingProposal() {
        var a = area();
        if (!a) return Promise.resolve();
        var township = a.code.slice(0, 9), kind = kindOf();
        clear();
        review.job = null;
        renderProgress();
        GG.status("正在计算对接方案…");
        var url = cfg.dockingProposalUrl.replace("{code}", township) + GG.query(kind);
        return call("GET", url).then(function (answer) {
          if (!answer.ok) {
            fail("对接方案计算失败：" + problem(answer));
            return;
          }
          review.kind = "docking";
          review.docking = answer.data;
          review.dockingRequest = { township_code: township, unit_layer: kind.unit_layer, unit_level: kind.unit_level };
          showDocking(answer.data, townshipName(township));
          GG.status("对接方案已计算");
        }, unreachable("对接方案计算失败"));
      }
      page.dockingProposal = dockingProposal;

      function showDocking(d, township) {
        draw(d.grids, function () { return STYLE.proposal; }, function (f) {
          var p = f.properties;
          return "调整后网格 " + GG.escape(p.code) + "：户数 " + fmt(p.before.households) + " → " + fmt(p.after.households);
        });
        draw({ type: "FeatureCollection", features: d.moves.map(function (m) {
          return { type: "Feature", geometry: m.geometry, properties: m };
        }) }, function () { return STYLE.move; }, function (f) {
          var m = f.properties;
          return "划转 " + GG.escape(m.from_code) + " → " + GG.escape(m.to_code) + "：" + fmt(m.area_m2, 0) + " m²，" +
            fmt(m.households) + " 户";
        });
        draw({ type: "FeatureCollection", features: d.left.map(function (p) {
          return { type: "Feature", geometry: p.geometry, properties: p };
        }) }, function () { return STYLE.left; }, function (f) {
          return GG.escape(f.properties.code + "：" + f.properties.message);
        });
        fit();
        var score = table(["对接（" + GG.escape(d.title || "") + "）", "现状 → 方案"], [
          "<tr><td>得分</td>" + pairCell("docking_score", d.docking.before.score, d.docking.after.score, 1) + "</tr>",
          "<tr><td>跨单元网格数</td>" + pairCell("straddling", d.docking.before.straddling, d.docking.after.straddling) + "</tr>"
        ], "gg-docking-summary");
        var moves = d.moves.length ? table(["划出 → 划入", "面积 m²", "户数", "事件", "重点场所"], d.moves.map(function (m) {
          return "<tr><td>" + GG.escape(inTownship(m.from_code) + " → " + inTownship(m.to_code)) + "</td><td>" + fmt(m.area_m2, 0) +
            "</td><td>" + fmt(m.households) + "</td><td>" + fmt(m.incidents) + "</td><td>" + fmt(m.key_sites) + "</td></tr>";
        }), "gg-docking-moves") : '<p class="gg-note">无需调整 (nothing to move)。</p>';
        var left = d.left.length ? '<p class="gg-note">未能调整的部分（红色）：' + d.left.map(function (p) {
          return GG.escape(inTownship(p.code) + " " + p.message);
        }).join("；") + "</p>" : "";
        showBox("对接方案预览（未保存）：" + township, score + '<p class="gg-note">划出 → 划入：村社区-网格编码后三位；' +
          "划转部分（橙色）、调整后网格（紫色）。</p>" + moves + left);
        $("gg-review-name").value = township + "网格对接" + (d.title || "") + "方案";
        $("gg-review-save").hidden = !d.moves.length;
      }

      /* ---------------------------------------------------------------- saving */

      function save() {
        var name = $("gg-review-name").value.trim(), reason = $("gg-review-reason").value.trim();
        if (!name || !reason) {
          fail("请填写方案名称和原因 (a name and a reason are required)");
          return Promise.resolve();
        }
        var request;
        if (review.kind === "optimise" && review.job && review.job.status === "done") {
          request = call("POST", cfg.optimiseUrl + "/" + review.job.job_id + "/plans", { name: name, reason: reason })
            .then(function (answer) {
              return answer.ok ? { ok: true, plans: answer.data.plans } : answer;
            });
        } else if (review.kind === "docking" && review.dockingRequest) {
          var body = L.extend({ name: name, reason: reason }, review.dockingRequest);
          request = call("POST", cfg.fromDockingUrl, body).then(function (answer) {
            return answer.ok ? { ok: true, plans: [{ plan_id: answer.data.id, community_code: null }] } : answer;
          });
        } else {
          return Promise.resolve();
        }
        $("gg-review-save-button").disabled = true;
        return request.then(function (answer) {
          $("gg-review-save-button").disabled = false;
          if (!answer.ok) {
            fail("保存方案失败：" + problem(answer));
            return;
          }
          review.saved = answer.plans;
          $("gg-review-reason").value = "";
          $("gg-review-saved").innerHTML = answer.plans.map(function (p) {
            return '<li>已保存方案 #' + GG.escape(p.plan_id) + (p.community_code ? "（村社区 " + GG.escape(p.community_code) + "）" : "") +
              ' <a href="#" data-plan="' + GG.escape(p.plan_id) + '">在编辑器中打开</a></li>';
          }).join("");
          var a = area();
          var mine = answer.plans.filter(function (p) {
            return !p.community_code || !a || p.community_code.indexOf(a.code) === 0 || a.code.indexOf(p.community_code) === 0;
          })[0] || answer.plans[0];
          clear();
          loadPlans().then(function () {
            $("gg-compare-a").value = String(mine.plan_id); // ready to compare with today
            fillAgainst();
            $("gg-compare-b").value = "live";
            renderButtons();
          });
          GG.status("已保存为草稿方案 #" + answer.plans.map(function (p) { return p.plan_id; }).join("、#") + "，已在编辑器中打开");
          return page.openPlan(mine.plan_id);
        }, unreachable("保存方案失败"));
      }
      page.saveReview = save;

      $("gg-review-saved").addEventListener("click", function (e) {
        var link = e.target.closest("a[data-plan]");
        if (!link) return;
        e.preventDefault();
        page.openPlan(link.getAttribute("data-plan"));
      });
      $("gg-propose").addEventListener("click", propose);
      $("gg-dock-propose").addEventListener("click", dockingProposal);
      $("gg-dock-kind").addEventListener("change", renderButtons);
      $("gg-review-save-button").addEventListener("click", save);
      page.onArea = function () {
        clear();
        renderButtons();
      };
      loadKinds();
      renderButtons();
    }
  };
})();
