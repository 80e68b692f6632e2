// uses: lib/index.wgsl
// sum_splits.wgsl — the second pass of a reduction split into parts: total (+)= Σ_s partials[s], added
// in split order, so the result is the same run to run. Split-K matmul (partial products) and
// bias_grad (column sums of row chunks) both end with it, so CPU drivers compile it once (lavapipe
// spends 20–30 ms compiling a kernel this small at its first dispatch).
// Layout: partials (splits, n) row-major; total (n). Dispatch: one invocation per element of total, on a
// 2-D grid of WG-wide workgroups (lib/index.wgsl). Overrides: ACCUMULATE (add to what total holds), WG.

struct Params {
  n: u32,
  splits: u32,
}

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read_write> partials: array<f32>;
@group(0) @binding(2) var<storage, read_write> total: array<f32>;

override ACCUMULATE: bool = false;
override WG: u32 = 64;

@compute @workgroup_size(WG, 1, 1)
fn sum_splits(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let i = linear_index(gid, nwg, WG);
  if (i >= params.n) {
    return;
  }
  var sum = 0.0;
  for (var s = 0u; s < params.splits; s++) {
    sum += partials[s * params.n + i];
  }
  if (ACCUMULATE) {
    sum += total[i];
  }
  total[i] = sum;
}
