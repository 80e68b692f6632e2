// batch_norm.wgsl — batch normalisation over rows (Keras BatchNormalization), forward and backward.
//
// Layout (row-major): x, y, dy, dx (R, C) — R = B·H·W rows for NHWC images, R = B for vectors; gamma,
// beta, mean, invstd, moving_mean, moving_var, dgamma, dbeta (C). Only rows < rows_valid belong to the
// batch (a partial last batch leaves junk rows behind them): statistics and parameter gradients use
// those rows only, and backward writes dx = 0 on the rest (leaves it alone when accumulating), so junk
// never reaches an earlier layer's weight gradient. rows_valid is a uniform so that a plan can change it
// for the last batch without rebuilding anything. Variance is biased (÷ N) in normalisation and in the
// moving update, as in Keras 3 and TF.js: moving = moving·momentum + batch·(1 − momentum).
//
// Entry points:
//   batch_norm_stats     — mean and invstd = 1/sqrt(var + epsilon) per channel, and the moving update.
//   batch_norm_normalize — y = gamma·(x − mean)·invstd + beta, every row (training).
//   batch_norm_inference — the same with the moving statistics; writes y only.
//   batch_norm_backward  — dgamma = Σ dy·xhat, dbeta = Σ dy, dx = gamma·invstd/N·(N·dy − Σdy − xhat·Σdy·xhat),
//                          in one pass per channel group: the channel sums dx needs never leave the
//                          workgroup, so no scratch buffer is needed, and any output may be absent.
// Dispatch: workgroups are (WG_C channels) × (WG_R rows), channels fastest so that a row's channels are
// read side by side (NHWC). The reductions (stats, backward) run one workgroup per channel group, grid
// (ceil(C / WG_C), 1, 1); each invocation strides over rows, then one barrier and a fixed-order sum of
// the WG_R partials (a fixed order keeps results bit-identical run to run). The element-wise passes run
// grid (ceil(C / WG_C), min(ceil(R / WG_R), 65535), 1) and stride over the rows beyond it.
// Overrides: ACC_DX, ACC_PARAMS (add into dx, and into dgamma/dbeta, instead of overwriting), WG_C, WG_R.

struct Params {
  R: u32,
  C: u32,
  rows_valid: u32,
  momentum: f32,
  epsilon: f32,
  has_dx: u32,
  has_dgamma: u32,
  has_dbeta: u32,
}

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read_write> x: array<f32>;
@group(0) @binding(2) var<storage, read_write> gamma: array<f32>;
@group(0) @binding(3) var<storage, read_write> beta: array<f32>;
@group(0) @binding(4) var<storage, read_write> y: array<f32>;
@group(0) @binding(5) var<storage, read_write> mean: array<f32>;
@group(0) @binding(6) var<storage, read_write> invstd: array<f32>;
@group(0) @binding(7) var<storage, read_write> moving_mean: array<f32>;
@group(0) @binding(8) var<storage, read_write> moving_var: array<f32>;

override ACC_DX: bool = false;
override ACC_PARAMS: bool = false;
override WG_C: u32 = 16;
override WG_R: u32 = 4;

// (Σ, Σ of squares) of shifted values in the stats pass; (Σ dy, Σ dy·xhat) in the backward pass.
var<workgroup> part: array<vec2f, WG_C * WG_R>;

// The channel's total over the workgroup's row lanes, in a fixed order (after the barrier).
fn column_total(lane: u32) -> vec2f {
  var t = vec2f(0.0);
  for (var i = 0u; i < WG_R; i++) {
    t += part[i * WG_C + lane];
  }
  return t;
}

@compute @workgroup_size(WG_C, WG_R, 1)
fn batch_norm_stats(@builtin(local_invocation_id) lid: vec3u, @builtin(workgroup_id) wid: vec3u) {
  let c = wid.x * WG_C + lid.x;
  // Lanes past the last channel read a valid one and reach the barrier, but store nothing.
  let ch = min(c, params.C - 1u);
  // Sums of x − shift, with shift one of the channel's own values (row 0 is always valid), keep the
  // one-pass variance from cancelling when |mean| ≫ std; a second pass over x would cost a barrier.
  let shift = x[ch];
  var s = vec2f(0.0);
  for (var r = lid.y; r < params.rows_valid; r += WG_R) {
    let d = x[r * params.C + ch] - shift;
    s += vec2f(d, d * d);
  }
  part[lid.y * WG_C + lid.x] = s;
  workgroupBarrier();
  if (lid.y != 0u || c >= params.C) {
    return;
  }
  let t = column_total(lid.x);
  let n = f32(params.rows_valid);
  let m = t.x / n;
  let v = max(t.y / n - m * m, 0.0);
  let batch_mean = shift + m;
  mean[c] = batch_mean;
  invstd[c] = inverseSqrt(v + params.epsilon);
  let keep = params.momentum;
  moving_mean[c] = moving_mean[c] * keep + batch_mean * (1.0 - keep);
  moving_var[c] = moving_var[c] * keep + v * (1.0 - keep);
}

// y = (x − center)·scale + offset down channel c, for the rows of this invocation.
fn normalize_column(c: u32, row0: u32, row_step: u32, center: f32, scale: f32, offset: f32) {
  for (var r = row0; r < params.R; r += row_step) {
    let i = r * params.C + c;
    y[i] = (x[i] - center) * scale + offset;
  }
}

@compute @workgroup_size(WG_C, WG_R, 1)
fn batch_norm_normalize(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let c = gid.x;
  if (c >= params.C) {
    return;
  }
  normalize_column(c, gid.y, nwg.y * WG_R, mean[c], gamma[c] * invstd[c], beta[c]);
}

@compute @workgroup_size(WG_C, WG_R, 1)
fn batch_norm_inference(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let c = gid.x;
  if (c >= params.C) {
    return;
  }
  let scale = gamma[c] * inverseSqrt(moving_var[c] + params.epsilon);
  normalize_column(c, gid.y, nwg.y * WG_R, moving_mean[c], scale, beta[c]);
}

@group(0) @binding(9) var<storage, read_write> dy: array<f32>;
@group(0) @binding(10) var<storage, read_write> dx: array<f32>;
@group(0) @binding(11) var<storage, read_write> dgamma: array<f32>;
@group(0) @binding(12) var<storage, read_write> dbeta: array<f32>;

@compute @workgroup_size(WG_C, WG_R, 1)
fn batch_norm_backward(@builtin(local_invocation_id) lid: vec3u, @builtin(workgroup_id) wid: vec3u) {
  let c = wid.x * WG_C + lid.x;
  let ch = min(c, params.C - 1u);
  let mu = mean[ch];
  let s = invstd[ch];
  var acc = vec2f(0.0);
  for (var r = lid.y; r < params.rows_valid; r += WG_R) {
    let i = r * params.C + ch;
    let g = dy[i];
    acc += vec2f(g, g * (x[i] - mu) * s);
  }
  part[lid.y * WG_C + lid.x] = acc;
  workgroupBarrier();
  if (c >= params.C) {
    return;
  }
  // Every row lane needs the sums for dx, so each adds the partials itself (same order, same result)
  // rather than waiting on a second barrier.
  let t = column_total(lid.x);
  if (lid.y == 0u) {
    if (params.has_dbeta != 0u) {
      dbeta[c] = select(0.0, dbeta[c], ACC_PARAMS) + t.x;
    }
    if (params.has_dgamma != 0u) {
      dgamma[c] = select(0.0, dgamma[c], ACC_PARAMS) + t.y;
    }
  }
  if (params.has_dx == 0u) {
    return;
  }
  let n = f32(params.rows_valid);
  let k = gamma[c] * s / n;
  for (var r = lid.y; r < params.R; r += WG_R) {
    let i = r * params.C + c;
    if (r < params.rows_valid) {
      let v = k * (n * dy[i] - t.x - (x[i] - mu) * s * t.y);
      dx[i] = select(v, dx[i] + v, ACC_DX);
    } else if (!ACC_DX) {
      dx[i] = 0.0;
    }
  }
}
