// The benchmark page: runs the cases in the browser for this engine and TF.js's WebGPU backend, and
// leaves the results on window.__bench for the puppeteer runner.
import * as tf from "@tensorflow/tfjs";
import "@tensorflow/tfjs-backend-webgpu";
import * as jax from "@jax-js/jax";
import { Engine } from "../src/engine.ts";
import { CASES, runCases, type CaseName } from "./cases.ts";
import { syntheticBatch } from "./data.ts";

const log = (line: string) => {
  document.getElementById("log")!.textContent += `\n${line}`;
  console.log(line);
};
const w = window as unknown as { __bench?: unknown; __benchError?: string };
try {
  const q = new URLSearchParams(location.search);
  const cases = (q.get("cases")?.split(",") ?? [...CASES]) as CaseName[];
  const reps = Number(q.get("reps") ?? 5);
  const probe = await Engine.create();
  const adapter = `${probe.describe()}; matmul kernel: ${probe.matmulVariant} (autotuned)`;
  probe.dispose();
  await tf.setBackend("webgpu");
  await tf.ready();
  // jax-js's Wasm device runs one worker per core when the page is cross-origin isolated (the runner
  // serves it so), otherwise on the page's thread alone.
  const threads = crossOriginIsolated ? `on ${navigator.hardwareConcurrency} worker threads (page cross-origin isolated)` : "single-threaded (page not cross-origin isolated)";
  const results = await runCases({ tf, jax: { module: jax, devices: ["webgpu", "wasm"], threads }, log, reps, engine: () => Engine.create(), batch: syntheticBatch(Number(q.get("batches") ?? 4)) }, cases);
  w.__bench = { adapter, runtime: navigator.userAgent, cases: results };
} catch (e) {
  w.__benchError = (e as Error).stack ?? String(e);
  log(`failed: ${w.__benchError}`);
}
