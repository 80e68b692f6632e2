// Graph rewrites a plan applies before it schedules: a node pattern replaced by one fused op that
// computes the same output with fewer passes over memory. The model's graph is left as it is (layers,
// summaries and the unpacked diagnostic plan still see every tensor); only the plan's node list changes.
// The fused ops' rules live here, beside the rewrite that makes their nodes, and are installed in the op
// table when this module loads (the core loads it on first use, src/plan/plan.ts).
import { planWindow, type WindowPlan } from "../geometry.ts";
import * as K from "../kernels.ts";
import * as CG from "../kernels/conv_gemm.ts";
import { convPoolArgmaxSize, convPoolBackward, convPoolForward, convPoolPartials, convPoolUnfit, type ConvPoolGeom } from "../kernels/conv_pool.ts";
import { requiringGrad } from "./autodiff.ts";
import type { Node, SymbolicTensor } from "./graph.ts";
import { activationAndBias, activationAndBiasScratch, dwSplits, OPS, window, type OpConfigs, type OpRule, type Shape } from "./ops.ts";

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

/**
 * The filter gradient reads x through the implicit GEMM where output rows are long enough: it walks a
 * chunk one output row at a time, at a cost of about one 4-step per row. SwiftShader, the residual
 * network's 3×3 layers at batch 64: rows of 14 and 7 pixels ran it 1.4–2× faster than im2col and the
 * product, rows of 4 pixels 1.7× slower; there it takes im2col (into scratch) and the product.
 */
const implicitDw = (p: WindowPlan) => p.OW >= 7;

/**
 * dX reads dz through the implicit GEMM where the stride is 1 and C a multiple of 4: it is then the
 * forward product of dz with the filters transposed and their taps reversed (CG.convGemmDx), with no
 * columns and no col2im. SwiftShader, the residual network's stride-1 layers at batch 64: 1.2–1.9×
 * faster than the product into columns and col2im (lavapipe 2–2.5×). Strided layers keep those.
 */
const implicitDx = (ctx: K.KernelContext, p: WindowPlan) => p.SH === 1 && p.SW === 1 && K.implicitConvFits(ctx, p.C);

/** act(conv(x) + b) as an implicit GEMM: the forward never writes im2col's columns, nor keeps them for the backward pass. */
const convGemm: OpRule<"convGemm"> = {
  shape: (c, [s, w], where) => {
    const p = window(c.conv, s!, 1, where);
    return [p.OH, p.OW, w!.at(-1)!];
  },
  keeps: (c, needs) => ({ inputs: needs[1] ? [0] : [], output: c.act !== "linear" }),
  scratch: (c, a, pass): Record<string, number> => {
    if (pass === "forward") return {};
    const p = window(c.conv, a.inShapes[0]!, a.B, "convGemm");
    const F = a.outShape.at(-1)!;
    const [R, KC] = [p.B * p.OH * p.OW, p.KH * p.KW * p.C];
    const splits = a.needs[1] ? dwSplits(a.ctx, KC, F, R) : 1;
    // One buffer of columns: im2col's for the filter gradient where it is not implicit, then dX's where it is not.
    const columns = (a.needs[1] && !implicitDw(p)) || (a.needs[0] && !implicitDx(a.ctx, p)) ? R * KC : 0;
    const flipped = a.needs[0] && implicitDx(a.ctx, p) ? KC * F : 0;
    return { ...activationAndBiasScratch(a.ctx, c.act, c.bias, R, F), partials: splits > 1 ? splits * KC * F : 0, columns, flipped };
  },
  forward: async (ctx, c, io) => {
    const p = window(c.conv, io.inShapes[0]!, io.B, io.label);
    const [x, w, b] = io.x;
    return [await CG.convGemm(ctx, x!, w!, io.y, p, io.outShape.at(-1)!, { bias: c.bias ? b : undefined, act: c.act }, `${io.label} forward`)];
  },
  backward: async (ctx, c, io) => {
    const p = window(c.conv, io.inShapes[0]!, io.B, io.label);
    const F = io.outShape.at(-1)!;
    const [R, KC] = [p.B * p.OH * p.OW, p.KH * p.KW * p.C];
    const [dx, dw, db] = io.dx;
    const { dz, out } = await activationAndBias(ctx, c.act, io, c.bias ? db : undefined, R, F);
    if (dw) {
      const splits = dwSplits(ctx, KC, F, R);
      const partials = splits > 1 ? io.scratch("partials") : ctx.kernels.placeholderOut;
      if (implicitDw(p)) out.push(...(await CG.convGemmDw(ctx, io.x[0]!, dz, dw.buffer, partials, p, F, splits, dw.accumulate, `${io.label} dW`)));
      else {
        out.push(await K.im2col(ctx, io.x[0]!, io.scratch("columns"), p, `${io.label} im2col`));
        out.push(...(await K.matmulSplitK(ctx, io.scratch("columns"), dz, dw.buffer, partials, { M: KC, N: F, K: R, transA: true, accumulate: dw.accumulate }, splits, `${io.label} dW`)));
      }
    }
    if (dx && implicitDx(ctx, p)) {
      out.push(await CG.flipFilters(ctx, io.x[1]!, io.scratch("flipped"), p, F, `${io.label} flip filters`));
      out.push(await CG.convGemmDx(ctx, dz, io.scratch("flipped"), dx.buffer, p, F, dx.accumulate, `${io.label} dX`));
    } else if (dx) {
      out.push(await K.matmul(ctx, dz, io.x[1]!, io.scratch("columns"), { M: R, N: KC, K: F, transB: true }, `${io.label} dX`));
      out.push(await K.col2im(ctx, io.scratch("columns"), dx.buffer, p, `${io.label} col2im`, dx.accumulate));
    }
    return out;
  },
};
OPS.convGemm = convGemm;

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

/**
 * Convolution (im2col → matmul with its bias and activation) as one convGemm node where the engine's
 * matmul has the implicit-GEMM kernels (K.implicitConvFits: a subgroup variant, the vec4 kernels, F a
 * multiple of 4) and nothing but the product reads the columns. The node writes the product's output
 * tensor, so every consumer downstream is unchanged.
 */
export function fuseConvGemm(nodes: readonly Node[], ctx: K.KernelContext): Node[] {
  const uses = new Map<SymbolicTensor, number>();
  for (const n of nodes) for (const t of n.inputs) uses.set(t, (uses.get(t) ?? 0) + 1);
  const consumer = new Map<SymbolicTensor, Node>();
  for (const n of nodes) for (const t of n.inputs) consumer.set(t, n);
  const replaced = new Map<Node, Node | null>();
  for (const cols of nodes) {
    if (cols.kind !== "im2col") continue;
    const product = consumer.get(cols.output);
    if (!product || product.kind !== "matmul" || product.inputs[0] !== cols.output || uses.get(cols.output) !== 1) continue;
    if (!K.implicitConvFits(ctx, product.output.shape.at(-1)!)) continue;
    const { act, bias } = product.config as Node<"matmul">["config"];
    const fused: Node<"convGemm"> = {
      id: ++fusedIds,
      kind: "convGemm",
      config: { conv: cols.config as Node<"im2col">["config"], act, bias },
      inputs: [cols.inputs[0]!, ...product.inputs.slice(1)],
      output: product.output,
      owner: product.owner,
      label: product.owner.name,
    };
    replaced.set(cols, null).set(product, fused);
  }
  if (replaced.size === 0) return [...nodes];
  return nodes.flatMap((n) => {
    const r = replaced.get(n);
    return r === undefined ? [n] : r ? [r] : [];
  });
}
