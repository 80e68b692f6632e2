// Graph rewrites a plan applies before it schedules: a node pattern replaced by one fused op that
// computes the same output with fewer passes over memory. The model's graph is left as it is (layers,
// summaries and the unpacked diagnostic plan still see every tensor); only the plan's node list changes.
// The fused ops' rules live here, beside the rewrite that makes their nodes, and are installed in the op
// table when this module loads (the core loads it on first use, src/plan/plan.ts).
import { planWindow } from "../geometry.ts";
import { convPoolArgmaxSize, convPoolBackward, convPoolForward, convPoolPartials, convPoolUnfit, type ConvPoolGeom } from "../kernels/conv_pool.ts";
import { requiringGrad } from "./autodiff.ts";
import type { Node, SymbolicTensor } from "./graph.ts";
import { OPS, window, type OpConfigs, type OpRule, type Shape } from "./ops.ts";

/** The convolution's and the pooling's windows of a convPool node, at batch B. */
function geomOf(c: OpConfigs["convPool"], inShapes: readonly Shape[], B: number, where: string): ConvPoolGeom {
  const conv = window(c.conv, inShapes[0]!, B, where);
  const F = inShapes[1]!.at(-1)!;
  return { conv, pool: window(c.pool, [conv.OH, conv.OW, F], B, where), F };
}

/** maxPool(act(conv(x) + b)) in one pass; x gets no gradient (the rewrite fuses only where none is needed). */
const convPool: OpRule<"convPool"> = {
  shape: (c, inShapes, where) => {
    const g = geomOf(c, inShapes, 1, where);
    return [g.pool.OH, g.pool.OW, g.F];
  },
  noGrad: [0],
  keeps: (_c, needs) => ({ inputs: needs.some(Boolean) ? [0] : [], output: needs.some(Boolean) }),
  // Only a training pass writes argmax (the backward pass reads it).
  saved: (c, a): Record<string, number> => (a.training ? { argmax: convPoolArgmaxSize(geomOf(c, a.inShapes, a.B, "convPool")) } : {}),
  scratch: (c, a, pass): Record<string, number> => {
    if (pass === "forward") return {};
    const { dw, db } = convPoolPartials(geomOf(c, a.inShapes, a.B, "convPool"));
    return { dwPartials: dw, dbPartials: db };
  },
  forward: async (ctx, c, io) => {
    const g = geomOf(c, io.inShapes, io.B, io.label);
    const [x, w, b] = io.x;
    return [await convPoolForward(ctx, { x: x!, w: w!, bias: c.bias ? b : undefined, y: io.y, argmax: io.training ? io.saved("argmax") : undefined }, g, c.act, `${io.label} forward`)];
  },
  backward: async (ctx, c, io) => {
    const [, dw, db] = io.dx;
    if (!dw && !db) return [];
    const g = geomOf(c, io.inShapes, io.B, io.label);
    const buffers = { x: io.x[0]!, y: io.y, argmax: io.saved("argmax"), dy: io.dy, dwPartials: io.scratch("dwPartials"), dbPartials: io.scratch("dbPartials"), dw, db };
    return convPoolBackward(ctx, buffers, g, c.act, io.label);
  },
};
OPS.convPool = convPool;

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
      label: `${product.owner.name}+${pool.label}`,
    };
    replaced.set(cols, null).set(product, null).set(pool, fused);
  }
  if (replaced.size === 0) return [...nodes];
  return nodes.flatMap((n) => {
    const r = replaced.get(n);
    return r === undefined ? [n] : r ? [r] : [];
  });
}
