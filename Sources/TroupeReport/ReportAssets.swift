/// The page's stylesheet and drawing script, inlined so the report works offline and alone.
enum ReportAssets {
    static let css = #"""
        :root { --fg: #111827; --muted: #6b7280; --line: #e5e7eb; --bg: #f6f7f9; --card: #ffffff; }
        * { box-sizing: border-box; }
        body { margin: 0; padding: 28px 32px 36px; background: var(--bg); color: var(--fg);
          font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, sans-serif; }
        header h1 { font-size: 21px; font-weight: 650; margin: 0 0 2px; }
        .runs { margin: 0 0 16px; color: var(--muted); }
        .runs .run { margin-right: 14px; white-space: nowrap; }
        .dot { display: inline-block; width: 10px; height: 10px; border-radius: 50%; margin-right: 6px; vertical-align: -1px; }
        .summary { display: flex; flex-wrap: wrap; gap: 16px; align-items: flex-start; }
        .summary table { border-collapse: separate; border-spacing: 0; background: var(--card); border: 1px solid var(--line);
          border-radius: 10px; overflow: hidden; font-variant-numeric: tabular-nums; min-width: 360px; }
        .summary th, .summary td { padding: 6px 16px; text-align: left; border-bottom: 1px solid var(--line); }
        .summary tr:last-child th, .summary tr:last-child td { border-bottom: none; }
        .summary thead th { background: #f9fafb; font-weight: 600; font-size: 12px; color: #374151; }
        .summary tbody th { font-weight: 500; color: #374151; font-family: ui-monospace, "SFMono-Regular", Menlo, monospace; font-size: 12.5px; }
        .notes { color: #92400e; background: #fffbeb; border: 1px solid #fde68a; border-radius: 8px; padding: 8px 12px 8px 28px; margin: 14px 0 0; }
        .controls { margin: 18px 0 10px; color: var(--muted); }
        .controls label { margin-left: 10px; cursor: pointer; }
        .charts { display: grid; grid-template-columns: repeat(auto-fill, minmax(520px, 1fr)); gap: 16px; margin-top: 12px; }
        .chart { background: var(--card); border: 1px solid var(--line); border-radius: 10px; padding: 12px 14px 6px; position: relative; }
        .chart h2 { font-size: 15px; font-weight: 600; margin: 0; }
        .chart .sub { color: var(--muted); font-size: 12px; margin: 1px 0 6px; }
        .legend { display: flex; flex-wrap: wrap; gap: 2px 14px; font-size: 12px; color: #374151; min-height: 4px; }
        .legend span { white-space: nowrap; }
        .legend svg { vertical-align: middle; margin-right: 5px; }
        .plot svg { display: block; width: 100%; height: auto; }
        .plot text { font-size: 11px; fill: var(--muted); font-variant-numeric: tabular-nums; }
        .plot .grid { stroke: #eef0f3; }
        .plot .axis { stroke: #9ca3af; }
        .plot .cursor { stroke: #9ca3af; stroke-dasharray: 3 3; }
        .tooltip { position: absolute; pointer-events: none; display: none; background: rgba(17, 24, 39, 0.92); color: #fff;
          font-size: 12px; padding: 6px 9px; border-radius: 6px; white-space: nowrap; z-index: 2; }
        .tooltip b { font-weight: 600; }
        .error { background: #fef2f2; color: #991b1b; border: 1px solid #fecaca; border-radius: 8px; padding: 10px 14px; margin: 12px 0; }
        footer { margin-top: 22px; color: var(--muted); font-size: 12px; }
        """#

    /// Draws every `section.chart` from the embedded JSON as an SVG line chart (axes, ticks, grid,
    /// legend, hover read-out) and marks it with `data-drawn-points`; the body gets `data-charts-drawn`
    /// and `data-page-height` when done, or `data-report-error` when something failed.
    static let script = #"""
        (function () {
          "use strict";
          var SVG = "http://www.w3.org/2000/svg";
          var W = 640, H = 290, M = { l: 60, r: 18, t: 12, b: 40 };
          // "#x=time" in the address opens the page with wall time on the x axis.
          var xMode = /(^#|&)x=time(&|$)/.test(location.hash) ? "time" : "step";

          function fail(message) {
            document.body.setAttribute("data-report-error", message);
            var box = document.createElement("div");
            box.className = "error";
            box.textContent = "The report could not draw its charts: " + message;
            document.body.insertBefore(box, document.body.firstChild);
          }
          window.addEventListener("error", function (event) { fail(String(event.message)); });

          function node(name, attrs, parent) {
            var element = document.createElementNS(SVG, name);
            for (var key in attrs) element.setAttribute(key, attrs[key]);
            if (parent) parent.appendChild(element);
            return element;
          }
          function label(svg, x, y, text, anchor, baseline) {
            var t = node("text", { x: x, y: y, "text-anchor": anchor, "dominant-baseline": baseline }, svg);
            t.textContent = text;
            return t;
          }
          function extent(values) {
            var lo = Infinity, hi = -Infinity;
            for (var i = 0; i < values.length; i++) { if (values[i] < lo) lo = values[i]; if (values[i] > hi) hi = values[i]; }
            return [lo, hi];
          }
          // "Nice" ticks: steps of 1, 2 or 5 times a power of ten, covering [lo, hi].
          function ticks(lo, hi, count) {
            if (!(hi > lo)) { var pad = lo === 0 ? 1 : Math.abs(lo) * 0.1; lo -= pad; hi += pad; }
            var raw = (hi - lo) / count, power = Math.pow(10, Math.floor(Math.log10(raw))), f = raw / power;
            var step = (f < 1.5 ? 1 : f < 3 ? 2 : f < 7 ? 5 : 10) * power;
            var start = Math.floor(lo / step + 1e-9) * step, end = Math.ceil(hi / step - 1e-9) * step, values = [];
            for (var v = start; v <= end + step * 1e-6; v += step) values.push(+v.toPrecision(12));
            return { lo: start, hi: end, step: step, values: values };
          }
          function decimals(step) { return Math.max(0, Math.min(6, -Math.floor(Math.log10(step) + 1e-9))); }
          // Tick labels share the axis' scale: k/M for large axes, a common exponent for tiny ones.
          function tickText(v, step, axisMax) {
            if (axisMax > 0 && axisMax < 1e-3) {
              var exponent = Math.floor(Math.log10(axisMax)), unit = Math.pow(10, exponent);
              return v === 0 ? "0" : (v / unit).toFixed(decimals(step / unit)) + "e" + exponent;
            }
            var a = Math.abs(v);
            if (a >= 1e6) return (v / 1e6).toFixed(decimals(step / 1e6)) + "M";
            if (a >= 1e4) return (v / 1e3).toFixed(decimals(step / 1e3)) + "k";
            return v.toFixed(decimals(step));
          }
          function valueText(v) {
            var a = Math.abs(v);
            if (a >= 1e4 || v === Math.round(v)) return String(Math.round(v));
            return a >= 1e-3 ? String(+v.toPrecision(4)) : v.toExponential(2);
          }

          function drawLegend(section, chart) {
            var legend = section.querySelector(".legend");
            legend.textContent = "";
            chart.series.forEach(function (series) {
              var item = document.createElement("span");
              var swatch = node("svg", { width: 22, height: 10 }, item);
              node("line", { x1: 1, y1: 5, x2: 21, y2: 5, stroke: series.color, "stroke-width": 2.5,
                             "stroke-dasharray": series.dash }, swatch);
              item.appendChild(document.createTextNode(series.label));
              legend.appendChild(item);
            });
          }

          function draw(section, chart) {
            var plot = section.querySelector(".plot");
            plot.textContent = "";
            var xi = xMode === "step" ? 0 : 1;
            var xs = [], ys = [];
            chart.series.forEach(function (s) { s.points.forEach(function (p) { xs.push(p[xi]); ys.push(p[2]); }); });
            var xr = extent(xs), yr = extent(ys);
            var inMinutes = xMode === "time" && xr[1] > 300, xDiv = inMinutes ? 60 : 1;
            var xt = ticks(xr[0] / xDiv, xr[1] / xDiv, 6), yt = ticks(yr[0], yr[1], 5);
            var yMax = Math.max(Math.abs(yt.lo), Math.abs(yt.hi)), xMax = Math.max(Math.abs(xt.lo), Math.abs(xt.hi));
            function X(v) { return M.l + (v / xDiv - xt.lo) / (xt.hi - xt.lo) * (W - M.l - M.r); }
            function Y(v) { return H - M.b - (v - yt.lo) / (yt.hi - yt.lo) * (H - M.t - M.b); }

            var svg = node("svg", { viewBox: "0 0 " + W + " " + H, role: "img", "aria-label": chart.title }, plot);
            yt.values.forEach(function (v) {
              node("line", { x1: M.l, x2: W - M.r, y1: Y(v), y2: Y(v), "class": "grid" }, svg);
              label(svg, M.l - 8, Y(v), tickText(v, yt.step, yMax), "end", "middle");
            });
            xt.values.forEach(function (v) {
              var x = M.l + (v - xt.lo) / (xt.hi - xt.lo) * (W - M.l - M.r);
              node("line", { x1: x, x2: x, y1: H - M.b, y2: H - M.b + 5, "class": "axis" }, svg);
              label(svg, x, H - M.b + 16, tickText(v, xt.step, xMax), "middle", "middle");
            });
            node("line", { x1: M.l, x2: M.l, y1: M.t, y2: H - M.b, "class": "axis" }, svg);
            node("line", { x1: M.l, x2: W - M.r, y1: H - M.b, y2: H - M.b, "class": "axis" }, svg);
            label(svg, M.l + (W - M.l - M.r) / 2, H - 6,
                  xMode === "step" ? "step" : inMinutes ? "wall time (min)" : "wall time (s)", "middle", "auto");

            var drawn = 0, sorted = [];
            chart.series.forEach(function (series) {
              var points = series.points.slice().sort(function (a, b) { return a[xi] - b[xi]; });
              sorted.push(points);
              var d = points.map(function (p, i) { return (i ? "L" : "M") + X(p[xi]).toFixed(1) + " " + Y(p[2]).toFixed(1); }).join("");
              node("path", { d: d, fill: "none", stroke: series.color, "stroke-width": 1.8, "stroke-dasharray": series.dash,
                             "stroke-linejoin": "round", "stroke-linecap": "round" }, svg);
              if (points.length <= 40) {
                points.forEach(function (p) { node("circle", { cx: X(p[xi]), cy: Y(p[2]), r: 2.6, fill: series.color }, svg); });
              }
              drawn += points.length;
            });
            section.setAttribute("data-drawn-points", String(drawn));
            addHover(section, svg, chart, sorted, xi, X, Y, xDiv);
          }

          // Hover read-out: a cursor line and, per series, the point nearest the pointer's x.
          function addHover(section, svg, chart, sorted, xi, X, Y, xDiv) {
            var tip = section.querySelector(".tooltip");
            if (!tip) { tip = document.createElement("div"); tip.className = "tooltip"; section.appendChild(tip); }
            var cursor = node("line", { y1: M.t, y2: H - M.b, "class": "cursor", visibility: "hidden" }, svg);
            var overlay = node("rect", { x: M.l, y: M.t, width: W - M.l - M.r, height: H - M.t - M.b, fill: "transparent" }, svg);
            overlay.addEventListener("mousemove", function (event) {
              var box = svg.getBoundingClientRect(), scale = W / box.width;
              var px = (event.clientX - box.left) * scale, best = null;
              tip.textContent = "";
              sorted.forEach(function (points, index) {
                var nearest = null, distance = Infinity;
                points.forEach(function (p) { var dx = Math.abs(X(p[xi]) - px); if (dx < distance) { distance = dx; nearest = p; } });
                if (!nearest) return;
                if (!best || distance < best.distance) best = { distance: distance, p: nearest };
                var line = document.createElement("div");
                var name = document.createElement("b");
                name.style.color = chart.series[index].color === "#4b5563" ? "#d1d5db" : chart.series[index].color;
                name.textContent = chart.series[index].label + ": ";
                line.appendChild(name);
                line.appendChild(document.createTextNode(valueText(nearest[2]) + "  (step " + nearest[0] + ", " + nearest[1].toFixed(1) + " s)"));
                tip.appendChild(line);
              });
              if (!best) return;
              var cx = X(best.p[xi]);
              cursor.setAttribute("x1", cx); cursor.setAttribute("x2", cx); cursor.setAttribute("visibility", "visible");
              var sectionBox = section.getBoundingClientRect();
              tip.style.display = "block";
              var left = event.clientX - sectionBox.left + 14;
              if (left + tip.offsetWidth > sectionBox.width) left = event.clientX - sectionBox.left - tip.offsetWidth - 14;
              tip.style.left = Math.max(4, left) + "px";
              tip.style.top = (event.clientY - sectionBox.top + 12) + "px";
            });
            overlay.addEventListener("mouseleave", function () { tip.style.display = "none"; cursor.setAttribute("visibility", "hidden"); });
          }

          function drawAll(data) {
            var sections = document.querySelectorAll("section.chart");
            if (sections.length !== data.charts.length) throw new Error("page has " + sections.length + " chart sections but data for " + data.charts.length);
            for (var i = 0; i < sections.length; i++) draw(sections[i], data.charts[i]);
            document.body.setAttribute("data-charts-drawn", String(sections.length));
            document.body.setAttribute("data-page-height", String(document.documentElement.scrollHeight));
          }

          try {
            var data = JSON.parse(document.getElementById("troupe-report-data").textContent);
            if (data.error) throw new Error(data.error);
            var sections = document.querySelectorAll("section.chart");
            for (var i = 0; i < sections.length; i++) drawLegend(sections[i], data.charts[i]);
            drawAll(data);
            Array.prototype.forEach.call(document.querySelectorAll("input[name=x-axis]"), function (input) {
              input.checked = input.value === xMode;
              input.addEventListener("change", function () { xMode = input.value; drawAll(data); });
            });
          } catch (error) {
            fail(error && error.message ? error.message : String(error));
          }
        })();
        """#
}
