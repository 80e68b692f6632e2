// Datasets: inputs and targets checked on the CPU and uploaded to the GPU once, so a step gathers its
// batch without touching host memory.
import { shown } from "../args.ts";
import type { Engine } from "../engine.ts";
import { DataError, ShapeError } from "../errors.ts";
import type { SymbolicTensor } from "../graph/graph.ts";
import type { Dataset, LossName } from "../plan/plan.ts";

export type InputData = Float32Array | Uint8Array;
/** One array for a single-input model; an array or a name → data object for several. */
export type Inputs = InputData | InputData[] | Record<string, InputData>;

export interface DatasetSpec {
  inputs: readonly SymbolicTensor[];
  output: SymbolicTensor;
  loss: LossName;
}

/** The model's inputs in order, from whatever form the caller gave. */
export function inputsOf(spec: DatasetSpec, x: unknown, what: string): InputData[] {
  const names = spec.inputs.map((t) => t.name);
  let list: unknown[];
  if (x instanceof Float32Array || x instanceof Uint8Array) list = [x];
  else if (Array.isArray(x)) list = x;
  else if (x && typeof x === "object" && !ArrayBuffer.isView(x) && !(x instanceof ArrayBuffer) && Object.keys(x).length > 0) {
    const o = x as Record<string, unknown>;
    const unknown = Object.keys(o).filter((k) => !names.includes(k));
    if (unknown.length) throw new DataError(`${what}: no model input is named ${unknown.map((k) => `"${k}"`).join(", ")}; the inputs are ${names.map((k) => `"${k}"`).join(", ")}`);
    list = names.map((k) => o[k]);
  } else throw new DataError(`${what} must be a Float32Array or a Uint8Array (pixels)${names.length > 1 ? ", or an array or { name: data } of them for the model's inputs" : ""}, got ${shown(x)}${x instanceof ArrayBuffer ? "; wrap it in a view, e.g. new Float32Array(buffer)" : ""}`);
  if (list.length !== names.length) throw new DataError(`${what}: the model has ${names.length} input${names.length > 1 ? "s" : ""} (${names.join(", ")}) but ${list.length} arrays were given`);
  return list.map((v, i) => {
    if (!(v instanceof Float32Array || v instanceof Uint8Array)) throw new DataError(`${what}${names.length > 1 ? ` for input "${names[i]}"` : ""} must be a Float32Array or a Uint8Array (pixels), got ${shown(v)}`);
    return v;
  });
}

/** Number of examples, checking every input holds whole examples of its shape and that they agree. */
export function examplesOf(spec: DatasetSpec, xs: readonly InputData[], what: string): number {
  let n = -1;
  xs.forEach((x, i) => {
    const t = spec.inputs[i]!;
    const label = spec.inputs.length > 1 ? `${what} for input "${t.name}"` : what;
    if (x.length === 0 || x.length % t.size !== 0) throw new ShapeError(`${label} has ${x.length} values, which is not a whole number of examples of shape [${t.shape}] (${t.size} values each)`);
    const m = x.length / t.size;
    if (n >= 0 && m !== n) throw new ShapeError(`${what}: input "${t.name}" has ${m} examples but "${spec.inputs[0]!.name}" has ${n}; every input needs the same number`);
    n = m;
  });
  return n;
}

/** A batch or dataset checked on the CPU: the inputs in model order, the example count, and the targets as the GPU takes them. */
export interface HostData {
  xs: InputData[];
  n: number;
  targets?: { data: Uint32Array | Float32Array; kind: "u32" | "f32"; row: number };
}

/** Checks inputs and (unless `targets` is "none": predict) targets, with errors that name what is wrong. */
export function hostData(spec: DatasetSpec, x: unknown, y: unknown, what = "x", targets: "required" | "none" = "required"): HostData {
  const xs = inputsOf(spec, x, what);
  const n = examplesOf(spec, xs, what);
  for (const [i, xi] of xs.entries()) {
    if (!(xi instanceof Float32Array)) continue;
    const bad = xi.findIndex((v) => !Number.isFinite(v));
    if (bad >= 0) throw new DataError(`${what}${xs.length > 1 ? ` (input "${spec.inputs[i]!.name}")` : ""}: value ${bad} (example ${Math.floor(bad / spec.inputs[i]!.size)}) is ${xi[bad]}; inputs must be finite`);
  }
  const yWhat = what === "x" ? "y" : what.replace(/\bx\b/, "y");
  if (targets === "none") return { xs, n };
  if (y === undefined || y === null) throw new DataError(`${yWhat} is ${y}; training and evaluation need targets (labels for ${spec.loss})`);
  if (typeof y !== "object" || typeof (y as ArrayLike<number>).length !== "number") throw new DataError(`${yWhat} must be an array or typed array of ${spec.loss === "sparseCategoricalCrossentropy" ? "labels" : "targets"}, got ${shown(y)}`);
  return { xs, n, targets: targetsOf(spec, y as ArrayLike<unknown>, n, yWhat) };
}

/** GPU buffers shaped for `h` (its input kinds and sizes, its targets), with the identity visiting order; nothing written but the order. */
export function allocateDataset(engine: Engine, spec: DatasetSpec, h: HostData, scale: number): Dataset {
  const uploads: GPUBuffer[] = [];
  const upload = (bytes: number, label: string) => {
    const b = engine.createBuffer(bytes, label, false, "dataset");
    uploads.push(b);
    return b;
  };
  try {
    const inputs = h.xs.map((xi, i) => ({
      buffer: upload(xi.byteLength, `${spec.inputs[i]!.name} (dataset)`),
      kind: xi instanceof Uint8Array ? ("u8" as const) : ("f32" as const),
      row: spec.inputs[i]!.size,
      scale: xi instanceof Uint8Array ? scale : 1,
    }));
    const targets = h.targets && { buffer: upload(h.targets.data.byteLength, "targets (dataset)"), kind: h.targets.kind, row: h.targets.row };
    const order = upload(h.n * 4, "visit order");
    engine.device.queue.writeBuffer(order, 0, Uint32Array.from({ length: h.n }, (_, i) => i));
    return { n: h.n, inputs, targets, order };
  } catch (err) {
    for (const b of uploads) b.destroy();
    throw err;
  }
}

const TAIL = new Uint8Array(4);

/** Writes `h` into a dataset allocated for data of its shape and kinds (queue writes: copied at the call). */
export function writeDataset(engine: Engine, ds: Dataset, h: HostData): void {
  const q = engine.device.queue;
  h.xs.forEach((xi, i) => {
    const buffer = ds.inputs[i]!.buffer;
    const whole = xi.byteLength & ~3;
    if (whole > 0) q.writeBuffer(buffer, 0, xi.buffer as ArrayBuffer, xi.byteOffset, whole);
    if (whole < xi.byteLength) {
      // A byte array whose length is not a multiple of 4: its last bytes go through a padded word.
      TAIL.fill(0);
      TAIL.set(new Uint8Array(xi.buffer, xi.byteOffset + whole, xi.byteLength - whole));
      q.writeBuffer(buffer, whole, TAIL);
    }
  });
  if (h.targets) q.writeBuffer(ds.targets!.buffer, 0, h.targets.data.buffer as ArrayBuffer, h.targets.data.byteOffset, h.targets.data.byteLength);
}

/** Checks and uploads inputs and (unless undefined: predict) targets once. */
export function uploadDataset(engine: Engine, spec: DatasetSpec, x: unknown, y: unknown, scale: number, what = "x", targets: "required" | "none" = "required"): Dataset {
  const h = hostData(spec, x, y, what, targets);
  const ds = allocateDataset(engine, spec, h, scale);
  writeDataset(engine, ds, h);
  return ds;
}

/** The targets as the GPU takes them: labels as u32, anything else as f32, each checked. */
function targetsOf(spec: DatasetSpec, y: ArrayLike<unknown>, n: number, what: string): { data: Uint32Array | Float32Array; kind: "u32" | "f32"; row: number } {
  const classes = spec.output.size;
  if (spec.loss === "sparseCategoricalCrossentropy") {
    if (y.length !== n) throw new ShapeError(`${what}: x has ${n} examples but its labels have ${y.length}; they must match`);
    const labels = new Uint32Array(n);
    for (let i = 0; i < n; i++) {
      const v = y[i];
      if (typeof v !== "number" || !Number.isInteger(v) || v < 0 || v >= classes) throw new DataError(`${what}: label ${i} is ${typeof v === "number" ? v : `${JSON.stringify(String(v))} (a ${typeof v})`}; labels must be integers in 0..${classes - 1} (the model has ${classes} outputs)`);
      labels[i] = v;
    }
    return { data: labels, kind: "u32", row: 1 };
  }
  if (y.length !== n * classes) throw new ShapeError(`${what}: ${n} examples need ${n} × ${classes} = ${n * classes} target values, got ${y.length}`);
  const t = new Float32Array(y.length);
  for (let i = 0; i < y.length; i++) {
    const v = y[i];
    if (typeof v !== "number" || !Number.isFinite(v)) throw new DataError(`${what}: target ${i} is ${typeof v === "number" ? v : JSON.stringify(String(v))}; targets must be finite numbers`);
    t[i] = v;
  }
  return { data: t, kind: "f32", row: classes };
}
