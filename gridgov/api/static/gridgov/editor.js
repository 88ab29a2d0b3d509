/*
 * gridgov — /editor (条例第六十二条): redraw grids in the browser.
 *
 *   - grids of a township or community: the Features API (live) or the plan's grids;
 *   - selecting a grid reads it with its ETag (GET <base>/{code});
 *   - vertex editing with snapping to the neighbours: Leaflet-Geoman (vendored);
 *   - split by a drawn line, merge, move a shared boundary: pending edits, undo / redo;
 *   - the measures before and after: POST /measures (debounced, also while dragging);
 *   - save: each pending edit to the grid editing API with If-Match and the reason;
 *     refusals (409 / 422) and local invalidity are drawn in red with their message.
 *
 * The save target is one base path: "/grids" (live) or "/plans/{id}/grids" (a plan),
 * whose routes mirror /grids one to one. In unit mode (editor_units.js sets page.units)
 * the same machinery edits department units through "/units/{layer}", whose routes mirror
 * /grids too; the hooks below ask page.units where they differ (list, labels, measures).
 */
(function () {
  "use strict";
  var GG = (window.GridGov = window.GridGov || {});

  var STYLE = {
    grid: { color: "#1b9e77", weight: 1.5, opacity: 0.9, fillColor: "#1b9e77", fillOpacity: 0.06 },
    unit: { color: "#08519c", weight: 2.5, opacity: 0.95, fillColor: "#3182bd", fillOpacity: 0.08 },
    selected: { color: "#1f5fa8", weight: 3, opacity: 1, fillColor: "#1f5fa8", fillOpacity: 0.18 },
    pending: { color: "#e6550d", weight: 3, opacity: 1, dashArray: "6 4", fillColor: "#e6550d", fillOpacity: 0.15 },
    problem: { color: "#d7191c", weight: 3, opacity: 1, fillColor: "#d7191c", fillOpacity: 0.45 },
    line: { color: "#e6550d", weight: 3, dashArray: "8 6" }
  };
  var LABEL_ZOOM = 14;
  // Fitting a grid into view leaves room for the measures box on the right.
  var FIT = { paddingTopLeft: [60, 60], paddingBottomRight: [420, 60], maxZoom: 17, animate: false };

  function clone(value) {
    return JSON.parse(JSON.stringify(value));
  }

  GG.editor = {
    init: function (map, config) {
      GG.setup(map, config);
      var state = {
        area: null,
        target: "live",
        grids: {}, // code → {code, props, base (GeoJSON geometry, storage), etag, layer}
        order: [],
        selected: [],
        editing: null,
        splitting: null,
        ops: [], // pending edits, in order
        undo: [],
        joinNext: null, // the grid whose next edit finishes the gesture of the last one
        redo: [],
        before: null,
        after: null,
        measured: 0,
        loads: 0,
        ready: 0,
        saved: [],
        problems: [],
        refusals: 0,
        plans: null
      };
      var page = (window.GridGovPage = { map: map, state: state, units: null });

      /** Editing department units (editor_units.js) rather than grids. */
      function unitMode() {
        return !!(page.units && page.units.active());
      }

      /** A text naming what is edited, in the words of the mode (editor_words.py):
       * {member} 网格 / 警务单元, {neighbour} 网格 / 单元, {memberEn} grid / police unit. */
      function say(template) {
        var words = unitMode() ? page.units.kind().words : config.words;
        return template.replace(/\{(\w+)\}/g, function (all, name) {
          return words[name] === undefined ? all : words[name];
        });
      }

      /** The page's templates (data-gg-text, -title, -placeholder) in the mode's words. */
      function applyWords() {
        ["text", "title", "placeholder"].forEach(function (what) {
          var attr = "data-gg-" + what;
          Array.prototype.forEach.call(document.querySelectorAll("[" + attr + "]"), function (el) {
            var text = say(el.getAttribute(attr));
            if (what === "text") el.textContent = text;
            else el.setAttribute(what, text);
          });
        });
        if (config.titleTemplate) document.title = say(config.titleTemplate);
      }

      map.pm.setLang("zh");
      map.pm.setGlobalOptions({
        snappable: true,
        snapDistance: config.snapDistance,
        allowSelfIntersection: true, // checked here, so that the problem can be drawn
        draggable: false
      });

      var gridLayer = L.featureGroup().addTo(map);
      var lineLayer = L.featureGroup({ pmIgnore: true, snapIgnore: true }).addTo(map);
      var problemLayer = L.geoJSON(null, {
        pmIgnore: true,
        snapIgnore: true,
        style: function () { return STYLE.problem; },
        pointToLayer: function (f, ll) {
          return L.circleMarker(ll, { radius: 8, pmIgnore: true, snapIgnore: true });
        },
        onEachFeature: function (f, l) {
          if (f.properties && f.properties.reason) l.bindTooltip(GG.escape(f.properties.reason));
        }
      }).addTo(map);
      page.gridLayer = gridLayer;
      page.problemLayer = problemLayer;

      /* -------------------------------------------------------------- coordinates */

      // Display position → stored [lon, lat] of every vertex that came from the server, so
      // that untouched vertices go back exactly as they were (no datum round trip).
      var origin = {};

      function key(ll) {
        return ll.lat.toFixed(10) + "," + ll.lng.toFixed(10);
      }

      function toDisplay(pos) {
        var ll = GG.datum.latLng(pos[0], pos[1]);
        origin[key(ll)] = [pos[0], pos[1]];
        return ll;
      }

      function toStorage(ll) {
        var known = origin[key(ll)];
        if (known) return known.slice();
        if (!GG.datum.shifted()) return [ll.lng, ll.lat];
        var p = [ll.lng, ll.lat];
        for (var i = 0; i < 4; i++) { // invert the GCJ-02 shift (converges in a few steps)
          var d = GG.gcj02.offset(p[0], p[1]);
          p = [ll.lng - d[0], ll.lat - d[1]];
        }
        return p;
      }

      /** GeoJSON (Multi)Polygon → Leaflet polygons → rings → latlngs (no closing point). */
      function latLngsOf(geometry) {
        var polygons = geometry.type === "Polygon" ? [geometry.coordinates] : geometry.coordinates;
        return polygons.map(function (rings) {
          return rings.map(function (ring) { return ring.slice(0, -1).map(toDisplay); });
        });
      }

      /** A layer's latlngs, always as polygons → rings → latlngs. */
      function polygonsOf(layer) {
        var lls = layer.getLatLngs();
        if (!lls.length) return [];
        if (lls[0] instanceof L.LatLng) return [[lls]];
        if (lls[0].length && lls[0][0] instanceof L.LatLng) return [lls];
        return lls;
      }

      function geometryOf(layer) {
        return {
          type: "MultiPolygon",
          coordinates: polygonsOf(layer).map(function (rings) {
            return rings.map(function (ring) {
              var coords = ring.map(toStorage);
              coords.push(coords[0].slice());
              return coords;
            });
          })
        };
      }

      /* -------------------------------------------------------------- HTTP */

      function base() {
        if (unitMode()) return page.units.base();
        return state.target === "live" ? config.gridsUrl : config.plansUrl + "/" + state.target + "/grids";
      }

      /** Any request to gridgov with the page's token; resolves {status, ok, data, etag}. */
      function call(method, url, body, headers) {
        var h = L.extend({ Accept: "application/json, application/geo+json" }, headers || {});
        if (body !== undefined) h["Content-Type"] = "application/json";
        if (config.apiToken) h.Authorization = "Bearer " + config.apiToken;
        return fetch(url, { method: method, headers: h, body: body === undefined ? undefined : JSON.stringify(body) })
          .then(function (response) {
            return response.text().then(function (text) {
              var data = null;
              try { data = text ? JSON.parse(text) : null; } catch (err) { data = null; }
              return { status: response.status, ok: response.ok, data: data, etag: response.headers.get("ETag") };
            });
          });
      }

      function problemText(answer) {
        var d = answer.data || {};
        return (d.title || "请求失败 (request failed)") + "：" + (d.detail || "HTTP " + answer.status);
      }

      /* -------------------------------------------------------------- grids */

      function label(code) {
        return unitMode() ? page.units.label(code) : "…" + code.slice(-3);
      }

      function currentGeometry(code) {
        for (var i = state.ops.length - 1; i >= 0; i--) {
          var op = state.ops[i];
          if (op.op === "geometry" && op.code === code) return op.geometry;
        }
        return state.grids[code].base;
      }

      function pendingCodes() {
        var codes = {};
        state.ops.forEach(function (op) {
          (op.codes || [op.code]).forEach(function (c) { codes[c] = true; });
          if (op.neighbour) codes[op.neighbour] = true;
        });
        return codes;
      }

      function styleAll() {
        var pending = pendingCodes();
        state.order.forEach(function (code) {
          var grid = state.grids[code];
          var style = unitMode() ? STYLE.unit : STYLE.grid;
          if (pending[code]) style = STYLE.pending;
          if (state.selected.indexOf(code) >= 0) style = L.extend({}, STYLE.selected, pending[code] ? { dashArray: "6 4" } : {});
          grid.layer.setStyle(style);
        });
        var rows = document.querySelectorAll("#gg-grids tbody tr");
        Array.prototype.forEach.call(rows, function (row) {
          var code = row.getAttribute("data-code");
          row.classList.toggle("gg-selected", state.selected.indexOf(code) >= 0);
          row.classList.toggle("gg-pending", !!pending[code]);
        });
      }

      function labels() {
        var show = map.getZoom() >= LABEL_ZOOM;
        gridLayer.eachLayer(function (l) { if (show) l.openTooltip(); else l.closeTooltip(); });
      }
      map.on("zoomend", labels);

      var loadList = GG.latest(function (params) {
        if (unitMode()) return page.units.list(params);
        if (state.target === "live") {
          return GG.getJSON(config.itemsUrl.replace("{layer}", "grid"), params);
        }
        // A plan's grids: the whole plan (one township or community), then the area's own.
        var area = params.community_code || params.township_code;
        return GG.getJSON(base()).then(function (data) {
          return {
            type: "FeatureCollection",
            features: data.features.filter(function (f) {
              return f.properties.change !== "retired" && f.properties.code.indexOf(area) === 0;
            })
          };
        });
      });

      function areaParams() {
        var a = state.area;
        var p = { limit: config.geojsonLimit };
        if (a.level === "community") p.community_code = a.code;
        else p.township_code = a.code;
        return p;
      }

      function clearGrids() {
        stopEditing();
        gridLayer.clearLayers();
        lineLayer.clearLayers();
        problemLayer.clearLayers();
        state.grids = {};
        state.order = [];
        state.selected = [];
        state.ops = [];
        state.undo = [];
        state.redo = [];
        state.before = state.after = null;
        document.querySelector("#gg-grids tbody").innerHTML = "";
        if (page.units) page.units.cleared();
      }

      function reload(keepSelection) {
        var keep = keepSelection ? state.selected.slice() : [];
        clearGrids();
        renderPending(); // the saved (or dropped) edits leave the list
        clearProblem();
        GG.clearError();
        if (!state.area || (state.area.level !== "township" && state.area.level !== "community")) {
          document.getElementById("gg-measures").textContent = "请选择镇街或村社区 (choose a township or community)。";
          renderTools();
          return Promise.resolve();
        }
        state.loads += 1;
        var mine = state.loads;
        return loadList(areaParams()).then(function (data) {
          var features = data.features.filter(function (f) {
            return !f.properties.valid_to || new Date(f.properties.valid_to) > new Date();
          });
          features.sort(function (a, b) { return a.properties.code < b.properties.code ? -1 : 1; });
          features.forEach(addGrid);
          drawTable();
          labels();
          return Promise.all(keep.filter(function (c) { return state.grids[c]; }).map(function (c) {
            return select(c, true);
          }));
        }).then(function () {
          renderTools();
          return measureBefore();
        }).then(function () {
          if (mine === state.loads) state.ready = mine;
          GG.status("已加载 " + state.order.length + say(" 个{neighbour} ") +
            new Date().toLocaleTimeString("zh-CN"));
        }, function () { /* shown by GG.getJSON / showProblem */ });
      }
      page.reload = reload;

      function addGrid(f) {
        var code = f.properties.code;
        var layer = L.polygon(latLngsOf(f.geometry), unitMode() ? STYLE.unit : STYLE.grid);
        layer.gridCode = code;
        layer.bindTooltip(label(code), { permanent: true, direction: "center", className: "gg-code-label", opacity: 0.9 });
        layer.on("click", function (e) {
          if (state.splitting || state.drawing) return; // the click is a vertex of the drawing
          L.DomEvent.stopPropagation(e);
          select(code, !!(e.originalEvent && (e.originalEvent.shiftKey || e.originalEvent.ctrlKey)));
        });
        layer.on("pm:markerdrag", function () { liveChange(code, layer); });
        layer.on("pm:edit", function () { committed(code, layer); });
        // Dragging a middle marker adds a vertex (one edit) and then moves it (another):
        // one gesture, so one undo step.
        layer.on("pm:vertexadded", function (e) {
          if (e.marker && e.marker._dragging) state.joinNext = code;
        });
        layer.addTo(gridLayer);
        state.grids[code] = { code: code, props: f.properties, base: f.geometry, etag: null, layer: layer };
        state.order.push(code);
      }

      function drawTable() {
        document.querySelector("#gg-grids tbody").innerHTML = state.order.map(function (code) {
          var p = state.grids[code].props;
          return '<tr data-code="' + GG.escape(code) + '"><td>' + GG.escape(code) + "</td><td>" +
            GG.escape(p.name || "") + "</td><td>" + GG.escape(unitMode() ? p.parent_code || "—" :
              p.households === undefined ? "—" : p.households) + "</td></tr>";
        }).join("");
        styleAll();
      }

      document.querySelector("#gg-grids tbody").addEventListener("click", function (e) {
        var row = e.target.closest("tr");
        if (!row) return;
        var code = row.getAttribute("data-code");
        select(code, e.shiftKey || e.ctrlKey).then(function () {
          map.fitBounds(state.grids[code].layer.getBounds(), FIT);
        });
      });

      /** Select a grid (or add it to the selection) and read its ETag for saving. */
      function select(code, add) {
        if (!state.grids[code]) return Promise.resolve();
        if (add) {
          var at = state.selected.indexOf(code);
          if (at >= 0 && state.selected.length > 1) state.selected.splice(at, 1);
          else if (at < 0) state.selected.push(code);
        } else {
          state.selected = [code];
        }
        if (state.editing && state.selected.indexOf(state.editing) < 0) stopEditing();
        styleAll();
        renderTools();
        if (page.units) page.units.selected();
        return readGrid(code);
      }
      page.select = select;

      /** Whether ``latlng`` lies in a polygon's rings (Leaflet's nested latlngs; even-odd,
       * so holes count out). */
      function inside(latlng, rings) {
        if (!rings.length) return false;
        if (!(rings[0] instanceof L.LatLng)) {
          var count = 0;
          rings.forEach(function (r) {
            if (r.length && r[0] instanceof L.LatLng) count += crossings(latlng, r);
            else if (inside(latlng, r)) count += 1;
          });
          return count % 2 === 1;
        }
        return crossings(latlng, rings) % 2 === 1;
      }

      function crossings(p, ring) {
        var n = 0;
        for (var i = 0, j = ring.length - 1; i < ring.length; j = i++) {
          var a = ring[i], b = ring[j];
          if ((a.lat > p.lat) !== (b.lat > p.lat) &&
              p.lng < (b.lng - a.lng) * (p.lat - a.lat) / (b.lat - a.lat) + a.lng) n += 1;
        }
        return n;
      }

      /** A click that landed on an overlay (a comparison, a proposal) selects the grid
       * beneath, as a click on the grid would; false when there is none (or while a split
       * line is being drawn, which takes every click). */
      page.clickAt = function (latlng, add) {
        if (state.splitting || state.drawing) return false;
        var found = null;
        state.order.forEach(function (code) {
          var layer = state.grids[code].layer;
          if (!found && layer.getBounds().contains(latlng) && inside(latlng, layer.getLatLngs())) {
            found = code;
          }
        });
        if (found) select(found, add);
        return !!found;
      };

      function readGrid(code) {
        var grid = state.grids[code];
        return call("GET", base() + "/" + code).then(function (answer) {
          if (!answer.ok) {
            showProblem(problemText(answer));
            throw new Error(problemText(answer));
          }
          grid.etag = answer.etag || answer.data.properties.etag;
          grid.props = L.extend({}, grid.props, answer.data.properties);
          var pending = pendingCodes()[code];
          if (!pending && JSON.stringify(grid.base) !== JSON.stringify(answer.data.geometry)) {
            grid.base = answer.data.geometry; // changed since the list was read: draw the current one
            grid.layer.setLatLngs(latLngsOf(grid.base));
          }
          renderTools();
        });
      }

      /* -------------------------------------------------------------- editing */

      function canEdit() {
        return config.canEdit && !state.saving && (unitMode() || config.gridEditable);
      }

      function startEditing(code) {
        stopEditing();
        state.editing = code;
        state.grids[code].layer.pm.enable({ snappable: true, snapDistance: config.snapDistance, allowSelfIntersection: true });
        renderTools();
      }

      function stopEditing() {
        if (state.editing && state.grids[state.editing]) state.grids[state.editing].layer.pm.disable();
        state.editing = null;
        renderTools();
      }

      function followNeighbour(code) {
        var follow = document.getElementById("gg-follow");
        if (!follow || !follow.checked || state.selected.length !== 2) return null;
        return state.selected[0] === code ? state.selected[1] : state.selected[0];
      }

      /** A vertex is being dragged: check it and measure the shape as it is now. */
      function liveChange(code, layer) {
        var geometry = geometryOf(layer);
        var problems = localProblems(layer);
        drawLocal(problems);
        if (!problems.length) scheduleMeasures(code, geometry);
      }

      /** Geoman finished a change (drag end, vertex added or removed): a pending edit. */
      function committed(code, layer) {
        var geometry = geometryOf(layer);
        if (state.joinNext === code) state.joinNext = null;
        else pushUndo();
        var neighbour = followNeighbour(code);
        var last = state.ops[state.ops.length - 1];
        if (last && last.op === "geometry" && last.code === code && last.neighbour === neighbour) {
          last.geometry = geometry;
        } else {
          state.ops.push({ op: "geometry", code: code, neighbour: neighbour, geometry: geometry });
        }
        changed();
      }

      function pushUndo() {
        state.undo.push(clone(state.ops));
        state.redo = [];
      }

      function changed() {
        clearProblem();
        problemLayer.clearLayers();
        var problems = [];
        state.order.forEach(function (code) {
          if (pendingCodes()[code]) problems = problems.concat(localProblems(state.grids[code].layer));
        });
        drawLocal(problems);
        drawLines();
        styleAll();
        renderPending();
        renderTools();
        if (!problems.length) scheduleMeasures(null, null);
      }

      /** Put every layer back to the shapes the pending edits give (after undo / redo). */
      function restore(ops) {
        var editing = state.editing;
        stopEditing();
        state.ops = ops;
        state.order.forEach(function (code) {
          state.grids[code].layer.setLatLngs(latLngsOf(currentGeometry(code)));
        });
        if (editing && state.grids[editing]) startEditing(editing);
        changed();
      }

      function undo() {
        if (!state.undo.length || state.saving) return;
        state.redo.push(clone(state.ops));
        restore(state.undo.pop());
      }

      function redo() {
        if (!state.redo.length || state.saving) return;
        state.undo.push(clone(state.ops));
        restore(state.redo.pop());
      }
      page.undo = undo;
      page.redo = redo;

      function discard() {
        if (!state.ops.length) return;
        pushUndo();
        restore([]);
      }

      function startSplit() {
        if (state.selected.length !== 1) return;
        stopEditing();
        state.splitting = state.selected[0];
        map.pm.enableDraw("Line", { snappable: true, finishOn: "dblclick", templineStyle: STYLE.line, hintlineStyle: STYLE.line });
        GG.status(say("在{member} ") + state.splitting +
          say(" 上画线，双击结束 (draw a line across the {memberEn}, double-click to finish)"));
        renderTools();
      }

      map.on("pm:create", function (e) {
        if (!state.splitting || e.shape !== "Line") return;
        var code = state.splitting;
        state.splitting = null;
        var line = { type: "LineString", coordinates: e.layer.getLatLngs().map(toStorage) };
        map.removeLayer(e.layer);
        map.pm.disableDraw();
        pushUndo();
        state.ops.push({ op: "split", code: code, line: line });
        GG.status("");
        changed();
      });

      // Escape (or Geoman's cancel) ends the drawing without a line: leave split mode.
      map.on("pm:drawend", function () {
        setTimeout(function () {
          if (!state.splitting) return;
          state.splitting = null;
          GG.status("");
          renderTools();
        }, 0);
      });

      function merge() {
        if (state.selected.length < 2) return;
        stopEditing();
        pushUndo();
        state.ops.push({ op: "merge", codes: state.selected.slice().sort() });
        changed();
      }

      function drawLines() {
        lineLayer.clearLayers();
        state.ops.forEach(function (op) {
          if (op.op === "create") {
            var rings = op.geometry.coordinates.map(function (polygon) {
              return polygon.map(function (ring) {
                return ring.map(function (p) { return GG.datum.latLng(p[0], p[1]); });
              });
            });
            L.polygon(rings, L.extend({ pmIgnore: true, snapIgnore: true, interactive: false }, STYLE.pending))
              .addTo(lineLayer);
          }
          if (op.op !== "split") return;
          L.polyline(op.line.coordinates.map(function (p) { return GG.datum.latLng(p[0], p[1]); }),
            L.extend({ pmIgnore: true, snapIgnore: true, interactive: false }, STYLE.line)).addTo(lineLayer);
        });
      }

      /* -------------------------------------------------------------- local checks */

      function segmentsCross(a, b, c, d) {
        function orient(p, q, r) {
          return (q.lng - p.lng) * (r.lat - p.lat) - (q.lat - p.lat) * (r.lng - p.lng);
        }
        var d1 = orient(c, d, a), d2 = orient(c, d, b), d3 = orient(a, b, c), d4 = orient(a, b, d);
        if (((d1 > 0 && d2 < 0) || (d1 < 0 && d2 > 0)) && ((d3 > 0 && d4 < 0) || (d3 < 0 && d4 > 0))) {
          var t = d1 / (d1 - d2);
          return L.latLng(a.lat + t * (b.lat - a.lat), a.lng + t * (b.lng - a.lng));
        }
        return null;
      }

      /** What the server would refuse anyway, found in the browser: self-intersections,
       * rings with fewer than 3 vertices, too many vertices. */
      function localProblems(layer) {
        var problems = [];
        var segments = [];
        var vertices = 0;
        polygonsOf(layer).forEach(function (rings) {
          rings.forEach(function (ring, r) {
            vertices += ring.length;
            if (ring.length < 3) {
              problems.push({ at: ring[0] || null, zh: say("{member}边界少于 3 个顶点") });
              return;
            }
            ring.forEach(function (p, i) {
              segments.push({ a: p, b: ring[(i + 1) % ring.length], ring: r, i: i, n: ring.length, rings: rings });
            });
          });
        });
        for (var i = 0; i < segments.length; i++) {
          for (var j = i + 1; j < segments.length; j++) {
            var s = segments[i], t = segments[j];
            if (s.rings === t.rings && s.ring === t.ring && (j - i === 1 || (s.i === 0 && t.i === t.n - 1))) continue;
            var x = segmentsCross(s.a, s.b, t.a, t.b);
            if (x) problems.push({ at: x, zh: say("{member}边界自相交") });
          }
        }
        if (vertices > config.maxVertices) {
          problems.push({ at: null, zh: "顶点过多（" + vertices + " > " + config.maxVertices + "）" });
        }
        return problems;
      }

      function drawLocal(problems) {
        problemLayer.clearLayers();
        state.localProblems = problems.length;
        if (!problems.length) {
          if (state.localShown) clearProblem();
          state.localShown = false;
          renderTools();
          return;
        }
        problems.forEach(function (p) {
          if (p.at) {
            L.circleMarker(p.at, L.extend({ radius: 8, pmIgnore: true, snapIgnore: true }, STYLE.problem))
              .bindTooltip(p.zh).addTo(problemLayer);
          }
        });
        state.localShown = true;
        showProblem("本地检查：" + problems[0].zh + "，无法保存 (invalid shape, cannot be saved)");
        renderTools();
      }

      /* -------------------------------------------------------------- measures */

      function features(overrideCode, overrideGeometry) {
        var geoms = {};
        state.order.forEach(function (code) { geoms[code] = currentGeometry(code); });
        if (overrideCode) geoms[overrideCode] = overrideGeometry;
        state.ops.forEach(function (op) {
          if (op.op !== "merge") return;
          var keep = op.codes[0];
          var parts = [];
          op.codes.forEach(function (c) {
            var g = geoms[c];
            if (!g) return;
            parts = parts.concat(g.type === "Polygon" ? [g.coordinates] : g.coordinates);
            if (c !== keep) delete geoms[c];
          });
          geoms[keep] = { type: "MultiPolygon", coordinates: parts };
        });
        return {
          type: "FeatureCollection",
          features: Object.keys(geoms).map(function (code) {
            return { type: "Feature", id: code, geometry: geoms[code] };
          })
        };
      }

      function measure(fc) {
        return call("POST", config.measuresUrl + GG.query({ crs: "cgcs2000" }), fc).then(function (answer) {
          if (!answer.ok) {
            GG.showError("测度计算失败：" + problemText(answer));
            throw new Error(problemText(answer));
          }
          return answer.data;
        });
      }
      // Two lines of requests: a live "after" measure must never supersede the "before" of a
      // reload (that one would then never settle, and the reload with it).
      var measureBeforeLatest = GG.latest(measure);
      var measureLatest = GG.latest(measure);

      function measureBefore() {
        if (unitMode()) {
          // units have no grid measures: their panel shows the docking (editor_units.js)
          state.before = { units: true };
          state.after = null;
          renderMeasures();
          return Promise.resolve();
        }
        if (!state.order.length) {
          renderMeasures();
          return Promise.resolve();
        }
        return measureBeforeLatest(features(null, null)).then(function (data) {
          state.before = data;
          state.after = null;
          renderMeasures();
        });
      }

      var timer = null;
      var live = { code: null };
      function scheduleMeasures(code, geometry) {
        if (unitMode()) return;
        live = { code: code, geometry: geometry };
        if (timer) clearTimeout(timer);
        state.measuring = true;
        timer = setTimeout(function () {
          timer = null;
          var fc = features(live.code, live.geometry);
          measureLatest(fc).then(function (data) {
            state.after = data;
            state.afterLive = live.code;
            state.measured += 1;
            state.measuring = false;
            renderMeasures();
          }, function () { state.measuring = false; });
        }, config.debounceMs);
      }

      function byKey(report) {
        var out = {};
        (report ? report.grids : []).forEach(function (g) { out[g.key] = g; });
        return out;
      }

      function fmt(value, digits) {
        return GG.fmt(value, digits);
      }

      function cell(code, name, b, a, digits) {
        var before = b ? b[name] : null, after = a ? a[name] : null;
        // marked when the change shows at the precision displayed (not float noise)
        var changedClass = before !== null && after !== null && fmt(before, digits) !== fmt(after, digits) ?
          ' class="gg-changed"' : "";
        return '<td data-code="' + code + '" data-measure="' + name + '" data-before="' + (before === null ? "" : before) +
          '" data-after="' + (after === null ? "" : after) + '"' + changedClass + ">" + fmt(before, digits) +
          (a ? " → " + fmt(after, digits) : "") + "</td>";
      }

      function renderMeasures() {
        var box = document.getElementById("gg-measures");
        var before = state.before;
        if (unitMode()) {
          page.units.renderMeasures(box);
          return;
        }
        if (!before) {
          box.textContent = state.order.length ? "计算中…" : "没有网格。";
          return;
        }
        var after = state.ops.length || state.afterLive ? state.after : null;
        var b = byKey(before), a = byKey(after);
        var affected = Object.keys(pendingCodes());
        if (state.afterLive && affected.indexOf(state.afterLive) < 0) affected.push(state.afterLive);
        if (!affected.length) affected = state.selected.slice();
        var split = {};
        state.ops.forEach(function (op) { if (op.op === "split") split[op.code] = true; });
        var rows = affected.sort().map(function (code) {
          var note = split[code] ? '<br><span class="gg-note">拆分结果保存后计算</span>' : "";
          var merged = after && !a[code] ? '<br><span class="gg-note">并入其他网格</span>' : "";
          return "<tr><td>" + GG.escape(label(code)) + note + merged + "</td>" +
            cell(code, "households", b[code], after ? a[code] || null : null) +
            cell(code, "workload", b[code], after ? a[code] || null : null, 0) +
            cell(code, "area_km2", b[code], after ? a[code] || null : null, 4) +
            cell(code, "compactness", b[code], after ? a[code] || null : null, 3) + "</tr>";
        }).join("");
        var table = rows ? '<table class="gg-table gg-measures"><thead><tr><th>网格</th><th>户数</th><th>工作量</th>' +
          "<th>面积 km²</th><th>紧凑度</th></tr></thead><tbody>" + rows + "</tbody></table>" :
          "<p>选择网格查看其测度。</p>";
        function balanceRow(name, title) {
          var x = before.balance[name], y = after ? after.balance[name] : null;
          return "<tr><td>" + title + "</td>" +
            '<td data-measure="' + name + '_cv" data-before="' + x.cv + '" data-after="' + (y ? y.cv : "") + '">' +
            fmt(x.cv, 3) + (y ? " → " + fmt(y.cv, 3) : "") + "</td><td>" + fmt(x.max_min_ratio, 2) +
            (y ? " → " + fmt(y.max_min_ratio, 2) : "") + "</td></tr>";
        }
        var balance = '<table class="gg-table"><thead><tr><th>均衡度 (' + GG.escape(state.area.name) +
          ')</th><th title="变异系数，越小越均衡">CV</th><th title="最大/最小">最大/最小</th></tr></thead><tbody>' +
          balanceRow("households", "户数") + balanceRow("workload", "工作量") + "</tbody></table>";
        var afterDock = {};
        (after ? after.docking : []).forEach(function (d) { afterDock[d.unit_layer + "/" + d.unit_level] = d; });
        var docking = '<table class="gg-table"><thead><tr><th>对接 (docking)</th><th>得分</th></tr></thead><tbody>' +
          before.docking.map(function (d) {
            var k = d.unit_layer + "/" + d.unit_level, y = afterDock[k];
            return "<tr><td>" + GG.escape(d.title) + '</td><td data-measure="docking" data-kind="' + GG.escape(k) +
              '" data-before="' + d.score + '" data-after="' + (y ? y.score : "") + '">' + fmt(d.score, 1) +
              (y ? " → " + fmt(y.score, 1) : "") + "</td></tr>";
          }).join("") + "</tbody></table>";
        var note = state.ops.some(function (op) { return op.op === "merge"; }) ?
          '<p class="gg-note">合并预览按各部分合计；紧凑度保存后以合并结果为准。</p>' : "";
        box.innerHTML = table + balance + docking + note +
          '<p class="gg-note">统计期 ' + GG.escape(before.period.from.slice(0, 10)) + " 至 " +
          GG.escape(before.period.to.slice(0, 10)) + "；预览中随之调整的相邻网格按原形状计，保存后重新计算。</p>";
      }

      /* -------------------------------------------------------------- problems */

      function showProblem(message) {
        var box = document.getElementById("gg-problem");
        box.textContent = message;
        box.hidden = false;
      }

      function clearProblem() {
        var box = document.getElementById("gg-problem");
        box.hidden = true;
        box.textContent = "";
      }

      function drawRefusal(answer) {
        var d = answer.data || {};
        problemLayer.clearLayers();
        if (d.problems && d.problems.features) {
          var shown = clone(d.problems);
          shown.features = shown.features.filter(function (f) { return f.geometry; });
          problemLayer.addData(GG.datum.shiftGeoJSON(shown));
          state.problems = d.problems.features.map(function (f) { return f.properties; });
        } else {
          state.problems = [];
        }
        var hint = "";
        if (d.reason === "overlap") hint = say("（可选择“与相邻{neighbour}重叠时：从相邻{neighbour}划入”后重新保存）");
        if (d.reason === "gap") hint = say("（可选择“留下空隙时：退还给相邻{neighbour}”后重新保存）");
        if (answer.status === 412) hint = "（已被他人修改，已重新加载最新形状，请重新编辑）";
        state.refusals += 1;
        var message = "保存被拒绝：" + problemText(answer) + hint;
        showProblem(message);
        if (answer.status === 412) {
          // stale: the pending edits were drawn on shapes that are gone; show today's
          state.stale = (state.stale || 0) + 1;
          reload(true).then(function () { showProblem(message); });
        }
      }

      /* -------------------------------------------------------------- saving */

      function ifMatch(codes) {
        return codes.map(function (c) { return state.grids[c].etag; }).join(", ");
      }

      function ensureEtags(codes) {
        return Promise.all(codes.map(function (c) {
          return state.grids[c].etag ? null : readGrid(c);
        }));
      }

      function request(op, reason) {
        var params = { crs: "cgcs2000" };
        if (op.op === "create") {
          // a new unit (editor_units.js): its area is taken from the units it overlaps
          return ["POST", base() + GG.query({ crs: "cgcs2000", overlap: "take" }),
            L.extend({}, op.body, { reason: reason }), []];
        }
        if (op.op === "retire") {
          return ["DELETE", base() + "/" + op.code + GG.query({ reason: reason, gap: "give" }), undefined, [op.code]];
        }
        if (op.op === "geometry" && op.neighbour) {
          return ["POST", base() + "/" + op.code + "/boundary" + GG.query(params),
            { neighbour: op.neighbour, geometry: op.geometry, reason: reason }, [op.code, op.neighbour]];
        }
        if (op.op === "geometry") {
          params.overlap = document.getElementById("gg-overlap").value;
          params.gap = document.getElementById("gg-gap").value;
          return ["PATCH", base() + "/" + op.code + GG.query(params),
            { geometry: op.geometry, reason: reason }, [op.code]];
        }
        if (op.op === "split") {
          return ["POST", base() + "/" + op.code + "/split" + GG.query(params),
            { line: op.line, reason: reason }, [op.code]];
        }
        return ["POST", base() + "/merge", { codes: op.codes, reason: reason }, op.codes];
      }

      function save() {
        var reason = document.getElementById("gg-reason").value.trim();
        if (!reason) {
          showProblem("请填写调整原因 (a reason is required)");
          document.getElementById("gg-reason").focus();
          return Promise.resolve();
        }
        if (!state.ops.length || state.localProblems) return Promise.resolve();
        stopEditing();
        state.saving = true;
        clearProblem();
        problemLayer.clearLayers();
        renderTools();
        var saved = [];
        function next() {
          if (!state.ops.length) return Promise.resolve(true);
          var op = state.ops[0];
          var r = request(op, reason);
          return ensureEtags(r[3]).then(function () {
            return call(r[0], r[1], r[2], r[3].length ? { "If-Match": ifMatch(r[3]) } : {});
          }).then(function (answer) {
            if (!answer.ok) {
              drawRefusal(answer);
              return false;
            }
            var edit = answer.data.edit || {};
            var retired = answer.data.retired || [];
            var created = answer.data.created || [];
            (answer.data.grids || answer.data.units).features.forEach(function (f) {
              f.id = f.id || f.properties.code;
              var grid = state.grids[f.id];
              if (grid && !f.properties.valid_to) {
                // the saved shape is now the grid's own (the edits after it build on it)
                grid.etag = f.properties.etag;
                grid.base = f.geometry;
                grid.props = L.extend({}, grid.props, f.properties);
              }
              if (retired.indexOf(f.id) >= 0) return; // listed once below, as retired
              saved.push({ code: f.id, version_id: f.properties.version_id, edit_id: edit.id,
                created: created.indexOf(f.id) >= 0, valid_from: f.properties.valid_from || edit.at });
            });
            // what the edit retired: the retired one, the merged ones (into the lowest code)
            if (op.op === "retire" && retired.indexOf(op.code) < 0) retired = retired.concat([op.code]);
            retired.forEach(function (code) {
              saved.push({ code: code, retired: true, into: op.op === "merge" ? op.codes[0] : null,
                edit_id: edit.id, valid_from: edit.at });
            });
            state.ops.shift();
            return next();
          });
        }
        return next().then(function (ok) {
          state.saving = false;
          state.saved = state.saved.concat(saved);
          if (!ok) {
            if (saved.length) {
              // the saved edits are the grids' shapes now: they can no longer be undone here
              state.undo = [];
              state.redo = [];
              state.order.forEach(function (code) {
                state.grids[code].layer.setLatLngs(latLngsOf(currentGeometry(code)));
              });
              styleAll();
              reloadAfterSave(saved, "部分调整已保存；其余被拒绝");
            }
            renderTools();
            renderPending();
            return;
          }
          document.getElementById("gg-reason").value = "";
          reloadAfterSave(saved, "已保存");
        }, function (err) {
          state.saving = false;
          renderTools();
          showProblem("保存失败：" + (err && err.message ? err.message : String(err)));
        });
      }
      page.save = save;

      function reloadAfterSave(saved, title) {
        var pendingLeft = state.ops.length;
        var what = say("{neighbour} ");
        var text = title + "：" + saved.map(function (s) {
          var version = s.into ? " 已并入 " + s.into : s.retired ? " 已撤销" : s.created ? " 已新建" : s.version_id ? " 新版本 #" + s.version_id : " 调整记录 #" + s.edit_id;
          return what + s.code + version + "（生效 " + String(s.valid_from).replace("T", " ").slice(0, 19) + "）";
        }).join("；");
        if (pendingLeft) {
          // keep the refused edits on screen; the saved ones are now the grids' base
          GG.status(text);
          if (unitMode()) page.units.savedInPart();
          return;
        }
        reload(true).then(function () {
          GG.status(text);
          var box = document.getElementById("gg-saved");
          box.innerHTML = saved.map(function (s) {
            return "<li>" + what + GG.escape(s.code) + (s.into ? " 已并入 " + GG.escape(s.into) :
              s.retired ? " 已撤销" : s.created ? " 已新建" : s.version_id ?
              " → 版本 #" + GG.escape(s.version_id) : " → 调整记录 #" + GG.escape(s.edit_id)) + "</li>";
          }).join("");
          box.hidden = !saved.length;
        });
      }

      /* -------------------------------------------------------------- panel */

      function describe(op) {
        if (op.op === "geometry" && op.neighbour) return "移动共用边界 " + label(op.code) + " / " + label(op.neighbour);
        if (op.op === "geometry") return "调整形状 " + label(op.code);
        if (op.op === "split") return "拆分 " + label(op.code);
        if (op.op === "retire") return "撤销 " + label(op.code);
        if (op.op === "create") return say("新建{member} ") + op.name;
        return "合并 " + op.codes.map(label).join(" + ");
      }

      function renderPending() {
        var list = document.getElementById("gg-pending");
        if (!list) return;
        list.innerHTML = state.ops.map(function (op) { return "<li>" + GG.escape(describe(op)) + "</li>"; }).join("") ||
          '<li class="gg-note">（无）</li>';
      }

      function button(id, enabled) {
        var el = document.getElementById(id);
        if (el) el.disabled = !enabled;
      }

      function renderTools() {
        if (!config.canEdit) return;
        var one = state.selected.length === 1 && !state.saving;
        // one grid, or two: the first is edited, the second follows when "移动共用边界" is on
        button("gg-edit", (one || state.selected.length === 2) && canEdit());
        var edit = document.getElementById("gg-edit");
        edit.classList.toggle("gg-active", !!state.editing);
        edit.textContent = state.editing ? "结束编辑顶点" : "编辑顶点";
        button("gg-split", one && canEdit() && !state.splitting);
        button("gg-merge", state.selected.length >= 2 && canEdit());
        button("gg-follow", state.selected.length === 2 && canEdit());
        button("gg-undo", state.undo.length > 0 && !state.saving);
        button("gg-redo", state.redo.length > 0 && !state.saving);
        button("gg-discard", state.ops.length > 0 && !state.saving);
        button("gg-save", state.ops.length > 0 && !state.localProblems && canEdit());
        if (page.units) page.units.renderTools(canEdit());
      }

      if (config.canEdit) {
        document.getElementById("gg-edit").addEventListener("click", function () {
          if (state.editing) stopEditing();
          else if (state.selected.length) startEditing(state.selected[0]);
        });
        document.getElementById("gg-split").addEventListener("click", startSplit);
        document.getElementById("gg-merge").addEventListener("click", merge);
        document.getElementById("gg-undo").addEventListener("click", undo);
        document.getElementById("gg-redo").addEventListener("click", redo);
        document.getElementById("gg-discard").addEventListener("click", discard);
        document.getElementById("gg-save").addEventListener("click", save);
        var saved = document.createElement("ul");
        saved.id = "gg-saved";
        saved.className = "gg-saved";
        saved.hidden = true;
        document.getElementById("gg-save").insertAdjacentElement("afterend", saved);
        document.addEventListener("keydown", function (e) {
          if (e.target && (e.target.tagName === "TEXTAREA" || e.target.tagName === "INPUT")) return;
          var z = e.key === "z" || e.key === "Z";
          if ((e.ctrlKey || e.metaKey) && z && !e.shiftKey) { e.preventDefault(); undo(); }
          if ((e.ctrlKey || e.metaKey) && (e.key === "y" || (z && e.shiftKey))) { e.preventDefault(); redo(); }
        });
        renderPending();
        renderTools();
      }

      /* -------------------------------------------------------------- plans */

      // The save target: live grids (units), or one of the caller's draft plans (GET /plans)
      // of what is edited: grid plans in grid mode, the layer's unit plans in unit mode.
      function loadPlans() {
        if (!config.plansUrl) return Promise.resolve();
        return call("GET", config.plansUrl + "?status=draft&limit=1000").then(function (answer) {
          if (!answer.ok) return;
          var items = (answer.data && (answer.data.items || answer.data.plans)) || answer.data || [];
          if (!Array.isArray(items)) return;
          var layer = unitMode() ? page.units.kind().layer : null;
          var drafts = items.filter(function (p) {
            if (p.status && p.status !== "draft") return false;
            return layer ? p.kind === "unit" && p.unit_layer === layer : p.kind !== "unit";
          });
          state.plans = drafts;
          var select = document.getElementById("gg-target");
          select.innerHTML = '<option value="live">' + say("现行{neighbour}（直接生效）") + "</option>" +
            drafts.map(function (p) {
              return '<option value="' + GG.escape(p.id) + '">方案 #' + GG.escape(p.id) + "：" +
                GG.escape(p.name || p.id) + (layer ? "（" + GG.escape(p.unit_code || "") + " 所在组）" : "") + "</option>";
            }).join("");
          if (!select.querySelector('option[value="' + state.target + '"]')) state.target = "live";
          select.value = state.target;
          document.getElementById("gg-target-field").hidden = false;
        });
      }
      page.loadPlans = loadPlans;
      loadPlans();
      document.getElementById("gg-target").addEventListener("change", function (e) {
        state.target = e.target.value || "live";
        reload(false);
      });

      /** Show and edit a (draft) plan's grids: the plan list is read again first. */
      page.openPlan = function (id) {
        return loadPlans().then(function () {
          state.target = String(id);
          document.getElementById("gg-target").value = state.target;
          return reload(false);
        });
      };
      page.call = call;
      page.label = label;
      page.say = say;
      page.geometryOf = geometryOf;
      page.applyWords = applyWords;
      page.showProblem = showProblem;
      page.clearProblem = clearProblem;
      page.drawRefusal = drawRefusal;
      page.renderTools = renderTools;
      page.renderMeasures = renderMeasures;
      page.stopEditing = stopEditing;
      /** A pending edit made by another tool (editor_units.js: retire, create), one undo step. */
      page.pushOp = function (op) {
        stopEditing();
        pushUndo();
        state.ops.push(op);
        changed();
      };

      // The unit mode (editor_units.js): the layer selector, the docking panel.
      if (GG.editorUnits) GG.editorUnits.init(page, config);
      var first = GG.pageAreaSelector(page, map, 3, function (area) {
        reload(false);
        if (page.onArea) page.onArea(area);
      });
      // An account whose area is one township or community opens there.
      if (config.units && config.units.home) {
        first.then(function () { return page.selector.choose(config.units.home); });
      }
      renderTools();
      // Compare plans, run a proposal and review it (editor_plans.js).
      if (GG.editorPlans) GG.editorPlans.init(page, config);
    }
  };
})();
