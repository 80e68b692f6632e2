// End to end: builds the demo site and the library (npm run build), serves dist/ as plain static files, and
// drives both in headless Chromium on SwiftShader: the demo trains the reference CNN (the loss falls),
// predicts a digit drawn with the mouse, and the docs' embedding example trains against the built bundle.
import { execFile } from "node:child_process";
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { extname, join, normalize } from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import puppeteer, { type Browser, type Page } from "puppeteer";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { classScores, confusionMatrix } from "../demo/metrics.ts";
import { toMnist } from "../demo/preprocess.ts";

const root = fileURLToPath(new URL("..", import.meta.url));
const dist = join(root, "dist");
const run = promisify(execFile);
const CHROMIUM_FLAGS = [
  "--enable-unsafe-webgpu",
  "--enable-features=Vulkan",
  "--use-vulkan=swiftshader",
  "--use-webgpu-adapter=swiftshader",
  "--enable-unsafe-swiftshader",
  "--no-sandbox",
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync",
  "--no-first-run",
];
const MIME: Record<string, string> = { ".html": "text/html", ".js": "text/javascript", ".css": "text/css", ".map": "application/json", ".json": "application/json" };

let server: Server | undefined;
let browser: Browser | undefined;
let origin = "";

/** A static file server over dist/ (demo at /demo/, library at /lib/), nothing else. */
function serveDist(): Promise<Server> {
  const s = createServer((req, res) => {
    const path = normalize(decodeURIComponent(new URL(req.url ?? "/", "http://x").pathname));
    const file = join(dist, path.endsWith("/") ? `${path}index.html` : path);
    try {
      if (!file.startsWith(dist)) throw new Error("outside dist");
      const body = readFileSync(file);
      res.writeHead(200, { "Content-Type": MIME[extname(file)] ?? "application/octet-stream", "Content-Length": body.byteLength });
      res.end(body);
    } catch {
      res.writeHead(404).end("not found");
    }
  });
  return new Promise((resolve) => s.listen(0, "127.0.0.1", () => resolve(s)));
}

beforeAll(async () => {
  await run("npm", ["run", "--silent", "build"], { cwd: root });
  server = await serveDist();
  origin = `http://localhost:${(server.address() as AddressInfo).port}`;
  browser = await puppeteer.launch({ executablePath: process.env.CHROMIUM ?? "/usr/bin/chromium", headless: true, args: CHROMIUM_FLAGS });
}, 180_000);

afterAll(async () => {
  await browser?.close();
  server?.close();
});

async function openPage(url: string): Promise<{ page: Page; errors: string[] }> {
  const page = await browser!.newPage();
  const errors: string[] = [];
  page.on("pageerror", (e) => errors.push(String(e)));
  page.on("console", (m) => {
    if (m.type() === "error") errors.push(m.text());
  });
  await page.setViewport({ width: 1400, height: 1000 });
  await page.goto(url);
  return { page, errors };
}

const text = (page: Page, id: string) => page.$eval(`[data-testid="${id}"]`, (el) => el.textContent ?? "");
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe("demo helpers", () => {
  it("turns a drawing into a centred 28×28 MNIST-style image", () => {
    // A 60×100 bar of ink in the top-left corner of a 280×280 pad.
    const gray = new Float32Array(280 * 280);
    for (let y = 10; y < 110; y++) for (let x = 20; x < 80; x++) gray[y * 280 + x] = 1;
    const img = toMnist(gray, 280, 280)!;
    let mass = 0, mx = 0, my = 0, top = 28, bottom = -1;
    img.forEach((v, i) => {
      const [x, y] = [i % 28, Math.floor(i / 28)];
      mass += v;
      mx += v * (x + 0.5);
      my += v * (y + 0.5);
      if (v) [top, bottom] = [Math.min(top, y), Math.max(bottom, y)];
    });
    expect(bottom - top + 1).toBe(20); // the longer side fills the 20-pixel box
    expect(Math.abs(mx / mass - 14)).toBeLessThanOrEqual(0.5);
    expect(Math.abs(my / mass - 14)).toBeLessThanOrEqual(0.5);
    expect(Math.max(...img)).toBe(255);
    expect(toMnist(new Float32Array(100), 10, 10)).toBeUndefined();
  });

  it("computes the confusion matrix and per-class precision, recall and F1", () => {
    const m = confusionMatrix([0, 0, 1, 1, 2], [0, 1, 1, 1, 1], 3);
    expect(m).toEqual([[1, 1, 0], [0, 2, 0], [0, 1, 0]]);
    const s = classScores(m);
    expect(s[0]).toEqual({ precision: 1, recall: 0.5, f1: 2 / 3, support: 2 });
    expect(s[1]!.precision).toBeCloseTo(0.5);
    expect(s[1]!.recall).toBe(1);
    expect(s[2]).toEqual({ precision: 0, recall: 0, f1: 0, support: 1 });
  });
});

describe("demo page (built, served statically, SwiftShader)", () => {
  it("shows the adapter, trains the CNN with a falling loss, predicts a drawn digit, and times kernels", async () => {
    const t0 = Date.now();
    const { page, errors } = await openPage(`${origin}/demo/index.html`);
    await page.waitForSelector('[data-testid="train-start"]:not([disabled])', { timeout: 90_000 });
    const adapter = await text(page, "adapter-info");
    expect(adapter).toMatch(/swiftshader/i);
    expect(adapter).toMatch(/CPU fallback/);

    // Small settings through the controls: batch 32, 1,000 training images.
    await page.select('[data-testid="batch-size"]', "32");
    await page.select('[data-testid="train-size"]', "1000");
    await page.click('[data-testid="train-start"]');

    // Loss readings (step, loss) until one is at least 20 steps after the first.
    const readings: { step: number; loss: number }[] = [];
    const deadline = Date.now() + 120_000;
    while (Date.now() < deadline) {
      const loss = Number(await text(page, "loss-value"));
      const step = Number(await text(page, "step-count"));
      if (Number.isFinite(loss) && (readings.length === 0 || readings[readings.length - 1]!.loss !== loss)) readings.push({ step, loss });
      if (readings.length > 1 && readings[readings.length - 1]!.step - readings[0]!.step >= 20) break;
      await sleep(250);
    }
    const first = readings[0]!;
    const last = readings[readings.length - 1]!;
    const rate = await text(page, "samples-per-second");
    console.log(`demo: loss ${first.loss} at step ${first.step} → ${last.loss} at step ${last.step}; ${rate} samples/s; ${((Date.now() - t0) / 1000).toFixed(0)} s since page load`);
    expect(last.step - first.step).toBeGreaterThanOrEqual(20);
    expect(last.loss).toBeLessThan(first.loss);
    expect(Number(rate)).toBeGreaterThan(0);

    // Draw a 7 with the mouse; the prediction appears.
    const box = (await (await page.$('[data-testid="draw-canvas"]'))!.boundingBox())!;
    const at = (fx: number, fy: number): [number, number] => [box.x + fx * box.width, box.y + fy * box.height];
    await page.mouse.move(...at(0.28, 0.22));
    await page.mouse.down();
    await page.mouse.move(...at(0.72, 0.22), { steps: 8 });
    await page.mouse.move(...at(0.45, 0.82), { steps: 10 });
    await page.mouse.up();
    await page.waitForFunction(
      () => {
        const el = document.querySelector<HTMLElement>('[data-testid="draw-prediction"]');
        return el?.dataset.digit && el.dataset.busy === "false";
      },
      { timeout: 30_000 },
    );
    const prediction = await text(page, "draw-prediction");
    console.log(`demo: drawn 7 read as "${prediction}"`);
    expect(prediction).toMatch(/^\d .*sure/);

    // Kernel times: measured after step 8 (SwiftShader offers timestamp queries) or plainly "not available".
    await page.waitForFunction(() => document.querySelector<HTMLElement>('[data-testid="kernel-times"]')?.dataset.available, { timeout: 30_000 });
    const kernels = await text(page, "kernel-times");
    expect(kernels).toMatch(/total \(\d+ kernels\)|Not available/);

    // Pause, evaluate (confusion matrix and per-class scores), and keep a screenshot of the whole page.
    await page.click('[data-testid="train-pause"]');
    await page.waitForFunction(() => document.querySelector('[data-testid="train-state"]')?.textContent?.startsWith("Paused"), { timeout: 30_000 });
    const pausedAt = await text(page, "step-count");
    await page.click('[data-testid="evaluate"]');
    await page.waitForFunction(() => document.querySelectorAll('[data-testid="confusion-matrix"] td').length === 100, { timeout: 60_000 });
    expect(await text(page, "step-count")).toBe(pausedAt);
    expect(await page.$$('[data-testid="sample"]')).toHaveLength(40);
    expect(await page.$$('[data-testid="feature-maps"] canvas')).toHaveLength(32);
    mkdirSync(join(root, "out"), { recursive: true });
    await page.screenshot({ path: join(root, "out/demo.png"), fullPage: true });

    // Reset builds a fresh model: back to step 0, ready to start again.
    await page.click('[data-testid="train-reset"]');
    await page.waitForFunction(() => document.querySelector('[data-testid="train-state"]')?.textContent === "Ready: press Start.", { timeout: 30_000 });
    expect(await text(page, "step-count")).toBe("0");
    expect(errors).toEqual([]);
    await page.close();
  }, 240_000);

  it("explains what to do, instead of a blank page, where the browser offers no WebGPU adapter", async () => {
    const plain = await puppeteer.launch({ executablePath: process.env.CHROMIUM ?? "/usr/bin/chromium", headless: true, args: CHROMIUM_FLAGS.filter((f) => !/webgpu|vulkan|swiftshader/i.test(f)) });
    try {
      const page = await plain.newPage();
      await page.goto(`${origin}/demo/index.html`);
      await page.waitForSelector('[data-testid="webgpu-problem"]:not([hidden])', { timeout: 30_000 });
      expect(await text(page, "webgpu-problem")).toMatch(/WebGPU is not available here[\s\S]*(no adapter|navigator\.gpu is missing)[\s\S]*https/);
      expect(await text(page, "adapter-info")).toMatch(/not available/);
      expect(await page.$eval('[data-testid="train-start"]', (b) => (b as HTMLButtonElement).disabled)).toBe(true);
    } finally {
      await plain.close();
    }
  }, 60_000);

  it("runs the embedding example of docs/embedding.md verbatim against the built library", async () => {
    const doc = readFileSync(join(root, "docs/embedding.md"), "utf8");
    const example = /```js\n([\s\S]*?)```/.exec(doc)![1]!;
    expect(readFileSync(join(root, "demo/embed.html"), "utf8")).toContain(example);
    expect(readFileSync(join(root, "README.md"), "utf8")).toContain(example);
    const { page, errors } = await openPage(`${origin}/demo/embed.html`);
    await page.waitForFunction(() => /loss [\d.]+ → [\d.]+/.test(document.querySelector("#log")?.textContent ?? "") || /error/.test(document.querySelector("#log")?.textContent ?? ""), { timeout: 60_000 });
    const log = await text(page, "embed-log");
    const [, before, after] = /loss ([\d.]+) → ([\d.]+)/.exec(log) ?? [];
    console.log(`embedding example: ${log.trim().split("\n")[0]}`);
    expect(errors).toEqual([]);
    expect(Number(after)).toBeLessThan(Number(before) / 2);
    await page.close();

    // The declarations are usable by a consumer that imports the package by name.
    const dir = join(root, "out/embed-types");
    mkdirSync(dir, { recursive: true });
    writeFileSync(
      join(dir, "consumer.ts"),
      'import { Engine, Sequential, Dense, type History } from "gradwgsl";\n' +
        "export async function train(device: GPUDevice): Promise<History> {\n" +
        "  const model = new Sequential([Dense({ units: 1, inputShape: [2] })]);\n" +
        '  await model.compile({ loss: "meanSquaredError", engine: await Engine.create({ device }) });\n' +
        "  return model.fit(new Float32Array(4), [1, 2]);\n}\n",
    );
    const tsc = join(root, "node_modules/.bin/tsc");
    await run(tsc, ["--noEmit", "--strict", "--module", "esnext", "--moduleResolution", "bundler", "--target", "es2022", "--lib", "es2022,dom", "--types", "@webgpu/types", join(dir, "consumer.ts")], { cwd: root });
  }, 120_000);
});
