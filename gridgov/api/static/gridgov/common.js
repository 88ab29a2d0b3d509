/*
 * gridgov — helpers shared by the three map pages (/map, /map/heatmap, /map/docking).
 *
 * Everything here is plain ES5 + Leaflet so that it runs in the browsers an isolated
 * government intranet has, with no build step and nothing fetched from outside gridgov.
 */
(function () {
  "use strict";
  var GG = (window.GridGov = window.GridGov || {});

  // Leaflet 1.8 removed L.DomEvent.fakeStop, which VectorGrid 1.3's canvas renderer still
  // calls on click; this is what Leaflet 1.7 did.
  if (window.L && !L.DomEvent.fakeStop) {
    L.DomEvent.fakeStop = function (e) {
      e._stopped = true;
    };
  }

  /* ------------------------------------------------------------------ page state */

  GG.config = null; // the page's config from the server (set by GG.setup)
  GG.errors = []; // every error shown to the user, for tests and for people

  /** Remember the config and prepare the map: panes, attribution, scale. */
  GG.setup = function (map, config) {
    GG.config = config;
    GG.map = map;
    // Fixed zoom limits: otherwise Leaflet takes them from the tile layers present, and a
    // grid layer that starts at zoom 12 would stop the map from zooming out.
    map.options.minZoom = config.minZoom;
    map.options.maxZoom = config.maxZoom;
    // Panes keep a fixed order whatever is switched on: areas under tiles under points.
    [["gg-areas", 410], ["gg-tiles", 420], ["gg-highlight", 430], ["gg-points", 440]].forEach(
      function (pane) {
        map.createPane(pane[0]).style.zIndex = String(pane[1]);
      }
    );
    map.attributionControl.setPrefix("Leaflet");
    map.attributionControl.addAttribution("gridgov");
    if (config.syntheticNote) {
      map.attributionControl.addAttribution(
        '<span class="gg-synthetic">' + GG.escape(config.syntheticNote) + "</span>"
      );
    }
    if (!config.hasBasemap) {
      map.getContainer().classList.add("gg-no-basemap");
    }
  };

  /* ------------------------------------------------------------------ text */

  GG.escape = function (value) {
    return String(value === null || value === undefined ? "" : value)
      .replace(/&/g, "&amp;")
      .replace(/</g, "&lt;")
      .replace(/>/g, "&gt;")
      .replace(/"/g, "&quot;")
      .replace(/'/g, "&#39;");
  };

  GG.number = function (n) {
    return Number(n || 0).toLocaleString("zh-CN");
  };

  /** A figure for people: grouped as zh-CN writes it, with ``digits`` decimals when given;
   *  "—" for a missing one (every table of the editor and its review tools). */
  GG.fmt = function (value, digits) {
    if (value === null || value === undefined || value === "") return "—";
    if (digits === undefined) return GG.number(value);
    return Number(value).toLocaleString("zh-CN", { minimumFractionDigits: digits, maximumFractionDigits: digits });
  };

  GG.percent = function (share, digits) {
    return (100 * share).toFixed(digits === undefined ? 1 : digits) + "%";
  };

  /** Show an error in the page's alert box (Chinese first); never throws. */
  GG.showError = function (message) {
    GG.errors.push(message);
    var box = document.getElementById("gg-error");
    if (box) {
      box.textContent = message;
      box.hidden = false;
    }
  };

  GG.clearError = function () {
    var box = document.getElementById("gg-error");
    if (box) box.hidden = true;
  };

  GG.status = function (message) {
    var box = document.getElementById("gg-status");
    if (box) box.textContent = message || "";
  };

  /* ------------------------------------------------------------------ HTTP */

  /** A query string from an object, leaving out empty values. */
  GG.query = function (params) {
    var parts = [];
    Object.keys(params || {}).forEach(function (key) {
      var value = params[key];
      if (value === null || value === undefined || value === "" || value === false) return;
      parts.push(encodeURIComponent(key) + "=" + encodeURIComponent(value));
    });
    return parts.length ? "?" + parts.join("&") : "";
  };

  var pending = 0;

  /**
   * GET JSON from gridgov. Errors (problem+json) are shown in Chinese and reject the
   * promise. Stale answers are the caller's business (see GG.latest): requests are never
   * aborted, so that a slow answer is simply ignored rather than counted as a failure.
   */
  GG.getJSON = function (path, params) {
    var url = path + GG.query(params);
    pending += 1;
    document.body.classList.add("gg-loading");
    return fetch(url, { headers: { Accept: "application/json, application/geo+json" } })
      .then(function (response) {
        return response.text().then(function (body) {
          var data = null;
          try {
            data = body ? JSON.parse(body) : null;
          } catch (err) {
            data = null;
          }
          if (!response.ok) {
            var title = (data && data.title) || "请求失败 (request failed)";
            var detail = (data && data.detail) || "HTTP " + response.status;
            throw new Error(title + "：" + detail);
          }
          return data;
        });
      })
      .catch(function (err) {
        var message = err && err.message ? err.message : String(err);
        if (message.indexOf("Failed to fetch") >= 0) {
          message = "无法连接 gridgov 服务 (cannot reach the server)";
        }
        GG.showError("数据加载失败：" + message);
        throw err;
      })
      .then(
        function (data) {
          done();
          return data;
        },
        function (err) {
          done();
          throw err;
        }
      );
    function done() {
      pending -= 1;
      if (!pending) document.body.classList.remove("gg-loading");
    }
  };

  /** Wrap an async loader so that only the answer to the latest call is used. */
  GG.latest = function (loader) {
    var token = 0;
    return function () {
      var mine = ++token;
      var args = arguments;
      return loader.apply(null, args).then(function (data) {
        if (mine !== token) return new Promise(function () {}); // superseded: never settles
        return data;
      });
    };
  };

  GG.idle = function () {
    return pending === 0;
  };

  /* ------------------------------------------------------------------ datum */

  /*
   * Display datum. gridgov serves CGCS2000 (= WGS84 for display). With a GCJ-02 base map
   * every coordinate we draw is shifted in the browser with GG.gcj02 (see gcj02.js);
   * GeoJSON is shifted vertex by vertex, vector tiles tile by tile (see GG.vectorTiles).
   */
  GG.datum = {
    shifted: function () {
      return !!(GG.config && GG.config.displayDatum === "gcj02");
    },
    /** [lon, lat] as drawn on this map. */
    toDisplay: function (lon, lat) {
      return GG.datum.shifted() ? GG.gcj02.wgs84ToGcj02(lon, lat) : [lon, lat];
    },
    latLng: function (lon, lat) {
      var p = GG.datum.toDisplay(lon, lat);
      return L.latLng(p[1], p[0]);
    },
    /** A stored bbox [minLon, minLat, maxLon, maxLat] as display bounds. */
    bounds: function (bbox) {
      return L.latLngBounds(GG.datum.latLng(bbox[0], bbox[1]), GG.datum.latLng(bbox[2], bbox[3]));
    },
    /** The map's view as a bbox in storage coordinates, for ?bbox= (slightly widened). */
    viewBBox: function (map) {
      var b = map.getBounds();
      var corners = [b.getSouthWest(), b.getNorthWest(), b.getNorthEast(), b.getSouthEast()];
      var lons = [], lats = [];
      corners.forEach(function (c) {
        var lon = c.lng, lat = c.lat;
        if (GG.datum.shifted()) {
          // Undo the shift at each corner with one step (the offset's own slope makes
          // that about a metre off; the ~50 m widening below covers it).
          var d = GG.gcj02.offset(lon, lat);
          lon -= d[0];
          lat -= d[1];
        }
        lons.push(lon);
        lats.push(lat);
      });
      var pad = 0.0005;
      var clamp = function (v, lo, hi) { return Math.max(lo, Math.min(hi, v)); };
      return [
        clamp(Math.min.apply(null, lons) - pad, -180, 180).toFixed(6),
        clamp(Math.min.apply(null, lats) - pad, -90, 90).toFixed(6),
        clamp(Math.max.apply(null, lons) + pad, -180, 180).toFixed(6),
        clamp(Math.max.apply(null, lats) + pad, -90, 90).toFixed(6)
      ].join(",");
    },
    /** Shift a GeoJSON object in place (every position); returns it. */
    shiftGeoJSON: function (geojson) {
      if (!GG.datum.shifted() || !geojson) return geojson;
      function coords(c) {
        if (typeof c[0] === "number") {
          var p = GG.gcj02.wgs84ToGcj02(c[0], c[1]);
          c[0] = p[0];
          c[1] = p[1];
        } else {
          c.forEach(coords);
        }
      }
      function geometry(g) {
        if (!g) return;
        if (g.type === "GeometryCollection") g.geometries.forEach(geometry);
        else coords(g.coordinates);
      }
      if (geojson.type === "FeatureCollection") {
        geojson.features.forEach(function (f) { geometry(f.geometry); });
      } else if (geojson.type === "Feature") {
        geometry(geojson.geometry);
      } else {
        geometry(geojson);
      }
      return geojson;
    }
  };

  /* ------------------------------------------------------------------ styles */

  /** The colour of a feature: by its ``style.by`` choice, else the layer's stroke. */
  /** Area in km² of a "west,south,east,north" lon/lat bbox (on the sphere, as the server counts). */
  GG.bboxAreaKm2 = function (bbox) {
    var b = bbox.split(",").map(Number), r = 6371.0088, rad = Math.PI / 180;
    return r * r * (b[2] - b[0]) * rad * Math.abs(Math.sin(b[3] * rad) - Math.sin(b[1] * rad));
  };

  GG.colourOf = function (layer, props) {
    var by = layer.style.by;
    if (by && props) {
      for (var i = 0; i < layer.legend.length; i++) {
        if (layer.legend[i].value === props[by]) return layer.legend[i].colour;
      }
    }
    return layer.style.stroke;
  };

  /** Leaflet path options for one feature of ``layer`` (from the registry's Style). */
  GG.pathStyle = function (layer, props) {
    var s = layer.style;
    var colour = GG.colourOf(layer, props);
    var point = layer.geometry === "POINT" || (props && props.__point);
    return {
      color: s.by ? colour : s.stroke,
      weight: point ? 1 : s.weight,
      opacity: 0.9,
      dashArray: s.dash || null,
      fill: point || !!s.fill,
      fillColor: s.by ? colour : s.fill || s.stroke,
      fillOpacity: point ? 0.8 : s.fill ? s.fillOpacity : 0,
      // a cluster of a low-zoom tile (only ``count``): larger the more points it holds
      radius: props && props.count ? Math.min(s.radius + Math.sqrt(props.count), 14) : s.radius
    };
  };

  /* ------------------------------------------------------------------ popups & legend */

  function formatValue(column, value) {
    if (value === null || value === undefined || value === "") return "—";
    if (column.choices && column.choices[value] !== undefined) return column.choices[value];
    if (column.type === "boolean") return value === true || value === "true" ? "是" : "否";
    if (column.type === "timestamp" && typeof value === "string") {
      return value.replace("T", " ").replace(/(:\d\d)(\.\d+)?(Z|[+-]\d\d:?\d\d)?$/, "$1");
    }
    return value;
  }

  /** Popup HTML: the layer's columns that the feature carries, with Chinese titles. */
  GG.popupHtml = function (layer, props) {
    props = props || {};
    var rows = layer.columns
      .filter(function (c) { return props[c.name] !== undefined; })
      .map(function (c) {
        return "<tr><th>" + GG.escape(c.title) + "</th><td>" +
          GG.escape(formatValue(c, props[c.name])) + "</td></tr>";
      });
    // Features say whether they are synthetic when the API sends the flag; vector tiles
    // do not carry it, so then the layer's own flag (it holds demo rows) is shown.
    var note = "";
    if (props.count !== undefined && rows.length === 0) {
      rows.push("<tr><th>聚合 (cluster)</th><td>" + GG.escape(String(props.count)) +
        " 起，放大查看每一起 (zoom in for each)</td></tr>");
    }
    if (props.synthetic === true || props.synthetic === "true") {
      note = '<p class="gg-synthetic">合成数据（演示） synthetic</p>';
    } else if (props.synthetic === undefined && layer.synthetic) {
      note = '<p class="gg-synthetic">本图层含合成数据（演示） layer holds synthetic data</p>';
    }
    return '<div class="gg-popup"><h3>' + GG.escape(layer.title) + "</h3><table>" +
      rows.join("") + "</table>" + note + "</div>";
  };

  /** Legend HTML of one layer (one swatch per ``style.by`` choice, else one). */
  GG.legendHtml = function (layer) {
    var s = layer.style;
    return '<ul class="gg-legend" data-layer="' + layer.id + '">' +
      layer.legend.map(function (entry) {
        var shape = layer.geometry === "POINT" ? "gg-swatch gg-swatch-point" : "gg-swatch";
        var fill = layer.geometry === "POINT" || s.fill || s.by ? entry.colour : "transparent";
        var border = s.dash ? "dashed" : "solid";
        return '<li><span class="' + shape + '" style="border-color:' + entry.colour +
          ";border-style:" + border + ";background:" + fill + '"></span>' +
          GG.escape(entry.title) + "</li>";
      }).join("") + "</ul>";
  };

  /* ------------------------------------------------------------------ vector tiles */

  /**
   * A Leaflet.VectorGrid layer of one registry layer's Mapbox Vector Tiles.
   *
   * options.style(props, zoom) may return null to hide a feature (client-side filter);
   * with a GCJ-02 base map each tile is moved by the GCJ-02 offset at its centre (the
   * offset changes by well under a pixel across a 256 px tile at any zoom).
   */
  GG.vectorTiles = function (map, layer, options) {
    options = options || {};
    var styles = {};
    styles[layer.id] = function (props, zoom) {
      var style = options.style ? options.style(props, zoom) : GG.pathStyle(layer, props);
      return style ? style : [];
    };
    var point = layer.geometry === "POINT";
    var baseFactory = point ? L.canvas.tile : L.svg.tile;
    var grid = L.vectorGrid.protobuf(
      GG.config.tilesUrl.replace("{layer}", layer.id),
      {
        vectorTileLayerStyles: styles,
        interactive: true,
        pane: options.pane || (point ? "gg-points" : "gg-tiles"),
        minZoom: Math.max(layer.minZoom, options.minZoom || 0),
        maxZoom: GG.config.maxZoom,
        maxNativeZoom: Math.min(layer.maxZoom, 18),
        getFeatureId: options.featureId,
        rendererFactory: function (coords, size, opts) {
          var renderer = baseFactory(coords, size, opts);
          if (GG.datum.shifted()) shiftTile(map, renderer, coords, size);
          return renderer;
        }
      }
    );
    return grid;
  };

  function shiftTile(map, renderer, coords, size) {
    var centre = coords.scaleBy(size).add(size.divideBy(2));
    var ll = map.unproject(centre, coords.z);
    var shifted = GG.datum.latLng(ll.lng, ll.lat);
    var d = map.project(shifted, coords.z).subtract(centre);
    var container = renderer.getContainer();
    container.style.marginLeft = d.x.toFixed(2) + "px";
    container.style.marginTop = d.y.toFixed(2) + "px";
    // The canvas renderer hit-tests in its own pixel space: move that by the same amount.
    var offset = renderer.getOffset;
    renderer.getOffset = function () {
      return offset.call(renderer).add(d);
    };
  }

  /* ------------------------------------------------------------------ area selector */

  /**
   * The cascading area selector: district → township → community (``depth`` levels).
   * onChange(area) gets {level, code, name, bbox, codes: {district_code, …}} or null for
   * the whole city.
   */
  GG.areaSelector = function (container, depth, onChange) {
    var levels = GG.config.levels.slice(0, depth);
    var selects = [];
    var chosen = [];
    container.innerHTML = levels.map(function (lv, i) {
      return '<label class="gg-field">' + GG.escape(lv.title) +
        '<select id="gg-area-' + lv.id + '" data-level="' + lv.id + '"' +
        (i ? " disabled" : "") + '><option value="">' + (i ? "全部" : "全市") +
        "</option></select></label>";
    }).join("");
    levels.forEach(function (lv, i) {
      var select = container.querySelector("#gg-area-" + lv.id);
      selects.push(select);
      select.addEventListener("change", function () {
        var item = null;
        (select._items || []).forEach(function (a) { if (a.code === select.value) item = a; });
        chosen = chosen.slice(0, i);
        if (item) chosen[i] = item;
        for (var j = i + 1; j < selects.length; j++) {
          fill(j, []);
          selects[j].disabled = true;
        }
        select._next = item && i + 1 < selects.length ? load(i + 1, item.code) : Promise.resolve();
        onChange(current());
      });
    });

    function current() {
      var last = chosen.length - 1;
      while (last >= 0 && !chosen[last]) last -= 1;
      if (last < 0) return null;
      var codes = {};
      for (var i = 0; i <= last; i++) codes[levels[i].id + "_code"] = chosen[i].code;
      var area = chosen[last];
      return { level: levels[last].id, code: area.code, name: area.name, bbox: area.bbox, codes: codes };
    }

    function fill(i, items) {
      var select = selects[i];
      select._items = items;
      select.innerHTML = '<option value="">' + (i ? "全部" : "全市") + "</option>" +
        items.map(function (a) {
          return '<option value="' + GG.escape(a.code) + '">' + GG.escape(a.name) + "</option>";
        }).join("");
    }

    function load(i, parent) {
      return GG.getJSON(GG.config.areasUrl, { level: levels[i].id, parent: parent }).then(
        function (data) {
          fill(i, data.items);
          selects[i].disabled = !data.items.length;
        }
      );
    }

    var ready = load(0, null);
    return {
      ready: ready,
      current: current,
      /** Choose an area by its codes, top down (e.g. [district, township] from a table). */
      choose: function (codes) {
        return codes.reduce(function (previous, code, i) {
          return previous.then(function () {
            var select = selects[i];
            select.value = code;
            select.dispatchEvent(new Event("change"));
            return select._next;
          });
        }, ready);
      }
    };
  };

  /**
   * The area selector of a page: choosing an area jumps the map there and calls
   * ``onArea(area)``; once the districts are known the map shows the whole city.
   * Returns the promise of that first view.
   */
  GG.pageAreaSelector = function (page, map, depth, onArea) {
    page.selector = GG.areaSelector(document.getElementById("gg-area"), depth, function (area) {
      page.state.area = area;
      GG.zoomTo(map, area, page.cityBounds);
      onArea(area);
    });
    return page.selector.ready.then(function () {
      var bounds = null;
      (document.getElementById("gg-area-district")._items || []).forEach(function (a) {
        var b = GG.datum.bounds(a.bbox);
        bounds = bounds ? bounds.extend(b) : b;
      });
      page.cityBounds = bounds;
      if (bounds) map.fitBounds(bounds, { animate: false });
    });
  };

  /**
   * Jump the map to an area's extent (or the whole city). No animation: choosing a
   * township from a table selects its district first, and a second fit issued while the
   * first one is still animating would be dropped by Leaflet.
   */
  GG.zoomTo = function (map, area, cityBounds) {
    if (area && area.bbox) {
      map.fitBounds(GG.datum.bounds(area.bbox), { padding: [20, 20], maxZoom: 16, animate: false });
    } else if (cityBounds) {
      map.fitBounds(cityBounds, { animate: false });
    }
  };
})();
