// Augmentation in the GPU batch gather: random whole-pixel shifts and rotations of image examples, against a
// float64 CPU reference of the same transform (the same integer hash, so the same shifts and angles), on
// ragged shapes; exact shifts when the rotation is 0; fit() with augment deterministic under the seed and
// a no-op when it asks for nothing; bad options refused.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { loadMnist, subset, type MnistSplit } from "../src/data/mnist.ts";
import type { Engine } from "../src/engine.ts";
import { ConfigError } from "../src/errors.ts";
import { Conv2D, Dense, Flatten, MaxPooling2D, Sequential } from "../src/index.ts";
import * as K from "../src/kernels.ts";
import { randomArray } from "./reference/random.ts";
import { expectRelClose, gpuEngine } from "./gpu_helpers.ts";

let e: Engine;
let train: MnistSplit;
beforeAll(async () => {
  e = await gpuEngine();
  train = subset((await loadMnist()).train, 256);
});
afterAll(() => e?.dispose());

/** shaders/lib/hash.wgsl's pcg, in 32-bit integer arithmetic. */
function pcg(v: number): number {
  const state = (Math.imul(v >>> 0, 747796405) + 2891336453) >>> 0;
  const word = Math.imul(((state >>> ((state >>> 28) + 4)) ^ state) >>> 0, 277803737) >>> 0;
  return ((word >>> 22) ^ word) >>> 0;
}

/** data.wgsl's augmented gather in float64: row r of the batch from example order[offset + r]. */
function reference(src: ArrayLike<number>, order: Uint32Array, g: { B: number; H: number; W: number; C: number; offset: number; count: number; shift: number; rotateDeg: number; seed: number; scale: number }): Float64Array {
  const { B, H, W, C } = g;
  const row = H * W * C;
  const out = new Float64Array(B * row);
  const rotate = Math.fround((g.rotateDeg * Math.PI) / 180);
  for (let r = 0; r < B; r++) {
    const valid = Math.min(r, g.count - 1); // rows past count repeat the last valid one, transform included
    const base = order[g.offset + valid]! * row;
    const h0 = pcg((g.seed ^ pcg(valid + 1)) >>> 0);
    const h1 = pcg(h0);
    const h2 = pcg(h1);
    const span = 2 * g.shift + 1;
    const dx = (h0 % span) - g.shift;
    const dy = (h1 % span) - g.shift;
    const angle = Math.fround(((h2 >>> 8) / 16777216) * 2 - 1) * rotate;
    const [cx, cy] = [(W - 1) / 2, (H - 1) / 2];
    const pixel = (y: number, x: number, c: number) => (y < 0 || x < 0 || y >= H || x >= W ? 0 : src[base + (y * W + x) * C + c]!);
    for (let oy = 0; oy < H; oy++) {
      for (let ox = 0; ox < W; ox++) {
        const [ux, uy] = [ox - dx - cx, oy - dy - cy];
        const sx = Math.cos(angle) * ux + Math.sin(angle) * uy + cx;
        const sy = Math.cos(angle) * uy - Math.sin(angle) * ux + cy;
        const [x0, y0] = [Math.floor(sx), Math.floor(sy)];
        const [fx, fy] = [sx - x0, sy - y0];
        for (let c = 0; c < C; c++) {
          const top = pixel(y0, x0, c) * (1 - fx) + pixel(y0, x0 + 1, c) * fx;
          const bottom = pixel(y0 + 1, x0, c) * (1 - fx) + pixel(y0 + 1, x0 + 1, c) * fx;
          out[r * row + (oy * W + ox) * C + c] = (top * (1 - fy) + bottom * fy) * g.scale;
        }
      }
    }
  }
  return out;
}

async function gpuGather(kind: "u8" | "f32", src: Uint8Array | Float32Array, order: Uint32Array, g: Parameters<typeof reference>[2]): Promise<Float32Array> {
  const row = g.H * g.W * g.C;
  const words = kind === "u8" ? new Uint32Array(new Uint8Array([...src, 0, 0, 0].slice(0, Math.ceil(src.length / 4) * 4)).buffer) : undefined;
  const source = kind === "u8" ? e.tensor(words!, [words!.length], "u32") : e.tensor(src, [src.length]);
  const ord = e.tensor(order, [order.length], "u32");
  const out = e.tensor(new Float32Array(g.B * row).fill(NaN), [g.B * row]);
  const d = await K.gather(e, { order: ord.buffer, source: source.buffer, out: out.buffer }, kind, { B: g.B, row, offset: g.offset, count: g.count, scale: g.scale }, "augment test", { image: [g.H, g.W, g.C], shift: g.shift, rotate: g.rotateDeg });
  d.setUniforms({ seed: g.seed });
  await e.run([d]);
  const v = (await out.read()) as Float32Array;
  for (const t of [source, ord, out]) t.dispose();
  d.destroy();
  return v;
}

describe("augmented gather against the float64 reference", () => {
  const N = 9;
  const order = Uint32Array.from([4, 7, 1, 8, 0, 3, 6, 2, 5]);
  for (const [H, W, C] of [
    [9, 7, 2],
    [28, 28, 1],
    [5, 11, 3],
  ] as const) {
    const bytes = Uint8Array.from(randomArray(N * H * W * C, H * W + C, 0, 255).map(Math.floor));
    const floats = Float32Array.from(randomArray(N * H * W * C, H + W * C, -1, 1));
    for (const [shift, rotateDeg] of [
      [2, 25],
      [0, 40],
      [3, 0],
    ] as const) {
      const g = { B: 5, H, W, C, offset: 3, count: 4, shift, rotateDeg, seed: 0x1234567 + H, scale: 1 / 255 };
      it(`u8 ${H}×${W}×${C}, shift ${shift}, rotate ${rotateDeg}°${rotateDeg === 0 ? " (exact)" : ""}`, async () => {
        const gpu = await gpuGather("u8", bytes, order, g);
        // No rotation: whole-pixel moves, so each value is the source byte times the f32 scale, exactly.
        if (rotateDeg === 0) expect(Array.from(gpu)).toEqual(Array.from(reference(bytes, order, { ...g, scale: 1 }), (v) => Math.fround(v * Math.fround(g.scale))));
        else expectRelClose(gpu, reference(bytes, order, g), 1e-4, "augmented batch");
      });
      it(`f32 ${H}×${W}×${C}, shift ${shift}, rotate ${rotateDeg}°`, async () => {
        const gf = { ...g, scale: 1 };
        expectRelClose(await gpuGather("f32", floats, order, gf), reference(floats, order, gf), 1e-4, "augmented batch");
      });
    }
  }

  it("changes the batch, differently for another seed, and keeps every pixel in range", async () => {
    const [H, W, C] = [28, 28, 1];
    const img = train.images.subarray(0, 8 * 784);
    const ord = Uint32Array.from({ length: 8 }, (_, i) => i);
    const g = { B: 8, H, W, C, offset: 0, count: 8, shift: 2, rotateDeg: 10, seed: 1, scale: 1 / 255 };
    const a = await gpuGather("u8", img, ord, g);
    const b = await gpuGather("u8", img, ord, { ...g, seed: 2 });
    const plain = Float32Array.from(img, (v) => v / 255);
    const diff = (p: Float32Array, q: Float32Array) => p.reduce((s, v, i) => s + Math.abs(v - q[i]!), 0) / p.length;
    expect(diff(a, plain)).toBeGreaterThan(0.02);
    expect(diff(a, b)).toBeGreaterThan(0.02);
    expect(Math.min(...a)).toBeGreaterThanOrEqual(0);
    expect(Math.max(...a)).toBeLessThanOrEqual(1);
  });
});

describe("fit({ augment })", () => {
  const cnn = () =>
    new Sequential([Conv2D({ filters: 4, kernelSize: 3, activation: "relu", inputShape: [28, 28, 1] }), MaxPooling2D({ poolSize: 2 }), Flatten(), Dense({ units: 10, activation: "softmax" })]);
  async function trained(augment: unknown, seed = 3): Promise<Float32Array[]> {
    const m = cnn();
    await m.compile({ loss: "sparseCategoricalCrossentropy", engine: e, seed });
    await m.fit(train.images, train.labels, { epochs: 1, batchSize: 32, augment: augment as never });
    const w = (await m.getWeights()).map((t) => t.data);
    m.dispose();
    return w;
  }
  const same = (a: Float32Array[], b: Float32Array[]) => a.every((w, i) => Buffer.from(w.buffer).equals(Buffer.from(b[i]!.buffer)));

  it("is deterministic under the seed, changes training, and asking for nothing changes nothing", async () => {
    const plain = await trained(undefined);
    const a = await trained({ shift: 2, rotate: 10 });
    const b = await trained({ shift: 2, rotate: 10 });
    expect(same(a, b)).toBe(true);
    expect(same(a, plain)).toBe(false);
    expect(same(await trained({ shift: 2, rotate: 10 }, 4), a)).toBe(false);
    expect(same(await trained({ shift: 0, rotate: 0 }), plain)).toBe(true);
  });

  it("refuses options it cannot honour", async () => {
    const m = cnn();
    await m.compile({ loss: "sparseCategoricalCrossentropy", engine: e });
    const fit = (augment: unknown) => m.fit(train.images, train.labels, { batchSize: 32, augment: augment as never });
    await expect(fit({ shift: -1 })).rejects.toThrow(/augment.shift/);
    await expect(fit({ shift: 1.5 })).rejects.toThrow(/augment.shift/);
    await expect(fit({ rotate: 200 })).rejects.toThrow(/augment.rotate/);
    await expect(fit({ rotate: NaN })).rejects.toThrow(/augment.rotate/);
    await expect(fit({ zoom: 0.1 })).rejects.toThrow(ConfigError);
    await expect(fit("strong")).rejects.toThrow(ConfigError);
    m.dispose();
    const mlp = new Sequential([Dense({ units: 10, activation: "softmax", inputShape: [784] })]);
    await mlp.compile({ loss: "sparseCategoricalCrossentropy", engine: e });
    await expect(mlp.fit(train.images, train.labels, { batchSize: 32, augment: { shift: 2 } })).rejects.toThrow(/no input of this model is an image/);
    mlp.dispose();
  });
});
