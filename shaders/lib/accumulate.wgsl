// lib/accumulate.wgsl — the loss kernels' end: a single workgroup sums each invocation's
// (loss, correct) through workgroup memory and adds the totals and `count` to metrics[0..2]. count is
// whatever the loss sum and correct are totals over (rows for softmax_xent, elements for loss.wgsl),
// so that loss sum / count and correct / count are the reported loss and accuracy.
// The kernel declares `metrics` (read_write storage) and the override WG.

var<workgroup> part_loss: array<f32, WG>;
var<workgroup> part_correct: array<f32, WG>;

fn accumulate_metrics(lid: u32, acc: vec2f, count: f32) {
  part_loss[lid] = acc.x;
  part_correct[lid] = acc.y;
  // One barrier, then one invocation adds the WG partials: a tree of barriers in a loop costs CPU
  // drivers far more to compile (lavapipe: ~150 ms more) than 2·WG additions cost to run anywhere.
  workgroupBarrier();
  if (lid == 0u) {
    var loss_sum = 0.0;
    var correct = 0.0;
    for (var i = 0u; i < WG; i++) {
      loss_sum += part_loss[i];
      correct += part_correct[i];
    }
    metrics[0] += loss_sum;
    metrics[1] += correct;
    metrics[2] += count;
  }
}
