// lib/hash.wgsl — an integer hash for per-element randomness that needs no state: dropout masks and
// augmentation transforms are recomputed from (seed, index) wherever they are needed.

// PCG hash (Jarzynski & Olano, "Hash Functions for GPU Rendering", 2020).
fn pcg(v: u32) -> u32 {
  let state = v * 747796405u + 2891336453u;
  let word = ((state >> ((state >> 28u) + 4u)) ^ state) * 277803737u;
  return (word >> 22u) ^ word;
}
