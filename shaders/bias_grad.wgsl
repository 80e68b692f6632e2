// uses: lib/activation.wgsl
// bias_grad.wgsl — the backward pass through a layer's activation and bias, in one pass over dy:
// dz = dy · act'(act_y) (written when act != 0; for a linear layer dz is dy itself) and db = the column
// sums of dz over the batch and spatial positions (written when has_db != 0; added to what db holds when
// ACCUMULATE, for a bias shared by several layers). dz is scratch and always overwritten. The
// products for dW and dX then read dz as it is, so the matmul needs no activation variant.
// Layout: dy, act_y, dz (R, N) row-major; db (N); partials (splits, N).
// Dispatch: a workgroup reads a contiguous block: `cols` neighbouring columns (all N when N ≤ WG) of
// `sub` neighbouring rows at a time, so invocation i takes column i % cols of row i / cols and
// neighbouring invocations read neighbouring floats; it walks `chunk` rows that way. Grid
// (ceil(N / cols), splits), splits = ceil(R / chunk). With one split the workgroup writes db; with more,
// each writes its column sums to partials[split] (that buffer bound as db: an unused output would need
// a placeholder of its own, since writable bindings may not alias) and sum_splits.wgsl adds them up in
// split order, so the result is deterministic. (A workgroup per column, striding down the rows, read
// one float per cache line and re-read every line once per column: 16 ms instead of 5 on lavapipe for
// the reference CNN's 43,264 × 32 convolution gradient.)
// Vectors: where N is a multiple of 4, bias_grad4 does the same over vec4s of 4 neighbouring columns,
// through the same buffers bound as vec4 arrays, with params.N = N / 4 (and the layout worked out for
// N / 4 columns): a CPU driver pays per load and store, whatever its width (SwiftShader, the reference
// CNN's convolution gradient: 33 ms one float at a time).
// Overrides: ACCUMULATE (a pipeline constant, so the common overwrite has no read of the output), WG.

struct Params {
  R: u32,
  N: u32,
  act: u32,
  has_db: u32,
  cols: u32,
  sub: u32,
  chunk: u32,
  splits: u32,
}

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read_write> dy: array<f32>;
@group(0) @binding(2) var<storage, read_write> act_y: array<f32>;
@group(0) @binding(3) var<storage, read_write> dz: array<f32>;
@group(0) @binding(4) var<storage, read_write> db: array<f32>;
// The same tensors as vectors of 4 neighbouring columns, for bias_grad4 (N a multiple of 4).
@group(0) @binding(5) var<storage, read_write> dy4: array<vec4f>;
@group(0) @binding(6) var<storage, read_write> act_y4: array<vec4f>;
@group(0) @binding(7) var<storage, read_write> dz4: array<vec4f>;
@group(0) @binding(8) var<storage, read_write> db4: array<vec4f>;

override ACCUMULATE: bool = false;
override WG: u32 = 64;

var<workgroup> partial: array<f32, WG>;
var<workgroup> partial4: array<vec4f, WG>;

// db[n] = total, or db[n] += total when accumulating.
fn store_db(n: u32, total: f32) {
  if (ACCUMULATE) {
    db[n] += total;
  } else {
    db[n] = total;
  }
}

@compute @workgroup_size(WG, 1, 1)
fn bias_grad(@builtin(local_invocation_id) lid: vec3u, @builtin(workgroup_id) wid: vec3u) {
  let j = lid.x % params.cols;
  let t = lid.x / params.cols;
  let n = wid.x * params.cols + j;
  let r_end = min(params.R, (wid.y + 1u) * params.chunk);
  var sum = 0.0;
  if (t < params.sub && n < params.N) {
    for (var r = wid.y * params.chunk + t; r < r_end; r += params.sub) {
      let i = r * params.N + n;
      var g = dy[i];
      if (params.act != 0u) {
        g *= activation_grad(params.act, act_y[i]);
        dz[i] = g;
      }
      sum += g;
    }
  }
  if (params.has_db == 0u) {
    return;
  }
  partial[lid.x] = sum;
  // One barrier, then one invocation per column adds its `sub` partials (see lib/accumulate.wgsl for why not a tree).
  workgroupBarrier();
  if (t == 0u && n < params.N) {
    var total = 0.0;
    for (var u = 0u; u < params.sub; u++) {
      total += partial[u * params.cols + j];
    }
    if (params.splits == 1u) {
      store_db(n, total);
    } else {
      db[wid.y * params.N + n] = total; // the partials buffer, bound as db (see the dispatch note above)
    }
  }
}

fn store_db4(n: u32, total: vec4f) {
  if (ACCUMULATE) {
    db4[n] += total;
  } else {
    db4[n] = total;
  }
}

// bias_grad over vec4s of 4 columns (params.N = N / 4).
@compute @workgroup_size(WG, 1, 1)
fn bias_grad4(@builtin(local_invocation_id) lid: vec3u, @builtin(workgroup_id) wid: vec3u) {
  let j = lid.x % params.cols;
  let t = lid.x / params.cols;
  let n = wid.x * params.cols + j;
  let r_end = min(params.R, (wid.y + 1u) * params.chunk);
  var sum = vec4f(0.0);
  if (t < params.sub && n < params.N) {
    for (var r = wid.y * params.chunk + t; r < r_end; r += params.sub) {
      let i = r * params.N + n;
      var g = dy4[i];
      if (params.act != 0u) {
        g *= activation_grad4(params.act, act_y4[i]);
        dz4[i] = g;
      }
      sum += g;
    }
  }
  if (params.has_db == 0u) {
    return;
  }
  partial4[lid.x] = sum;
  workgroupBarrier();
  if (t == 0u && n < params.N) {
    var total = vec4f(0.0);
    for (var u = 0u; u < params.sub; u++) {
      total += partial4[u * params.cols + j];
    }
    if (params.splits == 1u) {
      store_db4(n, total);
    } else {
      db4[wid.y * params.N + n] = total;
    }
  }
}
