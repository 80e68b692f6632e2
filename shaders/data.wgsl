// uses: lib/index.wgsl
// data.wgsl — gathers one batch from a GPU-resident dataset by shuffled indices, so the data is uploaded
// once and a training step reads no host memory.
//
// Layout: order (N) u32 example indices (this epoch's shuffle); the batch is order[offset .. offset+B),
// rows past `count` repeat the last valid example (their loss is masked). Sources: bytes (N·row) u8 packed
// four to a u32, scaled by `scale` (pixels → [0, 1]); values (N·row) f32; ids (N·row) u32.
// Destinations: x (B·row) f32 or ids_out (B·row) u32.
// Dispatch: one invocation per destination element, 2-D grid of WG-wide workgroups.

struct Gather {
  B: u32,
  row: u32,
  offset: u32,
  count: u32,
  scale: f32,
}

@group(0) @binding(0) var<uniform> gather: Gather;
@group(0) @binding(1) var<storage, read_write> order: array<u32>;
@group(0) @binding(2) var<storage, read_write> bytes: array<u32>;
@group(0) @binding(3) var<storage, read_write> values: array<f32>;
@group(0) @binding(4) var<storage, read_write> ids: array<u32>;
@group(0) @binding(5) var<storage, read_write> x: array<f32>;
@group(0) @binding(6) var<storage, read_write> ids_out: array<u32>;

override WG: u32 = 64;

// Source element index of destination element i.
fn source_index(i: u32) -> u32 {
  let r = min(i / gather.row, gather.count - 1u);
  return order[gather.offset + r] * gather.row + i % gather.row;
}

@compute @workgroup_size(WG, 1, 1)
fn gather_u8(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let i = linear_index(gid, nwg, WG);
  if (i >= gather.B * gather.row) {
    return;
  }
  let s = source_index(i);
  let word = bytes[s / 4u];
  x[i] = f32((word >> ((s % 4u) * 8u)) & 0xffu) * gather.scale;
}

@compute @workgroup_size(WG, 1, 1)
fn gather_f32(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let i = linear_index(gid, nwg, WG);
  if (i < gather.B * gather.row) {
    x[i] = values[source_index(i)] * gather.scale;
  }
}

@compute @workgroup_size(WG, 1, 1)
fn gather_u32(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let i = linear_index(gid, nwg, WG);
  if (i < gather.B * gather.row) {
    ids_out[i] = ids[source_index(i)];
  }
}
