// The graph's kernels on a real WebGPU adapter against the float64 references: add, multiply, copy-or-add,
// strided slice copy (Concatenate on any axis), global average pooling, dropout's per-layer seed, and
// accumulate mode (+=) of every kernel that writes a gradient. Random data, NaN-poisoned outputs, sizes
// that are no multiple of any workgroup; each accumulating writer runs once into poison (overwrite) and
// once into known random values (accumulate), and both must match the reference.
import { afterAll, describe, expect, it } from "vitest";
import type { Engine } from "../src/engine.ts";
import { ConfigError } from "../src/errors.ts";
import { planWindow, type WindowPlan } from "../src/geometry.ts";
import type { Dispatch } from "../src/gpu/registry.ts";
import * as K from "../src/kernels.ts";
import * as E from "../src/kernels/elementwise.ts";
import * as ref from "./reference/cpu.ts";
import * as eref from "./reference/elementwise.ts";
import { expectClose, numericGradient } from "./reference/grad_check.ts";
import { randomArray } from "./reference/random.ts";
import { expectRelClose, gpuEngine } from "./gpu_helpers.ts";

// Created while the tests are collected, so that each matmul variant this adapter can run gets its tests.
const e: Engine = await gpuEngine();
const g: K.KernelContext = e;
afterAll(() => e?.dispose());

let seed = 1000;
const SIZES = [1, 7, 65, 4097];

async function run(d: Dispatch | Dispatch[] | Promise<Dispatch | Dispatch[]>): Promise<void> {
  const ds = await d;
  await e.run(Array.isArray(ds) ? ds : [ds]);
}

/**
 * A gradient writer's two modes: into a NaN-poisoned buffer with accumulate off (every element must be
 * written, none read), then into random values with accumulate on (every element must be added to).
 */
async function checkAccumulate(n: number, write: (out: GPUBuffer, accumulate: boolean) => Promise<Dispatch | Dispatch[]>, expected: ArrayLike<number>, rtol: number, label: string): Promise<void> {
  const fresh = e.empty([n], "f32", `${label} out`);
  await run(write(fresh.buffer, false));
  expectRelClose(await fresh.read(), expected, rtol, `${label} (overwrite)`);
  const prior = randomArray(n, seed++);
  const held = e.tensor(prior, [n], "f32", `${label} held`);
  await run(write(held.buffer, true));
  expectRelClose(await held.read(), prior.map((v, i) => v + expected[i]!), rtol, `${label} (accumulate)`);
}

const dot = (a: ArrayLike<number>, b: ArrayLike<number>) => Array.from(a).reduce((s, v, i) => s + v * b[i]!, 0);

describe("references: backward passes against central finite differences", () => {
  const checkGrad = (label: string, f: (x: Float64Array) => number, x: ArrayLike<number>, analytic: ArrayLike<number>) =>
    expectClose(analytic, numericGradient(f, Float64Array.from(x)), 1e-6, 1e-8, label);

  it("add and multiply", () => {
    const [a, b, r] = [randomArray(11, 1), randomArray(11, 2), randomArray(11, 3)];
    const add = eref.addBackward(r);
    checkGrad("add da", (v) => dot(r, eref.add(v, b)), a, add.da);
    checkGrad("add db", (v) => dot(r, eref.add(a, v)), b, add.db);
    const mul = eref.multiplyBackward(a, b, r);
    checkGrad("multiply da", (v) => dot(r, eref.multiply(v, b)), a, mul.da);
    checkGrad("multiply db", (v) => dot(r, eref.multiply(a, v)), b, mul.db);
  });

  it.each([0, 1, 2, 3])("concat on axis %i of (2, ·, ·, ·), three inputs", (axis) => {
    const shapes = [0, 1, 2].map((i) => [2, 3, 2, 4].map((d, k) => (k === axis ? d + i : d)));
    const xs = shapes.map((s, i) => randomArray(s.reduce((p, d) => p * d), 10 + i));
    const y = eref.concat(xs, shapes, axis);
    const r = randomArray(y.length, 20);
    eref.concatBackward(r, shapes, axis).forEach((dx, i) => {
      checkGrad(`dx${i}`, (v) => dot(r, eref.concat(xs.map((x, j) => (j === i ? v : x)), shapes, axis)), xs[i]!, dx);
    });
  });

  it("concat by hand: (1, 2) and (1, 1) along axis 1", () => {
    expect(Array.from(eref.concat([[1, 2], [3]], [[1, 2], [1, 1]], 1))).toEqual([1, 2, 3]);
    expect(Array.from(eref.concat([[1, 2], [3, 4]], [[2, 1], [2, 1]], 1))).toEqual([1, 3, 2, 4]);
  });

  it("global average pool", () => {
    const [B, HW, C] = [2, 5, 3];
    const x = randomArray(B * HW * C, 30);
    const r = randomArray(B * C, 31);
    checkGrad("dx", (v) => dot(r, eref.globalAvgPool(v, B, HW, C)), x, eref.globalAvgPoolBackward(r, B, HW, C));
  });
});

describe("add, multiply, copy-or-add", () => {
  for (const n of SIZES) {
    it(`${n} elements`, async () => {
      const [a, b, dy] = [randomArray(n, seed++), randomArray(n, seed++), randomArray(n, seed++)];
      const [at, bt, dyt] = [e.tensor(a, [n]), e.tensor(b, [n]), e.tensor(dy, [n])];
      const [sum, prod] = [e.empty([n]), e.empty([n])];
      await run([await E.addForward(g, at.buffer, bt.buffer, sum.buffer, n), await E.multiplyForward(g, at.buffer, bt.buffer, prod.buffer, n)]);
      expectRelClose(await sum.read(), eref.add(a, b), 1e-6, "a + b");
      expectRelClose(await prod.read(), eref.multiply(a, b), 1e-6, "a · b");
      const grads = eref.multiplyBackward(a, b, dy);
      await checkAccumulate(n, (dx, acc) => E.multiplyBackward(g, dyt.buffer, bt.buffer, dx, n, acc), grads.da, 1e-6, "multiply da");
      await checkAccumulate(n, (dx, acc) => E.multiplyBackward(g, dyt.buffer, at.buffer, dx, n, acc), grads.db, 1e-6, "multiply db");
      await checkAccumulate(n, (dst, acc) => E.copyOrAdd(g, dyt.buffer, dst, n, acc), eref.addBackward(dy).da, 1e-6, "copy or add");
    });
  }

  it("more elements than one grid row of workgroups holds (2-D grid)", async () => {
    const n = 65535 * K.WG + 65;
    const src = randomArray(n, seed++);
    const st = e.tensor(src, [n]);
    await checkAccumulate(n, (dst, acc) => E.copyOrAdd(g, st.buffer, dst, n, acc), src, 1e-6, "copy or add");
  });
});

describe("copySlice: Concatenate on any axis, forward and backward", () => {
  const B = 3;
  // Per-example shapes (5, 4, 3) with the concatenated axis made ragged: sizes 2, 5, 1 along it.
  for (const axis of [0, 1, 2]) {
    it(`per-example axis ${axis}, three inputs`, async () => {
      const shapes = [2, 5, 1].map((s) => [B, ...[5, 4, 3].map((d, k) => (k === axis ? s : d))]);
      const full = axis + 1;
      const yShape = eref.concatShape(shapes, full);
      const xs = shapes.map((s) => randomArray(s.reduce((p, d) => p * d), seed++));
      const slices = sliceGeoms(shapes, full);
      const y = e.empty(yShape);
      const xts = xs.map((x, i) => e.tensor(x, shapes[i]!));
      await run(Promise.all(slices.map((s, i) => E.copySlice(g, xts[i]!.buffer, y.buffer, { ...s.fwd }, false, `concat input ${i}`))));
      expectRelClose(await y.read(), eref.concat(xs, shapes, full), 1e-6, "y");
      const dy = randomArray(y.size, seed++);
      const dyt = e.tensor(dy, yShape);
      const dxs = eref.concatBackward(dy, shapes, full);
      for (const [i, s] of slices.entries()) {
        await checkAccumulate(dxs[i]!.length, (dx, acc) => E.copySlice(g, dyt.buffer, dx, s.bwd, acc), dxs[i]!, 1e-6, `dx${i}`);
      }
    });
  }

  it("batch axis (outer = 1) and a large copy with short rows (2-D grid)", async () => {
    const shapes = [[2, 7], [3, 7]];
    const xs = shapes.map((s) => randomArray(s[0]! * s[1]!, seed++));
    const y = e.empty([5, 7]);
    const slices = sliceGeoms(shapes, 0);
    await run(Promise.all(slices.map((s, i) => E.copySlice(g, e.tensor(xs[i]!, shapes[i]!).buffer, y.buffer, s.fwd))));
    expectRelClose(await y.read(), eref.concat(xs, shapes, 0), 1e-6, "y");

    const geom = { outer: 65535 * 4 + 3, width: 17, srcStride: 21, srcOffset: 2, dstStride: 17, dstOffset: 0 };
    const src = randomArray(geom.outer * geom.srcStride, seed++);
    const st = e.tensor(src, [src.length]);
    const n = geom.outer * geom.width;
    await checkAccumulate(n, (dst, acc) => E.copySlice(g, st.buffer, dst, geom, acc), eref.copySlice(src, new Float64Array(n), geom, false), 1e-6, "strided copy");
  });

  it("refuses overlapping destination rows", async () => {
    const t = e.empty([64]);
    await expect(E.copySlice(g, t.buffer, t.buffer, { outer: 2, width: 5, srcStride: 5, srcOffset: 0, dstStride: 4, dstOffset: 0 })).rejects.toThrow(ConfigError);
  });
});

/** Each input's block as the planner sees it: `outer` rows of `width` inside y's rows of `total`. */
function sliceGeoms(shapes: number[][], axis: number): { fwd: E.SliceGeom; bwd: E.SliceGeom }[] {
  const outer = shapes[0]!.slice(0, axis).reduce((p, d) => p * d, 1);
  const widths = shapes.map((s) => s.slice(axis).reduce((p, d) => p * d, 1));
  const total = widths.reduce((p, w) => p + w, 0);
  let offset = 0;
  return widths.map((width) => {
    const s = { fwd: { outer, width, srcStride: width, srcOffset: 0, dstStride: total, dstOffset: offset }, bwd: { outer, width, srcStride: total, srcOffset: offset, dstStride: width, dstOffset: 0 } };
    offset += width;
    return s;
  });
}

describe("global average pooling", () => {
  for (const [B, HW, C] of [[3, 13, 7], [3, 13, 70], [1, 1, 1], [2, 49, 65]] as const) {
    it(`B=${B} HW=${HW} C=${C}`, async () => {
      const x = randomArray(B * HW * C, seed++);
      const y = e.empty([B, C]);
      await run(E.globalAvgPoolForward(g, e.tensor(x, [B, HW, C]).buffer, y.buffer, { B, HW, C }));
      expectRelClose(await y.read(), eref.globalAvgPool(x, B, HW, C), 1e-5, "y");
      const dy = randomArray(B * C, seed++);
      const dyt = e.tensor(dy, [B, C]);
      await checkAccumulate(B * HW * C, (dx, acc) => E.globalAvgPoolBackward(g, dyt.buffer, dx, { B, HW, C }, acc), eref.globalAvgPoolBackward(dy, B, HW, C), 1e-6, "dx");
    });
  }
});

describe("accumulate mode of the existing gradient writers", () => {
  for (const variant of e.matmulVariants) {
    it(`matmul (${variant}): c += relu(op(a)·op(b) + bias), 33×17×21, transA`, async () => {
      const [M, Kd, N] = [33, 17, 21];
      const ctx = { kernels: e.kernels, matmulVariant: variant };
      const [a, b, bias] = [randomArray(Kd * M, seed++), randomArray(Kd * N, seed++), randomArray(N, seed++)];
      const [at, bt, biast] = [e.tensor(a, [Kd, M]), e.tensor(b, [Kd, N]), e.tensor(bias, [N])];
      const expected = ref.activation("relu", ref.matmul(a, b, M, N, Kd, true, false).map((v, i) => v + bias[i % N]!));
      await checkAccumulate(M * N, (c, accumulate) => K.matmul(ctx, at.buffer, bt.buffer, c, { M, N, K: Kd, transA: true, bias: biast.buffer, act: "relu", accumulate }), expected, 1e-4, "c");
    });

    it(`split-K matmul (${variant}): the sum of splits accumulates, 9×4100·(4100×5)`, async () => {
      const [M, Kd, N] = [9, 4100, 5];
      const ctx = { kernels: e.kernels, matmulVariant: variant };
      const [a, b] = [randomArray(Kd * M, seed++), randomArray(Kd * N, seed++)];
      const [at, bt, partials] = [e.tensor(a, [Kd, M]), e.tensor(b, [Kd, N]), e.empty([4 * M * N])];
      const expected = ref.matmul(a, b, M, N, Kd, true, false);
      await checkAccumulate(M * N, async (c, accumulate) => {
        const ds = await K.matmulSplitK(ctx, at.buffer, bt.buffer, c, partials.buffer, { M, N, K: Kd, transA: true, accumulate }, 4);
        expect(ds).toHaveLength(2);
        return ds;
      }, expected, 1e-4, "c");
      await expect(K.matmul(ctx, at.buffer, bt.buffer, partials.buffer, { M, N, K: Kd, transA: true, accumulate: true }, "split", 4)).rejects.toThrow(ConfigError);
    });
  }

  it("col2im", async () => {
    const cg: ref.Conv2dGeom = { B: 2, H: 6, W: 11, C: 5, KH: 2, KW: 4, SH: 2, SW: 3, padding: "same" };
    const p = planWindow(cg, "col2im test");
    const dcols = randomArray(p.B * p.OH * p.OW * p.KH * p.KW * p.C, seed++);
    const dt = e.tensor(dcols, [dcols.length]);
    await checkAccumulate(p.B * p.H * p.W * p.C, (dx, acc) => K.col2im(e, dt.buffer, dx, p, "col2im", acc), ref.col2im(dcols, cg), 1e-5, "dx");
  });

  const POOLS: ref.Pool2dGeom[] = [
    { B: 3, H: 11, W: 7, C: 5, PH: 3, PW: 2, SH: 3, SW: 2, padding: "valid" }, // tiled scatter, uncovered remainder
    { B: 3, H: 11, W: 7, C: 8, PH: 3, PW: 2, SH: 3, SW: 2, padding: "valid" }, // the same, channels a multiple of 4
    { B: 2, H: 8, W: 8, C: 3, PH: 2, PW: 2, SH: 2, SW: 2, padding: "valid" }, // tiled scatter, exact cover
    { B: 1, H: 7, W: 5, C: 2, PH: 3, PW: 3, SH: 1, SW: 1, padding: "valid" }, // gather, overlapping windows
    { B: 2, H: 7, W: 9, C: 3, PH: 2, PW: 2, SH: 2, SW: 2, padding: "same" }, // gather, padded
  ];
  const plan = (pg: ref.Pool2dGeom): WindowPlan => planWindow({ ...pg, KH: pg.PH, KW: pg.PW }, "pool test");
  for (const pg of POOLS) {
    const name = `${pg.H}×${pg.W}×${pg.C} p${pg.PH}×${pg.PW} s${pg.SH}×${pg.SW} ${pg.padding}`;
    it(`max pool backward ${name}`, async () => {
      const p = plan(pg);
      const x = randomArray(pg.B * pg.H * pg.W * pg.C, seed++);
      const { argmax } = ref.maxPool2d(x, pg);
      const dy = randomArray(argmax.length, seed++);
      const [amt, dyt] = [e.tensor(argmax, [argmax.length], "u32"), e.tensor(dy, [dy.length])];
      await checkAccumulate(x.length, (dx, acc) => K.maxPoolBackward(e, dyt.buffer, amt.buffer, dx, p, "max_pool_backward", acc), ref.maxPool2dBackward(x, dy, pg), 1e-6, "dx");
    });
    it(`avg pool backward ${name}`, async () => {
      const p = plan(pg);
      const dy = randomArray(pg.B * p.OH * p.OW * pg.C, seed++);
      const dyt = e.tensor(dy, [dy.length]);
      await checkAccumulate(pg.B * pg.H * pg.W * pg.C, (dx, acc) => K.avgPoolBackward(e, dyt.buffer, dx, p, "avg_pool_backward", acc), ref.avgPool2dBackward(dy, pg), 1e-5, "dx");
    });
  }

  for (const act of ["relu", "sigmoid", "tanh", "linear"] as K.Activation[]) {
    it(`activation backward (${act}), 4097 elements`, async () => {
      const n = 4097;
      const y = ref.activation(act, randomArray(n, seed++, -3, 3));
      const dy = randomArray(n, seed++);
      const [yt, dyt] = [e.tensor(y, [n]), e.tensor(dy, [n])];
      await checkAccumulate(n, (dx, acc) => K.activationBackward(e, yt.buffer, dyt.buffer, dx, n, act, `${act}_backward`, acc), ref.activationBackward(act, Float32Array.from(y), dy), 1e-5, "dx");
    });
  }

  // One pass; row chunks and their sum (4097×3, 300×130): the sum of splits is what accumulates. Widths
  // that are multiples of 4 (65×8, 4097×12) take bias_grad4.
  for (const [R, N] of [[1, 1], [65, 130], [4097, 3], [300, 130], [65, 8], [4097, 12]] as const) {
    it(`bias grad ${R}×${N}: db accumulates, dz through relu is overwritten`, async () => {
      const dy = randomArray(R * N, seed++);
      const y = ref.activation("relu", randomArray(R * N, seed++));
      const [dyt, yt] = [e.tensor(dy, [R, N]), e.tensor(y, [R, N])];
      const dz = ref.activationBackward("relu", y, dy);
      const floats = K.biasGradPartials(e, R, N);
      const partials = floats ? e.empty([floats]).buffer : undefined;
      await checkAccumulate(N, (db, acc) => K.biasGrad(e, dyt.buffer, db, R, N, undefined, "bias_grad", acc, partials), ref.biasGrad(dy, R, N), 1e-4, "db (linear)");
      const dzt = e.empty([R, N]);
      await checkAccumulate(N, (db, acc) => K.biasGrad(e, dyt.buffer, db, R, N, { act: "relu", y: yt.buffer, dz: dzt.buffer }, "bias_grad", acc, partials), ref.biasGrad(dz, R, N), 1e-4, "db (relu)");
      expectRelClose(await dzt.read(), dz, 1e-6, "dz");
    });
  }
});

describe("dropout: per-layer seeds and accumulate", () => {
  const n = 20000;
  const rate = 0.3;

  /** The forward pass of ones: the mask's scale per element for one seed. */
  async function mask(s: number): Promise<Float32Array> {
    const [ones, y] = [e.tensor(new Float64Array(n).fill(1), [n]), e.empty([n])];
    const d = await K.dropout(e, "forward", ones.buffer, y.buffer, n, rate);
    d.setUniforms({ seed: s });
    await run(d);
    return (await y.read()) as Float32Array;
  }

  it("the mask is the reference hash of (seed, element); the same seed gives the same mask", async () => {
    for (const s of [0, 7, 0xffffffff]) {
      const m = await mask(s);
      expect(Array.from(m)).toEqual(Array.from(eref.dropoutScale(n, s, rate)));
      expect(Array.from(await mask(s))).toEqual(Array.from(m));
    }
  });

  it("nearby seeds give unrelated masks (as two independent Bernoulli draws would)", async () => {
    const kept = (m: ArrayLike<number>) => Array.from(m, (v) => v !== 0);
    const base = kept(await mask(41));
    for (const s of [42, 43, 41 + 65536]) {
      const other = kept(await mask(s));
      // Independent masks agree with probability rate² + (1 − rate)² = 0.58; σ over 20000 elements ≈ 0.0035.
      // Also against base shifted or XOR-ed by a few elements: a seed added to (or XOR-ed into) the
      // element index unhashed would make one mask the other moved by a few places.
      const independent = rate * rate + (1 - rate) * (1 - rate);
      for (const move of [(i: number) => i, ...[1, 2, 3, 64].flatMap((k) => [(i: number) => i + k, (i: number) => i ^ k])]) {
        let [agree, count] = [0, 0];
        for (let i = 0; i < n; i++) {
          const j = move(i);
          if (j >= n) continue;
          count++;
          if (other[i] === base[j]) agree++;
        }
        expect(Math.abs(agree / count - independent)).toBeLessThan(0.02);
      }
      expect(Math.abs(other.filter((k) => !k).length / n - rate)).toBeLessThan(0.02);
    }
  });

  it("backward: dx (+)= dy · mask with the forward's seed", async () => {
    const dy = randomArray(n, seed++);
    const dyt = e.tensor(dy, [n]);
    const scale = eref.dropoutScale(n, 1234, rate);
    await checkAccumulate(n, async (dx, acc) => {
      const d = await K.dropout(e, "backward", dyt.buffer, dx, n, rate, "dropout_backward", acc);
      d.setUniforms({ seed: 1234 });
      return d;
    }, dy.map((v, i) => v * scale[i]!), 1e-6, "dx");
  });
});
