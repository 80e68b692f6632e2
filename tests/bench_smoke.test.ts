// CI's smoke run of the benchmark: one case in headless Chromium through puppeteer, both engines,
// and a report on disk that names the adapter and holds real figures.
import { execFile } from "node:child_process";
import { mkdtemp, readdir, readFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { expect, it } from "vitest";

it("npm run bench -- --smoke writes a report with figures for both engines", { timeout: 300_000 }, async () => {
  const out = await mkdtemp(join(tmpdir(), "gradwgsl-bench-"));
  const { stdout } = await promisify(execFile)("npm", ["run", "--silent", "bench", "--", "--smoke", "--out", out], { timeout: 280_000, maxBuffer: 1 << 24 });
  expect(stdout).toMatch(/\| matmul 256×256×256 \| GFLOP\/s \|/);
  const files = await readdir(out);
  expect(files.filter((f) => f.endsWith(".json"))).toHaveLength(1);
  expect(files.filter((f) => f.endsWith(".md"))).toHaveLength(1);
  const run = JSON.parse(await readFile(join(out, files.find((f) => f.endsWith(".json"))!), "utf8"));
  expect(run.runtime).toMatch(/Chrome/);
  expect(run.adapter.length).toBeGreaterThan(3);
  const [c] = run.cases;
  expect(c.ours.n).toBeGreaterThanOrEqual(5);
  expect(c.tfjs.n).toBeGreaterThanOrEqual(5);
  expect(c.ours.median).toBeGreaterThan(0);
  expect(c.tfjs.median).toBeGreaterThan(0);
  // GPU-timestamp figures, where the adapter offers timestamp-query (SwiftShader does): finite and positive.
  if (c.oursGpu) expect(Number.isFinite(c.oursGpu.median) && c.oursGpu.median > 0).toBe(true);
  expect(stdout).toMatch(/\| this engine, GPU time \| TF\.js, GPU time \|/);
});
