// What runs only to explain something: the divergence diagnosis (fit's stopOnNonFinite) and per-kernel GPU
// times (model.kernelTimes). Neither is on the way of a training step, so the core imports this module
// when one is first needed, and the library build ships it as a file of its own (dist/lib/diagnostics.js).
//
// Kernel times come from timestamp queries: the plan's forward, loss and backward dispatches replayed each
// in its own compute pass. The replay leaves training as it was: the optimizer is not run, the loss sums
// and the moving statistics (BatchNorm) are saved before and restored after, and gradients are rewritten
// by every real step anyway.
import { DivergenceError } from "../errors.ts";
import { BufferUsage, MapMode } from "../gpu/flags.ts";
import type { Dataset } from "../plan/plan.ts";
import type { Session } from "./session.ts";

export interface KernelTime {
  label: string;
  ms: number;
}

/** Undefined where the device lacks the timestamp-query feature. */
export async function kernelTimes(s: Session, B: number): Promise<KernelTime[] | undefined> {
  const device = s.engine.device;
  if (!device.features.has("timestamp-query")) return undefined;
  return s.use(B, true, async (plan) => {
    const dispatches = [...plan.forward, plan.loss, ...plan.backward];
    const count = 2 * dispatches.length;
    const kept = [s.metrics.train, s.store.state];
    const made: { destroy(): void }[] = [];
    const buffer = (d: GPUBufferDescriptor) => {
      const b = device.createBuffer(d);
      made.push(b);
      return b;
    };
    try {
      const querySet = device.createQuerySet({ label: "kernel timestamps", type: "timestamp", count });
      made.push(querySet);
      const resolved = buffer({ label: "kernel timestamps (resolved)", size: 8 * count, usage: BufferUsage.QUERY_RESOLVE | BufferUsage.COPY_SRC });
      const readback = buffer({ label: "kernel timestamps (read)", size: 8 * count, usage: BufferUsage.MAP_READ | BufferUsage.COPY_DST });
      const saved = kept.map((k) => buffer({ label: `saved ${k.label}`, size: k.size, usage: BufferUsage.COPY_SRC | BufferUsage.COPY_DST }));
      const encoder = device.createCommandEncoder({ label: "kernel timing" });
      kept.forEach((k, i) => encoder.copyBufferToBuffer(k, 0, saved[i]!, 0, k.size));
      dispatches.forEach((d, i) => {
        const pass = encoder.beginComputePass({ label: d.label, timestampWrites: { querySet, beginningOfPassWriteIndex: 2 * i, endOfPassWriteIndex: 2 * i + 1 } });
        d.encode(pass);
        pass.end();
      });
      kept.forEach((k, i) => encoder.copyBufferToBuffer(saved[i]!, 0, k, 0, k.size));
      encoder.resolveQuerySet(querySet, 0, count, resolved, 0);
      encoder.copyBufferToBuffer(resolved, 0, readback, 0, 8 * count);
      device.queue.submit([encoder.finish()]);
      await readback.mapAsync(MapMode.READ);
      const t = new BigUint64Array(readback.getMappedRange().slice(0));
      readback.unmap();
      s.engine.throwIfFailed();
      return dispatches.map((d, i) => ({ label: d.label, ms: Number(t[2 * i + 1]! - t[2 * i]!) / 1e6 }));
    } finally {
      for (const b of made) b.destroy();
    }
  });
}

/**
 * With stopOnNonFinite: finds the first layer whose weights, or output on `batch`, are non-finite, and
 * throws a DivergenceError naming it. Outputs come from a plan that shares no memory, so every one is intact.
 */
export async function diagnose(s: Session, train: Dataset, B: number, offset: number, t: number): Promise<never> {
  const weights = await s.store.read();
  for (const w of weights) {
    const bad = w.data.findIndex((v) => !Number.isFinite(v));
    if (bad >= 0) {
      const [layer, role] = w.name.split("/");
      throw new DivergenceError(`training diverged at step ${t}: layer ${layer}'s ${role} [${w.shape}] holds ${w.data[bad]} (element ${bad}); lower the learning rate, or scale the inputs`);
    }
  }
  const plan = await s.unpackedPlan(B);
  try {
    await plan.step(train, offset, Math.min(B, train.n - offset), "eval");
    for (const n of s.nodes) {
      const b = plan.activation(n.output)!;
      const values = new Float32Array(await s.engine.read(b.buffer, b.size!, b.offset));
      const bad = values.findIndex((v) => !Number.isFinite(v));
      if (bad >= 0) throw new DivergenceError(`training diverged at step ${t}: layer ${n.owner.name} (${n.owner.kind}) output [${B}, ${n.output.shape}] holds ${values[bad]} at element ${bad}; lower the learning rate, or check the inputs for extreme values`);
    }
  } finally {
    plan.destroy();
  }
  throw new DivergenceError(`training diverged at step ${t}: the loss is not finite although every layer's output is; check the targets for NaN or values outside the loss's range`);
}
