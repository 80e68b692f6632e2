// The memory plan: every buffer of a step has a live interval over the step's timeline; intervals that
// never overlap in time share bytes of one arena. Greedy by size (largest first, lowest offset that fits),
// the usual heuristic for static activation planning (TFLite's, ONNX Runtime's): simple and near-optimal
// for the chain-and-skip shapes of real networks.

export interface Interval {
  /** Bytes (a multiple of 4). */
  bytes: number;
  /** First and last time the buffer is written or read, inclusive. */
  first: number;
  last: number;
  label: string;
}

export interface Packed {
  /** Byte offset of each interval, aligned. */
  offsets: number[];
  /** Arena size: the peak. */
  bytes: number;
}

/** Places intervals in one arena so that no two that are live at the same time overlap. */
export function packIntervals(intervals: readonly Interval[], align: number, pack = true): Packed {
  const offsets = new Array<number>(intervals.length).fill(0);
  const round = (n: number) => Math.ceil(n / align) * align;
  if (!pack) {
    let at = 0;
    intervals.forEach((iv, i) => {
      offsets[i] = at;
      at = round(at + iv.bytes);
    });
    return { offsets, bytes: Math.max(at, align) };
  }
  const order = intervals.map((_, i) => i).sort((a, b) => intervals[b]!.bytes - intervals[a]!.bytes || intervals[a]!.first - intervals[b]!.first);
  const placed: number[] = [];
  let peak = 0;
  for (const i of order) {
    const iv = intervals[i]!;
    // Byte ranges already taken by buffers alive at the same time, by offset.
    const busy = placed
      .filter((j) => intervals[j]!.first <= iv.last && iv.first <= intervals[j]!.last)
      .map((j) => [offsets[j]!, offsets[j]! + intervals[j]!.bytes] as const)
      .sort((a, b) => a[0] - b[0]);
    let at = 0;
    for (const [start, end] of busy) {
      if (at + iv.bytes <= start) break;
      at = Math.max(at, round(end));
    }
    offsets[i] = at;
    placed.push(i);
    peak = Math.max(peak, at + iv.bytes);
  }
  return { offsets, bytes: Math.max(round(peak), align) };
}
