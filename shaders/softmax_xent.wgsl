// uses: lib/accumulate.wgsl
// softmax_xent.wgsl — fused softmax + cross-entropy: per-example loss, dlogits, and the batch's loss sum
// and correct-prediction count accumulated on the GPU (no readback per step).
//
// Layout: logits, dlogits (B, K); labels (B) class ids (sparse entry) or targets (B, K) probabilities
// (dense entry); loss (B); metrics accumulates [loss sum, correct count, example count] across calls
// until the host clears it. Rows b >= n_valid pad a short last batch: they get zero loss and gradient.
// dlogits = (softmax − onehot) / n_valid, the gradient of the batch-mean loss.
// Dispatch: exactly one workgroup, grid (1, 1, 1); invocations stride over rows, then reduce in
// workgroup memory, so the accumulation needs no atomics. Overrides: WG.

struct Params {
  B: u32,
  K: u32,
  n_valid: u32,
}

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read_write> logits: array<f32>;
@group(0) @binding(2) var<storage, read_write> labels: array<u32>;
@group(0) @binding(3) var<storage, read_write> targets: array<f32>;
@group(0) @binding(4) var<storage, read_write> loss: array<f32>;
@group(0) @binding(5) var<storage, read_write> dlogits: array<f32>;
@group(0) @binding(6) var<storage, read_write> metrics: array<f32>;

override WG: u32 = 64;

struct RowStats { max_v: f32, arg: u32, log_sum: f32 }

fn row_stats(row: u32) -> RowStats {
  let base = row * params.K;
  var max_v = logits[base];
  var arg = 0u;
  for (var k = 1u; k < params.K; k++) {
    if (logits[base + k] > max_v) {
      max_v = logits[base + k];
      arg = k;
    }
  }
  var sum = 0.0;
  for (var k = 0u; k < params.K; k++) {
    sum += exp(logits[base + k] - max_v);
  }
  return RowStats(max_v, arg, log(sum));
}

fn target_of(row: u32, k: u32, sparse: bool) -> f32 {
  if (sparse) {
    return select(0.0, 1.0, labels[row] == k);
  }
  return targets[row * params.K + k];
}

// Loss and gradient of one row; returns (loss, correct).
fn row_loss(row: u32, sparse: bool) -> vec2f {
  let base = row * params.K;
  if (row >= params.n_valid) {
    for (var k = 0u; k < params.K; k++) {
      dlogits[base + k] = 0.0;
    }
    loss[row] = 0.0;
    return vec2f(0.0);
  }
  let s = row_stats(row);
  let scale = 1.0 / f32(params.n_valid);
  var l = 0.0;
  var t_max = -1.0;
  var t_arg = 0u;
  for (var k = 0u; k < params.K; k++) {
    let logp = logits[base + k] - s.max_v - s.log_sum;
    let t = target_of(row, k, sparse);
    l -= t * logp;
    dlogits[base + k] = (exp(logp) - t) * scale;
    if (t > t_max) {
      t_max = t;
      t_arg = k;
    }
  }
  if (sparse && labels[row] >= params.K) {
    // A label out of range must not train silently: poison the loss with NaN (built from a runtime
    // value, since a constant NaN is a compile error in WGSL).
    l = bitcast<f32>(0x7fc00000u | (labels[row] & 0u));
  }
  loss[row] = l;
  return vec2f(l, select(0.0, 1.0, s.arg == t_arg));
}

@compute @workgroup_size(WG, 1, 1)
fn softmax_xent_sparse(@builtin(local_invocation_id) lid: vec3u) {
  var acc = vec2f(0.0);
  for (var row = lid.x; row < params.B; row += WG) {
    acc += row_loss(row, true);
  }
  accumulate_metrics(lid.x, acc, f32(params.n_valid));
}

@compute @workgroup_size(WG, 1, 1)
fn softmax_xent_dense(@builtin(local_invocation_id) lid: vec3u) {
  var acc = vec2f(0.0);
  for (var row = lid.x; row < params.B; row += WG) {
    acc += row_loss(row, false);
  }
  accumulate_metrics(lid.x, acc, f32(params.n_valid));
}

// softmax: probabilities for predict(); y (B, K). Dispatch: grid (ceil(B / WG), 1, 1), one row each.
@group(0) @binding(7) var<storage, read_write> probs: array<f32>;

@compute @workgroup_size(WG, 1, 1)
fn softmax(@builtin(global_invocation_id) gid: vec3u) {
  let row = gid.x;
  if (row >= params.B) {
    return;
  }
  let s = row_stats(row);
  for (var k = 0u; k < params.K; k++) {
    probs[row * params.K + k] = exp(logits[row * params.K + k] - s.max_v - s.log_sum);
  }
}
