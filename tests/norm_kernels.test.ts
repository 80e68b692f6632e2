// Batch norm, layer norm and depthwise convolution: the float64 references against finite differences,
// the barrier kernels under the race detector, then every kernel on a real adapter against the references
// (random data, NaN-poisoned outputs, ragged shapes, partial batches, accumulation, absent outputs).
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { detectRaces } from "wgsl_reflect";
import type { Engine } from "../src/engine.ts";
import { ConfigError, ShapeError } from "../src/errors.ts";
import { planWindow, type Padding } from "../src/geometry.ts";
import { assembleShader } from "../src/gpu/registry.ts";
import type { Activation } from "../src/kernels.ts";
import { depthwiseConvBackwardFilter, depthwiseConvBackwardInput, depthwiseConvForward } from "../src/kernels/depthwise.ts";
import { batchNormBackward, batchNormForward, layerNormBackward, layerNormForward } from "../src/kernels/normalization.ts";
import type { Tensor } from "../src/engine.ts";
import * as cpu from "./reference/cpu.ts";
import type { Conv2dGeom } from "./reference/cpu.ts";
import { expectClose, numericGradient } from "./reference/grad_check.ts";
import * as ref from "./reference/norm.ts";
import { randomArray } from "./reference/random.ts";
import { expectRelClose, gpuEngine } from "./gpu_helpers.ts";

let seed = 7000;
const rand = (n: number, lo = -1, hi = 1) => randomArray(n, seed++, lo, hi);
/** The values as the GPU holds them, so the reference starts from the same float32 inputs. */
const f32 = (a: ArrayLike<number>) => Float64Array.from(Float32Array.from(a));

function dot(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let s = 0;
  for (let i = 0; i < a.length; i++) s += a[i]! * b[i]!;
  return s;
}

function checkGrad(label: string, f: (x: Float64Array) => number, x: ArrayLike<number>, analytic: ArrayLike<number>) {
  expectClose(analytic, numericGradient(f, Float64Array.from(x)), 1e-6, 1e-8, label);
}

const DW_GEOMS: [number, number, Padding][] = [];
for (const M of [1, 2]) for (const S of [1, 2]) for (const padding of ["valid", "same"] as Padding[]) DW_GEOMS.push([M, S, padding]);

describe("references", () => {
  it("batch norm by hand: biased variance, Keras epsilon, junk rows ignored by the statistics", () => {
    const r = ref.batchNorm([1, 10, 3, 20, 99, -99], [2, 1], [0.5, 0], 3, 2, 2);
    expectClose(r.mean, [2, 15], 1e-15, 1e-15);
    expectClose(r.variance, [1, 25], 1e-15, 1e-15);
    expectClose(r.y.subarray(0, 4), [2 * -1 / Math.sqrt(1.001) + 0.5, -5 / Math.sqrt(25.001), 2 / Math.sqrt(1.001) + 0.5, 5 / Math.sqrt(25.001)], 1e-14, 1e-14);
    const m = ref.movingUpdate([0, 1], [1, 1], r.mean, r.variance, 0.9);
    expectClose(m.movingMean, [0.2, 0.9 + 1.5], 1e-14, 1e-14);
    expectClose(m.movingVar, [1, 0.9 + 2.5], 1e-14, 1e-14);
  });

  it("batch norm inference with the batch's own statistics is the training output", () => {
    const [R, C] = [6, 3];
    const x = rand(R * C), gamma = rand(C), beta = rand(C);
    const t = ref.batchNorm(x, gamma, beta, R, C);
    expectClose(ref.batchNormInference(x, gamma, beta, t.mean, t.variance, R, C), t.y, 1e-13, 1e-13);
  });

  it.each([
    [5, 3, 5],
    [7, 2, 4],
  ])("batch norm backward matches finite differences of a loss of the valid rows (R=%i, C=%i, rowsValid=%i)", (R, C, rv) => {
    const x = rand(R * C, -2, 2), gamma = rand(C), beta = rand(C), r = rand(R * C);
    const valid = (y: Float64Array) => dot(r.subarray(0, rv * C), y.subarray(0, rv * C));
    const { mean, invstd } = ref.batchNorm(x, gamma, beta, R, C, rv);
    // r also covers the junk rows: backward must ignore dy there, and give them dx = 0.
    const g = ref.batchNormBackward(r, x, gamma, mean, invstd, R, C, rv);
    expect(Array.from(g.dx.subarray(rv * C)).every((v) => v === 0)).toBe(true);
    checkGrad("dx", (v) => valid(ref.batchNorm(v, gamma, beta, R, C, rv).y), x, g.dx);
    checkGrad("dgamma", (v) => valid(ref.batchNorm(x, v, beta, R, C, rv).y), gamma, g.dgamma);
    checkGrad("dbeta", (v) => valid(ref.batchNorm(x, gamma, v, R, C, rv).y), beta, g.dbeta);
  });

  it.each([1, 2, 7])("layer norm backward matches finite differences (D=%i)", (D) => {
    const R = 4;
    const x = rand(R * D, -2, 2), gamma = rand(D), beta = rand(D), r = rand(R * D);
    const { mean, rstd, y } = ref.layerNorm(x, gamma, beta, R, D);
    if (D === 1) expectClose(y, Float64Array.from({ length: R }, () => beta[0]!), 1e-15, 1e-15);
    const g = ref.layerNormBackward(r, x, gamma, mean, rstd, R, D);
    checkGrad("dx", (v) => dot(r, ref.layerNorm(v, gamma, beta, R, D).y), x, g.dx);
    checkGrad("dgamma", (v) => dot(r, ref.layerNorm(x, v, beta, R, D).y), gamma, g.dgamma);
    checkGrad("dbeta", (v) => dot(r, ref.layerNorm(x, gamma, v, R, D).y), beta, g.dbeta);
  });

  it.each(DW_GEOMS)("depthwise conv is a block-diagonal conv2d, and its backward matches finite differences (M=%i, stride %i, %s)", (M, S, padding) => {
    const g: Conv2dGeom = { B: 2, H: 5, W: 4, C: 3, KH: 3, KW: 2, SH: S, SW: S, padding };
    const x = rand(g.B * g.H * g.W * g.C), w = rand(g.KH * g.KW * g.C * M), b = rand(g.C * M);
    const z = ref.depthwiseConv2d(x, w, b, g, M);
    expectClose(z, cpu.conv2d(x, ref.depthwiseAsDense(w, g.KH, g.KW, g.C, M), b, g, g.C * M, "linear"), 1e-13, 1e-13, "z");
    const r = rand(z.length);
    const { dx, dw } = ref.depthwiseConv2dBackward(x, w, r, g, M);
    checkGrad("dx", (v) => dot(r, ref.depthwiseConv2d(v, w, b, g, M)), x, dx);
    checkGrad("dw", (v) => dot(r, ref.depthwiseConv2d(x, v, b, g, M)), w, dw);
  });
});

// ---------------------------------------------------------------- race detector (tiny shapes)

/** The file with its overrides frozen to constants (the emulator cannot size arrays by overrides). */
function frozen(file: string, constants: Record<string, number>): string {
  return assembleShader(file).replace(/^(\s*)override\s+(\w+)\s*:\s*u32\s*=\s*([^;]+);/gm, (_m, sp: string, name: string, dflt: string) => `${sp}const ${name}: u32 = ${constants[name] ?? dflt}u;`);
}

/** A uniform block from members in declaration order, all 4 bytes: "f" marks an f32, anything else a u32. */
function uniform(...members: [number, "u" | "f"][]): { uniform: ArrayBuffer } {
  const buf = new ArrayBuffer(Math.ceil((members.length * 4) / 16) * 16);
  const view = new DataView(buf);
  members.forEach(([v, t], i) => (t === "f" ? view.setFloat32(i * 4, v, true) : view.setUint32(i * 4, v, true)));
  return { uniform: buf };
}

const floats = (n: number) => Float32Array.from(rand(n));

describe("race detector", () => {
  // batch_norm Params: R, C, rows_valid, momentum, epsilon, has_dx, has_dgamma, has_dbeta, acc_dx, acc_params.
  const bnParams = (R: number, C: number, rv: number) => uniform([R, "u"], [C, "u"], [rv, "u"], [0.9, "f"], [1e-3, "f"], [1, "u"], [1, "u"], [1, "u"], [0, "u"], [0, "u"]);
  const bnGroups = () => ({
    0: {
      0: bnParams(7, 3, 6), 1: floats(21), 2: floats(3), 3: floats(3), 4: floats(21), 5: floats(3), 6: Float32Array.from(rand(3, 0.5, 1)),
      7: floats(3), 8: floats(3), 9: floats(21), 10: floats(21), 11: floats(3), 12: floats(3),
    },
  });

  it.each(["batch_norm_stats", "batch_norm_backward"])("%s on 7×3 (6 valid rows): no races", (entry) => {
    const { races, errors } = detectRaces(frozen("batch_norm.wgsl", { WG_C: 2, WG_R: 2 }), entry, [2, 1, 1], bnGroups());
    expect(errors ?? []).toEqual([]);
    expect(races).toEqual([]);
  });

  it("catches a missing barrier (the check can fail)", () => {
    const intact = frozen("batch_norm.wgsl", { WG_C: 2, WG_R: 2 });
    const code = intact.replace("workgroupBarrier();", "");
    expect(code).not.toBe(intact);
    expect(detectRaces(code, "batch_norm_stats", [2, 1, 1], bnGroups()).races.length).toBeGreaterThan(0);
  });

  it.each([
    ["layer_norm_forward", [3, 1, 1]],
    ["layer_norm_backward", [3, 1, 1]],
    ["layer_norm_param_grad", [3, 1, 1]],
  ] as [string, [number, number, number]][])("%s on 5×5: no races", (entry, grid) => {
    // layer_norm Params: R, D, epsilon, has_dgamma, has_dbeta, acc_dx, acc_params.
    const p = uniform([5, "u"], [5, "u"], [1e-3, "f"], [1, "u"], [1, "u"], [0, "u"], [0, "u"]);
    const groups = { 0: { 0: p, 1: floats(25), 2: floats(5), 3: floats(5), 4: floats(25), 5: floats(5), 6: Float32Array.from(rand(5, 0.5, 1)), 7: floats(25), 8: floats(25), 9: floats(5), 10: floats(5) } };
    const { races, errors } = detectRaces(frozen("layer_norm.wgsl", { WG_D: 2, WG_ROWS: 2 }), entry, grid, groups);
    expect(errors ?? []).toEqual([]);
    expect(races).toEqual([]);
  });

  it("depthwise_conv_backward_filter, 1×4×3×2 M=2, 3×3 same: no races", () => {
    const p = planWindow({ B: 1, H: 4, W: 3, C: 2, KH: 3, KW: 3, SH: 1, SW: 1, padding: "same" }, "race test");
    const u = uniform(...[p.B, p.H, p.W, p.C, p.KH, p.KW, p.SH, p.SW, p.PT, p.PL, p.OH, p.OW, 2, 0, 0, 0].map((v) => [v, "u"] as [number, "u"]));
    const groups = { 0: { 0: u, 1: floats(24), 2: floats(36), 3: floats(4), 4: floats(48), 5: floats(48), 6: floats(24), 7: floats(36) } };
    const { races, errors } = detectRaces(frozen("depthwise_conv.wgsl", { WG_C: 2, WG_X: 2 }), "depthwise_conv_backward_filter", [2, 9, 1], groups);
    expect(errors ?? []).toEqual([]);
    expect(races).toEqual([]);
  });
});

// ---------------------------------------------------------------- on the adapter

let e: Engine;

async function values(t: Tensor): Promise<Float64Array> {
  return Float64Array.from(await t.read());
}

describe("on the adapter", () => {
  beforeAll(async () => {
    e = await gpuEngine();
    console.log(`adapter: ${e.describe()}`);
  });
  afterAll(() => e?.dispose());

  const add = (a: ArrayLike<number>, b: ArrayLike<number>) => Float64Array.from(a, (v, i) => v + b[i]!);

  describe("batch norm", () => {
    const CASES: [string, number, number, number][] = [
      ["images 3·5·7 rows, C=3", 3 * 5 * 7, 3, 3 * 5 * 7],
      ["3·5·7 rows, C=70, partial batch", 3 * 5 * 7, 70, 88],
      ["R=1000, C=129", 1000, 129, 1000],
      ["R=1000, C=129, partial batch", 1000, 129, 613],
      ["vectors R=40, C=1, partial batch", 40, 1, 33],
      ["one valid row", 6, 5, 1],
    ];

    /** Inputs of one case, float32-exact; x around 100 so that a variance without a shift would cancel. */
    function inputs(R: number, C: number) {
      return {
        x: f32(rand(R * C, 99, 101)),
        gamma: f32(rand(C, 0.5, 2)),
        beta: f32(rand(C)),
        mm: f32(rand(C)),
        mv: f32(rand(C, 0.5, 2)),
        dy: f32(rand(R * C)),
      };
    }

    for (const [name, R, C, rv] of CASES) {
      it(`forward (training) and the moving update: ${name}`, async () => {
        const d = inputs(R, C);
        const [x, gamma, beta] = [e.tensor(d.x, [R, C]), e.tensor(d.gamma, [C]), e.tensor(d.beta, [C])];
        const [movingMean, movingVar] = [e.tensor(d.mm, [C]), e.tensor(d.mv, [C])];
        const [y, mean, invstd] = [e.empty([R, C]), e.empty([C]), e.empty([C])];
        const io = { x: x.buffer, gamma: gamma.buffer, beta: beta.buffer, y: y.buffer, mean: mean.buffer, invstd: invstd.buffer, movingMean: movingMean.buffer, movingVar: movingVar.buffer };
        await e.run(await batchNormForward(e, io, { R, C, rowsValid: rv, momentum: 0.9 }, true));
        const want = ref.batchNorm(d.x, d.gamma, d.beta, R, C, rv);
        expectRelClose(await values(y), want.y, 1e-4, "y");
        expectRelClose(await values(mean), want.mean, 1e-6, "mean");
        expectRelClose(await values(invstd), want.invstd, 1e-4, "invstd");
        const moving = ref.movingUpdate(d.mm, d.mv, want.mean, want.variance, 0.9);
        expectRelClose(await values(movingMean), moving.movingMean, 1e-5, "moving mean");
        expectRelClose(await values(movingVar), moving.movingVar, 1e-4, "moving variance");
      });

      it(`backward, overwriting poisoned outputs and accumulating into known ones: ${name}`, async () => {
        const d = inputs(R, C);
        const st = ref.batchNorm(d.x, d.gamma, d.beta, R, C, rv);
        const [mean32, invstd32] = [f32(st.mean), f32(st.invstd)];
        const want = ref.batchNormBackward(d.dy, d.x, d.gamma, mean32, invstd32, R, C, rv);
        const common = { dy: e.tensor(d.dy, [R, C]).buffer, x: e.tensor(d.x, [R, C]).buffer, gamma: e.tensor(d.gamma, [C]).buffer, mean: e.tensor(mean32, [C]).buffer, invstd: e.tensor(invstd32, [C]).buffer };

        const [dx, dgamma, dbeta] = [e.empty([R, C]), e.empty([C]), e.empty([C])];
        await e.run([await batchNormBackward(e, { ...common, dx: dx.buffer, dgamma: dgamma.buffer, dbeta: dbeta.buffer }, { R, C, rowsValid: rv }, { dx: false, params: false })]);
        const got = await values(dx);
        expectRelClose(got, want.dx, 1e-4, "dx");
        expect(got.subarray(rv * C).every((v) => v === 0)).toBe(true);
        expectRelClose(await values(dgamma), want.dgamma, 1e-4, "dgamma");
        expectRelClose(await values(dbeta), want.dbeta, 1e-4, "dbeta");

        const prior = { dx: f32(rand(R * C)), dgamma: f32(rand(C)), dbeta: f32(rand(C)) };
        const [adx, adgamma, adbeta] = [e.tensor(prior.dx, [R, C]), e.tensor(prior.dgamma, [C]), e.tensor(prior.dbeta, [C])];
        await e.run([await batchNormBackward(e, { ...common, dx: adx.buffer, dgamma: adgamma.buffer, dbeta: adbeta.buffer }, { R, C, rowsValid: rv }, { dx: true, params: true })]);
        const acc = await values(adx);
        expectRelClose(acc, add(prior.dx, want.dx), 1e-4, "dx (accumulated)");
        expect(Array.from(acc.subarray(rv * C))).toEqual(Array.from(prior.dx.subarray(rv * C)));
        expectRelClose(await values(adgamma), add(prior.dgamma, want.dgamma), 1e-4, "dgamma (accumulated)");
        expectRelClose(await values(adbeta), add(prior.dbeta, want.dbeta), 1e-4, "dbeta (accumulated)");
      });
    }

    it("inference normalises with the moving statistics and writes nothing else", async () => {
      for (const [R, C] of [[105, 3], [1000, 129], [7, 1]]) {
        const d = inputs(R, C);
        const [movingMean, movingVar] = [e.tensor(d.mm, [C]), e.tensor(d.mv, [C])];
        const y = e.empty([R, C]);
        const io = { x: e.tensor(d.x, [R, C]).buffer, gamma: e.tensor(d.gamma, [C]).buffer, beta: e.tensor(d.beta, [C]).buffer, y: y.buffer, movingMean: movingMean.buffer, movingVar: movingVar.buffer };
        const ds = await batchNormForward(e, io, { R, C }, false);
        expect(ds.length).toBe(1);
        await e.run(ds);
        expectRelClose(await values(y), ref.batchNormInference(d.x, d.gamma, d.beta, d.mm, d.mv, R, C), 1e-5, "y");
        expect(Array.from(await movingMean.read())).toEqual(Array.from(Float32Array.from(d.mm)));
        expect(Array.from(await movingVar.read())).toEqual(Array.from(Float32Array.from(d.mv)));
      }
    });

    it("rows_valid set per step through setUniforms on every dispatch (forward and backward in one pass)", async () => {
      const [R, C, rv] = [60, 7, 23];
      const d = inputs(R, C);
      const t = (a: ArrayLike<number>, n: number) => e.tensor(a, [n]);
      const [x, gamma, beta, mm, mv, dy] = [t(d.x, R * C), t(d.gamma, C), t(d.beta, C), t(d.mm, C), t(d.mv, C), t(d.dy, R * C)];
      const [y, mean, invstd, dx, dgamma, dbeta] = [e.empty([R * C]), e.empty([C]), e.empty([C]), e.empty([R * C]), e.empty([C]), e.empty([C])];
      const fwd = await batchNormForward(e, { x: x.buffer, gamma: gamma.buffer, beta: beta.buffer, y: y.buffer, mean: mean.buffer, invstd: invstd.buffer, movingMean: mm.buffer, movingVar: mv.buffer }, { R, C }, true);
      const bwd = await batchNormBackward(e, { dy: dy.buffer, x: x.buffer, gamma: gamma.buffer, mean: mean.buffer, invstd: invstd.buffer, dx: dx.buffer, dgamma: dgamma.buffer, dbeta: dbeta.buffer }, { R, C });
      for (const dispatch of [...fwd, bwd]) dispatch.setUniforms({ rows_valid: rv });
      await e.run([...fwd, bwd]);
      const st = ref.batchNorm(d.x, d.gamma, d.beta, R, C, rv);
      expectRelClose(await values(y), st.y, 1e-4, "y");
      const moving = ref.movingUpdate(d.mm, d.mv, st.mean, st.variance);
      expectRelClose(await values(mv), moving.movingVar, 1e-4, "moving variance (momentum 0.99 by default)");
      const want = ref.batchNormBackward(d.dy, d.x, d.gamma, await values(mean), await values(invstd), R, C, rv);
      expectRelClose(await values(dx), want.dx, 1e-4, "dx");
      expectRelClose(await values(dgamma), want.dgamma, 1e-4, "dgamma");
      expectRelClose(await values(dbeta), want.dbeta, 1e-4, "dbeta");
    });

    it("absent outputs: every subset binds and writes only what it was given", async () => {
      const [R, C, rv] = [50, 9, 41];
      const d = inputs(R, C);
      const st = ref.batchNorm(d.x, d.gamma, d.beta, R, C, rv);
      const [mean32, invstd32] = [f32(st.mean), f32(st.invstd)];
      const want = ref.batchNormBackward(d.dy, d.x, d.gamma, mean32, invstd32, R, C, rv);
      const common = { dy: e.tensor(d.dy, [R, C]).buffer, x: e.tensor(d.x, [R, C]).buffer, gamma: e.tensor(d.gamma, [C]).buffer, mean: e.tensor(mean32, [C]).buffer, invstd: e.tensor(invstd32, [C]).buffer };
      for (const wanted of [["dx"], ["dgamma"], ["dbeta"], ["dgamma", "dbeta"], ["dx", "dbeta"], ["dx", "dgamma"]] as ("dx" | "dgamma" | "dbeta")[][]) {
        const out = { dx: e.empty([R, C]), dgamma: e.empty([C]), dbeta: e.empty([C]) };
        const io = { ...common, ...Object.fromEntries(wanted.map((k) => [k, out[k].buffer])) };
        await e.run([await batchNormBackward(e, io, { R, C, rowsValid: rv })]);
        for (const k of ["dx", "dgamma", "dbeta"] as const) {
          const got = await values(out[k]);
          if (wanted.includes(k)) expectRelClose(got, want[k], 1e-4, `${k} (given ${wanted.join(", ")})`);
          else expect(got.every(Number.isNaN), `${k} untouched when absent`).toBe(true);
        }
      }
    });

    it("refuses bad arguments with errors that name the op", async () => {
      const b = e.empty([4]).buffer;
      const io = { x: b, gamma: b, beta: b, y: b, movingMean: b, movingVar: b };
      await expect(batchNormForward(e, io, { R: 4, C: 1, rowsValid: 5 }, false)).rejects.toThrow(ShapeError);
      await expect(batchNormForward(e, io, { R: 4, C: 1 }, true, "bn1")).rejects.toThrow(/bn1: training needs mean and invstd/);
      await expect(batchNormBackward(e, { dy: b, x: b, gamma: b, mean: b, invstd: b }, { R: 4, C: 1 })).rejects.toThrow(ConfigError);
    });
  });

  describe("layer norm", () => {
    const CASES: [number, number][] = [
      [300, 1],
      [300, 7],
      [50, 129],
      [37, 1000],
      [262145, 16], // 4 rows a workgroup, more workgroups than one grid dimension holds: the grid folds, 7 slots past R
    ];

    for (const [R, D] of CASES) {
      it(`forward and backward, R=${R} D=${D}`, async () => {
        const d = { x: f32(rand(R * D, 9, 11)), gamma: f32(rand(D, 0.5, 2)), beta: f32(rand(D)), dy: f32(rand(R * D)) };
        const want = ref.layerNorm(d.x, d.gamma, d.beta, R, D);
        const [x, gamma, beta] = [e.tensor(d.x, [R, D]), e.tensor(d.gamma, [D]), e.tensor(d.beta, [D])];
        const [y, mean, rstd] = [e.empty([R, D]), e.empty([R]), e.empty([R])];
        await e.run([await layerNormForward(e, { x: x.buffer, gamma: gamma.buffer, beta: beta.buffer, y: y.buffer, mean: mean.buffer, rstd: rstd.buffer }, { R, D })]);
        expectRelClose(await values(y), want.y, 1e-4, "y");
        expectRelClose(await values(mean), want.mean, 1e-6, "mean");
        expectRelClose(await values(rstd), want.rstd, 1e-4, "rstd");

        const [mean32, rstd32] = [f32(want.mean), f32(want.rstd)];
        const g = ref.layerNormBackward(d.dy, d.x, d.gamma, mean32, rstd32, R, D);
        const common = { dy: e.tensor(d.dy, [R, D]).buffer, x: x.buffer, gamma: gamma.buffer, mean: e.tensor(mean32, [R]).buffer, rstd: e.tensor(rstd32, [R]).buffer };
        const [dx, dgamma, dbeta] = [e.empty([R, D]), e.empty([D]), e.empty([D])];
        await e.run(await layerNormBackward(e, { ...common, dx: dx.buffer, dgamma: dgamma.buffer, dbeta: dbeta.buffer }, { R, D }, { dx: false, params: false }));
        expectRelClose(await values(dx), g.dx, 1e-4, "dx");
        expectRelClose(await values(dgamma), g.dgamma, 1e-4, "dgamma");
        expectRelClose(await values(dbeta), g.dbeta, 1e-4, "dbeta");
        if (R > 1000) return; // the accumulate and absent-output paths are shape-independent; keep the big case short

        const prior = { dx: f32(rand(R * D)), dgamma: f32(rand(D)), dbeta: f32(rand(D)) };
        const [adx, adgamma, adbeta] = [e.tensor(prior.dx, [R, D]), e.tensor(prior.dgamma, [D]), e.tensor(prior.dbeta, [D])];
        await e.run(await layerNormBackward(e, { ...common, dx: adx.buffer, dgamma: adgamma.buffer, dbeta: adbeta.buffer }, { R, D }, { dx: true, params: true }));
        expectRelClose(await values(adx), add(prior.dx, g.dx), 1e-4, "dx (accumulated)");
        expectRelClose(await values(adgamma), add(prior.dgamma, g.dgamma), 1e-4, "dgamma (accumulated)");
        expectRelClose(await values(adbeta), add(prior.dbeta, g.dbeta), 1e-4, "dbeta (accumulated)");
      });
    }

    it("absent outputs: dx only, parameters only, and one parameter gradient", async () => {
      const [R, D] = [33, 20];
      const d = { x: f32(rand(R * D)), gamma: f32(rand(D)), beta: f32(rand(D)), dy: f32(rand(R * D)) };
      const st = ref.layerNorm(d.x, d.gamma, d.beta, R, D);
      const [mean32, rstd32] = [f32(st.mean), f32(st.rstd)];
      const want = ref.layerNormBackward(d.dy, d.x, d.gamma, mean32, rstd32, R, D);
      const common = { dy: e.tensor(d.dy, [R, D]).buffer, x: e.tensor(d.x, [R, D]).buffer, gamma: e.tensor(d.gamma, [D]).buffer, mean: e.tensor(mean32, [R]).buffer, rstd: e.tensor(rstd32, [R]).buffer };
      for (const wanted of [["dx"], ["dgamma", "dbeta"], ["dgamma"], ["dx", "dbeta"]] as ("dx" | "dgamma" | "dbeta")[][]) {
        const out = { dx: e.empty([R, D]), dgamma: e.empty([D]), dbeta: e.empty([D]) };
        const ds = await layerNormBackward(e, { ...common, ...Object.fromEntries(wanted.map((k) => [k, out[k].buffer])) }, { R, D });
        expect(ds.length).toBe(wanted.includes("dx") && wanted.length > 1 ? 2 : 1);
        await e.run(ds);
        for (const k of ["dx", "dgamma", "dbeta"] as const) {
          const got = await values(out[k]);
          if (wanted.includes(k)) expectRelClose(got, want[k], 1e-4, `${k} (given ${wanted.join(", ")})`);
          else expect(got.every(Number.isNaN), `${k} untouched when absent`).toBe(true);
        }
      }
    });
  });

  describe("depthwise conv", () => {
    const ACTS: Activation[] = ["linear", "relu", "sigmoid", "tanh"];
    const cases: [Conv2dGeom, number, Activation, boolean][] = DW_GEOMS.map(([M, S, padding], i) => [
      { B: 2, H: 9, W: 7, C: 5, KH: 3, KW: 3, SH: S, SW: S, padding },
      M,
      ACTS[i % ACTS.length]!,
      i % 3 !== 2,
    ]);
    cases.push([{ B: 1, H: 2, W: 1, C: 3, KH: 5, KW: 5, SH: 1, SW: 1, padding: "same" }, 2, "linear", true]); // taps that miss the image entirely
    cases.push([{ B: 4, H: 28, W: 28, C: 32, KH: 3, KW: 3, SH: 1, SW: 1, padding: "same" }, 1, "relu", true]); // long dw reductions

    for (const [g, M, act, hasBias] of cases) {
      it(`B${g.B} ${g.H}×${g.W}×${g.C} M=${M} k${g.KH}×${g.KW} s${g.SH} ${g.padding} ${act}${hasBias ? " +bias" : ""}`, async () => {
        const p = planWindow(g, "depthwise test");
        const [xn, wn, yn] = [g.B * g.H * g.W * g.C, g.KH * g.KW * g.C * M, g.B * p.OH * p.OW * g.C * M];
        const d = { x: f32(rand(xn)), w: f32(rand(wn)), b: f32(rand(g.C * M)), dz: f32(rand(yn)) };
        const [x, w] = [e.tensor(d.x, [xn]), e.tensor(d.w, [wn])];
        const y = e.empty([yn]);
        await e.run([await depthwiseConvForward(e, x.buffer, w.buffer, hasBias ? e.tensor(d.b, [g.C * M]).buffer : undefined, y.buffer, p, M, act)]);
        expectRelClose(await values(y), cpu.activation(act, ref.depthwiseConv2d(d.x, d.w, hasBias ? d.b : null, g, M)), 1e-4, "y");

        const want = ref.depthwiseConv2dBackward(d.x, d.w, d.dz, g, M);
        const dz = e.tensor(d.dz, [yn]);
        const [dx, dw] = [e.empty([xn]), e.empty([wn])];
        await e.run([await depthwiseConvBackwardInput(e, dz.buffer, w.buffer, dx.buffer, p, M, false), await depthwiseConvBackwardFilter(e, x.buffer, dz.buffer, dw.buffer, p, M, false)]);
        expectRelClose(await values(dx), want.dx, 1e-4, "dx");
        expectRelClose(await values(dw), want.dw, 1e-4, "dw");

        const prior = { dx: f32(rand(xn)), dw: f32(rand(wn)) };
        const [adx, adw] = [e.tensor(prior.dx, [xn]), e.tensor(prior.dw, [wn])];
        await e.run([await depthwiseConvBackwardInput(e, dz.buffer, w.buffer, adx.buffer, p, M, true), await depthwiseConvBackwardFilter(e, x.buffer, dz.buffer, adw.buffer, p, M, true)]);
        expectRelClose(await values(adx), add(prior.dx, want.dx), 1e-4, "dx (accumulated)");
        expectRelClose(await values(adw), add(prior.dw, want.dw), 1e-4, "dw (accumulated)");
      });
    }
  });
});
