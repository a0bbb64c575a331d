// The Dice loss of a binary segmentation head (papers/centerunet-thesis.txt Eq. 1, as Segmentation Models PyTorch's
// DiceLoss in binary mode from logits), composed from elementwise primitives and sums, which give it its backward.
import type { Tensor } from '../engine/tensor.ts';
import { add, addScalar, div, maximum, mul, neg, sigmoid } from './elementwise.ts';
import { sum } from './reduce.ts';

/** The smallest denominator (smp's eps): a batch without foreground and a prediction of none scores 0, not NaN. */
const EPS = 1e-7;

/**
 * 1 − 2·Σ w·p·y / max(Σ w·(p + y), ε), p = sigmoid(logits), over the whole batch (smp aggregates over items and
 * pixels), against the binary `target` of the same shape and an optional `weight` (0 leaves a pixel out). Returns a
 * scalar; the gradient flows to the logits only.
 */
export function diceLoss(logits: Tensor, target: Tensor, weight?: Tensor): Tensor {
  if (logits.shape.join() !== target.shape.join()) {
    throw new Error(`diceLoss: logits [${logits.shape.join(', ')}] and target [${target.shape.join(', ')}] differ`);
  }
  const e = logits.engine;
  const p = sigmoid(logits);
  const y = weight ? e.noGrad(() => mul(target, weight)) : target;
  const pw = weight ? mul(p, weight) : p;
  const intersection = sum(mul(pw, y));
  const eps = e.tensor(new Float32Array([EPS]), []);
  const cardinality = maximum(add(sum(pw), sum(y)), eps);
  return addScalar(neg(div(add(intersection, intersection), cardinality)), 1);
}
