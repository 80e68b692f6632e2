// Writes a benchmark run as bench/results/<date>.json and a Markdown table beside it.
import { mkdir, writeFile } from "node:fs/promises";
import { join } from "node:path";
import type { CaseResult } from "./cases.ts";

export interface BenchRun {
  date: string;
  runtime: string;
  adapter: string;
  machine: string;
  cases: CaseResult[];
}

const fmt = (v: number | undefined) => (v === undefined ? "—" : v >= 100 ? v.toFixed(0) : v >= 10 ? v.toFixed(1) : v.toFixed(3));

type Stats = CaseResult["ours"];
const spread = (s: Stats) => (s ? `${fmt(s.median)} (${fmt(s.min)}–${fmt(s.max)}, n=${s.n})` : "—");
/** Ours over theirs, oriented so that > 1 means this engine is faster. */
function ratio(c: CaseResult, theirs: Stats): string {
  if (!c.ours || !theirs) return "—";
  return `${(c.higherIsBetter ? c.ours.median / theirs.median : theirs.median / c.ours.median).toFixed(2)}×`;
}

export function markdown(run: BenchRun): string {
  const rows = run.cases.map((c) => {
    const gpu = (v: Stats) => (v ? fmt(v.median) : "—");
    return `| ${c.name} | ${c.unit} | ${spread(c.ours)} | ${spread(c.tfjs)} | ${ratio(c, c.tfjs)} | ${gpu(c.oursGpu)} | ${gpu(c.tfjsGpu)} |`;
  });
  const jaxCases = run.cases.filter((c) => c.jax);
  const jax = jaxCases.length
    ? [
        "Against jax-js (@jax-js/jax) in the same run, ratios oriented as above:",
        "",
        "| case | unit | this engine | jax-js WebGPU | ratio | jax-js Wasm | ratio |",
        "| --- | --- | --- | --- | --- | --- | --- |",
        ...jaxCases.map((c) => `| ${c.name} | ${c.unit} | ${spread(c.ours)} | ${spread(c.jax?.webgpu)} | ${ratio(c, c.jax?.webgpu)} | ${spread(c.jax?.wasm)} | ${ratio(c, c.jax?.wasm)} |`),
        "",
      ]
    : [];
  return [
    `# Benchmark ${run.date}`,
    "",
    `- runtime: ${run.runtime}`,
    `- adapter: ${run.adapter}`,
    `- machine: ${run.machine}`,
    "",
    "Medians (min–max, repetitions) after a warm-up, wall time from submit to result; the ratio is ours over TF.js, oriented so that > 1 means this engine is faster. The GPU columns give the same figure from GPU timestamps alone (the kernels' time on the adapter, medians), where the adapter offers timestamp-query; TF.js's come from its own tf.time().",
    "",
    "| case | unit | this engine | TF.js 4.22 WebGPU | ratio | this engine, GPU time | TF.js, GPU time |",
    "| --- | --- | --- | --- | --- | --- | --- |",
    ...rows,
    "",
    ...jax,
    ...run.cases.filter((c) => c.note).map((c) => `- ${c.name}: ${c.note}`),
    "",
  ].join("\n");
}

export async function writeReport(run: BenchRun, dir: string): Promise<string> {
  await mkdir(dir, { recursive: true });
  const base = join(dir, run.date.replace(/[:]/g, "-"));
  await writeFile(`${base}.json`, JSON.stringify(run, null, 2) + "\n");
  await writeFile(`${base}.md`, markdown(run));
  return base;
}
