// Messages between the demo page and its training worker.
import type { AdapterReport } from "../src/index.ts";

/** Test images 0..VALIDATION-1 are the validation set; the grid shows the GRID test images after them. */
export const VALIDATION = 1000;
export const GRID = 40;

export type OptimizerName = "adam" | "sgd";

export interface Settings {
  learningRate: number;
  batchSize: number;
  epochs: number;
  optimizer: OptimizerName;
  /** How many of the served training images to train on. */
  trainSize: number;
}

export type State = "loading" | "idle" | "training" | "paused" | "done";

export type ToWorker =
  | { type: "init"; mnistBase: string; settings: Settings }
  | { type: "start"; settings: Settings }
  | { type: "pause" }
  | { type: "resume" }
  | { type: "reset"; settings: Settings }
  | { type: "learningRate"; value: number }
  | { type: "predict"; pixels: Uint8Array }
  | { type: "featureMaps"; index: number }
  | { type: "evaluate" }
  | { type: "profile" };

export interface KernelTime {
  label: string;
  ms: number;
}

export type FromWorker =
  | { type: "adapter"; report: AdapterReport; description: string; timestamps: boolean }
  | { type: "data"; train: number; test: number; validation: number }
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
      /** Running means over the epoch so far, present when a new metric readback has arrived. */
      loss?: number;
      accuracy?: number;
    }
  | { type: "epoch"; step: number; epoch: number; loss: number; accuracy: number; valLoss?: number; valAccuracy?: number; seconds: number }
  | { type: "samples"; images: Uint8Array; labels: number[]; predicted: number[]; confidence: number[] }
  | { type: "filters"; kernel: Float32Array; bias: Float32Array; shape: number[] }
  | { type: "featureMaps"; index: number; image: Uint8Array; label: number; maps: Float32Array; shape: number[] }
  | { type: "evaluation"; step: number; labels: Uint8Array; predicted: Uint8Array }
  | { type: "prediction"; probs: Float32Array }
  | { type: "kernels"; step: number; batchSize: number; times: KernelTime[] }
  | { type: "kernels"; unavailable: string };
