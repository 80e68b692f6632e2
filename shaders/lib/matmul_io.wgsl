// lib/matmul_io.wgsl — what every matmul entry point shares (matmul.wgsl, matmul_subgroup.wgsl): the
// parameters, the bindings, the split-K and row-fold geometry, and the epilogue (bias, activation,
// ACCUMULATE). See matmul.wgsl for the layout and the meaning of each parameter.

struct Params {
  M: u32,
  N: u32,
  K: u32,
  k_chunk: u32,
  splits: u32,
  a_m: u32,
  a_k: u32,
  b_k: u32,
  b_n: u32,
  has_bias: u32,
  act: u32,
  // The convolution of matmul_subgroup.wgsl's implicit-GEMM entries (conv_*; zero for a matmul): input
  // (H, W, C) per item, window, strides, padding before, output size.
  H: u32, W: u32, C: u32,
  KH: u32, KW: u32, SH: u32, SW: u32,
  PT: u32, PL: u32, OH: u32, OW: u32,
}

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read_write> a: array<f32>;
@group(0) @binding(2) var<storage, read_write> b: array<f32>;
@group(0) @binding(3) var<storage, read_write> bias: array<f32>;
@group(0) @binding(4) var<storage, read_write> c: array<f32>;

override ACCUMULATE: bool = false;

// A product with more row blocks than one grid dimension allows is folded: grid z holds splits · folds
// workgroups, z = fold · splits + split, and the workgroup's row block is y + fold · (grid height).
fn split_of(wid: vec3u) -> u32 {
  return wid.z % params.splits;
}

fn row_block(wid: vec3u, nwg: vec3u) -> u32 {
  return wid.y + (wid.z / params.splits) * nwg.y;
}

// Out-of-range rows and columns read a clamped (valid) element; their results are never stored.
fn load_a(m: u32, k: u32) -> f32 {
  return a[min(m, params.M - 1u) * params.a_m + k * params.a_k];
}

fn load_b(k: u32, n: u32) -> f32 {
  return b[k * params.b_k + min(n, params.N - 1u) * params.b_n];
}

// The bias of the 4 columns n0 + j·stride (clamped; zero without a bias), loaded once per column group
// rather than once per output: CPU drivers pay per load.
fn bias4(n0: u32, stride: u32) -> vec4f {
  if (params.has_bias == 0u) {
    return vec4f(0.0);
  }
  let cols = min(vec4u(n0) + vec4u(0u, 1u, 2u, 3u) * stride, vec4u(params.N - 1u));
  return vec4f(bias[cols.x], bias[cols.y], bias[cols.z], bias[cols.w]);
}

// Stores four outputs of row m at columns n0 + j·stride, with their bias (bias4) and the activation
// applied; split z writes its partial at offset z·M·N. All four in range (the common case) take one
// branch, not one per output: on CPU drivers the per-output branches of the epilogue cost a product with
// a short K (a convolution's, K = 9) more than its FMAs.
fn store4(z: u32, m: u32, n0: u32, stride: u32, v: vec4f, bias_v: vec4f) {
  if (m >= params.M) {
    return;
  }
  let base = z * params.M * params.N + m * params.N;
  let x = activate4(params.act, v + bias_v);
  if (n0 + 3u * stride < params.N) {
    let i = vec4u(base + n0) + vec4u(0u, 1u, 2u, 3u) * stride;
    if (ACCUMULATE) {
      c[i.x] += x.x;
      c[i.y] += x.y;
      c[i.z] += x.z;
      c[i.w] += x.w;
    } else {
      c[i.x] = x.x;
      c[i.y] = x.y;
      c[i.z] = x.z;
      c[i.w] = x.w;
    }
    return;
  }
  for (var j = 0u; j < 4u; j++) {
    let n = n0 + j * stride;
    if (n < params.N) {
      if (ACCUMULATE) {
        c[base + n] += x[j];
      } else {
        c[base + n] = x[j];
      }
    }
  }
}
