// uses: lib/activation.wgsl lib/matmul_io.wgsl
// matmul.wgsl — C = act(op(A)·op(B) + bias), the workhorse of dense and convolution layers, forward
// and backward.
//
// Layout (row-major): op(A) is (M, K), op(B) is (K, N), C is (M, N), bias is (N). Transposes are strides,
// so one pipeline serves every product: element (m, k) of op(A) is a[m·a_m + k·a_k] — (a_m, a_k) =
// (K, 1) for A stored (M, K), (1, M) for A stored (K, M) — and element (k, n) of op(B) is b[k·b_k + n·b_n].
// The epilogue is chosen per dispatch too: bias added when has_bias != 0, then activation `act`
// (lib/activation.wgsl codes). Unused bindings get a 4-byte placeholder. A backward pass multiplies by
// the activation derivative before the products (bias_grad.wgsl writes dz), so no variant needs it here.
//
// Two entry points; in both each invocation owns a block of C strided by the workgroup shape (rows
// ty + i·WG_Y, columns tx + j·WG_X), so neighbouring invocations touch neighbouring columns:
//   matmul_tiled  — 4×4 per invocation; stages BK-deep slices of A and B in workgroup memory (barriers).
//                   Fast on GPUs. grid = (ceil(N / (4·WG_X)), ceil(M / (4·WG_Y)), splits).
//   matmul_direct — 8×8 per invocation, read straight from memory, no barriers, fully unrolled: CPU
//                   drivers run invocations as SIMD lanes, where loads cost most and 64 accumulators
//                   per 16 loads pay. grid = (ceil(N / (8·WG_X)), ceil(M / (8·WG_Y)), splits).
// Split-K: with grid z = S > 1, workgroup z sums only k in [z·k_chunk, (z+1)·k_chunk) and writes its
// partial C to c[z·M·N ..]; sum_splits.wgsl then adds the S partials. A product with a tiny output and a
// long K (a convolution's dW) would otherwise run on one workgroup. Epilogues need S = 1.
// Accumulate: with ACCUMULATE the result (after the epilogue) is added to what C holds instead of
// replacing it, so the backward passes of a tensor's consumers sum its gradient in place (llm.c's +=)
// and fan-out needs no extra pass. Split-K partials never accumulate; their sum (sum_splits.wgsl) honours the flag.
// Overrides: ACCUMULATE (a pipeline constant, so the common overwrite has no read of the output), WG_X, WG_Y (workgroup shape), BK (tile depth, tiled only).

override WG_X: u32 = 8;
override WG_Y: u32 = 8;
override BK: u32 = 8;

// (BK, 4·WG_Y) slice of op(A) and (BK, 4·WG_X) slice of op(B), k-major.
var<workgroup> tile_a: array<f32, BK * WG_Y * 4>;
var<workgroup> tile_b: array<f32, BK * WG_X * 4>;

@compute @workgroup_size(WG_X, WG_Y, 1)
fn matmul_tiled(@builtin(local_invocation_id) lid: vec3u, @builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let bm = 4u * WG_Y;
  let bn = 4u * WG_X;
  let split = split_of(wid);
  let row0 = row_block(wid, nwg) * bm;
  let col0 = wid.x * bn;
  let flat = lid.y * WG_X + lid.x;
  let threads = WG_X * WG_Y;
  var acc0 = vec4f(0.0);
  var acc1 = vec4f(0.0);
  var acc2 = vec4f(0.0);
  var acc3 = vec4f(0.0);
  let k_begin = split * params.k_chunk;
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
  let results = array(acc0, acc1, acc2, acc3);
  let bias_v = bias4(col0 + lid.x, WG_X);
  for (var i = 0u; i < 4u; i++) {
    store4(split, row0 + lid.y + i * WG_Y, col0 + lid.x, WG_X, results[i], bias_v);
  }
}

@compute @workgroup_size(WG_X, WG_Y, 1)
fn matmul_direct(@builtin(local_invocation_id) lid: vec3u, @builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let split = split_of(wid);
  let m0 = row_block(wid, nwg) * 8u * WG_Y + lid.y;
  let n0 = wid.x * 8u * WG_X + lid.x;
  let n1 = n0 + 4u * WG_X;
  // Offsets of the invocation's 8 rows of op(A) and 8 columns of op(B), clamped; k adds k·a_k and k·b_k.
  let step_m = vec4u(0u, 1u, 2u, 3u) * WG_Y;
  let step_n = vec4u(0u, 1u, 2u, 3u) * WG_X;
  let last_m = vec4u(params.M - 1u);
  let last_n = vec4u(params.N - 1u);
  let rows_lo = min(vec4u(m0) + step_m, last_m) * params.a_m;
  let rows_hi = min(vec4u(m0 + 4u * WG_Y) + step_m, last_m) * params.a_m;
  let cols_lo = min(vec4u(n0) + step_n, last_n) * params.b_n;
  let cols_hi = min(vec4u(n1) + step_n, last_n) * params.b_n;
  // c<row><half>: row i of the block, columns 0–3 (half 0) or 4–7 (half 1).
  var c00 = vec4f(0.0);
  var c01 = vec4f(0.0);
  var c10 = vec4f(0.0);
  var c11 = vec4f(0.0);
  var c20 = vec4f(0.0);
  var c21 = vec4f(0.0);
  var c30 = vec4f(0.0);
  var c31 = vec4f(0.0);
  var c40 = vec4f(0.0);
  var c41 = vec4f(0.0);
  var c50 = vec4f(0.0);
  var c51 = vec4f(0.0);
  var c60 = vec4f(0.0);
  var c61 = vec4f(0.0);
  var c70 = vec4f(0.0);
  var c71 = vec4f(0.0);
  let k_end = min(params.K, (split + 1u) * params.k_chunk);
  for (var k = split * params.k_chunk; k < k_end; k++) {
    let ia = rows_lo + k * params.a_k;
    let ib = rows_hi + k * params.a_k;
    let ja = cols_lo + k * params.b_k;
    let jb = cols_hi + k * params.b_k;
    let a0 = vec4f(a[ia.x], a[ia.y], a[ia.z], a[ia.w]);
    let a1 = vec4f(a[ib.x], a[ib.y], a[ib.z], a[ib.w]);
    let b0 = vec4f(b[ja.x], b[ja.y], b[ja.z], b[ja.w]);
    let b1 = vec4f(b[jb.x], b[jb.y], b[jb.z], b[jb.w]);
    c00 = fma(vec4f(a0.x), b0, c00);
    c01 = fma(vec4f(a0.x), b1, c01);
    c10 = fma(vec4f(a0.y), b0, c10);
    c11 = fma(vec4f(a0.y), b1, c11);
    c20 = fma(vec4f(a0.z), b0, c20);
    c21 = fma(vec4f(a0.z), b1, c21);
    c30 = fma(vec4f(a0.w), b0, c30);
    c31 = fma(vec4f(a0.w), b1, c31);
    c40 = fma(vec4f(a1.x), b0, c40);
    c41 = fma(vec4f(a1.x), b1, c41);
    c50 = fma(vec4f(a1.y), b0, c50);
    c51 = fma(vec4f(a1.y), b1, c51);
    c60 = fma(vec4f(a1.z), b0, c60);
    c61 = fma(vec4f(a1.z), b1, c61);
    c70 = fma(vec4f(a1.w), b0, c70);
    c71 = fma(vec4f(a1.w), b1, c71);
  }
  // The epilogue runs as a loop, not 16 inlined copies: that keeps the code CPU drivers compile small.
  let results = array(c00, c01, c10, c11, c20, c21, c30, c31, c40, c41, c50, c51, c60, c61, c70, c71);
  let bias_v = array(bias4(n0, WG_X), bias4(n1, WG_X));
  for (var i = 0u; i < 16u; i++) {
    store4(split, m0 + (i / 2u) * WG_Y, select(n0, n1, (i & 1u) == 1u), WG_X, results[i], bias_v[i & 1u]);
  }
}
