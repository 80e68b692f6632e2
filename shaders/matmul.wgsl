// uses: lib/activation.wgsl
// matmul.wgsl — C = act(op(A)·op(B) + bias), the workhorse of dense and convolution layers, forward
// and backward.
//
// Layout (row-major): op(A) is (M, K): A is stored (M, K), or (K, M) when TRANS_A. op(B) is (K, N): B is
// stored (K, N), or (N, K) when TRANS_B. C is (M, N). bias is (N) and used when HAS_BIAS.
// Fused backprop: when DACT_A (DACT_B) is not 0, A (B) is an upstream gradient dY and act_y is the forward
// activation output with the same layout; each element is multiplied by act'(act_y) as it is loaded, so
// the activation backward never runs as a separate pass. Unused bindings get a 4-byte placeholder.
//
// Two entry points with the same dispatch mapping: each invocation owns a 4×4 block of C, strided by the
// workgroup size (rows ty + i·WG_Y, columns tx + j·WG_X inside a (4·WG_Y) × (4·WG_X) block);
// grid = (ceil(N / (4·WG_X)), ceil(M / (4·WG_Y)), 1).
//   matmul_tiled  — stages BK-deep slices of A and B in workgroup memory (barriers); fast on GPUs.
//   matmul_direct — reads A and B straight from memory, no barriers; fast on CPU Vulkan drivers.
// Split-K: with grid z = S > 1, workgroup z sums only k in [z·k_chunk, (z+1)·k_chunk) and writes its
// partial C to c[z·M·N ..]; matmul_reduce then adds the S partials. A product with a tiny output and a
// long K (a convolution's dW) would otherwise run on one workgroup. Epilogues need S = 1.
// Overrides: WG_X, WG_Y (workgroup shape), BK (tile depth), TRANS_A, TRANS_B, HAS_BIAS, ACT, DACT_A, DACT_B.

struct Params {
  M: u32,
  N: u32,
  K: u32,
  k_chunk: u32,
  splits: u32,
}

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> a: array<f32>;
@group(0) @binding(2) var<storage, read> b: array<f32>;
@group(0) @binding(3) var<storage, read> bias: array<f32>;
@group(0) @binding(4) var<storage, read> act_y: array<f32>;
@group(0) @binding(5) var<storage, read_write> c: array<f32>;

override WG_X: u32 = 8;
override WG_Y: u32 = 8;
override BK: u32 = 8;
override TRANS_A: bool = false;
override TRANS_B: bool = false;
override HAS_BIAS: bool = false;
override ACT: u32 = 0;
override DACT_A: u32 = 0;
override DACT_B: u32 = 0;

// Out-of-range rows and columns read a clamped (valid) element; their results are never stored.
fn load_a(m: u32, k: u32) -> f32 {
  let mm = min(m, params.M - 1u);
  let i = select(mm * params.K + k, k * params.M + mm, TRANS_A);
  if (DACT_A != 0u) {
    return a[i] * activation_grad(DACT_A, act_y[i]);
  }
  return a[i];
}

fn load_b(k: u32, n: u32) -> f32 {
  let nn = min(n, params.N - 1u);
  let i = select(k * params.N + nn, nn * params.K + k, TRANS_B);
  if (DACT_B != 0u) {
    return b[i] * activation_grad(DACT_B, act_y[i]);
  }
  return b[i];
}

fn store_row(m: u32, n0: u32, v: vec4f, base: u32) {
  if (m >= params.M) {
    return;
  }
  for (var j = 0u; j < 4u; j++) {
    let n = n0 + j * WG_X;
    if (n < params.N) {
      var x = v[j];
      if (HAS_BIAS) {
        x += bias[n];
      }
      c[base + m * params.N + n] = activate(ACT, x);
    }
  }
}

// Stores a 4×4 block; split z writes its partial at offset z·M·N.
fn store_block(z: u32, m0: u32, n0: u32, acc0: vec4f, acc1: vec4f, acc2: vec4f, acc3: vec4f) {
  let base = z * params.M * params.N;
  store_row(m0, n0, acc0, base);
  store_row(m0 + WG_Y, n0, acc1, base);
  store_row(m0 + 2u * WG_Y, n0, acc2, base);
  store_row(m0 + 3u * WG_Y, n0, acc3, base);
}

// (BK, 4·WG_Y) slice of op(A) and (BK, 4·WG_X) slice of op(B), k-major.
var<workgroup> tile_a: array<f32, BK * WG_Y * 4>;
var<workgroup> tile_b: array<f32, BK * WG_X * 4>;

@compute @workgroup_size(WG_X, WG_Y, 1)
fn matmul_tiled(@builtin(local_invocation_id) lid: vec3u, @builtin(workgroup_id) wid: vec3u) {
  let bm = 4u * WG_Y;
  let bn = 4u * WG_X;
  let row0 = wid.y * bm;
  let col0 = wid.x * bn;
  let flat = lid.y * WG_X + lid.x;
  let threads = WG_X * WG_Y;
  var acc0 = vec4f(0.0);
  var acc1 = vec4f(0.0);
  var acc2 = vec4f(0.0);
  var acc3 = vec4f(0.0);
  let k_begin = wid.z * params.k_chunk;
  let k_end = min(params.K, k_begin + params.k_chunk);
  for (var k0 = k_begin; k0 < k_end; k0 += BK) {
    for (var i = flat; i < BK * bm; i += threads) {
      let kk = k0 + i / bm;
      var v = 0.0;
      if (kk < k_end) {
        v = load_a(row0 + i % bm, kk);
      }
      tile_a[i] = v;
    }
    for (var i = flat; i < BK * bn; i += threads) {
      let kk = k0 + i / bn;
      var v = 0.0;
      if (kk < k_end) {
        v = load_b(kk, col0 + i % bn);
      }
      tile_b[i] = v;
    }
    workgroupBarrier();
    for (var kk = 0u; kk < BK; kk++) {
      let ta = kk * bm + lid.y;
      let tb = kk * bn + lid.x;
      let bv = vec4f(tile_b[tb], tile_b[tb + WG_X], tile_b[tb + 2u * WG_X], tile_b[tb + 3u * WG_X]);
      acc0 += tile_a[ta] * bv;
      acc1 += tile_a[ta + WG_Y] * bv;
      acc2 += tile_a[ta + 2u * WG_Y] * bv;
      acc3 += tile_a[ta + 3u * WG_Y] * bv;
    }
    workgroupBarrier();
  }
  store_block(wid.z, row0 + lid.y, col0 + lid.x, acc0, acc1, acc2, acc3);
}

@compute @workgroup_size(WG_X, WG_Y, 1)
fn matmul_direct(@builtin(local_invocation_id) lid: vec3u, @builtin(workgroup_id) wid: vec3u) {
  let m0 = wid.y * 4u * WG_Y + lid.y;
  let n0 = wid.x * 4u * WG_X + lid.x;
  var acc0 = vec4f(0.0);
  var acc1 = vec4f(0.0);
  var acc2 = vec4f(0.0);
  var acc3 = vec4f(0.0);
  let k_end = min(params.K, (wid.z + 1u) * params.k_chunk);
  for (var k = wid.z * params.k_chunk; k < k_end; k++) {
    let bv = vec4f(load_b(k, n0), load_b(k, n0 + WG_X), load_b(k, n0 + 2u * WG_X), load_b(k, n0 + 3u * WG_X));
    acc0 += load_a(m0, k) * bv;
    acc1 += load_a(m0 + WG_Y, k) * bv;
    acc2 += load_a(m0 + 2u * WG_Y, k) * bv;
    acc3 += load_a(m0 + 3u * WG_Y, k) * bv;
  }
  store_block(wid.z, m0, n0, acc0, acc1, acc2, acc3);
}

// Split-K reduction: total (M, N) = Σ_z partials[z] (S = splits). One invocation per output element,
// grid (ceil(M·N / (WG_X·WG_Y)), 1, 1).
@group(0) @binding(6) var<storage, read> partials: array<f32>;
@group(0) @binding(7) var<storage, read_write> total: array<f32>;

@compute @workgroup_size(WG_X, WG_Y, 1)
fn matmul_reduce(@builtin(local_invocation_index) lidx: u32, @builtin(workgroup_id) wid: vec3u) {
  let i = wid.x * WG_X * WG_Y + lidx;
  let mn = params.M * params.N;
  if (i >= mn) {
    return;
  }
  var sum = 0.0;
  for (var z = 0u; z < params.splits; z++) {
    sum += partials[z * mn + i];
  }
  total[i] = sum;
}
