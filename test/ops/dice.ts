// The Dice loss against a float64 reference, with finite-difference gradients of the logits: with and without a
// weight map, and an empty target.
import { diceLoss } from '../../src/kernels/dice.ts';
import { checkOp } from '../support/check.ts';
import { checkList } from '../support/suite.ts';

const { checks, describe, it } = checkList();
export { checks };

function diceRef(x: Float64Array, y: Float64Array, w: Float64Array | null): number[] {
  let [inter, card] = [0, 0];
  for (let i = 0; i < x.length; i++) {
    const p = 1 / (1 + Math.exp(-x[i]));
    const wi = w ? w[i] : 1;
    inter += wi * p * y[i];
    card += wi * (p + y[i]);
  }
  return [1 - (2 * inter) / Math.max(card, 1e-7)];
}

describe('diceLoss', () => {
  it('forward and gradient against float64 over a batch', async (e) => {
    const shape = [2, 1, 5, 4];
    await checkOp(e, {
      inputs: [{ shape }, { shape, data: Array.from({ length: 40 }, (_, i) => (i % 3 === 0 ? 1 : 0)), grad: false }],
      run: ([x, y]) => diceLoss(x, y),
      ref: ([x, y]) => diceRef(x, y, null),
    });
  });

  it('a weight map leaves pixels out; an empty target', async (e) => {
    const shape = [1, 1, 4, 4];
    const weight = Array.from({ length: 16 }, (_, i) => (i < 4 ? 0 : 1));
    await checkOp(e, {
      inputs: [{ shape }, { shape, data: Array.from({ length: 16 }, (_, i) => (i % 2)), grad: false }, { shape, data: weight, grad: false }],
      run: ([x, y, w]) => diceLoss(x, y, w),
      ref: ([x, y, w]) => diceRef(x, y, w),
    });
    await checkOp(e, {
      inputs: [{ shape }, { shape, data: new Array<number>(16).fill(0), grad: false }],
      run: ([x, y]) => diceLoss(x, y),
      ref: ([x, y]) => diceRef(x, y, null),
    });
  });
});
