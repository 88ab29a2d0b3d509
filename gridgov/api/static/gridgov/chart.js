/*
 * gridgov — a small SVG bar chart for incident trends (no charting library needed).
 * Bars: incidents per period; red line: overdue incidents per period.
 */
(function () {
  "use strict";
  var GG = (window.GridGov = window.GridGov || {});
  var NS = "http://www.w3.org/2000/svg"; // the SVG namespace: an identifier, never fetched

  function el(name, attrs, text) {
    var node = document.createElementNS(NS, name);
    Object.keys(attrs || {}).forEach(function (k) { node.setAttribute(k, attrs[k]); });
    if (text !== undefined) node.textContent = text;
    return node;
  }

  /** A "nice" upper bound for an axis (1, 2 or 5 times a power of ten). */
  function niceMax(value) {
    if (value <= 0) return 1;
    var power = Math.pow(10, Math.floor(Math.log10(value)));
    var steps = [1, 2, 5, 10];
    for (var i = 0; i < steps.length; i++) {
      if (steps[i] * power >= value) return steps[i] * power;
    }
    return 10 * power;
  }

  /**
   * Draw items [{period, count, overdue}] into container (replacing what was there).
   * Periods are labelled sparsely so that labels never overlap.
   */
  GG.trendChart = function (container, items, caption, interval) {
    var width = 290, height = 180, left = 40, right = 6, top = 18, bottom = 28;
    var svg = el("svg", { viewBox: "0 0 " + width + " " + height, role: "img",
      "aria-label": caption });
    svg.appendChild(el("title", {}, caption));
    var plotW = width - left - right, plotH = height - top - bottom;
    var max = niceMax(Math.max.apply(null, [0].concat(items.map(function (d) { return d.count; }))));
    var n = Math.max(items.length, 1);
    var step = plotW / n;
    var y = function (v) { return top + plotH - (v / max) * plotH; };

    svg.appendChild(el("line", { class: "axis", x1: left, y1: top + plotH, x2: width - right, y2: top + plotH }));
    svg.appendChild(el("line", { class: "axis", x1: left, y1: top, x2: left, y2: top + plotH }));
    [0, max / 2, max].forEach(function (v) {
      svg.appendChild(el("text", { x: left - 4, y: y(v) + 3, "text-anchor": "end" }, GG.number(v)));
    });
    svg.appendChild(el("text", { x: left, y: 11 }, "件数 (incidents)"));

    var every = Math.ceil(n / 4);
    // Months as 2025-03; days and weeks as 03-01 (the year is in the first label).
    var label = function (period, i) {
      var text = String(period);
      if (interval === "month") return text.slice(0, 7);
      return i === 0 ? text.slice(0, 10) : text.slice(5, 10);
    };
    var line = [];
    items.forEach(function (d, i) {
      var x = left + i * step;
      var bar = el("rect", { class: "bar", x: x + step * 0.1, y: y(d.count),
        width: Math.max(step * 0.8, 0.5), height: top + plotH - y(d.count) });
      bar.appendChild(el("title", {}, d.period + "：" + d.count + " 件，逾期 " + d.overdue + " 件"));
      svg.appendChild(bar);
      line.push((x + step / 2).toFixed(1) + "," + y(d.overdue).toFixed(1));
      if (i % every === 0) {
        svg.appendChild(el("text", { x: x + step / 2, y: height - 12, "text-anchor": "middle" },
          label(d.period, i)));
      }
    });
    if (line.length) svg.appendChild(el("polyline", { class: "overdue", points: line.join(" ") }));
    svg.appendChild(el("text", { x: width - right, y: 11, "text-anchor": "end", fill: "#d7301f" },
      "— 逾期 (overdue)"));
    container.innerHTML = "";
    if (!items.length) {
      container.textContent = "所选范围内没有事件 (no incidents)";
      return;
    }
    container.appendChild(svg);
  };
})();
