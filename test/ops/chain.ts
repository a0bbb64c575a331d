// Fused elementwise chains (src/kernels/chain.ts) against float64 references, with finite-difference gradient checks
// of x and both operands; the fused kernel (one kernel and one tensor forward) and the one-op-at-a-time fallback give the same.
import { chain, type ChainStep, type Tensor } from '../../src/index.ts';
import * as ops from '../../src/index.ts';
import { checkOp, coordsOf, rng, sizeOf, uniform } from '../support/check.ts';
import { expect } from '../support/expect.ts';
import { checkList } from '../support/suite.ts';

const { checks, describe, it } = checkList();
export { checks };

const sigm = (v: number) => 1 / (1 + Math.exp(-v));

/** Value of `values` (of `shape`) at output coordinates `c` under NumPy broadcasting. */
function at(values: Float64Array, shape: readonly number[], c: readonly number[]): number {
  let i = 0;
  shape.forEach((d, k) => (i = i * d + (d === 1 ? 0 : c[c.length - shape.length + k])));
  return values[i];
}

type RefStep = (v: number, t: (j: number) => number) => number;

/** Runs `fn`, recording in `into.made` how many tensors it left alive (the fused kernel: its output alone). */
function counting(e: { stats(): { liveTensors: number } }, into: { made: number }, fn: () => Tensor): Tensor {
  const before = e.stats().liveTensors;
  const y = fn();
  into.made = e.stats().liveTensors - before;
  return y;
}

/** The float64 chain over x of `shape` with operands of `operandShapes`: step k maps the running value. */
function refChain(shape: readonly number[], operandShapes: readonly (readonly number[])[], steps: readonly RefStep[]) {
  return ([x, ...ts]: Float64Array[]) =>
    Float64Array.from(x, (v, i) => {
      const c = coordsOf(i, shape);
      return steps.reduce((u, s) => s(u, (j) => at(ts[j], operandShapes[j], c)), v);
    });
}

describe('chain', () => {
  // [2, 4, 3, 4] walks as [2, 4, 12 / 4] (no invocation's 4 vec4s fit in a run of 3), [3, 4, 2, 12] as [3, 4, 24 / 4]
  // (some do: the stepping without carries); there x wants no gradient (the backward skips it).
  for (const [shape, xGrad] of [[[2, 4, 3, 4], true], [[3, 4, 2, 12], false]] as const) {
    it(`sigmoid(relu(x·a + b)) [${shape}], a and b per channel (broadcast along the vec4 dimension): forward and gradients of ${xGrad ? 'x, ' : ''}a, b, one kernel`, async (e) => {
      const per = [4, 1, 1];
      const count = { made: 0 };
      await checkOp(e, {
        inputs: [{ shape: [...shape], grad: xGrad }, { shape: per }, { shape: per }],
        run: ([x, a, b]) => counting(e, count, () => chain(x, [{ op: 'mul', operand: a }, { op: 'add', operand: b }, { op: 'relu' }, { op: 'sigmoid' }])),
        ref: refChain(shape, [per, per], [(v, t) => v * t(0), (v, t) => v + t(1), (v) => Math.max(v, 0), sigm]),
      });
      // One tensor made: the output, and no intermediates.
      expect(count.made).toBe(1);
    });
  }

  it('operands spanning the vec4 dimension, on both sides: (t0 − x)/t1, max with t0, min(t1, ·), every binary op', async (e) => {
    // Walked as [2, 3, 24 / 4]: some invocations' 4 vec4s stay within a run, some carry.
    const [shape, s0, s1] = [[2, 3, 24], [3, 24], [24]];
    const positive = (n: number, seed: number) => uniform(n, rng(seed), 0.5, 2);
    const count = { made: 0 };
    await checkOp(e, {
      inputs: [{ shape }, { shape: s0 }, { shape: s1, data: positive(24, 3) }],
      run: ([x, t0, t1]) =>
        counting(e, count, () => chain(x, [
          { op: 'sub', operand: t0, left: true }, { op: 'div', operand: t1 }, { op: 'maximum', operand: t0 },
          { op: 'minimum', operand: t1, left: true }, { op: 'mul', operand: t1, left: true }, { op: 'add', operand: t0 },
          { op: 'sub', operand: t1 }, { op: 'div', operand: t1, left: true },
        ])),
      ref: refChain(shape, [s0, s1], [
        (v, t) => t(0) - v, (v, t) => v / t(1), (v, t) => Math.max(v, t(0)), (v, t) => Math.min(t(1), v),
        (v, t) => t(1) * v, (v, t) => v + t(0), (v, t) => v - t(1), (v, t) => t(1) / v,
      ]),
      gradTol: 2e-4,
    });
    expect(count.made).toBe(1);
  });

  it('unary steps with their alpha and beta: leakyRelu, scale, addScalar, clamp, tanh, softplus, square, exp', async (e) => {
    const shape = [5, 12];
    const count = { made: 0 };
    await checkOp(e, {
      inputs: [{ shape, data: uniform(60, rng(7), -2, 2).map((v) => (Math.abs(v) < 0.05 ? v + 0.1 : v)) }],
      run: ([x]) => counting(e, count, () => chain(x, [
        { op: 'leakyRelu', alpha: 0.3 }, { op: 'scale', alpha: 1.5 }, { op: 'addScalar', alpha: 0.2 }, { op: 'clamp', alpha: -1, beta: 1.6 },
        { op: 'tanh' }, { op: 'softplus' }, { op: 'square' }, { op: 'exp' },
      ])),
      ref: refChain(shape, [], [
        (v) => (v > 0 ? v : 0.3 * v), (v) => 1.5 * v, (v) => v + 0.2, (v) => Math.min(Math.max(v, -1), 1.6),
        Math.tanh, (v) => Math.max(v, 0) + Math.log1p(Math.exp(-Math.abs(v))), (v) => v * v, Math.exp,
      ]),
    });
    expect(count.made).toBe(1);
  });

  it('x as its own operand: x·x + x, the gradient (2x + 1) summed over x and its two operand uses, one kernel', async (e) => {
    const shape = [3, 8];
    const count = { made: 0 };
    await checkOp(e, {
      inputs: [{ shape }],
      run: ([x]) => counting(e, count, () => chain(x, [{ op: 'mul', operand: x }, { op: 'add', operand: x }])),
      ref: ([x]) => x.map((v) => v * v + v),
    });
    expect(count.made).toBe(1);
  });

  it('ties of maximum and minimum, every side of every binary op, one operand spanning and one broadcast, one without a gradient: fused equals op by op', async (e) => {
    // x [2, 3, 24] walks as [2, 3, 24 / 4] with t0 [3, 24] spanning the vec4 dimension and t1 [3, 1] broadcast along it.
    const rand = rng(11);
    const xs = Float32Array.from(uniform(144, rand, -1, 1));
    const t0s = Float32Array.from(uniform(72, rand, -1, 1));
    // A third of x ties with t0, and t1 ties with x in some places.
    xs.forEach((_, i) => { if (i % 3 === 0) xs[i] = t0s[i % 72]; });
    const t1s = Float32Array.from([xs[0], 0.25, -0.5]);
    const steps = (t0: Tensor, t1: Tensor): ChainStep[] => [
      { op: 'maximum', operand: t0, left: true }, { op: 'minimum', operand: t0 }, { op: 'maximum', operand: t1 },
      { op: 'minimum', operand: t1, left: true }, { op: 'add', operand: t0, left: true }, { op: 'sub', operand: t1, left: true },
      { op: 'mul', operand: t0 }, { op: 'div', operand: t1, left: true },
    ];
    const results: Float32Array[][] = [];
    for (const fuse of [true, false]) {
      const x = e.param(e.tensor(xs, [2, 3, 24]));
      const t0 = e.param(e.tensor(t0s, [3, 24]));
      const t1 = e.tensor(t1s, [3, 1]);
      const y = chain(x, steps(t0, t1), { fuse });
      const weights = e.tensor(Float32Array.from({ length: 144 }, (_, i) => (i % 7) - 3), [2, 3, 24]);
      const loss = ops.sum(ops.mul(y, weights));
      loss.backward();
      results.push([await y.data(), await x.grad!.data(), await t0.grad!.data()] as Float32Array[]);
      expect(t1.grad ?? null, 't1 wants no gradient').toBe(null);
      for (const t of [x, t0, t1, y, weights, loss]) t.dispose();
    }
    const [fused, byOp] = results;
    ['values', "x's gradient", "t0's gradient"].forEach((what, k) => {
      // Equal up to float32 rounding (the operand's gradient is summed over the batch in another order).
      fused[k].forEach((v, i) => expect(Math.abs(v - byOp[k][i]) <= 1e-6 * Math.max(1, Math.abs(byOp[k][i])), `${what} at ${i}: ${v} vs ${byOp[k][i]}`).toBe(true));
    });
  });

  it('falls back to one op per step where the fused kernel does not apply, with the same values and gradients', async (e) => {
    const cases: { name: string; shape: number[]; shapes: number[][]; steps: (ts: Tensor[]) => ChainStep[]; ref: RefStep[] }[] = [
      // 15 elements: not a multiple of 4.
      { name: '15 elements', shape: [3, 5], shapes: [[3, 1]], steps: ([t]) => [{ op: 'mul', operand: t }, { op: 'sigmoid' }], ref: [(v, t) => v * t(0), sigm] },
      // Three operand tensors.
      { name: 'three operands', shape: [4, 4], shapes: [[4, 1], [1, 4], [4, 4]], steps: (ts) => ts.map((t) => ({ op: 'add', operand: t })), ref: [0, 1, 2].map((j) => (v: number, t: (j: number) => number) => v + t(j)) },
      // Nine steps.
      { name: 'nine steps', shape: [8], shapes: [], steps: () => Array.from({ length: 9 }, () => ({ op: 'scale', alpha: 1.1 })), ref: Array.from({ length: 9 }, () => (v: number) => 1.1 * v) },
      // The operand is larger than x: the result takes the broadcast shape.
      { name: 'operand wider than x', shape: [4, 1], shapes: [[4, 4]], steps: ([t]) => [{ op: 'mul', operand: t }], ref: [] },
      // Innermost dimension 6: x has 12 elements but the walk does not divide into vec4s.
      { name: 'innermost 6', shape: [2, 6], shapes: [[2, 1]], steps: ([t]) => [{ op: 'div', operand: t, left: true }, { op: 'sigmoid' }], ref: [(v, t) => t(0) / v, sigm] },
      // Rank 9: more dimensions than the kernel's uniform carries.
      { name: 'rank 9', shape: [1, 1, 1, 1, 1, 1, 1, 2, 4], shapes: [], steps: () => [{ op: 'scale', alpha: 2 }, { op: 'sigmoid' }], ref: [(v) => 2 * v, sigm] },
    ];
    for (const c of cases) {
      if (c.name === 'operand wider than x') {
        const x = e.tensor([1, 2, 3, 4], [4, 1]);
        const t = e.tensor(Array.from({ length: 16 }, (_, i) => i), [4, 4]);
        const y = chain(x, c.steps([t]));
        expect(y.shape, c.name).toEqual([4, 4]);
        expect(Array.from(await y.data()), c.name).toEqual(Array.from({ length: 16 }, (_, i) => i * (1 + Math.floor(i / 4))));
        for (const z of [x, t, y]) z.dispose();
        continue;
      }
      const count = { made: 0 };
      await checkOp(e, {
        inputs: [{ shape: c.shape, data: uniform(sizeOf(c.shape), rng(3), 0.5, 1.5) }, ...c.shapes.map((s) => ({ shape: s }))],
        run: ([x, ...ts]) => counting(e, count, () => chain(x, c.steps(ts))),
        ref: refChain(c.shape, c.shapes, c.ref),
      });
      expect(count.made, `${c.name}: one tensor per step`).toBe(c.steps(c.shapes.map(() => null as unknown as Tensor)).length);
    }
  });

  it('bad steps: one line naming the step', async (e) => {
    const x = e.tensor([1, 2, 3, 4], [4]);
    expect(() => chain(x, [])).toThrow('chain: needs at least one step');
    expect(() => chain(x, [{ op: 'relu' }, { op: 'gelu' as 'relu' }])).toThrow('chain: step 1 has unknown op "gelu"');
    expect(() => chain(x, [{ op: 'clamp', alpha: 1, beta: 0 }])).toThrow('chain: step 0 (clamp) needs alpha (1) <= beta (0)');
    const i = e.tensor([1, 2, 3, 4], [4], 'i32');
    expect(() => chain(x, [{ op: 'add', operand: i }])).toThrow("chain: step 0 (add)'s operand must be f32");
    const wrong = e.tensor([1, 2, 3], [3]);
    expect(() => chain(x, [{ op: 'add', operand: wrong }])).toThrow('chain: shapes [3] and [4] do not broadcast');
    for (const t of [x, i, wrong]) t.dispose();
  });
});
