// A compiled model on one device: its graph, weights, optimizer, metric accumulators and plans. The
// fit loop and evaluation run on a session; recovery replaces a lost session with a new one.
import { Engine } from "../engine.ts";
import type { Node, SymbolicTensor } from "../graph/graph.ts";
import { Plan, type Dataset, type LossName, type PlanGraph } from "../plan/plan.ts";
import { WeightStore } from "../plan/weights.ts";
import { allocateDataset, uploadDataset, type DatasetSpec, type HostData } from "./dataset.ts";
import { Metrics } from "./metrics.ts";
import { Optimizer, type OptimizerSpec } from "./optimizer.ts";

export interface SessionSpec {
  graph: PlanGraph;
  /** Every parameter and state tensor, in the order weights are listed. */
  weights: readonly SymbolicTensor[];
  loss: LossName;
  optimizer: OptimizerSpec;
}

interface PlanEntry {
  plan: Promise<Plan>;
  /** The plan once built. */
  ready?: Plan;
  users: number;
  evicted: boolean;
}

/** Plans kept per kind (training, inference): the batch sizes in use; older ones are destroyed. */
const PLANS_KEPT = 2;

export class Session implements DatasetSpec {
  readonly store: WeightStore;
  readonly metrics: Metrics;
  private readonly plans = new Map<string, PlanEntry>();
  private readonly datasets = new Set<Dataset>();

  private constructor(
    readonly engine: Engine,
    readonly spec: SessionSpec,
    readonly optimizer: Optimizer,
    store: WeightStore,
  ) {
    this.store = store;
    this.metrics = new Metrics(engine, spec.loss);
  }

  static async create(engine: Engine, spec: SessionSpec): Promise<Session> {
    const store = new WeightStore(engine, spec.weights);
    try {
      return new Session(engine, spec, await Optimizer.create(engine, store, spec.optimizer), store);
    } catch (e) {
      store.destroy();
      throw e;
    }
  }

  get inputs(): readonly SymbolicTensor[] {
    return this.spec.graph.inputs;
  }
  get output(): SymbolicTensor {
    return this.spec.graph.output;
  }
  get loss(): LossName {
    return this.spec.loss;
  }
  get nodes(): readonly Node[] {
    return this.spec.graph.nodes;
  }

  /**
   * The plan for a batch size and kind, built once. A third batch size of the same kind evicts the least
   * recently used one; a plan in use (see use()) is destroyed only once its last user is done.
   */
  plan(B: number, training: boolean): Promise<Plan> {
    return this.entry(B, training).plan;
  }

  /**
   * The plan for (B, training) if it is built and kept, without waiting (marked most recently used). A
   * step encoded and submitted before the caller next awaits may use it: eviction destroys plans later.
   */
  readyPlan(B: number, training: boolean): Plan | undefined {
    const key = `${training ? "train" : "infer"} ${B}`;
    const entry = this.plans.get(key);
    if (!entry?.ready) return undefined;
    this.plans.delete(key);
    this.plans.set(key, entry);
    return entry.ready;
  }

  /** Runs `work` on the plan for (B, training), which stays alive until `work` is done. */
  async use<T>(B: number, training: boolean, work: (plan: Plan) => Promise<T>): Promise<T> {
    const entry = this.entry(B, training);
    entry.users++;
    try {
      return await work(await entry.plan);
    } finally {
      entry.users--;
      if (entry.evicted && entry.users === 0) void entry.plan.then((p) => p.destroy()).catch(() => undefined);
    }
  }

  private entry(B: number, training: boolean): PlanEntry {
    const key = `${training ? "train" : "infer"} ${B}`;
    let entry = this.plans.get(key);
    if (entry) {
      this.plans.delete(key); // most recently used last
      this.plans.set(key, entry);
      return entry;
    }
    const plan = Plan.build(this.engine, { graph: this.spec.graph, weights: this.store, B, training, loss: this.spec.loss, metrics: training ? this.metrics.train : this.metrics.eval, update: training ? this.optimizer.update : undefined });
    const made: PlanEntry = { plan, users: 0, evicted: false };
    entry = made;
    this.plans.set(key, entry);
    plan.then((p) => (made.ready = p)).catch(() => this.plans.delete(key));
    const same = [...this.plans.keys()].filter((k) => k.startsWith(training ? "train" : "infer"));
    for (const old of same.slice(0, Math.max(0, same.length - PLANS_KEPT))) this.evict(old);
    return entry;
  }

  private evict(key: string): void {
    const entry = this.plans.get(key)!;
    this.plans.delete(key);
    entry.evicted = true;
    if (entry.users === 0) void entry.plan.then((p) => p.destroy()).catch(() => undefined);
  }

  /** A plan built outside the cache (the caller destroys it). */
  unpackedPlan(B: number): Promise<Plan> {
    return Plan.build(this.engine, { graph: this.spec.graph, weights: this.store, B, training: false, loss: this.spec.loss, metrics: this.metrics.eval, pack: false });
  }

  dataset(x: unknown, y: unknown, scale: number, what = "x", targets: "required" | "none" = "required"): Dataset {
    const ds = uploadDataset(this.engine, this, x, y, scale, what, targets);
    this.datasets.add(ds);
    return ds;
  }

  /** Buffers for data shaped like `h`, to be written again and again (per-batch calls); released like a dataset. */
  batchDataset(h: HostData, scale: number): Dataset {
    const ds = allocateDataset(this.engine, this, h, scale);
    this.datasets.add(ds);
    return ds;
  }

  release(ds: Dataset): void {
    if (!this.datasets.delete(ds)) return;
    for (const e of this.plans.values()) void e.plan.then((plan) => plan.forget(ds)).catch(() => undefined);
    if (!this.engine.gpu.lost) {
      for (const x of ds.inputs) x.buffer.destroy();
      ds.targets?.buffer.destroy();
      ds.order.destroy();
    }
  }

  destroy(): void {
    for (const ds of [...this.datasets]) this.release(ds);
    for (const e of this.plans.values()) void e.plan.then((plan) => plan.destroy()).catch(() => undefined);
    this.plans.clear();
    this.optimizer.destroy();
    this.metrics.destroy();
    this.store.destroy();
  }
}
