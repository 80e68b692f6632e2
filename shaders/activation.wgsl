// uses: lib/activation.wgsl lib/index.wgsl
// activation.wgsl — element-wise activations on their own (the Activation layer, or where no matmul can
// absorb them): y = act(x), and dx = dy · act'(y) from the forward output y (dx += … when
// ACCUMULATE, so a tensor read by several layers sums its gradients in place).
// Layout: x, y, dy, dx flat, n elements. Dispatch: ELEMENTS elements per invocation, WG apart, on a
// 2-D grid of WG-wide workgroups (lib/index.wgsl). Overrides: ACCUMULATE (a pipeline constant, so the common overwrite has no read of the output), ACT (0 linear, 1 relu, 2 sigmoid, 3 tanh), WG.

struct Params {
  n: u32,
}

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read_write> x: array<f32>;
@group(0) @binding(2) var<storage, read_write> y: array<f32>;
@group(0) @binding(3) var<storage, read_write> y_in: array<f32>;
@group(0) @binding(4) var<storage, read_write> dy: array<f32>;
@group(0) @binding(5) var<storage, read_write> dx: array<f32>;

override ACCUMULATE: bool = false;
override ACT: u32 = 0;
override WG: u32 = 64;

@compute @workgroup_size(WG, 1, 1)
fn activation_forward(@builtin(local_invocation_id) lid: vec3u, @builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  for (var j = 0u; j < ELEMENTS; j++) {
    let i = element(lid, wid, nwg, WG, j);
    if (i < params.n) {
      y[i] = activate(ACT, x[i]);
    }
  }
}

@compute @workgroup_size(WG, 1, 1)
fn activation_backward(@builtin(local_invocation_id) lid: vec3u, @builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  for (var j = 0u; j < ELEMENTS; j++) {
    let i = element(lid, wid, nwg, WG, j);
    if (i < params.n) {
      var g = dy[i] * activation_grad(ACT, y_in[i]);
      if (ACCUMULATE) {
        g += dx[i];
      }
      dx[i] = g;
    }
  }
}
