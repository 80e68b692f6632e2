// Classification metrics for the evaluation panel: confusion matrix and per-class precision, recall, F1.

/** matrix[truth][predicted] counts. */
export function confusionMatrix(labels: ArrayLike<number>, predicted: ArrayLike<number>, classes = 10): number[][] {
  const m = Array.from({ length: classes }, () => new Array<number>(classes).fill(0));
  for (let i = 0; i < labels.length; i++) m[labels[i]!]![predicted[i]!]!++;
  return m;
}

export interface ClassScores {
  precision: number;
  recall: number;
  f1: number;
  /** Examples whose true label is this class. */
  support: number;
}

/** Per-class scores; a class never predicted (or never present) scores 0 rather than NaN. */
export function classScores(m: number[][]): ClassScores[] {
  return m.map((row, k) => {
    const tp = row[k]!;
    const support = row.reduce((a, b) => a + b, 0);
    const predicted = m.reduce((a, r) => a + r[k]!, 0);
    const precision = predicted ? tp / predicted : 0;
    const recall = support ? tp / support : 0;
    const f1 = precision + recall ? (2 * precision * recall) / (precision + recall) : 0;
    return { precision, recall, f1, support };
  });
}

/** What the page knows of a run's health: smoothed training figures, and how many steps they cover. */
export interface Health {
  steps: number;
  /** The first smoothed loss of the run (about ln 10 = 2.3 for a fresh network) and the latest. */
  firstLoss: number;
  loss: number;
  accuracy: number;
}

/**
 * Why training looks broken, or undefined: the loss grew to more than three times where it began (and
 * past 5), or accuracy is still near chance (under 20% on ten classes) after 100 steps.
 */
export function divergence(h: Health): "diverging" | "not learning" | undefined {
  if (h.steps >= 10 && (!Number.isFinite(h.loss) || h.loss > Math.max(3 * h.firstLoss, 5))) return "diverging";
  if (h.steps >= 100 && h.accuracy < 0.2) return "not learning";
  return undefined;
}

/** The learning rates each optimizer usually trains this network well with (Keras's defaults). */
export const USUAL_RATE = { adam: 0.001, sgd: 0.01 } as const;

/** A learning rate to try instead of `lr`: the optimizer's usual one when lr is above it, otherwise a tenth. */
export function lowerRate(lr: number, optimizer: "adam" | "sgd"): number {
  return lr > USUAL_RATE[optimizer] ? USUAL_RATE[optimizer] : Number((lr / 10).toPrecision(2));
}
