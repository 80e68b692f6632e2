// The kernels that use workgroup barriers, run by wgsl_reflect's race detector on tiny shapes: no races.
// A kernel with a barrier removed must be caught, or the check proves nothing. The detector's numbers
// are compared with the reference only for bias_grad without an activation: for matmul_tiled, softmax_xent
// and bias_grad through relu the emulator (1.6.0) computes wrong values even on full tiles, while the real
// adapter matches the reference on every shape (tests/kernels.test.ts), so there the emulator is off.
import { describe, expect, it } from "vitest";
import { detectRaces } from "wgsl_reflect";
import { assembleShader } from "../src/gpu/registry.ts";
import type { ShaderFile } from "../src/gpu/shaders.ts";
import * as ref from "./reference/cpu.ts";
import { randomArray } from "./reference/random.ts";
import { expectRelClose } from "./gpu_helpers.ts";

/** `override NAME: T = v;` → `const NAME: T = value;` (the emulator cannot size arrays by overrides). */
function frozen(file: ShaderFile, constants: Record<string, number | boolean>): string {
  return assembleShader(file).replace(/^(\s*)override\s+(\w+)\s*:\s*(\w+)\s*=\s*([^;]+);/gm, (_m, sp: string, name: string, type: string, dflt: string) => {
    const v = name in constants ? constants[name] : dflt;
    return `${sp}const ${name}: ${type} = ${type === "bool" ? String(Boolean(v === "true" || v === true || v === 1)) : `${v}${type === "u32" ? "u" : ""}`};`;
  });
}

const u32s = (...v: number[]) => ({ uniform: new Uint32Array(v).buffer });

describe("race detector", () => {
  it("matmul_tiled 5×7·7×6 (two k-tiles, ragged edges): no races", () => {
    const [M, K, N] = [5, 7, 6];
    const a = Float32Array.from(randomArray(M * K, 1));
    const b = Float32Array.from(randomArray(K * N, 2));
    const c = new Float32Array(M * N).fill(NaN);
    const code = frozen("matmul.wgsl", { WG_X: 2, WG_Y: 2, BK: 4 });
    // Params: M, N, K, k_chunk, splits, strides a_m a_k b_k b_n (A and B not transposed), has_bias, act.
    const groups = { 0: { 0: u32s(M, N, K, K, 1, K, 1, N, 1, 0, 0), 1: a, 2: b, 3: new Float32Array(4), 4: c } };
    const { races, errors } = detectRaces(code, "matmul_tiled", [1, 1, 1], groups);
    expect(errors ?? []).toEqual([]);
    expect(races).toEqual([]);
  });

  // bias_grad with WG 8 over 3 columns: 2 rows at a time (sub), invocations 6 and 7 idle.
  // Params: R, N, act (0 = linear: dz is dy, not written), has_db, cols, sub, chunk (rows per workgroup), splits.
  it("bias_grad 9×3: no races, right result", () => {
    const dy = Float32Array.from(randomArray(27, 3));
    const db = new Float32Array(3).fill(NaN);
    const code = frozen("bias_grad.wgsl", { WG: 8 });
    const { races } = detectRaces(code, "bias_grad", [1, 1, 1], { 0: { 0: u32s(9, 3, 0, 1, 3, 2, 9, 1), 1: dy, 2: new Float32Array(4), 3: new Float32Array(4), 4: db } });
    expect(races).toEqual([]);
    expectRelClose(db, ref.biasGrad(dy, 9, 3), 1e-5, "db");
  });

  it("bias_grad 9×3 in three row chunks: no races, each chunk's column sums in partials (bound as db)", () => {
    const dy = Float32Array.from(randomArray(27, 4));
    const partials = new Float32Array(9).fill(NaN);
    const code = frozen("bias_grad.wgsl", { WG: 8 });
    const { races } = detectRaces(code, "bias_grad", [1, 3, 1], { 0: { 0: u32s(9, 3, 0, 1, 3, 2, 4, 3), 1: dy, 2: new Float32Array(4), 3: new Float32Array(4), 4: partials } });
    expect(races).toEqual([]);
    const chunks = [dy.slice(0, 12), dy.slice(12, 24), dy.slice(24)];
    expectRelClose(partials, chunks.flatMap((c) => Array.from(ref.biasGrad(c, c.length / 3, 3))), 1e-5, "partials");
  });

  it("bias_grad 9×3 through relu, writing dz: no races", () => {
    const dy = Float32Array.from(randomArray(27, 3));
    const y = Float32Array.from(randomArray(27, 6, -1, 1).map((v) => Math.max(v, 0)));
    const code = frozen("bias_grad.wgsl", { WG: 8 });
    // The emulator's values are off here (the adapter's are checked in kernels.test.ts); races only.
    const { races, errors } = detectRaces(code, "bias_grad", [1, 1, 1], { 0: { 0: u32s(9, 3, 1, 1, 3, 2, 9, 1), 1: dy, 2: y, 3: new Float32Array(27), 4: new Float32Array(3) } });
    expect(errors ?? []).toEqual([]);
    expect(races).toEqual([]);
  });

  it("softmax_xent_sparse 5×3: no races", () => {
    const logits = Float32Array.from(randomArray(15, 4, -2, 2));
    const labels = new Uint32Array([0, 2, 1, 1, 0]);
    const metrics = new Float32Array(3);
    const code = frozen("softmax_xent.wgsl", { WG: 4 });
    const groups = { 0: { 0: u32s(5, 3, 5), 1: logits, 2: labels, 3: new Float32Array(4), 4: new Float32Array(5), 5: new Float32Array(15), 6: metrics } };
    const { races, errors } = detectRaces(code, "softmax_xent_sparse", [1, 1, 1], groups);
    expect(errors ?? []).toEqual([]);
    expect(races).toEqual([]);
  });

  it("catches a missing barrier (the check can fail)", () => {
    const intact = frozen("bias_grad.wgsl", { WG: 8 });
    const code = intact.replace("workgroupBarrier();", "");
    expect(code).not.toBe(intact);
    const dy = Float32Array.from(randomArray(27, 5));
    const { races } = detectRaces(code, "bias_grad", [1, 1, 1], { 0: { 0: u32s(9, 3, 0, 1, 3, 2, 9, 1), 1: dy, 2: new Float32Array(4), 3: new Float32Array(4), 4: new Float32Array(3) } });
    expect(races.length).toBeGreaterThan(0);
  });
});
