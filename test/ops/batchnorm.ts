// Batch normalization against float64 references: training and evaluation outputs, finite-difference gradients of
// the full training-mode formula, and the in-place running-statistic updates.
import { batchNorm } from '../../src/index.ts';
import { checkOp, relError, rng, sizeOf, uniform } from '../support/check.ts';
import { expect } from '../support/expect.ts';
import { checkList } from '../support/suite.ts';

const { checks, describe, it } = checkList();
export { checks };

interface Stats {
  mean: Float64Array;
  /** Biased variance. */
  variance: Float64Array;
  count: number;
}

function batchStats(x: Float64Array, shape: number[]): Stats {
  const [n, c] = shape;
  const s = sizeOf(shape.slice(2));
  const mean = new Float64Array(c);
  const variance = new Float64Array(c);
  for (let ch = 0; ch < c; ch++) {
    let sum = 0;
    for (let b = 0; b < n; b++) for (let i = 0; i < s; i++) sum += x[(b * c + ch) * s + i];
    mean[ch] = sum / (n * s);
    let sq = 0;
    for (let b = 0; b < n; b++) for (let i = 0; i < s; i++) sq += (x[(b * c + ch) * s + i] - mean[ch]) ** 2;
    variance[ch] = sq / (n * s);
  }
  return { mean, variance, count: n * s };
}

function normalizeRef(x: Float64Array, shape: number[], gamma: Float64Array, beta: Float64Array, mean: ArrayLike<number>, variance: ArrayLike<number>, eps: number): Float64Array {
  const c = shape[1];
  const s = sizeOf(shape.slice(2));
  return x.map((v, i) => {
    const ch = Math.floor(i / s) % c;
    return ((v - mean[ch]) / Math.sqrt(variance[ch] + eps)) * gamma[ch] + beta[ch];
  });
}

const shapes = [
  [2, 3, 4, 5],
  [3, 5, 7],
  [1, 2, 3, 1, 1],
  [2, 3, 2, 3, 4],
  [4, 2],
  [2, 3, 301], // the scalar entries over more elements than one workgroup's invocations
  [2, 1, 300], // planes of 4k elements go through the vec4 entries (like [2, 3, 4, 5]), in one workgroup here
  [2, 3, 1000], // and over several workgroups
];

describe('batchNorm', () => {
  for (const shape of shapes) {
    const c = shape[1];
    it(`training mode [${shape}]: forward and gradients for x, gamma, beta`, async (e) => {
      const eps = 1e-3;
      const state = { runningMean: e.zeros([c]), runningVar: e.fill([c], 1) };
      await checkOp(e, {
        inputs: [{ shape }, { shape: [c], data: uniform(c, rng(5), 0.5, 1.5) }, { shape: [c] }],
        run: ([x, gamma, beta]) => batchNorm(x, gamma, beta, state, { training: true, eps }),
        ref: ([x, gamma, beta]) => {
          const st = batchStats(x, shape);
          return normalizeRef(x, shape, gamma, beta, st.mean, st.variance, eps);
        },
      });
      state.runningMean.dispose();
      state.runningVar.dispose();
    });

    it(`evaluation mode [${shape}]: running statistics, gradients`, async (e) => {
      const mean = uniform(c, rng(7), -0.5, 0.5);
      const variance = uniform(c, rng(8), 0.2, 2);
      const state = { runningMean: e.tensor(Float32Array.from(mean), [c]), runningVar: e.tensor(Float32Array.from(variance), [c]) };
      await checkOp(e, {
        inputs: [{ shape }, { shape: [c] }, { shape: [c] }],
        run: ([x, gamma, beta]) => batchNorm(x, gamma, beta, state, { training: false }),
        ref: ([x, gamma, beta]) => normalizeRef(x, shape, gamma, beta, mean, variance, 1e-5),
      });
      // Evaluation leaves the running statistics alone.
      expect(Array.from(await state.runningMean.data())).toEqual(Array.from(Float32Array.from(mean)));
      state.runningMean.dispose();
      state.runningVar.dispose();
    });
  }

  it('updates running statistics in place like PyTorch (unbiased variance, momentum)', async (e) => {
    const shape = [3, 4, 5, 6];
    const c = shape[1];
    const runningMean = new Float64Array(c);
    const runningVar = new Float64Array(c).fill(1);
    const state = { runningMean: e.zeros([c]), runningVar: e.fill([c], 1) };
    const gamma = e.fill([c], 1);
    const beta = e.zeros([c]);
    for (const [seed, momentum] of [[1, 0.1], [2, 0.1], [3, 0.3]]) {
      const xs = uniform(sizeOf(shape), rng(seed), -2, 3);
      const x = e.tensor(Float32Array.from(xs), shape);
      e.noGrad(() => batchNorm(x, gamma, beta, state, { training: true, momentum })).dispose();
      x.dispose();
      const st = batchStats(xs, shape);
      for (let ch = 0; ch < c; ch++) {
        runningMean[ch] = (1 - momentum) * runningMean[ch] + momentum * st.mean[ch];
        runningVar[ch] = (1 - momentum) * runningVar[ch] + momentum * st.variance[ch] * (st.count / (st.count - 1));
      }
    }
    expect(relError(await state.runningMean.data(), runningMean)).toBeLessThan(1e-5);
    expect(relError(await state.runningVar.data(), runningVar)).toBeLessThan(1e-5);
    for (const t of [state.runningMean, state.runningVar, gamma, beta]) t.dispose();
  });

  it('normalizes a hand-checked channel', async (e) => {
    // One channel holding 1, 2, 3, 4: mean 2.5, biased variance 1.25.
    const x = e.tensor([1, 2, 3, 4], [1, 1, 4]);
    const state = { runningMean: e.zeros([1]), runningVar: e.fill([1], 1) };
    const gamma = e.fill([1], 2);
    const beta = e.fill([1], 1);
    const y = batchNorm(x, gamma, beta, state, { training: true, eps: 0 });
    const s = Math.sqrt(1.25);
    expect(relError(await y.data(), [1, 2, 3, 4].map((v) => (2 * (v - 2.5)) / s + 1))).toBeLessThan(1e-6);
    expect(relError(await state.runningVar.data(), [0.9 + 0.1 * (5 / 3)])).toBeLessThan(1e-6);
    for (const t of [x, y, state.runningMean, state.runningVar, gamma, beta]) t.dispose();
  });

  it('names bad inputs', async (e) => {
    const x = e.zeros([1, 3, 1, 1]);
    const g = e.zeros([3]);
    const state = { runningMean: e.zeros([3]), runningVar: e.zeros([2]) };
    expect(() => batchNorm(x, g, g, state, { training: false })).toThrow('batchNorm: runningVar must be [3] (the input\'s channels), got [2]');
    state.runningVar.dispose();
    state.runningVar = e.zeros([3]);
    expect(() => batchNorm(x, g, g, state, { training: true })).toThrow('batchNorm: training needs more than one value per channel, got input [1, 3, 1, 1]');
    for (const t of [x, g, state.runningMean, state.runningVar]) t.dispose();
  });
});
