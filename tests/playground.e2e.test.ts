// End to end: builds the demo site into a temporary folder, serves it as plain static files and drives the
// playground page in headless Chromium on SwiftShader: circles and XOR train to ≥ 90% test accuracy (read
// from the page), the GPU-computed boundary changes from its untrained state and its colours separate the
// classes where the data says they should, the confusion counts add up to the test set, the page fits a
// 390 px phone without sideways scrolling, nothing is logged as an error, and a browser without WebGPU is
// told why.
import { mkdtempSync, rmSync } from "node:fs";
import type { Server } from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import puppeteer, { type Browser, type Page, type Viewport } from "puppeteer";
import { build } from "vite";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { EXTENT, GRID, gridPoint, POINTS } from "../demo/playground_protocol.ts";
import { CHROMIUM_FLAGS, openPage, serveStatic } from "./browser.ts";

const root = fileURLToPath(new URL("..", import.meta.url));
const out = mkdtempSync(join(tmpdir(), "gradwgsl-playground-"));
/** How long a dataset may take to reach 90% test accuracy (it takes a few seconds on SwiftShader). */
const TRAIN_TIMEOUT_MS = 25_000;

let server: Server | undefined;
let browser: Browser | undefined;
let origin = "";

beforeAll(async () => {
  // Its own output folder, so that it can run beside tests/demo.e2e.test.ts (which builds into dist/).
  await build({ configFile: join(root, "demo/vite.config.ts"), logLevel: "warn", build: { outDir: out, emptyOutDir: true } });
  server = await serveStatic(out);
  origin = `http://localhost:${(server.address() as AddressInfo).port}`;
  browser = await puppeteer.launch({ executablePath: process.env.CHROMIUM ?? "/usr/bin/chromium", headless: true, args: CHROMIUM_FLAGS });
}, 120_000);

afterAll(async () => {
  await browser?.close();
  server?.close();
  rmSync(out, { recursive: true, force: true });
});

async function openPlayground(viewport: Viewport): Promise<{ page: Page; errors: string[] }> {
  const { page, errors } = await openPage(browser!, `${origin}/playground.html`, viewport);
  await page.waitForSelector('[data-testid="play"]:not([disabled])', { timeout: 60_000 });
  return { page, errors };
}

const sel = (id: string) => `[data-testid="${id}"]`;
/** A figure the page shows, as the number in its data-value. */
const value = (page: Page, id: string) => page.$eval(sel(id), (el) => Number((el as HTMLElement).dataset.value));
const running = (page: Page, on: boolean) => page.waitForFunction((v) => document.body.dataset.running === v, { timeout: 10_000 }, String(on));

/** The heat map's GRID × GRID RGBA pixels. */
const heat = (page: Page) =>
  page.$eval(sel("boundary"), (el) => {
    const c = el as HTMLCanvasElement;
    return Array.from(c.getContext("2d")!.getImageData(0, 0, c.width, c.height).data);
  });

/** Which class colour the heat map leans to at plane point (x, y): class 0 is orange (red > blue), class 1 blue. */
function leansTo(px: number[], x: number, y: number): 0 | 1 {
  const cell = (2 * EXTENT) / GRID;
  const [i, j] = [Math.floor((x + EXTENT) / cell), Math.floor((EXTENT - y) / cell)];
  const [r, , b] = px.slice(4 * (j * GRID + i), 4 * (j * GRID + i) + 3) as [number, number, number];
  return b > r ? 1 : 0;
}

/**
 * Plays until the test accuracy on the page reaches 0.9, pauses, and checks the figures against each other.
 * Returns the seconds it took and the steps per second the page showed.
 */
async function trainTo90(page: Page, name: string): Promise<{ seconds: number; steps: number; stepsPerSecond: number }> {
  const t0 = performance.now();
  await page.click(sel("play"));
  await running(page, true);
  // The step of the first frame at 90%, read in the same poll as the accuracy.
  const at90 = await page.waitForFunction(
    (a, s) => Number(document.querySelector<HTMLElement>(a)?.dataset.value) >= 0.9 && Number(document.querySelector<HTMLElement>(s)?.dataset.value),
    { timeout: TRAIN_TIMEOUT_MS, polling: "mutation" },
    sel("test-accuracy"),
    sel("step-count"),
  );
  const seconds = (performance.now() - t0) / 1000;
  const steps = (await at90.jsonValue()) as number;
  expect(steps, name).toBeGreaterThan(0);
  await new Promise((r) => setTimeout(r, 500)); // a steps-per-second figure over several frames
  const stepsPerSecond = await value(page, "steps-per-second");
  await page.click(sel("play"));
  await running(page, false);
  await new Promise((r) => setTimeout(r, 300)); // the frame of the last chunk

  const n = await value(page, "test-size");
  const [tp, fp, fn, tn] = await Promise.all(["cm-tp", "cm-fp", "cm-fn", "cm-tn"].map((id) => value(page, id)));
  expect(tp! + fp! + fn! + tn!, `${name}: confusion counts`).toBe(n);
  expect(await value(page, "test-accuracy"), `${name}: accuracy against the confusion counts`).toBeCloseTo((tp! + tn!) / n, 6);
  const [precision, recall, f1] = await Promise.all(["test-precision", "test-recall", "test-f1"].map((id) => value(page, id)));
  expect(precision).toBeCloseTo(tp! / (tp! + fp!), 6);
  expect(recall).toBeCloseTo(tp! / (tp! + fn!), 6);
  expect(f1).toBeCloseTo((2 * precision! * recall!) / (precision! + recall!), 6);
  console.log(`playground ${name}: ${(100 * (await value(page, "test-accuracy"))).toFixed(1)}% test accuracy when paused (≥ 90% after ${seconds.toFixed(2)} s, step ${steps}; ${stepsPerSecond.toFixed(0)} steps/s)`);
  return { seconds, steps, stepsPerSecond };
}

describe("playground page (built, served statically, SwiftShader)", () => {
  it("circles, then XOR: ≥ 90% test accuracy, a boundary that separates the classes, consistent figures", async () => {
    const { page, errors } = await openPlayground({ width: 1280, height: 900 });
    expect(await page.$eval(sel("dataset-circles"), (b) => b.getAttribute("aria-checked"))).toBe("true");
    expect(await value(page, "test-size")).toBe(POINTS / 2);
    const untrained = await heat(page);
    expect(untrained).toHaveLength(GRID * GRID * 4);
    expect(await value(page, "test-accuracy"), "the untrained network").toBeLessThan(0.9);

    await trainTo90(page, "circles");
    const circles = await heat(page);
    const changed = circles.filter((v, k) => Math.abs(v - untrained[k]!) > 8).length;
    expect(changed, "boundary pixels that changed").toBeGreaterThan(GRID * GRID);
    // The disc in the middle is class 0, the ring around it class 1 (gridPoint's centres, away from the edge).
    expect(leansTo(circles, 0, 0)).toBe(0);
    expect(leansTo(circles, ...gridPoint(GRID / 2 + 4, GRID / 2 - 4))).toBe(0);
    for (let a = 0; a < 8; a++) expect(leansTo(circles, 0.85 * Math.cos((a * Math.PI) / 4), 0.85 * Math.sin((a * Math.PI) / 4)), `ring at ${a * 45}°`).toBe(1);

    // XOR: a fresh network and fresh points; the same-sign quadrants are class 0.
    await page.click(sel("dataset-xor"));
    await page.waitForFunction((s) => document.querySelector<HTMLElement>(s)?.dataset.step === "0", { timeout: 10_000 }, sel("boundary"));
    expect(await value(page, "test-accuracy"), "the untrained network").toBeLessThan(0.9);
    await trainTo90(page, "xor");
    const xor = await heat(page);
    for (const [x, y, label] of [[0.55, 0.55, 0], [-0.55, -0.55, 0], [0.55, -0.55, 1], [-0.55, 0.55, 1]] as const) expect(leansTo(xor, x, y), `XOR at (${x}, ${y})`).toBe(label);
    expect(errors).toEqual([]);
    await page.close();
  });

  it("fits a 390 px phone without sideways scrolling, the boundary in view", async () => {
    const { page, errors } = await openPlayground({ width: 390, height: 844, isMobile: true, hasTouch: true, deviceScaleFactor: 2 });
    await page.click(sel("step"));
    await page.waitForFunction((s) => document.querySelector<HTMLElement>(s)?.dataset.step === "1", { timeout: 10_000 }, sel("boundary"));
    const layout = await page.evaluate(() => {
      const plane = document.querySelector('[data-testid="boundary"]')!.getBoundingClientRect();
      const widest = Math.max(...Array.from(document.querySelectorAll("body *")).map((e) => e.getBoundingClientRect().right));
      return { scroll: document.documentElement.scrollWidth, inner: window.innerWidth, widest, plane: { left: plane.left, right: plane.right, width: plane.width } };
    });
    expect(layout.inner).toBe(390);
    expect(layout.scroll).toBeLessThanOrEqual(390);
    expect(layout.widest).toBeLessThanOrEqual(390);
    expect(layout.plane.width).toBeGreaterThan(300);
    expect(errors).toEqual([]);
    await page.close();
  });

  it("says why, with Play off, where the browser offers no WebGPU adapter", async () => {
    const plain = await puppeteer.launch({ executablePath: process.env.CHROMIUM ?? "/usr/bin/chromium", headless: true, args: CHROMIUM_FLAGS.filter((f) => !/webgpu|vulkan|swiftshader/i.test(f)) });
    try {
      const page = await plain.newPage();
      await page.goto(`${origin}/playground.html`);
      await page.waitForSelector(`${sel("webgpu-problem")}:not([hidden])`, { timeout: 30_000 });
      expect(await page.$eval(sel("webgpu-problem"), (el) => el.textContent)).toMatch(/WebGPU is not available here[\s\S]*(no adapter|navigator\.gpu is missing)[\s\S]*https/);
      expect(await page.$eval(sel("play"), (b) => (b as HTMLButtonElement).disabled)).toBe(true);
    } finally {
      await plain.close();
    }
  });
});
