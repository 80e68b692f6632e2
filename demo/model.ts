// The demo's network, shared with npm run train: the reference CNN (src/model/reference.ts), with optional
// dropout before the classifier and L2 on every kernel; and the limits both check their settings against.
import type { Sequential } from "../src/index.ts";
import { referenceCnn } from "../src/entry/models.ts";

export interface CnnOptions {
  /** Dropout rate after Dense(128), in [0, 1); 0: none. */
  dropout?: number;
  /** L2 coefficient on the kernels (Keras's kernelRegularizer); 0: none. */
  l2?: number;
}

/** The limits npm run train and the demo check their settings against, with what to say when they fail. */
export const LIMITS = {
  learningRate: { ok: (v: number) => v > 0 && v <= 10, need: "a number greater than 0 and at most 10 (e.g. 0.001)" },
  l2: { ok: (v: number) => v >= 0 && v <= 1, need: "a number from 0 to 1 (e.g. 0.0001; 0: none)" },
  dropout: { ok: (v: number) => v >= 0 && v < 1, need: "a number from 0 to less than 1 (e.g. 0.5; 0: none)" },
  lrDecay: { ok: (v: number) => v > 0 && v <= 1, need: "a number greater than 0 and at most 1: the learning rate's factor per epoch (1: no decay)" },
} as const;

/** A decimal number as a person types it ("0.001", "1e-3", ".5"); NaN for anything else ("abc", "", "1,5"). */
export function parseDecimal(text: string): number {
  const t = text.trim();
  return /^[+]?(\d+\.?\d*|\.\d+)(e[+-]?\d+)?$/i.test(t) ? Number(t) : NaN;
}

/** Conv2D(32, 3×3, ReLU) → MaxPool 2×2 → Flatten → Dense(128, ReLU) → [Dropout] → Dense(10, softmax). */
export function cnn(options: CnnOptions = {}): Sequential {
  return referenceCnn(options);
}
