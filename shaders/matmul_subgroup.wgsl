// uses: lib/activation.wgsl lib/matmul_io.wgsl
// matmul_subgroup.wgsl — C = act(op(A)·op(B) + bias) for CPU adapters, whose subgroups are SIMD lanes
// (lavapipe on AVX2: 8; SwiftShader: 4), with the parameters, bindings, split-K and epilogue of
// matmul.wgsl (lib/matmul_io.wgsl).
//
// On such drivers every storage load is a per-lane gather, whatever its address pattern, and costs
// several times a lane's share of an FMA, so a matmul's speed is its loads per FMA. matmul_direct's 8×8
// block loads 16 values for 64 FMAs. Here the SG lanes of a subgroup share what they load: per k, lane s
// loads rows m0 + s + SG·g (g = 0..3) of op(A) and columns n0 + s + SG·j (j = 0..3) of op(B), and takes
// the other lanes' rows by subgroupBroadcast (a register shuffle), so 8 loads feed 16·SG FMAs, and
// neighbouring lanes still own neighbouring columns. A subgroup owns 4·SG × 4·SG of C, a workgroup
// WG / SG subgroups stacked along rows. Measured on lavapipe (2 cores): the reference CNN's dense
// products 1.6–1.9× faster than matmul_direct's.
// One entry point per subgroup size, since a broadcast names its lane by a constant: matmul_subgroup8
// and matmul_subgroup4. The engine offers each only where the adapter reports exactly that size, and
// checks its product before its matmul tuning may pick it (src/tuning.ts).
// Dispatch: grid (ceil(N / (4·SG)), ceil(M / (4·WG)), splits), rows folded into z past the grid limit.
// Overrides: ACCUMULATE (lib/matmul_io.wgsl), WG.

enable subgroups;

// Invocations per workgroup, a multiple of the subgroup size.
override WG: u32 = 16;

@compute @workgroup_size(WG, 1, 1)
fn matmul_subgroup8(@builtin(local_invocation_index) li: u32, @builtin(subgroup_invocation_id) s: u32, @builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let split = split_of(wid);
  let m0 = (row_block(wid, nwg) * (WG / 8u) + li / 8u) * 32u;
  let n0 = wid.x * 32u + s;
  let step = vec4u(0u, 8u, 16u, 24u);
  // The lane's 4 rows of op(A) and 4 columns of op(B), clamped; k adds k·a_k and k·b_k.
  let rows = min(vec4u(m0 + s) + step, vec4u(params.M - 1u)) * params.a_m;
  let cols = min(vec4u(n0) + step, vec4u(params.N - 1u)) * params.b_n;
  // c<i>: row m0 + i of the block, the lane's 4 columns.
  var c0 = vec4f(0.0);
  var c1 = vec4f(0.0);
  var c2 = vec4f(0.0);
  var c3 = vec4f(0.0);
  var c4 = vec4f(0.0);
  var c5 = vec4f(0.0);
  var c6 = vec4f(0.0);
  var c7 = vec4f(0.0);
  var c8 = vec4f(0.0);
  var c9 = vec4f(0.0);
  var c10 = vec4f(0.0);
  var c11 = vec4f(0.0);
  var c12 = vec4f(0.0);
  var c13 = vec4f(0.0);
  var c14 = vec4f(0.0);
  var c15 = vec4f(0.0);
  var c16 = vec4f(0.0);
  var c17 = vec4f(0.0);
  var c18 = vec4f(0.0);
  var c19 = vec4f(0.0);
  var c20 = vec4f(0.0);
  var c21 = vec4f(0.0);
  var c22 = vec4f(0.0);
  var c23 = vec4f(0.0);
  var c24 = vec4f(0.0);
  var c25 = vec4f(0.0);
  var c26 = vec4f(0.0);
  var c27 = vec4f(0.0);
  var c28 = vec4f(0.0);
  var c29 = vec4f(0.0);
  var c30 = vec4f(0.0);
  var c31 = vec4f(0.0);
  let k_end = min(params.K, (split + 1u) * params.k_chunk);
  for (var k = split * params.k_chunk; k < k_end; k++) {
    let ka = k * params.a_k;
    let kb = k * params.b_k;
    let av = vec4f(a[rows.x + ka], a[rows.y + ka], a[rows.z + ka], a[rows.w + ka]);
    let bv = vec4f(b[cols.x + kb], b[cols.y + kb], b[cols.z + kb], b[cols.w + kb]);
    c0 = fma(vec4f(subgroupBroadcast(av.x, 0u)), bv, c0);
    c1 = fma(vec4f(subgroupBroadcast(av.x, 1u)), bv, c1);
    c2 = fma(vec4f(subgroupBroadcast(av.x, 2u)), bv, c2);
    c3 = fma(vec4f(subgroupBroadcast(av.x, 3u)), bv, c3);
    c4 = fma(vec4f(subgroupBroadcast(av.x, 4u)), bv, c4);
    c5 = fma(vec4f(subgroupBroadcast(av.x, 5u)), bv, c5);
    c6 = fma(vec4f(subgroupBroadcast(av.x, 6u)), bv, c6);
    c7 = fma(vec4f(subgroupBroadcast(av.x, 7u)), bv, c7);
    c8 = fma(vec4f(subgroupBroadcast(av.y, 0u)), bv, c8);
    c9 = fma(vec4f(subgroupBroadcast(av.y, 1u)), bv, c9);
    c10 = fma(vec4f(subgroupBroadcast(av.y, 2u)), bv, c10);
    c11 = fma(vec4f(subgroupBroadcast(av.y, 3u)), bv, c11);
    c12 = fma(vec4f(subgroupBroadcast(av.y, 4u)), bv, c12);
    c13 = fma(vec4f(subgroupBroadcast(av.y, 5u)), bv, c13);
    c14 = fma(vec4f(subgroupBroadcast(av.y, 6u)), bv, c14);
    c15 = fma(vec4f(subgroupBroadcast(av.y, 7u)), bv, c15);
    c16 = fma(vec4f(subgroupBroadcast(av.z, 0u)), bv, c16);
    c17 = fma(vec4f(subgroupBroadcast(av.z, 1u)), bv, c17);
    c18 = fma(vec4f(subgroupBroadcast(av.z, 2u)), bv, c18);
    c19 = fma(vec4f(subgroupBroadcast(av.z, 3u)), bv, c19);
    c20 = fma(vec4f(subgroupBroadcast(av.z, 4u)), bv, c20);
    c21 = fma(vec4f(subgroupBroadcast(av.z, 5u)), bv, c21);
    c22 = fma(vec4f(subgroupBroadcast(av.z, 6u)), bv, c22);
    c23 = fma(vec4f(subgroupBroadcast(av.z, 7u)), bv, c23);
    c24 = fma(vec4f(subgroupBroadcast(av.w, 0u)), bv, c24);
    c25 = fma(vec4f(subgroupBroadcast(av.w, 1u)), bv, c25);
    c26 = fma(vec4f(subgroupBroadcast(av.w, 2u)), bv, c26);
    c27 = fma(vec4f(subgroupBroadcast(av.w, 3u)), bv, c27);
    c28 = fma(vec4f(subgroupBroadcast(av.w, 4u)), bv, c28);
    c29 = fma(vec4f(subgroupBroadcast(av.w, 5u)), bv, c29);
    c30 = fma(vec4f(subgroupBroadcast(av.w, 6u)), bv, c30);
    c31 = fma(vec4f(subgroupBroadcast(av.w, 7u)), bv, c31);
  }
  // The epilogue runs as a loop, not 32 inlined copies: that keeps the code CPU drivers compile small.
  let results = array(c0, c1, c2, c3, c4, c5, c6, c7, c8, c9, c10, c11, c12, c13, c14, c15, c16, c17, c18, c19, c20, c21, c22, c23, c24, c25, c26, c27, c28, c29, c30, c31);
  for (var i = 0u; i < 32u; i++) {
    store4(split, m0 + i, n0, 8u, results[i]);
  }
}

@compute @workgroup_size(WG, 1, 1)
fn matmul_subgroup4(@builtin(local_invocation_index) li: u32, @builtin(subgroup_invocation_id) s: u32, @builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let split = split_of(wid);
  let m0 = (row_block(wid, nwg) * (WG / 4u) + li / 4u) * 16u;
  let n0 = wid.x * 16u + s;
  let step = vec4u(0u, 4u, 8u, 12u);
  // The lane's 4 rows of op(A) and 4 columns of op(B), clamped; k adds k·a_k and k·b_k.
  let rows = min(vec4u(m0 + s) + step, vec4u(params.M - 1u)) * params.a_m;
  let cols = min(vec4u(n0) + step, vec4u(params.N - 1u)) * params.b_n;
  // c<i>: row m0 + i of the block, the lane's 4 columns.
  var c0 = vec4f(0.0);
  var c1 = vec4f(0.0);
  var c2 = vec4f(0.0);
  var c3 = vec4f(0.0);
  var c4 = vec4f(0.0);
  var c5 = vec4f(0.0);
  var c6 = vec4f(0.0);
  var c7 = vec4f(0.0);
  var c8 = vec4f(0.0);
  var c9 = vec4f(0.0);
  var c10 = vec4f(0.0);
  var c11 = vec4f(0.0);
  var c12 = vec4f(0.0);
  var c13 = vec4f(0.0);
  var c14 = vec4f(0.0);
  var c15 = vec4f(0.0);
  let k_end = min(params.K, (split + 1u) * params.k_chunk);
  for (var k = split * params.k_chunk; k < k_end; k++) {
    let ka = k * params.a_k;
    let kb = k * params.b_k;
    let av = vec4f(a[rows.x + ka], a[rows.y + ka], a[rows.z + ka], a[rows.w + ka]);
    let bv = vec4f(b[cols.x + kb], b[cols.y + kb], b[cols.z + kb], b[cols.w + kb]);
    c0 = fma(vec4f(subgroupBroadcast(av.x, 0u)), bv, c0);
    c1 = fma(vec4f(subgroupBroadcast(av.x, 1u)), bv, c1);
    c2 = fma(vec4f(subgroupBroadcast(av.x, 2u)), bv, c2);
    c3 = fma(vec4f(subgroupBroadcast(av.x, 3u)), bv, c3);
    c4 = fma(vec4f(subgroupBroadcast(av.y, 0u)), bv, c4);
    c5 = fma(vec4f(subgroupBroadcast(av.y, 1u)), bv, c5);
    c6 = fma(vec4f(subgroupBroadcast(av.y, 2u)), bv, c6);
    c7 = fma(vec4f(subgroupBroadcast(av.y, 3u)), bv, c7);
    c8 = fma(vec4f(subgroupBroadcast(av.z, 0u)), bv, c8);
    c9 = fma(vec4f(subgroupBroadcast(av.z, 1u)), bv, c9);
    c10 = fma(vec4f(subgroupBroadcast(av.z, 2u)), bv, c10);
    c11 = fma(vec4f(subgroupBroadcast(av.z, 3u)), bv, c11);
    c12 = fma(vec4f(subgroupBroadcast(av.w, 0u)), bv, c12);
    c13 = fma(vec4f(subgroupBroadcast(av.w, 1u)), bv, c13);
    c14 = fma(vec4f(subgroupBroadcast(av.w, 2u)), bv, c14);
    c15 = fma(vec4f(subgroupBroadcast(av.w, 3u)), bv, c15);
  }
  // The epilogue runs as a loop, not 16 inlined copies: that keeps the code CPU drivers compile small.
  let results = array(c0, c1, c2, c3, c4, c5, c6, c7, c8, c9, c10, c11, c12, c13, c14, c15);
  for (var i = 0u; i < 16u; i++) {
    store4(split, m0 + i, n0, 4u, results[i]);
  }
}
