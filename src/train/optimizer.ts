// Optimizers: configuration checked on the CPU (a bad rate never reaches the GPU), the update over the
// weight store's trainable prefix as one dispatch, its slots (Adam's m and v, SGD's velocity), and the
// per-step learning rate.
import type { Engine } from "../engine.ts";
import { shown } from "../args.ts";
import { ConfigError, DataError } from "../errors.ts";
import type { Dispatch } from "../gpu/registry.ts";
import * as K from "../kernels.ts";
import type { WeightStore } from "../plan/weights.ts";

/** A learning rate: fixed, a function of the (0-based) step, or Keras' exponential decay. */
export type LearningRate = number | ((step: number) => number) | { initial: number; decayRate: number; decaySteps: number; staircase?: boolean };

export type OptimizerConfig =
  | "adam"
  | "sgd"
  | { type: "adam"; learningRate?: LearningRate; beta1?: number; beta2?: number; epsilon?: number }
  | { type: "sgd"; learningRate?: LearningRate; momentum?: number };

export interface OptimizerSpec {
  kind: "adam" | "sgd";
  lr: (step: number) => number;
  beta1: number;
  beta2: number;
  eps: number;
  momentum: number;
}

function finite(v: unknown, what: string, ok: (x: number) => boolean, need: string): number {
  if (typeof v !== "number" || !Number.isFinite(v) || !ok(v)) throw new ConfigError(`optimizer: ${what} must be ${need}, got ${shown(v)}`);
  return v;
}

/** Checks an optimizer configuration and resolves its defaults (Keras's). */
export function optimizerOf(o: OptimizerConfig): OptimizerSpec {
  const cfg = typeof o === "string" ? { type: o } : o;
  if (!cfg || typeof cfg !== "object" || (cfg.type !== "adam" && cfg.type !== "sgd")) throw new ConfigError(`unknown optimizer ${shown((cfg as { type?: unknown })?.type ?? cfg)}; use "adam", "sgd" or { type: "adam" | "sgd", ... }`);
  const lrOf = (v: LearningRate | undefined, dflt: number): ((step: number) => number) => {
    if (v === undefined) return () => dflt;
    if (typeof v === "number") {
      finite(v, "learningRate", (x) => x > 0, "a positive number");
      return () => v;
    }
    if (typeof v === "function") return v;
    if (typeof v !== "object" || v === null) throw new ConfigError(`optimizer: learningRate must be a number, a function of the step, or { initial, decayRate, decaySteps }, got ${shown(v)}`);
    finite(v.initial, "learningRate.initial", (x) => x > 0, "a positive number");
    finite(v.decayRate, "learningRate.decayRate", (x) => x > 0, "a positive number");
    finite(v.decaySteps, "learningRate.decaySteps", (x) => x > 0, "a positive number");
    if (v.staircase !== undefined && typeof v.staircase !== "boolean") throw new ConfigError(`optimizer: learningRate.staircase must be true or false, got ${shown(v.staircase)}`);
    return (step) => v.initial * v.decayRate ** (v.staircase ? Math.floor(step / v.decaySteps) : step / v.decaySteps);
  };
  if (cfg.type === "adam") {
    const a = cfg as Extract<OptimizerConfig, { type: "adam" }>;
    return {
      kind: "adam",
      lr: lrOf(a.learningRate, 1e-3),
      beta1: finite(a.beta1 ?? 0.9, "beta1", (x) => x >= 0 && x < 1, "in [0, 1)"),
      beta2: finite(a.beta2 ?? 0.999, "beta2", (x) => x >= 0 && x < 1, "in [0, 1)"),
      eps: finite(a.epsilon ?? 1e-7, "epsilon", (x) => x > 0, "a positive number"),
      momentum: 0,
    };
  }
  const s = cfg as Extract<OptimizerConfig, { type: "sgd" }>;
  return { kind: "sgd", lr: lrOf(s.learningRate, 0.01), beta1: 0, beta2: 0, eps: 0, momentum: finite(s.momentum ?? 0, "momentum", (x) => x >= 0 && x < 1, "in [0, 1)") };
}

/** The update dispatch and its slots for one weight store. */
export class Optimizer {
  readonly slots: GPUBuffer[];
  private constructor(
    readonly spec: OptimizerSpec,
    readonly update: Dispatch,
    slots: GPUBuffer[],
  ) {
    this.slots = slots;
  }

  static async create(engine: Engine, store: WeightStore, spec: OptimizerSpec): Promise<Optimizer> {
    const n = Math.max(store.trainableSize, 1);
    const slots = (spec.kind === "adam" ? ["adam m", "adam v"] : ["sgd velocity"]).map((label) => engine.createBuffer(store.size * 4, label, false));
    const io = { w: store.params, g: store.grads, decay: store.decay };
    const update =
      spec.kind === "adam"
        ? await K.adamUpdate(engine, { ...io, m: slots[0]!, v: slots[1]! }, n, { lr_t: spec.lr(0), beta1: spec.beta1, beta2: spec.beta2, eps: spec.eps })
        : await K.sgdUpdate(engine, { ...io, vel: slots[0]! }, n, spec.lr(0), spec.momentum);
    return new Optimizer(spec, update, slots);
  }

  /** Sets the learning rate for optimizer step t (1-based); a schedule that gives a bad rate stops here. */
  prepare(t: number): void {
    const lr = this.spec.lr(t - 1);
    if (typeof lr !== "number" || !Number.isFinite(lr) || lr < 0) throw new DataError(`the learning rate schedule gave ${shown(lr)} at step ${t - 1}; it must give finite numbers ≥ 0`);
    if (this.spec.kind === "adam") this.update.setUniforms({ lr_t: K.adamRate(lr, this.spec.beta1, this.spec.beta2, t) });
    else this.update.setUniforms({ lr });
  }

  destroy(): void {
    this.update.destroy();
    for (const s of this.slots) s.destroy();
  }
}
