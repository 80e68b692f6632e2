// Seeded random test data (the engine's mulberry32 generator).
import { mulberry32 } from "../../src/train/random.ts";

/** Returns a generator of uniforms in [0, 1). */
export const rng = mulberry32;

// n uniforms in [lo, hi), never exactly zero.
export function randomArray(n: number, seed: number, lo = -1, hi = 1): Float64Array {
  const next = rng(seed);
  const out = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    let v = 0;
    while (v === 0) v = lo + (hi - lo) * next();
    out[i] = v;
  }
  return out;
}
