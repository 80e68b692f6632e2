// The playground page's settings, its messages to and from its worker, and what both sides (and the
// end-to-end test) must agree on: the grid the decision boundary is predicted on and the feature list.
import type { AdapterReport } from "../src/index.ts";
import type { BinaryReport, ToyName } from "../src/entry/data.ts";

/** The boundary is predicted on GRID × GRID points spanning [−EXTENT, EXTENT]² (the toy data, noise 0.1, lies within ±1.3). */
export const GRID = 64;
export const EXTENT = 1.3;
/** Points drawn per dataset (train and test together), as in TensorFlow Playground. */
export const POINTS = 500;

/** The five input features of fiveFeatures(), in its column order. */
export const FEATURES = ["x₁", "x₂", "x₁²", "x₂²", "x₁x₂"] as const;

export type HiddenActivation = "relu" | "tanh" | "sigmoid" | "linear";

/** What a change of requires a fresh network (and, for the data fields, fresh points). */
export interface Setup {
  dataset: ToyName;
  /** Standard deviation of the Gaussian noise added to each coordinate, 0..0.5. */
  noise: number;
  /** Share of the POINTS that are trained on; the rest are the test set. */
  trainRatio: number;
  /** Seeds the points (Regenerate adds one) and the initial weights (Reset adds one). */
  dataSeed: number;
  weightSeed: number;
  /** One flag per FEATURES entry; at least one is on. */
  features: boolean[];
  hiddenLayers: number;
  hiddenUnits: number;
  activation: HiddenActivation;
  /** L2 coefficient on the kernels (0: none). */
  l2: number;
}

/** What takes effect at the next step, without a reset. */
export interface Live {
  learningRate: number;
  batchSize: number;
}

/** The grid point (x, y) at the centre of heat-map pixel (i, j): column i from the left, row j from the top. */
export function gridPoint(i: number, j: number): [number, number] {
  const cell = (2 * EXTENT) / GRID;
  return [-EXTENT + (i + 0.5) * cell, EXTENT - (j + 0.5) * cell];
}

/** Weights and biases of the network a setup builds: F → hidden layers → Dense(1). */
export function parameterCount(s: Setup): number {
  const f = s.features.filter(Boolean).length;
  const u = s.hiddenUnits;
  return (f + 1) * u + (s.hiddenLayers - 1) * (u + 1) * u + u + 1;
}

export type ToWorker =
  | { type: "init"; setup: Setup; live: Live }
  /** A fresh network (and points) for `setup`; training goes on if it was running. */
  | { type: "setup"; setup: Setup }
  | { type: "live"; live: Live }
  | { type: "play" }
  | { type: "pause" }
  /** One optimizer step, then a frame (while paused). */
  | { type: "step" };

export type FromWorker =
  | { type: "adapter"; report: AdapterReport; description: string }
  | { type: "fatal"; message: string }
  | { type: "error"; message: string }
  /** The points of a setup: n × 2 coordinates and 0/1 labels of the training and test sets. */
  | { type: "data"; trainPoints: Float32Array; trainLabels: Float32Array; testPoints: Float32Array; testLabels: Float32Array }
  | { type: "running"; running: boolean }
  | {
      type: "frame";
      step: number;
      /** Passes over the training set so far (fractional). */
      epoch: number;
      /** Log loss over the whole training and test sets, from the same predictions as the boundary. */
      trainLoss: number;
      testLoss: number;
      trainAccuracy: number;
      test: BinaryReport;
      /** GRID × GRID sigmoid outputs, row-major from the top-left (see gridPoint). */
      grid: Float32Array;
      /** Optimizer steps per second over the last second or so (undefined while not training). */
      stepsPerSecond?: number;
    };
