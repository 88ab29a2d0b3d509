/*
 * gridgov — /map, the overview: every registry layer, switchable by group, with legends,
 * popups and the district → township → community selector.
 *
 * Dense layers (grids, buildings, rentals, incidents) come as vector tiles limited to the
 * chosen area by the server (clusters included) and by their codes in the browser; the others come as GeoJSON limited to the view's bbox
 * and filtered by area on the server. Each layer is drawn only within its zoom range.
 */
(function () {
  "use strict";
  var GG = (window.GridGov = window.GridGov || {});

  GG.overview = {
    init: function (map, config) {
      GG.setup(map, config);
      var state = { area: null };
      var entries = {}; // layer id → {layer, leaflet, enabled, load}
      var page = (window.GridGovPage = { map: map, entries: entries, state: state });

      buildPanel();
      buildImport();
      GG.pageAreaSelector(page, map, 3, function () { refreshAll(true); }).then(function () {
        refreshAll(false);
      });
      map.on("moveend", function () { refreshAll(false); });

      /* -------------------------------------------------------------- the panel */

      function buildPanel() {
        var holder = document.getElementById("gg-layers");
        holder.innerHTML = config.groups.map(function (group) {
          var layers = config.layers.filter(function (l) { return l.group === group.id; });
          if (!layers.length) return "";
          return '<fieldset class="gg-group" data-group="' + group.id + '"><legend>' +
            GG.escape(group.title) + "</legend>" + layers.map(layerHtml).join("") + "</fieldset>";
        }).join("");
        config.layers.forEach(function (layer) {
          var box = document.getElementById("gg-layer-" + layer.id);
          entries[layer.id] = { layer: layer, leaflet: null, enabled: false, drawn: 0 };
          box.addEventListener("change", function () { toggle(layer.id, box.checked); });
          if (config.defaultOn.indexOf(layer.id) >= 0) {
            box.checked = true;
            toggle(layer.id, true);
          }
        });
      }

      function layerHtml(layer) {
        var badge = layer.synthetic ? ' <span class="gg-badge" title="synthetic">合成</span>' : "";
        var zoom = layer.minZoom > 0 ? '<span class="gg-zoom">' + layer.minZoom + " 级以上</span>" : "";
        return '<div class="gg-layer" data-layer="' + layer.id + '"><label>' +
          '<input type="checkbox" id="gg-layer-' + layer.id + '"> ' + GG.escape(layer.title) +
          badge + "</label>" + zoom + GG.legendHtml(layer) + "</div>";
      }

      /* -------------------------------------------------------------- 数据导入 */

      /**
       * The import form: POST /layers/{layer}/import with the session's token (the cookie
       * may not write). The answer is the import's own report: what it wrote or would
       * write, and every refused row with its reason, in Chinese.
       */
      function buildImport() {
        var form = document.getElementById("gg-import");
        if (!form) return;
        var result = document.getElementById("gg-import-result");
        form.addEventListener("submit", function (event) {
          event.preventDefault();
          var file = document.getElementById("gg-import-file").files[0];
          if (!file) {
            result.innerHTML = '<p class="gg-import-bad">请选择文件 (choose a file)</p>';
            return;
          }
          if (file.size > config.maxUploadBytes) {
            result.innerHTML = '<p class="gg-import-bad">文件超过 ' +
              Math.floor(config.maxUploadBytes / 1048576) + " MB 上限 (file too large)</p>";
            return;
          }
          var layer = document.getElementById("gg-import-layer").value;
          var dryRun = document.getElementById("gg-import-dry").checked;
          var body = new FormData();
          body.append("file", file, file.name);
          var crs = document.getElementById("gg-import-crs").value;
          if (crs) body.append("crs", crs);
          if (dryRun) body.append("dry_run", "true");
          if (document.getElementById("gg-import-skip").checked) body.append("skip_invalid", "true");
          var button = document.getElementById("gg-import-go");
          button.disabled = true;
          result.innerHTML = "<p>正在" + (dryRun ? "试导入" : "导入") + " " + GG.escape(file.name) + "…</p>";
          var headers = { Accept: "application/json" };
          if (config.apiToken) headers.Authorization = "Bearer " + config.apiToken;
          fetch(config.importUrl.replace("{layer}", layer), { method: "POST", headers: headers, body: body })
            .then(function (response) {
              return response.text().then(function (text) {
                var data = null;
                try { data = text ? JSON.parse(text) : null; } catch (err) { data = null; }
                result.innerHTML = reportHtml(response.ok, data || {}, response.status);
                result.scrollIntoView({ block: "nearest" });
                if (response.ok && !dryRun && entries[layer]) redraw(entries[layer]);
              });
            }, function () {
              result.innerHTML = '<p class="gg-import-bad">无法连接 gridgov 服务 (cannot reach the server)</p>';
            })
            .then(function () { button.disabled = false; });
        });
      }

      function reportHtml(ok, data, status) {
        var problems = (ok ? data.problems : data.errors) || [];
        var head;
        if (ok && data.dry_run) {
          head = '<p class="gg-import-good">试导入完成，数据库未作改动：将写入 ' + (data.rows_written || 0) + " 行";
        } else if (ok) {
          head = '<p class="gg-import-good">导入完成：已写入 ' + (data.rows_written || 0) + " 行";
        } else {
          head = '<p class="gg-import-bad">' + GG.escape((data.title || "导入失败") + "：" +
            (data.detail || "HTTP " + status));
        }
        var counts = [];
        if (data.rows_read !== undefined) counts.push("读取 " + data.rows_read + " 行");
        if (data.rows_unchanged) counts.push("已存在未变 " + data.rows_unchanged + " 行");
        if (data.rows_rejected) counts.push("拒绝 " + data.rows_rejected + " 行");
        if (data.by_method && Object.keys(data.by_method).length) {
          counts.push("分派：" + Object.keys(data.by_method).map(function (m) {
            return (config.methodTitles[m] || m) + " " + data.by_method[m];
          }).join("，"));
        }
        var html = head + (counts.length ? "；" + counts.join("；") : "") + "</p>";
        // How the file was read: worth a look when the numbers surprise.
        var read = [];
        if (data.sheet) {
          read.push("读取工作表 " + data.sheet + (data.other_sheets && data.other_sheets.length ?
            "（未读：" + data.other_sheets.join("、") + "）" : ""));
        }
        if (data.header_row > 1) read.push("表头在第 " + data.header_row + " 行");
        if (data.rows_empty) read.push("空行跳过 " + data.rows_empty + " 行");
        if (data.encoding) read.push("编码 " + data.encoding);
        if (data.crs) read.push("坐标系 " + data.crs);
        if (read.length) html += '<p class="gg-note">' + GG.escape(read.join("；")) + "</p>";
        if (problems.length) {
          html += '<table class="gg-import-problems"><thead><tr><th>行</th><th>字段</th><th>原因</th></tr></thead><tbody>' +
            problems.slice(0, 50).map(function (p) {
              return "<tr><td>" + (p.row === null || p.row === undefined ? "" : p.row) + "</td><td>" +
                GG.escape(p.field || "") + "</td><td>" + GG.escape(p.reason_zh || p.reason || "") + "</td></tr>";
            }).join("") + "</tbody></table>";
          if (problems.length > 50) html += "<p>……另有 " + (problems.length - 50) + " 个问题</p>";
          html += '<a id="gg-import-problems-csv" download="问题清单.csv" href="' + problemsCsv(problems) +
            '">下载问题清单 (CSV, ' + problems.length + " 个问题)</a>";
        }
        return html;
      }

      /** Every problem as a CSV that Excel opens (UTF-8 with BOM): fix the ledger row by row. */
      function problemsCsv(problems) {
        var quote = function (value) {
          var text = value === null || value === undefined ? "" : String(value);
          return /[",\r\n]/.test(text) ? '"' + text.replace(/"/g, '""') + '"' : text;
        };
        var lines = ["行 (row),字段 (field),原因,reason"].concat(problems.map(function (p) {
          return [p.row, p.field, p.reason_zh, p.reason_en].map(quote).join(",");
        }));
        return "data:text/csv;charset=utf-8," + encodeURIComponent("\ufeff" + lines.join("\r\n") + "\r\n");
      }

      /** After an import: the layer is fetched again if it is on the map. */
      function redraw(entry) {
        if (!entry.enabled || !entry.leaflet) return;
        if (entry.layer.transport === "tiles") entry.leaflet.redraw();
        else refresh(entry, false);
      }

      /* -------------------------------------------------------------- layers */

      function toggle(id, on) {
        var entry = entries[id];
        entry.enabled = on;
        if (!entry.leaflet) entry.leaflet = create(entry.layer);
        if (on) {
          entry.leaflet.addTo(map);
          refresh(entry, true);
        } else {
          map.removeLayer(entry.leaflet);
        }
      }

      function create(layer) {
        if (layer.transport === "tiles") {
          return GG.vectorTiles(map, layer, { style: function (props) { return tileStyle(layer, props); } })
            .on("click", function (e) {
              L.popup().setLatLng(e.latlng).setContent(GG.popupHtml(layer, e.layer.properties)).openOn(map);
            });
        }
        var point = layer.geometry === "POINT";
        var group = L.geoJSON(null, {
          pane: point ? "gg-points" : "gg-areas",
          style: function (f) { return GG.pathStyle(layer, f.properties); },
          pointToLayer: function (f, latlng) {
            var style = GG.pathStyle(layer, L.extend({ __point: true }, f.properties));
            style.pane = "gg-points";
            return L.circleMarker(latlng, style);
          },
          onEachFeature: function (f, l) { l.bindPopup(GG.popupHtml(layer, f.properties)); }
        });
        group._gg_load = GG.latest(function (params) {
          return GG.getJSON(config.itemsUrl.replace("{layer}", layer.id), params);
        });
        return group;
      }

      /** Area codes a layer can be filtered by on the server: the levels it carries. */
      function areaParams(layer) {
        var params = {};
        if (!state.area) return params;
        Object.keys(state.area.codes).forEach(function (key) {
          var level = key.replace("_code", "");
          if (layer.adminLevels.indexOf(level) >= 0 && layer.ownLevel !== level) {
            params[key] = state.area.codes[key];
          }
        });
        return params;
      }

      /** The layer's tile URL, limited to the chosen area (``?area=`` its code). */
      function tileUrl(layer) {
        var url = config.tilesUrl.replace("{layer}", layer.id);
        return state.area ? url + "?area=" + encodeURIComponent(state.area.code) : url;
      }

      /** Vector-tile features outside the chosen area (or retired grids) are hidden. */
      function tileStyle(layer, props) {
        var filter = areaParams(layer);
        for (var key in filter) {
          if (props[key] !== undefined && props[key] !== filter[key]) return null;
        }
        if (layer.versioned && props.valid_to && new Date(props.valid_to) <= new Date()) return null;
        return GG.pathStyle(layer, props);
      }

      function refreshAll(areaChanged) {
        Object.keys(entries).forEach(function (id) { refresh(entries[id], areaChanged); });
      }

      function refresh(entry, areaChanged) {
        if (!entry.enabled || !entry.leaflet) return;
        var layer = entry.layer;
        var visible = map.getZoom() >= layer.minZoom && map.getZoom() <= layer.maxZoom;
        var row = document.querySelector('.gg-layer[data-layer="' + layer.id + '"]');
        row.classList.toggle("gg-out-of-zoom", !visible);
        if (layer.transport === "tiles") {
          // The server limits tiles to the chosen area too: low-zoom clusters carry only a
          // count, so only the server can leave out the points outside the area.
          if (areaChanged) entry.leaflet.setUrl(tileUrl(layer));
          return;
        }
        if (!visible) {
          entry.leaflet.clearLayers();
          entry.drawn = 0;
          return;
        }
        var params = L.extend({ limit: config.geojsonLimit }, areaParams(layer));
        // A view wider than the server's bbox cap asks for the layer without bbox (paged).
        var bbox = GG.datum.viewBBox(map);
        if (GG.bboxAreaKm2(bbox) <= config.maxBBoxAreaKm2) params.bbox = bbox;
        entry.leaflet._gg_load(params).then(function (data) {
          entry.leaflet.clearLayers();
          entry.leaflet.addData(GG.datum.shiftGeoJSON(data));
          entry.drawn = data.features.length;
          var more = (data.links || []).some(function (l) { return l.rel === "next"; });
          row.classList.toggle("gg-truncated", more);
          row.title = more ? "仅显示前 " + config.geojsonLimit + " 个要素，请放大 (zoom in to see all)" : "";
        }, function () { /* shown by GG.getJSON */ });
      }
    }
  };
})();
