// pool.wgsl — 2-D max and average pooling, forward and backward.
//
// Layout: x, dx (B, H, W, C) NHWC; y, dy, argmax (B, OH, OW, C). argmax holds the flat index into x of
// each window's maximum (first one on ties, ky outer, kx inner). Padded positions are ignored: they never
// win a max and are not counted in an average (TensorFlow's convention for 'same').
// Backward passes are gathers over the windows that contain each input element: no atomics, and
// overlapping windows (stride < pool size) are summed correctly. They add to what dx holds when
// ACCUMULATE (a tensor read by several layers sums its gradients in place); each dx element is
// written by exactly one invocation, so the read-modify-write is race-free.
// Dispatch: one invocation per (channel, column, row) of the tensor a pass walks (forward and the tiled
// backward: y; the gathering backward: dx), looping over `per` batch items: grid (ceil(C / WG_C),
// ceil(width / WG_X), height · ceil(B / per)). So finding an element's place takes one division per
// `per` elements instead of two per element (integer division is scalar, and slow, on CPU adapters).
// Overrides: ACCUMULATE (a pipeline constant, so the common overwrite has no read of the output), WG_C,
// WG_X, and the tiling kernels' window WIN_H × WIN_W.

struct Pool {
  B: u32, H: u32, W: u32, C: u32,
  PH: u32, PW: u32, SH: u32, SW: u32,
  PT: u32, PL: u32, OH: u32, OW: u32,
  // Batch items per invocation.
  per: u32,
}

@group(0) @binding(0) var<uniform> pool: Pool;
@group(0) @binding(1) var<storage, read_write> x: array<f32>;
@group(0) @binding(2) var<storage, read_write> y: array<f32>;
@group(0) @binding(3) var<storage, read_write> argmax: array<u32>;
@group(0) @binding(4) var<storage, read_write> dy: array<f32>;
@group(0) @binding(5) var<storage, read_write> argmax_in: array<u32>;
@group(0) @binding(6) var<storage, read_write> dx: array<f32>;

override ACCUMULATE: bool = false;
override WG_C: u32 = 32;
override WG_X: u32 = 2;
// The window of the tiling kernels (max_pool_*_tiled), which equals their stride.
override WIN_H: u32 = 2;
override WIN_W: u32 = 2;

// dx[i] = v, or dx[i] += v when accumulating.
fn store_dx(i: u32, v: f32) {
  if (ACCUMULATE) {
    dx[i] += v;
  } else {
    dx[i] = v;
  }
}

struct Window { y0: i32, y1: i32, x0: i32, x1: i32 }

// The window of output (oy, ox), clipped to the image: rows y0..y1-1, columns x0..x1-1.
fn window(oy: u32, ox: u32) -> Window {
  let y0 = i32(oy * pool.SH) - i32(pool.PT);
  let x0 = i32(ox * pool.SW) - i32(pool.PL);
  return Window(max(y0, 0), min(y0 + i32(pool.PH), i32(pool.H)), max(x0, 0), min(x0 + i32(pool.PW), i32(pool.W)));
}

// Output rows (or columns) whose window covers input position p: lo..hi inclusive (empty when lo > hi).
fn covering(p: u32, pad: u32, size: u32, stride: u32, count: u32) -> vec2i {
  let top = i32(p + pad);
  let lo = max(top - i32(size) + i32(stride), 0) / i32(stride);
  let hi = min(top / i32(stride), i32(count) - 1);
  return vec2i(lo, hi);
}

// The invocation's channel c, column x and row y, and its batch items b0 .. b1-1; x = width when out of range.
struct Cell { c: u32, x: u32, y: u32, b0: u32, b1: u32 }

fn cell(gid: vec3u, height: u32, width: u32) -> Cell {
  let y = gid.z % height;
  let b0 = (gid.z / height) * pool.per;
  if (gid.x >= pool.C || gid.y >= width || b0 >= pool.B) {
    return Cell(0u, width, 0u, 0u, 0u);
  }
  return Cell(gid.x, gid.y, y, b0, min(pool.B, b0 + pool.per));
}

// Flat NHWC index of (item, row, col, ch) in a (·, height, width, C) tensor. (Parameters are not named
// like bindings: wgsl_reflect would count that as a use of the binding.)
fn at(item: u32, row: u32, col: u32, ch: u32, height: u32, width: u32) -> u32 {
  return ((item * height + row) * width + col) * pool.C + ch;
}

@compute @workgroup_size(WG_C, WG_X, 1)
fn max_pool_forward(@builtin(global_invocation_id) gid: vec3u) {
  let e = cell(gid, pool.OH, pool.OW);
  if (e.x == pool.OW) {
    return;
  }
  let w = window(e.y, e.x);
  for (var b = e.b0; b < e.b1; b++) {
    var best = -3.4028234e38;
    var best_i = 0u;
    var found = false;
    for (var iy = w.y0; iy < w.y1; iy++) {
      for (var ix = w.x0; ix < w.x1; ix++) {
        let i = at(b, u32(iy), u32(ix), e.c, pool.H, pool.W);
        let v = x[i];
        if (!found || v > best) {
          best = v;
          best_i = i;
          found = true;
        }
      }
    }
    let idx = at(b, e.y, e.x, e.c, pool.OH, pool.OW);
    y[idx] = best;
    argmax[idx] = best_i;
  }
}

@compute @workgroup_size(WG_C, WG_X, 1)
fn max_pool_backward(@builtin(global_invocation_id) gid: vec3u) {
  let e = cell(gid, pool.H, pool.W);
  if (e.x == pool.W) {
    return;
  }
  let ry = covering(e.y, pool.PT, pool.PH, pool.SH, pool.OH);
  let rx = covering(e.x, pool.PL, pool.PW, pool.SW, pool.OW);
  for (var b = e.b0; b < e.b1; b++) {
    let idx = at(b, e.y, e.x, e.c, pool.H, pool.W);
    var sum = 0.0;
    for (var oy = ry.x; oy <= ry.y; oy++) {
      for (var ox = rx.x; ox <= rx.y; ox++) {
        let o = at(b, u32(oy), u32(ox), e.c, pool.OH, pool.OW);
        if (argmax_in[o] == idx) {
          sum += dy[o];
        }
      }
    }
    store_dx(idx, sum);
  }
}

@compute @workgroup_size(WG_C, WG_X, 1)
fn avg_pool_forward(@builtin(global_invocation_id) gid: vec3u) {
  let e = cell(gid, pool.OH, pool.OW);
  if (e.x == pool.OW) {
    return;
  }
  let w = window(e.y, e.x);
  let count = f32((w.y1 - w.y0) * (w.x1 - w.x0));
  for (var b = e.b0; b < e.b1; b++) {
    var sum = 0.0;
    for (var iy = w.y0; iy < w.y1; iy++) {
      for (var ix = w.x0; ix < w.x1; ix++) {
        sum += x[at(b, u32(iy), u32(ix), e.c, pool.H, pool.W)];
      }
    }
    y[at(b, e.y, e.x, e.c, pool.OH, pool.OW)] = sum / count;
  }
}

@compute @workgroup_size(WG_C, WG_X, 1)
fn avg_pool_backward(@builtin(global_invocation_id) gid: vec3u) {
  let e = cell(gid, pool.H, pool.W);
  if (e.x == pool.W) {
    return;
  }
  let ry = covering(e.y, pool.PT, pool.PH, pool.SH, pool.OH);
  let rx = covering(e.x, pool.PL, pool.PW, pool.SW, pool.OW);
  for (var b = e.b0; b < e.b1; b++) {
    var sum = 0.0;
    for (var oy = ry.x; oy <= ry.y; oy++) {
      for (var ox = rx.x; ox <= rx.y; ox++) {
        let w = window(u32(oy), u32(ox));
        sum += dy[at(b, u32(oy), u32(ox), e.c, pool.OH, pool.OW)] / f32((w.y1 - w.y0) * (w.x1 - w.x0));
      }
    }
    store_dx(at(b, e.y, e.x, e.c, pool.H, pool.W), sum);
  }
}

// Tiling windows (stride = pool size, nothing padded): every window lies inside the image, and its size
// is the pipeline constant WIN_H × WIN_W, so CPU drivers unroll the loop over it: a loop whose trip
// count is only known at run time, nested or not, costs them more than the loads (lavapipe, the
// reference CNN's pool: 9.8 ms as two uniform-bounded loops, 7.0 as one, 3.2 unrolled).
@compute @workgroup_size(WG_C, WG_X, 1)
fn max_pool_forward_tiled(@builtin(global_invocation_id) gid: vec3u) {
  let e = cell(gid, pool.OH, pool.OW);
  if (e.x == pool.OW) {
    return;
  }
  let row = pool.W * pool.C;
  var first = at(e.b0, e.y * pool.SH, e.x * pool.SW, e.c, pool.H, pool.W);
  var o = at(e.b0, e.y, e.x, e.c, pool.OH, pool.OW);
  for (var b = e.b0; b < e.b1; b++) {
    var best = x[first];
    var best_i = first;
    for (var t = 1u; t < WIN_H * WIN_W; t++) {
      let i = first + (t / WIN_W) * row + (t % WIN_W) * pool.C;
      let v = x[i];
      let better = v > best;
      best = select(best, v, better);
      best_i = select(best_i, i, better);
    }
    y[o] = best;
    argmax[o] = best_i;
    first += pool.H * row;
    o += pool.OH * pool.OW * pool.C;
  }
}

// Max pooling backward for tiling windows: each window writes its own input positions — dy at the
// argmax, 0 elsewhere — in a loop unrolled over WIN_H × WIN_W (see max_pool_forward_tiled), and the last
// row/column of windows also zeroes the input rows/columns no window covers (adding 0 when
// accumulating), so every dx element is written exactly once. No gather over covering windows, and
// 1/(WIN_H·WIN_W) as many invocations. Dispatch: as the forward pass, over the outputs.
@compute @workgroup_size(WG_C, WG_X, 1)
fn max_pool_backward_tiled(@builtin(global_invocation_id) gid: vec3u) {
  let e = cell(gid, pool.OH, pool.OW);
  if (e.x == pool.OW) {
    return;
  }
  let row = pool.W * pool.C;
  let y0 = e.y * pool.SH;
  let x0 = e.x * pool.SW;
  let y1 = select(y0 + WIN_H, pool.H, e.y == pool.OH - 1u);
  let x1 = select(x0 + WIN_W, pool.W, e.x == pool.OW - 1u);
  let remainder = y1 > y0 + WIN_H || x1 > x0 + WIN_W;
  var o = at(e.b0, e.y, e.x, e.c, pool.OH, pool.OW);
  var first = at(e.b0, y0, x0, e.c, pool.H, pool.W);
  for (var b = e.b0; b < e.b1; b++) {
    let g = dy[o];
    let winner = argmax_in[o];
    for (var t = 0u; t < WIN_H * WIN_W; t++) {
      let i = first + (t / WIN_W) * row + (t % WIN_W) * pool.C;
      store_dx(i, select(0.0, g, i == winner));
    }
    if (remainder) {
      for (var iy = y0; iy < y1; iy++) {
        for (var ix = x0; ix < x1; ix++) {
          if (iy >= y0 + WIN_H || ix >= x0 + WIN_W) {
            store_dx(at(b, iy, ix, e.c, pool.H, pool.W), 0.0);
          }
        }
      }
    }
    o += pool.OH * pool.OW * pool.C;
    first += pool.H * row;
  }
}
