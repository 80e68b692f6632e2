// End to end, as a user meets the package: build the library and `npm pack` it, install the tarball
// offline into a scratch Vite app, build the app, and train XOR in headless Chromium (SwiftShader) from
// the built app. The package is staged in a temporary directory, so dist/ in the checkout is untouched.
import { execFile } from "node:child_process";
import { cpSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import type { Server } from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { gzipSync } from "node:zlib";
import puppeteer, { type Browser } from "puppeteer";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { CHROMIUM_FLAGS, serveStatic } from "./browser.ts";

const root = fileURLToPath(new URL("..", import.meta.url));
const exec = promisify(execFile);
/** The entries (package.json "exports"): the core, and the optional parts an app imports by subpath. */
const ENTRIES = ["index", "io", "ops", "data", "models"] as const;
/**
 * The core's Node-only half (Dawn, the Vulkan driver search, the tuning cache file): not an export, but
 * a file beside the core that it imports at run time in Node only, by a specifier no bundler follows,
 * so browser apps neither load nor bundle it (its 1.4 kB gzip would otherwise sit in the core).
 */
const NODE_ONLY = "node";
/**
 * Code the core imports dynamically on first use, not an export: diagnostics (model.kernelTimes, fit's
 * stopOnNonFinite), the fused convolution and pooling (the fusion pass, its op rule, kernel and shader:
 * loaded by a plan whose graph has max pooling after a convolution), matmul autotuning (loaded when
 * the adapter has no cached choice), and the subgroup matmul's shader (only CPU drivers run it).
 */
const LAZY = ["diagnostics", "fuse", "autotune", "matmul_subgroup"] as const;
/**
 * Budgets, gzip -9. The core entry (dist/lib/index.js: engine, layers, models, training) holds every
 * module the entries share, so it is what an app that trains loads; issue 12 aims at 45 kB for it. It is
 * 44.3 kB by this measure (Node's zlib; GNU gzip -9 makes about 0.3 kB less), after its Node-only half
 * moved to dist/lib/node.js, the reference models to gradwgsl/models, and the diagnostics, the fused
 * kernels' pass, rules and dispatch builders, the autotuning's measurements and the subgroup matmul's shader to chunks
 * loaded on first use; the shaders are minified, their identifiers shortened, and the reflection table
 * is packed as text. This budget is the target: a new kernel that crosses it has to pay for itself, and a
 * module that leaks back from a subpath (the TF.js format is 8 kB) fails. The total guards against a
 * regression of kind (wgsl_reflect or unminified code back in the bundle: +50 kB or more); it is 68.7 kB
 * with the chunks loaded on first use (raised from 66 kB for the implicit-GEMM convolution).
 */
const CORE_GZIP_BUDGET = 45_000;
const TOTAL_GZIP_BUDGET = 70_000;

const APP_HTML = `<!doctype html>
<html lang="en">
  <head><meta charset="utf-8" /><title>XOR</title><link rel="icon" href="data:," /></head>
  <body><pre id="result"></pre><script type="module" src="/main.ts"></script></body>
</html>
`;

// What a user writes: the package by name (and a subpath entry), a tiny model, fit, predict, save; the
// outcome goes into the page.
const APP_MAIN = `import { Dense, Sequential } from "gradwgsl";
import { saveSafetensors } from "gradwgsl/io";

const out = document.getElementById("result")!;
try {
  const model = new Sequential([Dense({ units: 8, activation: "tanh", inputShape: [2] }), Dense({ units: 1, activation: "sigmoid" })]);
  await model.compile({ optimizer: { type: "adam", learningRate: 0.05 }, loss: "binaryCrossentropy" });
  const x = new Float32Array([0, 0, 0, 1, 1, 0, 1, 1]); // XOR: four examples of two inputs
  const { history } = await model.fit(x, [0, 1, 1, 0], { epochs: 200, batchSize: 4 });
  const predictions = Array.from(await model.predict(x));
  const savedBytes = saveSafetensors(await model.getWeights()).byteLength;
  out.textContent = JSON.stringify({ loss: history.loss, predictions, savedBytes, adapter: model.engine.describe() });
} catch (e) {
  out.textContent = JSON.stringify({ error: String((e as Error)?.stack ?? e) });
}
`;

/**
 * A Node script that trains a few steps of three models touching every layer kind (vec4 kernels on,
 * the matmul pinned so no tuning run can choose differently) and prints the losses per epoch, the
 * predictions and whether kernel times came: from the installed package, or from the sources (then run
 * through tsx).
 */
const trainScript = (core: string, models: string) => `import * as g from ${JSON.stringify(core)};
import { referenceCnn } from ${JSON.stringify(models)};
const engineOptions = { matmul: "tiled", vectors: true };
const data = (shape, n) => Float32Array.from({ length: n * shape.reduce((a, b) => a * b, 1) }, (_, i) => Math.sin(i * 0.37));
const labels = (n) => Array.from({ length: n }, (_, i) => (i * 7) % 10);
async function run(model, optimizer, n = 32) {
  await model.compile({ optimizer, loss: "sparseCategoricalCrossentropy", seed: 1, engineOptions });
  const x = data(model.inputs[0].shape, n);
  const { history } = await model.fit(x, labels(n), { epochs: 3, batchSize: 16 });
  const predictions = Array.from((await model.predict(x)).slice(0, 20));
  const timed = await model.kernelTimes(16); // dist/lib/diagnostics.js, loaded here
  model.dispose();
  return { loss: history.loss, predictions, timed: timed === undefined ? "no timestamp-query" : timed.length > 0 };
}
const conv = new g.Sequential([
  g.Conv2D({ filters: 4, kernelSize: 3, inputShape: [12, 12, 2], activation: "relu" }),
  g.BatchNormalization(),
  g.DepthwiseConv2D({ kernelSize: 3, padding: "same" }),
  g.MaxPooling2D({ poolSize: 2 }),
  g.LayerNormalization(),
  g.AveragePooling2D({ poolSize: 2 }),
  g.Dropout({ rate: 0.2 }),
  g.Flatten(),
  g.Dense({ units: 10, activation: "softmax" }),
]);
const x = g.Input({ shape: [8, 8, 4] });
const a = g.Conv2D({ filters: 4, kernelSize: 3, padding: "same", activation: "tanh" }).apply(x);
const b = g.ActivationLayer({ activation: "sigmoid" }).apply(g.Multiply().apply([a, x]));
const c = g.Concatenate().apply([g.Add().apply([a, b]), x]);
const h = g.Dense({ units: 12, activation: "relu" }).apply(g.GlobalAveragePooling2D().apply(c));
const functional = new g.Model({ inputs: x, outputs: g.Dense({ units: 10, activation: "softmax" }).apply(h) });
console.log(JSON.stringify({
  conv: await run(conv, { type: "sgd", learningRate: 0.05, momentum: 0.9 }),
  functional: await run(functional, { type: "adam", learningRate: 0.01 }),
  cnn: await run(referenceCnn({ dropout: 0.25, l2: 1e-4 }), "adam", 16),
}));
`;

let work = "";
let server: Server | undefined;
let browser: Browser | undefined;
let packed: { files: { path: string }[]; filename: string } | undefined;
/** gzip -9 bytes of each entry's file in dist/lib. */
const entryGzip: Record<string, number> = {};
let appBuildLog = "";

const run = async (cmd: string, args: string[], cwd: string) => {
  const { stdout, stderr } = await exec(cmd, args, { cwd, env: { ...process.env, NO_COLOR: "1", npm_config_update_notifier: "false" } });
  return stdout + stderr;
};
const node = (script: string, args: string[], cwd: string) => run(process.execPath, [join(root, "node_modules", script), ...args], cwd);

const serve = (dir: string) => serveStatic(dir);

beforeAll(async () => {
  work = mkdtempSync(join(tmpdir(), "gradwgsl-package-"));
  // The package, staged: what `npm pack` ships and what building the library needs.
  const pkg = join(work, "pkg");
  for (const f of ["package.json", "README.md", "src", "shaders", "tsconfig.json", "tsconfig.lib.json", "vite.lib.config.ts"]) cpSync(join(root, f), join(pkg, f), { recursive: true });
  symlinkSync(join(root, "node_modules"), join(pkg, "node_modules"), "dir");
  // The library half of `npm run build` (prepack); the demo half is not in the package.
  await node("vite/bin/vite.js", ["build", "-c", "vite.lib.config.ts", "--logLevel", "warn"], pkg);
  await node("typescript/bin/tsc", ["-p", "tsconfig.lib.json"], pkg);
  for (const e of [...ENTRIES, NODE_ONLY, ...LAZY]) entryGzip[e] = gzipSync(readFileSync(join(pkg, `dist/lib/${e}.js`)), { level: 9 }).byteLength;
  const { stdout } = await exec("npm", ["pack", "--ignore-scripts", "--json", "--pack-destination", work], { cwd: pkg });
  packed = (JSON.parse(stdout) as (typeof packed)[])[0];

  // The app: its own package.json, the tarball installed offline (no registry), built by Vite.
  const app = join(work, "app");
  mkdirSync(app);
  writeFileSync(join(app, "package.json"), JSON.stringify({ name: "xor-app", private: true, type: "module" }, null, 2));
  writeFileSync(join(app, "index.html"), APP_HTML);
  writeFileSync(join(app, "main.ts"), APP_MAIN);
  await run("npm", ["install", "--offline", "--no-audit", "--no-fund", join(work, packed!.filename)], app);
  appBuildLog = await node("vite/bin/vite.js", ["build"], app);

  server = await serve(join(app, "dist"));
  browser = await puppeteer.launch({ executablePath: process.env.CHROMIUM ?? "/usr/bin/chromium", headless: true, args: CHROMIUM_FLAGS });
}, 150_000);

afterAll(async () => {
  await browser?.close();
  server?.close();
  if (work) rmSync(work, { recursive: true, force: true });
});

describe("the packed library in a Vite app", () => {
  it("packs minified ES modules with their source maps and types, one per entry, and no runtime dependencies", () => {
    const files = packed!.files.map((f) => f.path);
    const installed = JSON.parse(readFileSync(join(work, "app/node_modules/gradwgsl/package.json"), "utf8"));
    for (const [subpath, { types, import: js }] of Object.entries(installed.exports as Record<string, { types: string; import: string }>)) {
      expect(files, subpath).toEqual(expect.arrayContaining([js.slice(2), `${js.slice(2)}.map`, types.slice(2)]));
    }
    expect(Object.keys(installed.exports)).toEqual([".", ...ENTRIES.slice(1).map((e) => `./${e}`)]);
    expect(installed.dependencies ?? {}).toEqual({});
    expect(installed.peerDependenciesMeta?.webgpu?.optional).toBe(true);
    for (const e of [...ENTRIES, NODE_ONLY, ...LAZY]) {
      const lib = readFileSync(join(work, `app/node_modules/gradwgsl/dist/lib/${e}.js`), "utf8");
      // Booleans, so that a failure does not print the whole bundle.
      expect(/wgsl_reflect|WgslReflect/.test(lib), `wgsl_reflect is bundled in ${e}.js`).toBe(false);
      expect(/function (acquireGpu|assembleShader|saveSafetensors|toyDataset|conv2dBackward)\b/.test(lib), `names are not mangled: ${e}.js is not minified`).toBe(false);
      expect(new RegExp(`//# sourceMappingURL=${e}\\.js\\.map\\s*$`).test(lib), `no source map comment in ${e}.js`).toBe(true);
      console.log(`dist/lib/${e}.js: ${(lib.length / 1000).toFixed(1)} kB, ${(entryGzip[e]! / 1000).toFixed(1)} kB gzip`);
    }
    // The entries share the core by importing it: no other chunk (a split core would cost its users gzip)
    // but the one the core loads on first use.
    expect(files.filter((f) => /^dist\/lib\/[^/]+\.js$/.test(f)).sort()).toEqual([...ENTRIES, NODE_ONLY, ...LAZY].map((e) => `dist/lib/${e}.js`).sort());
    const total = [...ENTRIES, ...LAZY].reduce((a, e) => a + entryGzip[e]!, 0);
    console.log(`all entries and the chunk the core loads on first use: ${(total / 1000).toFixed(1)} kB gzip`);
    expect(entryGzip.index).toBeLessThanOrEqual(CORE_GZIP_BUDGET);
    expect(total).toBeLessThanOrEqual(TOTAL_GZIP_BUDGET);
  });

  it("builds for the browser without externalizing Node modules", () => {
    expect(appBuildLog).toMatch(/built in/);
    const assets = join(work, "app/dist/assets");
    const js = readdirSync(assets).filter((f) => f.endsWith(".js"));
    const gz = js.reduce((n, f) => n + gzipSync(readFileSync(join(assets, f)), { level: 9 }).byteLength, 0);
    console.log(`the XOR app's JavaScript (the library tree-shaken): ${(gz / 1000).toFixed(1)} kB gzip in ${js.length} file(s)`);
    expect(appBuildLog).not.toMatch(/externalized|node:|webgpu|warning/i);
    // The Node-only half is neither bundled nor split into a chunk of the app.
    expect(js.some((f) => readFileSync(join(assets, f), "utf8").includes("lvp_icd")), "dist/lib/node.js is in the browser app").toBe(false);
  });

  it("finds Dawn and a Vulkan driver in Node through the installed package (dist/lib/node.js)", async () => {
    // What a Node user does: `npm install webgpu` beside gradwgsl (here, the checkout's copy).
    symlinkSync(join(root, "node_modules/webgpu"), join(work, "app/node_modules/webgpu"), "dir");
    const script = `import { acquireGpu } from "gradwgsl"; const g = await acquireGpu(); console.log(JSON.stringify(g.report)); g.device.destroy();`;
    const out = await run(process.execPath, ["--input-type=module", "-e", script], join(work, "app"));
    const report = JSON.parse(out.split("\n").find((l) => l.startsWith("{"))!) as { runtime: string; description: string };
    expect(report.runtime).toBe("dawn");
    expect(report.description.length).toBeGreaterThan(0);
  }, 60_000);

  it("trains in Node through the installed package to the same bits as the sources (shaders minified and renamed, table packed)", async () => {
    if (!existsSync(join(work, "app/node_modules/webgpu"))) symlinkSync(join(root, "node_modules/webgpu"), join(work, "app/node_modules/webgpu"), "dir");
    const installed = join(work, "app/train.mjs");
    writeFileSync(installed, trainScript("gradwgsl", "gradwgsl/models"));
    const sources = join(work, "train_sources.mts");
    writeFileSync(sources, trainScript(join(root, "src/index.ts"), join(root, "src/entry/models.ts")));
    const result = (out: string) => JSON.parse(out.split("\n").find((l) => l.startsWith("{"))!) as Record<string, { loss: number[]; predictions: number[]; timed: boolean | string }>;
    const shipped = result(await run(process.execPath, [installed], join(work, "app")));
    const fromSources = result(await run(process.execPath, ["--import", "tsx", "--import", join(root, "scripts/node-hooks.mjs"), sources], root));
    expect(Object.keys(shipped)).toEqual(["conv", "functional", "cnn"]);
    for (const { loss } of Object.values(shipped)) expect(loss.length === 3 && loss.every(Number.isFinite) && loss[2]! < loss[0]!, String(loss)).toBe(true);
    expect(shipped).toEqual(fromSources);
  }, 180_000);

  it("trains XOR in headless Chromium", async () => {
    const page = await browser!.newPage();
    const errors: string[] = [];
    page.on("pageerror", (e) => errors.push(String(e)));
    page.on("console", (m) => {
      if (m.type() === "error") errors.push(m.text());
    });
    await page.goto(`http://localhost:${(server!.address() as AddressInfo).port}/`);
    await page.waitForFunction(() => document.getElementById("result")?.textContent, { timeout: 90_000 });
    const result = JSON.parse((await page.$eval("#result", (el) => el.textContent))!) as { loss: number[]; predictions: number[]; savedBytes: number; adapter: string; error?: string };
    await page.close();
    expect(result.error).toBeUndefined();
    console.log(`XOR on ${result.adapter}: loss ${result.loss[0]!.toFixed(3)} → ${result.loss.at(-1)!.toFixed(3)}, predictions ${result.predictions.map((p) => p.toFixed(2)).join(" ")}`);
    expect(result.adapter).toMatch(/swiftshader/i);
    expect(result.loss).toHaveLength(200);
    expect(result.loss.at(-1)!).toBeLessThan(result.loss[0]! / 2);
    expect(result.predictions).toHaveLength(4);
    // gradwgsl/io resolved from the installed package: 2×8 + 8 + 8 + 1 float32 weights, and a header.
    expect(result.savedBytes).toBeGreaterThan(33 * 4);
    [0, 1, 1, 0].forEach((label, i) => expect(result.predictions[i]! > 0.5, `prediction ${i}: ${result.predictions[i]}`).toBe(label === 1));
    expect(errors).toEqual([]);
  }, 120_000);
});
