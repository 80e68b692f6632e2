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
