// uses: lib/index.wgsl
// optimizer.wgsl — parameter updates over one flat arena: every parameter of a model in one dispatch.
//
// Layout: w (parameters), g (gradients), and the optimizer's slots (velocity; m, v), all flat, n elements,
// in the same order. decay holds each element's L2 coefficient (0 for biases and unregularised kernels);
// the gradient used is g + decay · w.
// sgd:  vel = momentum · vel − lr · g;  w += vel                      (Keras SGD)
// adam: m = β1 m + (1−β1) g;  v = β2 v + (1−β2) g²;  w −= lr_t · m / (√v + ε)   (Keras/TF Adam;
//       lr_t = lr · √(1−β2^t) / (1−β1^t) is computed on the host each step).
// Dispatch: ELEMENTS elements per invocation, WG apart, on a 2-D grid of WG-wide workgroups
// (lib/index.wgsl). The loop's bound is min(ELEMENTS, n), which the compiler cannot fold, so it is not
// unrolled: unrolled, lavapipe took 186 ms to compile Adam at its first dispatch instead of 59, and ran
// it no faster (4.5–4.8 ms a step for the reference CNN's 694,080 parameters, against 6.2–6.6 at one
// element per invocation). sgd4 and adam4 do the same on one vec4 per invocation where n is a multiple of
// 4 (a model's arena always is: its tensors start at 256-byte offsets and the trainable prefix ends on
// one), with no loop: CPU drivers pay per load and store, whatever its width, and SwiftShader pays for a
// loop's iterations besides (Adam over the reference CNN's 694,080 parameters: 40 ms on SwiftShader in
// the loop above, 4.9 on lavapipe). Overrides: WG.

struct Sgd {
  n: u32,
  lr: f32,
  momentum: f32,
}

struct Adam {
  n: u32,
  lr_t: f32,
  beta1: f32,
  beta2: f32,
  eps: f32,
}

@group(0) @binding(0) var<uniform> sgd_params: Sgd;
@group(0) @binding(1) var<uniform> adam_params: Adam;
@group(0) @binding(2) var<storage, read_write> w: array<f32>;
@group(0) @binding(3) var<storage, read_write> g: array<f32>;
@group(0) @binding(4) var<storage, read_write> decay: array<f32>;
@group(0) @binding(5) var<storage, read_write> vel: array<f32>;
@group(0) @binding(6) var<storage, read_write> m: array<f32>;
@group(0) @binding(7) var<storage, read_write> v: array<f32>;
// The same arenas as vec4s, for sgd4 and adam4 (n a multiple of 4; params.n is then n / 4).
@group(0) @binding(8) var<storage, read_write> w4: array<vec4f>;
@group(0) @binding(9) var<storage, read_write> g4: array<vec4f>;
@group(0) @binding(10) var<storage, read_write> decay4: array<vec4f>;
@group(0) @binding(11) var<storage, read_write> vel4: array<vec4f>;
@group(0) @binding(12) var<storage, read_write> m4: array<vec4f>;
@group(0) @binding(13) var<storage, read_write> v4: array<vec4f>;

override WG: u32 = 64;

@compute @workgroup_size(WG, 1, 1)
fn sgd(@builtin(local_invocation_id) lid: vec3u, @builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  for (var j = 0u; j < min(ELEMENTS, sgd_params.n); j++) {
    let i = element(lid, wid, nwg, WG, j);
    if (i < sgd_params.n) {
      let grad = g[i] + decay[i] * w[i];
      let step = sgd_params.momentum * vel[i] - sgd_params.lr * grad;
      vel[i] = step;
      w[i] += step;
    }
  }
}

@compute @workgroup_size(WG, 1, 1)
fn adam(@builtin(local_invocation_id) lid: vec3u, @builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  for (var j = 0u; j < min(ELEMENTS, adam_params.n); j++) {
    let i = element(lid, wid, nwg, WG, j);
    if (i < adam_params.n) {
      let grad = g[i] + decay[i] * w[i];
      let mi = adam_params.beta1 * m[i] + (1.0 - adam_params.beta1) * grad;
      let vi = adam_params.beta2 * v[i] + (1.0 - adam_params.beta2) * grad * grad;
      m[i] = mi;
      v[i] = vi;
      w[i] -= adam_params.lr_t * mi / (sqrt(vi) + adam_params.eps);
    }
  }
}

@compute @workgroup_size(WG, 1, 1)
fn sgd4(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let i = linear_index(gid, nwg, WG);
  if (i < sgd_params.n) {
    let grad = g4[i] + decay4[i] * w4[i];
    let step = sgd_params.momentum * vel4[i] - sgd_params.lr * grad;
    vel4[i] = step;
    w4[i] += step;
  }
}

@compute @workgroup_size(WG, 1, 1)
fn adam4(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let i = linear_index(gid, nwg, WG);
  if (i < adam_params.n) {
    let grad = g4[i] + decay4[i] * w4[i];
    let mi = adam_params.beta1 * m4[i] + (1.0 - adam_params.beta1) * grad;
    let vi = adam_params.beta2 * v4[i] + (1.0 - adam_params.beta2) * grad * grad;
    m4[i] = mi;
    v4[i] = vi;
    w4[i] -= adam_params.lr_t * mi / (sqrt(vi) + adam_params.eps);
  }
}
