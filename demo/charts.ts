// Live training curves with uPlot: a training series (every readback) and a validation series (every
// epoch) over the global step.
import uPlot from "uplot";
import "uplot/dist/uPlot.min.css";

const TRAIN = "#2563eb";
const VAL = "#ea580c";

export class Curves {
  private readonly plot: uPlot;
  private readonly x: number[] = [];
  private readonly train: (number | null)[] = [];
  private readonly val: (number | null)[] = [];

  constructor(el: HTMLElement, what: string, percent: boolean) {
    const fmt = (v: number) => (percent ? `${(v * 100).toFixed(0)}%` : v.toFixed(2));
    this.plot = new uPlot(
      {
        width: Math.max(200, el.clientWidth),
        height: 220,
        scales: { x: { time: false }, y: percent ? { range: [0, 1] } : { range: (_u, _min, max) => [0, Math.max(0.5, max * 1.05)] } },
        axes: [{ label: "step", size: 40, labelSize: 16 }, { values: (_u, ticks) => ticks.map(fmt), size: 48 }],
        legend: { live: true },
        cursor: { drag: { x: false, y: false } },
        series: [
          { label: "step" },
          { label: `training ${what}`, stroke: TRAIN, width: 2, spanGaps: true, value: (_u, v) => (v == null ? "–" : fmt(v)) },
          { label: `validation ${what}`, stroke: VAL, width: 2, spanGaps: true, points: { show: true, size: 7, fill: VAL }, value: (_u, v) => (v == null ? "–" : fmt(v)) },
        ],
      },
      [[], [], []],
      el,
    );
    new ResizeObserver(() => this.plot.setSize({ width: Math.max(200, el.clientWidth), height: 220 })).observe(el);
  }

  add(step: number, train: number | null, val: number | null = null): void {
    this.x.push(step);
    this.train.push(train);
    this.val.push(val);
    this.plot.setData([this.x, this.train, this.val]);
  }

  clear(): void {
    this.x.length = this.train.length = this.val.length = 0;
    this.plot.setData([[], [], []]);
  }
}
