// lib/index.wgsl — index helpers. Element-wise kernels run on a 2-D grid of 1-D workgroups so that
// more than 65535 workgroups' worth of elements can be covered; this folds the grid back to one index.

fn linear_index(gid: vec3u, num_workgroups: vec3u, wg_x: u32) -> u32 {
  return gid.x + gid.y * num_workgroups.x * wg_x;
}
