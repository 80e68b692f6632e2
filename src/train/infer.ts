// Evaluation and prediction on inference plans (no gradients, moving statistics, no dropout).
import { shown } from "../args.ts";
import { ConfigError } from "../errors.ts";
import type { Dataset } from "../plan/plan.ts";
import type { Logs, Triple } from "./metrics.ts";
import type { Session } from "./session.ts";

export function checkBatchSize(B: unknown, n: number, what = "batchSize"): number {
  if (typeof B !== "number" || !Number.isInteger(B) || B < 1) throw new ConfigError(`${what} must be a positive integer, got ${shown(B)}`);
  return Math.min(B, n);
}

/** Loss and metric sums over a whole dataset, one readback at the end. */
export function evaluateDataset(s: Session, ds: Dataset, B: number): Promise<Triple> {
  return s.use(B, false, async (plan) => {
    s.metrics.clear(s.metrics.eval);
    for (let offset = 0; offset < ds.n; offset += plan.B) {
      await plan.step(ds, offset, Math.min(plan.B, ds.n - offset), "eval");
      if ((offset / plan.B) % 4 === 3) await s.engine.device.queue.onSubmittedWorkDone();
    }
    return s.metrics.read(s.metrics.eval);
  });
}

export async function evaluate(s: Session, x: unknown, y: unknown, o: { batchSize?: number; inputScale?: number } = {}): Promise<Logs> {
  const ds = s.dataset(x, y, scaleOf(o.inputScale));
  try {
    return s.metrics.logsOf(await evaluateDataset(s, ds, checkBatchSize(o.batchSize === undefined ? 32 : o.batchSize, ds.n))) as Logs;
  } finally {
    s.release(ds);
  }
}

/** Model outputs (probabilities when the model ends in softmax), N × outputs, row-major. */
export async function predict(s: Session, x: unknown, o: { batchSize?: number; inputScale?: number } = {}): Promise<Float32Array> {
  const e = s.engine;
  const ds = s.dataset(x, undefined, scaleOf(o.inputScale), "x", "none");
  const row = s.output.size;
  let out: GPUBuffer | undefined;
  try {
    out = e.createBuffer(ds.n * row * 4, "predictions", false, "dataset");
    const dst = out;
    return await s.use(checkBatchSize(o.batchSize === undefined ? 32 : o.batchSize, ds.n), false, async (plan) => {
      for (let offset = 0; offset < ds.n; offset += plan.B) {
        const n = Math.min(plan.B, ds.n - offset);
        const src = plan.predictions;
        await plan.step(ds, offset, n, "predict", 0, (enc) => enc.copyBufferToBuffer(src.buffer, src.offset ?? 0, dst, offset * row * 4, n * row * 4));
      }
      return new Float32Array(await e.read(dst, ds.n * row * 4));
    });
  } finally {
    out?.destroy();
    s.release(ds);
  }
}

export function scaleOf(v: unknown): number {
  if (v === undefined) return 1 / 255;
  if (typeof v !== "number" || !Number.isFinite(v)) throw new ConfigError(`inputScale must be a finite number (the factor applied to Uint8Array inputs; default 1/255), got ${String(v)}`);
  return v;
}
