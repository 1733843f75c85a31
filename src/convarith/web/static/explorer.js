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
    this.request();
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
    this.root.dataset.busy = "1";
    let page;
    try {
      page = await this.transport.layer(this.state);
    } catch (err) {
      page = { error: { message: `the explorer's server did not answer (${err})` } };
    }
    if (id !== this.sequence) return;
    delete this.root.dataset.busy;
    if (page.error) { this.refuse(page.error); return; }
    this.page = page;
    this.state = { ...this.state, ...page.state };
    if (this.transport.writeUrl) this.transport.writeUrl(encodeState(this.state));
    if (this.transport.writeState) this.transport.writeState(this.state);
    this.draw();
    this.root.dataset.drawnMs = String(Math.round(performance.now() - started));
    this.root.dataset.serverMs = String(page.server_ms);
    this.root.dataset.ready = String(id);
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
    this.formBuilt = true;
    const s = this.state, n = this.ndim(), words = WORDS[s.framework] ?? WORDS.torch, kind = this.kind();
    const pooling = kind.includes("pool"), transposed = kind === "conv_transpose";
    const axes = AXIS_NAMES[n] ?? [];
    const change = (param, axis, side) => (e) => {
      const value = number(e.target.value);
      if (axis === null) { this.set({ [param]: value }); return; }
      if (param === "padding") {
        const pairs = Array.isArray(s.padding) ? s.padding.map((p) => [...p]) : axes.map(() => [0, 0]);
        pairs[axis][side] = value;
        this.set({ padding: pairs });
        return;
      }
      const values = [...s[param]];
      values[axis] = value;
      this.set({ [param]: values, ...(param === "input_shape" ? { input_values: null } : {}) });
    };
    const cellInput = (param, axis, value, side = 0) => el("input", {
      type: "number", value, "data-param": param, "data-axis": axis, "aria-label": `${param} ${axes[axis]}`,
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
          onclick: () => this.set({ groups: s.in_channels, out_channels: s.in_channels }) }),
        select("padding_mode", [["zeros", "zeros"], ["reflect", "reflect"], ["replicate", "replicate"], ["circular", "circular"]], "padding mode")));
    } else {
      parts.push(el("div", { class: "cx-row" }, numberField("in_channels", "channels"), check("ceil_mode", "ceil_mode"),
        kind === "avg_pool" ? check("count_include_pad", "count_include_pad") : null));
    }
    this.form.replaceChildren(...parts);
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

  drawCode() {
    const code = this.page.code;
    const names = Object.keys(code);
    if (!this.codeTab || !names.includes(this.codeTab)) this.codeTab = this.state.framework in code ? this.state.framework : names[0];
    const tabs = el("div", { class: "cx-code-tabs", role: "tablist" }, ...names.map((n) =>
      el("button", { type: "button", role: "tab", class: `cx-tab ${n === this.codeTab ? "cx-on" : ""}`, "data-code": n, text: WORDS[n]?.name ?? n,
        onclick: () => { this.codeTab = n; this.drawCode(); } })));
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
    const vertical = cell < 16;
    if (vertical) cell = Math.floor(avail / Math.max(width(lower), width(upper), width(kernel)));
    cell = Math.max(5, Math.min(cell, 44));
    this.cell = cell;
    const label = p.shapes.kernel.length === 3 ? 36 : 22;
    const blocks = [["lower", lower], ["kernel", kernel], ["upper", upper]];
    let x = 8, y = label, W = 0, H = 0;
    const origin = {};
    for (const [name, g] of blocks) {
      origin[name] = [x, y];
      const w = width(g) * cell, h = height(g) * cell;
      if (vertical) { y += h + label + 10; W = Math.max(W, x + w); H = y; }
      else { x += w + 2 * cell; W = x; H = Math.max(H, y + h + 8); }
    }
    const root = svg("svg", { class: "cx-svg", width: W + 8, height: H + 4, viewBox: `0 0 ${W + 8} ${H + 4}`, role: "img",
      "aria-label": `${p.op}: input ${shapeText(p.shapes.input)}, output ${shapeText(p.shapes.output)}` });
    this.rects = { lower: [], upper: [], kernel: [] };
    this.texts = { lower: [], upper: [], kernel: [] };
    this.origin = origin;
    const titles = { lower: p.transposed && this.state.view === "direct" ? "input, stretched and padded (the equivalent direct convolution)" : "input",
      kernel: p.pooling ? "window" : this.state.flip ? "kernel (flipped)" : "kernel", upper: "output" };
    const numbers = this.state.numeric && cell >= 18;
    const font = Math.round(Math.min(cell * 0.5, 15));
    for (const [name, g] of blocks) {
      const [ox, oy] = origin[name];
      const t = svg("text", { x: ox, y: oy - 7, class: "cx-grid-title" });
      t.textContent = titles[name];
      root.append(t);
      if (g.slices > 1) {  // 3-d: the depth slices side by side, each named
        t.setAttribute("y", oy - 20);
        for (let sl = 0; sl < g.slices; sl++) {
          const label = svg("text", { x: ox + sl * (g.cols + 0.6) * cell, y: oy - 5, class: "cx-slice" });
          label.textContent = `D ${sl}`;
          root.append(label);
        }
      }
      const kinds = name === "kernel" ? null : p.grids[name].kinds;
      const per = g.slices * g.rows * g.cols;
      for (let c = 0; c < g.channels; c++) {
        const rects = [], texts = [];
        for (let i = 0; i < per; i++) {
          const s = Math.floor(i / (g.rows * g.cols)), r = Math.floor((i % (g.rows * g.cols)) / g.cols), col = i % g.cols;
          const cx = ox + (s * (g.cols + 0.6) + col) * cell, cy = oy + (c * (g.rows + 0.6) + r) * cell;
          const kindClass = kinds ? `k-${kinds[i]}` : "k-w";
          const unread = name === "lower" && !(p.transposed && this.state.view === "scatter") && p.grids.lower.reads[i] === 0 && kinds[i] === "i";
          const rect = svg("rect", { x: cx + 0.5, y: cy + 0.5, width: cell - 1, height: cell - 1, rx: Math.min(3, cell / 8),
            class: `cx-cell ${kindClass}${unread ? " cx-unread" : ""}`, "data-grid": name, "data-ch": c, "data-i": i });
          root.append(rect);
          rects.push(rect);
          if (numbers || (name === "upper" && p.transposed && this.state.view === "scatter" && cell >= 18) || (name === "kernel" && cell >= 18)) {
            const text = svg("text", { x: cx + cell / 2, y: cy + cell / 2 + font * 0.36, class: "cx-value", "font-size": font,
              "data-grid": name, "data-ch": c, "data-i": i });
            root.append(text);
            texts[i] = text;
          }
        }
        this.rects[name].push(rects);
        this.texts[name].push(texts);
      }
    }
    root.addEventListener("mouseover", (e) => this.hover(e.target));
    root.addEventListener("mouseleave", () => this.unhover());
    root.addEventListener("click", (e) => this.pin(e.target));
    root.addEventListener("dblclick", (e) => this.edit(e.target));
    root.addEventListener("dragover", (e) => e.preventDefault());
    root.addEventListener("drop", (e) => { e.preventDefault(); if (e.dataTransfer.files[0]) this.loadImage(e.dataTransfer.files[0]); });
    this.svg = root;
    this.stage.replaceChildren(root, this.legend());
    this.paintStatic();
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

  paintStatic() {
    // values that do not change from frame to frame: the input, the kernel, the overlap counts
    const p = this.page, v = p.values;
    if (v) {
      const lowerCount = p.grids.lower.kinds.length;
      this.rects.lower.forEach((rects, c) => rects.forEach((rect, i) => this.setValue("lower", c, i, v.lower[c * lowerCount + i])));
    }
    if (p.transposed && this.state.view === "scatter" && !v) {
      this.rects.upper.forEach((rects, c) => rects.forEach((_, i) => { const t = this.texts.upper[c][i]; if (t) t.textContent = String(p.grids.upper.reads[i]); }));
      const most = Math.max(...p.grids.upper.reads);
      this.rects.upper.forEach((rects) => rects.forEach((rect, i) => rect.style.setProperty("--heat", String(p.grids.upper.reads[i] / (most || 1)))));
      this.svg.classList.add("cx-overlap");
    }
    this.paintKernel(0);
  }

  setValue(name, c, i, value) {
    const t = this.texts[name][c]?.[i];
    if (t) t.textContent = fmt(value);
    const rect = this.rects[name][c][i];
    if (typeof value === "number") rect.style.setProperty("--heat", String(Math.max(0, Math.min(1, value / (this.scale(name) || 1)))));
    else rect.style.removeProperty("--heat");
    rect.classList.toggle("cx-valued", typeof value === "number");
  }

  scale(name) {
    return this.scales[name];
  }

  paintKernel(c) {
    // the kernels of the current frame's window channels, one panel each
    const p = this.page;
    if (!p.values || !p.weight_base) return;
    this.texts.kernel.forEach((texts, j) => texts.forEach((t, i) => {
      if (t) t.textContent = fmt(p.values.weight[p.weight_base[c][j] + i]);
    }));
  }

  // -- frames -----------------------------------------------------------------------------------

  clear() {
    for (const rect of this.lit ?? []) rect.classList.remove("cx-hl", "cx-now", "cx-reach", "cx-tap");
    this.lit = [];
  }

  light(rect, cls) {
    if (!rect) return;
    rect.classList.add(cls);
    this.lit.push(rect);
  }

  lightTaps(taps) {
    for (const rects of this.rects.kernel) for (const tap of taps) this.light(rects[tap], "cx-tap");
  }

  show(f, preview = false) {
    const p = this.page;
    if (!p) return;
    f = Math.max(0, Math.min(this.count() - 1, f));
    if (!preview) { this.frame = f; this.scrub.value = String(f); }
    this.clear();
    const fr = p.frames, per = fr.per_channel;
    const c = Math.floor(f / per), pos = f % per;
    const [start, stop] = fr.channels[c];
    const windowGrid = fr.on, single = windowGrid === "lower" ? "upper" : "lower";
    for (let ch = start; ch < stop; ch++) for (const k of fr.cells[pos]) this.light(this.rects[windowGrid][ch][k], "cx-hl");
    this.light(this.rects[single][c][pos], "cx-now");
    this.lightTaps(fr.kernel);
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
    const shape = this.page.grids[grid].shape;
    const idx = [];
    for (let a = shape.length - 1; a >= 0; a--) { idx.unshift(i % shape[a]); i = Math.floor(i / shape[a]); }
    return `(${idx.join(", ")})`;
  }

  paintProgress(f) {
    const p = this.page, v = p.values;
    if (!v) return;
    const per = p.frames.per_channel;
    if (p.frames.on === "lower") {
      const n = p.grids.upper.kinds.length;
      this.rects.upper.forEach((rects, c) => rects.forEach((_, i) => this.setValue("upper", c, i, c * per + i <= f ? v.upper[c * n + i] : null)));
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
    this.playing = false;
    this.playButton.replaceChildren(icon("play"));
    this.playButton.setAttribute("aria-label", "play");
  }

  // -- linked views -------------------------------------------------------------------------------

  target(node) {
    if (!node?.dataset?.grid) return null;
    return { grid: node.dataset.grid, ch: Number(node.dataset.ch), i: Number(node.dataset.i) };
  }

  hover(node) {
    if (this.pinned || this.playing) return;
    const t = this.target(node);
    if (t) this.focus(t);
  }

  unhover() {
    if (this.pinned || this.playing || !this.page) return;
    this.show(this.frame);
  }

  pin(node) {
    const t = this.target(node);
    if (!t) return;
    this.stop();
    const same = this.pinned && this.pinned.grid === t.grid && this.pinned.ch === t.ch && this.pinned.i === t.i;
    this.pinned = null;
    if (same) { this.show(this.frame); return; }
    this.focus(t);
    this.pinned = t;
    this.root.dataset.pinned = `${t.grid}:${t.ch}:${t.i}`;
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
        for (let ch = start; ch < stop; ch++) fr.cells.forEach((cells) => this.light(this.rects[windowGrid][ch][cells[j]], "cx-hl"));
      });
      this.lightTaps([t.i]);
      this.highlightMatrix({ tap: t.i });
      this.status.textContent = `kernel tap ${this.cellName("kernel", t.i)}: every cell it multiplies`;
      return;
    }
    // a cell of the window grid: every frame that touches it (its column of C, or its row in the scatter view)
    this.light(this.rects[windowGrid][t.ch][t.i], "cx-hl");
    const reached = [];
    fr.channels.forEach(([start, stop], c) => {
      if (t.ch < start || t.ch >= stop) return;
      for (const [pos, tap] of this.hits[t.i]) {
        this.light(this.rects[single][c][pos], "cx-reach");
        this.lightTaps([fr.kernel[tap]]);
        reached.push(c * per + pos);
      }
    });
    const source = p.grids[windowGrid].source[t.i];
    const index = source < 0 ? null : t.ch * p.grids[windowGrid].sizes.reduce((a, b) => a * b, 1) + source;
    this.highlightMatrix(windowGrid === "lower" ? { col: index, rows: reached } : { row: index, cols: reached });
    const kindName = p.kinds[p.grids[windowGrid].kinds[t.i]];
    this.status.textContent = `${kindName} cell ${this.cellName(windowGrid, t.i)}: read by ${reached.length} ${windowGrid === "lower" ? "output" : "input"} cell${reached.length === 1 ? "" : "s"}`;
    this.root.dataset.reached = reached.join(",");
  }

  // -- the matrix -------------------------------------------------------------------------------

  drawMatrix() {
    const m = this.page.matrix;
    const name = this.page.transposed ? "Cᵀ (the transposed convolution's matrix)" : this.page.pooling ? "The pooling windows as a matrix" : "C";
    this.matrixTitle.textContent = `${name}: ${m.rows} × ${m.cols}`;
    const canvas = this.matrixCanvas, overlay = this.matrixOverlay;
    if (!m.row || m.rows * m.cols > 4_200_000) {
      canvas.width = overlay.width = 1; canvas.height = overlay.height = 1;
      this.matrixNote.textContent = `${m.entries.toLocaleString()} nonzeros; too large to draw here (convarith matrix writes it).`;
      return;
    }
    canvas.width = overlay.width = m.cols;
    canvas.height = overlay.height = m.rows;
    const box = Math.min(560, Math.max(220, this.stage.clientWidth * 0.45 || 400));
    const scale = Math.max(1, Math.floor(box / Math.max(m.rows, m.cols)));
    const cssW = Math.min(box, m.cols * scale), cssH = cssW * (m.rows / m.cols);
    for (const c of [canvas, overlay]) { c.style.width = `${cssW}px`; c.style.height = `${cssH}px`; }
    const ctx = canvas.getContext("2d");
    const image = ctx.createImageData(m.cols, m.rows);
    const data = image.data;
    for (let i = 0; i < data.length; i += 4) { data[i] = data[i + 1] = data[i + 2] = 250; data[i + 3] = 255; }
    const taps = this.page.frames.kernel.length;
    for (let e = 0; e < m.row.length; e++) {
      const o = (m.row[e] * m.cols + m.col[e]) * 4;
      const hue = (m.tap[e] / taps) * 300;
      const [r, g, b] = hsl(hue, 0.55, 0.45);
      data[o] = r; data[o + 1] = g; data[o + 2] = b;
    }
    ctx.putImageData(image, 0, 0);
    this.matrixNote.textContent = `rows: the ${m.rows} output cells; columns: the ${m.cols} input cells; ${m.entries.toLocaleString()} nonzeros, coloured by kernel tap. Hover to link.`;
  }

  highlightMatrix(what) {
    const m = this.page.matrix, o = this.matrixOverlay;
    if (!m.row || o.width !== m.cols) return;
    const ctx = o.getContext("2d");
    ctx.clearRect(0, 0, o.width, o.height);
    ctx.fillStyle = "rgba(37, 99, 235, 0.22)";
    if (what.row !== undefined && what.row !== null) ctx.fillRect(0, what.row, m.cols, 1);
    if (what.col !== undefined && what.col !== null) ctx.fillRect(what.col, 0, 1, m.rows);
    ctx.fillStyle = "rgba(220, 38, 38, 0.9)";
    for (let e = 0; e < m.row.length; e++) {
      const hit = (what.row !== undefined && m.row[e] === what.row) || (what.col !== undefined && m.col[e] === what.col) || (what.tap !== undefined && m.tap[e] === what.tap);
      if (hit) ctx.fillRect(m.col[e], m.row[e], 1, 1);
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

  edit(node) {
    const t = this.target(node);
    const p = this.page;
    if (!t || !p.values || t.grid !== "lower") return;
    const source = p.grids.lower.source[t.i];
    if (source < 0) return;
    const spatial = p.grids.lower.sizes.reduce((a, b) => a * b, 1);
    const index = t.ch * spatial + source;
    const input = el("input", { type: "number", class: "cx-edit", value: p.values.input[index], step: "any", "aria-label": "value" });
    const box = this.svg.getBoundingClientRect(), r = node.getBoundingClientRect();
    input.style.left = `${r.left - box.left}px`;
    input.style.top = `${r.top - box.top}px`;
    this.stage.style.position = "relative";
    this.stage.append(input);
    input.focus();
    const done = (commit) => {
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

function hsl(h, s, l) {
  const k = (n) => (n + h / 30) % 12, a = s * Math.min(l, 1 - l);
  const f = (n) => l - a * Math.max(-1, Math.min(k(n) - 3, Math.min(9 - k(n), 1)));
  return [Math.round(255 * f(0)), Math.round(255 * f(8)), Math.round(255 * f(4))];
}
