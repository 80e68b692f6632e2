// uses: lib/activation.wgsl
// bias_grad.wgsl — db = column sums of dz over the batch (and spatial positions), where dz = dy, or
// dy · act'(act_y) when the layer's activation is fused (DACT != 0).
// Layout: dy, act_y (R, N) row-major; db (N). Dispatch: one workgroup per column, grid (N, 1, 1);
// invocations stride over rows, then a tree reduction in workgroup memory. Overrides: DACT, WG (power of 2).

struct Params {
  R: u32,
  N: u32,
}

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> dy: array<f32>;
@group(0) @binding(2) var<storage, read> act_y: array<f32>;
@group(0) @binding(3) var<storage, read_write> db: array<f32>;

override DACT: u32 = 0;
override WG: u32 = 64;

var<workgroup> partial: array<f32, WG>;

@compute @workgroup_size(WG, 1, 1)
fn bias_grad(@builtin(local_invocation_id) lid: vec3u, @builtin(workgroup_id) wid: vec3u) {
  let n = wid.x;
  var sum = 0.0;
  for (var r = lid.x; r < params.R; r += WG) {
    let i = r * params.N + n;
    if (DACT != 0u) {
      sum += dy[i] * activation_grad(DACT, act_y[i]);
    } else {
      sum += dy[i];
    }
  }
  partial[lid.x] = sum;
  workgroupBarrier();
  for (var stride = WG / 2u; stride > 0u; stride /= 2u) {
    if (lid.x < stride) {
      partial[lid.x] += partial[lid.x + stride];
    }
    workgroupBarrier();
  }
  if (lid.x == 0u) {
    db[n] = partial[0];
  }
}
