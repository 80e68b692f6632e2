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
//
// K_STEP = 4 walks K 4 at a time: each accumulator takes the 4 steps in one expression (4 FMAs: the
// broadcast row's 4 values times 4 rows of op(B)) and is written once per 4 k, not once per k. An
// accumulator is a function variable, and SwiftShader stores one under the lane mask at every write;
// there this cuts the dense layer's products by 10–20%. lavapipe keeps accumulators in registers and runs
// K_STEP = 1 about as fast, so the two are separate matmul variants that tuning measures
// (subgroup<SG>k4). A chunk whose length is not a multiple of 4 ends with a step whose surplus k read
// clamped elements, zeroed on both sides, so that they add exact zeros (SwiftShader ran a separate loop
// for the last k % 4 about 10% slower). A short K wastes much of its last step, so products with K < 16
// take K_STEP = 1 (src/kernels.ts).
//
// One entry point per subgroup size, since a broadcast names its lane by a constant: matmul_subgroup8
// and matmul_subgroup4, and their twins matmul_subgroup8v / 4v, which read op(B) as vec4s along N (b4,
// the same buffer; N a multiple of 4, B not transposed): lane s owns the 4 neighbouring columns
// n0 + 4s .. + 3, one load instead of four. The engine offers each only where the adapter reports
// exactly that size, and checks its product before its matmul tuning may pick it (src/tuning.ts).
// Dispatch: grid (ceil(N / (4·SG)), ceil(M / (4·WG)), splits), rows folded into z past the grid limit.
// Overrides: ACCUMULATE (lib/matmul_io.wgsl), WG, K_STEP.

enable subgroups;

// Invocations per workgroup, a multiple of the subgroup size.
override WG: u32 = 16;
// 4: walk K four at a time (see above); 1: one at a time.
override K_STEP: u32 = 1;

@group(0) @binding(5) var<storage, read_write> b4: array<vec4f>;

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
  return cols_from(cols, k * params.b_k);
}

fn cols_from(cols: vec4u, o: u32) -> vec4f {
  return vec4f(b[cols.x + o], b[cols.y + o], b[cols.z + o], b[cols.w + o]);
}

// The step k .. k + 3 of a chunk that ends at k_end: which of the 4 are in it, and the offsets of the
// 4 k (clamped to the chunk's last) in op(A) and in op(B) (times a_k and b_stride).
struct Quad { live: vec4<bool>, a: vec4u, b: vec4u }

fn quad(k: u32, k_end: u32, b_stride: u32) -> Quad {
  let ks = vec4u(k) + vec4u(0u, 1u, 2u, 3u);
  let at = min(ks, vec4u(k_end - 1u));
  return Quad(ks < vec4u(k_end), at * params.a_k, at * b_stride);
}

// One row of op(A) (offset `row`) at the quad's 4 k, zero where a k is past the chunk.
fn row4(row: u32, q: Quad) -> vec4f {
  let o = vec4u(row) + q.a;
  return select(vec4f(0.0), vec4f(a[o.x], a[o.y], a[o.z], a[o.w]), q.live);
}

// The lane's 4 rows at the quad's k: column i holds row i's 4 values.
fn rows4(rows: vec4u, q: Quad) -> mat4x4f {
  return mat4x4f(row4(rows.x, q), row4(rows.y, q), row4(rows.z, q), row4(rows.w, q));
}

// op(B) at the lane's 4 columns, one column of the result per k of the quad (zero past the chunk).
fn cols4(cols: vec4u, q: Quad) -> mat4x4f {
  let z = vec4f(0.0);
  return mat4x4f(select(z, cols_from(cols, q.b.x), q.live.x), select(z, cols_from(cols, q.b.y), q.live.y), select(z, cols_from(cols, q.b.z), q.live.z), select(z, cols_from(cols, q.b.w), q.live.w));
}

// cols4 for the v entries: the lane's 4 neighbouring columns are vec4 `col` of each row of op(B) (the
// quad's b_stride: a row's length in vec4s).
fn cols4v(col: u32, q: Quad) -> mat4x4f {
  let z = vec4f(0.0);
  let o = q.b + vec4u(col);
  return mat4x4f(select(z, b4[o.x], q.live.x), select(z, b4[o.y], q.live.y), select(z, b4[o.z], q.live.z), select(z, b4[o.w], q.live.w));
}

// acc + bm·a as 4 FMAs, one per k (SwiftShader ran bm * a + acc about 5% slower).
fn madd4(acc: vec4f, a: vec4f, bm: mat4x4f) -> vec4f {
  return fma(vec4f(a.w), bm[3], fma(vec4f(a.z), bm[2], fma(vec4f(a.y), bm[1], fma(vec4f(a.x), bm[0], acc))));
}

// The steps. acc[SG·i + t] is row m0 + t + SG·i of the subgroup's block at the lane's 4 columns: lane
// t's row i, taken by broadcast. A step of one k adds that row's value times op(B)'s row (bv); a step of
// 4 adds the row's 4 values (a column of `at`) times op(B)'s 4 rows (the columns of `bm`). (Constant
// indices keep the accumulators in registers where the driver can.)

fn step8(acc: ptr<function, array<vec4f, 32>>, av: vec4f, bv: vec4f) {
  (*acc)[0] = fma(vec4f(subgroupBroadcast(av.x, 0u)), bv, (*acc)[0]);
  (*acc)[1] = fma(vec4f(subgroupBroadcast(av.x, 1u)), bv, (*acc)[1]);
  (*acc)[2] = fma(vec4f(subgroupBroadcast(av.x, 2u)), bv, (*acc)[2]);
  (*acc)[3] = fma(vec4f(subgroupBroadcast(av.x, 3u)), bv, (*acc)[3]);
  (*acc)[4] = fma(vec4f(subgroupBroadcast(av.x, 4u)), bv, (*acc)[4]);
  (*acc)[5] = fma(vec4f(subgroupBroadcast(av.x, 5u)), bv, (*acc)[5]);
  (*acc)[6] = fma(vec4f(subgroupBroadcast(av.x, 6u)), bv, (*acc)[6]);
  (*acc)[7] = fma(vec4f(subgroupBroadcast(av.x, 7u)), bv, (*acc)[7]);
  (*acc)[8] = fma(vec4f(subgroupBroadcast(av.y, 0u)), bv, (*acc)[8]);
  (*acc)[9] = fma(vec4f(subgroupBroadcast(av.y, 1u)), bv, (*acc)[9]);
  (*acc)[10] = fma(vec4f(subgroupBroadcast(av.y, 2u)), bv, (*acc)[10]);
  (*acc)[11] = fma(vec4f(subgroupBroadcast(av.y, 3u)), bv, (*acc)[11]);
  (*acc)[12] = fma(vec4f(subgroupBroadcast(av.y, 4u)), bv, (*acc)[12]);
  (*acc)[13] = fma(vec4f(subgroupBroadcast(av.y, 5u)), bv, (*acc)[13]);
  (*acc)[14] = fma(vec4f(subgroupBroadcast(av.y, 6u)), bv, (*acc)[14]);
  (*acc)[15] = fma(vec4f(subgroupBroadcast(av.y, 7u)), bv, (*acc)[15]);
  (*acc)[16] = fma(vec4f(subgroupBroadcast(av.z, 0u)), bv, (*acc)[16]);
  (*acc)[17] = fma(vec4f(subgroupBroadcast(av.z, 1u)), bv, (*acc)[17]);
  (*acc)[18] = fma(vec4f(subgroupBroadcast(av.z, 2u)), bv, (*acc)[18]);
  (*acc)[19] = fma(vec4f(subgroupBroadcast(av.z, 3u)), bv, (*acc)[19]);
  (*acc)[20] = fma(vec4f(subgroupBroadcast(av.z, 4u)), bv, (*acc)[20]);
  (*acc)[21] = fma(vec4f(subgroupBroadcast(av.z, 5u)), bv, (*acc)[21]);
  (*acc)[22] = fma(vec4f(subgroupBroadcast(av.z, 6u)), bv, (*acc)[22]);
  (*acc)[23] = fma(vec4f(subgroupBroadcast(av.z, 7u)), bv, (*acc)[23]);
  (*acc)[24] = fma(vec4f(subgroupBroadcast(av.w, 0u)), bv, (*acc)[24]);
  (*acc)[25] = fma(vec4f(subgroupBroadcast(av.w, 1u)), bv, (*acc)[25]);
  (*acc)[26] = fma(vec4f(subgroupBroadcast(av.w, 2u)), bv, (*acc)[26]);
  (*acc)[27] = fma(vec4f(subgroupBroadcast(av.w, 3u)), bv, (*acc)[27]);
  (*acc)[28] = fma(vec4f(subgroupBroadcast(av.w, 4u)), bv, (*acc)[28]);
  (*acc)[29] = fma(vec4f(subgroupBroadcast(av.w, 5u)), bv, (*acc)[29]);
  (*acc)[30] = fma(vec4f(subgroupBroadcast(av.w, 6u)), bv, (*acc)[30]);
  (*acc)[31] = fma(vec4f(subgroupBroadcast(av.w, 7u)), bv, (*acc)[31]);
}

fn step8x4(acc: ptr<function, array<vec4f, 32>>, at: mat4x4f, bm: mat4x4f) {
  (*acc)[0] = madd4((*acc)[0], subgroupBroadcast(at[0], 0u), bm);
  (*acc)[1] = madd4((*acc)[1], subgroupBroadcast(at[0], 1u), bm);
  (*acc)[2] = madd4((*acc)[2], subgroupBroadcast(at[0], 2u), bm);
  (*acc)[3] = madd4((*acc)[3], subgroupBroadcast(at[0], 3u), bm);
  (*acc)[4] = madd4((*acc)[4], subgroupBroadcast(at[0], 4u), bm);
  (*acc)[5] = madd4((*acc)[5], subgroupBroadcast(at[0], 5u), bm);
  (*acc)[6] = madd4((*acc)[6], subgroupBroadcast(at[0], 6u), bm);
  (*acc)[7] = madd4((*acc)[7], subgroupBroadcast(at[0], 7u), bm);
  (*acc)[8] = madd4((*acc)[8], subgroupBroadcast(at[1], 0u), bm);
  (*acc)[9] = madd4((*acc)[9], subgroupBroadcast(at[1], 1u), bm);
  (*acc)[10] = madd4((*acc)[10], subgroupBroadcast(at[1], 2u), bm);
  (*acc)[11] = madd4((*acc)[11], subgroupBroadcast(at[1], 3u), bm);
  (*acc)[12] = madd4((*acc)[12], subgroupBroadcast(at[1], 4u), bm);
  (*acc)[13] = madd4((*acc)[13], subgroupBroadcast(at[1], 5u), bm);
  (*acc)[14] = madd4((*acc)[14], subgroupBroadcast(at[1], 6u), bm);
  (*acc)[15] = madd4((*acc)[15], subgroupBroadcast(at[1], 7u), bm);
  (*acc)[16] = madd4((*acc)[16], subgroupBroadcast(at[2], 0u), bm);
  (*acc)[17] = madd4((*acc)[17], subgroupBroadcast(at[2], 1u), bm);
  (*acc)[18] = madd4((*acc)[18], subgroupBroadcast(at[2], 2u), bm);
  (*acc)[19] = madd4((*acc)[19], subgroupBroadcast(at[2], 3u), bm);
  (*acc)[20] = madd4((*acc)[20], subgroupBroadcast(at[2], 4u), bm);
  (*acc)[21] = madd4((*acc)[21], subgroupBroadcast(at[2], 5u), bm);
  (*acc)[22] = madd4((*acc)[22], subgroupBroadcast(at[2], 6u), bm);
  (*acc)[23] = madd4((*acc)[23], subgroupBroadcast(at[2], 7u), bm);
  (*acc)[24] = madd4((*acc)[24], subgroupBroadcast(at[3], 0u), bm);
  (*acc)[25] = madd4((*acc)[25], subgroupBroadcast(at[3], 1u), bm);
  (*acc)[26] = madd4((*acc)[26], subgroupBroadcast(at[3], 2u), bm);
  (*acc)[27] = madd4((*acc)[27], subgroupBroadcast(at[3], 3u), bm);
  (*acc)[28] = madd4((*acc)[28], subgroupBroadcast(at[3], 4u), bm);
  (*acc)[29] = madd4((*acc)[29], subgroupBroadcast(at[3], 5u), bm);
  (*acc)[30] = madd4((*acc)[30], subgroupBroadcast(at[3], 6u), bm);
  (*acc)[31] = madd4((*acc)[31], subgroupBroadcast(at[3], 7u), bm);
}

fn step4(acc: ptr<function, array<vec4f, 16>>, av: vec4f, bv: vec4f) {
  (*acc)[0] = fma(vec4f(subgroupBroadcast(av.x, 0u)), bv, (*acc)[0]);
  (*acc)[1] = fma(vec4f(subgroupBroadcast(av.x, 1u)), bv, (*acc)[1]);
  (*acc)[2] = fma(vec4f(subgroupBroadcast(av.x, 2u)), bv, (*acc)[2]);
  (*acc)[3] = fma(vec4f(subgroupBroadcast(av.x, 3u)), bv, (*acc)[3]);
  (*acc)[4] = fma(vec4f(subgroupBroadcast(av.y, 0u)), bv, (*acc)[4]);
  (*acc)[5] = fma(vec4f(subgroupBroadcast(av.y, 1u)), bv, (*acc)[5]);
  (*acc)[6] = fma(vec4f(subgroupBroadcast(av.y, 2u)), bv, (*acc)[6]);
  (*acc)[7] = fma(vec4f(subgroupBroadcast(av.y, 3u)), bv, (*acc)[7]);
  (*acc)[8] = fma(vec4f(subgroupBroadcast(av.z, 0u)), bv, (*acc)[8]);
  (*acc)[9] = fma(vec4f(subgroupBroadcast(av.z, 1u)), bv, (*acc)[9]);
  (*acc)[10] = fma(vec4f(subgroupBroadcast(av.z, 2u)), bv, (*acc)[10]);
  (*acc)[11] = fma(vec4f(subgroupBroadcast(av.z, 3u)), bv, (*acc)[11]);
  (*acc)[12] = fma(vec4f(subgroupBroadcast(av.w, 0u)), bv, (*acc)[12]);
  (*acc)[13] = fma(vec4f(subgroupBroadcast(av.w, 1u)), bv, (*acc)[13]);
  (*acc)[14] = fma(vec4f(subgroupBroadcast(av.w, 2u)), bv, (*acc)[14]);
  (*acc)[15] = fma(vec4f(subgroupBroadcast(av.w, 3u)), bv, (*acc)[15]);
}

fn step4x4(acc: ptr<function, array<vec4f, 16>>, at: mat4x4f, bm: mat4x4f) {
  (*acc)[0] = madd4((*acc)[0], subgroupBroadcast(at[0], 0u), bm);
  (*acc)[1] = madd4((*acc)[1], subgroupBroadcast(at[0], 1u), bm);
  (*acc)[2] = madd4((*acc)[2], subgroupBroadcast(at[0], 2u), bm);
  (*acc)[3] = madd4((*acc)[3], subgroupBroadcast(at[0], 3u), bm);
  (*acc)[4] = madd4((*acc)[4], subgroupBroadcast(at[1], 0u), bm);
  (*acc)[5] = madd4((*acc)[5], subgroupBroadcast(at[1], 1u), bm);
  (*acc)[6] = madd4((*acc)[6], subgroupBroadcast(at[1], 2u), bm);
  (*acc)[7] = madd4((*acc)[7], subgroupBroadcast(at[1], 3u), bm);
  (*acc)[8] = madd4((*acc)[8], subgroupBroadcast(at[2], 0u), bm);
  (*acc)[9] = madd4((*acc)[9], subgroupBroadcast(at[2], 1u), bm);
  (*acc)[10] = madd4((*acc)[10], subgroupBroadcast(at[2], 2u), bm);
  (*acc)[11] = madd4((*acc)[11], subgroupBroadcast(at[2], 3u), bm);
  (*acc)[12] = madd4((*acc)[12], subgroupBroadcast(at[3], 0u), bm);
  (*acc)[13] = madd4((*acc)[13], subgroupBroadcast(at[3], 1u), bm);
  (*acc)[14] = madd4((*acc)[14], subgroupBroadcast(at[3], 2u), bm);
  (*acc)[15] = madd4((*acc)[15], subgroupBroadcast(at[3], 3u), bm);
}

// The entry points differ in their subgroup size and in how they read op(B) (see the head of the file);
// each runs its k range in steps of K_STEP (the other branch is compiled away).

@compute @workgroup_size(WG, 1, 1)
fn matmul_subgroup8(@builtin(local_invocation_index) li: u32, @builtin(subgroup_invocation_id) s: u32, @builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let l = lane_of(8u, li, s, wid, nwg);
  var acc: array<vec4f, 32>;
  let split = split_of(wid);
  let k_end = min(params.K, (split + 1u) * params.k_chunk);
  for (var k = split * params.k_chunk; k < k_end; k += K_STEP) {
    if (K_STEP == 4u) {
      let q = quad(k, k_end, params.b_k);
      step8x4(&acc, rows4(l.rows, q), cols4(l.cols, q));
    } else {
      step8(&acc, rows_at(l.rows, k), cols_at(l.cols, k));
    }
  }
  let bias_v = bias4(l.n0, 8u);
  for (var i = 0u; i < 32u; i++) {
    store4(split, l.m0 + i, l.n0, 8u, acc[i], bias_v);
  }
}

@compute @workgroup_size(WG, 1, 1)
fn matmul_subgroup4(@builtin(local_invocation_index) li: u32, @builtin(subgroup_invocation_id) s: u32, @builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let l = lane_of(4u, li, s, wid, nwg);
  var acc: array<vec4f, 16>;
  let split = split_of(wid);
  let k_end = min(params.K, (split + 1u) * params.k_chunk);
  for (var k = split * params.k_chunk; k < k_end; k += K_STEP) {
    if (K_STEP == 4u) {
      let q = quad(k, k_end, params.b_k);
      step4x4(&acc, rows4(l.rows, q), cols4(l.cols, q));
    } else {
      step4(&acc, rows_at(l.rows, k), cols_at(l.cols, k));
    }
  }
  let bias_v = bias4(l.n0, 4u);
  for (var i = 0u; i < 16u; i++) {
    store4(split, l.m0 + i, l.n0, 4u, acc[i], bias_v);
  }
}

@compute @workgroup_size(WG, 1, 1)
fn matmul_subgroup8v(@builtin(local_invocation_index) li: u32, @builtin(subgroup_invocation_id) s: u32, @builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let l = lane_of(8u, li, s, wid, nwg);
  let n0 = wid.x * 32u + 4u * s;
  let col = min(n0, params.N - 4u) / 4u;
  let row4s = params.b_k / 4u;
  var acc: array<vec4f, 32>;
  let split = split_of(wid);
  let k_end = min(params.K, (split + 1u) * params.k_chunk);
  for (var k = split * params.k_chunk; k < k_end; k += K_STEP) {
    if (K_STEP == 4u) {
      let q = quad(k, k_end, row4s);
      step8x4(&acc, rows4(l.rows, q), cols4v(col, q));
    } else {
      step8(&acc, rows_at(l.rows, k), b4[k * row4s + col]);
    }
  }
  let bias_v = bias4(n0, 1u);
  for (var i = 0u; i < 32u; i++) {
    store4(split, l.m0 + i, n0, 1u, acc[i], bias_v);
  }
}

@compute @workgroup_size(WG, 1, 1)
fn matmul_subgroup4v(@builtin(local_invocation_index) li: u32, @builtin(subgroup_invocation_id) s: u32, @builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let l = lane_of(4u, li, s, wid, nwg);
  let n0 = wid.x * 16u + 4u * s;
  let col = min(n0, params.N - 4u) / 4u;
  let row4s = params.b_k / 4u;
  var acc: array<vec4f, 16>;
  let split = split_of(wid);
  let k_end = min(params.K, (split + 1u) * params.k_chunk);
  for (var k = split * params.k_chunk; k < k_end; k += K_STEP) {
    if (K_STEP == 4u) {
      let q = quad(k, k_end, row4s);
      step4x4(&acc, rows4(l.rows, q), cols4v(col, q));
    } else {
      step4(&acc, rows_at(l.rows, k), b4[k * row4s + col]);
    }
  }
  let bias_v = bias4(n0, 1u);
  for (var i = 0u; i < 16u; i++) {
    store4(split, l.m0 + i, n0, 1u, acc[i], bias_v);
  }
}

// Implicit GEMM: a convolution as the product of its im2col columns (B·OH·OW, KH·KW·C) and the filters
// (KH·KW·C, F), with the columns read straight from the input x (NHWC, binding a), so they are never
// written (im2col.wgsl's layout: column (ky·KW + kx)·C + c). conv_subgroup<SG>v computes the forward
// product (rows: output pixels; K walked tap by tap, each tap a run of C contiguous channels);
// conv_dw_subgroup<SG>v the filter gradient, columnsᵀ · dz (rows: the K taps × channels; the output
// pixels of its split-K chunk walked one output row at a time, each a run along x). Only the vec4-B
// form: the filters and dz are read as vec4s along F, a multiple of 4. In a run the lane's rows read x
// at base + t·stride, zero where the pixel is outside the image: `ok` (rows) and ix + t·ix_step in
// [0, W) (columns). The uniforms are matmul's with the convolution's geometry (lib/matmul_io.wgsl).

// Where the lane's 4 rows read x in a run: their offsets at step 0, which are inside the image, and
// their column at step 0 (the filter gradient's runs move along x; the forward's stay on one pixel and
// pass column 0). Lane values only: a run's uniform values are parameters of their own, since the
// broadcasts need its loop seen as uniform.
struct RunRows { base: vec4i, ok: vec4<bool>, ix: vec4i }

// The lane's 4 rows at run steps t .. t + 3 (columns of the result: rows; components: steps), zero past
// the run's `len` steps or outside the image.
fn run_row4(base: i32, ok: bool, ix: i32, t: u32, len: u32, stride: i32, ix_step: i32) -> vec4f {
  let ts = vec4u(t) + vec4u(0u, 1u, 2u, 3u);
  let at = vec4i(min(ts, vec4u(len - 1u)));
  let live = (ts < vec4u(len)) & vec4<bool>(ok) & (vec4u(vec4i(ix) + at * ix_step) < vec4u(params.W));
  let o = vec4u(max(vec4i(base) + at * stride, vec4i(0)));
  return select(vec4f(0.0), vec4f(a[o.x], a[o.y], a[o.z], a[o.w]), live);
}

fn run_rows4(r: RunRows, t: u32, len: u32, stride: i32, ix_step: i32) -> mat4x4f {
  return mat4x4f(run_row4(r.base.x, r.ok.x, r.ix.x, t, len, stride, ix_step), run_row4(r.base.y, r.ok.y, r.ix.y, t, len, stride, ix_step), run_row4(r.base.z, r.ok.z, r.ix.z, t, len, stride, ix_step), run_row4(r.base.w, r.ok.w, r.ix.w, t, len, stride, ix_step));
}

// The lane's 4 rows at run step t.
fn run_rows1(r: RunRows, t: u32, stride: i32, ix_step: i32) -> vec4f {
  let live = r.ok & (vec4u(r.ix + vec4i(i32(t) * ix_step)) < vec4u(params.W));
  let o = vec4u(max(r.base + vec4i(i32(t) * stride), vec4i(0)));
  return select(vec4f(0.0), vec4f(a[o.x], a[o.y], a[o.z], a[o.w]), live);
}

// One run of `len` steps into the accumulators: op(B)'s rows r0 .. r0 + len - 1 (vec4 `col` of each).
fn run4v(acc: ptr<function, array<vec4f, 16>>, r: RunRows, r0: u32, len: u32, stride: i32, ix_step: i32, col: u32) {
  let row4s = params.b_k / 4u;
  for (var t = 0u; t < len; t += K_STEP) {
    if (K_STEP == 4u) {
      step4x4(acc, run_rows4(r, t, len, stride, ix_step), cols4v(col, quad(r0 + t, r0 + len, row4s)));
    } else {
      step4(acc, run_rows1(r, t, stride, ix_step), b4[(r0 + t) * row4s + col]);
    }
  }
}

fn run8v(acc: ptr<function, array<vec4f, 32>>, r: RunRows, r0: u32, len: u32, stride: i32, ix_step: i32, col: u32) {
  let row4s = params.b_k / 4u;
  for (var t = 0u; t < len; t += K_STEP) {
    if (K_STEP == 4u) {
      step8x4(acc, run_rows4(r, t, len, stride, ix_step), cols4v(col, quad(r0 + t, r0 + len, row4s)));
    } else {
      step8(acc, run_rows1(r, t, stride, ix_step), b4[(r0 + t) * row4s + col]);
    }
  }
}

// The forward's rows: output pixels m0 + s + lanes·i (clamped), as their first input row and column
// under the window and the offset of that pixel in x (channel 0; outside the image where padded).
struct Pixels { iy: vec4i, ix: vec4i, base: vec4i }

fn pixels_of(first: u32, lanes: u32) -> Pixels {
  let m = min(vec4u(first) + vec4u(0u, 1u, 2u, 3u) * lanes, vec4u(params.M - 1u));
  let ox = m % params.OW;
  let row = m / params.OW;
  let iy = vec4i((row % params.OH) * params.SH) - i32(params.PT);
  let ix = vec4i(ox * params.SW) - i32(params.PL);
  let base = ((vec4i(row / params.OH * params.H) + iy) * i32(params.W) + ix) * i32(params.C);
  return Pixels(iy, ix, base);
}

// The forward's run for tap (ky, kx): C channels of each row's pixel under it.
fn tap_rows(px: Pixels, ky: u32, kx: u32) -> RunRows {
  let ok = (vec4u(px.iy + i32(ky)) < vec4u(params.H)) & (vec4u(px.ix + i32(kx)) < vec4u(params.W));
  return RunRows(px.base + i32((ky * params.W + kx) * params.C), ok, vec4i(0));
}

// The filter gradient's rows: taps × channels k0 + s + lanes·i (clamped), as (ky, kx) and the offset
// (ky·W + kx)·C + c of the tap in x relative to the window's first pixel.
struct Taps { ky: vec4i, kx: vec4i, off: vec4i }

fn taps_of(first: u32, lanes: u32) -> Taps {
  let k = min(vec4u(first) + vec4u(0u, 1u, 2u, 3u) * lanes, vec4u(params.M - 1u));
  let tap = k / params.C;
  let kx = tap % params.KW;
  let ky = tap / params.KW;
  return Taps(vec4i(ky), vec4i(kx), vec4i((ky * params.W + kx) * params.C + k % params.C));
}

@compute @workgroup_size(WG, 1, 1)
fn conv_subgroup4v(@builtin(local_invocation_index) li: u32, @builtin(subgroup_invocation_id) s: u32, @builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let l = lane_of(4u, li, s, wid, nwg);
  let n0 = wid.x * 16u + 4u * s;
  let col = min(n0, params.N - 4u) / 4u;
  let px = pixels_of(l.m0 + s, 4u);
  var acc: array<vec4f, 16>;
  for (var ky = 0u; ky < params.KH; ky++) {
    for (var kx = 0u; kx < params.KW; kx++) {
      run4v(&acc, tap_rows(px, ky, kx), (ky * params.KW + kx) * params.C, params.C, 1, 0, col);
    }
  }
  let bias_v = bias4(n0, 1u);
  for (var i = 0u; i < 16u; i++) {
    store4(0u, l.m0 + i, n0, 1u, acc[i], bias_v);
  }
}

@compute @workgroup_size(WG, 1, 1)
fn conv_subgroup8v(@builtin(local_invocation_index) li: u32, @builtin(subgroup_invocation_id) s: u32, @builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let l = lane_of(8u, li, s, wid, nwg);
  let n0 = wid.x * 32u + 4u * s;
  let col = min(n0, params.N - 4u) / 4u;
  let px = pixels_of(l.m0 + s, 8u);
  var acc: array<vec4f, 32>;
  for (var ky = 0u; ky < params.KH; ky++) {
    for (var kx = 0u; kx < params.KW; kx++) {
      run8v(&acc, tap_rows(px, ky, kx), (ky * params.KW + kx) * params.C, params.C, 1, 0, col);
    }
  }
  let bias_v = bias4(n0, 1u);
  for (var i = 0u; i < 32u; i++) {
    store4(0u, l.m0 + i, n0, 1u, acc[i], bias_v);
  }
}

// Output pixel m as (ox, oy, item), and the first pixel of the next output row: the filter gradient
// divides once per chunk, not once per row (integer division is scalar per lane on CPU drivers).
fn first_pixel(m: u32) -> vec3u {
  let row = m / params.OW;
  return vec3u(m % params.OW, row % params.OH, row / params.OH);
}

fn next_row(px: vec3u) -> vec3u {
  if (px.y + 1u == params.OH) {
    return vec3u(0u, 0u, px.z + 1u);
  }
  return vec3u(0u, px.y + 1u, px.z);
}

// The filter gradient's run along output row px (from its pixel px.x): each row's tap under each pixel.
fn row_rows(taps: Taps, px: vec3u) -> RunRows {
  let y0 = i32(px.y * params.SH) - i32(params.PT);
  let x0 = i32(px.x * params.SW) - i32(params.PL);
  let first = ((i32(px.z * params.H) + y0) * i32(params.W) + x0) * i32(params.C);
  return RunRows(vec4i(first) + taps.off, vec4u(taps.ky + y0) < vec4u(params.H), taps.kx + x0);
}

// The filter gradient over output pixels [m, m_end) of a chunk, one output row at a time: in a row the
// lane's taps read x at a stride of SW·C, and a tap's column leaves the image where padded.
@compute @workgroup_size(WG, 1, 1)
fn conv_dw_subgroup4v(@builtin(local_invocation_index) li: u32, @builtin(subgroup_invocation_id) s: u32, @builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let l = lane_of(4u, li, s, wid, nwg);
  let n0 = wid.x * 16u + 4u * s;
  let col = min(n0, params.N - 4u) / 4u;
  let taps = taps_of(l.m0 + s, 4u);
  var acc: array<vec4f, 16>;
  let split = split_of(wid);
  let m_end = min(params.K, (split + 1u) * params.k_chunk);
  var m = split * params.k_chunk;
  var px = first_pixel(m);
  loop {
    if (m >= m_end) {
      break;
    }
    let len = min(m_end - m, params.OW - px.x);
    run4v(&acc, row_rows(taps, px), m, len, i32(params.SW * params.C), i32(params.SW), col);
    m += len;
    px = next_row(px);
  }
  let bias_v = bias4(n0, 1u);
  for (var i = 0u; i < 16u; i++) {
    store4(split, l.m0 + i, n0, 1u, acc[i], bias_v);
  }
}

@compute @workgroup_size(WG, 1, 1)
fn conv_dw_subgroup8v(@builtin(local_invocation_index) li: u32, @builtin(subgroup_invocation_id) s: u32, @builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let l = lane_of(8u, li, s, wid, nwg);
  let n0 = wid.x * 32u + 4u * s;
  let col = min(n0, params.N - 4u) / 4u;
  let taps = taps_of(l.m0 + s, 8u);
  var acc: array<vec4f, 32>;
  let split = split_of(wid);
  let m_end = min(params.K, (split + 1u) * params.k_chunk);
  var m = split * params.k_chunk;
  var px = first_pixel(m);
  loop {
    if (m >= m_end) {
      break;
    }
    let len = min(m_end - m, params.OW - px.x);
    run8v(&acc, row_rows(taps, px), m, len, i32(params.SW * params.C), i32(params.SW), col);
    m += len;
    px = next_row(px);
  }
  let bias_v = bias4(n0, 1u);
  for (var i = 0u; i < 32u; i++) {
    store4(split, l.m0 + i, n0, 1u, acc[i], bias_v);
  }
}

// dX of a stride-1 convolution is the forward product of dz with the filters transposed (F and C
// swapped) and their taps reversed, padded by KH - 1 - PT and KW - 1 - PL (src/kernels.ts, convGemmDx):
// flip_filters writes those filters, w (KH, KW, C, F) at a to (KH, KW, F, C) at c, one element per
// invocation (uniforms: KH, KW, C, and N = F).
@compute @workgroup_size(64, 1, 1)
fn flip_filters(@builtin(global_invocation_id) gid: vec3u) {
  let i = gid.x;
  let taps = params.KH * params.KW;
  if (i >= taps * params.C * params.N) {
    return;
  }
  let f = i % params.N;
  let ch = (i / params.N) % params.C;
  let tap = i / (params.N * params.C);
  c[((taps - 1u - tap) * params.N + f) * params.C + ch] = a[i];
}
