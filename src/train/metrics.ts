// Loss and accuracy accumulators on the GPU ([loss sum, correct, count], added to by the loss kernels)
// and their readback: copied inside a step's encoder into one of two staging buffers and mapped
// asynchronously, so reading progress never stalls training.
import type { Engine } from "../engine.ts";
import { BufferUsage, MapMode } from "../gpu/flags.ts";
import type { LossName } from "../plan/plan.ts";

export interface Logs {
  loss: number;
  accuracy?: number;
  val_loss?: number;
  val_accuracy?: number;
  seconds?: number;
  [k: string]: number | undefined;
}

export type Triple = [sum: number, correct: number, count: number];

const ZEROS = new Float32Array(4);

export class Metrics {
  readonly train: GPUBuffer;
  readonly eval: GPUBuffer;
  private readonly staging: GPUBuffer[];
  private readonly busy = [false, false];

  constructor(
    readonly engine: Engine,
    private readonly loss: LossName,
  ) {
    this.train = engine.createBuffer(16, "metrics (train)", false);
    this.eval = engine.createBuffer(16, "metrics (eval)", false);
    this.staging = [0, 1].map((i) => engine.device.createBuffer({ label: `metrics staging ${i}`, size: 16, usage: BufferUsage.MAP_READ | BufferUsage.COPY_DST }));
  }

  /** Copies `metrics` into a free staging buffer within `encoder`; returns a reader, or undefined when both are busy. */
  snapshot(metrics: GPUBuffer, encoder: GPUCommandEncoder): (() => Promise<Triple>) | undefined {
    const i = this.busy.indexOf(false);
    if (i < 0) return undefined;
    this.busy[i] = true;
    const staging = this.staging[i]!;
    encoder.copyBufferToBuffer(metrics, 0, staging, 0, 12);
    return async () => {
      try {
        await staging.mapAsync(MapMode.READ);
        const [a, b, c] = new Float32Array(staging.getMappedRange(0, 12).slice(0));
        staging.unmap();
        return [a!, b!, c!];
      } finally {
        this.busy[i] = false;
      }
    };
  }

  /** Reads `metrics` now (one submit, one map). */
  async read(metrics: GPUBuffer): Promise<Triple> {
    // Wait for a staging buffer if both hold pending snapshots.
    while (!this.busy.includes(false)) await this.engine.device.queue.onSubmittedWorkDone();
    const encoder = this.engine.device.createCommandEncoder({ label: "read metrics" });
    const read = this.snapshot(metrics, encoder)!;
    this.engine.device.queue.submit([encoder.finish()]);
    const out = await read();
    this.engine.throwIfFailed();
    return out;
  }

  clear(metrics: GPUBuffer): void {
    this.engine.device.queue.writeBuffer(metrics, 0, ZEROS); // copied at the call: one array serves every step
  }

  /** Keras's figures: the mean loss, and accuracy for every loss but mean squared error. */
  logsOf([sum, correct, count]: Triple, prefix = ""): Partial<Logs> {
    const logs: Partial<Logs> = { [`${prefix}loss`]: sum / Math.max(count, 1) };
    if (this.loss !== "meanSquaredError") logs[`${prefix}accuracy`] = correct / Math.max(count, 1);
    return logs;
  }

  destroy(): void {
    for (const b of [this.train, this.eval, ...this.staging]) b.destroy();
  }
}
