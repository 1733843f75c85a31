// convarith explorer: draws what the library computes. The server (or the notebook kernel) sends
// shapes, grids, frames, the matrix, values and code as JSON; this file only lays them out, looks
// them up and animates them. No convolution arithmetic is written here.

const SVG = "http://www.w3.org/2000/svg";

export const DEFAULT_STATE = {
  op: "conv2d", input_shape: [5, 5], in_channels: 1, out_channels: 1, kernel_size: [3, 3], stride: [2, 2],
  dilation: [1, 1], padding: [[1, 1], [1, 1]], output_padding: [0, 0], groups: 1, padding_mode: "zeros",
  ceil_mode: false, count_include_pad: true, framework: "torch", view: "direct", numeric: false, seed: 0,
  flip: false, input_values: null, kernel_values: null,
};

const KINDS = { conv: "Convolution", conv_transpose: "Transposed convolution", max_pool: "Max pooling", avg_pool: "Average pooling" };
const AXIS_NAMES = { 1: ["L"], 2: ["H", "W"], 3: ["D", "H", "W"] };

// Each framework's words for the same parameters, and its padding policies (value → its spelling).
const WORDS = {
  torch: { name: "PyTorch", kernel_size: "kernel_size", stride: "stride", dilation: "dilation", padding: "padding",
    output_padding: "output_padding", groups: "groups", policies: { valid: "'valid'", same: "'same'" } },
  keras: { name: "Keras", kernel_size: "kernel_size", stride: "strides", dilation: "dilation_rate", padding: "padding",
    output_padding: "output_padding", groups: "groups", policies: { valid: "'valid'", same_tf: "'same'", causal: "'causal'" } },
  jax: { name: "JAX", kernel_size: "window shape", stride: "window_strides", dilation: "rhs_dilation", padding: "padding",
    output_padding: "output_padding", groups: "feature_group_count", policies: { valid: "'VALID'", same_tf: "'SAME'", same_lower: "'SAME_LOWER'" } },
  onnx: { name: "ONNX", kernel_size: "kernel_shape", stride: "strides", dilation: "dilations", padding: "pads",
    output_padding: "output_padding", groups: "group", policies: { valid: "VALID", same_upper: "SAME_UPPER", same_lower: "SAME_LOWER" } },
  tf: { name: "TensorFlow", kernel_size: "filter shape", stride: "strides", dilation: "dilations", padding: "padding",
    output_padding: "output shape", groups: "groups", policies: { valid: "'VALID'", same_tf: "'SAME'" } },
};
const ALL_POLICIES = ["valid", "same", "same_tf", "same_upper", "same_lower", "full", "causal"];

// -- the URL: the whole state as a query string ---------------------------------------------------

export function encodeState(state) {
  const q = new URLSearchParams();
  for (const [key, value] of Object.entries(state)) {
    if (value === null || value === undefined) continue;
    if (key === "padding" && Array.isArray(value)) q.set(key, value.map((p) => p.join(":")).join(","));
    else if (Array.isArray(value)) q.set(key, value.join(","));
    else if (typeof value === "boolean") q.set(key, value ? "1" : "0");
    else q.set(key, String(value));
  }
  return q.toString();
}

function number(text) {
  const n = Number(text);
  return text.trim() !== "" && Number.isFinite(n) ? n : text; // the server names what is not a number
}

export function decodeState(query) {
  const state = { ...DEFAULT_STATE };
  const q = new URLSearchParams(query);
  for (const [key, text] of q.entries()) {
    if (key === "frame") { state.frame = number(text); continue; }
    if (!(key in DEFAULT_STATE)) continue;
    const model = DEFAULT_STATE[key];
    if (key === "padding") {
      state.padding = ALL_POLICIES.includes(text) ? text : text.split(",").map((p) => p.split(":").map(number));
    } else if (key === "input_values" || key === "kernel_values") {
      state[key] = text ? text.split(",").map(number) : null;
    } else if (Array.isArray(model)) state[key] = text.split(",").map(number);
    else if (typeof model === "boolean") state[key] = text === "1" || text === "true";
    else if (typeof model === "number") state[key] = number(text);
    else state[key] = text;
  }
  // per-axis fields the link leaves out: the defaults, one per axis of the linked op
  if (!query) return state;
  const n = Number(/(\d)d$/.exec(String(state.op))?.[1] ?? 2);
  const axisDefaults = { input_shape: 5, kernel_size: 3, stride: 1, dilation: 1, output_padding: 0 };
  for (const [key, value] of Object.entries(axisDefaults)) if (!q.has(key)) state[key] = Array(n).fill(value);
  if (!q.has("padding")) state.padding = Array.from({ length: n }, () => [0, 0]);
  return state;
}

// -- integer arrays arrive packed (little-endian int32 in base64, with their shape) ---------------

function unpack(data) {
  const bytes = Uint8Array.from(atob(data.int32), (c) => c.charCodeAt(0));
  return new Int32Array(bytes.buffer);
}

function unpackPage(page) {
  for (const grid of Object.values(page.grids)) { grid.source = unpack(grid.source); grid.reads = unpack(grid.reads); }
  const cells = unpack(page.frames.cells), taps = page.frames.kernel.length;
  page.frames.cells = Array.from({ length: page.frames.per_channel }, (_, p) => cells.subarray(p * taps, (p + 1) * taps));
  const m = page.matrix;
  if (m.row) { m.row = unpack(m.row); m.col = unpack(m.col); m.tap = unpack(m.tap); }
  return page;
}

// -- small DOM helpers ---------------------------------------------------------------------------

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === "class") node.className = v;
    else if (k === "text") node.textContent = v;
    else if (k.startsWith("on")) node.addEventListener(k.slice(2), v);
    else if (v !== false && v !== null && v !== undefined) node.setAttribute(k, v === true ? "" : v);
  }
  for (const c of children) if (c !== null && c !== undefined) node.append(c);
  return node;
}

function svg(tag, attrs = {}) {
  const node = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, v);
  return node;
}

function fmt(v) {
  if (v === null || v === undefined) return "";
  if (v === "-inf") return "−∞";
  if (v === "inf") return "∞";
  if (Number.isInteger(v)) return String(v);
  const s = Math.abs(v) >= 100 ? v.toFixed(0) : Math.abs(v) >= 10 ? v.toFixed(1) : v.toFixed(2);
  return s.replace(/\.?0+$/, "").replace("-", "−");
}

function shapeText(shape) { return shape.join(" × "); }

// -- the explorer ---------------------------------------------------------------------------------

export function mount(root, transport, initial) {
  const explorer = new Explorer(root, transport, initial);
  explorer.start();
  return explorer;
}

class Explorer {
  constructor(root, transport, initial) {
    this.root = root;
    this.transport = transport;
    this.state = initial ? { ...DEFAULT_STATE, ...initial } : decodeState(transport.readUrl ? transport.readUrl() : "");
    this.page = null;       // the last drawn payload
    this.frame = 0;
    this.takeFrame();
    this.playing = false;
    this.fps = 2;
    this.pinned = null;     // a pinned highlight, or null
    this.sequence = 0;      // answers to older requests are dropped
    this.timer = null;
  }

  start() {
    this.root.classList.add("cx");
    this.root.replaceChildren();
    this.build();
    this.request();
  }

  // -- skeleton ---------------------------------------------------------------------------------

  build() {
    const frameworks = Object.entries(WORDS).map(([key, w]) =>
      el("button", { class: "cx-tab", "data-framework": key, type: "button", text: w.name, onclick: () => this.set({ framework: key }) }));
    this.tabs = el("nav", { class: "cx-frameworks", "aria-label": "framework" }, ...frameworks);
    this.shareButton = el("button", { class: "cx-share", type: "button", text: "Copy link", onclick: () => this.share() });
    const header = el("header", { class: "cx-header" },
      el("h1", {}, el("span", { class: "cx-logo", text: "convarith" }), " explorer"), this.tabs, this.shareButton);
    this.form = el("form", { class: "cx-form", onsubmit: (e) => e.preventDefault() });
    this.solver = this.buildSolver();
    const side = el("aside", { class: "cx-side" }, this.form, this.solver);
    this.banner = el("div", { class: "cx-banner", role: "alert", hidden: true });
    this.summary = el("section", { class: "cx-summary", "aria-label": "arithmetic" });
    this.controls = this.buildControls();
    this.stage = el("div", { class: "cx-stage" });
    this.status = el("p", { class: "cx-status", "aria-live": "polite" });
    const animation = el("section", { class: "cx-card cx-animation" }, this.controls, this.stage, this.status);
    this.matrixCanvas = el("canvas", { class: "cx-matrix", width: 10, height: 10 });
    this.matrixOverlay = el("canvas", { class: "cx-matrix-overlay", width: 10, height: 10 });
    this.matrixNote = el("p", { class: "cx-note" });
    this.matrixTitle = el("h2", { text: "The matrix" });
    const matrix = el("section", { class: "cx-card cx-matrix-card" }, this.matrixTitle,
      el("div", { class: "cx-matrix-box" }, this.matrixCanvas, this.matrixOverlay), this.matrixNote);
    this.code = el("section", { class: "cx-card cx-code", "aria-label": "code" });
    const lower = el("div", { class: "cx-lower" }, matrix, this.code);
    const main = el("div", { class: "cx-main" }, this.banner, this.summary, animation, lower);
    this.root.append(header, el("div", { class: "cx-body" }, side, main));
    this.matrixOverlay.addEventListener("mousemove", (e) => this.matrixHover(e));
    this.matrixOverlay.addEventListener("mouseleave", () => this.unhover());
    // the keyboard: ← → step, Home / End first and last, space plays (not while typing in a field)
    // (several explorers on one page, as in a notebook: the keys go to the one last touched)
    this.root.addEventListener("pointerdown", () => { Explorer.last = this; });
    document.addEventListener("keydown", (e) => {
      if (!this.page || (Explorer.last && Explorer.last !== this)) return;
      if (e.target.closest?.("input, select, textarea, button") || e.altKey || e.ctrlKey || e.metaKey) return;
      const moves = { ArrowRight: this.frame + 1, ArrowLeft: this.frame - 1, Home: 0, End: this.count() - 1 };
      if (e.key in moves) { this.stop(); this.show(moves[e.key]); e.preventDefault(); }
      else if (e.key === " ") { this.toggle(); e.preventDefault(); }
    });
    let width = this.stage.clientWidth;
    window.addEventListener("resize", () => {
      if (!this.page || this.stage.clientWidth === width) return;
      width = this.stage.clientWidth;
      this.drawStage();
      this.show(this.frame);
    });
  }

  buildControls() {
    const b = (label, title, action, cls = "") => {
      const button = el("button", { type: "button", class: `cx-btn ${cls}`, title, "aria-label": title, onclick: action });
      if (label in ICONS) button.append(icon(label)); else button.textContent = label;
      return button;
    };
    this.playButton = b("play", "play", () => this.toggle(), "cx-play");
    this.scrub = el("input", { type: "range", min: 0, max: 0, value: 0, class: "cx-scrub", "aria-label": "frame",
      oninput: () => { this.stop(); this.show(Number(this.scrub.value)); } });
    this.speed = el("select", { class: "cx-speed", "aria-label": "speed", onchange: () => { this.fps = Number(this.speed.value); if (this.playing) this.play(); } },
      ...[0.5, 1, 2, 4, 8, 16, 32, 60].map((v) => el("option", { value: v, text: `${v} frames/s`, selected: v === 2 })));
    this.viewSelect = el("select", { class: "cx-view", "aria-label": "view", onchange: () => this.set({ view: this.viewSelect.value }) },
      el("option", { value: "direct", text: "guide's view (direct)" }), el("option", { value: "scatter", text: "scatter view" }));
    this.numericBox = el("input", { type: "checkbox", class: "cx-numeric", onchange: () => this.set({ numeric: this.numericBox.checked }) });
    this.flipBox = el("input", { type: "checkbox", class: "cx-flip", onchange: () => this.set({ flip: this.flipBox.checked }) });
    this.imageInput = el("input", { type: "file", accept: "image/*", class: "cx-image", hidden: true, onchange: () => this.loadImage(this.imageInput.files[0]) });
    return el("div", { class: "cx-controls" },
      b("first", "first frame", () => { this.stop(); this.show(0); }),
      b("previous", "previous frame", () => { this.stop(); this.show(this.frame - 1); }),
      this.playButton,
      b("next", "next frame", () => { this.stop(); this.show(this.frame + 1); }),
      b("last", "last frame", () => { this.stop(); this.show(this.count() - 1); }),
      this.scrub, this.speed, this.viewSelect,
      el("label", { class: "cx-check" }, this.numericBox, " numbers"),
      el("label", { class: "cx-check", title: "a true convolution: the kernel rotated by 180°" }, this.flipBox, " flip kernel"),
      b("new values", "new random values", () => this.set({ seed: (this.state.seed + 1) % 1000, input_values: null, kernel_values: null })),
      b("image…", "use an image as the input (or drop one on the grid)", () => this.imageInput.click()),
      this.imageInput);
  }

  buildSolver() {
    const from = el("input", { type: "number", min: 1, max: 128, value: 16, class: "cx-solve-from", "aria-label": "input size" });
    const to = el("input", { type: "number", min: 1, max: 128, value: 32, class: "cx-solve-to", "aria-label": "wanted output size" });
    const list = el("ol", { class: "cx-solutions" });
    const go = el("button", { type: "button", class: "cx-btn cx-solve", text: "Solve", onclick: async () => {
      list.replaceChildren(el("li", { class: "cx-note", text: "searching…" }));
      const answer = await this.transport.solve({ op: this.state.op, from: number(from.value), to: number(to.value) });
      if (answer.error) { list.replaceChildren(el("li", { class: "cx-error", text: answer.error.message })); return; }
      if (!answer.solutions.length) { list.replaceChildren(el("li", { class: "cx-note", text: "no layer found" })); return; }
      list.replaceChildren(...answer.solutions.map((s) => el("li", {},
        el("code", { text: s.repr.replace(/^Layer\('[^']*', (\d+, \d+, )?/, "").replace(/\)$/, "") }),
        s.reasons.length ? el("span", { class: "cx-note", text: ` — ${s.reasons.join("; ")}` }) : null,
        el("button", { type: "button", class: "cx-btn cx-apply", text: "apply", onclick: () => this.apply(s.layer, number(from.value)) }))));
    } });
    return el("section", { class: "cx-card cx-solver" }, el("h2", { text: "Solver" }),
      el("p", { class: "cx-solve-line" }, "I have ", from, " I want ", to, " ", go), list);
  }

  // -- state changes ----------------------------------------------------------------------------

  load(query) {
    this.stop();
    this.pinned = null;
    this.state = decodeState(query);
    this.takeFrame();
    this.request();
  }

  takeFrame() {
    // the frame shown is part of a shared link, but not of the layer the server is asked about
    const { frame, ...state } = this.state;
    this.state = state;
    if (Number.isInteger(frame) && frame >= 0) this.frame = frame;
  }

  writeUrl() {
    if (this.transport.writeUrl) this.transport.writeUrl(encodeState({ ...this.state, frame: this.frame }));
  }

  set(changes) {
    this.state = { ...this.state, ...changes };
    this.request();
  }

  apply(layer, size) {
    const n = this.ndim();
    const pad = layer.padding;
    this.set({
      kernel_size: layer.kernel_size, stride: layer.stride, dilation: layer.dilation,
      padding: typeof pad === "string" ? pad : pad.map((p) => [p[0], p[1]]),
      output_padding: layer.output_padding, input_shape: Array(n).fill(size), input_values: null,
    });
  }

  ndim() { return Number(/(\d)d$/.exec(this.state.op)?.[1] ?? 2); }
  kind() { return this.state.op.replace(/\dd$/, ""); }

  async request() {
    const id = ++this.sequence;
    const started = performance.now();
    delete this.root.dataset.paintedMs;
    let page;
    try {
      page = await this.transport.layer(this.state);
    } catch (err) {
      page = { error: { message: `the explorer's server did not answer (${err})` } };
    }
    if (id !== this.sequence) return;
    if (page.error) { this.refuse(page.error); return; }
    this.page = unpackPage(page);
    this.state = { ...this.state, ...page.state };
    this.writeUrl();
    if (this.transport.writeState) this.transport.writeState(this.state);
    this.draw();
    this.root.dataset.drawnMs = String(Math.round(performance.now() - started));
    this.root.dataset.serverMs = String(page.server_ms);
    this.root.dataset.ready = String(id);
    // painted: a task queued from the next animation frame runs once that frame is on screen
    requestAnimationFrame(() => setTimeout(() => {
      if (id === this.sequence) this.root.dataset.paintedMs = String(Math.round(performance.now() - started));
    }, 0));
  }

  refuse(error) {
    this.banner.hidden = false;
    this.banner.textContent = error.message;
    this.root.classList.add("cx-refused");
    for (const input of this.form.querySelectorAll("[data-param]")) {
      input.classList.toggle("cx-bad", input.dataset.param === error.param);
    }
    if (!this.formBuilt) this.drawForm();
    this.root.dataset.ready = String(this.sequence);
  }

  share() {
    const url = location.href;
    (navigator.clipboard?.writeText(url) ?? Promise.reject()).then(
      () => { this.shareButton.textContent = "Link copied"; },
      () => { this.shareButton.textContent = "Copy the address bar"; });
    setTimeout(() => { this.shareButton.textContent = "Copy link"; }, 1500);
  }

  // -- drawing ----------------------------------------------------------------------------------

  draw() {
    this.banner.hidden = true;
    this.root.classList.remove("cx-refused");
    for (const tab of this.tabs.children) tab.classList.toggle("cx-on", tab.dataset.framework === this.state.framework);
    this.drawForm();
    this.drawSummary();
    this.viewSelect.disabled = !this.page.transposed;
    this.viewSelect.value = this.state.view;
    this.numericBox.checked = this.state.numeric;
    this.flipBox.checked = this.state.flip;
    this.flipBox.disabled = this.page.pooling;
    this.buildIndex();
    const largest = (list) => Math.max(1e-9, ...(list ?? []).filter((x) => typeof x === "number").map(Math.abs));
    this.scales = { lower: largest(this.page.values?.lower), upper: largest(this.page.values?.upper) };
    this.drawStage();
    this.drawMatrix();
    this.drawCode();
    this.scrub.max = String(this.count() - 1);
    this.show(Math.min(this.frame, this.count() - 1));
  }

  drawForm() {
    // rebuilt only when its structure changes (kind, axes, framework, padding written as pairs or a policy):
    // otherwise the values are refreshed in place and the field being typed in keeps its focus
    const s0 = this.state;
    const structure = JSON.stringify([s0.op, s0.framework, Array.isArray(s0.padding) ? "pairs" : s0.padding]);
    if (this.formBuilt && structure === this.formStructure) { this.syncForm(); return; }
    this.formStructure = structure;
    this.formBuilt = true;
    const s = this.state, n = this.ndim(), words = WORDS[s.framework] ?? WORDS.torch, kind = this.kind();
    const pooling = kind.includes("pool"), transposed = kind === "conv_transpose";
    const axes = AXIS_NAMES[n] ?? [];
    const change = (param, axis, side) => (e) => {
      const value = number(e.target.value);
      const now = this.state; // the form outlives a state: read the current one
      if (axis === null) { this.set({ [param]: value }); return; }
      if (param === "padding") {
        const pairs = Array.isArray(now.padding) ? now.padding.map((p) => [...p]) : axes.map(() => [0, 0]);
        pairs[axis][side] = value;
        this.set({ padding: pairs });
        return;
      }
      const values = [...now[param]];
      values[axis] = value;
      this.set({ [param]: values, ...(param === "input_shape" ? { input_values: null } : {}) });
    };
    const cellInput = (param, axis, value, side = 0) => el("input", {
      type: "number", value, "data-param": param, "data-axis": axis, "data-side": side, "aria-label": `${param} ${axes[axis]}`,
      class: "cx-num", onchange: change(param, axis, side) });
    const row = (label, param, title) => el("tr", {}, el("th", { title: title ?? param, text: label }),
      ...axes.map((_, a) => el("td", {}, cellInput(param, a, s[param][a]))));
    const explicit = Array.isArray(s.padding);
    const pads = explicit ? s.padding : axes.map(() => ["", ""]);
    const padRow = (side, label) => el("tr", {}, el("th", { text: label }),
      ...axes.map((_, a) => el("td", {}, Object.assign(cellInput("padding", a, pads[a][side], side), { disabled: !explicit }))));
    const table = el("table", { class: "cx-params" },
      el("thead", {}, el("tr", {}, el("th"), ...axes.map((name) => el("th", { text: name })))),
      el("tbody", {},
        row("input size", "input_shape"),
        row(words.kernel_size, "kernel_size"),
        row(words.stride, "stride"),
        row(words.dilation, "dilation"),
        padRow(0, `${words.padding} before`),
        padRow(1, `${words.padding} after`),
        transposed ? row(words.output_padding, "output_padding") : null));
    const policies = { ...words.policies };
    if (!explicit && !(s.padding in policies)) policies[s.padding] = `${s.padding} (not ${words.name}'s)`;
    const policy = el("select", { "data-param": "padding", class: "cx-policy", "aria-label": "padding policy",
      onchange: (e) => this.set({ padding: e.target.value === "explicit" ? axes.map(() => [0, 0]) : e.target.value }) },
      el("option", { value: "explicit", text: "explicit (before, after)", selected: explicit }),
      ...Object.entries(policies).map(([v, label]) => el("option", { value: v, text: `${label}`, selected: s.padding === v })));
    const select = (param, options, label) => el("label", { class: "cx-field" }, `${label} `,
      el("select", { "data-param": param, onchange: (e) => this.set({ [param]: e.target.value }) },
        ...options.map(([v, text]) => el("option", { value: v, text, selected: String(s[param]) === String(v) }))));
    const numberField = (param, label) => el("label", { class: "cx-field" }, `${label} `,
      el("input", { type: "number", class: "cx-num", value: s[param], "data-param": param, onchange: (e) => this.set({ [param]: number(e.target.value) }) }));
    const check = (param, label) => el("label", { class: "cx-check" },
      el("input", { type: "checkbox", checked: s[param], "data-param": param, onchange: (e) => this.set({ [param]: e.target.checked }) }), ` ${label}`);
    const kindSelect = el("select", { class: "cx-kind", "data-param": "op", "aria-label": "layer kind",
      onchange: (e) => this.set(this.opChange(e.target.value, n)) },
      ...Object.entries(KINDS).map(([k, text]) => el("option", { value: k, text, selected: k === kind })));
    const dimSelect = el("select", { class: "cx-ndim", "aria-label": "dimensions", onchange: (e) => this.set(this.opChange(kind, Number(e.target.value))) },
      ...[1, 2, 3].map((d) => el("option", { value: d, text: `${d}-d`, selected: d === n })));
    const parts = [
      el("h2", { text: "Layer" }),
      el("div", { class: "cx-row" }, kindSelect, dimSelect),
      table,
      el("label", { class: "cx-field" }, `${words.padding} `, policy),
    ];
    if (!pooling) {
      parts.push(el("div", { class: "cx-row" }, numberField("in_channels", "in"), numberField("out_channels", "out"), numberField("groups", words.groups)));
      parts.push(el("div", { class: "cx-row" },
        el("button", { type: "button", class: "cx-btn cx-depthwise", text: "depthwise", title: "groups = channels",
          onclick: () => this.set({ groups: this.state.in_channels, out_channels: this.state.in_channels }) }),
        select("padding_mode", [["zeros", "zeros"], ["reflect", "reflect"], ["replicate", "replicate"], ["circular", "circular"]], "padding mode")));
    } else {
      parts.push(el("div", { class: "cx-row" }, numberField("in_channels", "channels"), check("ceil_mode", "ceil_mode"),
        kind === "avg_pool" ? check("count_include_pad", "count_include_pad") : null));
    }
    this.form.replaceChildren(...parts);
    this.syncForm();
  }

  syncForm() {
    const s = this.state;
    for (const input of this.form.querySelectorAll("input[data-param], select[data-param]")) {
      const param = input.dataset.param, axis = input.dataset.axis;
      if (input === document.activeElement || param === "op" || input.classList.contains("cx-policy")) continue;
      let value = s[param];
      if (param === "padding" && !Array.isArray(s.padding) && this.page) {
        // a policy: the pads it resolves to, shown greyed in the fields it disables
        input.placeholder = String(this.page.pads[Number(axis)][Number(input.dataset.side)]);
      }
      if (param === "padding") value = Array.isArray(s.padding) ? s.padding[Number(axis)][Number(input.dataset.side)] : "";
      else if (axis !== undefined) value = value[Number(axis)];
      if (input.type === "checkbox") input.checked = Boolean(value);
      else if (input.value !== String(value)) input.value = String(value);
    }
  }

  opChange(kind, n) {
    const fit = (v, fill) => Array.from({ length: n }, (_, i) => (Array.isArray(v) ? v[i] ?? v[0] : v) ?? fill);
    const s = this.state;
    const changes = {
      op: `${kind}${n}d`, input_shape: fit(s.input_shape, 5), kernel_size: fit(s.kernel_size, 3), stride: fit(s.stride, 1),
      dilation: fit(s.dilation, 1), output_padding: kind === "conv_transpose" ? fit(s.output_padding, 0) : Array(n).fill(0),
      padding: Array.isArray(s.padding) ? fit(s.padding, [0, 0]) : s.padding, input_values: null, kernel_values: null,
    };
    if (kind !== "conv_transpose") changes.view = "direct";
    if (kind.includes("pool")) Object.assign(changes, { out_channels: s.in_channels, groups: 1, padding_mode: "zeros" });
    if (kind.startsWith("conv")) changes.ceil_mode = false;
    return changes;
  }

  drawSummary() {
    const p = this.page;
    const key = JSON.stringify([p.shapes, p.caption, p.axes, p.findings, p.framework]);
    if (key === this.summaryKey) return; // unchanged: no new nodes, no new layout
    this.summaryKey = key;
    const axes = AXIS_NAMES[p.shapes.input.length - 2] ?? [];
    const lines = p.axes.map((a, i) => el("li", {},
      el("span", { class: "cx-axis", text: axes[i] ?? `axis ${i}` }), " ", el("code", { text: a.formula }), " → ",
      el("code", { class: "cx-substituted", text: a.substituted }),
      a.relationship ? el("span", { class: "cx-rel", text: ` guide's relationship ${a.relationship.number}: ${a.relationship.name} (${a.relationship.formula})` }) : null));
    const chip = (f) => el("li", { class: `cx-finding cx-${f.severity}`, "data-code": f.code }, el("b", { text: f.code }), ` ${f.message}`);
    const fw = p.framework;
    const fwList = fw.findings.length
      ? el("ul", { class: "cx-findings" }, ...fw.findings.map(chip))
      : el("p", { class: "cx-ok", text: `${fw.label} takes this layer as written.` });
    this.summary.replaceChildren(
      el("p", { class: "cx-shape" }, el("span", { class: "cx-op", text: p.op }), " ",
        el("span", { class: "cx-in", text: shapeText(p.shapes.input) }), " → ",
        el("strong", { class: "cx-out", "data-shape": p.shapes.output.join("x"), text: shapeText(p.shapes.output) }),
        p.shapes.weight ? el("span", { class: "cx-weight", text: `  weight ${shapeText(p.shapes.weight)}` }) : null),
      el("p", { class: "cx-caption", text: p.caption }),
      el("ul", { class: "cx-formulas" }, ...lines),
      p.findings.length ? el("ul", { class: "cx-findings" }, ...p.findings.map(chip)) : null,
      el("div", { class: "cx-framework-says" }, el("h3", { text: `${fw.label}` }), fwList));
  }

  drawCode(force = false) {
    const code = this.page.code;
    if (this.codeFramework !== this.state.framework) { this.codeFramework = this.state.framework; this.codeTab = this.state.framework; }
    const key = JSON.stringify([code, this.codeTab]);
    if (!force && key === this.codeKey) return;
    this.codeKey = key;
    const names = Object.keys(code);
    if (!this.codeTab || !names.includes(this.codeTab)) this.codeTab = this.state.framework in code ? this.state.framework : names[0];
    const tabs = el("div", { class: "cx-code-tabs", role: "tablist" }, ...names.map((n) =>
      el("button", { type: "button", role: "tab", class: `cx-tab ${n === this.codeTab ? "cx-on" : ""}`, "data-code": n, text: WORDS[n]?.name ?? n,
        onclick: () => { this.codeTab = n; this.drawCode(true); } })));
    const entry = code[this.codeTab];
    const body = entry.error
      ? el("p", { class: "cx-error", text: entry.error })
      : el("div", {},
        el("ol", { class: "cx-steps" }, ...entry.steps.map((s) => el("li", {}, el("code", { text: s })))),
        el("pre", { class: "cx-source", "data-framework": this.codeTab }, el("code", { text: entry.code })),
        el("div", { class: "cx-row" }, el("button", { type: "button", class: "cx-btn cx-copy", text: "Copy code",
          onclick: (e) => navigator.clipboard?.writeText(entry.code).then(() => { e.target.textContent = "Copied"; }) }),
        el("span", { class: "cx-note", text: `make(weight, bias=None) takes the weight in PyTorch's layout ${shapeText(this.page.shapes.weight ?? [])} and converts it (${entry.layout}).` })),
        entry.notes.length ? el("ul", { class: "cx-findings" }, ...entry.notes.map((n) => el("li", { class: "cx-finding cx-info", text: n }))) : null);
    this.code.replaceChildren(el("h2", { text: "The layer in code" }), tabs, body);
  }

  // -- lookups built once per payload (index inversions, no arithmetic of the layer) ----------

  buildIndex() {
    const f = this.page.frames;
    const grid = this.page.grids[f.on];
    const size = grid.kinds.length;
    const hits = Array.from({ length: size }, () => []);
    f.cells.forEach((cells, p) => cells.forEach((k, t) => hits[k].push([p, t])));
    this.hits = hits; // window-grid cell → the (position, tap) pairs that touch it
  }

  count() { return this.page ? this.page.frames.count : 1; }

  // -- the stage: input, kernel and output grids in one SVG ------------------------------------

  layoutOf(grid) {
    const shape = grid.shape;
    const [slices, rows, cols] = shape.length === 1 ? [1, 1, shape[0]] : shape.length === 2 ? [1, shape[0], shape[1]] : shape;
    return { slices, rows, cols, channels: grid.channels };
  }

  drawStage() {
    // the three grids on one canvas (thousands of cells draw in milliseconds), highlights on a second one above
    const p = this.page;
    const lower = this.layoutOf(p.grids.lower), upper = this.layoutOf(p.grids.upper);
    const k = p.shapes.kernel;
    const [first, last] = p.frames.channels[0];
    const kernel = { slices: k.length === 3 ? k[0] : 1, rows: k.length >= 2 ? k[k.length - 2] : 1, cols: k[k.length - 1],
      channels: p.pooling ? 1 : last - first };
    const width = (g) => g.slices * g.cols + (g.slices - 1) * 0.6;
    const height = (g) => g.channels * g.rows + (g.channels - 1) * 0.6;
    const avail = Math.max(320, this.stage.clientWidth || 900) - 24;
    const across = width(lower) + width(kernel) + width(upper) + 4;
    let cell = Math.floor(avail / across);
    // grids one above the other when side by side they would be small and stacked much larger (narrow screens)
    const stacked = Math.floor(avail / Math.max(width(lower), width(upper), width(kernel)));
    const vertical = cell < 16 && stacked >= 1.5 * cell;
    if (vertical) cell = stacked;
    cell = Math.max(5, Math.min(cell, 44));
    const label = k.length === 3 ? 36 : 22;
    const blocks = { lower, kernel, upper };
    let x = 8, y = label, W = 0, H = 0;
    const origin = {};
    for (const [name, g] of Object.entries(blocks)) {
      origin[name] = [x, y];
      const w = width(g) * cell, h = height(g) * cell;
      if (vertical) { y += h + label + 10; W = Math.max(W, x + w); H = y; }
      else { x += w + 2 * cell; W = x; H = Math.max(H, y + h + 8); }
    }
    W += 8; H += 4;
    const scatter = p.transposed && this.state.view === "scatter";
    this.layout = { blocks, origin, cell, font: Math.round(Math.min(cell * 0.5, 15)), scatter };
    this.withText = {
      lower: this.state.numeric && cell >= 18,
      upper: (this.state.numeric || scatter) && cell >= 18,
      kernel: cell >= 18 && !p.pooling,
    };
    const dpr = window.devicePixelRatio || 1;
    if (!this.gridBox) this.makeGridBox();
    // the same two canvases from layer to layer: cleared, or resized only when the picture's size changes
    // (a new element, or a new size, makes the browser lay the page out again)
    const [pw, ph] = [Math.ceil(W * dpr), Math.ceil(H * dpr)];
    for (const c of [this.gridCanvas, this.overlay]) {
      if (c.width !== pw || c.height !== ph) {
        c.width = pw; c.height = ph;
        c.style.width = `${W}px`; c.style.height = `${H}px`;
      }
    }
    this.base = this.gridCanvas.getContext("2d");
    this.over = this.overlay.getContext("2d");
    for (const ctx of [this.base, this.over]) {
      ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
      ctx.clearRect(0, 0, W, H);
    }
    this.gridBox.setAttribute("aria-label", `${p.op}: input ${shapeText(p.shapes.input)}, output ${shapeText(p.shapes.output)}`);
    const legend = this.legend();
    if (this.stage.firstChild !== this.gridBox) this.stage.replaceChildren(this.gridBox, legend);
    else if (this.stage.lastChild.textContent !== legend.textContent) this.stage.lastChild.replaceWith(legend);
    // what each cell shows: its text and value colour (kept, so that a test can read what was drawn)
    const v = p.values, most = Math.max(1, ...p.grids.upper.reads);
    this.shown = {}; this.fills = {};
    for (const [name, g] of Object.entries(blocks)) {
      const per = g.slices * g.rows * g.cols;
      this.shown[name] = Array.from({ length: g.channels }, () => new Array(per).fill(""));
      this.fills[name] = Array.from({ length: g.channels }, () => new Array(per).fill(null));
    }
    if (v) {
      const per = p.grids.lower.kinds.length;
      this.shown.lower.forEach((row, c) => row.forEach((_, i) => {
        const value = v.lower[c * per + i];
        row[i] = fmt(value);
        if (typeof value === "number") this.fills.lower[c][i] = heat("i", value / this.scales.lower);
      }));
    } else if (scatter) {
      this.shown.upper.forEach((row, c) => row.forEach((_, i) => {
        row[i] = String(p.grids.upper.reads[i]);
        this.fills.upper[c][i] = heat("overlap", p.grids.upper.reads[i] / most);
      }));
    }
    const ctx = this.base;
    ctx.font = "12px system-ui, sans-serif";
    ctx.fillStyle = "#62707d";
    const titles = { lower: p.transposed && !scatter ? "input, stretched and padded (the equivalent direct convolution)" : "input",
      kernel: p.pooling ? "window" : this.state.flip ? "kernel (flipped)" : "kernel", upper: "output" };
    for (const [name, g] of Object.entries(blocks)) {
      const [ox, oy] = origin[name];
      ctx.font = "12px system-ui, sans-serif";
      ctx.fillStyle = "#62707d";
      ctx.fillText(titles[name], ox, oy - (g.slices > 1 ? 20 : 7));
      ctx.font = "10.5px system-ui, sans-serif";
      for (let sl = 0; g.slices > 1 && sl < g.slices; sl++) ctx.fillText(`D ${sl}`, ox + sl * (g.cols + 0.6) * cell, oy - 5);
    }
    this.textStyle();  // one text style for every cell, set once
    for (const [name, g] of Object.entries(blocks)) {
      for (let c = 0; c < g.channels; c++) for (let i = 0; i < this.shown[name][c].length; i++) this.paintCell(name, c, i);
    }
    this.progress = null;
    this.lit = [];
    this.paintKernel(0);
  }

  makeGridBox() {
    this.gridCanvas = el("canvas", { class: "cx-grid" });
    const overlay = el("canvas", { class: "cx-grid-overlay" });
    this.gridBox = el("div", { class: "cx-grid-box", role: "img" }, this.gridCanvas, overlay);
    overlay.addEventListener("mousemove", (e) => this.hover(this.hit(e)));
    overlay.addEventListener("mouseleave", () => this.unhover());
    overlay.addEventListener("click", (e) => this.pin(this.hit(e)));
    overlay.addEventListener("dblclick", (e) => this.edit(this.hit(e)));
    overlay.addEventListener("dragover", (e) => e.preventDefault());
    overlay.addEventListener("drop", (e) => { e.preventDefault(); if (e.dataTransfer.files[0]) this.loadImage(e.dataTransfer.files[0]); });
    this.overlay = overlay;
  }

  cellBox(name, c, i) {
    const g = this.layout.blocks[name], [ox, oy] = this.layout.origin[name], cell = this.layout.cell;
    const sl = Math.floor(i / (g.rows * g.cols)), r = Math.floor((i % (g.rows * g.cols)) / g.cols), col = i % g.cols;
    return [ox + (sl * (g.cols + 0.6) + col) * cell, oy + (c * (g.rows + 0.6) + r) * cell];
  }

  hit(event) {
    // the cell under the pointer: the layout of drawStage, inverted
    const rect = this.overlay.getBoundingClientRect();
    const x = event.clientX - rect.left, y = event.clientY - rect.top, cell = this.layout.cell;
    for (const [name, g] of Object.entries(this.layout.blocks)) {
      const [ox, oy] = this.layout.origin[name];
      const u = (x - ox) / cell, w = (y - oy) / cell;
      if (u < 0 || w < 0) continue;
      const sl = Math.floor(u / (g.cols + 0.6)), col = Math.floor(u - sl * (g.cols + 0.6));
      const c = Math.floor(w / (g.rows + 0.6)), r = Math.floor(w - c * (g.rows + 0.6));
      if (sl < g.slices && col < g.cols && c < g.channels && r < g.rows) return { grid: name, ch: c, i: (sl * g.rows + r) * g.cols + col };
    }
    return null;
  }

  paintCell(name, c, i) {
    const ctx = this.base, cell = this.layout.cell, [x, y] = this.cellBox(name, c, i);
    const grid = name === "kernel" ? null : this.page.grids[name];
    const kind = grid ? grid.kinds[i] : "w";
    const unread = name === "lower" && !this.layout.scatter && kind === "i" && grid.reads[i] === 0;
    const [fill, stroke, dash] = unread ? UNREAD : KIND_STYLE[kind];
    ctx.clearRect(x, y, cell, cell);
    ctx.beginPath();
    if (cell >= 20) ctx.roundRect(x + 0.5, y + 0.5, cell - 1, cell - 1, 3);
    else ctx.rect(x + 0.5, y + 0.5, cell - 1, cell - 1);  // small cells: corners too small to see, and faster
    ctx.fillStyle = this.fills[name][c][i] ?? fill;
    ctx.fill();
    if (dash) ctx.setLineDash(dash);
    ctx.strokeStyle = stroke;
    ctx.stroke();
    if (dash) ctx.setLineDash([]);
    const text = this.shown[name][c][i];
    if (text && this.withText[name]) {
      ctx.fillStyle = "#111827";
      ctx.fillText(text, x + cell / 2, y + cell / 2 + 0.5, cell - 2);
    }
  }

  textStyle() {
    const ctx = this.base;
    ctx.font = `${this.layout.font}px ui-monospace, Menlo, Consolas, monospace`;
    ctx.textAlign = "center";
    ctx.textBaseline = "middle";
    ctx.lineWidth = 1;
  }

  legend() {
    const present = new Set(this.page.grids.lower.kinds + this.page.grids.upper.kinds);
    const names = this.page.kinds;
    const items = [...present].map((k) => el("span", { class: "cx-key" }, el("i", { class: `k-${k}` }), names[k]));
    if (this.page.grids.lower.reads.some((r, i) => r === 0 && this.page.grids.lower.kinds[i] === "i") && !(this.page.transposed && this.state.view === "scatter")) {
      items.push(el("span", { class: "cx-key" }, el("i", { class: "k-i cx-unread" }), "never read (dropped)"));
    }
    return el("p", { class: "cx-legend" }, ...items);
  }

  setValue(name, c, i, value) {
    this.shown[name][c][i] = fmt(value);
    this.fills[name][c][i] = typeof value === "number" ? heat(name === "upper" ? "o" : "i", value / this.scales[name]) : null;
    this.paintCell(name, c, i);
  }

  paintKernel(c) {
    // the kernels of the current frame's window channels, one panel each
    const p = this.page;
    if (!p.values || !p.weight_base) return;
    this.shown.kernel.forEach((row, j) => row.forEach((_, i) => {
      const value = p.values.weight[p.weight_base[c][j] + i];
      if (row[i] !== fmt(value)) { row[i] = fmt(value); this.paintCell("kernel", j, i); }
    }));
  }

  // -- frames -----------------------------------------------------------------------------------

  clear() {
    this.lit = [];
  }

  light(name, c, i, cls, label = null) {
    this.lit.push([name, c, i, cls, label]);
  }

  lightTaps(taps) {
    for (let j = 0; j < this.layout.blocks.kernel.channels; j++) for (const tap of taps) this.light("kernel", j, tap, "tap");
  }

  paintOverlay() {
    const ctx = this.over, cell = this.layout.cell;
    ctx.clearRect(0, 0, this.overlay.width, this.overlay.height);
    ctx.font = `${Math.round(cell * 0.28)}px ui-monospace, Menlo, Consolas, monospace`;
    ctx.textAlign = "right";
    ctx.textBaseline = "alphabetic";
    for (const [name, c, i, cls, label] of this.lit) {
      const [x, y] = this.cellBox(name, c, i);
      const [fill, stroke] = LIGHT[cls];
      ctx.beginPath();
      ctx.roundRect(x + 1, y + 1, cell - 2, cell - 2, Math.min(3, cell / 8));
      if (fill) { ctx.fillStyle = fill; ctx.fill(); }
      ctx.lineWidth = 2;
      ctx.strokeStyle = stroke;
      ctx.stroke();
      if (label) { ctx.fillStyle = "#ffffff"; ctx.fillText(`×${label}`, x + cell - 3, y + cell - 3); }
    }
  }

  // what the page shows, for tests and the console: the cells lit in a colour, the text drawn in each cell
  litCells(name, cls) {
    return this.lit.filter(([n, , , k]) => n === name && k === cls).map(([, c, i]) => [c, i]);
  }

  textsOf(name, c) { return [...this.shown[name][c]]; }

  cellCentre(name, c, i) {
    const [x, y] = this.cellBox(name, c, i), rect = this.overlay.getBoundingClientRect(), half = this.layout.cell / 2;
    return [rect.left + x + half, rect.top + y + half];
  }

  pixel(layer, name, c, i) {
    const [x, y] = this.cellBox(name, c, i), dpr = window.devicePixelRatio || 1, half = this.layout.cell / 2;
    const ctx = layer === "overlay" ? this.over : this.base;
    return [...ctx.getImageData(Math.round((x + half) * dpr), Math.round((y + half) * dpr), 1, 1).data];
  }

  show(f, preview = false) {
    const p = this.page;
    if (!p) return;
    f = Math.max(0, Math.min(this.count() - 1, f));
    if (!preview) {
      this.frame = f;
      this.scrub.value = String(f);
      if (!this.playing) this.writeUrl(); // while playing, once on pause: browsers throttle address changes
    }
    this.clear();
    const fr = p.frames, per = fr.per_channel;
    const c = Math.floor(f / per), pos = f % per;
    const [start, stop] = fr.channels[c];
    const windowGrid = fr.on, single = windowGrid === "lower" ? "upper" : "lower";
    // as in the guide: each window cell carries the weight it is multiplied by, small in its corner
    const weights = p.values?.weight && p.weight_base && this.layout.cell >= 26;
    for (let ch = start; ch < stop; ch++) {
      fr.cells[pos].forEach((k, t) => {
        const w = weights ? fmt(p.values.weight[p.weight_base[c][ch - start] + fr.kernel[t]]) : null;
        this.light(windowGrid, ch, k, "hl", w);
      });
    }
    this.light(single, c, pos, "now");
    this.lightTaps(fr.kernel);
    this.paintOverlay();
    this.paintKernel(c);
    this.paintProgress(f);
    this.highlightMatrix(windowGrid === "lower" ? { row: f } : { col: f });
    const cellName = this.cellName(single, pos);
    const value = p.values ? ` = ${fmt(p.values.frame[f])}` : "";
    const what = windowGrid === "lower" ? `output ${cellName}${p.shapes.output[1] > 1 ? ` of channel ${c}` : ""}${value}`
      : `input ${cellName}${p.shapes.input[1] > 1 ? ` of channel ${c}` : ""}${value} stamps the kernel`;
    this.status.textContent = `frame ${f + 1} of ${this.count()}: ${what}`;
    this.root.dataset.frame = String(f);
  }

  cellName(grid, i) {
    const shape = grid === "kernel" ? this.page.shapes.kernel : this.page.grids[grid].shape;
    const idx = [];
    for (let a = shape.length - 1; a >= 0; a--) { idx.unshift(i % shape[a]); i = Math.floor(i / shape[a]); }
    return `(${idx.join(", ")})`;
  }

  paintProgress(f) {
    const p = this.page, v = p.values;
    if (!v) return;
    const per = p.frames.per_channel;
    if (p.frames.on === "lower") {  // output cells computed so far show their value: one more cell per step
      const n = p.grids.upper.kinds.length;
      const paint = (g, shown) => this.setValue("upper", Math.floor(g / per), g % per, shown ? v.upper[Math.floor(g / per) * n + (g % per)] : null);
      if (this.progress !== null && f === this.progress + 1) paint(f, true);
      else if (this.progress !== null && f === this.progress - 1) paint(this.progress, false);
      else if (this.progress === null) for (let g = 0; g <= f; g++) paint(g, true); // freshly drawn: all blank
      else for (let g = 0; g < this.count(); g++) paint(g, g <= f);
      this.progress = f;
      return;
    }
    // the scatter view: each output cell shows its running sum after frame f (the latest partial sum written)
    const n = p.grids.upper.kinds.length;
    const shown = Array.from({ length: p.grids.upper.channels }, () => new Array(n).fill(null));
    for (let g = 0; g <= f; g++) {
      const c = Math.floor(g / per), pos = g % per, [start, stop] = p.frames.channels[c];
      const cells = p.frames.cells[pos], partial = v.partial[g];
      for (let ch = start; ch < stop; ch++) cells.forEach((k, t) => { shown[ch][k] = partial[(ch - start) * cells.length + t]; });
    }
    shown.forEach((row, ch) => row.forEach((value, i) => this.setValue("upper", ch, i, value)));
  }

  toggle() { if (this.playing) this.stop(); else this.play(); }

  play() {
    clearInterval(this.timer);
    this.playing = true;
    this.pinned = null;
    this.playButton.replaceChildren(icon("pause"));
    this.playButton.setAttribute("aria-label", "pause");
    if (this.frame >= this.count() - 1) this.show(0);
    this.timer = setInterval(() => {
      if (this.frame >= this.count() - 1) { this.stop(); return; }
      this.show(this.frame + 1);
    }, 1000 / this.fps);
  }

  stop() {
    clearInterval(this.timer);
    if (this.playing && this.page) { this.playing = false; this.writeUrl(); }
    this.playing = false;
    this.playButton.replaceChildren(icon("play"));
    this.playButton.setAttribute("aria-label", "play");
  }

  // -- linked views -------------------------------------------------------------------------------

  hover(t) {
    if (this.pinned || this.playing) return;
    if (t) this.focus(t); else this.unhover();
  }

  unhover() {
    if (this.pinned || this.playing || !this.page) return;
    this.show(this.frame);
  }

  pin(t) {
    if (!t) return;
    this.stop();
    const same = this.pinned && this.pinned.grid === t.grid && this.pinned.ch === t.ch && this.pinned.i === t.i;
    this.pinned = null;
    if (same) { this.show(this.frame); return; }
    this.focus(t);
    this.pinned = t;
  }

  focus(t) {
    const p = this.page, fr = p.frames, per = fr.per_channel;
    const windowGrid = fr.on, single = windowGrid === "lower" ? "upper" : "lower";
    if (t.grid === single) {                       // a frame's own cell: show that frame
      if (t.i < per) this.show(t.ch * per + t.i, true);
      return;
    }
    this.clear();
    if (t.grid === "kernel") {                      // a tap: every place it is used
      const c = Math.floor(this.frame / per), [start, stop] = fr.channels[c];
      fr.kernel.forEach((tap, j) => {
        if (tap !== t.i) return;
        for (let ch = start; ch < stop; ch++) fr.cells.forEach((cells) => this.light(windowGrid, ch, cells[j], "hl"));
      });
      this.lightTaps([t.i]);
      this.paintOverlay();
      this.highlightMatrix({ tap: t.i });
      this.status.textContent = `kernel tap ${this.cellName("kernel", t.i)}: every cell it multiplies`;
      return;
    }
    // a cell of the window grid: every frame that touches it (its column of C, or its row in the scatter view)
    this.light(windowGrid, t.ch, t.i, "hl");
    const reached = [];
    fr.channels.forEach(([start, stop], c) => {
      if (t.ch < start || t.ch >= stop) return;
      for (const [pos, tap] of this.hits[t.i]) {
        this.light(single, c, pos, "reach");
        this.lightTaps([fr.kernel[tap]]);
        reached.push(c * per + pos);
      }
    });
    this.paintOverlay();
    const source = p.grids[windowGrid].source[t.i];
    const index = source < 0 ? null : t.ch * p.grids[windowGrid].sizes.reduce((a, b) => a * b, 1) + source;
    this.highlightMatrix(windowGrid === "lower" ? { col: index } : { row: index });
    const kindName = p.kinds[p.grids[windowGrid].kinds[t.i]];
    this.status.textContent = `${kindName} cell ${this.cellName(windowGrid, t.i)}: read by ${reached.length} ${windowGrid === "lower" ? "output" : "input"} cell${reached.length === 1 ? "" : "s"}`;
  }

  // -- the matrix -------------------------------------------------------------------------------

  drawMatrix() {
    const m = this.page.matrix;
    const name = this.page.transposed ? "Cᵀ (the transposed convolution's matrix)" : this.page.pooling ? "The pooling windows as a matrix" : "C";
    this.matrixTitle.textContent = `${name}: ${m.rows} × ${m.cols}`;
    const canvas = this.matrixCanvas, overlay = this.matrixOverlay;
    if (!m.row) {
      canvas.width = overlay.width = 1; canvas.height = overlay.height = 1;
      this.matrixNote.textContent = `${m.entries.toLocaleString()} nonzeros: too many to send (convarith matrix writes it).`;
      return;
    }
    // one canvas pixel per entry up to 640; a larger matrix is drawn shrunk (several entries a pixel)
    const width = Math.min(m.cols, 640), height = Math.min(m.rows, 640);
    this.matrixScale = [width / m.cols, height / m.rows];
    for (const c of [canvas, overlay]) if (c.width !== width || c.height !== height) { c.width = width; c.height = height; }
    const box = Math.min(520, Math.max(220, this.stage.clientWidth * 0.42 || 400));
    const fit = Math.min(box / width, box / height);
    const zoom = fit >= 1 ? Math.floor(fit) : fit; // whole pixels per entry when it fits, for crisp cells
    const cssW = width * zoom, cssH = height * zoom;
    for (const c of [canvas, overlay]) if (c.style.width !== `${cssW}px` || c.style.height !== `${cssH}px`) { c.style.width = `${cssW}px`; c.style.height = `${cssH}px`; }
    const ctx = canvas.getContext("2d");
    const image = ctx.createImageData(width, height);
    const pixels = new Uint32Array(image.data.buffer);
    pixels.fill(0xfffafafa);
    const taps = this.page.frames.kernel.length;
    const colours = Array.from({ length: taps }, (_, t) => { const [r, g, b] = hsl((t / taps) * 300, 0.55, 0.45); return 0xff000000 | (b << 16) | (g << 8) | r; });
    const [sx, sy] = this.matrixScale;
    for (let e = 0; e < m.row.length; e++) pixels[Math.floor(m.row[e] * sy) * width + Math.floor(m.col[e] * sx)] = colours[m.tap[e]];
    ctx.putImageData(image, 0, 0);
    const shrunk = width < m.cols || height < m.rows ? " (shrunk to fit)" : "";
    this.matrixNote.textContent = `rows: the ${m.rows} output cells; columns: the ${m.cols} input cells${shrunk}; ${m.entries.toLocaleString()} nonzeros, coloured by kernel tap. Hover to link.`;
  }

  highlightMatrix(what) {
    const m = this.page.matrix, o = this.matrixOverlay;
    if (!m.row) return;
    const [sx, sy] = this.matrixScale;
    const ctx = o.getContext("2d");
    ctx.clearRect(0, 0, o.width, o.height);
    ctx.fillStyle = "rgba(37, 99, 235, 0.22)";
    const hasRow = what.row !== undefined && what.row !== null, hasCol = what.col !== undefined && what.col !== null;
    if (hasRow) ctx.fillRect(0, Math.floor(what.row * sy), o.width, 1);
    if (hasCol) ctx.fillRect(Math.floor(what.col * sx), 0, 1, o.height);
    ctx.fillStyle = "rgba(220, 38, 38, 0.9)";
    for (let e = 0; e < m.row.length; e++) {
      const hit = (hasRow && m.row[e] === what.row) || (hasCol && m.col[e] === what.col) || (what.tap !== undefined && m.tap[e] === what.tap);
      if (hit) ctx.fillRect(Math.floor(m.col[e] * sx), Math.floor(m.row[e] * sy), 1, 1);
    }
  }

  matrixHover(e) {
    const m = this.page?.matrix;
    if (!m?.row || this.pinned || this.playing) return;
    const rect = this.matrixOverlay.getBoundingClientRect();
    const col = Math.floor(((e.clientX - rect.left) / rect.width) * m.cols);
    const row = Math.floor(((e.clientY - rect.top) / rect.height) * m.rows);
    if (row < 0 || col < 0 || row >= m.rows || col >= m.cols) return;
    this.show(this.page.frames.on === "lower" ? row : col, true);
  }

  // -- values the user gives ---------------------------------------------------------------------

  edit(t) {
    const p = this.page;
    if (!t || !p.values || t.grid !== "lower") return;
    const source = p.grids.lower.source[t.i];
    if (source < 0) return;
    const spatial = p.grids.lower.sizes.reduce((a, b) => a * b, 1);
    const index = t.ch * spatial + source;
    const input = el("input", { type: "number", class: "cx-edit", value: p.values.input[index], step: "any", "aria-label": "value" });
    const [x, y] = this.cellBox("lower", t.ch, t.i);
    input.style.left = `${x}px`;
    input.style.top = `${y}px`;
    this.stage.style.position = "relative";
    this.stage.append(input);
    input.focus();
    let finished = false;
    const done = (commit) => {
      if (finished) return; // removing the field blurs it: the blur handler must not end it twice
      finished = true;
      input.remove();
      if (!commit) return;
      const values = [...p.values.input];
      values[index] = number(input.value);
      this.set({ input_values: values, numeric: true });
    };
    input.addEventListener("keydown", (e) => { if (e.key === "Enter") done(true); if (e.key === "Escape") done(false); });
    input.addEventListener("blur", () => done(false));
  }

  loadImage(file) {
    if (!file) return;
    const url = URL.createObjectURL(file);
    const image = new Image();
    image.onload = () => {
      const sizes = this.state.input_shape, n = sizes.length;
      const [h, w] = n === 1 ? [1, sizes[0]] : [sizes[n - 2], sizes[n - 1]];
      const depth = n === 3 ? sizes[0] : 1;
      const canvas = el("canvas", { width: w, height: h });
      const ctx = canvas.getContext("2d");
      ctx.drawImage(image, 0, 0, w, h);
      const pixels = ctx.getImageData(0, 0, w, h).data;
      const channels = this.state.in_channels;
      const values = [];
      for (let c = 0; c < channels; c++) for (let d = 0; d < depth; d++) for (let i = 0; i < w * h; i++) {
        const [r, g, b] = [pixels[4 * i], pixels[4 * i + 1], pixels[4 * i + 2]];
        const v = channels === 3 ? [r, g, b][c] : 0.299 * r + 0.587 * g + 0.114 * b;
        values.push(Math.round((v / 255) * 100) / 100);
      }
      URL.revokeObjectURL(url);
      this.set({ input_values: values, numeric: true });
    };
    image.src = url;
  }
}

// the transport buttons' icons (no icon font: the page works offline and on any system)
const ICONS = {
  first: "M3 2h2v12H3zM14 2v12L6 8z", previous: "M12 2v12L4 8z", play: "M4 2v12l10-6z",
  pause: "M3 2h4v12H3zM9 2h4v12H9z", next: "M4 2v12l8-6z", last: "M11 2h2v12h-2zM2 2v12l8-6z",
};

function icon(name) {
  const node = svg("svg", { viewBox: "0 0 16 16", width: 14, height: 14, class: "cx-icon", "aria-hidden": "true" });
  node.append(svg("path", { d: ICONS[name] }));
  return node;
}

// each kind's fill, stroke and dash (the legend's colours, in explorer.css, are the same)
const KIND_STYLE = {
  i: ["#cfe2f3", "#6b9bc8"], o: ["#f1f8f4", "#4f9f7a"], p: ["#ffffff", "#b9c0c7", [3, 2]], z: ["#eef0f2", "#b9c0c7"],
  e: ["#fbe3bd", "#d99a3e"], h: ["#f3f4f6", "#d1d5db", [1, 2]], c: ["#f8d9d9", "#cf7b7b", [2, 2]], w: ["#f3e8ff", "#a78bfa"],
};
const UNREAD = ["#fde2e1", "#dc2626"];
const LIGHT = {
  hl: ["rgba(37, 99, 235, 0.55)", "#1e3a8a"], now: ["rgba(5, 150, 105, 0.7)", "#065f46"],
  reach: ["rgba(245, 158, 11, 0.65)", "#92400e"], tap: [null, "#7c3aed"],
};

// the value colour of a cell: from pale to the kind's deep colour (inputs blue, outputs green, overlap amber)
const HEAT = { i: [[234, 242, 251], [29, 78, 216]], o: [[238, 250, 243], [4, 120, 87]], overlap: [[255, 251, 235], [180, 83, 9]] };

function heat(kind, amount) {
  const [low, high] = HEAT[kind] ?? HEAT.i;
  const t = Math.max(0, Math.min(1, amount)) * 0.75;
  return `rgb(${low.map((l, k) => Math.round(l + (high[k] - l) * t)).join(",")})`;
}

function hsl(h, s, l) {
  const k = (n) => (n + h / 30) % 12, a = s * Math.min(l, 1 - l);
  const f = (n) => l - a * Math.max(-1, Math.min(k(n) - 3, Math.min(9 - k(n), 1)));
  return [Math.round(255 * f(0)), Math.round(255 * f(8)), Math.round(255 * f(4))];
}
