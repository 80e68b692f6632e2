// layer_norm.wgsl — layer normalisation over the last axis (Keras LayerNormalization), forward and backward.
//
// Layout (row-major): x, y, dy, dx (R, D); gamma, beta, dgamma, dbeta (D); mean, rstd (R), saved by the
// forward pass for the backward one. Variance is biased (÷ D); rstd = 1/sqrt(var + epsilon).
//
// Entry points:
//   layer_norm_forward    — mean, rstd and y = gamma·xhat + beta.
//   layer_norm_backward   — dx = rstd·(g − mean_D(g) − xhat·mean_D(g·xhat)) with g = dy·gamma.
//   layer_norm_param_grad — dgamma = Σ_rows dy·xhat, dbeta = Σ_rows dy (either may be absent).
// Dispatch: workgroups are (WG_D lanes along a row) × (WG_ROWS rows), so short rows share a workgroup.
// The row passes (forward, backward) give each row WG_D lanes that stride along it, then one barrier and
// a fixed-order sum of the row's WG_D partials; grid: ceil(R / WG_ROWS) workgroups folded onto x and y
// (lib/index.wgsl's 65535 limit). The column reduction (param_grad) reads the same tiles column-wise, one
// workgroup per WG_D columns, grid (ceil(D / WG_D), 1, 1), the WG_ROWS lanes striding over rows.
// Fixed summation orders keep results bit-identical run to run. Overrides: ACC_DX, ACC_PARAMS (add into dx, and into dgamma/dbeta, instead of overwriting), WG_D, WG_ROWS.

struct Params {
  R: u32,
  D: u32,
  epsilon: f32,
  has_dgamma: u32,
  has_dbeta: u32,
}

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read_write> x: array<f32>;
@group(0) @binding(2) var<storage, read_write> gamma: array<f32>;
@group(0) @binding(3) var<storage, read_write> beta: array<f32>;
@group(0) @binding(4) var<storage, read_write> y: array<f32>;
@group(0) @binding(5) var<storage, read_write> mean: array<f32>;
@group(0) @binding(6) var<storage, read_write> rstd: array<f32>;
@group(0) @binding(7) var<storage, read_write> dy: array<f32>;
@group(0) @binding(8) var<storage, read_write> dx: array<f32>;
@group(0) @binding(9) var<storage, read_write> dgamma: array<f32>;
@group(0) @binding(10) var<storage, read_write> dbeta: array<f32>;

override ACC_DX: bool = false;
override ACC_PARAMS: bool = false;
override WG_D: u32 = 64;
override WG_ROWS: u32 = 1;

var<workgroup> part: array<vec2f, WG_D * WG_ROWS>;

// The row's total over its WG_D lanes, in a fixed order (after the barrier).
fn row_total(lane_row: u32) -> vec2f {
  var t = vec2f(0.0);
  for (var i = 0u; i < WG_D; i++) {
    t += part[lane_row * WG_D + i];
  }
  return t;
}

@compute @workgroup_size(WG_D, WG_ROWS, 1)
fn layer_norm_forward(@builtin(local_invocation_id) lid: vec3u, @builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  // Slots past the last row work on that row so that they reach the barrier, but store nothing.
  // (Computed inline: wgsl_reflect's race detector, running invocations in lockstep, gives every
  // invocation the same result from a helper fn that takes builtins, and then reports false races.)
  let slot = (wid.y * nwg.x + wid.x) * WG_ROWS + lid.y;
  let row = min(slot, params.R - 1u);
  let base = row * params.D;
  // Sums of x − shift, shift one of the row's own values, keep the one-pass variance from cancelling
  // when |mean| ≫ std; a second pass for the variance would cost a second barrier.
  let shift = x[base];
  var s = vec2f(0.0);
  for (var j = lid.x; j < params.D; j += WG_D) {
    let d = x[base + j] - shift;
    s += vec2f(d, d * d);
  }
  part[lid.y * WG_D + lid.x] = s;
  workgroupBarrier();
  if (slot >= params.R) {
    return;
  }
  let t = row_total(lid.y);
  let n = f32(params.D);
  let m = t.x / n;
  let mu = shift + m;
  let rs = inverseSqrt(max(t.y / n - m * m, 0.0) + params.epsilon);
  if (lid.x == 0u) {
    mean[row] = mu;
    rstd[row] = rs;
  }
  for (var j = lid.x; j < params.D; j += WG_D) {
    y[base + j] = (x[base + j] - mu) * rs * gamma[j] + beta[j];
  }
}

@compute @workgroup_size(WG_D, WG_ROWS, 1)
fn layer_norm_backward(@builtin(local_invocation_id) lid: vec3u, @builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let slot = (wid.y * nwg.x + wid.x) * WG_ROWS + lid.y;
  let row = min(slot, params.R - 1u);
  let base = row * params.D;
  let mu = mean[row];
  let rs = rstd[row];
  var s = vec2f(0.0);
  for (var j = lid.x; j < params.D; j += WG_D) {
    let g = dy[base + j] * gamma[j];
    s += vec2f(g, g * (x[base + j] - mu) * rs);
  }
  part[lid.y * WG_D + lid.x] = s;
  workgroupBarrier();
  if (slot >= params.R) {
    return;
  }
  // Every lane of the row needs both means, so each adds the partials itself (same order, same result).
  let t = row_total(lid.y) / f32(params.D);
  for (var j = lid.x; j < params.D; j += WG_D) {
    let i = base + j;
    let v = rs * (dy[i] * gamma[j] - t.x - (x[i] - mu) * rs * t.y);
    dx[i] = select(v, dx[i] + v, ACC_DX);
  }
}

@compute @workgroup_size(WG_D, WG_ROWS, 1)
fn layer_norm_param_grad(@builtin(local_invocation_id) lid: vec3u, @builtin(workgroup_id) wid: vec3u) {
  let col = wid.x * WG_D + lid.x;
  let j = min(col, params.D - 1u);
  var s = vec2f(0.0);
  for (var r = lid.y; r < params.R; r += WG_ROWS) {
    let i = r * params.D + j;
    let g = dy[i];
    s += vec2f(g, g * (x[i] - mean[r]) * rstd[r]);
  }
  part[lid.y * WG_D + lid.x] = s;
  workgroupBarrier();
  if (lid.y != 0u || col >= params.D) {
    return;
  }
  var t = vec2f(0.0);
  for (var i = 0u; i < WG_ROWS; i++) {
    t += part[i * WG_D + lid.x];
  }
  if (params.has_dbeta != 0u) {
    dbeta[col] = select(0.0, dbeta[col], ACC_PARAMS) + t.x;
  }
  if (params.has_dgamma != 0u) {
    dgamma[col] = select(0.0, dgamma[col], ACC_PARAMS) + t.y;
  }
}
