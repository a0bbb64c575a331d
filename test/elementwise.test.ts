// Elementwise ops against float64 references, with finite-difference gradient checks.
import { describe, expect, it } from 'vitest';
import * as ops from '../src/kernels/elementwise.ts';
import { checkOp, rng, uniform } from './support/check.ts';
import { testEngine } from './support/engine.ts';

const sigm = (v: number) => 1 / (1 + Math.exp(-v));
// Inputs for non-smooth ops stay away from the kink at 0 so finite differences are valid.
const awayFromZero = (n: number, seed: number) => uniform(n, rng(seed), 0.1, 1).map((v, i) => (i % 2 ? -v : v));
const positive = (n: number, seed: number) => uniform(n, rng(seed), 0.2, 2);

const unaryCases: [string, (x: import('../src/index.ts').Tensor) => import('../src/index.ts').Tensor, (v: number) => number, ((n: number, s: number) => Float64Array)?][] = [
  ['neg', ops.neg, (v) => -v],
  ['relu', ops.relu, (v) => Math.max(v, 0), awayFromZero],
  ['leakyRelu', (x) => ops.leakyRelu(x, 0.3), (v) => (v > 0 ? v : 0.3 * v), awayFromZero],
  ['sigmoid', ops.sigmoid, sigm],
  ['tanh', ops.tanh, Math.tanh],
  ['exp', ops.exp, Math.exp],
  ['log', ops.log, Math.log, positive],
  ['sqrt', ops.sqrt, Math.sqrt, positive],
  ['abs', ops.abs, Math.abs, awayFromZero],
  ['square', ops.square, (v) => v * v],
  ['reciprocal', ops.reciprocal, (v) => 1 / v, positive],
  ['scale', (x) => ops.scale(x, -2.5), (v) => -2.5 * v],
  ['addScalar', (x) => ops.addScalar(x, 0.75), (v) => v + 0.75],
  ['pow', (x) => ops.pow(x, 1.7), (v) => v ** 1.7, positive],
];

describe('unary ops', () => {
  for (const [name, op, f, gen] of unaryCases) {
    it(`${name}: forward and gradient`, async () => {
      const e = await testEngine();
      const shape = [3, 7, 5];
      await checkOp(e, {
        inputs: [{ shape, data: gen?.(105, name.length) }],
        run: ([x]) => op(x),
        ref: ([x]) => x.map(f),
      });
    });
  }

  it('rejects integer tensors by name', async () => {
    const e = await testEngine();
    const t = e.tensor(new Int32Array(3), [3]);
    expect(() => ops.relu(t)).toThrow('relu: input must be f32, got i32 [3]');
    t.dispose();
  });
});

/** Reference broadcasting binary op in float64. */
function broadcastRef(a: Float64Array, as: number[], b: Float64Array, bs: number[], f: (u: number, v: number) => number): Float64Array {
  const rank = Math.max(as.length, bs.length);
  const pa = [...Array(rank - as.length).fill(1), ...as];
  const pb = [...Array(rank - bs.length).fill(1), ...bs];
  const shape = pa.map((d, i) => Math.max(d, pb[i]));
  const n = shape.reduce((p, q) => p * q, 1);
  const out = new Float64Array(n);
  const idx = (s: number[], coord: number[]) => coord.reduce((acc, c, i) => acc * s[i] + (s[i] === 1 ? 0 : c), 0);
  for (let i = 0; i < n; i++) {
    const coord: number[] = [];
    let rest = i;
    for (let k = rank - 1; k >= 0; k--) {
      coord[k] = rest % shape[k];
      rest = Math.floor(rest / shape[k]);
    }
    out[i] = f(a[idx(pa, coord)], b[idx(pb, coord)]);
  }
  return out;
}

const binaryCases: [string, typeof ops.add, (u: number, v: number) => number][] = [
  ['add', ops.add, (u, v) => u + v],
  ['sub', ops.sub, (u, v) => u - v],
  ['mul', ops.mul, (u, v) => u * v],
  ['div', ops.div, (u, v) => u / v],
  ['maximum', ops.maximum, Math.max],
  ['minimum', ops.minimum, Math.min],
];

const shapePairs: [number[], number[]][] = [
  [[4, 6], [4, 6]],
  [[2, 3, 4], [4]],
  [[2, 1, 4], [3, 1]],
  [[1], [5, 2]],
];

describe('binary ops with broadcasting', () => {
  for (const [name, op, f] of binaryCases) {
    for (const [as, bs] of shapePairs) {
      it(`${name} [${as}] with [${bs}]`, async () => {
        const e = await testEngine();
        const rand = rng(as.length * 31 + bs.length);
        const na = as.reduce((p, q) => p * q, 1);
        const nb = bs.reduce((p, q) => p * q, 1);
        // Divisors away from zero; max/min operands distinct so the gradient is well defined.
        const a = uniform(na, rand, -1, 1);
        const b = name === 'div' ? positive(nb, 7) : uniform(nb, rand, -1, 1).map((v) => v + 0.0123);
        await checkOp(e, {
          inputs: [{ shape: as, data: a }, { shape: bs, data: b }],
          run: ([x, y]) => op(x, y),
          ref: ([x, y]) => broadcastRef(x, as, y, bs, f),
        });
      });
    }
  }

  it('names both shapes when they do not broadcast', async () => {
    const e = await testEngine();
    const a = e.zeros([2, 3]);
    const b = e.zeros([4]);
    expect(() => ops.add(a, b)).toThrow('add: shapes [2, 3] and [4] do not broadcast (dimension 1: 3 vs 4)');
    a.dispose();
    b.dispose();
  });

  it('broadcastTo repeats along size-1 axes and sums its gradient back', async () => {
    const e = await testEngine();
    await checkOp(e, {
      inputs: [{ shape: [3, 1] }],
      run: ([x]) => ops.broadcastTo(x, [2, 3, 4]),
      ref: ([x]) => broadcastRef(x, [3, 1], new Float64Array(24), [2, 3, 4], (u) => u),
    });
  });

  it('handles more than 65535 workgroups (index folded over y)', async () => {
    const e = await testEngine();
    // fill runs one element per invocation: 70000 workgroups of 256 need the fold; square then reads all of it.
    const n = 256 * 70000;
    expect(e.groups1D(n, 256)[1]).toBeGreaterThan(1);
    const x = e.fill([n], 2);
    const y = ops.square(x);
    const v = await y.data();
    expect(v[0]).toBe(4);
    expect(v[n - 1]).toBe(4);
    expect(v.every((q) => q === 4)).toBe(true);
    x.dispose();
    y.dispose();
  });
});
