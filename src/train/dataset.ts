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

/** Checks and uploads inputs and (unless undefined: predict) targets once. */
export function uploadDataset(engine: Engine, spec: DatasetSpec, x: unknown, y: unknown, scale: number, what = "x", targets: "required" | "none" = "required"): Dataset {
  const xs = inputsOf(spec, x, what);
  const n = examplesOf(spec, xs, what);
  for (const [i, xi] of xs.entries()) {
    if (!(xi instanceof Float32Array)) continue;
    const bad = xi.findIndex((v) => !Number.isFinite(v));
    if (bad >= 0) throw new DataError(`${what}${xs.length > 1 ? ` (input "${spec.inputs[i]!.name}")` : ""}: value ${bad} (example ${Math.floor(bad / spec.inputs[i]!.size)}) is ${xi[bad]}; inputs must be finite`);
  }
  const yWhat = what === "x" ? "y" : what.replace(/\bx\b/, "y");
  let labels: { data: Uint32Array | Float32Array; kind: "u32" | "f32"; row: number } | undefined;
  if (targets === "required") {
    if (y === undefined || y === null) throw new DataError(`${yWhat} is ${y}; training and evaluation need targets (labels for ${spec.loss})`);
    if (typeof y !== "object" || typeof (y as ArrayLike<number>).length !== "number") throw new DataError(`${yWhat} must be an array or typed array of ${spec.loss === "sparseCategoricalCrossentropy" ? "labels" : "targets"}, got ${shown(y)}`);
    labels = targetsOf(spec, y as ArrayLike<unknown>, n, yWhat);
  }
  const e = engine;
  const uploads: GPUBuffer[] = [];
  const upload = (bytes: number, label: string) => {
    const b = e.createBuffer(bytes, label, false, "dataset");
    uploads.push(b);
    return b;
  };
  try {
    const inputs = xs.map((xi, i) => {
      const buffer = upload(xi.byteLength, `${spec.inputs[i]!.name} (dataset)`);
      if (xi instanceof Uint8Array) {
        const padded = new Uint8Array(Math.ceil(xi.length / 4) * 4);
        padded.set(xi);
        e.device.queue.writeBuffer(buffer, 0, padded);
      } else e.device.queue.writeBuffer(buffer, 0, xi.buffer as ArrayBuffer, xi.byteOffset, xi.byteLength);
      return { buffer, kind: xi instanceof Uint8Array ? ("u8" as const) : ("f32" as const), row: spec.inputs[i]!.size, scale: xi instanceof Uint8Array ? scale : 1 };
    });
    let t: Dataset["targets"];
    if (labels) {
      const buffer = upload(labels.data.byteLength, "targets (dataset)");
      e.device.queue.writeBuffer(buffer, 0, labels.data as Float32Array<ArrayBuffer>);
      t = { buffer, kind: labels.kind, row: labels.row };
    }
    const order = upload(n * 4, "visit order");
    e.device.queue.writeBuffer(order, 0, Uint32Array.from({ length: n }, (_, i) => i));
    return { n, inputs, targets: t, order };
  } catch (err) {
    for (const b of uploads) b.destroy();
    throw err;
  }
}

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
