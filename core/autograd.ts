// The autograd engine. The graph lives on the outputs (each result tensor keeps a Node: its op name, inputs and
// backward closure); there is no global tape. backward() sorts the graph topologically from the root and runs each
// node's closure once, summing gradients where a tensor fans out. Every gradient a closure returns must have its
// input's shape; a mismatch (a forgotten un-broadcast) fails where it happens, naming the op.

import { AutogradError, fmtShape } from './errors.js';
import { sameShape } from './shape.js';
import type { Tensor } from './tensor.js';

/** Gradient rule of one recorded op: given the output gradient, the gradient of each input (null = none). */
export type BackwardFn = (grad: Tensor, needs: readonly boolean[]) => ReadonlyArray<Tensor | null>;

export interface Node {
  readonly op: string;
  readonly inputs: readonly Tensor[];
  readonly backward: BackwardFn;
}

let gradEnabled = true;

export const isGradEnabled = (): boolean => gradEnabled;

/** Run fn without recording any graph (inference, parameter updates, running statistics). */
export function noGrad<T>(fn: () => T): T {
  const prev = gradEnabled;
  gradEnabled = false;
  try {
    return fn();
  } finally {
    gradEnabled = prev;
  }
}

/** Attach a node to out when recording is on and some input requires grad. Returns out. */
/** Whether an op on these inputs records a node (grad mode on and an input requiring grad): else it may skip saving what only its backward reads. */
export const willRecord = (inputs: readonly Tensor[]): boolean => gradEnabled && inputs.some((t) => t.requiresGrad);

export function record(op: string, out: Tensor, inputs: readonly Tensor[], backward: BackwardFn): Tensor {
  if (willRecord(inputs)) {
    out.requiresGrad = true;
    out.node = { op, inputs, backward };
  }
  return out;
}

/** Nodes reachable from root, each after every node that consumes it (reverse topological order). */
function topoOrder(root: Tensor): Tensor[] {
  const order: Tensor[] = [];
  const seen = new Set<Tensor>();
  const stack: Array<[Tensor, number]> = [[root, 0]];
  seen.add(root);
  while (stack.length > 0) {
    const top = stack[stack.length - 1];
    const [t, i] = top;
    const inputs = t.node?.inputs ?? [];
    if (i < inputs.length) {
      top[1]++;
      const child = inputs[i];
      if (child.requiresGrad && !seen.has(child)) {
        seen.add(child);
        stack.push([child, 0]);
      }
    } else {
      stack.pop();
      order.push(t);
    }
  }
  return order.reverse();
}

export interface BackwardOptions {
  /** Record the backward computation itself, so gradients can be differentiated again. */
  createGraph?: boolean;
}

/** Backpropagate from root with the given upstream gradient, accumulating into leaf .grad. */
export function runBackward(root: Tensor, grad: Tensor, opts: BackwardOptions = {}): void {
  if (!root.requiresGrad) {
    throw new AutogradError(`backward: the tensor of shape ${fmtShape(root.shape)} does not require grad`);
  }
  if (!sameShape(grad.shape, root.shape)) {
    throw new AutogradError(
      `backward: gradient of shape ${fmtShape(grad.shape)} given for a tensor of shape ${fmtShape(root.shape)}`,
    );
  }
  const run = () => {
    const grads = new Map<Tensor, Tensor>([[root, grad]]);
    for (const t of topoOrder(root)) {
      const g = grads.get(t);
      if (g === undefined) continue;
      grads.delete(t);
      if (t.node === null) {
        // A leaf owns its gradient: never an alias of another tensor's storage (add passes g to both inputs).
        t.grad = t.grad === null ? g.clone() : t.grad.add(g);
        continue;
      }
      const { op, inputs, backward } = t.node;
      const needs = inputs.map((x) => x.requiresGrad);
      const gs = backward(g, needs);
      inputs.forEach((x, i) => {
        const gi = gs[i];
        if (!needs[i] || gi === null || gi === undefined) return;
        if (!sameShape(gi.shape, x.shape)) {
          throw new AutogradError(
            `${op} backward: gradient for input ${i} has shape ${fmtShape(gi.shape)} but the input has shape ${fmtShape(x.shape)}`,
          );
        }
        const prev = grads.get(x);
        grads.set(x, prev === undefined ? gi : prev.add(gi));
      });
    }
  };
  if (opts.createGraph) run();
  else noGrad(run);
}
