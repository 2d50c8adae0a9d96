// archspec view: draws the Plan embedded in #plan-data. Vanilla JS, no libraries, no network.
// Every string from the spec reaches the page through textContent or an attribute value,
// never through innerHTML.
"use strict";
(function () {
  const DATA = JSON.parse(document.getElementById("plan-data").textContent);
  const SVG = "http://www.w3.org/2000/svg";
  const nodes = DATA.nodes;
  const index = new Map(nodes.map((n, i) => [n.name, i]));
  const collapsed = new Set();
  let selected = null;

  function el(tag, attrs, text) {
    const e = tag.startsWith("svg:") ? document.createElementNS(SVG, tag.slice(4)) : document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) e.setAttribute(k, String(v));
    if (text !== undefined) e.textContent = String(text);
    return e;
  }
  const fmt = (n) => (typeof n === "number" ? n.toLocaleString("en-US") : String(n));
  const shapeText = (s) => (s.length ? s.join("×") : "1");
  const num = (x) => (Number.isInteger(x) ? String(x) : x.toFixed(2));

  // ---------------------------------------------------------------- header
  function header() {
    const h = el("header");
    h.append(el("h1", {}, DATA.name));
    const t = el("div", { id: "totals" });
    const T = DATA.totals;
    const items = [
      ["input", shapeText(DATA.input)], ["output", shapeText(DATA.output_shape)],
      ["layers", fmt(T.layers)], ["params", fmt(T.params)], ["MACs", fmt(T.macs)],
      ["weights", T.weights], ["training memory", T.training_memory + " (batch " + T.batch + ")"],
    ];
    for (const [k, v] of items) {
      const s = el("span", { "data-total": k }, k + " ");
      s.append(el("b", {}, v));
      t.append(s);
    }
    h.append(t);
    return h;
  }

  // ----------------------------------------------------------------- graph
  const graph = el("div", { id: "graph" });
  const edges = el("svg:svg", { id: "edges" });
  let shownAs = new Map(); // node name → the element that shows it (itself or a collapsed group)

  function card(n, i) {
    const c = el("div", { class: "node", id: "n" + i, "data-index": i });
    c.dataset.name = n.name;
    c.append(el("span", { class: "shape" }, n.shape_text));
    c.append(el("div", { class: "name" }, n.name));
    c.append(el("div", { class: "kind" }, (n.kind + " " + n.detail).trim()));
    c.addEventListener("click", () => select(i));
    if (i === selected) c.classList.add("selected");
    return c;
  }

  function groupSummary(g) {
    const members = nodes.filter((n) => n.group.includes(g));
    const params = members.reduce((a, n) => a + n.params, 0);
    const last = members[members.length - 1];
    return members.length + " layers, " + fmt(params) + " params → " + (last ? last.shape_text : "");
  }

  function drawGraph() {
    graph.replaceChildren(edges);
    shownAs = new Map();
    const inCard = el("div", { class: "io", id: "node-input" });
    inCard.append(el("span", { class: "shape" }, shapeText(DATA.input)), el("div", { class: "name" }, "input"));
    graph.append(inCard);
    shownAs.set("input", inCard);
    const stack = [{ path: [], box: graph, hideAs: null }];
    nodes.forEach((n, i) => {
      while (stack.length > 1 && !samePrefix(n.group, stack[stack.length - 1].path)) stack.pop();
      let top = stack[stack.length - 1];
      for (let d = top.path.length; d < n.group.length; d++) {
        const g = n.group[d];
        const head = el("div", { class: "group-head" });
        head.dataset.group = g;
        head.append(el("span", { class: "toggle" }, collapsed.has(g) ? "▸" : "▾"), el("span", { class: "name" }, g));
        head.append(el("div", { class: "kind" }, "block: " + groupSummary(g)));
        head.addEventListener("click", () => { collapsed.has(g) ? collapsed.delete(g) : collapsed.add(g); drawGraph(); });
        const box = el("div", { class: "group" });
        top.box.append(head, box);
        if (top.hideAs || collapsed.has(g)) box.style.display = "none";
        // a node inside a collapsed block is drawn as the outermost collapsed block's head
        top = { path: n.group.slice(0, d + 1), box, hideAs: top.hideAs || (collapsed.has(g) ? head : null) };
        stack.push(top);
      }
      top = stack[stack.length - 1];
      const c = card(n, i);
      top.box.append(c);
      shownAs.set(n.name, top.hideAs || c);
    });
    const out = el("div", { class: "io", id: "node-output" });
    out.append(el("span", { class: "shape" }, shapeText(DATA.output_shape)), el("div", { class: "name" }, "output"));
    graph.append(out);
    requestAnimationFrame(drawEdges);
  }

  function samePrefix(group, path) {
    return path.every((g, k) => group[k] === g);
  }

  function drawEdges() {
    const box = graph.getBoundingClientRect();
    edges.setAttribute("width", graph.scrollWidth);
    edges.setAttribute("height", graph.scrollHeight);
    edges.replaceChildren();
    // the drawn boxes in page order (a collapsed block's head stands for its layers)
    const drawn = new Set([...shownAs.values(), graph.querySelector("#node-output")]);
    const visible = [...graph.querySelectorAll(".io, .node, .group-head")].filter((e) => drawn.has(e));
    const order = new Map(visible.map((e, k) => [e, k]));
    const pairs = [];
    nodes.forEach((n) => n.inputs.forEach((src) => pairs.push([src, n.name])));
    pairs.push([DATA.output, "\u0000output"]);
    let lane = 0;
    const seen = new Set();
    for (const [src, dst] of pairs) {
      const a = shownAs.get(src);
      const b = dst === "\u0000output" ? graph.querySelector("#node-output") : shownAs.get(dst);
      if (!a || !b || a === b) continue;
      const key = order.get(a) + ":" + order.get(b);
      if (seen.has(key)) continue;
      seen.add(key);
      const ra = a.getBoundingClientRect(), rb = b.getBoundingClientRect();
      const skip = order.get(b) - order.get(a) !== 1;
      let d;
      if (!skip) {
        const xa = ra.left - box.left + 20, xb = rb.left - box.left + 20;
        const ya = ra.bottom - box.top, yb = rb.top - box.top;
        d = "M" + xa + " " + ya + " V" + (yb - 6) + " H" + xb + " V" + yb;
      } else {
        const xa = ra.right - box.left, xb = rb.right - box.left;
        const bend = Math.max(xa, xb) + 18 + 10 * (lane++ % 10);
        const ya = ra.top - box.top + ra.height / 2, yb = rb.top - box.top + rb.height / 2;
        d = "M" + xa + " " + ya + " C" + bend + " " + ya + " " + bend + " " + yb + " " + xb + " " + yb;
      }
      const p = el("svg:path", { d, class: skip ? "skip" : "" });
      p.dataset.from = src;
      p.dataset.to = dst;
      edges.append(p);
    }
  }

  // --------------------------------------------------------------- details
  const details = el("section", { id: "details" });
  function showDetails(n) {
    details.replaceChildren(el("h2", {}, n.name));
    const t = el("table");
    const f = n.field;
    const rows = [
      ["kind", (n.kind + " " + n.detail).trim()],
      ["inputs", n.inputs.join(", ")],
      ["input shape", n.in_shapes.map(shapeText).join(", ")],
      ["output shape", n.shape_text],
      ["params", fmt(n.params)],
      ["MACs", fmt(n.macs)],
      ["receptive field", f.global ? "the whole input" : f.size.map(num).join("×") + " (jump " + f.jump.map(num).join("×") + ")"],
      ["block", n.group.join(" › ") || "–"],
      ["spec line", n.line === null ? "–" : n.line],
    ];
    for (const [k, v] of Object.entries(n.resolved)) rows.push([k, JSON.stringify(v)]);
    for (const [k, v] of rows) {
      const tr = el("tr");
      tr.append(el("th", {}, k), el("td", { "data-key": k }, v));
      t.append(tr);
    }
    details.append(t);
  }

  function select(i) {
    selected = i;
    graph.querySelectorAll(".node.selected").forEach((e) => e.classList.remove("selected"));
    const c = document.getElementById("n" + i);
    if (c) c.classList.add("selected");
    showDetails(nodes[i]);
    if (pickable(nodes[i])) { picker.value = String(i); pickLayer(); }
  }

  // ------------------------------------------------------ receptive fields
  const rf = el("section", { id: "rf" });
  const picker = el("select", { id: "rf-layer" });
  const controls = el("div", { id: "rf-controls" });
  const views = el("div", { id: "rf-views" });
  const readout = el("div", { id: "rf-readout" });
  const pickable = (n) => !n.field.global && n.shape.length >= 2 && n.field.size.length === n.shape.length - 1;
  let pos = [];

  function buildPicker() {
    rf.append(el("h2", {}, "Receptive field: what one output position sees"));
    if (DATA.input.length < 2) {
      rf.append(el("p", { class: "muted" }, "The input is a flat vector: every layer sees all of it."));
      return;
    }
    picker.append(el("option", { value: "" }, "pick a layer…"));
    nodes.forEach((n, i) => { if (pickable(n)) picker.append(el("option", { value: i }, n.name + " (" + n.shape_text + ")")); });
    picker.addEventListener("change", pickLayer);
    rf.append(picker, controls, views, readout);
    rf.append(el("p", { class: "muted" }, "Click a cell of the output grid (left) or type a position; the input region it sees is drawn on the input (right). Dashed: the part in the padding."));
  }

  function pickLayer() {
    controls.replaceChildren();
    if (picker.value === "") { views.replaceChildren(); readout.textContent = ""; return; }
    const n = nodes[Number(picker.value)];
    const sizes = n.shape.slice(1);
    pos = sizes.map((s) => Math.floor(s / 2));
    const names = sizes.length === 1 ? ["position"] : sizes.length === 2 ? ["row", "col"] : ["depth", "row", "col"];
    sizes.forEach((s, k) => {
      const lab = el("label", {}, names[k] + " ");
      const inp = el("input", { type: "number", min: 0, max: s - 1, value: pos[k], "data-axis": k });
      inp.addEventListener("input", () => { pos[k] = clamp(Number(inp.value) || 0, 0, s - 1); drawRF(); });
      lab.append(inp, el("span", { class: "muted" }, " of " + s));
      controls.append(lab);
    });
    drawRF();
  }

  const clamp = (x, lo, hi) => Math.max(lo, Math.min(hi, x));

  // The input region of output position p along one axis: centres start + p*jump, ± (size-1)/2.
  function region(f, k, p) {
    const centre = f.start[k] + p * f.jump[k];
    return [centre - (f.size[k] - 1) / 2, centre + (f.size[k] - 1) / 2];
  }

  function drawRF() {
    const n = nodes[Number(picker.value)];
    const inSizes = DATA.input.slice(1), outSizes = n.shape.slice(1);
    const spans = outSizes.map((_, k) => region(n.field, k, pos[k]));
    views.replaceChildren(outputGrid(outSizes), inputView(inSizes, spans));
    const axes = outSizes.length === 1 ? ["x"] : outSizes.length === 2 ? ["rows", "cols"] : ["depth", "rows", "cols"];
    readout.textContent = spans.map(([lo, hi], k) => axes[k] + " " + num(lo) + "–" + num(hi) +
      " (" + num(hi - lo + 1) + ")").join(", ") + " of the input; jump " + n.field.jump.map(num).join("×");
  }

  function outputGrid(sizes) {
    const h = sizes.length === 1 ? 1 : sizes[sizes.length - 2], w = sizes[sizes.length - 1];
    const cell = Math.max(2, Math.min(16, Math.floor(180 / Math.max(h, w))));
    const s = el("svg:svg", { id: "out-grid", width: w * cell, height: h * cell });
    s.append(el("svg:rect", { x: 0, y: 0, width: w * cell, height: h * cell, fill: "#eef1f6", stroke: "#8a94a6" }));
    const r = sizes.length === 1 ? 0 : pos[sizes.length - 2], c = pos[sizes.length - 1];
    s.append(el("svg:rect", { id: "out-cell", x: c * cell, y: r * cell, width: cell, height: cell }));
    s.addEventListener("click", (ev) => {
      const box = s.getBoundingClientRect();
      pos[sizes.length - 1] = clamp(Math.floor((ev.clientX - box.left) / cell), 0, w - 1);
      if (sizes.length > 1) pos[sizes.length - 2] = clamp(Math.floor((ev.clientY - box.top) / cell), 0, h - 1);
      controls.querySelectorAll("input").forEach((inp) => { inp.value = pos[Number(inp.dataset.axis)]; });
      drawRF();
    });
    return s;
  }

  function inputView(sizes, spans) {
    const one = sizes.length === 1;
    const h = one ? 1 : sizes[sizes.length - 2], w = sizes[sizes.length - 1];
    const scale = one ? Math.max(0.5, Math.min(8, 300 / w)) : Math.max(0.5, Math.min(12, 300 / Math.max(h, w)));
    const H = one ? 120 : h * scale, W = w * scale;
    const s = el("svg:svg", { id: "in-view", width: W, height: H });
    const sample = DATA.sample;
    if (sample && sample.kind === "image") {
      s.append(el("svg:image", { href: sample.src, x: 0, y: 0, width: W, height: H, preserveAspectRatio: "none", style: "image-rendering: pixelated" }));
    } else if (sample && sample.kind === "series") {
      const v = sample.values, lo = Math.min(...v), hi = Math.max(...v);
      const pts = v.map((y, i) => ((i + 0.5) * scale).toFixed(1) + "," + (H - 8 - ((y - lo) / (hi - lo || 1)) * (H - 16)).toFixed(1));
      s.append(el("svg:polyline", { points: pts.join(" "), fill: "none", stroke: "#1d2330", "stroke-width": 1.2 }));
    } else {
      s.append(el("svg:rect", { x: 0, y: 0, width: W, height: H, fill: "#f0f0f0" }));
      if (Math.max(h, w) <= 64) {
        for (let x = 0; x <= w; x++) s.append(el("svg:line", { x1: x * scale, y1: 0, x2: x * scale, y2: H, stroke: "#dadada" }));
        if (!one) for (let y = 0; y <= h; y++) s.append(el("svg:line", { x1: 0, y1: y * scale, x2: W, y2: y * scale, stroke: "#dadada" }));
      }
    }
    const [clo, chi] = spans[spans.length - 1];
    const [rlo, rhi] = one ? [0, 0] : spans[spans.length - 2];
    const box = (x0, x1, y0, y1) => ({ x: x0 * scale, width: (x1 - x0) * scale, y: one ? 0 : y0 * scale, height: one ? H : (y1 - y0) * scale });
    const full = box(clo - 0.5, chi + 0.5, rlo - 0.5, rhi + 0.5);
    const vis = box(Math.max(clo - 0.5, 0), Math.min(chi + 0.5, w), Math.max(rlo - 0.5, 0), Math.min(rhi + 0.5, h));
    s.append(el("svg:rect", Object.assign({ id: "rf-full" }, full)));
    const rect = el("svg:rect", Object.assign({ id: "rf-rect" }, vis));
    rect.dataset.cols = clo + ":" + chi;
    if (!one) rect.dataset.rows = rlo + ":" + rhi;
    s.append(rect);
    s.setAttribute("overflow", "visible");
    return s;
  }

  // -------------------------------------------------------------------- run
  function runSection(run) {
    const sec = el("section", { id: "run" });
    sec.append(el("h2", {}, "Training run " + run.folder));
    if (run.epochs.length) {
      sec.append(chart("loss", run.epochs, ["train_loss", "val_loss"]));
      sec.append(chart("accuracy", run.epochs, ["train_acc", "val_acc"]));
    } else {
      sec.append(el("p", { class: "muted" }, "no epochs in metrics.jsonl"));
    }
    const test = run.test;
    if (test) {
      const acc = test.accuracy === null ? "–" : (100 * test.accuracy).toFixed(2) + "%";
      sec.append(el("p", { id: "test-accuracy" }, "test accuracy " + acc + " on " + test.split));
      if (test.confusion) sec.append(confusion(test));
    }
    return sec;
  }

  function chart(title, epochs, keys) {
    const W = 420, H = 140, P = 30;
    const s = el("svg:svg", { width: W, height: H, class: "chart", "data-chart": title });
    const xs = epochs.map((e) => e.epoch);
    const ys = epochs.flatMap((e) => keys.map((k) => e[k])).filter((y) => y !== null);
    if (!ys.length) return s;
    const x0 = Math.min(...xs), x1 = Math.max(...xs), y0 = Math.min(...ys), y1 = Math.max(...ys);
    const X = (x) => P + ((x - x0) / (x1 - x0 || 1)) * (W - 2 * P);
    const Y = (y) => H - P + 10 - ((y - y0) / (y1 - y0 || 1)) * (H - 2 * P);
    s.append(el("svg:text", { x: P, y: 12, "font-size": 12 }, title + " per epoch (" + num(y0) + "–" + num(y1) + ")"));
    s.append(el("svg:line", { x1: P, y1: H - P + 10, x2: W - P, y2: H - P + 10, stroke: "#999" }));
    const colours = ["#2f6fdb", "#d9822b"];
    keys.forEach((k, c) => {
      const pts = epochs.filter((e) => e[k] !== null).map((e) => X(e.epoch).toFixed(1) + "," + Y(e[k]).toFixed(1));
      if (!pts.length) return;
      const line = el("svg:polyline", { points: pts.join(" "), fill: "none", stroke: colours[c], "stroke-width": 2 });
      line.dataset.series = k;
      s.append(line);
      s.append(el("svg:text", { x: W - P - 90, y: 26 + 14 * c, "font-size": 11, fill: colours[c] }, k));
    });
    return s;
  }

  function confusion(test) {
    const m = test.confusion;
    const names = test.classes || m.map((_, i) => String(i));
    const max = Math.max(1, ...m.flat());
    const t = el("table", { class: "confusion", id: "confusion" });
    const head = el("tr");
    head.append(el("th", {}, "true ╲ predicted"));
    names.forEach((c) => head.append(el("th", {}, c)));
    t.append(head);
    m.forEach((row, i) => {
      const tr = el("tr");
      tr.append(el("th", {}, names[i] === undefined ? i : names[i]));
      row.forEach((v) => {
        const td = el("td", {}, v);
        td.style.background = "rgba(47,111,219," + (v / max).toFixed(3) + ")";
        tr.append(td);
      });
      t.append(tr);
    });
    return t;
  }

  // ------------------------------------------------------------------ page
  document.title = DATA.name + " — archspec view";
  const main = el("main");
  const side = el("aside");
  details.append(el("h2", {}, "Layer details"), el("p", { class: "muted" }, "Click a layer."));
  buildPicker();
  side.append(details, rf);
  if (DATA.run) side.append(runSection(DATA.run));
  main.append(graph, side);
  document.body.append(header(), main);
  if (nodes.length > 400) {
    nodes.forEach((n) => { if (n.group.length) collapsed.add(n.group[0]); });
  }
  drawGraph();
  window.addEventListener("resize", () => requestAnimationFrame(drawEdges));
  document.body.dataset.ready = "1";
})();
