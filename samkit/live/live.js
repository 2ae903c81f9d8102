// samkit.LiveSegmenter's front end: an anywidget ES module, no build step, no imports.
// The image is sent once (model "image"); the kernel answers every prompt with a small
// transparent PNG of the mask alone (model "overlay"). The prompt lives here while the
// mouse moves and is sent with `request` numbered; at most one request is in flight,
// and while one is, only the newest prompt waits to be sent. Every word shown comes
// from the model's "texts" (Spanish by default) and "status"; the look is live.css.
// Every function takes one context `ctx`: the model, the view (the page's elements), and
// small states: `prompt` (as drawn here), `traffic` (requests to the kernel), `timing`
// (what the tests read from the page), `drag` (while the mouse is down).

const SVG_NS = "http://www.w3.org/2000/svg";
const CLICK_PX = 4; // a press that moves less than this (screen px) is a click
const STALE_MS = 5000; // an answer this late no longer holds back the next prompt
const POINT_R = 7; // point radius, screen px
const HANDLE_R = 6;
const BOX_COLOUR = "#ffd400";

// ------------------------------------------------------------------ elements
function element(tag, className, parent) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (parent) parent.appendChild(node);
  return node;
}

function svgElement(tag, attributes, parent) {
  const node = document.createElementNS(SVG_NS, tag);
  for (const [key, value] of Object.entries(attributes)) node.setAttribute(key, String(value));
  if (parent) parent.appendChild(node);
  return node;
}

function picture(parent, className, src) {
  const img = element("img", className, parent);
  img.draggable = false;
  if (src) img.src = src;
  return img;
}

function emptied(node) {
  while (node.firstChild) node.removeChild(node.firstChild);
  return node;
}

function buildView(el) {
  const root = element("div", "samkit-live", el);
  const bar = element("div", "samkit-live-bar", root);
  const clearButton = element("button", "samkit-live-clear", bar);
  const status = element("span", "samkit-live-status", bar);
  const help = element("div", "samkit-live-help", root);
  const stage = element("div", "samkit-live-stage", root);
  const base = picture(stage, "samkit-live-image");
  const overlay = picture(stage, "samkit-live-overlay");
  overlay.alt = "";
  const svg = svgElement("svg", { class: "samkit-live-svg" }, stage);
  const strip = element("div", "samkit-live-candidates", root);
  return { root, clearButton, status, help, stage, base, overlay, svg, strip };
}

function createContext(model, el) {
  return {
    model,
    view: buildView(el),
    prompt: { box: [], points: [], labels: [] },
    // sending: our own model.set() calls, not changes made from the kernel
    traffic: {
      request: model.get("request"), inFlight: false, sentAt: 0, pending: false, sending: false,
    },
    // waitFor: {request, upAt}, the prompt of the last mouse-up, to time it
    timing: { waitFor: null, latencies: [], overlayVersion: 0, notedSrc: null },
    drag: null,
  };
}

// ------------------------------------------------------------------ the model
function texts(model) {
  return model.get("texts") || {};
}

function readModel(ctx) {
  const { model, prompt } = ctx;
  prompt.box = [...model.get("box")];
  prompt.points = model.get("points").map((p) => [...p]);
  prompt.labels = [...model.get("labels")];
}

function setup(ctx) {
  const { model, view } = ctx;
  const [w, h] = [model.get("width"), model.get("height")];
  view.svg.setAttribute("viewBox", `0 0 ${w} ${h}`);
  view.svg.setAttribute("preserveAspectRatio", "none");
  view.base.src = model.get("image");
  view.base.width = w;
  const words = texts(model);
  view.base.alt = words.image || "";
  view.clearButton.textContent = words.clear || "";
  view.help.textContent = words.help || "";
}

// screen px per image px, for sizes that must look the same at any zoom
function unit(ctx) {
  const rect = ctx.view.svg.getBoundingClientRect();
  return rect.width > 0 ? ctx.model.get("width") / rect.width : 1;
}

function toImage(ctx, event) {
  const rect = ctx.view.svg.getBoundingClientRect();
  const [w, h] = [ctx.model.get("width"), ctx.model.get("height")];
  const x = ((event.clientX - rect.left) / rect.width) * w;
  const y = ((event.clientY - rect.top) / rect.height) * h;
  return [Math.min(w, Math.max(0, x)), Math.min(h, Math.max(0, y))];
}

// ------------------------------------------------------------------ drawing the prompt
function drawBox(svg, box, u) {
  const [x0, y0, x1, y1] = box;
  svgElement("rect", {
    x: x0, y: y0, width: x1 - x0, height: y1 - y0, fill: "rgba(0,0,0,0)",
    stroke: BOX_COLOUR, "stroke-width": 2 * u, "data-kind": "box", style: "cursor: move",
  }, svg);
  const corners = { nw: [x0, y0], ne: [x1, y0], sw: [x0, y1], se: [x1, y1] };
  for (const [corner, [cx, cy]] of Object.entries(corners)) {
    svgElement("rect", {
      x: cx - HANDLE_R * u, y: cy - HANDLE_R * u, width: 2 * HANDLE_R * u,
      height: 2 * HANDLE_R * u, fill: BOX_COLOUR, "data-kind": "handle",
      "data-corner": corner, style: `cursor: ${corner}-resize`,
    }, svg);
  }
  drawDeleteButton(svg, x1 + 14 * u, y0 - 14 * u, u);
}

function drawDeleteButton(svg, dx, dy, u) {
  const del = svgElement("g", { "data-kind": "delete-box", style: "cursor: pointer" }, svg);
  svgElement("circle", { cx: dx, cy: dy, r: 9 * u, fill: "#333", "data-kind": "delete-box" }, del);
  const text = svgElement("text", {
    x: dx, y: dy + 4.5 * u, fill: "#fff", "font-size": 14 * u, "text-anchor": "middle",
    "data-kind": "delete-box", "font-family": "sans-serif",
  }, del);
  text.textContent = "×";
}

function drawPoints(svg, prompt, u) {
  prompt.points.forEach(([x, y], i) => {
    svgElement("circle", {
      cx: x, cy: y, r: POINT_R * u, fill: prompt.labels[i] === 1 ? "#1db954" : "#e53935",
      stroke: "#fff", "stroke-width": 2 * u, "data-kind": "point", "data-index": i,
      style: "cursor: pointer",
    }, svg);
  });
}

function draw(ctx) {
  const svg = emptied(ctx.view.svg);
  const u = unit(ctx);
  if (ctx.prompt.box.length === 4) drawBox(svg, ctx.prompt.box, u);
  drawPoints(svg, ctx.prompt, u);
}

// ------------------------------------------------------------------ sending the prompt
const tenths = (v) => Math.round(v * 10) / 10;

function send(ctx) {
  const { model, prompt, traffic } = ctx;
  traffic.request += 1;
  traffic.sending = true;
  model.set("box", prompt.box.length === 4 ? prompt.box.map(tenths) : []);
  model.set("points", prompt.points.map(([x, y]) => [tenths(x), tenths(y)]));
  model.set("labels", [...prompt.labels]);
  model.set("request", traffic.request);
  traffic.sending = false;
  model.save_changes();
  traffic.inFlight = true;
  traffic.sentAt = performance.now();
}

function commit(ctx) {
  const { traffic } = ctx;
  if (traffic.inFlight && performance.now() - traffic.sentAt < STALE_MS) {
    traffic.pending = true;
    return;
  }
  traffic.pending = false;
  send(ctx);
}

// a prompt that is final (mouse-up, the clear button): sent, and timed until redrawn
function commitFinal(ctx) {
  commit(ctx);
  const { request, pending } = ctx.traffic;
  ctx.timing.waitFor = { request: pending ? request + 1 : request, upAt: performance.now() };
}

// an answer came: send the prompt that waited for it, and show the answer's overlay
function onAnswered(ctx) {
  const { traffic } = ctx;
  if (ctx.model.get("answered") >= traffic.request) traffic.inFlight = false;
  if (traffic.pending && !traffic.inFlight) {
    traffic.pending = false;
    send(ctx);
  }
  showOverlay(ctx);
}

// ------------------------------------------------------------------ showing the answer
function showStatus(ctx) {
  const { model, view } = ctx;
  view.status.textContent = model.get("status");
  view.status.classList.toggle("samkit-live-error", !!model.get("error"));
}

function noteRedrawn(ctx, src) {
  const { model, view, timing } = ctx;
  if (src !== timing.notedSrc) {
    timing.notedSrc = src;
    timing.overlayVersion += 1;
    view.root.dataset.overlayVersion = String(timing.overlayVersion);
  }
  const answered = model.get("answered");
  view.root.dataset.answered = String(answered);
  if (timing.waitFor && answered >= timing.waitFor.request) {
    timing.latencies.push(Math.round(performance.now() - timing.waitFor.upAt));
    view.root.dataset.latencies = JSON.stringify(timing.latencies);
    timing.waitFor = null;
  }
}

function showOverlay(ctx) {
  const overlay = ctx.view.overlay;
  const src = ctx.model.get("overlay");
  if (overlay.getAttribute("src") !== src) {
    overlay.onload = () => noteRedrawn(ctx, src);
    overlay.src = src;
  } else if (overlay.complete) {
    noteRedrawn(ctx, src); // the same mask again: nothing to load
  } // else: it is loading, and its onload notes it
}

function candidateCard(ctx, candidate, i) {
  const { model } = ctx;
  const card = element("div", "samkit-live-candidate", ctx.view.strip);
  card.dataset.index = String(i);
  if (i === model.get("selected")) card.classList.add("samkit-live-chosen");
  picture(card, "", model.get("image"));
  picture(card, "samkit-live-cand-overlay", candidate.overlay);
  element("span", "", card).textContent = `#${i} ${candidate.score.toFixed(3)}`;
  card.addEventListener("click", () => {
    model.set("selected", i);
    model.save_changes();
  });
}

function showCandidates(ctx) {
  const strip = emptied(ctx.view.strip);
  const candidates = ctx.model.get("candidates");
  if (!candidates.length) return;
  const title = element("div", "", strip);
  title.style.width = "100%";
  title.textContent = texts(ctx.model).candidates || "";
  candidates.forEach((candidate, i) => candidateCard(ctx, candidate, i));
}

// ------------------------------------------------------------------ the mouse
function startDrag(ctx, event) {
  if (event.button !== 0 && event.button !== 2) return;
  event.preventDefault();
  ctx.view.svg.setPointerCapture(event.pointerId);
  const target = event.target;
  ctx.drag = {
    kind: target.getAttribute("data-kind") || "background", button: event.button,
    shift: event.shiftKey, index: Number(target.getAttribute("data-index")),
    corner: target.getAttribute("data-corner"), startScreen: [event.clientX, event.clientY],
    start: toImage(ctx, event), box: [...ctx.prompt.box], moved: false,
  };
}

// the box moved by the drag, kept inside the image
function movedBox(ctx, drag, x, y) {
  const [x0, y0] = drag.start;
  const [bx0, by0, bx1, by1] = drag.box;
  const dx = Math.min(ctx.model.get("width") - bx1, Math.max(-bx0, x - x0));
  const dy = Math.min(ctx.model.get("height") - by1, Math.max(-by0, y - y0));
  return [bx0 + dx, by0 + dy, bx1 + dx, by1 + dy];
}

// the box with the dragged corner at (x, y)
function resizedBox(drag, x, y) {
  let [bx0, by0, bx1, by1] = drag.box;
  if (drag.corner.includes("w")) bx0 = x; else bx1 = x;
  if (drag.corner.includes("n")) by0 = y; else by1 = y;
  return [Math.min(bx0, bx1), Math.min(by0, by1), Math.max(bx0, bx1), Math.max(by0, by1)];
}

function applyDrag(ctx, drag, [x, y]) {
  const { prompt } = ctx;
  if (drag.kind === "point") {
    prompt.points[drag.index] = [x, y];
  } else if (drag.kind === "box" && drag.box.length === 4) {
    prompt.box = movedBox(ctx, drag, x, y);
  } else if (drag.kind === "handle" && drag.box.length === 4) {
    prompt.box = resizedBox(drag, x, y);
  } else {
    const [x0, y0] = drag.start;
    drag.kind = "new-box";
    prompt.box = [Math.min(x0, x), Math.min(y0, y), Math.max(x0, x), Math.max(y0, y)];
  }
}

function moveDrag(ctx, event) {
  const { drag } = ctx;
  if (!drag) return;
  const [sx, sy] = drag.startScreen;
  if (!drag.moved && Math.hypot(event.clientX - sx, event.clientY - sy) < CLICK_PX) return;
  if (drag.button !== 0 || drag.kind === "delete-box") return;
  drag.moved = true;
  applyDrag(ctx, drag, toImage(ctx, event));
  draw(ctx);
  const box = ctx.prompt.box;
  if (box.length === 4 && box[2] - box[0] >= 1 && box[3] - box[1] >= 1) commit(ctx);
}

// a press that did not move: delete what was clicked, or add a point
function click(ctx, current, event) {
  const { prompt } = ctx;
  if (current.kind === "point") {
    prompt.points.splice(current.index, 1);
    prompt.labels.splice(current.index, 1);
  } else if (current.kind === "delete-box") {
    prompt.box = [];
  } else if (current.button === 0 || current.button === 2) {
    const exclude = current.button === 2 || current.shift;
    prompt.points.push(toImage(ctx, event));
    prompt.labels.push(exclude ? 0 : 1);
  }
}

function finishDrag(ctx, event) {
  const current = ctx.drag;
  if (!current) return;
  ctx.drag = null;
  const svg = ctx.view.svg;
  if (svg.hasPointerCapture(event.pointerId)) svg.releasePointerCapture(event.pointerId);
  if (event.type === "pointercancel") return;
  if (!current.moved) click(ctx, current, event);
  const box = ctx.prompt.box;
  if (box.length === 4 && (box[2] - box[0] < 1 || box[3] - box[1] < 1)) ctx.prompt.box = [];
  draw(ctx);
  commitFinal(ctx);
}

function listenToMouse(ctx) {
  const svg = ctx.view.svg;
  // a right-click is an exclude point: neither the browser's menu nor the notebook's
  svg.addEventListener("contextmenu", (event) => {
    event.preventDefault();
    event.stopPropagation();
  });
  svg.addEventListener("pointerdown", (event) => startDrag(ctx, event));
  svg.addEventListener("pointermove", (event) => moveDrag(ctx, event));
  svg.addEventListener("pointerup", (event) => finishDrag(ctx, event));
  svg.addEventListener("pointercancel", (event) => finishDrag(ctx, event));
  ctx.view.clearButton.addEventListener("click", () => {
    ctx.prompt = { box: [], points: [], labels: [] };
    draw(ctx);
    commitFinal(ctx);
  });
}

// ------------------------------------------------------------------ the kernel's answers
function listenToModel(ctx) {
  const { model, traffic } = ctx;
  // every answer, and a change made from the kernel, redraws the overlay once
  model.on("change:answered", () => onAnswered(ctx));
  model.on("change:overlay", () => showOverlay(ctx));
  model.on("change:status change:error", () => showStatus(ctx));
  model.on("change:candidates change:selected", () => showCandidates(ctx));
  model.on("change:box change:points change:labels", () => {
    // a change made from the kernel (a cell setting .box); not while the mouse is down
    if (!traffic.sending && !ctx.drag && !traffic.inFlight && !traffic.pending) {
      readModel(ctx);
      draw(ctx);
    }
  });
  model.on("change:image change:width change:height change:texts", () => {
    setup(ctx);
    draw(ctx);
  });
}

function render({ model, el }) {
  const ctx = createContext(model, el);
  listenToMouse(ctx);
  listenToModel(ctx);
  for (const show of [readModel, setup, draw, showStatus, showCandidates, showOverlay]) show(ctx);
  const resize = new ResizeObserver(() => draw(ctx));
  resize.observe(ctx.view.stage);
  return () => resize.disconnect();
}

export default { render };
