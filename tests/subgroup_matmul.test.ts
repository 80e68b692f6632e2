// The subgroup matmul on both CPU drivers here, whatever adapter the other tests use: 8 lanes on lavapipe
// (subgroup8), 4 on SwiftShader (subgroup4), each stepping K by 1 and by 4 (k4), each with and without the
// vec4 kernels (EngineOptions.vectors: then a B that is not transposed, N a multiple of 4, is read as
// vec4s by matmul_subgroup<SG>v). Each driver must offer the kernels written for its subgroup size and no
// other, and each kernel must match the reference on ragged shapes (K short, so that k4 steps by 1, or
// not a multiple of 4), every transpose, the fused epilogue, accumulation and split-K with ragged chunks.
import { afterAll, describe, expect, it } from "vitest";
import { Engine } from "../src/engine.ts";
import { variantWorks } from "../src/autotune.ts";
import * as K from "../src/kernels.ts";
import * as ops from "../src/ops.ts";
import * as ref from "./reference/cpu.ts";
import { randomArray } from "./reference/random.ts";
import { expectRelClose } from "./gpu_helpers.ts";

const DRIVERS = [
  { adapter: "lavapipe", variant: "subgroup8", vectors: true },
  { adapter: "lavapipe", variant: "subgroup8", vectors: false },
  { adapter: "lavapipe", variant: "subgroup8k4", vectors: true },
  { adapter: "lavapipe", variant: "subgroup8k4", vectors: false },
  { adapter: "swiftshader", variant: "subgroup4", vectors: true },
  { adapter: "swiftshader", variant: "subgroup4", vectors: false },
  { adapter: "swiftshader", variant: "subgroup4k4", vectors: true },
  { adapter: "swiftshader", variant: "subgroup4k4", vectors: false },
] as const;

let seed = 7000;

describe.each(DRIVERS)("subgroup matmul on $adapter (vec4 kernels: $vectors)", ({ adapter, variant, vectors }) => {
  let engine: Engine | undefined;
  const get = async () => (engine ??= await Engine.create({ adapter, matmul: variant, poisonOutputs: true, vectors }));
  afterAll(() => engine?.dispose());

  const lanes = adapter === "lavapipe" ? 8 : 4;
  it(`offers the ${lanes}-lane kernels and no other subgroup kernel`, async () => {
    const e = await get();
    expect(e.matmulVariants.filter((v) => v.startsWith("subgroup"))).toEqual([`subgroup${lanes}`, `subgroup${lanes}k4`]);
    expect(e.matmulVariant).toBe(variant);
  });

  // Tuning's check must catch a subgroup kernel run on subgroups of another size (its broadcasts then
  // name lanes that are not there, or leave some out): the kernel for the other size, forced onto this
  // driver, fails it, and the right one passes.
  it("tuning's product check fails the kernel written for the other subgroup size", async () => {
    const e = await get();
    const other = variant.replace(/subgroup[48]/, lanes === 8 ? "subgroup4" : "subgroup8") as K.MatmulVariant;
    expect(await variantWorks(e.kernels, variant, K.matmul)).toBe(true);
    expect(await variantWorks(e.kernels, other, K.matmul)).toBe(false);
  });

  // One block, several blocks ragged in every dimension, a long K, a wide N.
  // N a multiple of 4 (200, 44, 132): the vec4 entry where B is not transposed, with ragged last lanes.
  for (const [M, Kd, N] of [[1, 1, 1], [7, 13, 5], [97, 41, 75], [64, 300, 130], [33, 9, 200], [45, 37, 132], [5, 70, 44]] as [number, number, number][]) {
    for (const [ta, tb] of [[false, false], [true, false], [false, true], [true, true]] as [boolean, boolean][]) {
      it(`${M}×${Kd}×${N} transA=${ta} transB=${tb}`, async () => {
        const e = await get();
        const [a, b] = [randomArray(M * Kd, seed++), randomArray(Kd * N, seed++)];
        const c = await ops.matmul(e.tensor(a, ta ? [Kd, M] : [M, Kd]), e.tensor(b, tb ? [N, Kd] : [Kd, N]), { transposeA: ta, transposeB: tb });
        expectRelClose(await c.read(), ref.matmul(a, b, M, N, Kd, ta, tb), 1e-4, "C");
      });
    }
  }

  it.each([
    [45, 19, 37],
    [45, 19, 36],
  ])("bias and tanh fused; accumulating into C: %i×%i×%i", async (M, Kd, N) => {
    const e = await get();
    const [a, b, bias, prior] = [randomArray(M * Kd, seed++), randomArray(Kd * N, seed++), randomArray(N, seed++), randomArray(M * N, seed++)];
    const y = await ops.matmul(e.tensor(a, [M, Kd]), e.tensor(b, [Kd, N]), { bias: e.tensor(bias, [N]), activation: "tanh" });
    const expected = ref.activation("tanh", ref.matmul(a, b, M, N, Kd).map((v, i) => v + bias[i % N]!));
    expectRelClose(await y.read(), expected, 1e-4, "tanh(A·B + bias)");
    const c = e.tensor(prior, [M, N]);
    const [at, bt] = [e.tensor(a, [M, Kd]), e.tensor(b, [Kd, N])];
    await e.run([await K.matmul(e, at.buffer, bt.buffer, c.buffer, { M, N, K: Kd, accumulate: true })]);
    expectRelClose(await c.read(), ref.matmul(a, b, M, N, Kd).map((v, i) => v + prior[i]!), 1e-4, "C + A·B");
  });

  it("split-K: the reference CNN's conv dW, 9×43264·(43264×32)", async () => {
    const e = await get();
    const [M, Kd, N] = [9, 43264, 32];
    const splits = K.splitsFor(M, N, Kd, variant);
    expect(splits).toBeGreaterThan(1);
    const [a, dz] = [randomArray(Kd * M, seed++), randomArray(Kd * N, seed++)];
    const [at, dzt, c, partials] = [e.tensor(a, [Kd, M]), e.tensor(dz, [Kd, N]), e.empty([M, N]), e.empty([splits * M * N])];
    await e.run(await K.matmulSplitK(e, at.buffer, dzt.buffer, c.buffer, partials.buffer, { M, N, K: Kd, transA: true }, splits));
    expectRelClose(await c.read(), ref.matmul(a, dz, M, N, Kd, true, false), 1e-4, "dW");
  });

  // Chunks of 1667 k (not a multiple of 4: a k4 kernel's last step in each chunk is partial, and the
  // next chunk starts off the 4-grid), the last one shorter.
  it("split-K with ragged chunks: 37×5001·(5001×36) in 3", async () => {
    const e = await get();
    const [M, Kd, N] = [37, 5001, 36];
    const [a, b] = [randomArray(M * Kd, seed++), randomArray(Kd * N, seed++)];
    const [at, bt, c, partials] = [e.tensor(a, [M, Kd]), e.tensor(b, [Kd, N]), e.empty([M, N]), e.empty([3 * M * N])];
    await e.run(await K.matmulSplitK(e, at.buffer, bt.buffer, c.buffer, partials.buffer, { M, N, K: Kd }, 3));
    expectRelClose(await c.read(), ref.matmul(a, b, M, N, Kd), 1e-4, "C");
  });
});
