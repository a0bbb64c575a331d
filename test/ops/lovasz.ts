// Lovasz hinge and the row-wise prefix sum against float64 references, with finite-difference gradient checks.
import { cumsumRows, type Engine, lovaszHinge, mul, sum } from '../../src/index.ts';
import { checkOp, relError, rng, uniform } from '../support/check.ts';
import { expect } from '../support/expect.ts';
import { checkList } from '../support/suite.ts';

const { checks, describe, it } = checkList();
export { checks };

/** lovasz_hinge_flat of Berman et al. per row, in float64, as written in the reference implementation. */
function lovaszRef(z: Float64Array, y: Float64Array, rows: number, cols: number): Float64Array {
  const out = new Float64Array(rows);
  for (let r = 0; r < rows; r++) {
    const errors = Array.from({ length: cols }, (_, i) => 1 - z[r * cols + i] * (2 * y[r * cols + i] - 1));
    const order = errors.map((_, i) => i).sort((a, b) => errors[b] - errors[a]);
    const gt = order.map((i) => y[r * cols + i]);
    const gts = gt.reduce((a, b) => a + b, 0);
    let cumGt = 0;
    let previous = 0;
    for (let i = 0; i < cols; i++) {
      cumGt += gt[i];
      const jaccard = 1 - (gts - cumGt) / (gts + (i + 1 - cumGt));
      out[r] += Math.max(errors[order[i]], 0) * (jaccard - previous);
      previous = jaccard;
    }
  }
  return out;
}

function randomLabels(n: number, seed: number, p = 0.4): number[] {
  const rand = rng(seed);
  return Array.from({ length: n }, () => (rand() < p ? 1 : 0));
}

/**
 * Logits whose hinge errors are a shuffled grid of odd multiples of 2/cols over about [−1.5, 2.5): distinct, never 0,
 * and far apart compared with the finite-difference step, so the sort order and the relu are locally constant.
 */
function spacedLogits(labels: number[], cols: number, seed: number): number[] {
  const rand = rng(seed);
  const z = new Array<number>(labels.length);
  for (let start = 0; start < labels.length; start += cols) {
    const ranks = Array.from({ length: cols }, (_, i) => i);
    for (let i = cols - 1; i > 0; i--) {
      const j = Math.floor(rand() * (i + 1));
      [ranks[i], ranks[j]] = [ranks[j], ranks[i]];
    }
    for (let i = 0; i < cols; i++) {
      const error = ((ranks[i] - Math.floor(0.375 * cols) + 0.5) * 4) / cols;
      z[start + i] = (1 - error) * (2 * labels[start + i] - 1);
    }
  }
  return z;
}

/** d loss_r / d z_i of the reference with the Jaccard gradient held constant, scaled by gy_r. */
function lovaszGradRef(z: Float64Array, y: Float64Array, rows: number, cols: number, gy: number[]): Float64Array {
  const out = new Float64Array(rows * cols);
  for (let r = 0; r < rows; r++) {
    const at = (i: number) => r * cols + i;
    const errors = Array.from({ length: cols }, (_, i) => 1 - z[at(i)] * (2 * y[at(i)] - 1));
    const order = errors.map((_, i) => i).sort((a, b) => errors[b] - errors[a]);
    const gts = order.reduce((a, i) => a + y[at(i)], 0);
    let cumGt = 0;
    let previous = 0;
    order.forEach((i, rank) => {
      cumGt += y[at(i)];
      const jaccard = 1 - (gts - cumGt) / (gts + (rank + 1 - cumGt));
      if (errors[i] > 0) out[at(i)] = gy[r] * (jaccard - previous) * (1 - 2 * y[at(i)]);
      previous = jaccard;
    });
  }
  return out;
}

async function checkLovasz(e: Engine, rows: number, cols: number, labels: number[], logits: number[]): Promise<void> {
  await checkOp(e, {
    inputs: [{ shape: [rows, cols], data: logits }, { shape: [rows, cols], data: labels, grad: false }],
    run: ([z, y]) => lovaszHinge(z, y),
    ref: ([z, y]) => lovaszRef(z, y, rows, cols),
  });
}

describe('lovaszHinge', () => {
  it('the hand vector: 0.975', async (e) => {
    const z = e.tensor([0.8, -0.3, 0.5, -0.9, 0.1], [1, 5]);
    const y = e.tensor([1, 1, 0, 0, 1], [1, 5]);
    const loss = lovaszHinge(z, y);
    expect(loss.shape).toEqual([1]);
    expect(await loss.item()).toBeCloseTo(0.975, 6);
    for (const t of [z, y, loss]) t.dispose();
    await checkLovasz(e, 1, 5, [1, 1, 0, 0, 1], [0.8, -0.3, 0.5, -0.9, 0.1]);
  });

  const shapes: [number, number][] = [[1, 1], [4, 1], [3, 20], [5, 37], [2, 300]];
  for (const [rows, cols] of shapes) {
    it(`[${rows}, ${cols}] forward and gradient`, async (e) => {
      const labels = randomLabels(rows * cols, rows * 31 + cols);
      await checkLovasz(e, rows, cols, labels, spacedLogits(labels, cols, cols));
    });
  }

  it('rows of several scan blocks (2 × 4100): forward, and backward against the analytic gradient', async (e) => {
    const [rows, cols] = [2, 4100];
    const labels = randomLabels(rows * cols, 7, 0.3);
    const logits = spacedLogits(labels, cols, 8);
    const scope = e.beginScope();
    const z = e.param(e.tensor(logits, [rows, cols]));
    const loss = lovaszHinge(z, e.tensor(labels, [rows, cols]));
    const gy = [0.7, -1.3];
    sum(mul(loss, e.tensor(gy, [rows]))).backward();
    const [z64, y64] = [Float64Array.from(logits, Math.fround), Float64Array.from(labels)];
    expect(relError(await loss.data(), lovaszRef(z64, y64, rows, cols))).toBeLessThan(1e-5);
    expect(relError(await z.grad!.data(), lovaszGradRef(z64, y64, rows, cols, gy))).toBeLessThan(1e-5);
    z.dispose();
    scope.end();
  });

  it('all-background and all-foreground rows', async (e) => {
    const labels = [...new Array(30).fill(0), ...new Array(30).fill(1)];
    await checkLovasz(e, 2, 30, labels, spacedLogits(labels, 30, 9));
    // All background: the loss is the largest hinge error, relu'd.
    const loss = lovaszHinge(e.tensor([0.3, -2, 0.1], [1, 3]), e.tensor([0, 0, 0], [1, 3]));
    expect(await loss.item()).toBeCloseTo(1.3, 6);
    const none = lovaszHinge(e.tensor([-2, -3], [1, 2]), e.tensor([0, 0], [1, 2]));
    expect(await none.item()).toBe(0);
  });

  it('random logits with tied errors: the loss does not depend on how ties are ordered', async (e) => {
    const rows = 6;
    const cols = 500;
    const labels = randomLabels(rows * cols, 11, 0.5);
    // Logits from a few values: many equal errors across both labels.
    const rand = rng(12);
    const logits = Array.from({ length: rows * cols }, () => Math.floor(rand() * 9 - 4) / 2);
    const scope = e.beginScope();
    const loss = await lovaszHinge(e.tensor(logits, [rows, cols]), e.tensor(labels, [rows, cols])).data();
    scope.end();
    const ref = lovaszRef(Float64Array.from(logits), Float64Array.from(labels), rows, cols);
    expect(relError(loss, ref)).toBeLessThan(1e-5);
  });

  it('names bad inputs', async (e) => {
    const z = e.zeros([2, 3]);
    expect(() => lovaszHinge(z, e.zeros([2, 4]))).toThrow('lovaszHinge: labels [2, 4] must match logits [2, 3]');
    expect(() => lovaszHinge(e.zeros([6]), e.zeros([6]))).toThrow('lovaszHinge: logits must be [rows, cols], got [6]');
    expect(() => lovaszHinge(z, e.zeros([2, 3], 'i32'))).toThrow('lovaszHinge: labels must be f32, got i32 [2, 3]');
    expect(() => lovaszHinge(e.zeros([2, 0]), e.zeros([2, 0]))).toThrow('lovaszHinge: rows must hold at least one element');
  });
});

describe('cumsumRows', () => {
  const shapes: [number, number][] = [[1, 1], [3, 7], [2, 2048], [3, 5000]];
  for (const [rows, cols] of shapes) {
    it(`[${rows}, ${cols}]`, async (e) => {
      const x = uniform(rows * cols, rng(cols));
      const scope = e.beginScope();
      const out = await cumsumRows(e.tensor(Float32Array.from(x), [rows, cols])).data();
      scope.end();
      const ref = new Float64Array(x.length);
      for (let i = 0; i < x.length; i++) ref[i] = x[i] + (i % cols > 0 ? ref[i - 1] : 0);
      expect(relError(out, ref)).toBeLessThan(1e-5);
    });
  }

  it('rows longer than 2048 blocks of 2048 (two levels of block totals), exact on counts', async (e) => {
    const cols = 2048 * 2048 + 3000;
    const x = new Float32Array(cols);
    const rand = rng(5);
    for (let i = 0; i < cols; i++) x[i] = rand() < 0.5 ? 1 : 0;
    const scope = e.beginScope();
    const out = await cumsumRows(e.tensor(x, [1, cols])).data();
    scope.end();
    let running = 0;
    let mismatch = -1;
    for (let i = 0; i < cols && mismatch < 0; i++) {
      running += x[i];
      if (out[i] !== running) mismatch = i;
    }
    expect(mismatch).toBe(-1);
  });
});
