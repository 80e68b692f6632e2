// pool.wgsl — 2-D max and average pooling, forward and backward.
//
// Layout: x, dx (B, H, W, C) NHWC; y, dy, argmax (B, OH, OW, C). argmax holds the flat index into x of
// each window's maximum (first one on ties, ky outer, kx inner). Padded positions are ignored: they never
// win a max and are not counted in an average (TensorFlow's convention for 'same').
// Backward passes are gathers over the windows that contain each input element: no atomics, and
// overlapping windows (stride < pool size) are summed correctly. They add to what dx holds when
// ACCUMULATE (a tensor read by several layers sums its gradients in place); each dx element is
// written by exactly one invocation, so the read-modify-write is race-free.
// Dispatch: one invocation per element of the tensor a pass writes (forward: y; backward: dx), laid out
// as (channel, column, batch·row): grid (ceil(C / WG_C), ceil(width / WG_X), B·height), so that the
// flat index needs no division (integer division is slow on CPU adapters); past the grid limit the rows
// fold into y (cell). Overrides: ACCUMULATE (a pipeline constant, so the common overwrite has no read of the output), WG_C, WG_X.

struct Pool {
  B: u32, H: u32, W: u32, C: u32,
  PH: u32, PW: u32, SH: u32, SW: u32,
  PT: u32, PL: u32, OH: u32, OW: u32,
  // Folding (see cell): copies of the column span stacked in grid y, and that span (grid y · WG_X).
  fold: u32, span: u32,
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

// (c, x, row) of the invocation and its flat NHWC index in a (·, rows, width, C) tensor; x = width when out of range.
struct Cell { c: u32, x: u32, y: u32, b: u32, idx: u32 }

// More batch·rows than one grid dimension allows are folded into y: `fold` copies of the column span
// stacked there, the copy adding fold-strided rows; unfolded grids skip the division.
fn cell(gid: vec3u, height: u32, width: u32) -> Cell {
  var col = gid.y;
  var z = gid.z;
  if (pool.fold > 1u) {
    col = gid.y % pool.span;
    z = gid.z * pool.fold + gid.y / pool.span;
  }
  if (gid.x >= pool.C || col >= width || z >= pool.B * height) {
    return Cell(0u, width, 0u, 0u, 0u);
  }
  return Cell(gid.x, col, z % height, z / height, (z * width + col) * pool.C + gid.x);
}

@compute @workgroup_size(WG_C, WG_X, 1)
fn max_pool_forward(@builtin(global_invocation_id) gid: vec3u) {
  let e = cell(gid, pool.OH, pool.OW);
  if (e.x == pool.OW) {
    return;
  }
  let c = e.c;
  let ox = e.x;
  let oy = e.y;
  let b = e.b;
  let idx = e.idx;
  let w = window(oy, ox);
  var best = -3.4028234e38;
  var best_i = 0u;
  var found = false;
  for (var iy = w.y0; iy < w.y1; iy++) {
    for (var ix = w.x0; ix < w.x1; ix++) {
      let i = ((b * pool.H + u32(iy)) * pool.W + u32(ix)) * pool.C + c;
      let v = x[i];
      if (!found || v > best) {
        best = v;
        best_i = i;
        found = true;
      }
    }
  }
  y[idx] = best;
  argmax[idx] = best_i;
}

@compute @workgroup_size(WG_C, WG_X, 1)
fn max_pool_backward(@builtin(global_invocation_id) gid: vec3u) {
  let e = cell(gid, pool.H, pool.W);
  if (e.x == pool.W) {
    return;
  }
  let c = e.c;
  let px = e.x;
  let py = e.y;
  let b = e.b;
  let idx = e.idx;
  let ry = covering(py, pool.PT, pool.PH, pool.SH, pool.OH);
  let rx = covering(px, pool.PL, pool.PW, pool.SW, pool.OW);
  var sum = 0.0;
  for (var oy = ry.x; oy <= ry.y; oy++) {
    for (var ox = rx.x; ox <= rx.y; ox++) {
      let o = ((b * pool.OH + u32(oy)) * pool.OW + u32(ox)) * pool.C + c;
      if (argmax_in[o] == idx) {
        sum += dy[o];
      }
    }
  }
  store_dx(idx, sum);
}

@compute @workgroup_size(WG_C, WG_X, 1)
fn avg_pool_forward(@builtin(global_invocation_id) gid: vec3u) {
  let e = cell(gid, pool.OH, pool.OW);
  if (e.x == pool.OW) {
    return;
  }
  let c = e.c;
  let ox = e.x;
  let oy = e.y;
  let b = e.b;
  let idx = e.idx;
  let w = window(oy, ox);
  var sum = 0.0;
  for (var iy = w.y0; iy < w.y1; iy++) {
    for (var ix = w.x0; ix < w.x1; ix++) {
      sum += x[((b * pool.H + u32(iy)) * pool.W + u32(ix)) * pool.C + c];
    }
  }
  y[idx] = sum / f32((w.y1 - w.y0) * (w.x1 - w.x0));
}

@compute @workgroup_size(WG_C, WG_X, 1)
fn avg_pool_backward(@builtin(global_invocation_id) gid: vec3u) {
  let e = cell(gid, pool.H, pool.W);
  if (e.x == pool.W) {
    return;
  }
  let c = e.c;
  let px = e.x;
  let py = e.y;
  let b = e.b;
  let idx = e.idx;
  let ry = covering(py, pool.PT, pool.PH, pool.SH, pool.OH);
  let rx = covering(px, pool.PL, pool.PW, pool.SW, pool.OW);
  var sum = 0.0;
  for (var oy = ry.x; oy <= ry.y; oy++) {
    for (var ox = rx.x; ox <= rx.y; ox++) {
      let w = window(u32(oy), u32(ox));
      let o = ((b * pool.OH + u32(oy)) * pool.OW + u32(ox)) * pool.C + c;
      sum += dy[o] / f32((w.y1 - w.y0) * (w.x1 - w.x0));
    }
  }
  store_dx(idx, sum);
}

// Max pooling backward for tiling windows (stride = pool size, 'valid'): each window writes its own
// input positions — dy at the argmax, 0 elsewhere — and the last row/column of windows also zeroes the
// input rows/columns no window covers (adding 0 when accumulating), so every dx element is written
// exactly once. No gather over covering windows, and 1/(PH·PW) as many invocations.
// Dispatch: grid (ceil(C / WG_C), ceil(OW / WG_X), B·OH), one invocation per output.
@compute @workgroup_size(WG_C, WG_X, 1)
fn max_pool_backward_tiled(@builtin(global_invocation_id) gid: vec3u) {
  let e = cell(gid, pool.OH, pool.OW);
  if (e.x == pool.OW) {
    return;
  }
  let y0 = e.y * pool.SH;
  let x0 = e.x * pool.SW;
  let y1 = select(y0 + pool.PH, pool.H, e.y == pool.OH - 1u);
  let x1 = select(x0 + pool.PW, pool.W, e.x == pool.OW - 1u);
  let g = dy[e.idx];
  let winner = argmax_in[e.idx];
  for (var iy = y0; iy < y1; iy++) {
    for (var ix = x0; ix < x1; ix++) {
      let i = ((e.b * pool.H + iy) * pool.W + ix) * pool.C + e.c;
      store_dx(i, select(0.0, g, i == winner));
    }
  }
}
