// lib/accumulate.wgsl — the loss kernels' end: a single workgroup reduces each invocation's
// (loss, correct) in workgroup memory and adds the totals and an example count to metrics[0..2].
// The kernel declares `metrics` (read_write storage) and the override WG (a power of two).

var<workgroup> part_loss: array<f32, WG>;
var<workgroup> part_correct: array<f32, WG>;

fn accumulate_metrics(lid: u32, acc: vec2f, count: f32) {
  part_loss[lid] = acc.x;
  part_correct[lid] = acc.y;
  workgroupBarrier();
  for (var stride = WG / 2u; stride > 0u; stride /= 2u) {
    if (lid < stride) {
      part_loss[lid] += part_loss[lid + stride];
      part_correct[lid] += part_correct[lid + stride];
    }
    workgroupBarrier();
  }
  if (lid == 0u) {
    metrics[0] += part_loss[0];
    metrics[1] += part_correct[0];
    metrics[2] += count;
  }
}
