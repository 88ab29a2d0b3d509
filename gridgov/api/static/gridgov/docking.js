/*
 * gridgov — /map/docking (条例第六十二条): grids over police / urban-management /
 * emergency units.
 *
 *   - units: GeoJSON from the Features API, by level and area;
 *   - grids: vector tiles (from zoom 12);
 *   - straddling grids: /docking/grids, one piece per (grid, unit) with its share;
 *   - the table: /docking/townships, the docking score of every township.
 */
(function () {
  "use strict";
  var GG = (window.GridGov = window.GridGov || {});

  GG.docking = {
    init: function (map, config) {
      GG.setup(map, config);
      var state = { area: null, kind: null, townships: [], pieces: 0, straddling: 0, loads: 0 };
      var page = (window.GridGovPage = { map: map, state: state });

      var unitLayer = L.geoJSON(null, {
        pane: "gg-areas",
        style: function () { return unitStyle(); },
        onEachFeature: function (f, l) {
          l.bindTooltip(GG.escape(f.properties.name || f.properties.code), { sticky: true });
          l.bindPopup(GG.popupHtml(config.unitLayers[state.kind.layer], f.properties));
        }
      }).addTo(map);

      var gridTiles = GG.vectorTiles(map, config.grid, {
        style: function (props) {
          if (state.area && props.township_code && state.area.codes.township_code &&
              props.township_code !== state.area.codes.township_code) return null;
          if (props.valid_to && new Date(props.valid_to) <= new Date()) return null;
          return { color: "#1b9e77", weight: 1, opacity: 0.7, fill: false };
        }
      }).addTo(map);

      var pieceLayer = L.geoJSON(null, {
        pane: "gg-highlight",
        style: function (f) {
          return { color: "#333", weight: 1, opacity: 0.9, fillOpacity: 0.55,
            fillColor: f.properties.rank === 1 ? config.colours.main : config.colours.other };
        },
        onEachFeature: function (f, l) {
          l.bindPopup(function () { return piecePopup(f.properties.grid_code); });
          l.bindTooltip(GG.percent(f.properties.share, 0), {
            permanent: true, direction: "center", className: "gg-share-label", opacity: 0.9
          });
        }
      }).addTo(map);
      page.unitLayer = unitLayer;
      page.pieceLayer = pieceLayer;
      page.gridTiles = gridTiles;

      var byGrid = {}; // grid code → its pieces' properties, largest first

      function unitStyle() {
        var layer = config.unitLayers[state.kind.layer];
        var colour = GG.colourOf(layer, { level: state.kind.level });
        return { color: colour, weight: 2.5, opacity: 0.9, dashArray: layer.style.dash,
          fill: true, fillColor: colour, fillOpacity: 0.04 };
      }

      function piecePopup(code) {
        var pieces = byGrid[code] || [];
        var first = pieces[0] || {};
        return '<div class="gg-popup"><h3>跨区网格 ' + GG.escape(code) + "</h3>" +
          GG.escape(first.grid_name || "") + "<table>" + pieces.map(function (p) {
            return "<tr><th>" + GG.escape(p.unit_name) + "</th><td>" + GG.percent(p.share) + "</td></tr>";
          }).join("") + "</table>" +
          (config.synthetic.grid ? '<p class="gg-synthetic">合成数据（演示）</p>' : "") + "</div>";
      }

      function labels() {
        var show = map.getZoom() >= config.labelZoom;
        pieceLayer.eachLayer(function (l) {
          if (show) l.openTooltip(); else l.closeTooltip();
        });
      }
      map.on("zoomend", labels);

      /* -------------------------------------------------------------- loading */

      var loadUnits = GG.latest(function (params) {
        return GG.getJSON(config.itemsUrl.replace("{layer}", state.kind.layer), params);
      });
      var loadPieces = GG.latest(function (params) { return GG.getJSON(config.dockingGridsUrl, params); });
      var loadTownships = GG.latest(function (params) {
        return GG.getJSON(config.dockingTownshipsUrl, params);
      });

      function kindParams() {
        return { unit_layer: state.kind.layer, unit_level: state.kind.level };
      }

      function areaParams() {
        return state.area ? L.extend({}, state.area.codes) : {};
      }

      function reload() {
        GG.clearError();
        state.loads += 1;
        var unitParams = L.extend({ limit: config.geojsonLimit }, areaParams());
        if (state.kind.byLevel) unitParams.level = state.kind.level;
        var units = loadUnits(unitParams).then(function (data) {
          unitLayer.clearLayers();
          unitLayer.addData(GG.datum.shiftGeoJSON(data));
          state.units = data.features.length;
        });
        var pieces = loadPieces(L.extend(kindParams(), areaParams())).then(function (data) {
          byGrid = {};
          data.features.forEach(function (f) {
            (byGrid[f.properties.grid_code] = byGrid[f.properties.grid_code] || []).push(f.properties);
          });
          pieceLayer.clearLayers();
          pieceLayer.addData(GG.datum.shiftGeoJSON(data));
          state.pieces = data.features.length;
          state.straddling = Object.keys(byGrid).length;
          labels();
        });
        var district = state.area ? state.area.codes.district_code : null;
        var table = loadTownships(L.extend(kindParams(), { district_code: district })).then(drawTable);
        return Promise.all([units, pieces, table]).then(function () {
          state.ready = state.loads;
          GG.status("已更新 " + new Date().toLocaleTimeString("zh-CN"));
        }, function () { /* shown by GG.getJSON */ });
      }
      page.reload = reload;

      function drawTable(data) {
        var rows = data.items.slice().sort(function (a, b) { return a.score - b.score || (a.code < b.code ? -1 : 1); });
        state.townships = rows;
        var selected = state.area && state.area.codes.township_code;
        // The summary covers what is selected: one township, else the table's rows.
        var grids = 0, docked = 0;
        rows.forEach(function (r) {
          if (!selected || r.code === selected) { grids += r.grids; docked += r.docked; }
        });
        document.querySelector("#gg-townships tbody").innerHTML = rows.map(function (r) {
          return '<tr data-code="' + GG.escape(r.code) + '"' + (r.code === selected ? ' class="gg-selected"' : "") +
            "><td>" + GG.escape(r.name) + "</td><td>" + r.grids + "</td><td>" + GG.percent(r.docked_share, 0) +
            "</td><td>" + r.straddling + "</td><td><b>" + r.score.toFixed(1) + "</b></td></tr>";
        }).join("");
        document.getElementById("gg-summary").innerHTML = (state.area ? GG.escape(state.area.name) : "全市") +
          "：现行网格 " + GG.number(grids) + " 个，位于单一" + GG.escape(state.kind.title) + "的 " +
          GG.number(docked) + " 个（" + (grids ? GG.percent(docked / grids) : "—") + "）";
      }

      document.querySelector("#gg-townships tbody").addEventListener("click", function (e) {
        var row = e.target.closest("tr");
        if (!row) return;
        var code = row.getAttribute("data-code");
        page.selector.choose([code.slice(0, 6), code]);
      });

      /* -------------------------------------------------------------- controls */

      function setKind() {
        var parts = document.getElementById("gg-unit-kind").value.split("/");
        config.kinds.forEach(function (k) {
          if (k.layer === parts[0] && k.level === parts[1]) state.kind = k;
        });
        var style = unitStyle();
        var swatch = document.getElementById("gg-unit-swatch");
        swatch.style.borderColor = style.color;
        swatch.style.borderStyle = style.dashArray ? "dashed" : "solid";
        document.getElementById("gg-unit-title").textContent = state.kind.title;
      }
      document.getElementById("gg-unit-kind").addEventListener("change", function () {
        setKind();
        reload();
      });
      setKind();

      GG.pageAreaSelector(page, map, 2, function () {
        gridTiles.redraw();
        reload();
      });
      reload();
    }
  };
})();
