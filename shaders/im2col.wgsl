// uses: lib/index.wgsl
// im2col.wgsl — convolution as matmul: im2col unrolls input patches into rows; col2im is its adjoint.
//
// Layout: x, dx (B, H, W, C) NHWC; cols, dcols (B·OH·OW, KH·KW·C), row (b·OH + oy)·OW + ox, column
// (ky·KW + kx)·C + c. Padding is explicit: PT/PL rows/columns before the image, zeros outside it.
// col2im is the gather form: each dx element sums the cols entries that read it, so no atomics; with
// ACCUMULATE it adds that sum to what dx holds (a tensor read by several layers).
// Dispatch: one invocation per CPL channels of a position (im2col: of a patch row, every tap in a loop, so
// the divisions that find the row are paid once per row and not per tap: integer division is scalar on
// CPU adapters; col2im: of an input pixel), on a 2-D grid of WG-wide workgroups (lib/index.wgsl).

struct Conv {
  B: u32, H: u32, W: u32, C: u32,
  KH: u32, KW: u32, SH: u32, SW: u32,
  PT: u32, PL: u32, OH: u32, OW: u32,
}

@group(0) @binding(0) var<uniform> conv: Conv;
@group(0) @binding(1) var<storage, read_write> x: array<f32>;
@group(0) @binding(2) var<storage, read_write> cols: array<f32>;
@group(0) @binding(3) var<storage, read_write> dcols: array<f32>;
@group(0) @binding(4) var<storage, read_write> dx: array<f32>;

override ACCUMULATE: bool = false;
override WG: u32 = 64;

// Channels per invocation: neighbouring channels share a patch position, so one invocation does the index
// arithmetic once and moves up to CPL of them (CPU drivers pay per-lane for the divisions, not the loads).
const CPL = 4u;

@compute @workgroup_size(WG, 1, 1)
fn im2col(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let groups = (conv.C + CPL - 1u) / CPL;
  let idx = linear_index(gid, nwg, WG);
  if (idx >= conv.B * conv.OH * conv.OW * groups) {
    return;
  }
  let g = idx % groups;
  let row = idx / groups;
  let ox = row % conv.OW;
  let oy = (row / conv.OW) % conv.OH;
  let b = row / (conv.OW * conv.OH);
  let c0 = g * CPL;
  let n = min(CPL, conv.C - c0);
  // Every tap of the patch row, in column order: (ky·KW + kx)·C + c.
  var out = row * conv.KH * conv.KW * conv.C + c0;
  for (var ky = 0u; ky < conv.KH; ky++) {
    let iy = i32(oy * conv.SH + ky) - i32(conv.PT);
    for (var kx = 0u; kx < conv.KW; kx++) {
      let ix = i32(ox * conv.SW + kx) - i32(conv.PL);
      let inside = iy >= 0 && iy < i32(conv.H) && ix >= 0 && ix < i32(conv.W);
      let src = ((b * conv.H + u32(max(iy, 0))) * conv.W + u32(max(ix, 0))) * conv.C + c0;
      for (var j = 0u; j < n; j++) {
        var v = 0.0;
        if (inside) {
          v = x[src + j];
        }
        cols[out + j] = v;
      }
      out += conv.C;
    }
  }
}

@compute @workgroup_size(WG, 1, 1)
fn col2im(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let groups = (conv.C + CPL - 1u) / CPL;
  let idx = linear_index(gid, nwg, WG);
  if (idx >= conv.B * conv.H * conv.W * groups) {
    return;
  }
  let g = idx % groups;
  let px = (idx / groups) % conv.W;
  let py = (idx / (groups * conv.W)) % conv.H;
  let b = idx / (groups * conv.W * conv.H);
  let c0 = g * CPL;
  let n = min(CPL, conv.C - c0);
  let last = n - 1u;
  let ncols = conv.KH * conv.KW * conv.C;
  // The taps that read this pixel: ky ≡ py + PT (mod SH), from the smallest such ky, for output rows
  // oy = (py + PT − ky) / SH counting down (likewise kx, ox). One division per axis instead of three per
  // tap: integer division is scalar on CPU adapters.
  let ty = py + conv.PT;
  let tx = px + conv.PL;
  let ky0 = ty % conv.SH;
  let kx0 = tx % conv.SW;
  var sum = vec4f(0.0);
  var oy = i32(ty / conv.SH);
  for (var ky = ky0; ky < conv.KH; ky += conv.SH) {
    if (oy >= 0 && oy < i32(conv.OH)) {
      var ox = i32(tx / conv.SW);
      for (var kx = kx0; kx < conv.KW; kx += conv.SW) {
        if (ox >= 0 && ox < i32(conv.OW)) {
          let at = ((b * conv.OH + u32(oy)) * conv.OW + u32(ox)) * ncols + (ky * conv.KW + kx) * conv.C + c0;
          // The group's n channels (repeating the last where n < 4: those lanes are not stored).
          sum += vec4f(dcols[at], dcols[at + min(1u, last)], dcols[at + min(2u, last)], dcols[at + min(3u, last)]);
        }
        ox -= 1;
      }
    }
    oy -= 1;
  }
  let base = ((b * conv.H + py) * conv.W + px) * conv.C + c0;
  for (var j = 0u; j < n; j++) {
    var v = sum[j];
    if (ACCUMULATE) {
      v += dx[base + j];
    }
    dx[base + j] = v;
  }
}
