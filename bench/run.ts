// npm run bench: the benchmark cases for this engine, TensorFlow.js 4.22 (WebGPU backend) and jax-js
// (WebGPU and Wasm, in the per-batch case) on the same adapter, in headless Chromium through puppeteer
// (default) or in Node through Dawn (--node).
// Writes bench/results/<date>.json and .md.
import os from "node:os";
import { parseArgs } from "node:util";
import { CASES, MNIST_CASES, runCases, type CaseName } from "./cases.ts";
import { syntheticBatch } from "./data.ts";
import { markdown, writeReport, type BenchRun } from "./report.ts";

const { values: a } = parseArgs({
  options: {
    node: { type: "boolean" },
    smoke: { type: "boolean" },
    all: { type: "boolean" },
    cases: { type: "string" },
    reps: { type: "string", default: "5" },
    batches: { type: "string", default: "4" },
    out: { type: "string", default: "bench/results" },
    chromium: { type: "string", default: process.env.CHROMIUM ?? "/usr/bin/chromium" },
  },
});
// time-to-97 trains on real MNIST for minutes: Node only, and only when asked for or with --all.
const defaults = CASES.filter((c) => !MNIST_CASES.includes(c) || (a.all && a.node));
const cases = (a.smoke ? ["matmul-256"] : (a.cases?.split(",") ?? defaults)) as CaseName[];
for (const c of cases) if (!CASES.includes(c)) throw new Error(`unknown case "${c}"; known: ${CASES.join(", ")}`);
const reps = Math.max(5, Number(a.reps));
const machine = `${os.cpus().length} × ${os.cpus()[0]?.model ?? "unknown CPU"}, ${Math.round(os.totalmem() / 2 ** 30)} GiB, ${os.platform()} ${os.release()}`;
const log = (line: string) => console.log(line);

async function inNode(): Promise<Omit<BenchRun, "date" | "machine">> {
  // First-step times must include shader compilation: keep Mesa's disk cache out of it.
  process.env.MESA_SHADER_CACHE_DISABLE ??= "true";
  const { Engine } = await import("../src/engine.ts");
  const probe = await Engine.create();
  const adapter = `${probe.describe()}; matmul kernel: ${probe.matmulVariant} (autotuned)`;
  const icd = probe.gpu.report.icd;
  probe.dispose();
  // TF.js's WebGPU backend looks for navigator.gpu: give it Dawn on the same Vulkan driver.
  if (icd) process.env.VK_ICD_FILENAMES = icd;
  const dawn = (await import("webgpu")) as unknown as { create(flags: string[]): GPU; globals: object };
  Object.assign(globalThis, dawn.globals);
  Object.defineProperty(globalThis, "navigator", { value: { gpu: dawn.create([]), userAgent: "node" }, configurable: true });
  const tf = await import("@tensorflow/tfjs");
  await import("@tensorflow/tfjs-backend-webgpu");
  await tf.setBackend("webgpu");
  await tf.ready();
  const mnist = cases.includes("time-to-97") ? await (await import("../src/data/mnist.ts")).loadMnist() : undefined;
  // jax-js has no WebGPU device in Node, and its Wasm device runs on this thread alone there.
  const jax = { module: await import("@jax-js/jax"), devices: ["wasm" as const], threads: "single-threaded (Node)" };
  const results = await runCases({ tf, jax, log, reps, engine: () => Engine.create(icd ? { adapter: "auto" } : {}), batch: syntheticBatch(Number(a.batches)), mnist }, cases);
  return { runtime: `Node ${process.version}, Dawn (webgpu npm package)`, adapter, cases: results };
}

/** Cross-origin isolation gives the page SharedArrayBuffer, which jax-js's Wasm device needs for its worker threads. */
const ISOLATED = { "Cross-Origin-Opener-Policy": "same-origin", "Cross-Origin-Embedder-Policy": "require-corp" };

async function inBrowser(): Promise<Omit<BenchRun, "date" | "machine">> {
  const { createServer } = await import("vite");
  const puppeteer = (await import("puppeteer")).default;
  const server = await createServer({ configFile: "vite.config.ts", server: { port: 0, host: "127.0.0.1", headers: ISOLATED }, logLevel: "warn", optimizeDeps: { include: ["@tensorflow/tfjs", "@tensorflow/tfjs-backend-webgpu", "@jax-js/jax"] } });
  await server.listen();
  const address = server.httpServer!.address() as { port: number };
  const browser = await puppeteer.launch({
    executablePath: a.chromium,
    headless: true,
    // SwiftShader can keep the page busy for minutes on the large cases; wait as long as it takes.
    protocolTimeout: 0,
    args: ["--enable-unsafe-webgpu", "--enable-features=Vulkan", "--use-vulkan=swiftshader", "--use-webgpu-adapter=swiftshader", "--enable-unsafe-swiftshader", "--disable-gpu-shader-disk-cache", "--no-sandbox", "--disable-background-networking", "--disable-component-update", "--disable-sync", "--no-first-run"],
  });
  try {
    const page = await browser.newPage();
    page.on("console", (m) => log(`  [page] ${m.text()}`));
    await page.goto(`http://127.0.0.1:${address.port}/bench/index.html?cases=${cases.join(",")}&reps=${reps}&batches=${a.batches}`);
    await page.waitForFunction("window.__bench || window.__benchError", { timeout: 0, polling: 1000 });
    const err = await page.evaluate("window.__benchError");
    if (err) throw new Error(`benchmark page failed: ${err}`);
    const r = (await page.evaluate("window.__bench")) as Omit<BenchRun, "date" | "machine">;
    return { ...r, runtime: `${await browser.version()} (headless, puppeteer)` };
  } finally {
    await browser.close();
    await server.close();
  }
}

const run: BenchRun = { date: new Date().toISOString().slice(0, 19), machine, ...(a.node ? await inNode() : await inBrowser()) };
const base = await writeReport(run, a.out!);
console.log("\n" + markdown(run));
console.log(`written: ${base}.json, ${base}.md`);
process.exit(0);
