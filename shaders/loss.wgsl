// uses: lib/accumulate.wgsl
// loss.wgsl — element-wise losses on a (B, K) prediction: mean squared error and binary cross-entropy
// (on probabilities, clamped to [ε, 1−ε] like Keras). Each writes the per-example loss and dpred, the
// gradient of the batch-mean loss, and accumulates [loss sum, correct, count] on the GPU.
// Metrics are per element, like Keras (which averages both losses over all n_valid·K elements):
// loss sum adds every element's loss, count adds n_valid·K, so loss sum / count is Keras's loss even
// for K > 1; correct (BCE only; 0 for MSE) counts elements with (p > 0.5) == (t > 0.5), so
// correct / count is Keras's binary accuracy for 0/1 targets. The per-example loss is the mean over K.
// Layout: pred, truth (targets), dpred (B, K); loss (B); metrics [3]. Rows >= n_valid are padding (zero loss
// and gradient). Dispatch: one workgroup, grid (1, 1, 1). Overrides: WG.

struct Params {
  B: u32,
  K: u32,
  n_valid: u32,
}

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read_write> pred: array<f32>;
@group(0) @binding(2) var<storage, read_write> truth: array<f32>;
@group(0) @binding(3) var<storage, read_write> loss: array<f32>;
@group(0) @binding(4) var<storage, read_write> dpred: array<f32>;
@group(0) @binding(5) var<storage, read_write> metrics: array<f32>;

override WG: u32 = 64;
const EPS: f32 = 1e-7;

// (loss summed over the row's K elements, correct elements) of one row; writes its dpred and loss.
fn row_loss(row: u32, bce: bool) -> vec2f {
  let base = row * params.K;
  let valid = row < params.n_valid;
  let scale = 1.0 / (f32(params.K) * f32(params.n_valid));
  var l = 0.0;
  var correct = 0.0;
  for (var k = 0u; k < params.K; k++) {
    let p = pred[base + k];
    let t = truth[base + k];
    var d = 0.0;
    if (bce) {
      let pc = clamp(p, EPS, 1.0 - EPS);
      l -= t * log(pc) + (1.0 - t) * log(1.0 - pc);
      d = (pc - t) / (pc * (1.0 - pc));
      correct += select(0.0, 1.0, (p > 0.5) == (t > 0.5));
    } else {
      l += (p - t) * (p - t);
      d = 2.0 * (p - t);
    }
    dpred[base + k] = select(0.0, d * scale, valid);
  }
  if (!valid) {
    loss[row] = 0.0;
    return vec2f(0.0);
  }
  loss[row] = l / f32(params.K);
  return vec2f(l, correct);
}

@compute @workgroup_size(WG, 1, 1)
fn mse(@builtin(local_invocation_id) lid: vec3u) {
  var acc = vec2f(0.0);
  for (var row = lid.x; row < params.B; row += WG) {
    acc += row_loss(row, false);
  }
  accumulate_metrics(lid.x, acc, f32(params.n_valid * params.K));
}

@compute @workgroup_size(WG, 1, 1)
fn bce(@builtin(local_invocation_id) lid: vec3u) {
  var acc = vec2f(0.0);
  for (var row = lid.x; row < params.B; row += WG) {
    acc += row_loss(row, true);
  }
  accumulate_metrics(lid.x, acc, f32(params.n_valid * params.K));
}
