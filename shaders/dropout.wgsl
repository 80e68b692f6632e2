// uses: lib/index.wgsl lib/hash.wgsl
// dropout.wgsl — inverted dropout: y = x · keep / (1 − rate), keep ~ Bernoulli(1 − rate) from a hash of
// (seed, element), so the backward pass recomputes the mask instead of storing it. rate 0 = identity.
// The backward pass adds to what dx holds when ACCUMULATE (the forward pass ignores the flag).
// Layout: x, y, dy, dx flat, n elements. Dispatch: one invocation per element, 2-D grid of WG-wide
// workgroups. The host changes `seed` every step and gives each Dropout layer its own, so masks differ
// across layers and steps; nearby seeds (s, s + 1) give unrelated masks because the seed is hashed.

struct Params {
  n: u32,
  seed: u32,
  rate: f32,
}

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read_write> x: array<f32>;
@group(0) @binding(2) var<storage, read_write> y: array<f32>;
@group(0) @binding(3) var<storage, read_write> dy: array<f32>;
@group(0) @binding(4) var<storage, read_write> dx: array<f32>;

override ACCUMULATE: bool = false;
override WG: u32 = 64;

// Both the element and the seed are hashed before they meet: with `i ^ pcg(seed)` the mask of seed s'
// would be the mask of seed s with elements swapped by a fixed XOR, i.e. two layers' masks would be
// the same bits rearranged; through pcg(i) that rearrangement is itself pseudo-random.
fn keep_scale(i: u32) -> f32 {
  let u = f32(pcg(pcg(i) ^ pcg(params.seed)) >> 8u) / 16777216.0;
  return select(0.0, 1.0 / (1.0 - params.rate), u >= params.rate);
}

@compute @workgroup_size(WG, 1, 1)
fn dropout_forward(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let i = linear_index(gid, nwg, WG);
  if (i < params.n) {
    y[i] = x[i] * keep_scale(i);
  }
}

@compute @workgroup_size(WG, 1, 1)
fn dropout_backward(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let i = linear_index(gid, nwg, WG);
  if (i < params.n) {
    var g = dy[i] * keep_scale(i);
    if (ACCUMULATE) {
      g += dx[i];
    }
    dx[i] = g;
  }
}
