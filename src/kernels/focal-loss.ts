// CenterNet's focal loss on a heatmap of logits (papers/centerunet-thesis.txt Eq. 2; CornerNet's variant of Lin et
// al.), composed from elementwise primitives, which give it its backward: a fused kernel is not worth it on maps of
// (H/4)·(W/4) pixels next to the network that makes them.
import type { Tensor } from '../engine/tensor.ts';
import { add, addScalar, equal, logSigmoid, mul, neg, pow, scale, sigmoid } from './elementwise.ts';
import { sum } from './reduce.ts';

export interface FocalLossOptions {
  /** Exponent of the (1 − p) and p modulating factors (CenterNet: 2). */
  alpha?: number;
  /** Exponent of the (1 − y) penalty reduction near the centres (CenterNet: 4). */
  beta?: number;
  /** Positions (y = 1) the loss is divided by (the number of centres; at least 1 is used). */
  count: number;
  /** Weight per position, broadcast to the logits (0 leaves a position out: unlabeled pixels). */
  weight?: Tensor;
}

/**
 * −1/N Σ [y = 1]·(1 − p)^α·log p + [y < 1]·(1 − y)^β·p^α·log(1 − p), p = sigmoid(logits), over `logits` and the
 * target heatmap `target` of the same shape (1 exactly at the centres), N = max(count, 1). log p and log(1 − p) are
 * logSigmoid(±logits), finite for any logit. Returns a scalar; the gradient flows to the logits only.
 */
export function focalLoss(logits: Tensor, target: Tensor, options: FocalLossOptions): Tensor {
  const { alpha = 2, beta = 4, count, weight } = options;
  if (logits.shape.join() !== target.shape.join()) {
    throw new Error(`focalLoss: logits [${logits.shape.join(', ')}] and target [${target.shape.join(', ')}] differ`);
  }
  if (!(count >= 0)) throw new Error(`focalLoss: count must be a number >= 0, got ${count}`);
  const e = logits.engine;
  const { positive, negative } = e.noGrad(() => {
    const one = e.tensor(new Float32Array([1]), [1]);
    const isCentre = equal(target, one);
    one.dispose();
    // (1 − y)^β vanishes at the centres, so it is the negatives' weight as it stands.
    const reduction = pow(addScalar(neg(target), 1), beta);
    return weight ? { positive: mul(isCentre, weight), negative: mul(reduction, weight) } : { positive: isCentre, negative: reduction };
  });
  const p = sigmoid(logits);
  const positiveTerm = mul(mul(positive, pow(addScalar(neg(p), 1), alpha)), logSigmoid(logits));
  const negativeTerm = mul(mul(negative, pow(p, alpha)), logSigmoid(neg(logits)));
  return scale(sum(add(positiveTerm, negativeTerm)), -1 / Math.max(count, 1));
}
