// The demo page: controls, live numbers and charts, the drawing pad and the figures; all GPU work happens
// in the training worker (worker.ts), so the page stays responsive while it trains.
import type { AdapterReport } from "../src/index.ts";
import { Curves, duration } from "./charts.ts";
import { classScores, confusionMatrix, divergence, lowerRate, USUAL_RATE } from "./metrics.ts";
import { LIMITS, parseDecimal } from "./model.ts";
import { SIDE, toMnist } from "./preprocess.ts";
import { VALIDATION, type FromWorker, type KernelTime, type Settings, type State, type ToWorker } from "./protocol.ts";
import "./header.css";
import "./style.css";

const $ = <T extends HTMLElement = HTMLElement>(id: string) => document.getElementById(id) as T;
const ui = {
  start: $<HTMLButtonElement>("start"),
  pause: $<HTMLButtonElement>("pause"),
  reset: $<HTMLButtonElement>("reset"),
  load: $<HTMLButtonElement>("load"),
  save: $<HTMLButtonElement>("save"),
  lr: $<HTMLInputElement>("lr"),
  lrDecay: $<HTMLInputElement>("lr-decay"),
  batch: $<HTMLSelectElement>("batch"),
  epochs: $<HTMLInputElement>("epochs"),
  optimizer: $<HTMLSelectElement>("optimizer"),
  trainSize: $<HTMLSelectElement>("train-size"),
  l2: $<HTMLInputElement>("l2"),
  dropout: $<HTMLInputElement>("dropout"),
  validateEvery: $<HTMLSelectElement>("validate-every"),
  evaluate: $<HTMLButtonElement>("evaluate"),
  profile: $<HTMLButtonElement>("profile"),
};

let worker: Worker | undefined;
let state: State = "loading";
let step = 0;
/** Trained or loaded weights are in the model (the grid's guesses mean something). */
let learnt = false;
const lossChart = new Curves($("loss-chart"), "loss", false);
const accuracyChart = new Curves($("accuracy-chart"), "accuracy", true);

const send = (m: ToWorker, transfer: Transferable[] = []) => worker?.postMessage(m, transfer);
const pct = (v: number) => `${(v * 100).toFixed(1)}%`;

// ---- Settings: every field is checked as it is typed; a bad value is shown and refused -------------------

type Field = { el: HTMLInputElement; name: string; parse: (t: string) => number; ok: (v: number) => boolean; need: string };
const epochsLimit = { ok: (v: number) => Number.isInteger(v) && v >= 1 && v <= 100, need: "a whole number from 1 to 100" };
const FIELDS: Record<"learningRate" | "lrDecay" | "epochs" | "l2" | "dropout", Field> = {
  learningRate: { el: ui.lr, name: "Learning rate", parse: parseDecimal, ...LIMITS.learningRate },
  lrDecay: { el: ui.lrDecay, name: "Rate × per epoch", parse: parseDecimal, ...LIMITS.lrDecay },
  epochs: { el: ui.epochs, name: "Epochs", parse: (t) => (/^\s*\d+\s*$/.test(t) ? Number(t) : NaN), ...epochsLimit },
  l2: { el: ui.l2, name: "L2", parse: parseDecimal, ...LIMITS.l2 },
  dropout: { el: ui.dropout, name: "Dropout", parse: parseDecimal, ...LIMITS.dropout },
};

/** The settings the fields give, or undefined (with the reasons shown under the fields) when one is bad. */
function settings(): Settings | undefined {
  const values: Partial<Record<keyof typeof FIELDS, number>> = {};
  const errors: string[] = [];
  for (const [key, f] of Object.entries(FIELDS) as [keyof typeof FIELDS, Field][]) {
    const v = f.parse(f.el.value);
    const ok = f.ok(v);
    f.el.setAttribute("aria-invalid", String(!ok));
    if (ok) values[key] = v;
    else errors.push(`${f.name}: “${f.el.value.trim() || "(empty)"}” is refused; it must be ${f.need}.`);
  }
  const list = $("field-errors");
  list.replaceChildren(...errors.map((e) => Object.assign(document.createElement("li"), { textContent: e })));
  updateButtons(errors.length === 0);
  if (errors.length) return undefined;
  return {
    learningRate: values.learningRate!,
    lrDecay: values.lrDecay!,
    epochs: values.epochs!,
    l2: values.l2!,
    dropout: values.dropout!,
    batchSize: Number(ui.batch.value),
    optimizer: ui.optimizer.value === "sgd" ? "sgd" : "adam",
    trainSize: Number(ui.trainSize.value),
    validateEvery: Number(ui.validateEvery.value),
  };
}

function describeModel(s: Settings | undefined): void {
  const dropout = s?.dropout ? ` → Dropout ${s.dropout}` : "";
  const l2 = s?.l2 ? ` · L2 ${s.l2} on the kernels` : "";
  $("model-text").textContent = `Conv2D 32 × 3×3, ReLU → MaxPool 2×2 → Dense 128, ReLU${dropout} → Dense 10, softmax · 693,962 parameters · sparse categorical cross-entropy${l2}`;
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
  state = "loading";
  worker = undefined;
  for (const b of [ui.start, ui.pause, ui.reset, ui.load, ui.save, ui.evaluate, ui.profile]) b.disabled = true;
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
    case "points":
      lossChart.addTrain(m.steps, m.loss);
      accuracyChart.addTrain(m.steps, m.accuracy);
      showTraining();
      break;
    case "epoch":
      epochsDone++;
      lossChart.addEpoch(m.step, epochsDone);
      accuracyChart.addEpoch(m.step, epochsDone);
      break;
    case "validation":
      $("val-accuracy").textContent = pct(m.accuracy);
      if (m.step > 0) {
        lossChart.addValidation(m.step, m.loss);
        accuracyChart.addValidation(m.step, m.accuracy);
      }
      showEvaluation(m.labels, m.predicted, m.step);
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
    case "prediction":
      showPrediction(m.seq, m.probs);
      break;
    case "kernels":
      showKernels(m);
      break;
    case "loaded":
      learnt = true;
      clearRun();
      loadedNote = `trained weights loaded${m.metadata.test_accuracy ? `: ${pct(Number(m.metadata.test_accuracy))} on the ${Number(m.metadata.test_images ?? 10000).toLocaleString("en-US")} test images after ${m.metadata.epochs ?? "5"} epochs of npm run train` : ""}`;
      break;
    case "weights":
      download(m.bytes, m.fileName);
      break;
    case "diverged":
      warn(`Training stopped at step ${m.step}: the loss became ${m.loss}.`);
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

let loadedNote = "";
let epochsDone = 0;

function updateButtons(valid = $("field-errors").childElementCount === 0): void {
  const s = state;
  ui.start.disabled = !(s === "idle" || s === "done") || !valid || !worker;
  ui.pause.disabled = !(s === "training" || s === "paused");
  ui.reset.disabled = s === "loading" || !worker;
  ui.load.disabled = !(s === "idle" || s === "done") || !valid || !worker;
  ui.save.disabled = s === "loading" || !worker;
  ui.evaluate.disabled = s === "loading" || !worker;
  ui.profile.disabled = s === "loading" || !worker || $("kernel-times").dataset.available === "false";
}

function setState(s: State, atStep: number, note?: string): void {
  state = s;
  step = atStep;
  $("step").textContent = String(step);
  const health = warning ? ` — but the network did not learn: ${warning}` : "";
  const texts: Record<State, string> = {
    loading: "Loading…",
    idle: step === 0 ? (learnt ? `Ready: ${loadedNote || "weights loaded"}. Draw a digit, or press Start to train further.` : "Ready: press Start, or Load trained weights.") : "Ready.",
    training: "Training…",
    paused: "Paused.",
    done: `Done${health}${warning ? "" : ": press Train more to continue, or Reset."}`,
  };
  setStateText(s === "loading" && note ? note : note ? `${texts[s]} (${note})` : texts[s]);
  ui.start.textContent = step > 0 && s !== "training" && s !== "paused" ? "Train more" : "Start";
  ui.pause.textContent = s === "paused" ? "Resume" : "Pause";
  const running = s === "training" || s === "paused";
  for (const el of [ui.batch, ui.epochs, ui.trainSize, ui.validateEvery]) el.disabled = running;
  for (const el of [ui.optimizer, ui.l2, ui.dropout]) el.disabled = running || step > 0;
  $("hint").textContent = step > 0 && !running ? "The optimizer, L2 and dropout are fixed once training has begun: Reset to change them. The learning rate and its decay may change at any time." : "";
  updateButtons();
  if ((s === "idle" || s === "loading") && step === 0 && !learnt) clearRun();
}

/** Back to an empty run: figures, charts, warning. */
function clearRun(): void {
  for (const id of ["loss", "accuracy", "val-accuracy", "rate", "elapsed", "eta"]) $(id).textContent = "–";
  $("progress-fill").style.width = "0";
  $("progress-text").textContent = "Not started";
  lossChart.clear();
  accuracyChart.clear();
  epochsDone = 0;
  firstLoss = undefined;
  warning = "";
  $("warning").hidden = true;
  if (!learnt) {
    $("eval-caption").textContent = `Nothing evaluated yet: the ${VALIDATION.toLocaleString("en-US")} validation images are evaluated while training, after loading trained weights, or when you press Evaluate now.`;
    $("confusion").replaceChildren();
    $("scores").replaceChildren();
  }
}

function showProgress(m: Extract<FromWorker, { type: "progress" }>): void {
  step = m.step;
  $("step").textContent = String(m.step);
  $("rate").textContent = m.samplesPerSecond >= 100 ? m.samplesPerSecond.toFixed(0) : m.samplesPerSecond.toFixed(1);
  const done = (m.epoch * m.batchesPerEpoch + m.batch) / (m.epochs * m.batchesPerEpoch);
  $("progress-fill").style.width = `${(done * 100).toFixed(1)}%`;
  $("progress-text").textContent = `Epoch ${m.epoch + 1} of ${m.epochs} · batch ${m.batch} of ${m.batchesPerEpoch}`;
  $("elapsed").textContent = duration(m.elapsed);
  $("eta").textContent = m.eta === undefined ? "…" : duration(m.eta);
}

/** The smoothed figures, and a warning when they say training has gone wrong. */
let warning = "";
let firstLoss: number | undefined;
function showTraining(): void {
  const loss = lossChart.latest;
  const accuracy = accuracyChart.latest;
  if (loss === undefined || accuracy === undefined) return;
  $("loss").textContent = Number.isFinite(loss) && loss < 1000 ? loss.toFixed(3) : String(Number.isFinite(loss) ? Math.round(loss) : loss);
  $("accuracy").textContent = pct(accuracy);
  firstLoss ??= loss;
  if (lossChart.points === 1) firstLoss = loss;
  const why = divergence({ steps: lossChart.points, firstLoss, loss, accuracy });
  const s = settings();
  if (why === "diverging") warn(`The loss is ${$("loss").textContent} at step ${step}, up from ${firstLoss.toFixed(2)} at the start: training is diverging.`);
  // Stuck at chance can also mean a rate too low to have moved yet; only a high one is blamed.
  else if (why === "not learning" && s && s.learningRate > USUAL_RATE[s.optimizer]) warn(`Accuracy is ${pct(accuracy)} after ${step} steps, about chance (10%): the network is not learning.`);
}

function warn(what: string): void {
  const s = settings();
  const lr = s?.learningRate ?? 0.001;
  const lower = lowerRate(lr, s?.optimizer ?? "adam");
  warning = `the learning rate ${lr} is probably too high`;
  $("warning").hidden = false;
  $("warning-text").textContent = `${what} The learning rate (${lr}) is probably too high; try ${lower}.`;
  const fix = $<HTMLButtonElement>("warning-fix");
  fix.textContent = `Use ${lower} and reset`;
  fix.onclick = () => {
    ui.lr.value = String(lower);
    const next = settings();
    if (next) send({ type: "reset", settings: next });
  };
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

function download(bytes: Uint8Array, fileName: string): void {
  const url = URL.createObjectURL(new Blob([bytes as Uint8Array<ArrayBuffer>], { type: "application/octet-stream" }));
  const a = Object.assign(document.createElement("a"), { href: url, download: fileName });
  document.body.appendChild(a).click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 10_000);
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

function showSamples(images: Uint8Array, labels: number[], predicted?: number[], confidence?: number[]): void {
  learnt = !!predicted;
  $("samples-caption").innerHTML = predicted
    ? 'Images the network never trains on, with its guesses; <span class="wrong-key">red</span> marks a mistake. Click one to see its feature maps below.'
    : "Images the network never trains on. Its guesses appear once it has trained for a while, or after <b>Load trained weights</b>. Click one to see its feature maps below.";
  const grid = $("grid");
  grid.replaceChildren();
  labels.forEach((label, i) => {
    const cell = grid.appendChild(document.createElement("div"));
    const index = VALIDATION + i;
    const guess = predicted?.[i];
    const wrong = guess !== undefined && guess !== label;
    cell.className = `sample${wrong ? " wrong" : ""}${guess === undefined ? " unknown" : ""}${index === selectedSample ? " selected" : ""}`;
    cell.dataset.testid = "sample";
    if (guess !== undefined) cell.dataset.correct = String(!wrong);
    cell.title = guess === undefined ? `test image ${index}: ${label}` : `test image ${index}: true ${label}, predicted ${guess} (${pct(confidence![i]!)})`;
    const canvas = cell.appendChild(document.createElement("canvas"));
    paintGray(canvas, images.subarray(i * SIDE * SIDE, (i + 1) * SIDE * SIDE), SIDE, SIDE);
    cell.appendChild(document.createElement("span")).textContent = guess === undefined ? "?" : `→ ${guess}`;
    if (wrong) cell.appendChild(Object.assign(document.createElement("span"), { className: "truth", textContent: `was ${label}` }));
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
  const source = atStep === 0 && learnt ? "with the loaded weights" : `at step ${atStep}`;
  $("eval-caption").textContent = `On the ${labels.length.toLocaleString("en-US")} validation images ${source}: accuracy ${pct(correct / labels.length)}.`;
}

function showKernels(m: { step: number; batchSize: number; times: KernelTime[] } | { unavailable: string }): void {
  const box = $("kernel-times");
  if ("unavailable" in m) {
    box.replaceChildren(Object.assign(document.createElement("span"), { className: "unavailable", textContent: m.unavailable.replace(/^not available/, "Not available") }));
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
    tr.appendChild(Object.assign(document.createElement("td"), { className: "name", textContent: name }));
    tr.appendChild(Object.assign(document.createElement("td"), { className: "ms", textContent: `${ms.toFixed(ms < 1 ? 3 : 1)} ms` }));
    const cell = tr.appendChild(document.createElement("td"));
    if (bar) cell.appendChild(Object.assign(document.createElement("div"), { className: "kbar" })).style.width = `${(100 * ms) / max}%`;
  };
  for (const t of m.times) add(t.label, t.ms, true);
  add(`total (${m.times.length} kernels)`, total, false, "total");
  box.replaceChildren(table);
  box.dataset.available = "true";
  box.dataset.step = String(m.step);
  $("kernel-caption").textContent = `One training step at batch ${m.batchSize}, timed at step ${m.step} (again every 20 s while training): forward, loss and backward kernels, each in its own compute pass timed on the GPU with timestamp queries (the optimizer update is not included).`;
}

// ---- Drawing pad: every change is sent (at most one per frame); the worker reads only the latest --------

const pad = $<HTMLCanvasElement>("draw");
const padCtx = pad.getContext("2d", { willReadFrequently: true })!;
let drawing = false;
let last: [number, number] | undefined;
/** Id of the latest drawing sent; answers to older ones are shown but do not end "reading…". */
let seq = 0;
/** Answers below this id belong to a drawing since cleared. */
let cleared = 0;
let dirty = false;
let flushTimer = 0;
/** The pen was lifted at `t` with drawing `seq` on the pad: the time until it is read is the latency. */
let lifted: { seq: number; t: number } | undefined;

function clearPad(): void {
  cleared = seq + 1;
  dirty = false;
  lifted = undefined;
  padCtx.fillStyle = "#000";
  padCtx.fillRect(0, 0, pad.width, pad.height);
  paintGray($<HTMLCanvasElement>("draw-input"), new Uint8Array(SIDE * SIDE), SIDE, SIDE);
  $("prediction-text").textContent = "Draw in the black box";
  $("prediction").dataset.digit = "";
  setReading(false);
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
  dirty = true;
  flushTimer ||= requestAnimationFrame(flush);
}

/** Sends the drawing if it changed since the last one sent. */
function flush(): void {
  cancelAnimationFrame(flushTimer);
  flushTimer = 0;
  if (!dirty) return;
  dirty = false;
  const rgba = padCtx.getImageData(0, 0, pad.width, pad.height).data;
  const gray = new Float32Array(pad.width * pad.height);
  for (let i = 0; i < gray.length; i++) gray[i] = rgba[i * 4]! / 255;
  const pixels = toMnist(gray, pad.width, pad.height);
  if (!pixels) return;
  paintGray($<HTMLCanvasElement>("draw-input"), pixels, SIDE, SIDE);
  if (state === "loading" || !worker) return;
  seq++;
  setReading(true);
  send({ type: "predict", seq, pixels }, [pixels.buffer]);
}

function setReading(on: boolean): void {
  $("prediction").dataset.busy = String(on);
  $("reading").hidden = !on;
}

function showPrediction(answer: number, probs: Float32Array): void {
  if (answer < cleared) return;
  if (probs.length === 10) {
    const k = probs.indexOf(Math.max(...probs));
    $("prediction-text").innerHTML = `<b>${k}</b> ${pct(probs[k]!)} sure`;
    $("prediction").dataset.digit = String(k);
    showProbabilities(probs);
  }
  if (lifted && answer >= lifted.seq) {
    const ms = performance.now() - lifted.t;
    lifted = undefined;
    $("prediction").dataset.latencyMs = ms.toFixed(0);
    $("latency").textContent = `read ${(ms / 1000).toFixed(2)} s after the pen was lifted${state === "training" ? ", while training" : ""}`;
  }
  setReading(answer < seq);
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
    track.appendChild(Object.assign(document.createElement("div"), { className: "fill" })).style.width = `${(p * 100).toFixed(1)}%`;
    row.appendChild(document.createElement("span")).textContent = pct(p);
  });
}

// A pointer over the pad (or a cleared pad) means a drawing is coming: the worker starts keeping its queue short.
let hinted = 0;
const aboutToDraw = () => {
  if (performance.now() - hinted < 1000) return;
  hinted = performance.now();
  send({ type: "drawing" });
};
pad.addEventListener("pointerenter", aboutToDraw);
pad.addEventListener("pointerdown", (e) => {
  drawing = true;
  last = undefined;
  pad.setPointerCapture(e.pointerId);
  delete $("prediction").dataset.latencyMs;
  hinted = 0;
  aboutToDraw();
  stroke(padPoint(e));
});
pad.addEventListener("pointermove", (e) => drawing && stroke(padPoint(e)));
for (const ev of ["pointerup", "pointercancel"]) {
  pad.addEventListener(ev, () => {
    if (!drawing) return;
    drawing = false;
    const t = performance.now();
    flush();
    if (seq < cleared) return;
    if ($("prediction").dataset.busy === "true") lifted = { seq, t };
    else $("prediction").dataset.latencyMs = "0"; // read before the pen was lifted
  });
}
$("clear").addEventListener("click", () => {
  clearPad();
  aboutToDraw();
});
clearPad();

// ---- Controls ------------------------------------------------------------------------------------------

const withSettings = (f: (s: Settings) => void) => () => {
  const s = settings();
  if (s) f(s);
};
ui.start.onclick = withSettings((s) => send({ type: "start", settings: s }));
ui.pause.onclick = () => send({ type: state === "paused" ? "resume" : "pause" });
ui.reset.onclick = () => {
  learnt = false;
  const s = settings();
  // With a bad field, Reset still works, with the last good values the worker has.
  send({ type: "reset", settings: s ?? lastGood });
};
ui.load.onclick = withSettings((s) => send({ type: "loadWeights", settings: s }));
ui.save.onclick = () => send({ type: "saveWeights" });
ui.evaluate.onclick = () => send({ type: "evaluate" });
ui.profile.onclick = () => send({ type: "profile" });

let lastGood: Settings;
for (const el of [ui.lr, ui.lrDecay, ui.epochs, ui.l2, ui.dropout, ui.batch, ui.optimizer, ui.trainSize, ui.validateEvery]) {
  el.addEventListener("input", () => {
    const s = settings();
    describeModel(s ?? lastGood);
    if (!s) return;
    lastGood = s;
    // The learning rate and its decay take effect at the next step, also while training.
    send({ type: "rate", learningRate: s.learningRate, lrDecay: s.lrDecay });
  });
}

// ---- Start-up ------------------------------------------------------------------------------------------

lastGood = settings()!;
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
  send({ type: "init", base: location.href, settings: lastGood });
}
