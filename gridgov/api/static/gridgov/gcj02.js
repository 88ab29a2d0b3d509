/*
 * gridgov — display datum shift (WGS84 / CGCS2000 → GCJ-02), in the browser.
 *
 * gridgov stores and serves CGCS2000 (treated as WGS84, within centimetres). When the
 * configured base map is in GCJ-02 (e.g. 高德), every geometry gridgov draws must be
 * moved by the same ~500 m offset the base map carries, or it would not line up.
 *
 * This is a port of the forward formula in gridgov/gis/coords.py (_gcj_offset,
 * wgs84_to_gcj02); tests/api/maps/test_gcj02_display.py checks that both agree.
 * Only the forward direction is needed: the map never sends display coordinates back
 * except as a viewing bbox, which GridGov.datum.fromDisplayBounds widens instead.
 */
(function () {
  "use strict";
  var GG = (window.GridGov = window.GridGov || {});

  var A = 6378245.0; // Krasovsky ellipsoid, as GCJ-02 uses it
  var EE = 0.00669342162296594323;
  // GCJ-02 applies no offset outside this rectangle (its own rule, not China's border).
  var BOUNDS = { west: 72.004, south: 0.8293, east: 137.8347, north: 55.8271 };

  function inside(lon, lat) {
    return lon >= BOUNDS.west && lon <= BOUNDS.east && lat >= BOUNDS.south && lat <= BOUNDS.north;
  }

  /** GCJ-02's offset in degrees [dLon, dLat] at a WGS84 point. */
  function offset(lon, lat) {
    var x = lon - 105.0;
    var y = lat - 35.0;
    var pi = Math.PI;
    var wobble = ((20.0 * Math.sin(6.0 * pi * x) + 20.0 * Math.sin(2.0 * pi * x)) * 2.0) / 3.0;
    var dLat = -100.0 + 2.0 * x + 3.0 * y + 0.2 * y * y + 0.1 * x * y + 0.2 * Math.sqrt(Math.abs(x));
    dLat += wobble;
    dLat += ((20.0 * Math.sin(pi * y) + 40.0 * Math.sin((pi * y) / 3.0)) * 2.0) / 3.0;
    dLat += ((160.0 * Math.sin((pi * y) / 12.0) + 320.0 * Math.sin((pi * y) / 30.0)) * 2.0) / 3.0;
    var dLon = 300.0 + x + 2.0 * y + 0.1 * x * x + 0.1 * x * y + 0.1 * Math.sqrt(Math.abs(x));
    dLon += wobble;
    dLon += ((20.0 * Math.sin(pi * x) + 40.0 * Math.sin((pi * x) / 3.0)) * 2.0) / 3.0;
    dLon += ((150.0 * Math.sin((pi * x) / 12.0) + 300.0 * Math.sin((pi * x) / 30.0)) * 2.0) / 3.0;

    var phi = (lat * pi) / 180.0;
    var w2 = 1.0 - EE * Math.sin(phi) * Math.sin(phi);
    var meridianRadius = (A * (1.0 - EE)) / (w2 * Math.sqrt(w2));
    var parallelRadius = (A / Math.sqrt(w2)) * Math.cos(phi);
    return [((dLon / parallelRadius) * 180.0) / pi, ((dLat / meridianRadius) * 180.0) / pi];
  }

  /** WGS84 / CGCS2000 → GCJ-02; unchanged outside GCJ-02's rectangle. */
  function wgs84ToGcj02(lon, lat) {
    if (!inside(lon, lat)) return [lon, lat];
    var d = offset(lon, lat);
    return [lon + d[0], lat + d[1]];
  }

  GG.gcj02 = { offset: offset, wgs84ToGcj02: wgs84ToGcj02 };
})();
