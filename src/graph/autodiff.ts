// Reverse mode over the graph: walks the nodes backwards applying each op's backward rule. Gradients are
// only computed where a trainable parameter lies upstream; where a tensor fans out, its first writer in
// the walk overwrites its gradient and every later one accumulates (llm.c's +=), so sums cost no pass.
import type { Node, SymbolicTensor } from "./graph.ts";
import { OPS } from "./ops.ts";

/** Where one input's gradient goes: the tensor whose gradient it is, and whether to add to what is there. */
export interface GradRef {
  tensor: SymbolicTensor;
  accumulate: boolean;
}

export type BackwardStep =
  /** The op's backward rule, writing the gradients of the inputs that need one. */
  | { kind: "backward"; node: Node; dx: (GradRef | undefined)[] }
  /** dy passed to an input as it is (add, reshape) where the buffer cannot be shared. */
  | { kind: "copy"; node: Node; from: SymbolicTensor; to: GradRef };

export interface Backward {
  steps: BackwardStep[];
  /** Tensors that have a gradient; each maps to the tensor whose gradient buffer it shares (often itself). */
  gradOf: Map<SymbolicTensor, SymbolicTensor>;
  /** Uses of each tensor by the graph's nodes (a node using a tensor twice counts twice). */
  uses: Map<SymbolicTensor, number>;
}

/** Union-find over tensors: two tensors in one class share one buffer. */
export class Classes {
  private readonly parent = new Map<SymbolicTensor, SymbolicTensor>();
  find(t: SymbolicTensor): SymbolicTensor {
    let p = this.parent.get(t) ?? t;
    if (p !== t) {
      p = this.find(p);
      this.parent.set(t, p);
    }
    return p;
  }
  union(a: SymbolicTensor, into: SymbolicTensor): void {
    const ra = this.find(a);
    const rb = this.find(into);
    if (ra !== rb) this.parent.set(ra, rb);
  }
}

/** Whether each tensor needs a gradient: a trainable parameter, or computed from one. */
export function requiringGrad(nodes: readonly Node[]): Set<SymbolicTensor> {
  const needs = new Set<SymbolicTensor>();
  for (const n of nodes) {
    const rule = OPS[n.kind];
    n.inputs.forEach((t, i) => {
      if (t.role === "param" && t.owner?.trainable !== false) needs.add(t);
      if (needs.has(t) && !rule.noGrad?.includes(i)) needs.add(n.output);
    });
  }
  return needs;
}

/** The backward steps for `nodes` (in topological order) whose output's gradient the loss writes. */
export function backward(nodes: readonly Node[], output: SymbolicTensor): Backward {
  const needs = requiringGrad(nodes);
  const uses = new Map<SymbolicTensor, number>();
  for (const n of nodes) for (const t of n.inputs) uses.set(t, (uses.get(t) ?? 0) + 1);
  const classes = new Classes();
  const written = new Set<SymbolicTensor>([output]);
  const has = new Set<SymbolicTensor>([output]);
  const steps: BackwardStep[] = [];
  const ref = (t: SymbolicTensor): GradRef => {
    const root = classes.find(t);
    const r = { tensor: t, accumulate: written.has(root) };
    written.add(root);
    has.add(t);
    return r;
  };
  for (const n of [...nodes].reverse()) {
    if (!has.has(n.output) || !needs.has(n.output)) continue;
    const rule = OPS[n.kind];
    const wants = n.inputs.map((t, i) => needs.has(t) && !rule.noGrad?.includes(i));
    if (rule.passGrad) {
      n.inputs.forEach((t, i) => {
        if (!wants[i]) return;
        // The input's gradient is dy itself: share the buffer when nobody else writes it.
        if (t.role === "activation" && uses.get(t) === 1 && !written.has(classes.find(t))) {
          classes.union(t, n.output);
          has.add(t);
        } else steps.push({ kind: "copy", node: n, from: n.output, to: ref(t) });
      });
      continue;
    }
    if (wants.some(Boolean)) steps.push({ kind: "backward", node: n, dx: n.inputs.map((t, i) => (wants[i] ? ref(t) : undefined)) });
  }
  const gradOf = new Map<SymbolicTensor, SymbolicTensor>();
  for (const t of has) gradOf.set(t, classes.find(t));
  return { steps, gradOf, uses };
}
