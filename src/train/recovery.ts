// Device-loss recovery for a model: snapshots of weights, state, optimizer slots, metrics and position on a
// schedule of optimizer steps (copied inside a step's encoder, mapped asynchronously, so nothing stalls),
// and, when the device is lost, a new session on a new device restored from the last snapshot. One lives
// as long as the model's session, across fit() and per-batch calls; each snapshot records which training
// run took it, so a fit() resumes only from its own.
import { Engine, type EngineOptions } from "../engine.ts";
import { GpuError } from "../errors.ts";
import { BufferUsage, MapMode } from "../gpu/flags.ts";
import { Session } from "./session.ts";

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
  state: Float32Array;
  slots: Float32Array[];
  metrics: Float32Array;
  order: Uint32Array;
  /** The fit loop's host-side state at that step (history so far), restored with it. */
  host: unknown;
  /** The training run that took it (a fit() call, or the per-batch calls): who may resume from it. */
  run: object;
}

export class Recovery {
  private staging!: GPUBuffer;
  private busy = false;
  private latestSnap?: Snapshot;

  constructor(private session: Session) {
    this.allocate();
  }

  /** The session snapshots are taken from (the restored one after a device loss). */
  get current(): Session {
    return this.session;
  }

  private get layout() {
    const s = this.session;
    const p = s.store.size * 4;
    return { p, st: s.store.stateSize * 4, slots: s.optimizer.slots.length };
  }

  private allocate(): void {
    const { p, st, slots } = this.layout;
    this.staging = this.session.engine.device.createBuffer({ label: "recovery snapshot staging", size: p * (1 + slots) + st + 16, usage: BufferUsage.MAP_READ | BufferUsage.COPY_DST });
    this.busy = false;
  }

  private encode(enc: GPUCommandEncoder): void {
    const s = this.session;
    const { p, st } = this.layout;
    [s.store.params, ...s.optimizer.slots].forEach((b, i) => enc.copyBufferToBuffer(b, 0, this.staging, i * p, p));
    const at = p * (1 + s.optimizer.slots.length);
    enc.copyBufferToBuffer(s.store.state, 0, this.staging, at, st);
    enc.copyBufferToBuffer(s.metrics.train, 0, this.staging, at + st, 16);
  }

  /** Maps the copy once it has run; `order` and `host` are already copies made when the snapshot was taken. */
  private async land(position: Position, order: Uint32Array, host: unknown, run: object): Promise<void> {
    const staging = this.staging;
    const { p, st, slots } = this.layout;
    try {
      await staging.mapAsync(MapMode.READ);
      const all = new Float32Array(staging.getMappedRange().slice(0));
      staging.unmap();
      const f = p / 4;
      const at = f * (1 + slots);
      this.latestSnap = {
        position: { ...position },
        params: all.slice(0, f),
        slots: Array.from({ length: slots }, (_, i) => all.slice((i + 1) * f, (i + 2) * f)),
        state: all.slice(at, at + st / 4),
        metrics: all.slice(at + st / 4, at + st / 4 + 4),
        order,
        host,
        run,
      };
    } catch {
      // The device was lost before the copy landed: keep the previous snapshot.
    } finally {
      if (staging === this.staging) this.busy = false;
    }
  }

  /** A snapshot now, waiting for it (at the start of a fit() long enough to reach its first scheduled one). */
  async takeNow(position: Position, order: Uint32Array, host: unknown, run: object): Promise<void> {
    while (this.busy) await this.session.engine.device.queue.onSubmittedWorkDone();
    const enc = this.session.engine.device.createCommandEncoder({ label: "recovery snapshot" });
    this.encode(enc);
    this.session.engine.device.queue.submit([enc.finish()]);
    this.busy = true;
    await this.land({ ...position }, order.slice(), structuredClone(host), run);
  }

  /**
   * At every `every`-th optimizer step (0: never): copies state within the step's encoder and maps it
   * after the submit. The schedule counts the model's steps, not calls.
   */
  maybeTake(enc: GPUCommandEncoder, every: number, position: Position, order: Uint32Array, host: () => unknown, run: object): void {
    if (every <= 0 || position.t % every !== 0 || this.busy) return;
    this.busy = true;
    this.encode(enc);
    // Copied now: by the time the map lands, the loop may have pushed an epoch's history or reshuffled.
    const [o, h] = [order.slice(), structuredClone(host())];
    queueMicrotask(() => void this.land({ ...position }, o, h, run)); // runs after the caller's submit
  }

  /** The latest snapshot, or undefined when none has landed. */
  peek(): Snapshot | undefined {
    return this.latestSnap;
  }

  latest(): Snapshot {
    if (!this.latestSnap) throw new GpuError("the device was lost before the first recovery snapshot landed; nothing to resume from — create the model again and refit");
    return this.latestSnap;
  }

  /**
   * A new session on a new device with the snapshot's weights, state and optimizer slots (the old
   * session's objects are gone with its device). The new engine takes compile()'s engineOptions, or where
   * the model was given an engine, that engine's own options.
   */
  async restore(engineOptions: EngineOptions | undefined): Promise<Session> {
    const snap = this.latest();
    const old = this.session;
    const engine = await Engine.create(engineOptions ?? old.engine.optionsForNewDevice);
    const session = await Session.create(engine, old.spec);
    session.store.adopt(old.store, { params: snap.params, state: snap.state }, snap.slots.map((src, i) => ({ src, dst: session.optimizer.slots[i]! })));
    engine.device.queue.writeBuffer(session.metrics.train, 0, snap.metrics as Float32Array<ArrayBuffer>);
    this.session = session;
    this.allocate();
    return session;
  }

  destroy(): void {
    this.staging.destroy();
  }
}
