// The element-wise loss kernels (MSE, BCE) report Keras's figures: metrics [loss sum, correct, count]
// give loss = sum / count and accuracy = correct / count, the means over all n_valid·K elements.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { Engine } from "../src/engine.ts";
import { elementLoss } from "../src/kernels.ts";
import * as ref from "./reference/cpu.ts";
import { randomArray } from "./reference/random.ts";
import { expectRelClose, gpuEngine } from "./gpu_helpers.ts";

let e: Engine;
beforeAll(async () => {
  e = await gpuEngine();
});
afterAll(() => e?.dispose());

/**
 * Keras's reported figures, straight from its definitions, in float64, over the valid rows of several
 * batches of (B, K): loss = mean over rows of (mean over K of the element loss); for BCE the element loss
 * is −(t log p′ + (1−t) log(1−p′)), p′ = clip(p, 1e-7, 1 − 1e-7); binary accuracy = mean over the
 * elements of [(p > 0.5 ? 1 : 0) == t].
 */
function kerasFigures(kind: "mse" | "bce", batches: { pred: ArrayLike<number>; truth: ArrayLike<number>; nValid: number }[], K: number): { loss: number; accuracy: number } {
  const rowLosses: number[] = [];
  let matches = 0;
  let elements = 0;
  for (const { pred, truth, nValid } of batches) {
    for (let b = 0; b < nValid; b++) {
      let row = 0;
      for (let k = 0; k < K; k++) {
        const p = pred[b * K + k]!, t = truth[b * K + k]!;
        if (kind === "mse") row += (p - t) ** 2;
        else {
          const pc = Math.min(Math.max(p, 1e-7), 1 - 1e-7);
          row += -(t * Math.log(pc) + (1 - t) * Math.log(1 - pc));
        }
        if ((p > 0.5 ? 1 : 0) === t) matches++;
        elements++;
      }
      rowLosses.push(row / K);
    }
  }
  return { loss: rowLosses.reduce((a, v) => a + v, 0) / rowLosses.length, accuracy: matches / elements };
}

let seed = 7100;
/** Rounded to float32 first, so the reference sees exactly what the GPU sees (p > 0.5 included). */
const f32 = (a: Float64Array): Float64Array => Float64Array.from(Float32Array.from(a));

describe("element-wise loss metrics match Keras", () => {
  for (const kind of ["mse", "bce"] as const) {
    for (const K of [1, 2, 10]) {
      // Two steps into one metrics buffer, as in an epoch: a full ragged batch, then a padded one.
      for (const [B, nValids] of [[97, [97, 70]], [130, [129, 3]]] as const) {
        it(`${kind} K=${K} B=${B} n_valid=${nValids.join(",")}`, async () => {
          const metrics = e.tensor([0, 0, 0], [3], "f32", "metrics");
          const batches: { pred: Float64Array; truth: Float64Array; nValid: number }[] = [];
          for (const nValid of nValids) {
            const pred = f32(kind === "bce" ? randomArray(B * K, seed++, 0.01, 0.99) : randomArray(B * K, seed++, -2, 2));
            // BCE: hard 0/1 targets (Keras's binary accuracy compares the thresholded prediction to them)
            const truth = kind === "bce" ? randomArray(B * K, seed++, 0, 1).map((v) => (v < 0.4 ? 1 : 0)) : f32(randomArray(B * K, seed++, -1, 1));
            batches.push({ pred, truth, nValid });
            const loss = e.empty([B], "f32", "loss");
            const dpred = e.empty([B, K], "f32", "dpred");
            const io = { pred: e.tensor(pred, [B, K]).buffer, truth: e.tensor(truth, [B, K]).buffer, loss: loss.buffer, dpred: dpred.buffer, metrics: metrics.buffer };
            await e.run([await elementLoss(e, kind, io, B, K, nValid)]);
            // per-example loss (mean over K) and the gradient of the batch-mean loss, padding rows zero
            const r = kind === "mse" ? ref.meanSquaredError(pred, truth, B, K, nValid) : ref.binaryCrossentropy(pred, truth, B, K, nValid);
            expectRelClose(await loss.read(), r.loss, 1e-5, "per-example loss");
            expectRelClose(await dpred.read(), "dpred" in r ? r.dpred : r.dprob, 1e-5, "dpred");
          }
          const [sum, correct, count] = await metrics.read();
          const keras = kerasFigures(kind, batches, K);
          const elements = nValids.reduce((a, n) => a + n, 0) * K;
          expectRelClose([sum! / count!], [keras.loss], 1e-5, "reported loss (sum / count)");
          expect(count).toBe(elements); // count counts elements, the unit both figures average over
          if (kind === "bce") expect(correct! / count!).toBe(keras.accuracy);
          else expect(correct).toBe(0);
        });
      }
    }
  }

  it("BCE with soft targets: the reported loss is still the mean over all elements", async () => {
    const [B, K, nValid] = [67, 3, 50];
    const pred = f32(randomArray(B * K, seed++, 0.01, 0.99));
    const truth = f32(randomArray(B * K, seed++, 0, 1));
    const metrics = e.tensor([0, 0, 0], [3], "f32", "metrics");
    const io = { pred: e.tensor(pred, [B, K]).buffer, truth: e.tensor(truth, [B, K]).buffer, loss: e.empty([B]).buffer, dpred: e.empty([B, K]).buffer, metrics: metrics.buffer };
    await e.run([await elementLoss(e, "bce", io, B, K, nValid)]);
    const [sum, , count] = await metrics.read();
    expectRelClose([sum! / count!], [kerasFigures("bce", [{ pred, truth, nValid }], K).loss], 1e-5, "reported loss");
  });
});
