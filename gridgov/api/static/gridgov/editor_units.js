/*
 * gridgov — /editor, unit mode (条例第六十二条 §5): police (and admins) redraw their units.
 *
 *   - a layer selector: 网格 or a department unit kind the account may edit (派出所辖区,
 *     社区警务区, 城管责任区, 应急网格); editor.js asks page.units (set here) for the save
 *     base "/units/{layer}", the list (Features API), labels and the measures box, and
 *     otherwise runs its own selection / vertex editing / split / merge / boundary / undo /
 *     save machinery unchanged (ETags, 409 / 422 drawn, 412 reloads);
 *   - the grids of the area beneath, read-only thin lines (vertices snap to them);
 *   - the selected unit's docking: GET /docking/proposals/units/{code} (grids meeting it,
 *     their main unit, the score) and GET /docking/grids (which grids straddle); the same
 *     answer is the preview of "由整网格组成的边界", saved by POST /plans/from-docking/unit;
 *   - retire the selected unit (DELETE, gap=give) as one more pending edit.
 */
(function () {
  "use strict";
  var GG = (window.GridGov = window.GridGov || {});

  var STYLE = {
    beneath: { color: "#1b9e77", weight: 1, opacity: 0.8, fill: false, interactive: false },
    straddling: { color: "#ff7f00", weight: 2, opacity: 1, fillColor: "#ff7f00", fillOpacity: 0.15, interactive: false },
    proposed: { color: "#3f007d", weight: 3, opacity: 1, dashArray: "8 5", fill: false, interactive: false },
    gained: { color: "#31a354", weight: 1.5, opacity: 1, fillColor: "#31a354", fillOpacity: 0.45, interactive: false },
    lost: { color: "#e6550d", weight: 1.5, opacity: 1, fillColor: "#fd8d3c", fillOpacity: 0.55, interactive: false }
  };
  var STATUS_ZH = { draft: "草稿", submitted: "已提交", approved: "已批准", published: "已发布" };

  function $(id) {
    return document.getElementById(id);
  }

  function fmt(value, digits) {
    if (value === null || value === undefined) return "—";
    return digits === undefined ? GG.number(value) : Number(value).toFixed(digits);
  }

  GG.editorUnits = {
    init: function (page, config) {
      var cfg = config.units || {};
      if (!cfg.kinds || !cfg.kinds.length || !$("gg-layer")) return;
      var map = page.map, state = page.state;
      var kinds = {};
      cfg.kinds.forEach(function (k) { kinds[k.layer + "/" + k.level] = k; });
      var ui = (page.unitState = {
        mode: cfg.start,
        beneath: {}, // grid code → {props, layer}
        straddling: {}, // grid code → [{unit_code, share}]
        docking: null, // the proposal answer of the selected unit
        preview: false,
        plans: [],
        planSaved: null
      });
      // Thin, read-only grid lines: what the units dock with. Not pmIgnore'd for snapping.
      var beneathLayer = L.featureGroup().addTo(map);
      var previewLayer = L.featureGroup({ pmIgnore: true, snapIgnore: true }).addTo(map);
      beneathLayer.bringToBack && beneathLayer.bringToBack();

      function kind() {
        return kinds[ui.mode] || null;
      }

      function dockParams() {
        var k = kind();
        return { unit_layer: k.layer, unit_level: k.level };
      }

      function township() {
        var a = state.area;
        return a ? a.code.slice(0, 9) : null;
      }

      var loadDocking = GG.latest(function (code) {
        return page.call("GET", cfg.proposalUrl.replace("{code}", encodeURIComponent(code)) + GG.query(dockParams()));
      });

      var units = (page.units = {
        active: function () { return !!kind(); },
        kind: kind,
        base: function () { return cfg.unitsUrl + "/" + kind().layer; },
        label: function (code) {
          var dash = code.indexOf("-");
          return dash >= 0 ? code.slice(dash) : "…" + code.slice(-4);
        },
        /** The units of the area's township, with the grids beneath and who straddles. */
        list: function (params) {
          var k = kind();
          var q = { township_code: township(), limit: params.limit };
          if (k.layer === "police_unit") q.level = k.level;
          var gridParams = L.extend({}, params);
          var t = township();
          return Promise.all([
            GG.getJSON(config.itemsUrl.replace("{layer}", k.layer), q),
            GG.getJSON(config.itemsUrl.replace("{layer}", "grid"), gridParams),
            GG.getJSON(config.dockingGridsUrl, L.extend({ township_code: t }, dockParams()))
          ]).then(function (answers) {
            drawBeneath(answers[1], answers[2]);
            return answers[0];
          });
        },
        cleared: function () {
          beneathLayer.clearLayers();
          previewLayer.clearLayers();
          ui.beneath = {};
          ui.straddling = {};
          ui.docking = null;
          ui.preview = false;
          $("gg-unit-proposal").hidden = true;
          $("gg-unit-plan-save").hidden = true;
        },
        /** The selection changed: read the selected unit's docking (one unit only). */
        selected: function () {
          ui.docking = null;
          ui.preview = false;
          previewLayer.clearLayers();
          $("gg-unit-proposal").hidden = true;
          $("gg-unit-plan-save").hidden = true;
          highlight();
          if (!units.active() || state.selected.length !== 1) {
            renderDocking();
            return;
          }
          var code = state.selected[0];
          $("gg-unit-docking").textContent = "读取对接情况… (reading docking)";
          ui.loadingDocking = true;
          loadDocking(code).then(function (answer) {
            ui.loadingDocking = false;
            if (state.selected.length !== 1 || state.selected[0] !== code) return;
            if (!answer.ok) {
              $("gg-unit-docking").textContent = "对接情况读取失败：" +
                ((answer.data && answer.data.detail) || "HTTP " + answer.status);
              return;
            }
            ui.docking = answer.data;
            renderDocking();
            highlight();
            page.renderTools();
          }, function () { ui.loadingDocking = false; });
        },
        renderMeasures: function (box) {
          box.innerHTML = '<p class="gg-note">部门单元不计网格测度；所选单元的对接情况见左侧面板。' +
            "Units have no grid measures: see the docking panel.</p>";
        },
        renderTools: function (enabled) {
          var one = state.selected.length === 1;
          $("gg-retire").disabled = !(enabled && one && units.active());
          $("gg-unit-propose").disabled = !(units.active() && one && ui.docking && !state.saving);
        }
      });

      /* ------------------------------------------------------------ grids beneath */

      function drawBeneath(grids, pieces) {
        beneathLayer.clearLayers();
        ui.beneath = {};
        ui.straddling = {};
        (pieces.features || []).forEach(function (f) {
          var p = f.properties;
          (ui.straddling[p.grid_code] = ui.straddling[p.grid_code] || []).push({ unit_code: p.unit_code, share: p.share });
        });
        (grids.features || []).forEach(function (f) {
          if (f.properties.valid_to && new Date(f.properties.valid_to) <= new Date()) return;
          var shown = GG.datum.shiftGeoJSON({ type: "Feature", geometry: f.geometry, properties: {} });
          var layer = L.geoJSON(shown, { style: function () { return STYLE.beneath; }, interactive: false });
          layer.addTo(beneathLayer);
          ui.beneath[f.properties.code] = { props: f.properties, layer: layer };
        });
      }

      /** The grids straddling the selected unit in orange. */
      function highlight() {
        var code = units.active() && state.selected.length === 1 ? state.selected[0] : null;
        Object.keys(ui.beneath).forEach(function (g) {
          var mine = code && (ui.straddling[g] || []).some(function (s) { return s.unit_code === code; });
          ui.beneath[g].layer.setStyle(mine ? STYLE.straddling : STYLE.beneath);
        });
      }

      /* ------------------------------------------------------------ docking panel */

      function households(codes) {
        var total = 0, known = 0;
        codes.forEach(function (g) {
          var b = ui.beneath[g];
          if (b && b.props.households !== undefined && b.props.households !== null) {
            total += Number(b.props.households);
            known += 1;
          }
        });
        return known ? total : null;
      }

      function renderDocking() {
        var box = $("gg-unit-docking");
        var d = ui.docking;
        if (!units.active() || state.selected.length !== 1 || !d) {
          box.textContent = "选择一个单元查看其与网格的对接情况。";
          return;
        }
        var code = state.selected[0];
        var inside = [], straddling = [], edge = [];
        d.grids.forEach(function (g) {
          var parts = ui.straddling[g.code] || [];
          var mine = parts.filter(function (s) { return s.unit_code === code; })[0];
          if (mine) straddling.push({ code: g.code, share: mine.share });
          else if (g.unit_code === code) inside.push(g.code);
          else edge.push(g.code);
        });
        var before = d.docking.before;
        box.innerHTML = '<table class="gg-table" id="gg-unit-docking-table"><tbody>' +
          "<tr><td>单元</td><td>" + GG.escape(code) + "</td></tr>" +
          '<tr><td>整体位于本单元的网格</td><td data-measure="inside" data-value="' + inside.length + '">' +
          inside.length + "（" + fmt(households(inside)) + " 户）</td></tr>" +
          '<tr><td>跨本单元边界的网格</td><td data-measure="straddling" data-value="' + straddling.length + '">' +
          straddling.length + (straddling.length ? "：" + straddling.map(function (s) {
            return GG.escape(s.code.slice(-6)) + " " + fmt(100 * s.share, 0) + "%";
          }).join("、") : "") + "</td></tr>" +
          (edge.length ? "<tr><td>仅边缘相交的网格</td><td>" + edge.length + "</td></tr>" : "") +
          '<tr><td>对接得分（相关网格）</td><td data-measure="score" data-value="' + before.score + '">' +
          fmt(before.score, 1) + "</td></tr></tbody></table>" +
          '<p class="gg-note">跨界网格以橙色标出。对接以网格为准：户数为整体位于本单元网格的合计。</p>';
      }

      function moveRow(title, key, side) {
        return "<tr><td>" + title + '</td><td data-measure="' + side + "-" + key + '">' + fmt(ui.docking[side][key]) + "</td></tr>";
      }

      /** The answer already fetched is the proposal: draw it, with what moves. */
      function preview() {
        var d = ui.docking;
        if (!d) return;
        ui.preview = true;
        previewLayer.clearLayers();
        L.geoJSON(GG.datum.shiftGeoJSON({ type: "Feature", geometry: d.lost.geometry, properties: {} }),
          { style: function () { return STYLE.lost; }, pmIgnore: true, snapIgnore: true }).addTo(previewLayer);
        L.geoJSON(GG.datum.shiftGeoJSON({ type: "Feature", geometry: d.gained.geometry, properties: {} }),
          { style: function () { return STYLE.gained; }, pmIgnore: true, snapIgnore: true }).addTo(previewLayer);
        L.geoJSON(GG.datum.shiftGeoJSON({ type: "Feature", geometry: d.geometry, properties: {} }),
          { style: function () { return STYLE.proposed; }, pmIgnore: true, snapIgnore: true }).addTo(previewLayer);
        var b = d.docking.before, a = d.docking.after;
        var emptied = d.neighbours.filter(function (n) { return n.emptied; }).map(function (n) { return n.unit_code; });
        var box = $("gg-unit-proposal");
        box.innerHTML = "<h3>由整网格组成的边界（预览）</h3>" +
          '<table class="gg-table" id="gg-unit-proposal-table"><tbody>' +
          '<tr><td>对接得分</td><td data-measure="score" data-before="' + b.score + '" data-after="' + a.score + '">' +
          fmt(b.score, 1) + " → " + fmt(a.score, 1) + "</td></tr>" +
          '<tr><td>单一单元网格</td><td data-measure="docked" data-before="' + b.docked + '" data-after="' + a.docked + '">' +
          fmt(b.docked) + " → " + fmt(a.docked) + " / " + fmt(b.grids) + "</td></tr>" +
          '<tr><td>划入面积 m²（绿）</td><td data-measure="gained-area_m2">' + fmt(d.gained.area_m2, 0) + "</td></tr>" +
          moveRow("划入户数", "households", "gained") + moveRow("划入事件", "incidents", "gained") +
          moveRow("划入重点场所", "key_sites", "gained") +
          '<tr><td>划出面积 m²（橙）</td><td data-measure="lost-area_m2">' + fmt(d.lost.area_m2, 0) + "</td></tr>" +
          moveRow("划出户数", "households", "lost") + moveRow("划出事件", "incidents", "lost") +
          moveRow("划出重点场所", "key_sites", "lost") +
          "<tr><td>随之调整的相邻单元</td><td>" + GG.escape(d.neighbours.map(function (n) { return n.unit_code; }).join("、") || "—") +
          "</td></tr></tbody></table>" +
          (emptied.length ? '<p class="gg-note">注意：相邻单元 ' + GG.escape(emptied.join("、")) +
            " 将被清空，保存方案时会被拒绝。</p>" : "") +
          '<p class="gg-note">紫色虚线为建议边界。仅为预览，保存为方案后经审批发布才生效。</p>';
        box.hidden = false;
        $("gg-unit-plan-name").value = $("gg-unit-plan-name").value || d.unit_code + " 按整网格对齐";
        $("gg-unit-plan-save").hidden = false;
        map.fitBounds(previewLayer.getBounds(), { paddingTopLeft: [40, 40], paddingBottomRight: [420, 40], maxZoom: 16, animate: false });
      }
      page.unitPreview = preview;

      function savePlan() {
        var d = ui.docking, k = kind();
        var name = $("gg-unit-plan-name").value.trim();
        var reason = $("gg-unit-plan-reason").value.trim();
        if (!d || !name || !reason) {
          page.showProblem("请填写方案名称和原因 (a name and a reason are required)");
          return Promise.resolve();
        }
        page.clearProblem();
        var body = { name: name, unit_code: d.unit_code, unit_layer: k.layer, unit_level: k.level, reason: reason };
        $("gg-unit-plan-button").disabled = true;
        return page.call("POST", cfg.planUrl, body).then(function (answer) {
          $("gg-unit-plan-button").disabled = false;
          if (!answer.ok) {
            page.drawRefusal(answer);
            return;
          }
          ui.planSaved = answer.data.id;
          GG.status("已保存为方案 #" + answer.data.id + "（草稿）：" + answer.data.name);
          $("gg-unit-plan-reason").value = "";
          $("gg-unit-plan-save").hidden = true;
          return loadPlans();
        });
      }

      /** The unit plans of the account's area (GET /plans, kind = unit). */
      function loadPlans() {
        if (!config.plansUrl) return Promise.resolve();
        return page.call("GET", config.plansUrl + "?limit=1000").then(function (answer) {
          if (!answer.ok) return;
          ui.plans = ((answer.data && answer.data.items) || []).filter(function (p) { return p.kind === "unit"; });
          $("gg-unit-plans").innerHTML = ui.plans.map(function (p) {
            return '<li data-plan="' + GG.escape(p.id) + '">#' + GG.escape(p.id) + " " + GG.escape(p.name) +
              "（" + GG.escape(STATUS_ZH[p.status] || p.status) + "）</li>";
          }).join("") || '<li class="gg-note">（无）</li>';
        });
      }

      /* ------------------------------------------------------------ mode */

      /** Show the tools of the mode: unit mode saves live only (unit plans come from the
       * docking proposal) and has no grid measures. */
      function applyMode() {
        var unit = units.active();
        $("gg-unit-tools").hidden = !unit;
        var target = $("gg-target-field");
        if (unit) {
          state.target = "live";
          $("gg-target").value = "live";
          target.hidden = true;
        } else if ($("gg-target").options.length > 1 || config.plansUrl) {
          target.hidden = false;
        }
        var head = document.querySelectorAll("#gg-grids thead th");
        head[0].textContent = unit ? "单元编码" : "网格编码";
        head[2].textContent = unit ? "上级" : "户数";
        $("gg-select-note").textContent = unit ?
          "点击单元选择，按住 Shift 点击可多选（合并、移动共用边界）；网格为细绿线，仅供对照。" +
          " Click a unit to select it; the grids beneath are read-only." :
          "点击网格选择，按住 Shift 点击可多选（合并、移动共用边界）。 Click a grid to select it; Shift-click to select several.";
        // grid measures only: a unit's docking is in the panel
        $("gg-measures-box").style.display = unit ? "none" : ""; // .gg-float sets display
        document.body.classList.toggle("gg-unit-mode", unit);
      }

      $("gg-layer").value = ui.mode;
      $("gg-layer").addEventListener("change", function (e) {
        page.stopEditing();
        ui.mode = e.target.value;
        applyMode();
        page.reload(false);
      });
      $("gg-retire").addEventListener("click", function () {
        if (state.selected.length !== 1) return;
        page.pushOp({ op: "retire", code: state.selected[0] });
      });
      $("gg-unit-propose").addEventListener("click", preview);
      $("gg-unit-plan-button").addEventListener("click", savePlan);
      applyMode();
      loadPlans();
    }
  };
})();
