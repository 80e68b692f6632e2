// Seeded PRNG (mulberry32) for reproducible test data.

// Returns a generator of uniforms in [0, 1).
export function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

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
