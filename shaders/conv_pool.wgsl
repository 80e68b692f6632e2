// uses: lib/activation.wgsl lib/index.wgsl
// conv_pool.wgsl — a 3×3 convolution at stride 1 with its bias and activation, fused with the 2×2 max
// pooling that reads it (MNIST's first layer, and most networks'): y = maxpool(act(conv(x, w) + bias)).
// The convolution's output (4× the pooled one) is never written or read back, and no im2col column
// buffer exists. On CPU adapters, which pay for every storage access, this replaces im2col, a product
// with K = 9·C, a pooling pass and, backward, the pooling's scatter, the activation's pass and the filter
// product. The planner fuses where nothing else reads the convolution's output, nothing needs the
// gradient of its input (a network's first layer) and F is a multiple of 4 (src/graph/fuse.ts).
// Layout: x (B, H, W, C) NHWC; w (3, 3, C, F) read as (9·C, F/4) vec4s; bias (F/4) vec4s; y, dy (B, PH, PW,
// F/4) vec4s; argmax (B, PH, PW, F/4) u32: per channel of the vec4 (8 bits each, the first in the low
// byte) the window position of its maximum, wy·2 + wx (the first one on ties, as pool.wgsl).
// Backward: dw_partials (slices, 9·C, F/4) and db_partials (slices, F/4) vec4s, which sum_splits.wgsl
// adds up in slice order (deterministic, no atomics). Activations are monotonic, so the maximum of
// act(z) is act of the maximum of z, and the gradient through the activation is taken from the pooled
// output (lib/activation.wgsl's derivatives take y).
// Written for CPU adapters that neither unroll loops nor keep indexed arrays in registers (SwiftShader
// pays for every indexed access, private or storage: a version with loops over the window and the taps
// and the patch in a private array took it 110–130 ms for the reference CNN's forward, against ~60 for
// the unfused kernels and ~22 for this one). A pooling window's 4×4 input patch of one channel is four
// named rows; a channel group's weights for one kernel row ky are a mat3x4f (column kx: the 4 channels'
// weights), so one kernel row of a convolution output is a matrix-vector product. SwiftShader's compile
// time is as touchy: with the activation applied to each of the 4 outputs before the maximum the forward
// took 1.05 s to compile (0.1 s now), with branch-free input loads the compile did not end, and with two
// pooled positions per invocation it took 76 s. lavapipe compiles both entry points in 0.4–0.45 s each,
// at their first dispatch (about 17 ms per load site), which is why the engine does not fuse there
// unless asked (EngineOptions.fusion).
// Dispatch: forward, one invocation per pooled position (all F/4 channel groups in turn); backward, one
// per (slice, pair of channel groups), walking positions slice, slice + slices, ... Both on a 2-D grid of
// WG-wide workgroups (lib/index.wgsl). Overrides: C, WG.

struct Geom {
  B: u32, H: u32, W: u32, F4: u32,
  // Convolution padding and output size.
  PT: u32, PL: u32, OH: u32, OW: u32,
  // Pooling strides, padding and output size.
  QSH: u32, QSW: u32, QT: u32, QL: u32,
  PH: u32, PW: u32,
  has_bias: u32,
  act: u32,
  // Forward: write argmax (training).
  save: u32,
  // Backward: invocations per channel group.
  slices: u32,
}

@group(0) @binding(0) var<uniform> geom: Geom;
@group(0) @binding(1) var<storage, read_write> x: array<f32>;
@group(0) @binding(2) var<storage, read_write> w4: array<vec4f>;
@group(0) @binding(3) var<storage, read_write> bias4: array<vec4f>;
@group(0) @binding(4) var<storage, read_write> y4: array<vec4f>;
@group(0) @binding(5) var<storage, read_write> argmax: array<u32>;
@group(0) @binding(6) var<storage, read_write> dy4: array<vec4f>;
@group(0) @binding(7) var<storage, read_write> dw_partials: array<vec4f>;
@group(0) @binding(8) var<storage, read_write> db_partials: array<vec4f>;

// Input channels: a pipeline constant, so that a single channel's patch is read once per position.
override C: u32 = 1;
override WG: u32 = 64;

// The first convolution output (row, column) under pooled position p's window: negative where a 'same'
// window overhangs.
fn window_of(p: u32) -> vec2i {
  let px = p % geom.PW;
  let py = (p / geom.PW) % geom.PH;
  return vec2i(i32(py * geom.QSH) - i32(geom.QT), i32(px * geom.QSW) - i32(geom.QL));
}

// Whether window position (wy, wx) is a convolution output (a 'same' pooling window can overhang).
fn in_conv(o0: vec2i, wy: u32, wx: u32) -> bool {
  let oy = o0.x + i32(wy);
  let ox = o0.y + i32(wx);
  return oy >= 0 && oy < i32(geom.OH) && ox >= 0 && ox < i32(geom.OW);
}

// Input column ix of image row `row` (its first element's pixel index), channel ch; zero outside.
fn pixel(row: u32, ix: i32, ch: u32) -> f32 {
  if (ix < 0 || ix >= i32(geom.W)) {
    return 0.0;
  }
  return x[(row + u32(ix)) * C + ch];
}

// A row of the patch: 4 values (columns ix0 .. ix0 + 3) of channel ch, zero outside the image.
fn patch_row(item: u32, iy: i32, ix0: i32, ch: u32) -> vec4f {
  if (iy < 0 || iy >= i32(geom.H)) {
    return vec4f(0.0);
  }
  let row = (item * geom.H + u32(iy)) * geom.W;
  return vec4f(pixel(row, ix0, ch), pixel(row, ix0 + 1, ch), pixel(row, ix0 + 2, ch), pixel(row, ix0 + 3, ch));
}

// The 4 convolution outputs (window positions 00, 01, 10, 11) of one channel group.
struct Quad { a00: vec4f, a01: vec4f, a10: vec4f, a11: vec4f }

// q plus the contribution of input channel ch (patch rows r0..r3) to channel group g.
fn add_channel(q: Quad, g: u32, ch: u32, r0: vec4f, r1: vec4f, r2: vec4f, r3: vec4f) -> Quad {
  let k0 = weights_row(g, 0u, ch);
  let k1 = weights_row(g, 1u, ch);
  let k2 = weights_row(g, 2u, ch);
  return Quad(
    q.a00 + k0 * r0.xyz + k1 * r1.xyz + k2 * r2.xyz,
    q.a01 + k0 * r0.yzw + k1 * r1.yzw + k2 * r2.yzw,
    q.a10 + k0 * r1.xyz + k1 * r2.xyz + k2 * r3.xyz,
    q.a11 + k0 * r1.yzw + k1 * r2.yzw + k2 * r3.yzw,
  );
}

// Channel group g's weights for kernel row ky of input channel ch.
fn weights_row(g: u32, ky: u32, ch: u32) -> mat3x4f {
  let t = (ky * 3u * C + ch) * geom.F4 + g;
  return mat3x4f(w4[t], w4[t + C * geom.F4], w4[t + 2u * C * geom.F4]);
}

// The first window position inside the convolution's output wins ties (as pool.wgsl): v against the
// best so far, position q.
struct Best { v: vec4f, arg: vec4u, found: bool }

fn better(b: Best, v: vec4f, q: u32, inside: bool) -> Best {
  if (!inside) {
    return b;
  }
  let wins = (v > b.v) | vec4<bool>(!b.found);
  return Best(select(b.v, v, wins), select(b.arg, vec4u(q), wins), true);
}

@compute @workgroup_size(WG, 1, 1)
fn conv_pool_forward(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let p = linear_index(gid, nwg, WG);
  if (p >= geom.B * geom.PH * geom.PW) {
    return;
  }
  let item = p / (geom.PH * geom.PW);
  let o0 = window_of(p);
  let iy0 = o0.x - i32(geom.PT);
  let ix0 = o0.y - i32(geom.PL);
  // One input channel (C is a pipeline constant): its patch is read once, for every channel group.
  var r0 = vec4f(0.0);
  var r1 = vec4f(0.0);
  var r2 = vec4f(0.0);
  var r3 = vec4f(0.0);
  if (C == 1u) {
    r0 = patch_row(item, iy0, ix0, 0u);
    r1 = patch_row(item, iy0 + 1, ix0, 0u);
    r2 = patch_row(item, iy0 + 2, ix0, 0u);
    r3 = patch_row(item, iy0 + 3, ix0, 0u);
  }
  for (var g = 0u; g < geom.F4; g++) {
    var start = vec4f(0.0);
    if (geom.has_bias != 0u) {
      start = bias4[g];
    }
    var q = Quad(start, start, start, start);
    if (C == 1u) {
      q = add_channel(q, g, 0u, r0, r1, r2, r3);
    } else {
      for (var ch = 0u; ch < C; ch++) {
        q = add_channel(q, g, ch, patch_row(item, iy0, ix0, ch), patch_row(item, iy0 + 1, ix0, ch), patch_row(item, iy0 + 2, ix0, ch), patch_row(item, iy0 + 3, ix0, ch));
      }
    }
    var b = Best(vec4f(0.0), vec4u(0u), false);
    // Activations are monotonic: the activation of the largest pre-activation is the largest output.
    // (Where two outputs tie and their pre-activations do not, at 0 under ReLU or where tanh or the
    // sigmoid saturates, either position is as good: the activation's derivative is 0 there.)
    b = better(b, q.a00, 0u, in_conv(o0, 0u, 0u));
    b = better(b, q.a01, 1u, in_conv(o0, 0u, 1u));
    b = better(b, q.a10, 2u, in_conv(o0, 1u, 0u));
    b = better(b, q.a11, 3u, in_conv(o0, 1u, 1u));
    y4[p * geom.F4 + g] = activate4(geom.act, b.v);
    if (geom.save != 0u) {
      argmax[p * geom.F4 + g] = b.arg.x | (b.arg.y << 8u) | (b.arg.z << 16u) | (b.arg.w << 24u);
    }
  }
}

// Backward: per slice and channel group, the kernel's 3 rows of dW as named mat3x4f
// accumulators. A channel's gradient dz reaches the one window position q its maximum came from; per
// window position the masked gradient m (zero where another position won) adds m · patch row to the
// accumulators, column kx of kernel row ky taking m times the input under it.
struct Grad3 { k0: mat3x4f, k1: mat3x4f, k2: mat3x4f }

// dW rows plus the outer products of m with the patch rows under window position (wy, wx) (rows
// ra, rb, rc are the patch rows wy .. wy + 2; `right` picks columns 1..3 instead of 0..2).
fn add_outer(d: Grad3, m: vec4f, ra: vec4f, rb: vec4f, rc: vec4f, right: bool) -> Grad3 {
  let a = select(ra.xyz, ra.yzw, right);
  let b = select(rb.xyz, rb.yzw, right);
  let c = select(rc.xyz, rc.yzw, right);
  return Grad3(
    d.k0 + mat3x4f(m * a.x, m * a.y, m * a.z),
    d.k1 + mat3x4f(m * b.x, m * b.y, m * b.z),
    d.k2 + mat3x4f(m * c.x, m * c.y, m * c.z),
  );
}

// d plus the gradient dz of one channel group at one pooled position: each channel's reaches the window
// position arg its maximum came from (patch rows r0..r3).
fn accumulate(d: Grad3, dz: vec4f, arg: vec4u, r0: vec4f, r1: vec4f, r2: vec4f, r3: vec4f) -> Grad3 {
  let zero = vec4f(0.0);
  var out = add_outer(d, select(zero, dz, arg == vec4u(0u)), r0, r1, r2, false);
  out = add_outer(out, select(zero, dz, arg == vec4u(1u)), r0, r1, r2, true);
  out = add_outer(out, select(zero, dz, arg == vec4u(2u)), r1, r2, r3, false);
  return add_outer(out, select(zero, dz, arg == vec4u(3u)), r1, r2, r3, true);
}

// The gradient through the activation at element e of y, and its channels' window positions.
fn dz_at(e: u32) -> vec4f {
  return dy4[e] * activation_grad4(geom.act, y4[e]);
}

fn arg_at(e: u32) -> vec4u {
  return (vec4u(argmax[e]) >> vec4u(0u, 8u, 16u, 24u)) & vec4u(255u);
}

// Slice `slice`'s partial filter gradient of channel group g, input channel ch (tap (ky, kx, ch) is row
// (ky·3 + kx)·C + ch of dW).
fn store_partial(d: Grad3, slice: u32, g: u32, ch: u32) {
  let base = slice * 9u * C;
  for (var kx = 0u; kx < 3u; kx++) {
    dw_partials[(base + kx * C + ch) * geom.F4 + g] = d.k0[kx];
    dw_partials[(base + (3u + kx) * C + ch) * geom.F4 + g] = d.k1[kx];
    dw_partials[(base + (6u + kx) * C + ch) * geom.F4 + g] = d.k2[kx];
  }
}

// One invocation per (slice, pair of channel groups): the pair shares each position's input patch, the
// most of what a position costs to load (16 loads against 3 per group).
@compute @workgroup_size(WG, 1, 1)
fn conv_pool_backward(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let i = linear_index(gid, nwg, WG);
  let pairs = (geom.F4 + 1u) / 2u;
  let g0 = (i % pairs) * 2u;
  // An odd last group pairs with itself and stores once.
  let g1 = min(g0 + 1u, geom.F4 - 1u);
  let slice = i / pairs;
  if (slice >= geom.slices) {
    return;
  }
  for (var ch = 0u; ch < C; ch++) {
    var d0 = Grad3(mat3x4f(), mat3x4f(), mat3x4f());
    var d1 = d0;
    var db0 = vec4f(0.0);
    var db1 = vec4f(0.0);
    for (var p = slice; p < geom.B * geom.PH * geom.PW; p += geom.slices) {
      let dz0 = dz_at(p * geom.F4 + g0);
      let dz1 = dz_at(p * geom.F4 + g1);
      db0 += dz0;
      db1 += dz1;
      let item = p / (geom.PH * geom.PW);
      let o0 = window_of(p);
      let iy0 = o0.x - i32(geom.PT);
      let ix0 = o0.y - i32(geom.PL);
      let r0 = patch_row(item, iy0, ix0, ch);
      let r1 = patch_row(item, iy0 + 1, ix0, ch);
      let r2 = patch_row(item, iy0 + 2, ix0, ch);
      let r3 = patch_row(item, iy0 + 3, ix0, ch);
      d0 = accumulate(d0, dz0, arg_at(p * geom.F4 + g0), r0, r1, r2, r3);
      d1 = accumulate(d1, dz1, arg_at(p * geom.F4 + g1), r0, r1, r2, r3);
    }
    store_partial(d0, slice, g0, ch);
    if (g1 != g0) {
      store_partial(d1, slice, g1, ch);
    }
    if (ch == 0u) {
      db_partials[slice * geom.F4 + g0] = db0;
      if (g1 != g0) {
        db_partials[slice * geom.F4 + g1] = db1;
      }
    }
  }
}
