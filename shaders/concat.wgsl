// uses: lib/index.wgsl
// concat.wgsl — a strided block copy, the whole of Concatenate on any axis: for o < outer, j < width,
// dst[o·dst_stride + dst_offset + j] (+)= src[o·src_stride + src_offset + j]. Seen as (outer, ·) rows, an
// input of a concatenation along some axis is a column block of y: outer = product of the dimensions
// before the axis (batch included), width = the input's size from the axis on, dst_stride = y's size
// from the axis on, dst_offset = the sizes of the inputs before it from the axis on. Forward copies each
// input into its block of y (src_stride = width, src_offset = 0); backward copies each block of dy back
// out (the strides swapped), adding to dx_i when ACCUMULATE (each element has one writer).
// Dispatch: one invocation per copied element over outer·width, 2-D grid of WG-wide workgroups
// (lib/index.wgsl), so short rows (a concat along the last axis of few channels) and long rows (along
// the batch) both keep every lane busy and neighbouring lanes on neighbouring addresses. Overrides: ACCUMULATE (a pipeline constant, so the common overwrite has no read of the output), WG.

struct Params {
  outer: u32,
  width: u32,
  src_stride: u32,
  src_offset: u32,
  dst_stride: u32,
  dst_offset: u32,
}

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read_write> src: array<f32>;
@group(0) @binding(2) var<storage, read_write> dst: array<f32>;

override ACCUMULATE: bool = false;
override WG: u32 = 64;

@compute @workgroup_size(WG, 1, 1)
fn copy_slice(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let i = linear_index(gid, nwg, WG);
  if (i >= params.outer * params.width) {
    return;
  }
  let o = i / params.width;
  let j = i - o * params.width;
  let d = o * params.dst_stride + params.dst_offset + j;
  var v = src[o * params.src_stride + params.src_offset + j];
  if (ACCUMULATE) {
    v += dst[d];
  }
  dst[d] = v;
}
