// uses: lib/activation.wgsl
// depthwise_conv.wgsl — depthwise 2-D convolution (Keras DepthwiseConv2D), forward and backward.
//
// Layout: x, dx (B, H, W, C) NHWC; w, dw (KH, KW, C, M), Keras' depthwise_kernel layout, M the depth
// multiplier; y, dz (B, OH, OW, C·M) with output channel o = c·M + m, so w[ky, kx, c, m] is w at
// (ky·KW + kx)·C·M + o; bias (C·M). Padding is explicit: PT/PL rows/columns before the image, zeros
// outside it. Backward takes dz, the gradient at the pre-activation (bias_grad.wgsl computes it and the
// bias gradient), and both of its passes are gathers or fixed-order reductions: no atomics, and the
// results are bit-identical run to run. ACCUMULATE adds into dx / dw instead of overwriting.
//
// Entry points and dispatch:
//   depthwise_conv_forward         — y = act(conv + bias); one invocation per y element.
//   depthwise_conv_backward_input  — dx: each element gathers the outputs whose windows cover it.
//   depthwise_conv_backward_filter — dw: a workgroup per (ky, kx) tap and WG_C output channels.
// The per-element passes use pool.wgsl's (channel, column, batch·row) grid, (ceil(channels / WG_C),
// ceil(width / WG_X), B·rows), so the flat index needs no division. The filter pass runs grid
// (ceil(C·M / WG_C), KH·KW, 1) with workgroups (WG_C channels) × (WG_X lanes striding over the B·OH
// output rows; each walks its rows' OW columns), then one barrier and a fixed-order sum of the WG_X
// partials. Overrides: ACCUMULATE (a pipeline constant, so the common overwrite has no read of the output), WG_C, WG_X.

struct Params {
  B: u32, H: u32, W: u32, C: u32,
  KH: u32, KW: u32, SH: u32, SW: u32,
  PT: u32, PL: u32, OH: u32, OW: u32,
  M: u32,
  has_bias: u32,
  act: u32,
}

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read_write> x: array<f32>;
@group(0) @binding(2) var<storage, read_write> w: array<f32>;
@group(0) @binding(3) var<storage, read_write> bias: array<f32>;
@group(0) @binding(4) var<storage, read_write> y: array<f32>;
@group(0) @binding(5) var<storage, read_write> dz: array<f32>;
@group(0) @binding(6) var<storage, read_write> dx: array<f32>;
@group(0) @binding(7) var<storage, read_write> dw: array<f32>;

override ACCUMULATE: bool = false;
override WG_C: u32 = 32;
override WG_X: u32 = 2;

// Output rows (or columns) whose window covers input position p: lo..hi inclusive (empty when lo > hi).
fn covering(p: u32, pad: u32, size: u32, stride: u32, count: u32) -> vec2i {
  let top = i32(p + pad);
  let lo = max(top - i32(size) + i32(stride), 0) / i32(stride);
  let hi = min(top / i32(stride), i32(count) - 1);
  return vec2i(lo, hi);
}

@compute @workgroup_size(WG_C, WG_X, 1)
fn depthwise_conv_forward(@builtin(global_invocation_id) gid: vec3u) {
  let cm = params.C * params.M;
  let o = gid.x;
  let ox = gid.y;
  if (o >= cm || ox >= params.OW) {
    return;
  }
  let oy = gid.z % params.OH;
  let b = gid.z / params.OH;
  let c = o / params.M;
  var sum = 0.0;
  for (var ky = 0u; ky < params.KH; ky++) {
    let iy = i32(oy * params.SH + ky) - i32(params.PT);
    if (iy < 0 || iy >= i32(params.H)) {
      continue;
    }
    for (var kx = 0u; kx < params.KW; kx++) {
      let ix = i32(ox * params.SW + kx) - i32(params.PL);
      if (ix < 0 || ix >= i32(params.W)) {
        continue;
      }
      sum += x[((b * params.H + u32(iy)) * params.W + u32(ix)) * params.C + c] * w[(ky * params.KW + kx) * cm + o];
    }
  }
  if (params.has_bias != 0u) {
    sum += bias[o];
  }
  y[(gid.z * params.OW + ox) * cm + o] = activate(params.act, sum);
}

@compute @workgroup_size(WG_C, WG_X, 1)
fn depthwise_conv_backward_input(@builtin(global_invocation_id) gid: vec3u) {
  let c = gid.x;
  let px = gid.y;
  if (c >= params.C || px >= params.W) {
    return;
  }
  let py = gid.z % params.H;
  let b = gid.z / params.H;
  let cm = params.C * params.M;
  let ry = covering(py, params.PT, params.KH, params.SH, params.OH);
  let rx = covering(px, params.PL, params.KW, params.SW, params.OW);
  var sum = 0.0;
  for (var oy = ry.x; oy <= ry.y; oy++) {
    let ky = py + params.PT - u32(oy) * params.SH;
    for (var ox = rx.x; ox <= rx.y; ox++) {
      let kx = px + params.PL - u32(ox) * params.SW;
      let g = ((b * params.OH + u32(oy)) * params.OW + u32(ox)) * cm + c * params.M;
      let f = (ky * params.KW + kx) * cm + c * params.M;
      for (var m = 0u; m < params.M; m++) {
        sum += dz[g + m] * w[f + m];
      }
    }
  }
  let i = (gid.z * params.W + px) * params.C + c;
  dx[i] = select(sum, dx[i] + sum, ACCUMULATE);
}

var<workgroup> part: array<f32, WG_C * WG_X>;

@compute @workgroup_size(WG_C, WG_X, 1)
fn depthwise_conv_backward_filter(@builtin(local_invocation_id) lid: vec3u, @builtin(workgroup_id) wid: vec3u) {
  let cm = params.C * params.M;
  let o = wid.x * WG_C + lid.x;
  // Lanes past the last channel read a valid one and reach the barrier, but store nothing.
  let oc = min(o, cm - 1u);
  let c = oc / params.M;
  let ky = wid.y / params.KW;
  let kx = wid.y % params.KW;
  // Output columns whose tap (ky, kx) lands inside the image: ox0..ox1-1, the same for every row, so the
  // inner loop needs no bounds test. (A tap can miss the image entirely when KW > W + PL.)
  let right = params.W + params.PL;
  let ox0 = (params.PL - min(kx, params.PL) + params.SW - 1u) / params.SW;
  let ox1 = select(0u, min(params.OW, (right - kx + params.SW - 1u) / params.SW), kx < right);
  var sum = 0.0;
  for (var row = lid.y; row < params.B * params.OH; row += WG_X) {
    let oy = row % params.OH;
    let iy = i32(oy * params.SH + ky) - i32(params.PT);
    if (iy < 0 || iy >= i32(params.H)) {
      continue;
    }
    let xrow = ((row / params.OH) * params.H + u32(iy)) * params.W;
    for (var ox = ox0; ox < ox1; ox++) {
      let ix = ox * params.SW + kx - params.PL;
      sum += x[(xrow + ix) * params.C + c] * dz[(row * params.OW + ox) * cm + oc];
    }
  }
  part[lid.y * WG_C + lid.x] = sum;
  workgroupBarrier();
  if (lid.y != 0u || o >= cm) {
    return;
  }
  var total = 0.0;
  for (var i = 0u; i < WG_X; i++) {
    total += part[i * WG_C + lid.x];
  }
  let i = wid.y * cm + o;
  dw[i] = select(total, dw[i] + total, ACCUMULATE);
}
