// A few small SVG charts for the dashboard (no library, no CDN): lines with an optional
// interval band, and labelled bars. Each draws into a container and returns the <svg>.
(function () {
  "use strict";
  const NS = "http://www.w3.org/2000/svg";
  const W = 600, H = 240, PAD = { left: 48, right: 12, top: 12, bottom: 36 };

  function el(name, attrs, parent) {
    const node = document.createElementNS(NS, name);
    for (const [key, value] of Object.entries(attrs || {})) node.setAttribute(key, String(value));
    if (parent) parent.appendChild(node);
    return node;
  }

  function frame(container) {
    container.textContent = "";
    const svg = el("svg", { viewBox: `0 0 ${W} ${H}`, role: "img" }, container);
    el("line", { class: "axis", x1: PAD.left, y1: H - PAD.bottom, x2: W - PAD.right, y2: H - PAD.bottom }, svg);
    el("line", { class: "axis", x1: PAD.left, y1: PAD.top, x2: PAD.left, y2: H - PAD.bottom }, svg);
    return svg;
  }

  function empty(container, text) {
    container.textContent = "";
    const note = document.createElement("p");
    note.className = "empty";
    note.textContent = text || "No data in this window.";
    container.appendChild(note);
    return null;
  }

  function scale(max, count) {
    const top = max > 0 ? max : 1;
    return {
      x: (i) => PAD.left + (count <= 1 ? 0.5 : i / (count - 1)) * (W - PAD.left - PAD.right),
      y: (v) => H - PAD.bottom - (v / top) * (H - PAD.top - PAD.bottom),
      top,
    };
  }

  function yLabels(svg, s) {
    for (const f of [0, 0.5, 1]) {
      const text = el("text", { class: "label", x: PAD.left - 6, y: s.y(s.top * f) + 3, "text-anchor": "end" }, svg);
      text.textContent = (s.top * f).toLocaleString(undefined, { maximumFractionDigits: 1 });
    }
  }

  // points: [{label, value, lower?, upper?}]
  function lineChart(container, points) {
    if (!points.length) return empty(container);
    const svg = frame(container);
    const max = Math.max(...points.map((p) => Math.max(p.value, p.upper ?? 0)));
    const s = scale(max, points.length);
    yLabels(svg, s);
    if (points.some((p) => p.upper !== undefined)) {
      const upper = points.map((p, i) => `${s.x(i)},${s.y(p.upper)}`);
      const lower = points.map((p, i) => `${s.x(i)},${s.y(p.lower)}`).reverse();
      el("polygon", { class: "band", points: upper.concat(lower).join(" ") }, svg);
    }
    const d = points.map((p, i) => `${i ? "L" : "M"}${s.x(i).toFixed(1)},${s.y(p.value).toFixed(1)}`).join(" ");
    el("path", { class: "line", d }, svg);
    const step = Math.max(1, Math.ceil(points.length / 6));
    points.forEach((p, i) => {
      if (i % step) return;
      const text = el("text", { class: "label", x: s.x(i), y: H - PAD.bottom + 14, "text-anchor": "middle" }, svg);
      text.textContent = p.label;
    });
    return svg;
  }

  // bars: [{label, value, alt?}]
  function barChart(container, bars, max) {
    if (!bars.length) return empty(container);
    const svg = frame(container);
    const s = scale(max ?? Math.max(...bars.map((b) => b.value)), bars.length);
    yLabels(svg, s);
    const slot = (W - PAD.left - PAD.right) / bars.length;
    bars.forEach((b, i) => {
      const x = PAD.left + i * slot + slot * 0.15;
      const y = s.y(b.value);
      el("rect", { class: b.alt ? "bar alt" : "bar", x, y, width: slot * 0.7, height: H - PAD.bottom - y }, svg);
      const text = el("text", { class: "label", x: x + slot * 0.35, y: H - PAD.bottom + 14, "text-anchor": "middle" }, svg);
      text.textContent = b.label;
    });
    return svg;
  }

  window.OmsCharts = { lineChart, barChart, empty };
})();
