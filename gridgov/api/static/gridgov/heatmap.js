/*
 * gridgov — /map/heatmap, for supervisors (区/市指挥中心).
 *
 * Every view is drawn from the incident aggregates, never from raw incidents, so that it
 * stays fast on two years of data and honours every filter (including overdue):
 *   - H3 hexagons: /aggregates/incidents/h3 at a resolution fitted to the area shown;
 *   - kernel heat: the same cells one resolution finer, each weighted by its count;
 *   - per-grid counts on hover: /aggregates/incidents/by/grid over the grid vector tiles;
 *   - the trend chart: /aggregates/incidents/trend.
 */
(function () {
  "use strict";
  var GG = (window.GridGov = window.GridGov || {});

  GG.heatmap = {
    init: function (map, config) {
      GG.setup(map, config);
      var state = { area: null, mode: "hex", byGrid: {}, h3: null, total: 0, overdue: 0, loads: 0 };
      var page = (window.GridGovPage = { map: map, state: state });

      var hexLayer = L.geoJSON(null, {
        pane: "gg-areas",
        style: function (f) {
          return { color: "#8c2d04", weight: 0.6, opacity: 0.6, fillColor: colourFor(f.properties.count),
            fillOpacity: 0.7 };
        },
        onEachFeature: function (f, l) {
          l.bindTooltip("事件 " + GG.number(f.properties.count) + " 件，逾期 " +
            GG.number(f.properties.overdue) + " 件", { sticky: true });
        }
      }).addTo(map);
      var heatLayer = L.heatLayer([], { radius: 22, blur: 18, maxZoom: 14, minOpacity: 0.25 });
      page.hexLayer = hexLayer;
      page.heatLayer = heatLayer;

      /* -------------------------------------------------------------- grids on hover */

      var info = L.control({ position: "topright" });
      info.onAdd = function () {
        this._div = L.DomUtil.create("div", "gg-info");
        this._div.id = "gg-grid-info";
        this.update(null);
        return this._div;
      };
      info.update = function (props) {
        if (!props) {
          this._div.innerHTML = "<h4>网格事件数</h4>" +
            (map.getZoom() >= config.grid.minZoom ? "将鼠标移到网格上" : "放大到 " + config.grid.minZoom + " 级以上");
          return;
        }
        var counts = state.byGrid[props.code] || { count: 0, overdue: 0 };
        this._div.innerHTML = "<h4>网格 " + GG.escape(props.code) + "</h4>" +
          GG.escape(props.name || "") + "<br>事件 <b>" + GG.number(counts.count) + "</b> 件，逾期 <b>" +
          GG.number(counts.overdue) + "</b> 件" + (props.synthetic ? '<br><span class="gg-synthetic">合成数据</span>' : "");
      };
      info.addTo(map);
      map.on("zoomend", function () { info.update(null); });

      var gridTiles = GG.vectorTiles(map, config.grid, {
        featureId: function (f) { return f.properties.code; },
        style: function (props) {
          if (!inArea(props)) return null;
          if (props.valid_to && new Date(props.valid_to) <= new Date()) return null;
          return { color: "#1b9e77", weight: 1, opacity: 0.8, fill: true, fillColor: "#1b9e77", fillOpacity: 0.01 };
        }
      }).addTo(map);
      gridTiles.on("mouseover", function (e) {
        info.update(e.layer.properties);
        gridTiles.setFeatureStyle(e.layer.properties.code,
          { color: "#084081", weight: 3, fill: true, fillColor: "#084081", fillOpacity: 0.15 });
      });
      gridTiles.on("mouseout", function (e) {
        info.update(null);
        gridTiles.resetFeatureStyle(e.layer.properties.code);
      });
      page.gridTiles = gridTiles;

      function inArea(props) {
        if (!state.area) return true;
        var codes = state.area.codes;
        return Object.keys(codes).every(function (k) { return props[k] === undefined || props[k] === codes[k]; });
      }

      /* -------------------------------------------------------------- filters */

      function value(id) { return document.getElementById(id).value; }

      /** Filters shared by every aggregate request. */
      function filters() {
        var params = {
          // Local calendar dates, both inclusive (as the aggregates API reads them).
          from: value("gg-from"),
          to: value("gg-to"),
          category: value("gg-category"),
          status: value("gg-status-filter"),
          overdue: document.getElementById("gg-overdue").checked ? "true" : ""
        };
        if (state.area) L.extend(params, state.area.codes);
        return params;
      }

      function resolution() {
        var chosen = value("gg-resolution");
        if (chosen) return Number(chosen);
        return config.resolutionByArea[state.area ? state.area.level : "city"];
      }

      /* -------------------------------------------------------------- loading */

      var loadH3 = GG.latest(function (params) { return GG.getJSON(config.h3Url, params); });
      var loadGrids = GG.latest(function (params) {
        return GG.getJSON(config.byUrl.replace("{level}", "grid"), params);
      });
      var loadTrend = GG.latest(function (params) { return GG.getJSON(config.trendUrl, params); });

      function reload() {
        GG.clearError();
        var params = filters();
        var res = state.mode === "heat" ? Math.min(resolution() + 1, 10) : resolution();
        state.loads += 1;
        var h3 = loadH3(L.extend({ resolution: res }, params)).then(function (data) {
          state.h3 = data;
          state.resolution = res;
          draw();
        });
        var grids = loadGrids(params).then(function (data) {
          var byGrid = {};
          data.items.forEach(function (item) { byGrid[item.code] = item; });
          state.byGrid = byGrid;
        });
        var trend = loadTrend(L.extend({ interval: value("gg-interval") }, params)).then(function (data) {
          var where = state.area ? state.area.name : "全市";
          GG.trendChart(document.getElementById("gg-chart"), data.items, "事件趋势：" + where, data.interval);
          state.trend = data.items;
        });
        return Promise.all([h3, grids, trend]).then(function () {
          state.ready = state.loads;
          GG.status("已更新 " + new Date().toLocaleTimeString("zh-CN"));
        }, function () { /* shown by GG.getJSON */ });
      }
      page.reload = reload;

      /* -------------------------------------------------------------- drawing */

      var breaks = [];

      /** Class breaks: quantiles of the cell counts, made distinct (at most 6 classes). */
      function computeBreaks(counts) {
        var sorted = counts.slice().sort(function (a, b) { return a - b; });
        var out = [];
        for (var i = 1; i <= config.ramp.length; i++) {
          var v = sorted[Math.min(sorted.length - 1, Math.ceil((i / config.ramp.length) * sorted.length) - 1)];
          if (v !== undefined && out.indexOf(v) < 0) out.push(v);
        }
        return out;
      }

      function colourFor(count) {
        for (var i = 0; i < breaks.length; i++) {
          if (count <= breaks[i]) return config.ramp[Math.round((i * (config.ramp.length - 1)) / Math.max(breaks.length - 1, 1))];
        }
        return config.ramp[config.ramp.length - 1];
      }

      function draw() {
        var data = state.h3;
        if (!data) return;
        var features = data.features || [];
        var counts = features.map(function (f) { return f.properties.count; });
        state.total = counts.reduce(function (a, b) { return a + b; }, 0);
        state.overdue = features.reduce(function (a, f) { return a + (f.properties.overdue || 0); }, 0);
        state.cells = features.length;
        breaks = computeBreaks(counts);
        document.getElementById("gg-summary").innerHTML = "合计 <b id=\"gg-total\">" + GG.number(state.total) +
          "</b> 件，逾期 <b id=\"gg-overdue-total\">" + GG.number(state.overdue) + "</b> 件（H3 分辨率 " +
          state.resolution + "，" + features.length + " 个六边形）";
        hexLayer.clearLayers();
        if (state.mode === "hex") {
          hexLayer.addData(GG.datum.shiftGeoJSON(data));
          drawScale();
          if (map.hasLayer(heatLayer)) map.removeLayer(heatLayer);
        } else {
          var max = Math.max.apply(null, [1].concat(counts));
          var points = features.map(function (f) {
            var c = centroid(f.geometry);
            var ll = GG.datum.latLng(c[0], c[1]);
            return [ll.lat, ll.lng, f.properties.count];
          });
          heatLayer.setOptions({ max: max });
          heatLayer.setLatLngs(points);
          if (!map.hasLayer(heatLayer)) heatLayer.addTo(map);
          document.getElementById("gg-scale").innerHTML =
            '<span style="background:linear-gradient(90deg,#00f,#0ff,#0f0,#ff0,#f00);width:150px"></span><em>少 → 多</em>';
        }
      }

      function drawScale() {
        var html = "";
        var lower = 1;
        breaks.forEach(function (b, i) {
          html += '<span style="background:' + colourFor(b) + '"></span><em>' +
            (lower === b ? b : lower + "–" + b) + "</em>";
          lower = b + 1;
        });
        document.getElementById("gg-scale").innerHTML = html ? "每六边形事件数：" + html : "";
      }

      /** Centroid of a hexagon's outer ring (vertex mean: exact enough for a hexagon). */
      function centroid(geometry) {
        var ring = geometry.type === "MultiPolygon" ? geometry.coordinates[0][0] : geometry.coordinates[0];
        var n = ring.length - 1, x = 0, y = 0;
        for (var i = 0; i < n; i++) { x += ring[i][0]; y += ring[i][1]; }
        return [x / n, y / n];
      }

      /* -------------------------------------------------------------- controls */

      GG.pageAreaSelector(page, map, 3, function () {
        gridTiles.redraw();
        reload();
      });
      ["gg-from", "gg-to", "gg-category", "gg-status-filter", "gg-overdue", "gg-resolution", "gg-interval"].forEach(
        function (id) { document.getElementById(id).addEventListener("change", reload); }
      );
      Array.prototype.forEach.call(document.querySelectorAll('input[name="gg-mode"]'), function (radio) {
        radio.addEventListener("change", function () {
          state.mode = radio.value;
          reload();
        });
      });
      reload();
    }
  };
})();
