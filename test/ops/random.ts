// Philox4x32-10 on the GPU against a TypeScript reference (itself checked against Random123's known answers),
// distribution moments, dropout masks and their gradients.
import { bernoulli, dropout, type Engine, randomBits, randomNormal, randomUniform, sum } from '../../src/index.ts';
import { checkOp } from '../support/check.ts';
import { expect } from '../support/expect.ts';
import { checkList } from '../support/suite.ts';

const { checks, describe, it } = checkList();
export { checks };

/** The reference: 64-bit products in BigInt, independent of the shader's 16-bit-halves multiply. */
function philox(counter: readonly number[], key: readonly number[]): number[] {
  let [c0, c1, c2, c3] = counter.map(BigInt);
  let [k0, k1] = key.map(BigInt);
  const mask = 0xffffffffn;
  for (let round = 0; round < 10; round++) {
    const p0 = 0xd2511f53n * c0;
    const p1 = 0xcd9e8d57n * c2;
    [c0, c1, c2, c3] = [(p1 >> 32n) ^ c1 ^ k0, p1 & mask, (p0 >> 32n) ^ c3 ^ k1, p0 & mask];
    k0 = (k0 + 0x9e3779b9n) & mask;
    k1 = (k1 + 0xbb67ae85n) & mask;
  }
  return [c0, c1, c2, c3].map(Number);
}

/** Element i of a draw with `seed`, as the kernels define it. */
function wordAt(seed: number, i: number): number {
  return philox([Math.floor(i / 4), 0, 0, 0], [seed % 2 ** 32, Math.floor(seed / 2 ** 32)])[i % 4];
}
const unitOf = (w: number) => (w >>> 8) / 16777216;

function moments(v: ArrayLike<number>): { mean: number; variance: number; kurtosis: number } {
  let mean = 0;
  for (let i = 0; i < v.length; i++) mean += v[i];
  mean /= v.length;
  let m2 = 0;
  let m4 = 0;
  for (let i = 0; i < v.length; i++) {
    const d = (v[i] - mean) ** 2;
    m2 += d;
    m4 += d * d;
  }
  m2 /= v.length;
  m4 /= v.length;
  return { mean, variance: m2, kurtosis: m4 / (m2 * m2) };
}

const hex = (words: number[]) => words.map((w) => w.toString(16).padStart(8, '0')).join(' ');

describe('Philox4x32-10', () => {
  it('the reference reproduces Random123 known answers', () => {
    expect(hex(philox([0, 0, 0, 0], [0, 0]))).toBe('6627e8d5 e169c58d bc57ac4c 9b00dbd8');
    expect(hex(philox([0xffffffff, 0xffffffff, 0xffffffff, 0xffffffff], [0xffffffff, 0xffffffff]))).toBe('408f276d 41c83b0e a20bc7c6 6d5451fd');
    expect(hex(philox([0x243f6a88, 0x85a308d3, 0x13198a2e, 0x03707344], [0xa4093822, 0x299f31d0]))).toBe('d16cfe09 94fdcceb 5001e420 24126ea1');
  });

  it('the GPU matches the reference bit for bit, with both key words in use', async (e) => {
    for (const seed of [0, 7, 2 ** 40 + 12345, 2 ** 53 - 1]) {
      const t = randomBits(e, [1001], seed);
      const got = Array.from(await t.data());
      t.dispose();
      expect(got, `seed ${seed}`).toEqual(Array.from({ length: 1001 }, (_, i) => wordAt(seed, i)));
    }
  });

  it('depends on the element index only: a small draw is a prefix of a large one', async (e) => {
    const small = randomUniform(e, [3, 5], 99);
    const large = randomUniform(e, [70001], 99);
    const a = Array.from(await small.data());
    const b = Array.from(await large.data());
    expect(a).toEqual(b.slice(0, 15));
    expect(b[70000]).toBe(unitOf(wordAt(99, 70000)));
    small.dispose();
    large.dispose();
  });

  it('same seed, same numbers; different seeds, different numbers', async (e) => {
    const [a, b, c] = [5, 5, 6].map((s) => randomNormal(e, [64], s));
    const [va, vb, vc] = await Promise.all([a.data(), b.data(), c.data()]);
    expect(Array.from(va)).toEqual(Array.from(vb));
    expect(Array.from(va).filter((v, i) => v === vc[i]).length).toBe(0);
    for (const t of [a, b, c]) t.dispose();
  });

  it('rejects seeds that are not non-negative integers', async (e) => {
    expect(() => randomUniform(e, [2], -1)).toThrow('randomUniform: seed must be a non-negative integer below 2^53, got -1');
    expect(() => randomNormal(e, [2], 0.5)).toThrow(/seed must be/);
  });
});

describe('distributions', () => {
  const N = 1_000_000;

  it('uniform: the reference mapping of words, and moments on 1e6 samples', async (e) => {
    const t = randomUniform(e, [N], 2024, -2, 3);
    const v = await t.data();
    t.dispose();
    for (const i of [0, 1, 2, 3, 4, 12345, N - 1]) expect(v[i]).toBeCloseTo(-2 + 5 * unitOf(wordAt(2024, i)), 6);
    expect(Math.min(...v.subarray(0, 10000))).toBeGreaterThanOrEqual(-2);
    expect(Math.max(...v.subarray(0, 10000))).toBeLessThan(3);
    const m = moments(v);
    // Standard errors: mean 5/√12/√N ≈ 0.0014, variance ≈ 0.0019 (25/12 · √(0.8/N)).
    expect(Math.abs(m.mean - 0.5)).toBeLessThan(0.007);
    expect(Math.abs(m.variance - 25 / 12)).toBeLessThan(0.01);
    expect(Math.abs(m.kurtosis - 1.8)).toBeLessThan(0.01);
  });

  // WGSL bounds sin and cos only to 2^-11 absolute error. SwiftShader's use most of it (1.8e-4 off at 1.3 rad), so its
  // samples miss their reference words' values by more than the 5e-5 asked here; lavapipe's (Dawn, wgpu) do not.
  const coarseTrig = (e: Engine) =>
    e.adapterName.includes('swiftshader') ? "SwiftShader's sin/cos are only as exact as WGSL requires (2^-11 absolute), not to the 5e-5 this check asks of single samples" : null;

  it('normal: Box-Muller on the reference words, and moments on 1e6 samples', async (e) => {
    const t = randomNormal(e, [N], 31337, 1.5, 2);
    const v = await t.data();
    t.dispose();
    for (const i of [0, 1, 2, 3, 998, 999, N - 2, N - 1]) {
      const block = i - (i % 4);
      const pair = block + (i % 4 < 2 ? 0 : 2);
      const r = Math.sqrt(-2 * Math.log(((wordAt(31337, pair) >>> 8) + 1) / 16777216));
      const theta = 2 * Math.PI * unitOf(wordAt(31337, pair + 1));
      const z = i % 2 === 0 ? r * Math.cos(theta) : r * Math.sin(theta);
      expect(v[i]).toBeCloseTo(1.5 + 2 * z, 4);
    }
    const m = moments(v);
    // Standard errors: mean 2/√N = 0.002, variance 4·√(2/N) ≈ 0.0057, kurtosis √(24/N) ≈ 0.005.
    expect(Math.abs(m.mean - 1.5)).toBeLessThan(0.01);
    expect(Math.abs(m.variance - 4)).toBeLessThan(0.03);
    expect(Math.abs(m.kurtosis - 3)).toBeLessThan(0.03);
    const within1 = v.filter((x) => Math.abs(x - 1.5) < 2).length / N;
    expect(Math.abs(within1 - 0.682689)).toBeLessThan(0.003);
  }, { skip: coarseTrig });

  it('bernoulli: rate and value', async (e) => {
    const t = bernoulli(e, [100_000], 3, 0.2, 7);
    const v = await t.data();
    t.dispose();
    expect(new Set(v)).toEqual(new Set([0, 7]));
    // Standard error of the rate: √(0.16/1e5) ≈ 0.0013.
    expect(Math.abs(v.filter((x) => x === 7).length / v.length - 0.2)).toBeLessThan(0.007);
    expect(() => bernoulli(e, [2], 0, 1.5)).toThrow('bernoulli: p must be in [0, 1], got 1.5');
  });
});

describe('dropout', () => {
  it('matches the reference mask, and its gradient is the same mask scaled', async (e) => {
    const p = 0.4;
    const seed = 77;
    const shape = [2, 3, 4, 5];
    await checkOp(e, {
      inputs: [{ shape }],
      run: ([x]) => dropout(x, p, seed, { training: true }),
      ref: ([x]) => x.map((v, i) => (unitOf(wordAt(seed, i)) < 1 - p ? v / (1 - p) : 0)),
    });
  });

  it('spatial dropout drops whole channels (noiseShape [N, C, 1, 1])', async (e) => {
    const p = 0.5;
    const shape = [2, 16, 4, 4];
    const noiseShape = [2, 16, 1, 1];
    await checkOp(e, {
      inputs: [{ shape }],
      run: ([x]) => dropout(x, p, 5, { training: true, noiseShape }),
      ref: ([x]) => x.map((v, i) => (unitOf(wordAt(5, Math.floor(i / 16))) < 1 - p ? v / (1 - p) : 0)),
    });
    const x = e.fill(shape, 1);
    const y = dropout(x, p, 5, { training: true, noiseShape });
    const v = await y.data();
    const channels = Array.from({ length: 32 }, (_, c) => new Set(v.subarray(16 * c, 16 * c + 16)));
    expect(channels.every((s) => s.size === 1 && (s.has(0) || s.has(2)))).toBe(true);
    const mask = bernoulli(e, noiseShape, 5, 1 - p, 1 / (1 - p));
    expect(channels.map((s) => [...s][0])).toEqual(Array.from(await mask.data()));
    mask.dispose();
    const dropped = channels.filter((s) => s.has(0)).length;
    expect(dropped).toBeGreaterThan(4);
    expect(dropped).toBeLessThan(28);
    x.dispose();
    y.dispose();
  });

  // Rows of 287 (several workgroups, a partial quad at the end) by the row kernel; masks that are not leading axes
  // followed by ones by the general kernel.
  for (const [shape, noiseShape] of [[[2, 3, 7, 41], [2, 3, 1, 1]], [[2, 3, 4, 5], [1, 3, 1, 5]], [[3, 4, 6], [3, 1, 6]]]) {
    it(`mask ${JSON.stringify(noiseShape)} over ${JSON.stringify(shape)} matches the reference`, async (e) => {
      const p = 0.5;
      const noiseStrides = noiseShape.map((_, k) => noiseShape.slice(k + 1).reduce((a, b) => a * b, 1));
      const noiseIndex = (i: number) => {
        let m = 0;
        for (let k = shape.length - 1, rest = i; k >= 0; k--) {
          if (noiseShape[k] !== 1) m += (rest % shape[k]) * noiseStrides[k];
          rest = Math.floor(rest / shape[k]);
        }
        return m;
      };
      await checkOp(e, {
        inputs: [{ shape }],
        run: ([x]) => dropout(x, p, 9, { training: true, noiseShape }),
        ref: ([x]) => x.map((v, i) => (unitOf(wordAt(9, noiseIndex(i))) < 1 - p ? v / (1 - p) : 0)),
      });
    });
  }

  it('drops at rate p and scales the kept by 1/(1 − p); the gradient is mask·scale', async (e) => {
    const p = 0.3;
    const x = e.param(e.fill([2, 4, 64, 64], 1));
    const y = dropout(x, p, 123, { training: true });
    const loss = sum(y);
    loss.backward();
    const [v, g] = await Promise.all([y.data(), x.grad!.data()]);
    const rate = v.filter((u) => u === 0).length / v.length;
    // Standard error √(0.21/32768) ≈ 0.0025.
    expect(Math.abs(rate - p)).toBeLessThan(0.013);
    expect(v.every((u) => u === 0 || Math.abs(u - 1 / (1 - p)) < 1e-6)).toBe(true);
    expect(Array.from(g)).toEqual(Array.from(v));
    for (const t of [x, y, loss]) t.dispose();
  });

  it('is the identity outside training, and leaks nothing without gradients', async (e) => {
    const x = e.fill([3, 4], 2);
    expect(dropout(x, 0.5, 1, { training: false })).toBe(x);
    const before = e.stats().liveTensors;
    const y = dropout(x, 0.5, 1, { training: true });
    expect(e.stats().liveTensors).toBe(before + 1);
    x.dispose();
    y.dispose();
  });

  it('names a bad p or noiseShape', async (e) => {
    const x = e.zeros([2, 3, 4]);
    expect(() => dropout(x, 1, 0, { training: true })).toThrow('dropout: p must be in [0, 1), got 1');
    expect(() => dropout(x, 0.1, 0, { training: true, noiseShape: [2, 2, 1] })).toThrow(
      'dropout: noiseShape [2, 2, 1] does not broadcast to the input [2, 3, 4]',
    );
    x.dispose();
  });
});
