// Classification figures computed on the CPU from predict() outputs: a binary classifier's accuracy,
// precision, recall, F1 and confusion counts at a threshold, and a K-class confusion matrix.
import { shown } from "../args.ts";
import { DataError, ShapeError } from "../errors.ts";

export interface BinaryReport {
  threshold: number;
  accuracy: number;
  /** tp / (tp + fp); 0 when nothing is predicted positive. */
  precision: number;
  /** tp / (tp + fn); 0 when there are no positives. */
  recall: number;
  /** The harmonic mean of precision and recall; 0 when both are 0. */
  f1: number;
  confusion: { tp: number; fp: number; fn: number; tn: number };
}

function checkLengths(outputs: ArrayLike<number>, labels: ArrayLike<number>, per: number, what: string): number {
  for (const [name, v] of [
    ["outputs", outputs],
    ["labels", labels],
  ] as const) {
    if (!v || typeof v !== "object" || typeof v.length !== "number") throw new DataError(`${what}: ${name} must be an array or typed array, got ${shown(v)}`);
  }
  if (outputs.length !== labels.length * per) throw new ShapeError(`${what}: ${labels.length} labels need ${labels.length * per} outputs (${per} each), got ${outputs.length}`);
  return labels.length;
}

/** Figures of a one-output classifier (sigmoid probabilities) against 0/1 labels: positive when output ≥ threshold. */
export function binaryReport(outputs: ArrayLike<number>, labels: ArrayLike<number>, threshold = 0.5): BinaryReport {
  const n = checkLengths(outputs, labels, 1, "binaryReport");
  if (typeof threshold !== "number" || !(threshold > 0 && threshold < 1)) throw new DataError(`binaryReport: threshold must be in (0, 1), got ${shown(threshold)}`);
  const c = { tp: 0, fp: 0, fn: 0, tn: 0 };
  for (let i = 0; i < n; i++) {
    const y = labels[i];
    if (y !== 0 && y !== 1) throw new DataError(`binaryReport: label ${i} is ${shown(y)}; labels must be 0 or 1`);
    const p = outputs[i]!;
    if (!Number.isFinite(p)) throw new DataError(`binaryReport: output ${i} is ${p}; outputs must be finite`);
    const positive = p >= threshold;
    if (positive && y === 1) c.tp++;
    else if (positive) c.fp++;
    else if (y === 1) c.fn++;
    else c.tn++;
  }
  const precision = c.tp + c.fp > 0 ? c.tp / (c.tp + c.fp) : 0;
  const recall = c.tp + c.fn > 0 ? c.tp / (c.tp + c.fn) : 0;
  return { threshold, accuracy: n > 0 ? (c.tp + c.tn) / n : 0, precision, recall, f1: precision + recall > 0 ? (2 * precision * recall) / (precision + recall) : 0, confusion: c };
}

/** matrix[t][p]: how many examples of true class t the model assigns to class p (the largest of its K outputs). */
export function confusionMatrix(outputs: ArrayLike<number>, labels: ArrayLike<number>, classes: number): number[][] {
  if (!Number.isInteger(classes) || classes < 2) throw new DataError(`confusionMatrix: classes must be an integer ≥ 2, got ${shown(classes)}`);
  const n = checkLengths(outputs, labels, classes, "confusionMatrix");
  const m = Array.from({ length: classes }, () => new Array<number>(classes).fill(0));
  for (let i = 0; i < n; i++) {
    const y = labels[i]!;
    if (!Number.isInteger(y) || y < 0 || y >= classes) throw new DataError(`confusionMatrix: label ${i} is ${shown(y)}; labels must be integers in 0..${classes - 1}`);
    let best = 0;
    for (let k = 1; k < classes; k++) if (outputs[i * classes + k]! > outputs[i * classes + best]!) best = k;
    m[y]![best]!++;
  }
  return m;
}
