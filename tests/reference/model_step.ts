// A float64 CPU reference for one training step of a Sequential model, built from the reference ops:
// forward, loss, backward and the optimizer update, layer by layer.
import * as ref from "./cpu.ts";

export type RefLayer =
  | { kind: "conv2d"; filters: number; k: number; act: ref.Activation }
  | { kind: "maxPool"; p: number }
  | { kind: "flatten" }
  | { kind: "dense"; units: number; act: ref.Activation | "softmax"; bias?: false };

export interface RefStep {
  layers: RefLayer[];
  inputShape: number[];
  loss: "sparseCategoricalCrossentropy" | "categoricalCrossentropy" | "meanSquaredError" | "binaryCrossentropy";
  /** Parameters in layer order: kernel then bias (unless `bias: false`) for each layer with parameters. */
  params: Float64Array[];
  x: ArrayLike<number>;
  y: ArrayLike<number>;
  B: number;
}

/** Returns the gradient of the mean batch loss w.r.t. each parameter. */
export function referenceGradients(s: RefStep): Float64Array[] {
  const { B } = s;
  let shape = s.inputShape;
  let h: Float64Array = Float64Array.from(s.x);
  const tape: { l: RefLayer; x: Float64Array; y: Float64Array; inShape: number[]; w?: Float64Array; b?: Float64Array }[] = [];
  let pi = 0;
  for (const l of s.layers) {
    const x = h;
    const inShape = shape;
    if (l.kind === "conv2d") {
      const [H, W, C] = shape as [number, number, number];
      const g = { B, H, W, C, KH: l.k, KW: l.k, SH: 1, SW: 1, padding: "valid" as const };
      const w = s.params[pi++]!;
      const b = s.params[pi++]!;
      h = ref.conv2d(x, w, b, g, l.filters, l.act);
      const { OH, OW } = ref.convOutput(g);
      shape = [OH, OW, l.filters];
      tape.push({ l, x, y: h, inShape, w, b });
    } else if (l.kind === "maxPool") {
      const [H, W, C] = shape as [number, number, number];
      const g = { B, H, W, C, PH: l.p, PW: l.p, SH: l.p, SW: l.p, padding: "valid" as const };
      h = ref.maxPool2d(x, g).y;
      const { OH, OW } = ref.poolOutput(g);
      shape = [OH, OW, C];
      tape.push({ l, x, y: h, inShape });
    } else if (l.kind === "flatten") {
      shape = [shape.reduce((a, c) => a * c, 1)];
      tape.push({ l, x, y: h, inShape });
    } else {
      const w = s.params[pi++]!;
      const b = l.bias === false ? undefined : s.params[pi++]!;
      h = ref.dense(x, w, b ?? null, B, shape[0]!, l.units, l.act === "softmax" ? "linear" : l.act);
      shape = [l.units];
      tape.push({ l, x, y: h, inShape, w, b });
    }
  }
  const K = shape[0]!;
  let dy =
    s.loss === "sparseCategoricalCrossentropy"
      ? ref.softmaxCrossEntropy(h, s.y, B, K).dlogits
      : s.loss === "categoricalCrossentropy"
        ? ref.softmaxCrossEntropyDense(h, s.y, B, K).dlogits
        : s.loss === "meanSquaredError"
        ? ref.meanSquaredError(h, s.y, B, K).dpred
        : ref.binaryCrossentropy(h, s.y, B, K).dprob;
  const grads: Float64Array[] = [];
  for (let i = tape.length - 1; i >= 0; i--) {
    const { l, x, y, inShape, w } = tape[i]!;
    if (l.kind === "conv2d") {
      const [H, W, C] = inShape as [number, number, number];
      const r = ref.conv2dBackward(x, w!, y, dy, { B, H, W, C, KH: l.k, KW: l.k, SH: 1, SW: 1, padding: "valid" }, l.filters, l.act);
      grads.unshift(r.dw, r.db);
      dy = r.dx;
    } else if (l.kind === "maxPool") {
      const [H, W, C] = inShape as [number, number, number];
      dy = ref.maxPool2dBackward(x, dy, { B, H, W, C, PH: l.p, PW: l.p, SH: l.p, SW: l.p, padding: "valid" });
    } else if (l.kind === "dense") {
      const r = ref.denseBackward(x, w!, y, dy, B, inShape[0]!, l.units, l.act === "softmax" ? "linear" : l.act);
      grads.unshift(...(l.bias === false ? [r.dw] : [r.dw, r.db]));
      dy = r.dx;
    }
  }
  return grads;
}
