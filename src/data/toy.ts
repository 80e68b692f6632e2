// Two-dimensional toy datasets for binary classification, as in TensorFlow Playground: two moons,
// circles, XOR and spirals, with Gaussian noise, generated from a seed; and the five input features of
// the classic small classifier (x₁, x₂, x₁², x₂², x₁·x₂).
import { shown } from "../args.ts";
import { ConfigError } from "../errors.ts";
import { mulberry32 } from "../train/random.ts";

export const TOY_DATASETS = ["moons", "circles", "xor", "spirals"] as const;
export type ToyName = (typeof TOY_DATASETS)[number];

export interface ToyData {
  /** n × 2 points, row-major, roughly within [−1, 1]². */
  points: Float32Array;
  /** n labels, 0 or 1, as binaryCrossentropy takes them; the two classes are equally many (n even). */
  labels: Float32Array;
}

/** `n` points of a toy dataset, half of each class, in a seeded random order. */
export function toyDataset(name: ToyName, o: { n?: number; noise?: number; seed?: number } = {}): ToyData {
  if (!TOY_DATASETS.includes(name)) throw new ConfigError(`unknown toy dataset ${shown(name)}; use one of ${TOY_DATASETS.join(", ")}`);
  const n = o.n ?? 400;
  const noise = o.noise ?? 0.1;
  const seed = o.seed ?? 1;
  if (!Number.isInteger(n) || n < 2 || n > 1e7) throw new ConfigError(`toyDataset: n must be an integer in 2..10,000,000, got ${shown(n)}`);
  if (typeof noise !== "number" || !(noise >= 0 && noise <= 1)) throw new ConfigError(`toyDataset: noise must be in [0, 1], got ${shown(noise)}`);
  if (typeof seed !== "number" || !Number.isInteger(seed)) throw new ConfigError(`toyDataset: seed must be an integer, got ${shown(seed)}`);
  const rand = mulberry32(seed);
  const gauss = () => Math.sqrt(-2 * Math.log(1 - rand())) * Math.cos(2 * Math.PI * rand());
  const points = new Float32Array(2 * n);
  const labels = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    const label = i % 2;
    const t = rand();
    let x: number;
    let y: number;
    if (name === "moons") {
      // Two interleaved half circles (scikit-learn's make_moons), centred and scaled into [−1, 1]².
      const a = Math.PI * t;
      [x, y] = label === 0 ? [Math.cos(a), Math.sin(a)] : [1 - Math.cos(a), 0.5 - Math.sin(a)];
      [x, y] = [(x - 0.5) / 1.5, (y - 0.25) / 1.5];
    } else if (name === "circles") {
      // A disc inside a ring.
      const a = 2 * Math.PI * t;
      const r = label === 0 ? 0.9 * Math.sqrt(rand()) * 0.5 : 0.7 + 0.3 * rand();
      [x, y] = [r * Math.cos(a), r * Math.sin(a)];
    } else if (name === "xor") {
      // Quadrants: same-sign coordinates are class 0, opposite signs class 1, kept off the axes.
      const sx = rand() < 0.5 ? -1 : 1;
      const sy = label === 0 ? sx : -sx;
      [x, y] = [sx * (0.1 + 0.9 * t), sy * (0.1 + 0.9 * rand())];
    } else {
      // Two interleaved spirals, one and a half turns each.
      const r = 0.05 + 0.95 * t;
      const a = 3 * Math.PI * t + label * Math.PI;
      [x, y] = [r * Math.cos(a), r * Math.sin(a)];
    }
    points[2 * i] = x + noise * gauss();
    points[2 * i + 1] = y + noise * gauss();
    labels[i] = label;
  }
  // Shuffle, so that any prefix (a validation split) holds both classes.
  for (let i = n - 1; i > 0; i--) {
    const j = Math.floor(rand() * (i + 1));
    [points[2 * i], points[2 * j]] = [points[2 * j]!, points[2 * i]!];
    [points[2 * i + 1], points[2 * j + 1]] = [points[2 * j + 1]!, points[2 * i + 1]!];
    [labels[i], labels[j]] = [labels[j]!, labels[i]!];
  }
  return { points, labels };
}

/** The five input features of the small binary classifier: x₁, x₂, x₁², x₂², x₁·x₂ per point (n × 5). */
export function fiveFeatures(points: Float32Array): Float32Array {
  if (!(points instanceof Float32Array) || points.length % 2 !== 0) throw new ConfigError(`fiveFeatures takes n × 2 points as a Float32Array, got ${shown(points)}`);
  const n = points.length / 2;
  const out = new Float32Array(5 * n);
  for (let i = 0; i < n; i++) {
    const [x, y] = [points[2 * i]!, points[2 * i + 1]!];
    out.set([x, y, x * x, y * y, x * y], 5 * i);
  }
  return out;
}
