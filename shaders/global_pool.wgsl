// uses: lib/index.wgsl
// global_pool.wgsl — global average pooling, forward and backward: y[b, c] = mean over p of x[b, p, c],
// and dx[b, p, c] (+)= dy[b, c] / HW.
// Layout: x, dx (B, HW, C), the spatial positions of an NHWC tensor flattened; y, dy (B, C).
// Forward: one invocation per (b, c) sums its HW inputs in order p = 0, 1, …: a fixed order, so the result
// is deterministic with no atomics or cross-invocation reduction, and neighbouring lanes (neighbouring c)
// read neighbouring addresses. Backward: one invocation per dx element, adding to what dx holds when
// ACCUMULATE (each element has one writer). Dispatch: 2-D grid of WG-wide workgroups over the
// tensor the pass writes (lib/index.wgsl). Overrides: ACCUMULATE (a pipeline constant, so the common overwrite has no read of the output), WG.

struct Params {
  B: u32,
  HW: u32,
  C: u32,
}

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read_write> x: array<f32>;
@group(0) @binding(2) var<storage, read_write> y: array<f32>;
@group(0) @binding(3) var<storage, read_write> dy: array<f32>;
@group(0) @binding(4) var<storage, read_write> dx: array<f32>;

override ACCUMULATE: bool = false;
override WG: u32 = 64;

@compute @workgroup_size(WG, 1, 1)
fn global_avg_pool_forward(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let i = linear_index(gid, nwg, WG);
  if (i >= params.B * params.C) {
    return;
  }
  let b = i / params.C;
  let c = i - b * params.C;
  var sum = 0.0;
  for (var p = 0u; p < params.HW; p++) {
    sum += x[(b * params.HW + p) * params.C + c];
  }
  y[i] = sum / f32(params.HW);
}

@compute @workgroup_size(WG, 1, 1)
fn global_avg_pool_backward(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let i = linear_index(gid, nwg, WG);
  if (i >= params.B * params.HW * params.C) {
    return;
  }
  let c = i % params.C;
  let b = i / (params.HW * params.C);
  var g = dy[b * params.C + c] / f32(params.HW);
  if (ACCUMULATE) {
    g += dx[i];
  }
  dx[i] = g;
}
