// uses: lib/activation.wgsl
// bias_grad.wgsl — the backward pass through a layer's activation and bias, in one pass over dy:
// dz = dy · act'(act_y) (written when act != 0; for a linear layer dz is dy itself) and db = the column
// sums of dz over the batch and spatial positions (written when has_db != 0; added to what db holds when
// ACCUMULATE, for a bias shared by several layers). dz is scratch and always overwritten. The
// products for dW and dX then read dz as it is, so the matmul needs no activation variant.
// Layout: dy, act_y, dz (R, N) row-major; db (N). Dispatch: one workgroup per column, grid (N, 1, 1) (folded into y past the grid limit);
// invocations stride over rows, then one sums their partials from workgroup memory. Overrides: ACCUMULATE (a pipeline constant, so the common overwrite has no read of the output), WG.

struct Params {
  R: u32,
  N: u32,
  act: u32,
  has_db: u32,
}

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read_write> dy: array<f32>;
@group(0) @binding(2) var<storage, read_write> act_y: array<f32>;
@group(0) @binding(3) var<storage, read_write> dz: array<f32>;
@group(0) @binding(4) var<storage, read_write> db: array<f32>;

override ACCUMULATE: bool = false;
override WG: u32 = 64;

var<workgroup> partial: array<f32, WG>;

@compute @workgroup_size(WG, 1, 1)
fn bias_grad(@builtin(local_invocation_id) lid: vec3u, @builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  // More columns than one grid dimension allows fold into y; the extra workgroups of the last row idle.
  let n = wid.x + wid.y * nwg.x;
  if (n >= params.N) {
    return;
  }
  var sum = 0.0;
  for (var r = lid.x; r < params.R; r += WG) {
    let i = r * params.N + n;
    var g = dy[i];
    if (params.act != 0u) {
      g *= activation_grad(params.act, act_y[i]);
      dz[i] = g;
    }
    sum += g;
  }
  if (params.has_db == 0u) {
    return;
  }
  partial[lid.x] = sum;
  // One barrier, then one invocation adds the WG partials (see lib/accumulate.wgsl for why not a tree).
  workgroupBarrier();
  if (lid.x == 0u) {
    var total = 0.0;
    for (var i = 0u; i < WG; i++) {
      total += partial[i];
    }
    if (ACCUMULATE) {
      total += db[n];
    }
    db[n] = total;
  }
}
