// Graph rewrites a plan applies before it schedules: a node pattern replaced by one fused op that
// computes the same output with fewer passes over memory. The model's graph is left as it is (layers,
// summaries and the unpacked diagnostic plan still see every tensor); only the plan's node list changes.
import { planWindow } from "../geometry.ts";
import { convPoolUnfit } from "../kernels/conv_pool.ts";
import { requiringGrad } from "./autodiff.ts";
import type { Node, SymbolicTensor } from "./graph.ts";

let fusedIds = 1_000_000_000;

/**
 * Convolution (im2col → matmul with its bias and activation) followed by max pooling, as one convPool
 * node, where the result is the same and cheaper: nothing else reads the convolution's output or its
 * columns, nothing needs the gradient of its input (a first layer: conv_pool.wgsl computes the filter
 * and bias gradients only), and the kernel holds the shapes (convPoolUnfit). The fused node writes the
 * pooling node's output tensor, so every consumer downstream is unchanged.
 */
export function fuseConvPool(nodes: readonly Node[], outputs: readonly SymbolicTensor[], B: number): Node[] {
  const uses = new Map<SymbolicTensor, number>();
  for (const n of nodes) for (const t of n.inputs) uses.set(t, (uses.get(t) ?? 0) + 1);
  for (const t of outputs) uses.set(t, (uses.get(t) ?? 0) + 1);
  const needsGrad = requiringGrad(nodes);
  const consumer = new Map<SymbolicTensor, Node>();
  for (const n of nodes) for (const t of n.inputs) consumer.set(t, n);
  const replaced = new Map<Node, Node | null>();
  for (const cols of nodes) {
    if (cols.kind !== "im2col" || needsGrad.has(cols.inputs[0]!)) continue;
    const product = consumer.get(cols.output);
    const pool = product && consumer.get(product.output);
    if (!product || product.kind !== "matmul" || product.inputs[0] !== cols.output || !pool || pool.kind !== "maxPool") continue;
    if (uses.get(cols.output) !== 1 || uses.get(product.output) !== 1 || product.output.softmax) continue;
    const conv = cols.config as Node<"im2col">["config"];
    const { act, bias } = product.config as Node<"matmul">["config"];
    const window = pool.config as Node<"maxPool">["config"];
    const [H, W, C] = cols.inputs[0]!.shape as [number, number, number];
    const F = product.output.shape.at(-1)!;
    const convPlan = planWindow({ B, H, W, C, ...conv }, cols.label);
    const poolPlan = planWindow({ B, H: convPlan.OH, W: convPlan.OW, C: F, ...window }, pool.label);
    if (convPoolUnfit({ conv: convPlan, pool: poolPlan, F })) continue;
    const fused: Node<"convPool"> = {
      id: ++fusedIds,
      kind: "convPool",
      config: { conv, pool: window, act, bias },
      inputs: [cols.inputs[0]!, ...product.inputs.slice(1)],
      output: pool.output,
      owner: product.owner,
      label: `${product.owner.name} + ${pool.label}`,
    };
    replaced.set(cols, null).set(product, null).set(pool, fused);
  }
  if (replaced.size === 0) return [...nodes];
  return nodes.flatMap((n) => {
    const r = replaced.get(n);
    return r === undefined ? [n] : r ? [r] : [];
  });
}
