// CenterNet's focal loss against a float64 reference written from its definition, with finite-difference gradients
// of the logits: with and without a weight map, a heatmap with no centre (N = 0 divides by 1), saturated logits.
import { focalLoss } from '../../src/kernels/focal-loss.ts';
import { checkOp, rng } from '../support/check.ts';
import { checkList } from '../support/suite.ts';

const { checks, describe, it } = checkList();
export { checks };

function focalRef(x: Float64Array, y: Float64Array, w: Float64Array | null, count: number, alpha = 2, beta = 4): number[] {
  let total = 0;
  for (let i = 0; i < x.length; i++) {
    const p = 1 / (1 + Math.exp(-x[i]));
    const term = y[i] === 1 ? (1 - p) ** alpha * Math.log(p) : (1 - y[i]) ** beta * p ** alpha * Math.log(1 - p);
    total += (w ? w[i] : 1) * term;
  }
  return [-total / Math.max(count, 1)];
}

/** A heatmap in [0, 1) with exact 1s at `centres` indices. */
function heatmap(n: number, centres: number[], seed: number): number[] {
  const rand = rng(seed);
  const y = Array.from({ length: n }, () => Math.fround(rand() * 0.95));
  for (const c of centres) y[c] = 1;
  return y;
}

describe('focalLoss', () => {
  it('forward and gradient against float64, α 2 β 4, three centres', async (e) => {
    const shape = [2, 1, 4, 5];
    await checkOp(e, {
      inputs: [{ shape, data: Array.from({ length: 40 }, (_, i) => Math.sin(i * 1.7) * 3) }, { shape, data: heatmap(40, [3, 17, 30], 1), grad: false }],
      run: ([x, y]) => focalLoss(x, y, { count: 3 }),
      ref: ([x, y]) => focalRef(x, y, null, 3),
    });
  });

  it('a weight map leaves positions out; other exponents', async (e) => {
    const shape = [1, 1, 6, 6];
    const weight = Array.from({ length: 36 }, (_, i) => (i % 7 === 0 ? 0 : 1));
    await checkOp(e, {
      inputs: [{ shape }, { shape, data: heatmap(36, [8, 20], 2), grad: false }, { shape, data: weight, grad: false }],
      run: ([x, y, w]) => focalLoss(x, y, { count: 2, weight: w, alpha: 3, beta: 2 }),
      ref: ([x, y, w]) => focalRef(x, y, w, 2, 3, 2),
    });
  });

  it('no centre divides by 1; saturated logits stay finite', async (e) => {
    const shape = [1, 1, 3, 3];
    await checkOp(e, {
      inputs: [{ shape, data: [-30, -12, 0.5, 4, 25, -2, 0, 1, -1] }, { shape, data: heatmap(9, [], 3), grad: false }],
      run: ([x, y]) => focalLoss(x, y, { count: 0 }),
      ref: ([x, y]) => focalRef(x, y, null, 0),
      // Near saturation f32 rounds 1 − p in the sigmoid's derivative; the reference does not.
      gradTol: 1e-2,
    });
  });
});
