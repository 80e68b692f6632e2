// Device acquisition in Node: the report names the adapter; when no driver works, the error lists what
// was tried and how to install one; GPU validation errors are reported, not swallowed.
import { describe, expect, it } from "vitest";
import { acquireGpu } from "../src/gpu/device.ts";
import { Engine } from "../src/engine.ts";
import { GpuError } from "../src/errors.ts";

describe("device acquisition", () => {
  it("finds an adapter and says which", async () => {
    const gpu = await acquireGpu();
    expect(gpu.report.runtime).toBe("dawn");
    expect(gpu.report.description.length + gpu.report.device.length).toBeGreaterThan(0);
    expect(typeof gpu.report.isCpu).toBe("boolean");
    gpu.device.destroy();
  });

  it("with no usable driver, lists what it tried and the install command", async () => {
    const saved = process.env.VK_ICD_FILENAMES;
    process.env.VK_ICD_FILENAMES = "/nonexistent/icd.json";
    try {
      const err = await acquireGpu({ adapter: "hardware" }).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(GpuError);
      expect((err as Error).message).toMatch(/No WebGPU adapter found\. Tried:\n {2}- \/nonexistent\/icd\.json: no adapter/);
      expect((err as Error).message).toMatch(/apt-get install -t bookworm-backports mesa-vulkan-drivers/);
    } finally {
      if (saved === undefined) delete process.env.VK_ICD_FILENAMES;
      else process.env.VK_ICD_FILENAMES = saved;
    }
  });

  // The vec4 twins and fusion are on by default, except on llvmpipe, which compiles each kernel at its
  // first dispatch (so every extra kernel lengthens the first step); asked for, they are on anywhere.
  it("takes the vec4 kernels and fusion by default except on llvmpipe, and anywhere when asked", async () => {
    const plain = await Engine.create({ adapter: "lavapipe" });
    const swiftshader = await Engine.create({ adapter: "swiftshader" });
    const asked = await Engine.create({ adapter: "lavapipe", vectors: true, fusion: true });
    const off = await Engine.create({ adapter: "swiftshader", vectors: false, fusion: false });
    try {
      expect([plain, swiftshader, asked, off].map((e) => [e.vec4, e.fusion])).toEqual([
        [false, false],
        [true, true],
        [true, true],
        [false, false],
      ]);
    } finally {
      for (const e of [plain, swiftshader, asked, off]) e.dispose();
    }
  });

  // The k4 matmul variants are measured by "auto" where they can be faster (SwiftShader), not on llvmpipe,
  // where they compile 0.5 s longer at the first dispatch and run no faster; either may still be pinned.
  it("measures the k4 matmul variants except on llvmpipe", async () => {
    const lavapipe = await Engine.create({ adapter: "lavapipe", matmul: "guess" });
    const swiftshader = await Engine.create({ adapter: "swiftshader", matmul: "guess" });
    const pinned = await Engine.create({ adapter: "lavapipe", matmul: "subgroup8k4" });
    try {
      expect(lavapipe.matmulVariants).toContain("subgroup8k4");
      expect(lavapipe.matmulCandidates).toEqual(lavapipe.matmulVariants.filter((v) => !v.endsWith("k4")));
      expect(swiftshader.matmulCandidates).toEqual(swiftshader.matmulVariants);
      expect(swiftshader.matmulCandidates).toContain("subgroup4k4");
      expect(pinned.matmulVariant).toBe("subgroup8k4");
    } finally {
      for (const e of [lavapipe, swiftshader, pinned]) e.dispose();
    }
  });

  it("reports an uncaptured validation error at the next read, with the culprit's label", async () => {
    const errors: GpuError[] = [];
    const e = await Engine.create({ onError: (err) => errors.push(err) });
    const t = e.tensor([1, 2, 3], [3]);
    // Copying past the end of a buffer is a validation error.
    const enc = e.device.createCommandEncoder({ label: "bad copy" });
    enc.copyBufferToBuffer(t.buffer, 0, t.buffer, 8, 64);
    e.device.queue.submit([enc.finish()]);
    await e.device.queue.onSubmittedWorkDone();
    await expect(t.read()).rejects.toThrow(GpuError);
    expect(errors.length).toBeGreaterThan(0);
    e.dispose();
  });
});

describe("matmul autotuning", () => {
  it("measures the variants once per adapter, caches the choice, and lets a user pin one", async () => {
    const { mkdtemp, readFile } = await import("node:fs/promises");
    const { tmpdir } = await import("node:os");
    const { join } = await import("node:path");
    const dir = await mkdtemp(join(tmpdir(), "gradwgsl-tune-"));
    const saved = process.env.GRADWGSL_CACHE_DIR;
    process.env.GRADWGSL_CACHE_DIR = dir;
    try {
      const { tunedMatmul } = await import("../src/tuning.ts");
      const e = await Engine.create({ matmul: "guess" });
      const first = await tunedMatmul(e.kernels, e.gpu.report, e.matmulVariants);
      expect(Object.keys(first.measured ?? {}).sort()).toEqual([...e.matmulVariants].sort()); // each works, each timed
      const times = Object.entries(first.measured!) as [string, number][];
      const fastest = times.reduce((best, t) => (t[1] < best[1] ? t : best))[0];
      expect(first.variant).toBe(fastest);
      const cache = JSON.parse(await readFile(join(dir, "matmul-tuning.v5.json"), "utf8"));
      expect(Object.values(cache)).toEqual([fastest]);
      const again = await tunedMatmul(e.kernels, e.gpu.report, e.matmulVariants);
      expect(again).toEqual({ variant: fastest }); // from the cache, not measured
      // Without the vec4 kernels the subgroup kernels run other entries: measured and cached apart.
      const scalar = await tunedMatmul(e.kernels, e.gpu.report, e.matmulVariants, false);
      expect(Object.keys(scalar.measured ?? {}).sort()).toEqual([...e.matmulVariants].sort());
      const both = JSON.parse(await readFile(join(dir, "matmul-tuning.v5.json"), "utf8"));
      expect(Object.values(both).sort()).toEqual([fastest, scalar.variant].sort());
      expect(await tunedMatmul(e.kernels, e.gpu.report, e.matmulVariants, false)).toEqual({ variant: scalar.variant });
      e.dispose();
      const pinned = await Engine.create({ matmul: fastest === "direct" ? "tiled" : "direct" });
      expect(pinned.matmulVariant).not.toBe(fastest);
      pinned.dispose();
    } finally {
      if (saved === undefined) delete process.env.GRADWGSL_CACHE_DIR;
      else process.env.GRADWGSL_CACHE_DIR = saved;
    }
  });
});
