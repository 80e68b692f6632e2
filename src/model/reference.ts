// The reference workloads: the classic Keras MNIST CNN (npm run train, the demo, the benchmarks, the
// tests) and a small residual network with batch normalisation (npm run train -- --model resnet).
import { optionsOf, shown } from "../args.ts";
import { ConfigError } from "../errors.ts";
import { Input, type SymbolicTensor } from "../graph/graph.ts";
import { Activation as ActivationLayer, Add, BatchNormalization, Conv2D, Dense, Dropout, Flatten, GlobalAveragePooling2D, MaxPooling2D } from "../graph/layers.ts";
import { Model, Sequential } from "./model.ts";

/**
 * Conv2D(32, 3×3, ReLU) → MaxPool 2×2 → Flatten → Dense(128, ReLU) → Dense(10, softmax), on 28×28×1
 * inputs; optionally Dropout(`dropout`) before the classifier and L2 (`l2`) on every kernel.
 */
export function referenceCnn(o: { dropout?: number; l2?: number } = {}): Sequential {
  const { dropout = 0, l2 = 0 } = optionsOf<{ dropout?: number; l2?: number }>(o ?? {}, "referenceCnn()", ["dropout", "l2"]);
  if (typeof dropout !== "number" || !(dropout >= 0 && dropout < 1)) throw new ConfigError(`referenceCnn(): dropout must be a rate in [0, 1) (0: none), got ${shown(dropout)}`);
  if (typeof l2 !== "number" || !(l2 >= 0 && Number.isFinite(l2))) throw new ConfigError(`referenceCnn(): l2 must be a finite coefficient ≥ 0 (0: none), got ${shown(l2)}`);
  // Neither option adds weights, so a weights file fits the network whatever they are.
  const reg = l2 ? { kernelRegularizer: { l2 } } : {};
  return new Sequential([
    Conv2D({ filters: 32, kernelSize: 3, activation: "relu", inputShape: [28, 28, 1], ...reg }),
    MaxPooling2D({ poolSize: 2 }),
    Flatten(),
    Dense({ units: 128, activation: "relu", ...reg }),
    ...(dropout ? [Dropout({ rate: dropout })] : []),
    Dense({ units: 10, activation: "softmax", ...reg }),
  ]);
}

/** Conv (no bias) → BatchNorm, optionally → ReLU. */
function convBn(x: SymbolicTensor, filters: number, kernelSize: number, strides: number, name: string, relu: boolean): SymbolicTensor {
  const c = Conv2D({ filters, kernelSize, strides, padding: "same", useBias: false, name: `${name}_conv` }).apply(x);
  const b = BatchNormalization({ name: `${name}_bn` }).apply(c);
  return relu ? ActivationLayer({ activation: "relu", name: `${name}_relu` }).apply(b) : b;
}

/**
 * A residual stage: two 3×3 conv–BN layers (the first strided) beside a 1×1 conv–BN projection of the
 * input, added, then ReLU.
 */
function stage(x: SymbolicTensor, filters: number, name: string): SymbolicTensor {
  const a = convBn(x, filters, 3, 2, `${name}_a`, true);
  const b = convBn(a, filters, 3, 1, `${name}_b`, false);
  const shortcut = convBn(x, filters, 1, 2, `${name}_proj`, false);
  return ActivationLayer({ activation: "relu", name: `${name}_out` }).apply(Add({ name: `${name}_add` }).apply([b, shortcut]));
}

/** Channels of residualNet's stem and of its three stages (each stage halves the resolution). */
export const RESNET_WIDTHS = { stem: 12, stages: [12, 24, 56] } as const;

/**
 * A small ResNet for MNIST: conv–BN–ReLU stem (12 channels, 28×28), three residual stages with
 * projection shortcuts (12 channels at 14×14, 24 at 7×7, 56 at 4×4), global average pooling, Dense(10,
 * softmax). About 1.7 M multiply-adds per image, 1.9× the reference CNN's 0.89 M.
 */
export function residualNet(): Model {
  const input = Input({ shape: [28, 28, 1], name: "image" });
  let h = convBn(input, RESNET_WIDTHS.stem, 3, 1, "stem", true);
  RESNET_WIDTHS.stages.forEach((filters, i) => (h = stage(h, filters, `stage${i + 1}`)));
  const pooled = GlobalAveragePooling2D({ name: "pool" }).apply(h);
  const out = Dense({ units: 10, activation: "softmax", name: "classifier" }).apply(pooled);
  return new Model({ inputs: input, outputs: out, name: "resnet" });
}
