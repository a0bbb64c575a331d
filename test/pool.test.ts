// Pooling against float64 references, with finite-difference gradient checks, in 2D and 3D.
import { describe, expect, it } from 'vitest';
import { avgPool, globalAvgPool, maxPool } from '../src/kernels/pool.ts';
import { checkOp, rng, sizeOf } from './support/check.ts';
import { testEngine } from './support/engine.ts';

interface Case {
  shape: number[];
  kernel: number[];
  strides?: number[];
  pads?: number[];
}

/** Reference pooling in float64 over [N, C, ...spatial] (2D or 3D); `reduce` gets the in-image window values. */
function poolRef(x: Float64Array, c: Case, reduce: (values: number[], windowVolume: number) => number): Float64Array {
  const dims = c.shape.length - 2;
  const spatial = c.shape.slice(2);
  const strides = c.strides ?? c.kernel;
  const pads = c.pads ?? new Array(2 * dims).fill(0);
  const outSpatial = spatial.map((s, a) => Math.floor((s + pads[a] + pads[dims + a] - c.kernel[a]) / strides[a]) + 1);
  const planes = c.shape[0] * c.shape[1];
  const inVol = sizeOf(spatial);
  const outVol = sizeOf(outSpatial);
  const out = new Float64Array(planes * outVol);
  const windowVolume = sizeOf(c.kernel);
  for (let p = 0; p < planes; p++) {
    for (let o = 0; o < outVol; o++) {
      const oc: number[] = [];
      let rest = o;
      for (let a = dims - 1; a >= 0; a--) {
        oc[a] = rest % outSpatial[a];
        rest = Math.floor(rest / outSpatial[a]);
      }
      const values: number[] = [];
      for (let k = 0; k < windowVolume; k++) {
        let kr = k;
        let at = 0;
        let ok = true;
        const kc: number[] = [];
        for (let a = dims - 1; a >= 0; a--) {
          kc[a] = kr % c.kernel[a];
          kr = Math.floor(kr / c.kernel[a]);
        }
        for (let a = 0; a < dims; a++) {
          const i = oc[a] * strides[a] - pads[a] + kc[a];
          if (i < 0 || i >= spatial[a]) ok = false;
          at = at * spatial[a] + i;
        }
        if (ok) values.push(x[p * inVol + at]);
      }
      out[p * outVol + o] = reduce(values, windowVolume);
    }
  }
  return out;
}

const maxRef = (vs: number[]) => Math.max(...vs);
const avgRef = (vs: number[]) => vs.reduce((a, b) => a + b, 0) / vs.length;
const avgIncludeRef = (vs: number[], vol: number) => vs.reduce((a, b) => a + b, 0) / vol;

/** Distinct values (a shuffled ramp) so every window has a unique maximum and the max gradient is well defined. */
function distinct(n: number, seed: number): Float64Array {
  const rand = rng(seed);
  const v = Float64Array.from({ length: n }, (_, i) => (i - n / 2) / n);
  for (let i = n - 1; i > 0; i--) {
    const j = Math.floor(rand() * (i + 1));
    [v[i], v[j]] = [v[j], v[i]];
  }
  return v;
}

const cases: Case[] = [
  { shape: [2, 3, 6, 8], kernel: [2, 2] },
  { shape: [1, 2, 7, 5], kernel: [3, 3], strides: [2, 2], pads: [1, 1, 1, 1] },
  { shape: [2, 1, 5, 6], kernel: [3, 2], strides: [1, 2], pads: [2, 0, 0, 1] },
  { shape: [1, 1, 1, 1], kernel: [1, 1] },
  { shape: [1, 2, 3, 1], kernel: [2, 1], strides: [1, 1], pads: [1, 0, 0, 0] },
  { shape: [2, 2, 3, 4, 6], kernel: [1, 2, 2] },
  { shape: [1, 2, 5, 5, 4], kernel: [3, 3, 3], strides: [2, 2, 1], pads: [1, 1, 1, 1, 0, 1] },
  { shape: [1, 1, 4, 3, 3], kernel: [2, 3, 2], strides: [2, 1, 1], pads: [0, 1, 0, 0, 1, 1] },
];

const describeCase = (c: Case) => `[${c.shape}] kernel [${c.kernel}] strides [${c.strides ?? c.kernel}] pads [${c.pads ?? 0}]`;

describe('maxPool', () => {
  for (const c of cases) {
    it(describeCase(c), async () => {
      const e = await testEngine();
      await checkOp(e, {
        inputs: [{ shape: c.shape, data: distinct(sizeOf(c.shape), c.shape.length) }],
        run: ([x]) => maxPool(x, c),
        ref: ([x]) => poolRef(x, c, maxRef),
      });
    });
  }

  it('routes the gradient of overlapping windows to each maximum (hand-checked)', async () => {
    const e = await testEngine();
    // 1x1x1x4 row [1, 3, 2, 0], windows of 2 with stride 1: maxima 3, 3, 2 at positions 1, 1, 2.
    const x = e.param(e.tensor([1, 3, 2, 0], [1, 1, 1, 4]));
    const y = maxPool(x, { kernel: [1, 2], strides: [1, 1] });
    expect(Array.from(await y.data())).toEqual([3, 3, 2]);
    const loss = (await import('../src/kernels/reduce.ts')).sum(y);
    loss.backward();
    expect(Array.from(await x.grad!.data())).toEqual([0, 2, 1, 0]);
    for (const t of [x, y, loss]) t.dispose();
  });

  it('names bad attributes', async () => {
    const e = await testEngine();
    const x = e.zeros([1, 1, 4, 4]);
    expect(() => maxPool(x, { kernel: [2, 2, 2] })).toThrow('maxPool: kernel must be 2 integers ≥ 1 (one per spatial axis), got [2, 2, 2]');
    expect(() => maxPool(x, { kernel: 2, pads: [2, 0, 0, 0] })).toThrow('maxPool: pads [2, 0, 0, 0] must be smaller than the kernel [2, 2]');
    expect(() => maxPool(x, { kernel: 5 })).toThrow('maxPool: kernel [5, 5] is larger than the padded input [1, 1, 4, 4]');
    expect(() => avgPool(e.zeros([4, 4]), { kernel: 2 })).toThrow('avgPool: input must be [N, C, H, W] or [N, C, D, H, W], got [4, 4]');
    x.dispose();
  });
});

describe('avgPool', () => {
  for (const c of cases) {
    it(describeCase(c), async () => {
      const e = await testEngine();
      await checkOp(e, { inputs: [{ shape: c.shape }], run: ([x]) => avgPool(x, c), ref: ([x]) => poolRef(x, c, avgRef) });
    });
    if (c.pads) {
      it(`${describeCase(c)} countIncludePad`, async () => {
        const e = await testEngine();
        await checkOp(e, {
          inputs: [{ shape: c.shape }],
          run: ([x]) => avgPool(x, { ...c, countIncludePad: true }),
          ref: ([x]) => poolRef(x, c, avgIncludeRef),
        });
      });
    }
  }

  it('globalAvgPool averages every spatial axis', async () => {
    const e = await testEngine();
    const shape = [2, 3, 2, 3, 4];
    await checkOp(e, {
      inputs: [{ shape }],
      run: ([x]) => {
        const y = globalAvgPool(x);
        expect(y.shape).toEqual([2, 3, 1, 1, 1]);
        return y;
      },
      ref: ([x]) => poolRef(x, { shape, kernel: [2, 3, 4] }, avgRef),
    });
  });
});
