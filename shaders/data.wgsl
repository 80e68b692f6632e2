// uses: lib/index.wgsl lib/hash.wgsl
// data.wgsl — gathers one batch from a GPU-resident dataset by shuffled indices, so the data is uploaded
// once and a training step reads no host memory.
//
// Layout: order (N) u32 example indices (this epoch's shuffle); the batch is order[offset .. offset+B),
// rows past `count` repeat the last valid example (their loss is masked). Sources: bytes (N·row) u8 packed
// four to a u32, scaled by `scale` (pixels → [0, 1]); values (N·row) f32; ids (N·row) u32.
// Destinations: x (B·row) f32 or ids_out (B·row) u32.
// Augmentation (AUGMENT, image inputs (H, W, C) only, training gathers only): each example of a step is
// shifted by whole pixels, dx and dy uniform in [−shift, shift], and rotated about its centre by an angle
// uniform in [−rotate, rotate] radians, sampled bilinearly with zeros outside the image. The transform
// of batch row r comes from pcg(seed ^ pcg(r + 1)), so it needs no state and the host varies `seed` per
// step: the same seed gives the same batches. With rotate 0 the shift is exact (no interpolation).
// Dispatch: one invocation per destination element, 2-D grid of WG-wide workgroups. Overrides: AUGMENT, WG.

struct Gather {
  B: u32,
  row: u32,
  offset: u32,
  count: u32,
  scale: f32,
  H: u32,
  W: u32,
  C: u32,
  shift: u32,
  rotate: f32,
  seed: u32,
}

@group(0) @binding(0) var<uniform> gather: Gather;
@group(0) @binding(1) var<storage, read_write> order: array<u32>;
@group(0) @binding(2) var<storage, read_write> bytes: array<u32>;
@group(0) @binding(3) var<storage, read_write> values: array<f32>;
@group(0) @binding(4) var<storage, read_write> ids: array<u32>;
@group(0) @binding(5) var<storage, read_write> x: array<f32>;
@group(0) @binding(6) var<storage, read_write> ids_out: array<u32>;

override AUGMENT: bool = false;
override WG: u32 = 64;

// Source element index of destination element i.
fn source_index(i: u32) -> u32 {
  let r = min(i / gather.row, gather.count - 1u);
  return order[gather.offset + r] * gather.row + i % gather.row;
}

fn byte_at(s: u32) -> f32 {
  let word = bytes[s / 4u];
  return f32((word >> ((s % 4u) * 8u)) & 0xffu);
}

// One pixel of the example starting at `base`, 0 outside the image.
fn pixel(base: u32, py: i32, px: i32, c: u32, packed: bool) -> f32 {
  if (py < 0 || px < 0 || py >= i32(gather.H) || px >= i32(gather.W)) {
    return 0.0;
  }
  let s = base + (u32(py) * gather.W + u32(px)) * gather.C + c;
  if (packed) {
    return byte_at(s);
  }
  return values[s];
}

// Destination element i of an augmented batch, before scaling.
fn augmented(i: u32, packed: bool) -> f32 {
  let r = min(i / gather.row, gather.count - 1u);
  let base = order[gather.offset + r] * gather.row;
  let within = i % gather.row;
  let c = within % gather.C;
  let p = within / gather.C;
  let ox = p % gather.W;
  let oy = p / gather.W;
  let h0 = pcg(gather.seed ^ pcg(r + 1u));
  let h1 = pcg(h0);
  let h2 = pcg(h1);
  let span = 2u * gather.shift + 1u;
  let dx = f32(i32(h0 % span) - i32(gather.shift));
  let dy = f32(i32(h1 % span) - i32(gather.shift));
  let angle = (f32(h2 >> 8u) / 16777216.0 * 2.0 - 1.0) * gather.rotate;
  // The output pixel (ox, oy) shows the source point that the shift and rotation carried there.
  let cx = f32(gather.W - 1u) * 0.5;
  let cy = f32(gather.H - 1u) * 0.5;
  let ux = f32(ox) - dx - cx;
  let uy = f32(oy) - dy - cy;
  let cs = cos(angle);
  let sn = sin(angle);
  let sx = cs * ux + sn * uy + cx;
  let sy = cs * uy - sn * ux + cy;
  let x0 = floor(sx);
  let y0 = floor(sy);
  let fx = sx - x0;
  let fy = sy - y0;
  let ix = i32(x0);
  let iy = i32(y0);
  let top = pixel(base, iy, ix, c, packed) * (1.0 - fx) + pixel(base, iy, ix + 1, c, packed) * fx;
  let bottom = pixel(base, iy + 1, ix, c, packed) * (1.0 - fx) + pixel(base, iy + 1, ix + 1, c, packed) * fx;
  return top * (1.0 - fy) + bottom * fy;
}

@compute @workgroup_size(WG, 1, 1)
fn gather_u8(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let i = linear_index(gid, nwg, WG);
  if (i >= gather.B * gather.row) {
    return;
  }
  if (AUGMENT) {
    x[i] = augmented(i, true) * gather.scale;
  } else {
    x[i] = byte_at(source_index(i)) * gather.scale;
  }
}

@compute @workgroup_size(WG, 1, 1)
fn gather_f32(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let i = linear_index(gid, nwg, WG);
  if (i >= gather.B * gather.row) {
    return;
  }
  if (AUGMENT) {
    x[i] = augmented(i, false) * gather.scale;
  } else {
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
