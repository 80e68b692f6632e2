// Live training curves with uPlot over the global step: per-batch training figures (faint) with their
// smoothed curve (an exponential moving average, bias-corrected as TensorBoard does), validation points,
// and dashed markers where epochs begin. Redrawn at most once per frame.
import uPlot from "uplot";
import "uplot/dist/uPlot.min.css";

const TRAIN = "#2563eb";
const TRAIN_FAINT = "rgba(37, 99, 235, 0.22)";
const VAL = "#ea580c";
/** Weight of the past in the moving average: about ten batches. */
export const SMOOTHING = 0.9;

/** "42 s", "3 min 05 s", "1 h 02 min". */
export function duration(s: number): string {
  if (!Number.isFinite(s) || s < 0) return "–";
  if (s < 59.5) return `${Math.round(s)} s`;
  const r = Math.round(s);
  if (r < 3600) return `${Math.floor(r / 60)} min ${String(r % 60).padStart(2, "0")} s`;
  return `${Math.floor(r / 3600)} h ${String(Math.round((r % 3600) / 60)).padStart(2, "0")} min`;
}

/** Exponential moving average with TensorBoard's bias correction (the first values are not pulled to 0). */
export class Smoother {
  private acc = 0;
  private n = 0;
  constructor(private readonly beta = SMOOTHING) {}

  add(v: number): number {
    if (!Number.isFinite(v)) return v;
    this.acc = this.beta * this.acc + (1 - this.beta) * v;
    this.n++;
    return this.acc / (1 - this.beta ** this.n);
  }

  reset(): void {
    this.acc = this.n = 0;
  }
}

export class Curves {
  private readonly plot: uPlot;
  private readonly x: number[] = [];
  private readonly raw: (number | null)[] = [];
  private readonly smooth: (number | null)[] = [];
  private readonly val: (number | null)[] = [];
  private readonly smoother = new Smoother();
  private readonly epochs: { step: number; label: string }[] = [];
  private frame = 0;
  /** The latest smoothed training value. */
  latest?: number;

  constructor(
    private readonly el: HTMLElement,
    what: string,
    percent: boolean,
  ) {
    const fmt = (v: number) => (percent ? `${(v * 100).toFixed(v > 0.995 && v < 1 ? 1 : 0)}%` : v < 10 ? v.toFixed(2) : v.toPrecision(3));
    const value = (_u: uPlot, v: number | null) => (v == null ? "–" : percent ? `${(v * 100).toFixed(1)}%` : v.toFixed(3));
    this.plot = new uPlot(
      {
        width: this.width(),
        height: 220,
        scales: { x: { time: false }, y: percent ? { range: [0, 1] } : { range: (_u, _min, max) => [0, Math.max(0.5, max * 1.05)] } },
        axes: [{ label: "step", size: 40, labelSize: 16 }, { values: (_u, ticks) => ticks.map(fmt), size: 48 }],
        legend: { live: true },
        cursor: { drag: { x: false, y: false } },
        series: [
          { label: "step" },
          { label: `per batch`, stroke: TRAIN_FAINT, width: 1, spanGaps: true, points: { show: false }, value },
          { label: `training ${what} (smoothed)`, stroke: TRAIN, width: 2, spanGaps: true, points: { show: false }, value },
          { label: `validation ${what}`, stroke: VAL, width: 2, spanGaps: true, points: { show: true, size: 6, fill: VAL }, value },
        ],
        hooks: { draw: [(u) => this.drawEpochs(u)] },
      },
      [[], [], [], []],
      el,
    );
    new ResizeObserver(() => this.plot.setSize({ width: this.width(), height: 220 })).observe(el);
  }

  private width(): number {
    return Math.max(160, this.el.clientWidth);
  }

  /** Dashed vertical lines where epochs begin, labelled at the top. */
  private drawEpochs(u: uPlot): void {
    const ctx = u.ctx;
    const { left, top, width, height } = u.bbox;
    ctx.save();
    ctx.strokeStyle = "#9ca3af";
    ctx.fillStyle = "#6b7280";
    ctx.lineWidth = uPlot.pxRatio;
    ctx.setLineDash([4 * uPlot.pxRatio, 4 * uPlot.pxRatio]);
    ctx.font = `${11 * uPlot.pxRatio}px system-ui, sans-serif`;
    for (const e of this.epochs) {
      const px = u.valToPos(e.step, "x", true);
      if (px < left || px > left + width) continue;
      ctx.beginPath();
      ctx.moveTo(px, top);
      ctx.lineTo(px, top + height);
      ctx.stroke();
      ctx.fillText(e.label, px + 3 * uPlot.pxRatio, top + 11 * uPlot.pxRatio);
    }
    ctx.restore();
  }

  /** The index of `step` in x, inserted in order (with empty values) when it is not there yet. */
  private at(step: number): number {
    let i = this.x.length;
    while (i > 0 && this.x[i - 1]! > step) i--;
    if (i > 0 && this.x[i - 1] === step) return i - 1;
    this.x.splice(i, 0, step);
    for (const s of [this.raw, this.smooth, this.val]) s.splice(i, 0, null);
    return i;
  }

  /** Per-batch training values (in step order). */
  addTrain(steps: readonly number[], values: readonly number[]): void {
    steps.forEach((step, k) => {
      const v = values[k]!;
      const i = this.at(step);
      const s = this.smoother.add(v);
      this.raw[i] = Number.isFinite(v) ? v : null;
      this.smooth[i] = Number.isFinite(s) ? s : null;
      this.latest = s;
    });
    this.redraw();
  }

  addValidation(step: number, value: number): void {
    this.val[this.at(step)] = Number.isFinite(value) ? value : null;
    this.redraw();
  }

  /** Epoch `epoch` (0-based) begins after `step`. */
  addEpoch(step: number, epoch: number): void {
    this.epochs.push({ step, label: `epoch ${epoch + 1}` });
    this.redraw();
  }

  /** Smoothed training points on the chart (for tests and the page's figures). */
  get points(): number {
    return this.smooth.filter((v) => v !== null).length;
  }

  clear(): void {
    this.x.length = this.raw.length = this.smooth.length = this.val.length = this.epochs.length = 0;
    this.smoother.reset();
    this.latest = undefined;
    this.redraw();
  }

  private redraw(): void {
    if (this.frame) return;
    this.frame = requestAnimationFrame(() => {
      this.frame = 0;
      this.plot.setData([this.x, this.raw, this.smooth, this.val]);
      this.el.dataset.points = String(this.points);
    });
  }
}
