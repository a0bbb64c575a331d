// Elementwise ops against float64 references, with finite-difference gradient checks.
import { sum, type Tensor } from '../../src/index.ts';
import * as ops from '../../src/index.ts';
import { checkOp, rng, uniform } from '../support/check.ts';
import { expect } from '../support/expect.ts';
import { checkList } from '../support/suite.ts';

const { checks, describe, it } = checkList();
export { checks };

const sigm = (v: number) => 1 / (1 + Math.exp(-v));
const softplus = (v: number) => Math.max(v, 0) + Math.log1p(Math.exp(-Math.abs(v)));
// Inputs for non-smooth ops stay away from the kink at 0 so finite differences are valid.
const awayFromZero = (n: number, seed: number) => uniform(n, rng(seed), 0.1, 1).map((v, i) => (i % 2 ? -v : v));
const positive = (n: number, seed: number) => uniform(n, rng(seed), 0.2, 2);
const wide = (n: number, seed: number) => uniform(n, rng(seed), -12, 12);
// For clamp to [-0.5, 0.5]: inputs near the bounds move inwards.
const awayFromHalf = (n: number, seed: number) => uniform(n, rng(seed), -1, 1).map((v) => (Math.abs(Math.abs(v) - 0.5) < 0.05 ? v / 2 : v));

const unaryCases: [string, (x: Tensor) => Tensor, (v: number) => number, ((n: number, s: number) => Float64Array)?][] = [
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
  ['clamp', (x) => ops.clamp(x, -0.5, 0.5), (v) => Math.min(Math.max(v, -0.5), 0.5), awayFromHalf],
  ['softplus', ops.softplus, softplus, wide],
  ['logSigmoid', ops.logSigmoid, (v) => -softplus(-v), wide],
];

describe('unary ops', () => {
  // 105 elements take the scalar entry points; 260 (65 vec4s, the last invocation's share cut short) the vec4 ones.
  for (const shape of [[3, 7, 5], [4, 13, 5]]) {
    for (const [name, op, f, gen] of unaryCases) {
      it(`${name} [${shape}]: forward and gradient`, async (e) => {
        const n = shape.reduce((p, q) => p * q, 1);
        await checkOp(e, {
          inputs: [{ shape, data: gen?.(n, name.length) }],
          run: ([x]) => op(x),
          ref: ([x]) => x.map(f),
        });
      });
    }
  }

  it('relu and its gradient over many workgroups, on the vec4 path (4k elements) and the scalar one', async (e) => {
    for (const n of [4 * 16387, 65539]) {
      const values = uniform(n, rng(n), -1, 1);
      const x = e.param(e.tensor(Float32Array.from(values), [n]));
      const y = ops.relu(x);
      const weights = e.tensor(Float32Array.from({ length: n }, (_, i) => (i % 5) - 2), [n]);
      sum(ops.mul(y, weights)).backward();
      const [out, grad] = [await y.data(), await x.grad!.data()];
      for (let i = 0; i < n; i++) {
        const v = Math.fround(values[i]);
        if (out[i] !== Math.max(v, 0) || grad[i] !== (v > 0 ? (i % 5) - 2 : 0)) {
          throw new Error(`relu of ${n} elements at ${i}: ${out[i]} and gradient ${grad[i]} for input ${v}`);
        }
      }
      for (const t of [x, y, weights]) t.dispose();
      x.grad!.dispose();
    }
  });

  it('rejects integer tensors by name', async (e) => {
    const t = e.tensor(new Int32Array(3), [3]);
    expect(() => ops.relu(t)).toThrow('relu: input must be f32, got i32 [3]');
    t.dispose();
  });
});

/** Each output within `rel` of its float64 reference; a reference below f32's normal range may flush to zero. */
function expectClose(out: ArrayLike<number>, ref: ArrayLike<number>, rel: number, what: string): void {
  for (let i = 0; i < ref.length; i++) {
    expect(Math.abs(out[i] - ref[i]), `${what} at ${i}: ${out[i]} vs ${ref[i]}`).toBeLessThanOrEqual(rel * Math.abs(ref[i]) + 2 ** -126);
  }
}

describe('accuracy of the transcendental ops', () => {
  it('tanh is within 1e-6 relative from 1e-8 to 20, both signs', async (e) => {
    const xs: number[] = [];
    for (let i = 0; i <= 400; i++) xs.push(Math.fround(1e-8 * (20 / 1e-8) ** (i / 400)));
    const values = [...xs, ...xs.map((v) => -v)];
    const x = e.tensor(values, [values.length]);
    const y = ops.tanh(x);
    expectClose(await y.data(), values.map(Math.tanh), 1e-6, 'tanh');
    x.dispose();
    y.dispose();
  });

  it('softplus and logSigmoid are finite and exact to f32 at ±30, ±90, ±100, and so are their gradients', async (e) => {
    const values = [30, -30, 90, -90, 100, -100, 15, -15, 1e-8, -1e-8, 0];
    const cases: [typeof ops.softplus, (v: number) => number, (v: number) => number][] = [
      [ops.softplus, softplus, sigm],
      [ops.logSigmoid, (v) => -softplus(-v), (v) => sigm(-v)],
    ];
    for (const [op, f, df] of cases) {
      const x = e.param(e.tensor(values, [values.length]));
      const y = op(x);
      const total = sum(y);
      total.backward();
      expectClose(await y.data(), values.map(f), 1e-6, `${op.name} forward`);
      expectClose(await x.grad!.data(), values.map(df), 1e-6, `${op.name} gradient`);
      for (const t of [x, y, total]) t.dispose();
    }
  });
});

describe('clamp', () => {
  it('passes the gradient at the bounds (PyTorch convention), not outside', async (e) => {
    const x = e.param(e.tensor([-0.5, 0.25, -1.5, 1.25, 0], [5]));
    const y = ops.clamp(x, -0.5, 0.25);
    const total = sum(y);
    total.backward();
    expect(Array.from(await y.data())).toEqual([-0.5, 0.25, -0.5, 0.25, 0]);
    expect(Array.from(await x.grad!.data())).toEqual([1, 1, 0, 0, 1]);
    for (const t of [x, y, total]) t.dispose();
  });

  it('rejects lo above hi by name', async (e) => {
    const x = e.zeros([2]);
    expect(() => ops.clamp(x, 1, 0)).toThrow('clamp: lo (1) must not exceed hi (0)');
    x.dispose();
  });
});

describe('binary cross-entropy with logits as a composition', () => {
  // −(y·logσ(x) + (1 − y)·logσ(−x)); the reference sums two positive terms, so float64 cancels nothing.
  const bceRef = (x: number, y: number) => y * softplus(-x) + (1 - y) * softplus(x);
  const bce = (x: Tensor, y: Tensor) =>
    ops.neg(ops.add(ops.mul(y, ops.logSigmoid(x)), ops.mul(ops.addScalar(ops.neg(y), 1), ops.logSigmoid(ops.neg(x)))));

  it('matches the float64 reference, with gradients for logits and targets', async (e) => {
    const rand = rng(77);
    await checkOp(e, {
      inputs: [{ shape: [4, 9], data: uniform(36, rand, -8, 8) }, { shape: [4, 9], data: uniform(36, rand, 0, 1) }],
      run: ([x, y]) => bce(x, y),
      ref: ([x, y]) => x.map((v, i) => bceRef(v, y[i])),
    });
  });

  it('has the gradient sigmoid(x) − y, finite for extreme logits', async (e) => {
    const logits = [-90, -30, -3, -0.25, 0, 0.5, 4, 30, 90];
    const targets = [1, 0, 1, 0.5, 1, 0, 0.25, 1, 0];
    const x = e.param(e.tensor(logits, [9]));
    const y = e.tensor(targets, [9]);
    const loss = bce(x, y);
    const total = sum(loss);
    total.backward();
    expectClose(await loss.data(), logits.map((v, i) => bceRef(v, targets[i])), 1e-6, 'bce');
    // sigmoid(x) − y, written as −y·σ(−x) + (1 − y)·σ(x) so that float64 does not cancel at large |x|.
    const gradRef = logits.map((v, i) => -targets[i] * sigm(-v) + (1 - targets[i]) * sigm(v));
    expectClose(await x.grad!.data(), gradRef, 1e-6, 'bce gradient');
    for (const t of [x, y, loss, total]) t.dispose();
  });
});

/** Reference broadcasting op in float64: f of each operand's broadcast element, for operands [values, shape]. */
function broadcastRef(operands: [Float64Array, number[]][], f: (...v: number[]) => number): Float64Array {
  const rank = Math.max(...operands.map(([, s]) => s.length));
  const padded = operands.map(([, s]) => [...Array(rank - s.length).fill(1), ...s]);
  const shape = Array.from({ length: rank }, (_, k) => Math.max(...padded.map((s) => s[k])));
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
    out[i] = f(...operands.map(([v], j) => v[idx(padded[j], coord)]));
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

// One shape with 4k elements takes the vec4 entry point, one with 15 the scalar one. Broadcasts whose innermost
// dimension and operands have 4k elements take binary_broadcast_vec4: [2, 3, 4] with [4] reads both as vec4s,
// [2, 4, 8] with [4, 1] repeats b's value over each vec4 (and the swapped pair a's); the rest take the cursor path.
const shapePairs: [number[], number[]][] = [
  [[4, 6], [4, 6]],
  [[5, 3], [5, 3]],
  [[2, 3, 4], [4]],
  [[2, 4, 8], [4, 1]],
  [[4, 1], [2, 4, 8]],
  [[2, 1, 4], [3, 1]],
  [[1], [5, 2]],
];

describe('binary ops with broadcasting', () => {
  for (const [name, op, f] of binaryCases) {
    for (const [as, bs] of shapePairs) {
      it(`${name} [${as}] with [${bs}]`, async (e) => {
        const rand = rng(as.length * 31 + bs.length);
        const na = as.reduce((p, q) => p * q, 1);
        const nb = bs.reduce((p, q) => p * q, 1);
        // Divisors away from zero; max/min operands distinct so the gradient is well defined.
        const a = uniform(na, rand, -1, 1);
        const b = name === 'div' ? positive(nb, 7) : uniform(nb, rand, -1, 1).map((v) => v + 0.0123);
        await checkOp(e, {
          inputs: [{ shape: as, data: a }, { shape: bs, data: b }],
          run: ([x, y]) => op(x, y),
          ref: ([x, y]) => broadcastRef([[x, as], [y, bs]], f),
        });
      });
    }
  }

  // Operands in {−1, 0, 1} so that ties (equal, lessEqual, greaterEqual) occur.
  const comparisons: [string, typeof ops.add, (u: number, v: number) => boolean][] = [
    ['equal', ops.equal, (u, v) => u === v],
    ['notEqual', ops.notEqual, (u, v) => u !== v],
    ['less', ops.less, (u, v) => u < v],
    ['lessEqual', ops.lessEqual, (u, v) => u <= v],
    ['greater', ops.greater, (u, v) => u > v],
    ['greaterEqual', ops.greaterEqual, (u, v) => u >= v],
  ];
  for (const [name, op, f] of comparisons) {
    for (const [as, bs] of shapePairs) {
      it(`${name} [${as}] with [${bs}] gives 0/1 and no gradient`, async (e) => {
        const rand = rng(as.length * 17 + bs.length);
        const ternary = (n: number) => Float64Array.from({ length: n }, () => Math.floor(rand() * 3) - 1);
        await checkOp(e, {
          inputs: [{ shape: as, data: ternary(as.reduce((p, q) => p * q, 1)), grad: false }, { shape: bs, data: ternary(bs.reduce((p, q) => p * q, 1)), grad: false }],
          run: ([x, y]) => op(x, y),
          ref: ([x, y]) => broadcastRef([[x, as], [y, bs]], (u, v) => (f(u, v) ? 1 : 0)),
        });
      });
    }
  }

  it('comparisons of parameters are not recorded on the tape', async (e) => {
    const a = e.param(e.tensor([1, 2, 3], [3]));
    const b = e.param(e.tensor([2, 2, 2], [3]));
    const m = ops.less(a, b);
    expect(m.requiresGrad).toBe(false);
    expect(m.node).toBeNull();
    for (const t of [a, b, m]) t.dispose();
  });

  it('names both shapes when they do not broadcast', async (e) => {
    const a = e.zeros([2, 3]);
    const b = e.zeros([4]);
    expect(() => ops.add(a, b)).toThrow('add: shapes [2, 3] and [4] do not broadcast (dimension 1: 3 vs 4)');
    a.dispose();
    b.dispose();
  });

  it('broadcastTo repeats along size-1 axes and sums its gradient back', async (e) => {
    await checkOp(e, {
      inputs: [{ shape: [3, 1] }],
      run: ([x]) => ops.broadcastTo(x, [2, 3, 4]),
      ref: ([x]) => broadcastRef([[x, [3, 1]], [new Float64Array(24), [2, 3, 4]]], (u) => u),
    });
  });

  it('handles more than 65535 workgroups (index folded over y)', async (e) => {
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

describe('where', () => {
  const triples: [number[], number[], number[]][] = [
    [[4, 6], [4, 6], [4, 6]],
    [[3, 5], [3, 5], [3, 5]],
    [[2, 1, 4], [3, 1], [4]],
    [[1], [5, 2], [2]],
    [[3, 1], [1], [2, 3, 4]],
  ];
  for (const [cs, as, bs] of triples) {
    it(`cond [${cs}], a [${as}], b [${bs}]: forward and gradients to a and b`, async (e) => {
      const rand = rng(cs.length * 13 + as.length * 5 + bs.length);
      // Nonzero means true, whatever its value.
      const cond = Float64Array.from({ length: cs.reduce((p, q) => p * q, 1) }, () => [0, 1, 0.5, -2, 0][Math.floor(rand() * 5)]);
      await checkOp(e, {
        inputs: [{ shape: cs, data: cond, grad: false }, { shape: as }, { shape: bs }],
        run: ([c, a, b]) => ops.where(c, a, b),
        ref: ([c, a, b]) => broadcastRef([[c, cs], [a, as], [b, bs]], (u, v, w) => (u !== 0 ? v : w)),
      });
    });
  }

  it('keeps the unselected side\'s inf and NaN out of the output', async (e) => {
    const x = e.tensor([0, 4, -1, 1], [4]);
    const zero = e.zeros([1]);
    const logx = ops.log(x); // −inf, log 4, NaN, 0
    const y = ops.where(ops.greater(x, zero), logx, zero);
    expect(Array.from(await y.data())).toEqual([0, Math.fround(Math.log(4)), 0, 0]);
    for (const t of [x, zero, logx, y]) t.dispose();
  });

  it('asks for an f32 mask by name', async (e) => {
    const c = e.tensor(new Uint32Array(2), [2], 'u32');
    const a = e.zeros([2]);
    expect(() => ops.where(c, a, a)).toThrow("where: cond must be an f32 mask, got u32 [2] (cast it with cast(cond, 'f32'))");
    c.dispose();
    a.dispose();
  });
});
