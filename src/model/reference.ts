// The reference workload: the classic Keras MNIST CNN, used by npm run train, the demo, the benchmarks
// and the tests.
import { Conv2D, Dense, Flatten, MaxPooling2D } from "./layers.ts";
import { Sequential } from "./model.ts";

/** Conv2D(32, 3×3, ReLU) → MaxPool 2×2 → Flatten → Dense(128, ReLU) → Dense(10, softmax), on 28×28×1 inputs. */
export function referenceCnn(): Sequential {
  return new Sequential([
    Conv2D({ filters: 32, kernelSize: 3, activation: "relu", inputShape: [28, 28, 1] }),
    MaxPooling2D({ poolSize: 2 }),
    Flatten(),
    Dense({ units: 128, activation: "relu" }),
    Dense({ units: 10, activation: "softmax" }),
  ]);
}
