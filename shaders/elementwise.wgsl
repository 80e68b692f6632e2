// uses: lib/index.wgsl
// elementwise.wgsl — the graph's element-wise joins and their gradients: y = a + b, y = a · b with
// dx (+)= dy · other (run once per input, `other` being the input not differentiated), and dst (+)= src,
// which carries a gradient through Add or Reshape where the planner cannot alias the buffers. Add needs
// no backward kernel of its own: both inputs receive dy (copy_or_add, or an alias).
// Accumulate: with ACCUMULATE the writing kernels add to what the output holds (llm.c's +=), so a
// tensor that fans out sums its gradients in place; each element has one writer, so no races.
// Layout: every tensor flat, n elements, same shape (broadcasting is the planner's job). Dispatch: ELEMENTS
// elements per invocation, WG apart, on a 2-D grid of WG-wide workgroups (lib/index.wgsl). Overrides: ACCUMULATE (a pipeline constant, so the common overwrite has no read of the output), WG.

struct Params {
  n: u32,
}

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read_write> a: array<f32>;
@group(0) @binding(2) var<storage, read_write> b: array<f32>;
@group(0) @binding(3) var<storage, read_write> y: array<f32>;
@group(0) @binding(4) var<storage, read_write> dy: array<f32>;
@group(0) @binding(5) var<storage, read_write> other: array<f32>;
@group(0) @binding(6) var<storage, read_write> dx: array<f32>;
@group(0) @binding(7) var<storage, read_write> src: array<f32>;
@group(0) @binding(8) var<storage, read_write> dst: array<f32>;

override ACCUMULATE: bool = false;
override WG: u32 = 64;

@compute @workgroup_size(WG, 1, 1)
fn add_forward(@builtin(local_invocation_id) lid: vec3u, @builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  for (var j = 0u; j < ELEMENTS; j++) {
    let i = element(lid, wid, nwg, WG, j);
    if (i < params.n) {
      y[i] = a[i] + b[i];
    }
  }
}

@compute @workgroup_size(WG, 1, 1)
fn multiply_forward(@builtin(local_invocation_id) lid: vec3u, @builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  for (var j = 0u; j < ELEMENTS; j++) {
    let i = element(lid, wid, nwg, WG, j);
    if (i < params.n) {
      y[i] = a[i] * b[i];
    }
  }
}

@compute @workgroup_size(WG, 1, 1)
fn multiply_backward(@builtin(local_invocation_id) lid: vec3u, @builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  for (var j = 0u; j < ELEMENTS; j++) {
    let i = element(lid, wid, nwg, WG, j);
    if (i < params.n) {
      var g = dy[i] * other[i];
      if (ACCUMULATE) {
        g += dx[i];
      }
      dx[i] = g;
    }
  }
}

@compute @workgroup_size(WG, 1, 1)
fn copy_or_add(@builtin(local_invocation_id) lid: vec3u, @builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  for (var j = 0u; j < ELEMENTS; j++) {
    let i = element(lid, wid, nwg, WG, j);
    if (i < params.n) {
      var v = src[i];
      if (ACCUMULATE) {
        v += dst[i];
      }
      dst[i] = v;
    }
  }
}
