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
 *   - retire the selected unit (DELETE, gap=give) as one more pending edit;
 *   - a new unit (新建单元): a polygon drawn in the selected unit's group, one more pending
 *     edit, POSTed to the save base (live: with the group's district / level / parent)
 *     with overlap=take, so its area comes from the units it covers;
 *   - a unit plan (方案) as the save target: POST /plans/units makes a draft plan of the
 *     selected unit's group (its siblings: same layer, district, level and parent); with the
 *     plan chosen in "保存到", the list is the plan's group (GET /plans/{id}/units), the
 *     edits go to /plans/{id}/units (which mirrors /units/{layer}), today's shapes of the
 *     changed units are drawn in grey, and the plan is submitted (POST /plans/{id}/submit).
 */
(function () {
  "use strict";
  var GG = (window.GridGov = window.GridGov || {});

  var STYLE = {
    beneath: { color: "#1b9e77", weight: 1, opacity: 0.8, fill: false, interactive: false },
    straddling: { color: "#ff7f00", weight: 2, opacity: 1, fillColor: "#ff7f00", fillOpacity: 0.15, interactive: false },
    proposed: { color: "#3f007d", weight: 3, opacity: 1, dashArray: "8 5", fill: false, interactive: false },
    gained: { color: "#31a354", weight: 1.5, opacity: 1, fillColor: "#31a354", fillOpacity: 0.45, interactive: false },
    lost: { color: "#e6550d", weight: 1.5, opacity: 1, fillColor: "#fd8d3c", fillOpacity: 0.55, interactive: false },
    today: { color: "#636363", weight: 2, opacity: 0.9, dashArray: "3 5", fill: false, interactive: false }
  };
  var CHANGE_ZH = { changed: "调整", created: "新增", retired: "撤销" };
  var STATUS_ZH = { draft: "草稿", submitted: "已提交", approved: "已批准", published: "已发布" };

  function $(id) {
    return document.getElementById(id);
  }

  function fmt(value, digits) {
    return GG.fmt(value, digits);
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
        planSaved: null,
        plan: null, // the answer of GET /plans/{id}/units while a plan is the target
        creating: null // a new unit being drawn: {properties, group}
      });
      // Thin, read-only grid lines: what the units dock with. Not pmIgnore'd for snapping.
      var beneathLayer = L.featureGroup().addTo(map);
      var previewLayer = L.featureGroup({ pmIgnore: true, snapIgnore: true }).addTo(map);
      // today's shapes of the units a plan changes (plan vs today)
      var todayLayer = L.featureGroup({ pmIgnore: true, snapIgnore: true }).addTo(map);
      beneathLayer.bringToBack && beneathLayer.bringToBack();
      // a unit plan's figures in the measures box (editor_unit_figures.js)
      var figures = GG.unitPlanFigures ? GG.unitPlanFigures(page, config) : null;

      function kind() {
        return kinds[ui.mode] || null;
      }

      function dockParams() {
        var k = kind();
        return { unit_layer: k.layer, unit_level: k.level };
      }

      /** The draft unit plan edited into, or null when edits go live. */
      function planTarget() {
        return state.target && state.target !== "live" ? state.target : null;
      }

      function planUrl(url, id) {
        return url.replace("{id}", encodeURIComponent(id));
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
        base: function () {
          var id = planTarget();
          return id ? planUrl(cfg.planUnitsUrl, id) : cfg.unitsUrl + "/" + kind().layer;
        },
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
          var id = planTarget();
          // a plan: its whole group as the plan has it; live: the township's units
          var listed = id ? GG.getJSON(planUrl(cfg.planUnitsUrl, id)) :
            GG.getJSON(config.itemsUrl.replace("{layer}", k.layer), q);
          return Promise.all([
            listed,
            GG.getJSON(config.itemsUrl.replace("{layer}", "grid"), gridParams),
            GG.getJSON(config.dockingGridsUrl, L.extend({ township_code: t }, dockParams()))
          ]).then(function (answers) {
            drawBeneath(answers[1], answers[2]);
            if (!id) return answers[0];
            ui.plan = answers[0];
            renderPlan();
            return answers[0].group;
          });
        },
        /** Some pending edits were saved, the rest refused and kept on screen: the plan's
         *  panel and figures follow what was saved without redrawing the units. */
        savedInPart: function () {
          var id = planTarget();
          if (!id) return;
          GG.getJSON(planUrl(cfg.planUnitsUrl, id)).then(function (answer) {
            if (planTarget() !== id) return;
            ui.plan = answer;
            renderPlan();
          }, function () { /* GG.getJSON has shown the problem */ });
        },
        cleared: function () {
          beneathLayer.clearLayers();
          previewLayer.clearLayers();
          ui.beneath = {};
          ui.straddling = {};
          ui.docking = null;
          ui.preview = false;
          ui.plan = null;
          todayLayer.clearLayers();
          $("gg-unit-proposal").hidden = true;
          $("gg-unit-plan-save").hidden = true;
          $("gg-unit-plan-view").hidden = true;
        },
        /** The selection changed: read the selected unit's docking (one unit only). */
        selected: function () {
          ui.docking = null;
          ui.preview = false;
          previewLayer.clearLayers();
          $("gg-unit-proposal").hidden = true;
          $("gg-unit-plan-save").hidden = true;
          highlight();
          if (!units.active() || state.selected.length !== 1 || planTarget()) {
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
          if (figures && figures.render(box, planTarget())) return;
          box.innerHTML = '<p class="gg-note">部门单元不计网格测度；所选单元的对接情况见左侧面板。' +
            "Units have no grid measures: see the docking panel.</p>";
        },
        renderTools: function (enabled) {
          var one = state.selected.length === 1;
          $("gg-retire").disabled = !(enabled && one && units.active());
          $("gg-unit-new").disabled = !(enabled && one && units.active() && !ui.creating);
          $("gg-unit-propose").disabled = !(units.active() && one && ui.docking && !state.saving);
          $("gg-unit-plan-new").disabled = !(enabled && one && units.active() && !planTarget() && config.plansUrl);
          $("gg-unit-plan-submit").disabled = !(planTarget() && ui.plan && !state.ops.length && !state.saving);
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
        if (units.active() && planTarget()) {
          box.textContent = "所选单元的对接情况按现行单元计；方案的对接得分（现行 → 方案）见右侧方案测度。";
          return;
        }
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
            return '<li data-plan="' + GG.escape(p.id) + '" data-kind="unit">#' + GG.escape(p.id) + " " +
              GG.escape(p.name) + " · 部门单元 " + GG.escape(p.unit_code || "") +
              "（" + GG.escape(STATUS_ZH[p.status] || p.status) + "）</li>";
          }).join("") || '<li class="gg-note">（无）</li>';
        });
      }

      /* ------------------------------------------------------------ unit plans */

      /** The plan vs today: the units it changes, today's shapes in grey, dashed. */
      function renderPlan() {
        var answer = ui.plan;
        todayLayer.clearLayers();
        if (!answer) return;
        var inGroup = {};
        var rows = [];
        (answer.group.features || []).forEach(function (f) {
          inGroup[f.properties.code] = true;
          if (f.properties.change && f.properties.change !== "unchanged") {
            rows.push({ code: f.properties.code, change: f.properties.change });
          }
        });
        var areas = {};
        ((answer.units && answer.units.features) || []).forEach(function (f) {
          var p = f.properties;
          areas[p.code] = p.area_change_m2;
          if (!inGroup[p.code]) rows.push({ code: p.code, change: "retired" });
          if (p.today) {
            L.geoJSON(GG.datum.shiftGeoJSON({ type: "Feature", geometry: p.today, properties: {} }),
              { style: function () { return STYLE.today; }, pmIgnore: true, snapIgnore: true }).addTo(todayLayer);
          }
        });
        rows.sort(function (a, b) { return a.code < b.code ? -1 : 1; });
        var plan = (state.plans || []).filter(function (p) { return String(p.id) === String(planTarget()); })[0];
        $("gg-unit-plan-title").textContent = "方案 #" + planTarget() + (plan ? " " + plan.name : "") +
          " 与现状 (plan vs today)";
        $("gg-unit-plan-changes").innerHTML = (rows.length ?
          '<table class="gg-table" id="gg-unit-plan-table"><thead><tr><th>单元</th><th>变化</th>' +
          "<th>面积变化 m²</th></tr></thead><tbody>" + rows.map(function (r) {
            return '<tr data-code="' + GG.escape(r.code) + '" data-change="' + GG.escape(r.change) + '"><td>' +
              GG.escape(r.code) + "</td><td>" + GG.escape(CHANGE_ZH[r.change] || r.change) + "</td><td>" +
              fmt(areas[r.code], 0) + "</td></tr>";
          }).join("") + "</tbody></table>" : "<p>方案尚无调整（与现状相同）。</p>") +
          "<p>方案中的单元共 " + (answer.group.features || []).length + " 个；灰色虚线为调整单元的现状边界。" +
          "保存的调整只进入方案，经审批发布后生效。</p>";
        $("gg-unit-plan-view").hidden = false;
        if (figures) figures.refresh(planTarget(), kind().title);
      }

      function showCreate() {
        if (state.selected.length !== 1) return;
        var code = state.selected[0];
        $("gg-unit-plan-new-name").value = code + " 所在组调整";
        $("gg-unit-plan-create").hidden = false;
        $("gg-unit-plan-new-reason").focus();
      }

      /** A draft plan of the selected unit's group, then opened as the save target. */
      function createPlan() {
        var name = $("gg-unit-plan-new-name").value.trim();
        var reason = $("gg-unit-plan-new-reason").value.trim();
        if (state.selected.length !== 1 || !name || !reason) {
          page.showProblem("请选择一个单元并填写方案名称和原因 (select one unit; a name and a reason are required)");
          return Promise.resolve();
        }
        page.clearProblem();
        var body = { unit_layer: kind().layer, unit_code: state.selected[0], name: name, reason: reason };
        $("gg-unit-plan-create-button").disabled = true;
        return page.call("POST", cfg.newPlanUrl, body).then(function (answer) {
          $("gg-unit-plan-create-button").disabled = false;
          if (!answer.ok) {
            page.drawRefusal(answer);
            return;
          }
          var id = String(answer.data.id);
          ui.planSaved = answer.data.id;
          $("gg-unit-plan-create").hidden = true;
          $("gg-unit-plan-new-reason").value = "";
          loadPlans();
          return page.openPlan(id).then(function () {
            GG.status("已新建方案 #" + id + "（草稿）：" + answer.data.name + "；之后的调整保存到此方案");
          });
        });
      }

      /** Submit the plan (read-only from then on): edits go live again. */
      function submitPlan() {
        var id = planTarget();
        if (!id || state.ops.length) return Promise.resolve();
        page.clearProblem();
        $("gg-unit-plan-submit").disabled = true;
        return page.call("POST", planUrl(cfg.submitUrl, id)).then(function (answer) {
          if (!answer.ok) {
            page.renderTools();
            page.drawRefusal(answer);
            return;
          }
          state.target = "live";
          loadPlans();
          return page.loadPlans().then(function () { return page.reload(false); }).then(function () {
            GG.status("方案 #" + id + " 已提交（只读，待区级账户批准）");
          });
        });
      }

      /* ------------------------------------------------------------ a new unit */

      /** Urban-management and emergency units name their department; police units do not. */
      function hasDepartment() {
        return kind().layer !== "police_unit";
      }

      function showNew() {
        if (state.selected.length !== 1) return;
        var props = state.grids[state.selected[0]].props;
        $("gg-unit-new-department-field").hidden = !hasDepartment();
        $("gg-unit-new-department").value = hasDepartment() ? props.department || "" : "";
        $("gg-unit-new-form").hidden = false;
        $("gg-unit-new-name").focus();
      }

      function hideNew() {
        $("gg-unit-new-form").hidden = true;
        $("gg-unit-new-name").value = "";
      }

      /** Draw the new unit's area: it joins the selected unit's group (in a plan, the
       * plan's group, which the plan routes fill in themselves). */
      function drawNew() {
        var name = $("gg-unit-new-name").value.trim();
        var department = $("gg-unit-new-department").value.trim();
        if (state.selected.length !== 1 || !name || (hasDepartment() && !department)) {
          page.showProblem(page.say("请选择一个{member}并填写新{member}的名称") + (hasDepartment() ? "和责任部门" : "") +
            " (select one unit; the new unit needs a name" + (hasDepartment() ? " and a department)" : ")"));
          return;
        }
        page.clearProblem();
        var code = state.selected[0], p = state.grids[code].props;
        var properties = hasDepartment() ? { name: name, department: department } : { name: name };
        var group = null;
        if (!planTarget()) {
          group = { district_code: p.district_code };
          if (kind().layer === "police_unit") {
            group.level = p.level;
            if (p.parent_code) group.parent_code = p.parent_code;
          }
        }
        page.stopEditing();
        ui.creating = { properties: properties, group: group };
        state.drawing = true; // clicks on the units are the drawing's vertices
        map.pm.enableDraw("Polygon", { snappable: true, templineStyle: STYLE.proposed, hintlineStyle: STYLE.proposed });
        GG.status(page.say("在 " + code + " 所在组内画出新{member}的范围，单击起点结束" +
          " (draw the new {memberEn}, click the first vertex to finish)"));
        page.renderTools();
      }

      map.on("pm:create", function (e) {
        if (!ui.creating || e.shape !== "Polygon") return;
        var made = ui.creating;
        ui.creating = null;
        state.drawing = false;
        var geometry = page.geometryOf(e.layer);
        map.removeLayer(e.layer);
        map.pm.disableDraw();
        hideNew();
        GG.status("");
        var body = L.extend({ type: "Feature", geometry: geometry, properties: made.properties }, made.group || {});
        page.pushOp({ op: "create", codes: [], name: made.properties.name, geometry: geometry, body: body });
      });

      // Escape (or Geoman's cancel) ends the drawing without a polygon.
      map.on("pm:drawend", function () {
        setTimeout(function () {
          if (!ui.creating) return;
          ui.creating = null;
          state.drawing = false;
          GG.status("");
          page.renderTools();
        }, 0);
      });

      /* ------------------------------------------------------------ mode */

      /** Show the tools of the mode: each mode saves live or into its own kind of plan
       * (the target list is read again), and unit mode has no grid measures. */
      function applyMode() {
        var unit = units.active();
        $("gg-unit-tools").hidden = !unit;
        $("gg-unit-plan-create").hidden = true;
        hideNew();
        state.target = "live";
        $("gg-target").value = "live";
        if (page.loadPlans) page.loadPlans();
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
        page.applyWords(); // 网格 or the layer's own word in every tool text
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
      $("gg-unit-new").addEventListener("click", showNew);
      $("gg-unit-new-draw").addEventListener("click", drawNew);
      $("gg-unit-new-cancel").addEventListener("click", function () {
        if (ui.creating) map.pm.disableDraw();
        hideNew();
      });
      $("gg-unit-propose").addEventListener("click", preview);
      $("gg-unit-plan-button").addEventListener("click", savePlan);
      $("gg-unit-plan-new").addEventListener("click", showCreate);
      $("gg-unit-plan-create-button").addEventListener("click", createPlan);
      $("gg-unit-plan-submit").addEventListener("click", submitPlan);
      applyMode();
      loadPlans();
    }
  };
})();
