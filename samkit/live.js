// samkit.LiveSegmenter's front end: an anywidget ES module, no build step, no imports.
//
// The image is sent once (model "image"); the kernel answers every prompt with a small
// transparent PNG of the mask alone (model "overlay"). The prompt lives here while the
// mouse moves and is sent with `request` numbered; at most one request is in flight,
// and while one is, only the newest prompt waits to be sent.

const SVG_NS = "http://www.w3.org/2000/svg";
const CLICK_PX = 4; // a press that moves less than this (screen px) is a click
const STALE_MS = 5000; // an answer this late no longer holds back the next prompt
const POINT_R = 7; // point radius, screen px
const HANDLE_R = 6;

const CSS = `
.samkit-live { font-family: sans-serif; font-size: 13px; line-height: 1.4; }
.samkit-live-bar { display: flex; gap: 10px; align-items: center; margin: 4px 0; flex-wrap: wrap; }
.samkit-live-bar button { font-size: 13px; padding: 2px 10px; cursor: pointer; }
.samkit-live-status { font-family: monospace; }
.samkit-live-status.samkit-live-error { color: #c00; }
.samkit-live-help { color: #666; font-size: 12px; margin: 2px 0 6px 0; }
.samkit-live-stage { position: relative; display: inline-block; line-height: 0; max-width: 100%;
  user-select: none; -webkit-user-select: none; touch-action: none; }
.samkit-live-image { display: block; max-width: 100%; height: auto; }
.samkit-live-overlay, .samkit-live-svg { position: absolute; left: 0; top: 0; width: 100%;
  height: 100%; }
.samkit-live-overlay { pointer-events: none; image-rendering: pixelated; }
.samkit-live-svg { cursor: crosshair; overflow: visible; }
.samkit-live-candidates { display: flex; gap: 8px; margin-top: 6px; flex-wrap: wrap; }
.samkit-live-candidate { position: relative; line-height: 0; cursor: pointer;
  border: 3px solid transparent; border-radius: 3px; }
.samkit-live-candidate.samkit-live-chosen { border-color: #1e90ff; }
.samkit-live-candidate img { width: 150px; height: auto; display: block; }
.samkit-live-candidate .samkit-live-cand-overlay { position: absolute; left: 0; top: 0; }
.samkit-live-candidate span { position: absolute; left: 2px; bottom: 2px; line-height: 1.2;
  background: rgba(0,0,0,.6); color: #fff; font: 11px monospace; padding: 1px 3px; }
`;

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

function render({ model, el }) {
  const root = element("div", "samkit-live", el);
  element("style", "", root).textContent = CSS;
  const bar = element("div", "samkit-live-bar", root);
  const clearButton = element("button", "samkit-live-clear", bar);
  const status = element("span", "samkit-live-status", bar);
  const help = element("div", "samkit-live-help", root);
  const stage = element("div", "samkit-live-stage", root);
  const base = element("img", "samkit-live-image", stage);
  base.alt = "image to segment";
  base.draggable = false;
  const overlay = element("img", "samkit-live-overlay", stage);
  overlay.alt = "";
  overlay.draggable = false;
  const svg = svgElement("svg", { class: "samkit-live-svg" }, stage);
  const strip = element("div", "samkit-live-candidates", root);

  // the prompt as drawn here; sent to the kernel by send()
  let box = [];
  let points = [];
  let labels = [];
  let request = model.get("request");
  let inFlight = false;
  let sentAt = 0;
  let pending = false;
  let waitFor = null; // {request, upAt}: the prompt of the last mouse-up, to time it
  const latencies = [];
  let overlayVersion = 0;

  function readModel() {
    box = [...model.get("box")];
    points = model.get("points").map((p) => [...p]);
    labels = [...model.get("labels")];
  }

  function texts() {
    return model.get("texts") || {};
  }

  function setup() {
    const w = model.get("width");
    const h = model.get("height");
    svg.setAttribute("viewBox", `0 0 ${w} ${h}`);
    svg.setAttribute("preserveAspectRatio", "none");
    base.src = model.get("image");
    base.width = w;
    clearButton.textContent = texts().clear || "Clear";
    help.textContent = texts().help || "";
  }

  // screen px per image px, for sizes that must look the same at any zoom
  function unit() {
    const rect = svg.getBoundingClientRect();
    return rect.width > 0 ? model.get("width") / rect.width : 1;
  }

  function toImage(event) {
    const rect = svg.getBoundingClientRect();
    const w = model.get("width");
    const h = model.get("height");
    const x = ((event.clientX - rect.left) / rect.width) * w;
    const y = ((event.clientY - rect.top) / rect.height) * h;
    return [Math.min(w, Math.max(0, x)), Math.min(h, Math.max(0, y))];
  }

  function draw() {
    while (svg.firstChild) svg.removeChild(svg.firstChild);
    const u = unit();
    if (box.length === 4) {
      const [x0, y0, x1, y1] = box;
      svgElement("rect", {
        x: x0, y: y0, width: x1 - x0, height: y1 - y0, fill: "rgba(0,0,0,0)",
        stroke: "#ffd400", "stroke-width": 2 * u, "data-kind": "box", style: "cursor: move",
      }, svg);
      const corners = { nw: [x0, y0], ne: [x1, y0], sw: [x0, y1], se: [x1, y1] };
      for (const [corner, [cx, cy]] of Object.entries(corners)) {
        svgElement("rect", {
          x: cx - HANDLE_R * u, y: cy - HANDLE_R * u, width: 2 * HANDLE_R * u,
          height: 2 * HANDLE_R * u, fill: "#ffd400", "data-kind": "handle",
          "data-corner": corner, style: `cursor: ${corner}-resize`,
        }, svg);
      }
      const del = svgElement("g", { "data-kind": "delete-box", style: "cursor: pointer" }, svg);
      const dx = x1 + 14 * u;
      const dy = y0 - 14 * u;
      svgElement("circle", { cx: dx, cy: dy, r: 9 * u, fill: "#333", "data-kind": "delete-box" }, del);
      const text = svgElement("text", {
        x: dx, y: dy + 4.5 * u, fill: "#fff", "font-size": 14 * u, "text-anchor": "middle",
        "data-kind": "delete-box", "font-family": "sans-serif",
      }, del);
      text.textContent = "×";
    }
    points.forEach(([x, y], i) => {
      svgElement("circle", {
        cx: x, cy: y, r: POINT_R * u, fill: labels[i] === 1 ? "#1db954" : "#e53935",
        stroke: "#fff", "stroke-width": 2 * u, "data-kind": "point", "data-index": i,
        style: "cursor: pointer",
      }, svg);
    });
  }

  let sending = false; // our own model.set() calls, not changes made from the kernel

  function send() {
    request += 1;
    sending = true;
    model.set("box", box.length === 4 ? box.map((v) => Math.round(v * 10) / 10) : []);
    model.set("points", points.map(([x, y]) => [Math.round(x * 10) / 10, Math.round(y * 10) / 10]));
    model.set("labels", [...labels]);
    model.set("request", request);
    sending = false;
    model.save_changes();
    inFlight = true;
    sentAt = performance.now();
  }

  function commit() {
    if (inFlight && performance.now() - sentAt < STALE_MS) {
      pending = true;
      return;
    }
    pending = false;
    send();
  }

  function commitFinal() {
    commit();
    waitFor = { request: pending ? request + 1 : request, upAt: performance.now() };
  }

  function showStatus() {
    const error = model.get("error");
    status.textContent = error || model.get("status");
    status.classList.toggle("samkit-live-error", !!error);
  }

  let notedSrc = null;

  function noteRedrawn(src) {
    if (src !== notedSrc) {
      notedSrc = src;
      overlayVersion += 1;
      root.dataset.overlayVersion = String(overlayVersion);
    }
    const answered = model.get("answered");
    root.dataset.answered = String(answered);
    if (waitFor && answered >= waitFor.request) {
      latencies.push(Math.round(performance.now() - waitFor.upAt));
      root.dataset.latencies = JSON.stringify(latencies);
      waitFor = null;
    }
  }

  function showOverlay() {
    const src = model.get("overlay");
    if (overlay.getAttribute("src") !== src) {
      overlay.onload = () => noteRedrawn(src);
      overlay.src = src;
    } else if (overlay.complete) {
      noteRedrawn(src); // the same mask again: nothing to load
    } // else: it is loading, and its onload notes it
  }

  function showCandidates() {
    while (strip.firstChild) strip.removeChild(strip.firstChild);
    const candidates = model.get("candidates");
    if (!candidates.length) return;
    const title = element("div", "", strip);
    title.style.width = "100%";
    title.textContent = texts().candidates || "";
    candidates.forEach((candidate, i) => {
      const card = element("div", "samkit-live-candidate", strip);
      card.dataset.index = String(i);
      if (i === model.get("selected")) card.classList.add("samkit-live-chosen");
      const img = element("img", "", card);
      img.src = model.get("image");
      img.draggable = false;
      const mask = element("img", "samkit-live-cand-overlay", card);
      mask.src = candidate.overlay;
      mask.draggable = false;
      element("span", "", card).textContent = `#${i} ${candidate.score.toFixed(3)}`;
      card.addEventListener("click", () => {
        model.set("selected", i);
        model.save_changes();
      });
    });
  }

  // -- the mouse
  let drag = null;

  function addPoint(xy, label) {
    points.push(xy);
    labels.push(label);
  }

  // a right-click is an exclude point: neither the browser's menu nor the notebook's
  svg.addEventListener("contextmenu", (event) => {
    event.preventDefault();
    event.stopPropagation();
  });

  svg.addEventListener("pointerdown", (event) => {
    if (event.button !== 0 && event.button !== 2) return;
    event.preventDefault();
    svg.setPointerCapture(event.pointerId);
    const kind = event.target.getAttribute("data-kind") || "background";
    drag = {
      kind,
      button: event.button,
      shift: event.shiftKey,
      index: Number(event.target.getAttribute("data-index")),
      corner: event.target.getAttribute("data-corner"),
      startScreen: [event.clientX, event.clientY],
      start: toImage(event),
      box: [...box],
      moved: false,
    };
  });

  svg.addEventListener("pointermove", (event) => {
    if (!drag) return;
    const [sx, sy] = drag.startScreen;
    if (!drag.moved && Math.hypot(event.clientX - sx, event.clientY - sy) < CLICK_PX) return;
    if (drag.button !== 0 || drag.kind === "delete-box") return;
    drag.moved = true;
    const [x, y] = toImage(event);
    const [x0, y0] = drag.start;
    const w = model.get("width");
    const h = model.get("height");
    if (drag.kind === "point") {
      points[drag.index] = [x, y];
    } else if (drag.kind === "box" && drag.box.length === 4) {
      const [bx0, by0, bx1, by1] = drag.box;
      const dx = Math.min(w - bx1, Math.max(-bx0, x - x0));
      const dy = Math.min(h - by1, Math.max(-by0, y - y0));
      box = [bx0 + dx, by0 + dy, bx1 + dx, by1 + dy];
    } else if (drag.kind === "handle" && drag.box.length === 4) {
      let [bx0, by0, bx1, by1] = drag.box;
      if (drag.corner.includes("w")) bx0 = x; else bx1 = x;
      if (drag.corner.includes("n")) by0 = y; else by1 = y;
      box = [Math.min(bx0, bx1), Math.min(by0, by1), Math.max(bx0, bx1), Math.max(by0, by1)];
    } else {
      drag.kind = "new-box";
      box = [Math.min(x0, x), Math.min(y0, y), Math.max(x0, x), Math.max(y0, y)];
    }
    draw();
    if (box.length === 4 && box[2] - box[0] >= 1 && box[3] - box[1] >= 1) commit();
  });

  function finish(event) {
    if (!drag) return;
    const current = drag;
    drag = null;
    if (svg.hasPointerCapture(event.pointerId)) svg.releasePointerCapture(event.pointerId);
    if (event.type === "pointercancel") return;
    const exclude = current.button === 2 || current.shift;
    if (!current.moved) {
      if (current.kind === "point") {
        points.splice(current.index, 1);
        labels.splice(current.index, 1);
      } else if (current.kind === "delete-box") {
        box = [];
      } else if (current.button === 0 || current.button === 2) {
        addPoint(toImage(event), exclude ? 0 : 1);
      }
    }
    if (box.length === 4 && (box[2] - box[0] < 1 || box[3] - box[1] < 1)) box = [];
    draw();
    commitFinal();
  }

  svg.addEventListener("pointerup", finish);
  svg.addEventListener("pointercancel", finish);

  clearButton.addEventListener("click", () => {
    box = [];
    points = [];
    labels = [];
    draw();
    commitFinal();
  });

  // -- the kernel's answers
  model.on("change:answered", () => {
    if (model.get("answered") >= request) inFlight = false;
    if (pending && !inFlight) {
      pending = false;
      send();
    }
  });
  // every answer, and a change made from the kernel, redraws the overlay once
  model.on("change:answered", showOverlay);
  model.on("change:overlay", showOverlay);
  model.on("change:status", showStatus);
  model.on("change:error", showStatus);
  model.on("change:candidates", showCandidates);
  model.on("change:selected", showCandidates);
  model.on("change:box change:points change:labels", () => {
    // a change made from the kernel (a cell setting .box); not while the mouse is down
    if (!sending && !drag && !inFlight && !pending) {
      readModel();
      draw();
    }
  });
  model.on("change:image change:width change:height change:texts", () => {
    setup();
    draw();
  });

  readModel();
  setup();
  draw();
  showStatus();
  showCandidates();
  showOverlay();
  const resize = new ResizeObserver(() => draw());
  resize.observe(stage);
  return () => resize.disconnect();
}

export default { render };
