// lib/index.wgsl — index helpers. Element-wise kernels run on a 2-D grid of 1-D workgroups so that
// more than 65535 workgroups' worth of elements can be covered; this folds the grid back to one index.

fn linear_index(gid: vec3u, num_workgroups: vec3u, wg_x: u32) -> u32 {
  return gid.x + gid.y * num_workgroups.x * wg_x;
}

// Element-wise kernels give each invocation ELEMENTS elements, WG apart: a loop of constant trip count,
// which CPU drivers unroll, since an invocation of its own costs them about as much as a few loads
// (lavapipe, ReLU over 602,112 elements: 3.2–4.1 ms at one element per invocation, 1.5–2.1 at four).
// Such a kernel is dispatched with grid1d(n, WG · ELEMENTS) (src/kernels.ts's ELEMENTS is the same).
// Unrolling costs compile time at the first dispatch: kernels with a long body (SGD, Adam) bound the
// loop so that it is not unrolled (see optimizer.wgsl).
const ELEMENTS = 4u;

// The invocation's j-th element (j < ELEMENTS) on a 2-D grid of wg-wide workgroups.
fn element(lid: vec3u, wid: vec3u, nwg: vec3u, wg: u32, j: u32) -> u32 {
  return ((wid.x + wid.y * nwg.x) * ELEMENTS + j) * wg + lid.x;
}
