// Shared set-up for GPU tests: one engine per test file with poisoned outputs, and the 1e-4 comparison.
import { Engine } from "../src/engine.ts";

let engine: Promise<Engine> | undefined;

/**
 * The file's engine; every output buffer it allocates starts as NaN so unwritten elements fail. It takes
 * the vec4 kernels (EngineOptions.vectors) wherever shapes allow, so the kernel tests' shapes cover both,
 * vec4 where a width is a multiple of 4, scalar where not; and the fused convolution and pooling
 * (EngineOptions.fusion) wherever a graph allows. Both are on by default on every adapter but llvmpipe,
 * where the tests run: models on engines of their own take the other kernels there.
 */
export function gpuEngine(): Promise<Engine> {
  engine ??= freshEngine();
  return engine;
}

/** A new engine with the file engine's options: runs on both end bitwise alike (recovery tests lose its device). */
export function freshEngine(): Promise<Engine> {
  return Engine.create({ poisonOutputs: true, vectors: true, fusion: true });
}

/**
 * Asserts |gpu − ref| <= rtol · (|ref| + rms(ref)) for every element: relative error with a floor at the
 * output's typical magnitude, so sums that cancel to near zero are not held to float64 precision.
 */
export function expectRelClose(gpu: ArrayLike<number>, ref: ArrayLike<number>, rtol = 1e-4, label = "values"): void {
  if (gpu.length !== ref.length) throw new Error(`${label}: GPU gave ${gpu.length} elements, reference ${ref.length}`);
  let sq = 0;
  for (let i = 0; i < ref.length; i++) sq += ref[i]! * ref[i]!;
  const rms = Math.sqrt(sq / Math.max(ref.length, 1)) || 1;
  let worst = 0;
  let worstAt = -1;
  for (let i = 0; i < ref.length; i++) {
    const err = Math.abs(gpu[i]! - ref[i]!) / (Math.abs(ref[i]!) + rms);
    if (!(err <= worst)) {
      worst = Number.isNaN(err) ? Infinity : err;
      worstAt = i;
    }
  }
  if (!(worst <= rtol)) {
    throw new Error(`${label}: element ${worstAt} is ${gpu[worstAt]} on the GPU, ${ref[worstAt]} in the reference (relative error ${worst.toExponential(2)} > ${rtol}; ${gpu.length} elements)`);
  }
}
