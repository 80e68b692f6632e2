// The demo page: controls, live numbers and charts, the drawing pad and the figures; all GPU work happens
// in the training worker (worker.ts), so the page stays responsive while it trains.
import type { AdapterReport } from "../src/index.ts";
import { Curves } from "./charts.ts";
import { classScores, confusionMatrix } from "./metrics.ts";
import { SIDE, toMnist } from "./preprocess.ts";
import { VALIDATION, type FromWorker, type KernelTime, type Settings, type State, type ToWorker } from "./protocol.ts";
import "./style.css";

const $ = <T extends HTMLElement = HTMLElement>(id: string) => document.getElementById(id) as T;
const ui = {
  start: $<HTMLButtonElement>("start"),
  pause: $<HTMLButtonElement>("pause"),
  reset: $<HTMLButtonElement>("reset"),
  lr: $<HTMLInputElement>("lr"),
  batch: $<HTMLSelectElement>("batch"),
  epochs: $<HTMLInputElement>("epochs"),
  optimizer: $<HTMLSelectElement>("optimizer"),
  trainSize: $<HTMLSelectElement>("train-size"),
  evaluate: $<HTMLButtonElement>("evaluate"),
  profile: $<HTMLButtonElement>("profile"),
};

let worker: Worker | undefined;
let state: State = "loading";
let step = 0;
const lossChart = new Curves($("loss-chart"), "loss", false);
const accuracyChart = new Curves($("accuracy-chart"), "accuracy", true);

const send = (m: ToWorker, transfer: Transferable[] = []) => worker?.postMessage(m, transfer);
const pct = (v: number) => `${(v * 100).toFixed(1)}%`;

function settings(): Settings {
  const lr = Number(ui.lr.value);
  return {
    learningRate: lr > 0 && lr < 10 ? lr : 1e-3,
    batchSize: Number(ui.batch.value),
    epochs: Math.max(1, Math.min(50, Math.round(Number(ui.epochs.value)) || 1)),
    optimizer: ui.optimizer.value === "sgd" ? "sgd" : "adam",
    trainSize: Number(ui.trainSize.value),
  };
}

// ---- Missing WebGPU: say why and what to do, never a blank page -------------------------------------

function showProblem(title: string, reason: string, help: string[]): void {
  $("problem").hidden = false;
  $("problem-title").textContent = title;
  $("problem-reason").textContent = reason;
  const list = document.createElement("ul");
  for (const h of help) list.appendChild(document.createElement("li")).innerHTML = h;
  $("problem-help").replaceChildren(list);
  $("adapter").className = "adapter bad";
  $("adapter-text").textContent = title;
  for (const b of [ui.start, ui.pause, ui.reset, ui.evaluate, ui.profile]) b.disabled = true;
  setStateText("Training is unavailable on this page (see above).");
}

const WEBGPU_HELP = [
  "Use a browser with WebGPU: Chrome or Edge 113+ on Windows, macOS and ChromeOS (121+ on Android), Safari 26+, Firefox 141+ on Windows; on Linux, Chrome needs <code>chrome://flags/#enable-unsafe-webgpu</code>.",
  "Open the page over <code>https://</code> or from <code>http://localhost</code>: WebGPU exists only in secure contexts.",
  "Update the graphics driver; a browser may hide WebGPU on a blocklisted GPU (see <code>chrome://gpu</code>).",
  "Headless Chromium without a GPU: start it with <code>--enable-unsafe-webgpu --enable-features=Vulkan --use-vulkan=swiftshader --use-webgpu-adapter=swiftshader --enable-unsafe-swiftshader</code>.",
];

// ---- Worker messages ----------------------------------------------------------------------------------

function onMessage(m: FromWorker): void {
  switch (m.type) {
    case "adapter":
      showAdapter(m.report, m.description);
      $("kernel-caption").textContent = m.timestamps
        ? "One training step's kernels (forward, loss, backward), each timed on the GPU with timestamp queries."
        : "Per-kernel GPU time needs the timestamp-query feature.";
      if (!m.timestamps) showKernels({ unavailable: "not available: this adapter does not offer the timestamp-query feature" });
      break;
    case "data":
      $("eval-caption").textContent = `On the ${m.validation.toLocaleString("en-US")} validation images (the first test images), after each epoch or when you press Evaluate.`;
      break;
    case "fatal":
      if (m.stage === "webgpu") showProblem("WebGPU is not available here", m.message, WEBGPU_HELP);
      else showProblem(m.stage === "data" ? "The MNIST files could not be loaded" : "The model could not be built", m.message, ["Reload the page; if it persists, run <code>npm install</code> and <code>npm run demo</code> again."]);
      break;
    case "error":
      showError(m.message);
      break;
    case "state":
      setState(m.state, m.step, m.note);
      break;
    case "progress":
      showProgress(m);
      break;
    case "epoch":
      $("loss").textContent = m.loss.toFixed(3);
      $("accuracy").textContent = pct(m.accuracy);
      if (m.valAccuracy !== undefined) $("val-accuracy").textContent = pct(m.valAccuracy);
      lossChart.add(m.step, m.loss, m.valLoss ?? null);
      accuracyChart.add(m.step, m.accuracy, m.valAccuracy ?? null);
      break;
    case "samples":
      showSamples(m.images, m.labels, m.predicted, m.confidence);
      break;
    case "filters":
      showFilters(m.kernel, m.shape);
      send({ type: "featureMaps", index: selectedSample });
      break;
    case "featureMaps":
      showFeatureMaps(m.image, m.label, m.maps, m.shape);
      break;
    case "evaluation":
      showEvaluation(m.labels, m.predicted, m.step);
      break;
    case "prediction":
      showPrediction(m.probs);
      break;
    case "kernels":
      showKernels(m);
      break;
  }
}

function showAdapter(r: AdapterReport, description: string): void {
  const name = r.description || r.device || r.architecture || "unnamed adapter";
  const kind = r.isCpu ? "CPU fallback (software rendering): expect tens of samples per second" : "hardware GPU";
  $("adapter").className = `adapter ${r.isCpu ? "cpu" : "ok"}`;
  $("adapter-text").innerHTML = "";
  const t = $("adapter-text");
  t.append("WebGPU adapter: ");
  t.appendChild(document.createElement("b")).textContent = name;
  t.append(` · vendor ${r.vendor || "unknown"}${r.architecture && r.architecture !== name ? ` · ${r.architecture}` : ""} · ${kind}`);
  t.title = description;
}

function setStateText(text: string): void {
  $("state").textContent = text;
}

function setState(s: State, atStep: number, note?: string): void {
  state = s;
  step = atStep;
  $("step").textContent = String(step);
  const texts: Record<State, string> = {
    loading: "Loading…",
    idle: step === 0 ? "Ready: press Start." : "Ready.",
    training: "Training…",
    paused: "Paused.",
    done: "Done: press Train more to continue, or Reset.",
  };
  setStateText(s === "loading" && note ? note : note ? `${texts[s]} (${note})` : texts[s]);
  ui.start.disabled = !(s === "idle" || s === "done");
  ui.start.textContent = step > 0 && s !== "training" && s !== "paused" ? "Train more" : "Start";
  ui.pause.disabled = !(s === "training" || s === "paused");
  ui.pause.textContent = s === "paused" ? "Resume" : "Pause";
  ui.reset.disabled = s === "loading";
  ui.evaluate.disabled = s === "loading";
  ui.profile.disabled = s === "loading";
  const running = s === "training" || s === "paused";
  for (const el of [ui.batch, ui.epochs, ui.trainSize]) el.disabled = running;
  ui.optimizer.disabled = running || step > 0;
  $("hint").textContent = step > 0 && !running ? "The optimizer is fixed once training has begun: Reset to change it. The learning rate may change at any time." : "";
  if (s === "idle" && step === 0) {
    $("loss").textContent = "–";
    $("accuracy").textContent = "–";
    $("val-accuracy").textContent = "–";
    $("rate").textContent = "–";
    $("progress-fill").style.width = "0";
    $("progress-text").textContent = "Not started";
    lossChart.clear();
    accuracyChart.clear();
  }
}

function showProgress(m: Extract<FromWorker, { type: "progress" }>): void {
  step = m.step;
  $("step").textContent = String(m.step);
  $("rate").textContent = m.samplesPerSecond >= 100 ? m.samplesPerSecond.toFixed(0) : m.samplesPerSecond.toFixed(1);
  const done = (m.epoch * m.batchesPerEpoch + m.batch) / (m.epochs * m.batchesPerEpoch);
  $("progress-fill").style.width = `${(done * 100).toFixed(1)}%`;
  $("progress-text").textContent = `Epoch ${m.epoch + 1} of ${m.epochs} · batch ${m.batch} of ${m.batchesPerEpoch}`;
  if (m.loss !== undefined && m.accuracy !== undefined) {
    $("loss").textContent = m.loss.toFixed(3);
    $("accuracy").textContent = pct(m.accuracy);
    lossChart.add(m.step, m.loss);
    accuracyChart.add(m.step, m.accuracy);
  }
}

function showError(message: string): void {
  let box = document.querySelector<HTMLElement>(".errors");
  if (!box) {
    box = document.body.appendChild(document.createElement("div"));
    box.className = "errors";
    box.dataset.testid = "errors";
    box.title = "click to dismiss";
    box.onclick = () => box!.remove();
  }
  box.textContent = `${box.textContent ? `${box.textContent}\n` : ""}${message}`;
}

// ---- Figures -------------------------------------------------------------------------------------------

/** Paints 8-bit grey pixels into a canvas of the same size. */
function paintGray(canvas: HTMLCanvasElement, pixels: ArrayLike<number>, w: number, h: number): void {
  canvas.width = w;
  canvas.height = h;
  const ctx = canvas.getContext("2d")!;
  const img = ctx.createImageData(w, h);
  for (let i = 0; i < w * h; i++) {
    const v = pixels[i]!;
    img.data.set([v, v, v, 255], i * 4);
  }
  ctx.putImageData(img, 0, 0);
}

let selectedSample = VALIDATION;

function showSamples(images: Uint8Array, labels: number[], predicted: number[], confidence: number[]): void {
  const grid = $("grid");
  grid.replaceChildren();
  labels.forEach((label, i) => {
    const cell = grid.appendChild(document.createElement("div"));
    const index = VALIDATION + i;
    const wrong = predicted[i] !== label;
    cell.className = `sample${wrong ? " wrong" : ""}${index === selectedSample ? " selected" : ""}`;
    cell.dataset.testid = "sample";
    cell.dataset.correct = String(!wrong);
    cell.title = `test image ${index}: true ${label}, predicted ${predicted[i]} (${pct(confidence[i]!)})`;
    const canvas = cell.appendChild(document.createElement("canvas"));
    paintGray(canvas, images.subarray(i * SIDE * SIDE, (i + 1) * SIDE * SIDE), SIDE, SIDE);
    cell.appendChild(document.createElement("span")).textContent = `→ ${predicted[i]}`;
    if (wrong) cell.appendChild(document.createElement("span")).className = "truth";
    if (wrong) (cell.lastChild as HTMLElement).textContent = `was ${label}`;
    cell.onclick = () => {
      selectedSample = index;
      for (const c of Array.from(grid.children)) c.classList.toggle("selected", c === cell);
      send({ type: "featureMaps", index });
    };
  });
}

/** Diverging colour: blue for negative, white for 0, red for positive; t in [-1, 1]. */
function diverging(t: number): [number, number, number] {
  const a = Math.min(1, Math.abs(t));
  return t < 0 ? [255 - 218 * a, 255 - 156 * a, 255 - 20 * a] : [255 - 35 * a, 255 - 217 * a, 255 - 217 * a];
}

function showFilters(kernel: Float32Array, shape: number[]): void {
  const [kh, kw, , f] = shape as [number, number, number, number];
  const max = kernel.reduce((m, v) => Math.max(m, Math.abs(v)), 1e-8);
  const box = $("filters");
  box.replaceChildren();
  for (let k = 0; k < f; k++) {
    const canvas = box.appendChild(document.createElement("canvas"));
    canvas.width = kw;
    canvas.height = kh;
    const ctx = canvas.getContext("2d")!;
    const img = ctx.createImageData(kw, kh);
    for (let i = 0; i < kh * kw; i++) img.data.set([...diverging(kernel[i * f + k]! / max), 255], i * 4); // (KH, KW, 1, F)
    ctx.putImageData(img, 0, 0);
    canvas.title = `filter ${k}`;
  }
}

function showFeatureMaps(image: Uint8Array, label: number, maps: Float32Array, shape: number[]): void {
  paintGray($<HTMLCanvasElement>("chosen"), image, SIDE, SIDE);
  $("chosen-label").textContent = `digit ${label}`;
  const [, h, w, f] = shape as [number, number, number, number];
  const box = $("maps");
  box.replaceChildren();
  for (let k = 0; k < f; k++) {
    let max = 1e-8;
    for (let i = 0; i < h * w; i++) max = Math.max(max, maps[i * f + k]!);
    const px = new Uint8Array(h * w);
    for (let i = 0; i < h * w; i++) px[i] = Math.round((255 * maps[i * f + k]!) / max);
    const canvas = box.appendChild(document.createElement("canvas"));
    paintGray(canvas, px, w, h);
    canvas.title = `feature map ${k} (max ${max.toFixed(2)})`;
  }
}

function showEvaluation(labels: Uint8Array, predicted: Uint8Array, atStep: number): void {
  const m = confusionMatrix(labels, predicted);
  const rowMax = m.map((r) => Math.max(1, ...r));
  const table = $("confusion");
  table.replaceChildren();
  const head = table.appendChild(document.createElement("tr"));
  head.appendChild(document.createElement("th"));
  for (let k = 0; k < 10; k++) head.appendChild(document.createElement("th")).textContent = String(k);
  m.forEach((row, t) => {
    const tr = table.appendChild(document.createElement("tr"));
    tr.appendChild(document.createElement("th")).textContent = String(t);
    row.forEach((v, p) => {
      const td = tr.appendChild(document.createElement("td"));
      td.textContent = v ? String(v) : "";
      const a = v / rowMax[t]!;
      td.style.background = t === p ? `rgba(37, 99, 235, ${0.1 + 0.8 * a})` : v ? `rgba(220, 38, 38, ${0.12 + 0.6 * a})` : "#f9fafb";
      if (t === p && a > 0.55) td.style.color = "#fff";
      td.title = `true ${t}, predicted ${p}: ${v}`;
    });
  });
  const scores = classScores(m);
  const correct = m.reduce((s, r, k) => s + r[k]!, 0);
  const st = $("scores");
  st.replaceChildren();
  const hr = st.appendChild(document.createElement("tr"));
  for (const h of ["class", "precision", "recall", "F1", "n"]) hr.appendChild(document.createElement("th")).textContent = h;
  const row = (cells: string[], cls = "") => {
    const tr = st.appendChild(document.createElement("tr"));
    tr.className = cls;
    for (const c of cells) tr.appendChild(document.createElement("td")).textContent = c;
  };
  const f = (v: number) => v.toFixed(3);
  scores.forEach((s, k) => row([String(k), f(s.precision), f(s.recall), f(s.f1), String(s.support)]));
  const mean = (key: "precision" | "recall" | "f1") => scores.reduce((a, s) => a + s[key], 0) / scores.length;
  row(["macro", f(mean("precision")), f(mean("recall")), f(mean("f1")), String(labels.length)], "avg");
  $("eval-caption").textContent = `On the ${labels.length.toLocaleString("en-US")} validation images at step ${atStep}: accuracy ${pct(correct / labels.length)}.`;
}

function showKernels(m: { step: number; batchSize: number; times: KernelTime[] } | { unavailable: string }): void {
  const box = $("kernel-times");
  if ("unavailable" in m) {
    box.innerHTML = "";
    box.appendChild(document.createElement("span")).className = "unavailable";
    box.firstElementChild!.textContent = m.unavailable.replace(/^not available/, "Not available");
    box.dataset.available = "false";
    ui.profile.hidden = true;
    return;
  }
  const total = m.times.reduce((s, t) => s + t.ms, 0);
  const max = Math.max(...m.times.map((t) => t.ms), 1e-9);
  const table = document.createElement("table");
  table.className = "ktable";
  const add = (name: string, ms: number, bar: boolean, cls = "") => {
    const tr = table.appendChild(document.createElement("tr"));
    tr.className = cls;
    tr.appendChild(document.createElement("td")).textContent = name;
    tr.lastElementChild!.className = "name";
    tr.appendChild(document.createElement("td")).textContent = `${ms.toFixed(ms < 1 ? 3 : 1)} ms`;
    tr.lastElementChild!.className = "ms";
    const cell = tr.appendChild(document.createElement("td"));
    if (bar) cell.appendChild(document.createElement("div")).className = "kbar";
    if (bar) (cell.firstElementChild as HTMLElement).style.width = `${(100 * ms) / max}%`;
  };
  for (const t of m.times) add(t.label, t.ms, true);
  add(`total (${m.times.length} kernels)`, total, false, "total");
  box.replaceChildren(table);
  box.dataset.available = "true";
  $("kernel-caption").textContent = `One training step at batch ${m.batchSize} (step ${m.step}): forward, loss and backward kernels, each in its own compute pass timed on the GPU with timestamp queries (the optimizer update is not included).`;
}

// ---- Drawing pad ---------------------------------------------------------------------------------------

const pad = $<HTMLCanvasElement>("draw");
const padCtx = pad.getContext("2d", { willReadFrequently: true })!;
let drawing = false;
let last: [number, number] | undefined;
let inFlight = false;
let pending = false;
/** The answer in flight belongs to a drawing that has since been cleared. */
let stale = false;

function clearPad(): void {
  stale = inFlight;
  pending = false;
  padCtx.fillStyle = "#000";
  padCtx.fillRect(0, 0, pad.width, pad.height);
  paintGray($<HTMLCanvasElement>("draw-input"), new Uint8Array(SIDE * SIDE), SIDE, SIDE);
  $("prediction").textContent = "Draw in the black box";
  $("prediction").dataset.digit = "";
  showProbabilities(new Float32Array(10));
}

function padPoint(e: PointerEvent): [number, number] {
  const r = pad.getBoundingClientRect();
  return [((e.clientX - r.left) * pad.width) / r.width, ((e.clientY - r.top) * pad.height) / r.height];
}

function stroke(to: [number, number]): void {
  padCtx.strokeStyle = "#fff";
  padCtx.lineWidth = 22;
  padCtx.lineCap = "round";
  padCtx.lineJoin = "round";
  padCtx.beginPath();
  padCtx.moveTo(...(last ?? to));
  padCtx.lineTo(...to);
  padCtx.stroke();
  last = to;
  requestPrediction();
}

/** At most one prediction in flight; the latest drawing is sent when it returns. */
function requestPrediction(): void {
  if (inFlight) {
    pending = true;
    return;
  }
  const rgba = padCtx.getImageData(0, 0, pad.width, pad.height).data;
  const gray = new Float32Array(pad.width * pad.height);
  for (let i = 0; i < gray.length; i++) gray[i] = rgba[i * 4]! / 255;
  const pixels = toMnist(gray, pad.width, pad.height);
  if (!pixels) return;
  paintGray($<HTMLCanvasElement>("draw-input"), pixels, SIDE, SIDE);
  if (state === "loading" || !worker) return;
  inFlight = true;
  $("prediction").dataset.busy = "true";
  send({ type: "predict", pixels }, [pixels.buffer]);
}

function showPrediction(probs: Float32Array): void {
  inFlight = false;
  const show = probs.length === 10 && !stale;
  stale = false;
  if (show) {
    const k = probs.indexOf(Math.max(...probs));
    const el = $("prediction");
    el.innerHTML = `<b>${k}</b> ${pct(probs[k]!)} sure`;
    el.dataset.digit = String(k);
    showProbabilities(probs);
  }
  if (pending) {
    pending = false;
    requestPrediction();
  }
  $("prediction").dataset.busy = String(inFlight);
}

function showProbabilities(probs: Float32Array): void {
  const top = probs.some((p) => p > 0) ? probs.indexOf(Math.max(...probs)) : -1;
  const box = $("probs");
  box.replaceChildren();
  probs.forEach((p, k) => {
    const row = box.appendChild(document.createElement("div"));
    row.className = `prob${k === top ? " top" : ""}`;
    row.appendChild(document.createElement("span")).textContent = String(k);
    const track = row.appendChild(document.createElement("div"));
    track.className = "track";
    const fill = track.appendChild(document.createElement("div"));
    fill.className = "fill";
    fill.style.width = `${(p * 100).toFixed(1)}%`;
    row.appendChild(document.createElement("span")).textContent = pct(p);
  });
}

pad.addEventListener("pointerdown", (e) => {
  drawing = true;
  last = undefined;
  pad.setPointerCapture(e.pointerId);
  stroke(padPoint(e));
});
pad.addEventListener("pointermove", (e) => drawing && stroke(padPoint(e)));
for (const ev of ["pointerup", "pointercancel"]) pad.addEventListener(ev, () => (drawing = false));
$("clear").addEventListener("click", clearPad);
clearPad();

// ---- Controls ------------------------------------------------------------------------------------------

ui.start.onclick = () => send({ type: "start", settings: settings() });
ui.pause.onclick = () => send({ type: state === "paused" ? "resume" : "pause" });
ui.reset.onclick = () => send({ type: "reset", settings: settings() });
ui.lr.onchange = () => send({ type: "learningRate", value: settings().learningRate });
ui.evaluate.onclick = () => send({ type: "evaluate" });
ui.profile.onclick = () => send({ type: "profile" });

// ---- Start-up ------------------------------------------------------------------------------------------

if (!("gpu" in navigator)) {
  const reason = window.isSecureContext
    ? "This browser has no WebGPU (navigator.gpu is missing), so the network cannot be trained here."
    : `This page was opened from ${location.origin}, which is not a secure context, and browsers only offer WebGPU to secure contexts (https:// or http://localhost).`;
  showProblem("WebGPU is not available here", reason, WEBGPU_HELP);
} else {
  worker = new Worker(new URL("./worker.ts", import.meta.url), { type: "module" });
  worker.onmessage = (ev: MessageEvent<FromWorker>) => onMessage(ev.data);
  worker.onerror = (ev) =>
    showProblem(state === "loading" ? "The training worker failed to start" : "The training worker stopped", ev.message || "The worker script could not be loaded, or it threw.", ["Reload the page; the browser console has the details."]);
  send({ type: "init", mnistBase: new URL("mnist/", location.href).href, settings: settings() });
}
