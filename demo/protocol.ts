// Messages between the demo page and its training worker, and the sizes both sides share.
import type { AdapterReport, KernelTime } from "../src/index.ts";

export type { KernelTime };

/** Test images 0..VALIDATION-1 are the validation set; the grid shows the GRID test images after them. */
export const VALIDATION = 1000;
export const GRID = 40;
/** Training images are served in files of TRAIN_CHUNK, fetched as the chosen training size needs them. */
export const TRAIN_CHUNK = 1000;
export const TRAIN_MAX = 10_000;
/** The weights of the reference CNN trained by `npm run train` (demo/public/), relative to the page. */
export const TRAINED_WEIGHTS = "mnist_cnn.safetensors";

/** The gzipped IDX files the page fetches (demo/mnist_files.ts serves and builds them), relative to the page. */
export const MNIST_URLS = {
  testImages: "mnist/test-images.idx.gz",
  testLabels: "mnist/test-labels.idx.gz",
  trainLabels: "mnist/train-labels.idx.gz",
  trainImages: (chunk: number) => `mnist/train-images-${chunk}.idx.gz`,
};

export type OptimizerName = "adam" | "sgd";

export interface Settings {
  learningRate: number;
  /** The learning rate's factor per epoch, applied smoothly per step (1: constant). */
  lrDecay: number;
  batchSize: number;
  epochs: number;
  optimizer: OptimizerName;
  /** How many of the served training images to train on. */
  trainSize: number;
  /** L2 coefficient on the kernels; dropout rate before the classifier. */
  l2: number;
  dropout: number;
  /** Steps between validations (and refreshes of the test-image grid and the evaluation). */
  validateEvery: number;
}

export type State = "loading" | "idle" | "training" | "paused" | "done";

export type ToWorker =
  | { type: "init"; base: string; settings: Settings }
  | { type: "start"; settings: Settings }
  | { type: "pause" }
  | { type: "resume" }
  | { type: "reset"; settings: Settings }
  | { type: "rate"; learningRate: number; lrDecay: number }
  /** The pad is in use: keep at most one training step queued so predictions come back quickly. */
  | { type: "drawing" }
  | { type: "predict"; seq: number; pixels: Uint8Array }
  | { type: "featureMaps"; index: number }
  | { type: "evaluate" }
  | { type: "profile" }
  | { type: "loadWeights"; settings: Settings }
  | { type: "saveWeights" };

export type FromWorker =
  | { type: "adapter"; report: AdapterReport; description: string; timestamps: boolean }
  | { type: "fatal"; stage: string; message: string }
  | { type: "error"; message: string }
  | { type: "state"; state: State; step: number; note?: string }
  | {
      type: "progress";
      step: number;
      epoch: number;
      epochs: number;
      batch: number;
      batchesPerEpoch: number;
      samplesPerSecond: number;
      /** Seconds spent training in this run (pauses left out), and the estimate of what is left. */
      elapsed: number;
      eta?: number;
    }
  /** Per-batch training figures: means over the batches since the previous reading (usually one). */
  | { type: "points"; steps: number[]; loss: number[]; accuracy: number[] }
  | { type: "epoch"; step: number; epoch: number }
  | { type: "validation"; step: number; loss: number; accuracy: number; labels: Uint8Array; predicted: Uint8Array }
  /** The grid's images, with the network's guesses once it has learnt something (trained or loaded). */
  | { type: "samples"; images: Uint8Array; labels: number[]; predicted?: number[]; confidence?: number[] }
  | { type: "filters"; kernel: Float32Array; bias: Float32Array; shape: number[] }
  | { type: "featureMaps"; index: number; image: Uint8Array; label: number; maps: Float32Array; shape: number[] }
  | { type: "prediction"; seq: number; probs: Float32Array }
  | { type: "kernels"; step: number; batchSize: number; times: KernelTime[] }
  | { type: "kernels"; unavailable: string }
  | { type: "loaded"; metadata: Record<string, string> }
  | { type: "weights"; bytes: Uint8Array; fileName: string }
  /** The loss stopped being a number: training was stopped. */
  | { type: "diverged"; step: number; loss: number };
