// Per-kernel GPU times of a training step, from timestamp queries: the plan's forward, loss and backward
// dispatches replayed each in its own compute pass. The replay leaves training as it was: the optimizer
// is not run, the loss sums and the moving statistics (BatchNorm) are saved before and restored after,
// and gradients are rewritten by every real step anyway.
import { BufferUsage, MapMode } from "../gpu/flags.ts";
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
