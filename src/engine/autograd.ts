// Reverse-mode autodiff on a tape that exists only where it is needed: an op records a node when gradients are
// enabled and one of its inputs requires grad. Each op states its backward next to its forward, as a closure that
// maps the output gradient to one gradient per input (null where the input needs none).
import type { Tensor } from './tensor.ts';

export type BackwardFn = (gy: Tensor) => (Tensor | null)[];

export interface GradNode {
  op: string;
  inputs: Tensor[];
  backward: BackwardFn;
}

/**
 * Attaches `backward` to `output` if anything upstream wants a gradient; returns `output` so ops can end with
 * `return record('relu', [x], y, (gy) => [...])`.
 */
export function record(op: string, inputs: Tensor[], output: Tensor, backward: BackwardFn): Tensor {
  if (!output.engine.gradEnabled) return output;
  if (!inputs.some((t) => t.requiresGrad)) return output;
  output.requiresGrad = true;
  output.node = { op, inputs, backward };
  return output;
}

/** Nodes reachable from `root`, each after every node that consumes its output (reverse topological order). */
export function reverseTopological(root: Tensor): Tensor[] {
  const order: Tensor[] = [];
  const seen = new Set<Tensor>();
  // Iterative DFS: model graphs (unrolled recurrences) can be deeper than the JS stack.
  const stack: [Tensor, number][] = [[root, 0]];
  seen.add(root);
  while (stack.length > 0) {
    const top = stack[stack.length - 1];
    const [t, i] = top;
    const inputs = t.node?.inputs ?? [];
    if (i < inputs.length) {
      top[1]++;
      const next = inputs[i];
      if (next.requiresGrad && !seen.has(next)) {
        seen.add(next);
        stack.push([next, 0]);
      }
    } else {
      stack.pop();
      order.push(t);
    }
  }
  return order.reverse();
}
