// Keras's per-batch calls: trainOnBatch, testOnBatch and predictOnBatch. A call checks its batch on the
// CPU, writes it into buffers kept for batches of that shape, and records one step into one encoder with
// one submit. Nothing is read back unless the caller awaits the result: the step copies its loss and
// accuracy sums into a ring on the GPU, and awaiting maps that entry. Once a batch shape is warm (plan,
// buffers and gathers built) a call allocates no GPU memory and submits before it returns; a call made
// while earlier ones are still being prepared copies its batch and queues behind them, so order is kept.
import { ConfigError, GpuError } from "../errors.ts";
import { BufferUsage, MapMode } from "../gpu/flags.ts";
import type { Dataset, Plan } from "../plan/plan.ts";
import { hostData, writeDataset, type HostData } from "./dataset.ts";
import type { Trainee } from "./fit.ts";
import { scaleOf } from "./infer.ts";
import type { Logs, Triple } from "./metrics.ts";
import type { Session } from "./session.ts";

/** Results of unawaited calls held on the GPU; awaiting one older than this many calls is refused. */
export const RESULT_RING = 256;
/** Batch shapes whose buffers are kept (a new one beyond this frees the least recently used). */
const SHAPES_KEPT = 4;
const NO_ORDER = new Uint32Array(0);

export interface BatchTrainee extends Trainee {
  /** Optimizer steps between recovery snapshots in per-batch training (0: none). */
  recoverySnapshotEvery: number;
}

type Mode = "train" | "eval" | "predict";

/** A promise whose work starts only when something awaits it (or calls then/catch/finally). */
class OnDemand<T> implements Promise<T> {
  readonly [Symbol.toStringTag] = "Promise";
  private started?: Promise<T>;

  constructor(private readonly work: () => Promise<T>) {}

  private get promise(): Promise<T> {
    return (this.started ??= this.work());
  }

  then<A = T, B = never>(onFulfilled?: ((v: T) => A | PromiseLike<A>) | null, onRejected?: ((e: unknown) => B | PromiseLike<B>) | null): Promise<A | B> {
    return this.promise.then(onFulfilled, onRejected);
  }

  catch<B = never>(onRejected?: ((e: unknown) => B | PromiseLike<B>) | null): Promise<T | B> {
    return this.promise.catch(onRejected);
  }

  finally(onFinally?: (() => void) | null): Promise<T> {
    return this.promise.finally(onFinally);
  }
}

/** Where a step left its sums: entry `index` of the session's ring. */
interface Written {
  session: Session;
  index: number;
}

export class BatchRunner {
  /** Calls that could not run at once (a plan or buffers to build, a device to recover), in order. */
  private tail: Promise<unknown> = Promise.resolve();
  private queued = 0;
  /** The session the buffers below belong to. */
  private session?: Session;
  private readonly shapes = new Map<string, Dataset>();
  private ring?: GPUBuffer;
  private written = 0;
  private readonly staging: GPUBuffer[] = [];
  private readonly predictStaging = new Map<number, GPUBuffer[]>();
  /** A failed step whose result nobody awaited: the next call reports it. */
  private failure?: unknown;
  /** Marks the recovery snapshots per-batch training takes. */
  private readonly run = {};

  constructor(private readonly m: BatchTrainee) {}

  /** True while calls wait in the queue (fit() must not start then). */
  get busy(): boolean {
    return this.queued > 0;
  }

  train(x: unknown, y: unknown, o: { inputScale?: number }): Promise<Logs> {
    return this.sums(x, y, o, "train");
  }

  test(x: unknown, y: unknown, o: { inputScale?: number }): Promise<Logs> {
    return this.sums(x, y, o, "eval");
  }

  /** The outputs must come back, so this call always reads (one map). */
  async predict(x: unknown, o: { inputScale?: number }): Promise<Float32Array> {
    this.reportFailure();
    const scale = scaleOf(o.inputScale);
    const h = hostData(this.m.session, x, undefined, "x", "none");
    return this.schedule(h, scale, "predict", (s, plan, ds, batch) => this.predictStep(s, plan, ds, batch));
  }

  /** trainOnBatch and testOnBatch: submit now (or queue), read the sums only when awaited. */
  private sums(x: unknown, y: unknown, o: { inputScale?: number }, mode: "train" | "eval"): Promise<Logs> {
    try {
      this.reportFailure();
      const scale = scaleOf(o.inputScale);
      const h = hostData(this.m.session, x, y, "x", "required");
      const written = this.schedule(h, scale, mode, (s, plan, ds, batch) => this.step(s, plan, ds, batch, mode));
      let awaited = false;
      written.catch((e: unknown) => {
        if (!awaited) this.failure ??= e;
      });
      return new OnDemand(async () => {
        awaited = true;
        let w: Written;
        try {
          w = await written;
        } catch (e) {
          if (this.failure === e) this.failure = undefined; // reported here, not again by the next call
          throw e;
        }
        return this.read(w);
      });
    } catch (e) {
      return Promise.reject(e);
    }
  }

  private reportFailure(): void {
    if (this.failure === undefined) return;
    const f = this.failure;
    this.failure = undefined;
    throw f;
  }

  /**
   * Runs `work` at once when nothing is queued and the plan, buffers and gathers for this batch are warm
   * (it then submits before returning); otherwise copies the batch and queues the work behind the others.
   */
  private schedule<T>(h: HostData, scale: number, mode: Mode, work: (s: Session, plan: Plan, ds: Dataset, h: HostData) => Promise<T>): Promise<T> {
    const s = this.m.session;
    const training = mode === "train";
    if (this.queued === 0 && !s.engine.gpu.lost && this.session === s) {
      const plan = s.readyPlan(h.n, training);
      const ds = this.shapes.get(keyOf(h, scale));
      if (plan && ds && plan.warm(ds, mode)) return work(s, plan, ds, h);
    }
    const batch = copyHost(h);
    this.queued++;
    const out = this.tail.then(async () => {
      try {
        if (this.m.session.engine.gpu.lost) await this.recover();
        const s = this.m.session;
        return await s.use(batch.n, training, (plan) => work(s, plan, this.shapeFor(s, batch, scale), batch));
      } finally {
        this.queued--;
      }
    });
    this.tail = out.catch(() => undefined);
    return out;
  }

  /** The buffers for batches shaped like `h` on session `s`. */
  private shapeFor(s: Session, h: HostData, scale: number): Dataset {
    this.adopt(s);
    const key = keyOf(h, scale);
    let ds = this.shapes.get(key);
    if (ds) this.shapes.delete(key); // most recently used last
    else ds = s.batchDataset(h, scale);
    this.shapes.set(key, ds);
    for (const old of [...this.shapes.keys()].slice(0, Math.max(0, this.shapes.size - SHAPES_KEPT))) {
      s.release(this.shapes.get(old)!);
      this.shapes.delete(old);
    }
    return ds;
  }

  /** Drops what belonged to an earlier session (compiled again, or lost): its datasets went with it. */
  private adopt(s: Session): void {
    if (this.session === s) return;
    this.release();
    this.session = s;
  }

  private release(): void {
    this.shapes.clear();
    this.ring?.destroy();
    this.ring = undefined;
    for (const b of this.staging.splice(0)) b.destroy();
    for (const list of this.predictStaging.values()) for (const b of list) b.destroy();
    this.predictStaging.clear();
  }

  /** One step: write the batch, set the step's uniforms, record, copy the sums into the ring, submit. */
  private step(s: Session, plan: Plan, ds: Dataset, h: HostData, mode: "train" | "eval"): Promise<Written> {
    const e = s.engine;
    const ring = (this.ring ??= e.createBuffer(RESULT_RING * 16, "per-batch results", false, "other"));
    writeDataset(e, ds, h);
    const metrics = mode === "train" ? s.metrics.train : s.metrics.eval;
    s.metrics.clear(metrics);
    const index = this.written++;
    const t = this.m.step + 1;
    const recovery = mode === "train" ? this.m.recovery() : undefined;
    if (mode === "train") s.optimizer.prepare(t);
    const submitted = plan.step(ds, 0, h.n, mode, t, (enc) => {
      enc.copyBufferToBuffer(metrics, 0, ring, (index % RESULT_RING) * 16, 12);
      recovery?.maybeTake(enc, this.m.recoverySnapshotEvery, { epoch: 0, step: 0, t }, NO_ORDER, () => undefined, this.run);
    });
    // Counted now, not after an await: a call made before this one resolves takes the next step.
    if (mode === "train") this.m.step = t;
    return submitted.then(() => ({ session: s, index }));
  }

  private async predictStep(s: Session, plan: Plan, ds: Dataset, h: HostData): Promise<Float32Array> {
    const e = s.engine;
    writeDataset(e, ds, h);
    const bytes = h.n * s.output.size * 4;
    const free = this.predictStaging.get(bytes) ?? [];
    this.predictStaging.set(bytes, free);
    const staging = free.pop() ?? e.device.createBuffer({ label: "predictOnBatch readback", size: bytes, usage: BufferUsage.MAP_READ | BufferUsage.COPY_DST });
    const src = plan.predictions;
    try {
      await plan.step(ds, 0, h.n, "predict", 0, (enc) => enc.copyBufferToBuffer(src.buffer, src.offset ?? 0, staging, 0, bytes));
      await mapOrLost(staging, e);
      const out = new Float32Array(staging.getMappedRange().slice(0));
      staging.unmap();
      return out;
    } finally {
      if (staging.mapState === "unmapped" && this.session === s) free.push(staging);
      else staging.destroy();
    }
  }

  /** Maps one ring entry: the loss and accuracy of the call that wrote it. */
  private async read(w: Written): Promise<Logs> {
    const s = w.session;
    if (this.written - w.index > RESULT_RING) {
      throw new ConfigError(`this result was overwritten: ${RESULT_RING} later per-batch calls have run since it; await each result within ${RESULT_RING} calls`);
    }
    if (s !== this.session || s.engine.gpu.lost || !this.ring) throw lostError();
    const e = s.engine;
    const staging = this.staging.pop() ?? e.device.createBuffer({ label: "per-batch result readback", size: 16, usage: BufferUsage.MAP_READ | BufferUsage.COPY_DST });
    try {
      const enc = e.device.createCommandEncoder({ label: "read a per-batch result" });
      enc.copyBufferToBuffer(this.ring, (w.index % RESULT_RING) * 16, staging, 0, 16);
      e.device.queue.submit([enc.finish()]);
      await mapOrLost(staging, e);
      const [sum, correct, count] = new Float32Array(staging.getMappedRange(0, 12).slice(0));
      staging.unmap();
      return s.metrics.logsOf([sum, correct, count] as Triple) as Logs;
    } finally {
      if (staging.mapState === "unmapped" && this.session === s) this.staging.push(staging);
      else staging.destroy();
    }
  }

  /**
   * After a device loss: a new session on a new device from the model's last recovery snapshot, and an
   * error that says which step the model is back at, so the caller can train the batches since again.
   */
  private async recover(): Promise<never> {
    const m = this.m;
    const recovery = m.recovery();
    const snap = recovery.latest(); // throws when no snapshot landed
    const lostAt = m.step;
    m.session = await recovery.restore(m.engineOptions);
    m.step = snap.position.t;
    this.adopt(m.session);
    throw new GpuError(
      `the device was lost at training step ${lostAt}; the model was restored on a new device (${m.session.engine.describe()}) from its last recovery snapshot, at step ${snap.position.t}: train the ${lostAt - snap.position.t} batches since then again (model.step says where training is; model.recoverySnapshotEvery sets how often snapshots are taken)`,
    );
  }

  destroy(): void {
    this.release();
    this.session = undefined;
  }
}

function lostError(): GpuError {
  return new GpuError("the device was lost before this result was read; the next call restores the model from its last recovery snapshot");
}

async function mapOrLost(b: GPUBuffer, e: { gpu: { lost: boolean } }): Promise<void> {
  try {
    await b.mapAsync(MapMode.READ);
  } catch (err) {
    if (e.gpu.lost) throw lostError();
    throw err;
  }
}

/** What a batch's buffers depend on: its example count, its inputs' kinds, the scale (in the gathers), its targets. */
function keyOf(h: HostData, scale: number): string {
  return `${h.n}|${h.xs.map((x) => (x instanceof Uint8Array ? "u8" : "f32")).join(",")}|${scale}|${h.targets?.kind ?? "-"}`;
}

/** A copy of a batch for a call that runs later (the caller may reuse its arrays at once). */
function copyHost(h: HostData): HostData {
  return { n: h.n, xs: h.xs.map((x) => x.slice()), targets: h.targets && { ...h.targets, data: h.targets.data.slice() } };
}
