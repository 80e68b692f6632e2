// The graph IR: symbolic tensors (static per-example shapes) produced by op nodes. A model is the set of
// nodes between its inputs and its outputs, in topological order; nothing here touches the GPU.
import { shown } from "../args.ts";
import { ConfigError } from "../errors.ts";
import { OPS, type BackwardIo, type ForwardIo, type OpConfigs, type OpKind, type OpRule, type Shape, type SizeArgs } from "./ops.ts";
import type { Dispatch } from "../gpu/registry.ts";
import type { KernelContext } from "../kernels.ts";

export type { Shape };

/**
 * What a tensor is: a model input (gathered per batch), a trainable or frozen parameter (in the
 * parameter arena), non-trainable state such as BatchNorm's moving statistics (in the state arena), or
 * an activation computed by a node.
 */
export type TensorRole = "input" | "param" | "state" | "activation";

let tensorIds = 0;
let nodeIds = 0;

export class SymbolicTensor {
  readonly id = ++tensorIds;
  constructor(
    /** Per example for inputs and activations; the whole tensor for parameters and state. */
    readonly shape: Shape,
    readonly role: TensorRole,
    readonly name: string,
    /** The node that computes it (activations only). */
    readonly node?: Node,
    /** For parameters and state: the weight it holds. */
    readonly weight?: WeightSpec,
    /** For parameters and state: the layer that owns it (frozen when that layer is not trainable). */
    readonly owner?: Owner,
  ) {}

  /** The output of a layer with a softmax activation: the loss or predict's softmax pass applies it. */
  softmax = false;

  /** Elements per example (activations, inputs) or in all (parameters, state). */
  get size(): number {
    return this.shape.reduce((a, b) => a * b, 1);
  }
}

/** A weight a layer owns: its role name (Keras's: kernel, bias, gamma, beta, moving_mean, ...), shape and initialiser. */
export interface WeightSpec {
  role: string;
  shape: number[];
  init: { kind: "glorotUniform"; fanIn: number; fanOut: number } | { kind: "zeros" } | { kind: "ones" };
  /** L2 coefficient (Keras kernelRegularizer). */
  l2: number;
  /** State is updated by the forward pass (moving statistics), never by the optimizer. */
  state?: true;
  /** Set once the owning layer is built: "layer/role". */
  name?: string;
}

/** The layer behind a node or weight, as far as the graph needs to know it. */
export interface Owner {
  readonly name: string;
  readonly kind: string;
  trainable: boolean;
}

/** One op application: inputs (activations, then the op's parameters and state) to one output. */
export interface Node<K extends OpKind = OpKind> {
  readonly id: number;
  readonly kind: K;
  readonly config: OpConfigs[K];
  readonly inputs: readonly SymbolicTensor[];
  readonly output: SymbolicTensor;
  /** The layer that emitted it. */
  readonly owner: Owner;
  /** The layer's name, with the op kind when the layer emitted several ops: for labels and errors. */
  readonly label: string;
}

export function makeNode<K extends OpKind>(kind: K, config: OpConfigs[K], inputs: readonly SymbolicTensor[], outShape: Shape, owner: Owner, label: string): Node<K> {
  const node: { -readonly [P in keyof Node<K>]: Node<K>[P] } = { id: ++nodeIds, kind, config, inputs, output: undefined as never, owner, label };
  node.output = new SymbolicTensor(outShape, "activation", label, node);
  return node;
}

/** A model input: `Input({ shape: [28, 28, 1] })`. */
export function Input(o: { shape: number[]; name?: string }): SymbolicTensor {
  if (typeof o !== "object" || o === null || Array.isArray(o)) throw new ConfigError(`Input takes { shape, name? }, e.g. Input({ shape: [28, 28, 1] }), got ${shown(o)}`);
  if (!Array.isArray(o?.shape) || o.shape.length === 0 || o.shape.some((d) => !Number.isInteger(d) || d < 1)) {
    throw new ConfigError(`Input: shape must be a non-empty list of positive integers (one example, no batch dimension), got ${shown(o?.shape)}`);
  }
  if (o.name !== undefined && (typeof o.name !== "string" || o.name === "")) throw new ConfigError(`Input: name must be a non-empty string, got ${shown(o.name)}`);
  return new SymbolicTensor([...o.shape], "input", o.name ?? `input_${tensorIds + 1}`);
}

/** The nodes that compute `outputs` from `inputs`, in topological order (inputs first). */
export function topologicalNodes(inputs: readonly SymbolicTensor[], outputs: readonly SymbolicTensor[]): Node[] {
  const order: Node[] = [];
  const state = new Map<Node, "visiting" | "done">();
  const given = new Set(inputs);
  const visit = (t: SymbolicTensor) => {
    if (t.role === "input" && !given.has(t)) throw new ConfigError(`the model's outputs depend on input "${t.name}", which is not among its inputs`);
    const n = t.node;
    if (!n || state.get(n) === "done") return;
    if (state.get(n) === "visiting") throw new ConfigError(`the graph has a cycle through ${n.label}`);
    state.set(n, "visiting");
    for (const i of n.inputs) visit(i);
    state.set(n, "done");
    order.push(n);
  };
  for (const o of outputs) visit(o);
  return order;
}

/** A node's rule with its config bound: the one place an op's kind and config meet, typed together. */
export interface BoundOp {
  alias(training: boolean): boolean;
  keeps(needs: readonly boolean[]): { inputs: readonly number[]; output: boolean };
  saved(a: SizeArgs): Record<string, number>;
  scratch(a: SizeArgs, pass: "forward" | "backward"): Record<string, number>;
  forward(ctx: KernelContext, io: ForwardIo): Promise<Dispatch[]>;
  backward(ctx: KernelContext, io: BackwardIo): Promise<Dispatch[]>;
}

export function opOf<K extends OpKind>(n: Node<K>): BoundOp {
  const rule: OpRule<K> = OPS[n.kind];
  const c = n.config;
  return {
    alias: (training) => rule.alias?.(c, training) ?? false,
    keeps: (needs) => rule.keeps(c, needs),
    saved: (a) => rule.saved?.(c, a) ?? {},
    scratch: (a, pass) => rule.scratch?.(c, a, pass) ?? {},
    forward: (ctx, io) => rule.forward(ctx, c, io),
    backward: (ctx, io) => rule.backward(ctx, c, io),
  };
}
