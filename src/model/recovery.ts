// Snapshots of weights, optimizer state, metrics and position, taken every N steps without stalling
// (copied inside the step's encoder, mapped asynchronously), so fit can resume on a new device.
import { BufferUsage, MapMode } from "../gpu/flags.ts";
import type { Engine } from "../engine.ts";
import type { CompiledModel } from "./model.ts";

export interface Position {
  epoch: number;
  /** Steps of the epoch already done. */
  step: number;
  /** Optimizer steps taken. */
  t: number;
}

export interface Snapshot {
  position: Position;
  params: Float32Array;
  slots: Float32Array[];
  metrics: Float32Array;
  order: Uint32Array;
}

type Model = Pick<CompiledModel, "arena" | "metrics"> & { engine: Engine; slots: GPUBuffer[] };

export class Recovery {
  private staging!: GPUBuffer;
  private busy = false;
  private readonly snaps: [Snapshot, Snapshot];
  private have = false;

  constructor(
    private model: Model,
    examples: number,
    private readonly every: number,
  ) {
    const n = model.arena.size;
    const make = (): Snapshot => ({ position: { epoch: 0, step: 0, t: 0 }, params: new Float32Array(n), slots: model.slots.map(() => new Float32Array(n)), metrics: new Float32Array(4), order: new Uint32Array(examples) });
    this.snaps = [make(), make()];
    this.allocate();
  }

  private allocate(): void {
    const m = this.model;
    const bytes = (1 + m.slots.length) * m.arena.size * 4 + 16;
    this.staging = m.engine.device.createBuffer({ label: "recovery snapshot staging", size: bytes, usage: BufferUsage.MAP_READ | BufferUsage.COPY_DST });
    this.busy = false;
  }

  private encode(enc: GPUCommandEncoder): void {
    const m = this.model;
    const bytes = m.arena.size * 4;
    [m.arena.params, ...m.slots].forEach((b, i) => enc.copyBufferToBuffer(b, 0, this.staging, i * bytes, bytes));
    enc.copyBufferToBuffer(m.metrics.train, 0, this.staging, (1 + m.slots.length) * bytes, 16);
  }

  private async land(position: Position, order: Uint32Array): Promise<void> {
    const pending = this.snaps[1];
    pending.position = { ...position };
    pending.order.set(order);
    try {
      await this.staging.mapAsync(MapMode.READ);
    } catch {
      this.busy = false; // the device was lost before the copy landed; keep the previous snapshot
      return;
    }
    const all = new Float32Array(this.staging.getMappedRange());
    const n = this.model.arena.size;
    pending.params.set(all.subarray(0, n));
    pending.slots.forEach((s, i) => s.set(all.subarray((i + 1) * n, (i + 2) * n)));
    pending.metrics.set(all.subarray((1 + pending.slots.length) * n, (1 + pending.slots.length) * n + 4));
    this.staging.unmap();
    this.snaps[1] = this.snaps[0];
    this.snaps[0] = pending;
    this.have = true;
    this.busy = false;
  }

  /** A snapshot now, waiting for it (once, at the start of fit). */
  async takeNow(epoch: number, step: number, t: number, order: Uint32Array): Promise<void> {
    const enc = this.model.engine.device.createCommandEncoder({ label: "recovery snapshot" });
    this.encode(enc);
    this.model.engine.device.queue.submit([enc.finish()]);
    this.busy = true;
    await this.land({ epoch, step, t }, order);
  }

  /** Every `every` optimizer steps: copies state within the step's encoder and maps it after the submit. */
  maybeTake(enc: GPUCommandEncoder, position: Position, order: Uint32Array): void {
    if (this.every <= 0 || position.t % this.every !== 0 || this.busy) return;
    this.busy = true;
    this.encode(enc);
    queueMicrotask(() => void this.land(position, order)); // runs after the caller's submit
  }

  latest(): Snapshot {
    if (!this.have) throw new Error("no recovery snapshot was taken before the device was lost");
    return this.snaps[0];
  }

  /** Moves to the model's new device after a recovery. */
  rebind(model: Model): void {
    this.model = model;
    this.allocate();
  }

  destroy(): void {
    this.staging.destroy();
  }
}
