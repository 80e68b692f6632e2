// The playground page (TensorFlow Playground's layout for the §4.3 classifier): data and network settings,
// the decision boundary as a heat map under the points, loss curves and the test-set figures. All GPU work
// is in playground_worker.ts; this thread only draws what its frames carry, so it stays responsive.
import uPlot from "uplot";
import "uplot/dist/uPlot.min.css";
import type { AdapterReport } from "../src/index.ts";
import { TOY_DATASETS, toyDataset, type ToyName } from "../src/entry/data.ts";
import { EXTENT, FEATURES, GRID, POINTS, parameterCount, type FromWorker, type HiddenActivation, type Live, type Setup, type ToWorker } from "./playground_protocol.ts";
import "./header.css";
import "./playground.css";

const $ = <T extends HTMLElement = HTMLElement>(id: string) => document.getElementById(id) as T;
const ui = {
  play: $<HTMLButtonElement>("play"),
  step: $<HTMLButtonElement>("step"),
  reset: $<HTMLButtonElement>("reset"),
  regenerate: $<HTMLButtonElement>("regenerate"),
  ratio: $<HTMLInputElement>("ratio"),
  noise: $<HTMLInputElement>("noise"),
  batch: $<HTMLInputElement>("batch"),
  layers: $<HTMLSelectElement>("layers"),
  units: $<HTMLSelectElement>("units"),
  activation: $<HTMLSelectElement>("activation"),
  lr: $<HTMLSelectElement>("lr"),
  l2: $<HTMLSelectElement>("l2"),
  showTest: $<HTMLInputElement>("show-test"),
  discretize: $<HTMLInputElement>("discretize"),
  heat: $<HTMLCanvasElement>("heat"),
  points: $<HTMLCanvasElement>("points"),
};

/** TensorFlow Playground's colours: class 0 orange, class 1 blue, undecided near white. */
const CLASS_RGB: [number, number, number][] = [
  [245, 147, 34],
  [8, 119, 189],
];
const MID_RGB = [232, 234, 235];
const CLASS_CSS = CLASS_RGB.map(([r, g, b]) => `rgb(${r}, ${g}, ${b})`);
/** How far the heat map goes towards a class colour at full confidence (the points stay distinct on it). */
const HEAT_STRENGTH = 0.7;
/** Loss-chart points kept; beyond this every other one is dropped. */
const CHART_POINTS = 1200;

let worker: Worker | undefined;
let ready = false;
let running = false;
let dataset: ToyName = "circles";
let dataSeed = 1;
let weightSeed = 1;
const featureOn = FEATURES.map(() => true);
let data: Extract<FromWorker, { type: "data" }> | undefined;
let lastGrid: Float32Array | undefined;

const send = (m: ToWorker) => worker?.postMessage(m);

function setup(): Setup {
  return {
    dataset,
    noise: Number(ui.noise.value),
    trainRatio: Number(ui.ratio.value) / 100,
    dataSeed,
    weightSeed,
    features: [...featureOn],
    hiddenLayers: Number(ui.layers.value),
    hiddenUnits: Number(ui.units.value),
    activation: ui.activation.value as HiddenActivation,
    l2: Number(ui.l2.value),
  };
}

const live = (): Live => ({ learningRate: Number(ui.lr.value), batchSize: Number(ui.batch.value) });

// ---- Settings ----------------------------------------------------------------------------------------------

/** Small previews of the four datasets on their buttons. */
function datasetButtons(): void {
  const box = $("datasets");
  for (const name of TOY_DATASETS) {
    const b = document.createElement("button");
    b.type = "button";
    b.role = "radio";
    b.dataset.testid = `dataset-${name}`;
    b.dataset.name = name;
    b.setAttribute("aria-checked", String(name === dataset));
    const c = document.createElement("canvas");
    c.width = c.height = 96;
    const { points, labels } = toyDataset(name, { n: 240, noise: 0.08, seed: 3 });
    const ctx = c.getContext("2d")!;
    ctx.fillStyle = "#fff";
    ctx.fillRect(0, 0, 96, 96);
    for (let i = 0; i < labels.length; i++) {
      const [x, y] = toPixel(points[2 * i]!, points[2 * i + 1]!, 96, 96);
      ctx.fillStyle = CLASS_CSS[labels[i]!]!;
      ctx.fillRect(x - 1.5, y - 1.5, 3, 3);
    }
    b.append(c, document.createElement("span"));
    b.lastElementChild!.textContent = name === "xor" ? "XOR" : name === "moons" ? "two moons" : name;
    b.onclick = () => {
      if (dataset === name) return;
      dataset = name;
      for (const o of Array.from(box.children)) o.setAttribute("aria-checked", String((o as HTMLElement).dataset.name === name));
      changed();
    };
    box.appendChild(b);
  }
}

function featureBoxes(): void {
  const box = $("features");
  FEATURES.forEach((f, k) => {
    const label = document.createElement("label");
    const input = Object.assign(document.createElement("input"), { type: "checkbox", checked: featureOn[k] });
    input.dataset.testid = `feature-${k}`;
    input.onchange = () => {
      // The network needs an input: the last feature on stays on.
      if (!input.checked && featureOn.filter(Boolean).length === 1) {
        input.checked = true;
        return;
      }
      featureOn[k] = input.checked;
      changed();
    };
    label.append(input, ` ${f}`);
    box.appendChild(label);
  });
}

/** A setting that needs a fresh network changed: the worker rebuilds (and keeps training if it was). */
function changed(): void {
  showValues();
  send({ type: "setup", setup: setup() });
}

function showValues(): void {
  $("ratio-value").textContent = `${ui.ratio.value}%`;
  $("noise-value").textContent = Number(ui.noise.value).toFixed(2);
  $("batch-value").textContent = ui.batch.value;
  const s = setup();
  const f = s.features.filter(Boolean).length;
  const act = ui.activation.selectedOptions[0]?.textContent ?? s.activation;
  const hidden = Array.from({ length: s.hiddenLayers }, () => `Dense(${s.hiddenUnits}, ${act})`).join(" → ");
  const nTrain = Math.round(POINTS * s.trainRatio);
  $("model-text").textContent = `${f} feature${f > 1 ? "s" : ""} → ${hidden} → Dense(1, sigmoid) · log loss · Adam${s.l2 ? ` · L2 ${s.l2}` : ""} · ${parameterCount(s)} parameters`;
  $("data-text").textContent = `${POINTS} points: ${nTrain} to train on, ${POINTS - nTrain} to test on.`;
}

for (const el of [ui.ratio, ui.noise]) el.oninput = changed;
for (const el of [ui.layers, ui.units, ui.activation, ui.l2]) el.onchange = changed;
ui.batch.oninput = ui.lr.onchange = () => {
  showValues();
  send({ type: "live", live: live() });
};
ui.regenerate.onclick = () => {
  dataSeed++;
  changed();
};
ui.reset.onclick = () => {
  weightSeed++;
  send({ type: "pause" });
  changed();
};
ui.play.onclick = () => send({ type: running ? "pause" : "play" });
ui.step.onclick = () => send({ type: "step" });
ui.showTest.onchange = () => drawPoints();
ui.discretize.onchange = () => lastGrid && drawHeat(lastGrid);

function updateButtons(): void {
  ui.play.disabled = ui.reset.disabled = ui.regenerate.disabled = !ready;
  ui.step.disabled = !ready || running;
  ui.play.textContent = running ? "Pause" : "Play";
  ui.play.setAttribute("aria-pressed", String(running));
}

// ---- The plane: heat map (GRID × GRID canvas pixels, scaled by CSS) and points (an overlay at screen resolution)

/** Plane coordinates to pixels of a w × h canvas spanning [−EXTENT, EXTENT]², y upwards. */
function toPixel(x: number, y: number, w: number, h: number): [number, number] {
  return [((x + EXTENT) / (2 * EXTENT)) * w, ((EXTENT - y) / (2 * EXTENT)) * h];
}

function drawHeat(grid: Float32Array): void {
  const ctx = ui.heat.getContext("2d")!;
  const img = ctx.createImageData(GRID, GRID);
  const discrete = ui.discretize.checked;
  for (let i = 0; i < GRID * GRID; i++) {
    const t = 2 * grid[i]! - 1; // −1: class 0 for sure, +1: class 1
    const c = CLASS_RGB[t >= 0 ? 1 : 0]!;
    const a = HEAT_STRENGTH * (discrete ? 1 : Math.min(1, Math.abs(t)));
    for (let k = 0; k < 3; k++) img.data[4 * i + k] = Math.round(MID_RGB[k]! + a * (c[k]! - MID_RGB[k]!));
    img.data[4 * i + 3] = 255;
  }
  ctx.putImageData(img, 0, 0);
}

function drawPoints(): void {
  const c = ui.points;
  const dpr = window.devicePixelRatio || 1;
  const w = Math.round(c.clientWidth * dpr);
  const h = Math.round(c.clientHeight * dpr);
  if (c.width !== w || c.height !== h) [c.width, c.height] = [w, h];
  const ctx = c.getContext("2d")!;
  ctx.clearRect(0, 0, w, h);
  if (!data) return;
  const r = Math.max(2.5, Math.min(4, c.clientWidth / 90)) * dpr;
  const sets = [{ p: data.trainPoints, y: data.trainLabels, stroke: "#fff" }];
  if (ui.showTest.checked) sets.push({ p: data.testPoints, y: data.testLabels, stroke: "#111" });
  ctx.lineWidth = dpr;
  for (const { p, y, stroke } of sets) {
    ctx.strokeStyle = stroke;
    for (let i = 0; i < y.length; i++) {
      ctx.beginPath();
      ctx.arc(...toPixel(p[2 * i]!, p[2 * i + 1]!, w, h), r, 0, 2 * Math.PI);
      ctx.fillStyle = CLASS_CSS[y[i]!]!;
      ctx.fill();
      ctx.stroke();
    }
  }
}
new ResizeObserver(drawPoints).observe(ui.points);

// ---- Loss chart ---------------------------------------------------------------------------------------------

const curve = { step: [] as number[], train: [] as number[], test: [] as number[] };
const chartEl = $("loss-chart");
const chart = new uPlot(
  {
    width: Math.max(160, chartEl.clientWidth),
    height: 170,
    scales: { x: { time: false }, y: { range: (_u, _min, max) => [0, Math.max(0.1, max * 1.05)] } },
    axes: [{ label: "step", size: 36, labelSize: 14 }, { size: 44 }],
    legend: { live: false },
    cursor: { drag: { x: false, y: false } },
    series: [{ label: "step" }, { label: "training loss", stroke: "#9ca3af", width: 2, points: { show: false } }, { label: "test loss", stroke: "#111827", width: 2, points: { show: false } }],
  },
  [[], [], []],
  chartEl,
);
new ResizeObserver(() => chart.setSize({ width: Math.max(160, chartEl.clientWidth), height: 170 })).observe(chartEl);
let chartFrame = 0;

function plot(step: number, train: number, test: number): void {
  if (curve.step.length && step <= curve.step.at(-1)!) for (const s of Object.values(curve)) s.length = 0;
  curve.step.push(step);
  curve.train.push(train);
  curve.test.push(test);
  if (curve.step.length > CHART_POINTS) for (const [k, s] of Object.entries(curve)) curve[k as keyof typeof curve] = s.filter((_, i) => i % 2 === 0 || i === s.length - 1);
  if (!chartFrame)
    chartFrame = requestAnimationFrame(() => {
      chartFrame = 0;
      chart.setData([curve.step, curve.train, curve.test]);
    });
}

// ---- Worker messages ----------------------------------------------------------------------------------------

const pct = (v: number) => `${(100 * v).toFixed(1)}%`;
const show = (id: string, text: string, value?: number) => {
  const el = $(id);
  el.textContent = text;
  if (value !== undefined) el.dataset.value = String(value);
};

function onFrame(m: Extract<FromWorker, { type: "frame" }>): void {
  lastGrid = m.grid;
  drawHeat(m.grid);
  ui.heat.dataset.step = String(m.step);
  plot(m.step, m.trainLoss, m.testLoss);
  show("step-count", m.step.toLocaleString("en-US"), m.step);
  show("epoch", m.epoch.toFixed(1), m.epoch);
  if (m.stepsPerSecond !== undefined) show("rate", m.stepsPerSecond.toFixed(0), m.stepsPerSecond);
  show("train-loss", m.trainLoss.toFixed(3), m.trainLoss);
  show("test-loss", m.testLoss.toFixed(3), m.testLoss);
  const t = m.test;
  show("accuracy", pct(t.accuracy), t.accuracy);
  show("precision", t.precision.toFixed(3), t.precision);
  show("recall", t.recall.toFixed(3), t.recall);
  show("f1", t.f1.toFixed(3), t.f1);
  for (const k of ["tp", "fp", "fn", "tn"] as const) show(k, String(t.confusion[k]), t.confusion[k]);
  show("train-accuracy", `Accuracy on the ${data?.trainLabels.length ?? 0} training points: ${pct(m.trainAccuracy)}.`, m.trainAccuracy);
  if (!ready) {
    ready = true;
    setState();
  }
}

function setState(): void {
  updateButtons();
  $("state").textContent = !ready ? "Starting…" : running ? "Training…" : "Paused: press Play to train, or Step for one step.";
  document.body.dataset.running = String(running);
}

function onMessage(m: FromWorker): void {
  switch (m.type) {
    case "adapter":
      showAdapter(m.report, m.description);
      break;
    case "fatal":
      showProblem("WebGPU is not available here", m.message);
      break;
    case "error":
      $("error").hidden = false;
      $("error").textContent = `Error: ${m.message}`;
      break;
    case "data":
      $("error").hidden = true;
      data = m;
      drawPoints();
      show("test-size", `(${m.testLabels.length} points)`, m.testLabels.length);
      break;
    case "running":
      running = m.running;
      setState();
      break;
    case "frame":
      onFrame(m);
      break;
  }
}

// ---- Adapter and missing WebGPU ---------------------------------------------------------------------------

function showAdapter(r: AdapterReport, description: string): void {
  const name = r.description || r.device || r.architecture || "unnamed adapter";
  $("adapter").className = `adapter ${r.isCpu ? "cpu" : "ok"}`;
  const t = $("adapter-text");
  t.replaceChildren("WebGPU adapter: ", Object.assign(document.createElement("b"), { textContent: name }), ` · ${r.isCpu ? "CPU fallback (software rendering)" : "hardware GPU"}`);
  t.title = description;
}

function showProblem(title: string, reason: string): void {
  $("problem").hidden = false;
  $("problem-title").textContent = title;
  $("problem-reason").textContent = reason;
  const help = [
    "Use a browser with WebGPU (Chrome or Edge 113+, Safari 26+, Firefox 141+ on Windows); on Linux, Chrome needs chrome://flags/#enable-unsafe-webgpu.",
    "Open the page over https:// or from http://localhost: WebGPU exists only in secure contexts.",
  ];
  const list = document.createElement("ul");
  for (const h of help) list.appendChild(document.createElement("li")).textContent = h;
  $("problem-help").replaceChildren(list);
  $("adapter").className = "adapter bad";
  $("adapter-text").textContent = title;
  worker?.terminate();
  worker = undefined;
  ready = running = false;
  setState();
  $("state").textContent = "Training is unavailable on this page (see above).";
}

// ---- Start-up ---------------------------------------------------------------------------------------------

datasetButtons();
featureBoxes();
showValues();
setState();
if (!("gpu" in navigator)) {
  showProblem(
    "WebGPU is not available here",
    window.isSecureContext ? "This browser has no WebGPU (navigator.gpu is missing)." : `This page was opened from ${location.origin}, which is not a secure context; browsers offer WebGPU only to secure contexts.`,
  );
} else {
  worker = new Worker(new URL("./playground_worker.ts", import.meta.url), { type: "module" });
  worker.onmessage = (ev: MessageEvent<FromWorker>) => onMessage(ev.data);
  worker.onerror = (ev) => showProblem("The training worker stopped", ev.message || "The worker script could not be loaded, or it threw.");
  send({ type: "init", setup: setup(), live: live() });
}
