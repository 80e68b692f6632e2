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

// Where lane s of a subgroup of `lanes` works: its block's first row m0 and its first column n0 (= the
// block's first + s), and the offsets of its 4 rows of op(A) and 4 columns of op(B) (clamped; k adds
// k·a_k and k·b_k). (The range of k stays in the entry point: it must be seen to be the same for every
// lane, as the broadcasts in the loop require, and a struct mixing it with lane values would not be.)
struct Lane { m0: u32, n0: u32, rows: vec4u, cols: vec4u }

fn lane_of(lanes: u32, li: u32, s: u32, wid: vec3u, nwg: vec3u) -> Lane {
  let m0 = (row_block(wid, nwg) * (WG / lanes) + li / lanes) * 4u * lanes;
  let n0 = wid.x * 4u * lanes + s;
  let step = vec4u(0u, 1u, 2u, 3u) * lanes;
  let rows = min(vec4u(m0 + s) + step, vec4u(params.M - 1u)) * params.a_m;
  let cols = min(vec4u(n0) + step, vec4u(params.N - 1u)) * params.b_n;
  return Lane(m0, n0, rows, cols);
}

// The lane's 4 values of op(A) at k (rows) and of op(B) at k (columns).
fn rows_at(rows: vec4u, k: u32) -> vec4f {
  let o = k * params.a_k;
  return vec4f(a[rows.x + o], a[rows.y + o], a[rows.z + o], a[rows.w + o]);
}

fn cols_at(cols: vec4u, k: u32) -> vec4f {
  let o = k * params.b_k;
  return vec4f(b[cols.x + o], b[cols.y + o], b[cols.z + o], b[cols.w + o]);
}

@compute @workgroup_size(WG, 1, 1)
fn matmul_subgroup8(@builtin(local_invocation_index) li: u32, @builtin(subgroup_invocation_id) s: u32, @builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let l = lane_of(8u, li, s, wid, nwg);
  // acc[i]: row m0 + i of the block, the lane's 4 columns (constant indices: registers, not memory).
  var acc: array<vec4f, 32>;
  let split = split_of(wid);
  let k_end = min(params.K, (split + 1u) * params.k_chunk);
  for (var k = split * params.k_chunk; k < k_end; k++) {
    let av = rows_at(l.rows, k);
    let bv = cols_at(l.cols, k);
    acc[0] = fma(vec4f(subgroupBroadcast(av.x, 0u)), bv, acc[0]);
    acc[1] = fma(vec4f(subgroupBroadcast(av.x, 1u)), bv, acc[1]);
    acc[2] = fma(vec4f(subgroupBroadcast(av.x, 2u)), bv, acc[2]);
    acc[3] = fma(vec4f(subgroupBroadcast(av.x, 3u)), bv, acc[3]);
    acc[4] = fma(vec4f(subgroupBroadcast(av.x, 4u)), bv, acc[4]);
    acc[5] = fma(vec4f(subgroupBroadcast(av.x, 5u)), bv, acc[5]);
    acc[6] = fma(vec4f(subgroupBroadcast(av.x, 6u)), bv, acc[6]);
    acc[7] = fma(vec4f(subgroupBroadcast(av.x, 7u)), bv, acc[7]);
    acc[8] = fma(vec4f(subgroupBroadcast(av.y, 0u)), bv, acc[8]);
    acc[9] = fma(vec4f(subgroupBroadcast(av.y, 1u)), bv, acc[9]);
    acc[10] = fma(vec4f(subgroupBroadcast(av.y, 2u)), bv, acc[10]);
    acc[11] = fma(vec4f(subgroupBroadcast(av.y, 3u)), bv, acc[11]);
    acc[12] = fma(vec4f(subgroupBroadcast(av.y, 4u)), bv, acc[12]);
    acc[13] = fma(vec4f(subgroupBroadcast(av.y, 5u)), bv, acc[13]);
    acc[14] = fma(vec4f(subgroupBroadcast(av.y, 6u)), bv, acc[14]);
    acc[15] = fma(vec4f(subgroupBroadcast(av.y, 7u)), bv, acc[15]);
    acc[16] = fma(vec4f(subgroupBroadcast(av.z, 0u)), bv, acc[16]);
    acc[17] = fma(vec4f(subgroupBroadcast(av.z, 1u)), bv, acc[17]);
    acc[18] = fma(vec4f(subgroupBroadcast(av.z, 2u)), bv, acc[18]);
    acc[19] = fma(vec4f(subgroupBroadcast(av.z, 3u)), bv, acc[19]);
    acc[20] = fma(vec4f(subgroupBroadcast(av.z, 4u)), bv, acc[20]);
    acc[21] = fma(vec4f(subgroupBroadcast(av.z, 5u)), bv, acc[21]);
    acc[22] = fma(vec4f(subgroupBroadcast(av.z, 6u)), bv, acc[22]);
    acc[23] = fma(vec4f(subgroupBroadcast(av.z, 7u)), bv, acc[23]);
    acc[24] = fma(vec4f(subgroupBroadcast(av.w, 0u)), bv, acc[24]);
    acc[25] = fma(vec4f(subgroupBroadcast(av.w, 1u)), bv, acc[25]);
    acc[26] = fma(vec4f(subgroupBroadcast(av.w, 2u)), bv, acc[26]);
    acc[27] = fma(vec4f(subgroupBroadcast(av.w, 3u)), bv, acc[27]);
    acc[28] = fma(vec4f(subgroupBroadcast(av.w, 4u)), bv, acc[28]);
    acc[29] = fma(vec4f(subgroupBroadcast(av.w, 5u)), bv, acc[29]);
    acc[30] = fma(vec4f(subgroupBroadcast(av.w, 6u)), bv, acc[30]);
    acc[31] = fma(vec4f(subgroupBroadcast(av.w, 7u)), bv, acc[31]);
  }
  let bias_v = bias4(l.n0, 8u);
  for (var i = 0u; i < 32u; i++) {
    store4(split, l.m0 + i, l.n0, 8u, acc[i], bias_v);
  }
}

@compute @workgroup_size(WG, 1, 1)
fn matmul_subgroup4(@builtin(local_invocation_index) li: u32, @builtin(subgroup_invocation_id) s: u32, @builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let l = lane_of(4u, li, s, wid, nwg);
  // acc[i]: row m0 + i of the block, the lane's 4 columns (constant indices: registers, not memory).
  var acc: array<vec4f, 16>;
  let split = split_of(wid);
  let k_end = min(params.K, (split + 1u) * params.k_chunk);
  for (var k = split * params.k_chunk; k < k_end; k++) {
    let av = rows_at(l.rows, k);
    let bv = cols_at(l.cols, k);
    acc[0] = fma(vec4f(subgroupBroadcast(av.x, 0u)), bv, acc[0]);
    acc[1] = fma(vec4f(subgroupBroadcast(av.x, 1u)), bv, acc[1]);
    acc[2] = fma(vec4f(subgroupBroadcast(av.x, 2u)), bv, acc[2]);
    acc[3] = fma(vec4f(subgroupBroadcast(av.x, 3u)), bv, acc[3]);
    acc[4] = fma(vec4f(subgroupBroadcast(av.y, 0u)), bv, acc[4]);
    acc[5] = fma(vec4f(subgroupBroadcast(av.y, 1u)), bv, acc[5]);
    acc[6] = fma(vec4f(subgroupBroadcast(av.y, 2u)), bv, acc[6]);
    acc[7] = fma(vec4f(subgroupBroadcast(av.y, 3u)), bv, acc[7]);
    acc[8] = fma(vec4f(subgroupBroadcast(av.z, 0u)), bv, acc[8]);
    acc[9] = fma(vec4f(subgroupBroadcast(av.z, 1u)), bv, acc[9]);
    acc[10] = fma(vec4f(subgroupBroadcast(av.z, 2u)), bv, acc[10]);
    acc[11] = fma(vec4f(subgroupBroadcast(av.z, 3u)), bv, acc[11]);
    acc[12] = fma(vec4f(subgroupBroadcast(av.w, 0u)), bv, acc[12]);
    acc[13] = fma(vec4f(subgroupBroadcast(av.w, 1u)), bv, acc[13]);
    acc[14] = fma(vec4f(subgroupBroadcast(av.w, 2u)), bv, acc[14]);
    acc[15] = fma(vec4f(subgroupBroadcast(av.w, 3u)), bv, acc[15]);
  }
  let bias_v = bias4(l.n0, 4u);
  for (var i = 0u; i < 16u; i++) {
    store4(split, l.m0 + i, l.n0, 4u, acc[i], bias_v);
  }
}

// matmul_subgroup4 with op(B) read as vec4s along N (b4, the same buffer; N a multiple of 4, B not
// transposed): lane s owns the 4 neighbouring columns n0 + 4s .. + 3, one load instead of four.
@group(0) @binding(5) var<storage, read_write> b4: array<vec4f>;

@compute @workgroup_size(WG, 1, 1)
fn matmul_subgroup4v(@builtin(local_invocation_index) li: u32, @builtin(subgroup_invocation_id) s: u32, @builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let l = lane_of(4u, li, s, wid, nwg);
  let n0 = wid.x * 16u + 4u * s;
  let col4 = min(n0, params.N - 4u) / 4u;
  var acc: array<vec4f, 16>;
  let split = split_of(wid);
  let k_end = min(params.K, (split + 1u) * params.k_chunk);
  for (var k = split * params.k_chunk; k < k_end; k++) {
    let av = rows_at(l.rows, k);
    let bv = b4[k * (params.b_k / 4u) + col4];
    acc[0] = fma(vec4f(subgroupBroadcast(av.x, 0u)), bv, acc[0]);
    acc[1] = fma(vec4f(subgroupBroadcast(av.x, 1u)), bv, acc[1]);
    acc[2] = fma(vec4f(subgroupBroadcast(av.x, 2u)), bv, acc[2]);
    acc[3] = fma(vec4f(subgroupBroadcast(av.x, 3u)), bv, acc[3]);
    acc[4] = fma(vec4f(subgroupBroadcast(av.y, 0u)), bv, acc[4]);
    acc[5] = fma(vec4f(subgroupBroadcast(av.y, 1u)), bv, acc[5]);
    acc[6] = fma(vec4f(subgroupBroadcast(av.y, 2u)), bv, acc[6]);
    acc[7] = fma(vec4f(subgroupBroadcast(av.y, 3u)), bv, acc[7]);
    acc[8] = fma(vec4f(subgroupBroadcast(av.z, 0u)), bv, acc[8]);
    acc[9] = fma(vec4f(subgroupBroadcast(av.z, 1u)), bv, acc[9]);
    acc[10] = fma(vec4f(subgroupBroadcast(av.z, 2u)), bv, acc[10]);
    acc[11] = fma(vec4f(subgroupBroadcast(av.z, 3u)), bv, acc[11]);
    acc[12] = fma(vec4f(subgroupBroadcast(av.w, 0u)), bv, acc[12]);
    acc[13] = fma(vec4f(subgroupBroadcast(av.w, 1u)), bv, acc[13]);
    acc[14] = fma(vec4f(subgroupBroadcast(av.w, 2u)), bv, acc[14]);
    acc[15] = fma(vec4f(subgroupBroadcast(av.w, 3u)), bv, acc[15]);
  }
  let bias_v = bias4(n0, 1u);
  for (var i = 0u; i < 16u; i++) {
    store4(split, l.m0 + i, n0, 1u, acc[i], bias_v);
  }
}

// matmul_subgroup8 with op(B) read as vec4s along N, as matmul_subgroup4v.
@compute @workgroup_size(WG, 1, 1)
fn matmul_subgroup8v(@builtin(local_invocation_index) li: u32, @builtin(subgroup_invocation_id) s: u32, @builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let l = lane_of(8u, li, s, wid, nwg);
  let n0 = wid.x * 32u + 4u * s;
  let col4 = min(n0, params.N - 4u) / 4u;
  // acc[i]: row m0 + i of the block, the lane's 4 columns (constant indices: registers, not memory).
  var acc: array<vec4f, 32>;
  let split = split_of(wid);
  let k_end = min(params.K, (split + 1u) * params.k_chunk);
  for (var k = split * params.k_chunk; k < k_end; k++) {
    let av = rows_at(l.rows, k);
    let bv = b4[k * (params.b_k / 4u) + col4];
    acc[0] = fma(vec4f(subgroupBroadcast(av.x, 0u)), bv, acc[0]);
    acc[1] = fma(vec4f(subgroupBroadcast(av.x, 1u)), bv, acc[1]);
    acc[2] = fma(vec4f(subgroupBroadcast(av.x, 2u)), bv, acc[2]);
    acc[3] = fma(vec4f(subgroupBroadcast(av.x, 3u)), bv, acc[3]);
    acc[4] = fma(vec4f(subgroupBroadcast(av.x, 4u)), bv, acc[4]);
    acc[5] = fma(vec4f(subgroupBroadcast(av.x, 5u)), bv, acc[5]);
    acc[6] = fma(vec4f(subgroupBroadcast(av.x, 6u)), bv, acc[6]);
    acc[7] = fma(vec4f(subgroupBroadcast(av.x, 7u)), bv, acc[7]);
    acc[8] = fma(vec4f(subgroupBroadcast(av.y, 0u)), bv, acc[8]);
    acc[9] = fma(vec4f(subgroupBroadcast(av.y, 1u)), bv, acc[9]);
    acc[10] = fma(vec4f(subgroupBroadcast(av.y, 2u)), bv, acc[10]);
    acc[11] = fma(vec4f(subgroupBroadcast(av.y, 3u)), bv, acc[11]);
    acc[12] = fma(vec4f(subgroupBroadcast(av.y, 4u)), bv, acc[12]);
    acc[13] = fma(vec4f(subgroupBroadcast(av.y, 5u)), bv, acc[13]);
    acc[14] = fma(vec4f(subgroupBroadcast(av.y, 6u)), bv, acc[14]);
    acc[15] = fma(vec4f(subgroupBroadcast(av.y, 7u)), bv, acc[15]);
    acc[16] = fma(vec4f(subgroupBroadcast(av.z, 0u)), bv, acc[16]);
    acc[17] = fma(vec4f(subgroupBroadcast(av.z, 1u)), bv, acc[17]);
    acc[18] = fma(vec4f(subgroupBroadcast(av.z, 2u)), bv, acc[18]);
    acc[19] = fma(vec4f(subgroupBroadcast(av.z, 3u)), bv, acc[19]);
    acc[20] = fma(vec4f(subgroupBroadcast(av.z, 4u)), bv, acc[20]);
    acc[21] = fma(vec4f(subgroupBroadcast(av.z, 5u)), bv, acc[21]);
    acc[22] = fma(vec4f(subgroupBroadcast(av.z, 6u)), bv, acc[22]);
    acc[23] = fma(vec4f(subgroupBroadcast(av.z, 7u)), bv, acc[23]);
    acc[24] = fma(vec4f(subgroupBroadcast(av.w, 0u)), bv, acc[24]);
    acc[25] = fma(vec4f(subgroupBroadcast(av.w, 1u)), bv, acc[25]);
    acc[26] = fma(vec4f(subgroupBroadcast(av.w, 2u)), bv, acc[26]);
    acc[27] = fma(vec4f(subgroupBroadcast(av.w, 3u)), bv, acc[27]);
    acc[28] = fma(vec4f(subgroupBroadcast(av.w, 4u)), bv, acc[28]);
    acc[29] = fma(vec4f(subgroupBroadcast(av.w, 5u)), bv, acc[29]);
    acc[30] = fma(vec4f(subgroupBroadcast(av.w, 6u)), bv, acc[30]);
    acc[31] = fma(vec4f(subgroupBroadcast(av.w, 7u)), bv, acc[31]);
  }
  let bias_v = bias4(n0, 1u);
  for (var i = 0u; i < 32u; i++) {
    store4(split, l.m0 + i, n0, 1u, acc[i], bias_v);
  }
}

