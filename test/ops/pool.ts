// Pooling against float64 references, with finite-difference gradient checks, in 2D and 3D; ONNX's own backend test
// cases for dilations and ceil_mode with their expected outputs.
import { avgPool, type Engine, globalAvgPool, maxPool, sum, type Tensor } from '../../src/index.ts';
import { checkOp, rng, sizeOf } from '../support/check.ts';
import { expect } from '../support/expect.ts';
import { checkList } from '../support/suite.ts';

const { checks, describe, it } = checkList();
export { checks };

interface Case {
  shape: number[];
  kernel: number[];
  strides?: number[];
  pads?: number[];
  dilations?: number[];
  ceilMode?: boolean;
}

/** ONNX's output size on one axis: floor or ceil, and in ceil mode no window that starts in the end padding. */
function outputSize(size: number, kernel: number, stride: number, dilation: number, padBegin: number, padEnd: number, ceil: boolean): number {
  const steps = (size + padBegin + padEnd - ((kernel - 1) * dilation + 1)) / stride;
  const out = (ceil ? Math.ceil(steps) : Math.floor(steps)) + 1;
  return ceil && (out - 1) * stride >= size + padBegin ? out - 1 : out;
}

/**
 * Reference pooling in float64 over [N, C, ...spatial] (2D or 3D); `reduce` gets the window's in-image values and the
 * number of its taps inside the padded input (countIncludePad's divisor).
 */
function poolRef(x: Float64Array, c: Case, reduce: (values: number[], paddedTaps: number) => number): Float64Array {
  const dims = c.shape.length - 2;
  const spatial = c.shape.slice(2);
  const strides = c.strides ?? c.kernel;
  const dilations = c.dilations ?? new Array(dims).fill(1);
  const pads = c.pads ?? new Array(2 * dims).fill(0);
  const outSpatial = spatial.map((s, a) => outputSize(s, c.kernel[a], strides[a], dilations[a], pads[a], pads[dims + a], c.ceilMode ?? false));
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
      let paddedTaps = 0;
      for (let k = 0; k < windowVolume; k++) {
        let kr = k;
        let at = 0;
        let ok = true;
        let inPadded = true;
        const kc: number[] = [];
        for (let a = dims - 1; a >= 0; a--) {
          kc[a] = kr % c.kernel[a];
          kr = Math.floor(kr / c.kernel[a]);
        }
        for (let a = 0; a < dims; a++) {
          const i = oc[a] * strides[a] - pads[a] + kc[a] * dilations[a];
          if (i < 0 || i >= spatial[a]) ok = false;
          if (i >= spatial[a] + pads[dims + a]) inPadded = false;
          at = at * spatial[a] + i;
        }
        if (ok) values.push(x[p * inVol + at]);
        if (inPadded) paddedTaps++;
      }
      out[p * outVol + o] = reduce(values, paddedTaps);
    }
  }
  return out;
}

const maxRef = (vs: number[]) => Math.max(...vs);
const avgRef = (vs: number[]) => vs.reduce((a, b) => a + b, 0) / vs.length;
const avgIncludeRef = (vs: number[], paddedTaps: number) => vs.reduce((a, b) => a + b, 0) / paddedTaps;

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
  // Dilations and ceil mode. Ceil-mode windows here run past the end padding (fewer taps counted with countIncludePad),
  // and [1, 2, 5, 6] / the 3D case's H axis hit the rule that drops a window starting in the end padding.
  { shape: [1, 2, 7, 8], kernel: [2, 2], strides: [1, 1], dilations: [2, 2] },
  { shape: [2, 1, 7, 6], kernel: [3, 3], strides: [2, 2], ceilMode: true },
  { shape: [1, 2, 5, 6], kernel: [2, 3], strides: [2, 2], pads: [1, 1, 1, 1], ceilMode: true },
  { shape: [1, 2, 9, 7], kernel: [3, 2], strides: [2, 3], pads: [1, 0, 2, 1], dilations: [2, 3], ceilMode: true },
  { shape: [2, 1, 3, 7, 6], kernel: [1, 3, 2], strides: [1, 1, 2], dilations: [1, 2, 2] },
  { shape: [1, 2, 5, 6, 7], kernel: [2, 2, 2], strides: [1, 2, 2], pads: [1, 0, 1, 0, 1, 1], dilations: [2, 1, 3], ceilMode: true },
];

const describeCase = (c: Case) =>
  `[${c.shape}] kernel [${c.kernel}] strides [${c.strides ?? c.kernel}] pads [${c.pads ?? 0}]` +
  `${c.dilations ? ` dilations [${c.dilations}]` : ''}${c.ceilMode ? ' ceilMode' : ''}`;

/** 1..16 as a 4×4 image: the input of ONNX's 2D dilations and ceil_mode cases (their 3D ones stack it 4 times). */
const onnxRamp = Array.from({ length: 16 }, (_, i) => i + 1);

/** Runs one of ONNX's backend test cases (onnx/backend/test/case/node/{maxpool,averagepool}.py): exact outputs. */
async function onnxCase(e: Engine, pool: (x: Tensor) => Tensor, data: number[], shape: number[], outShape: number[], expected: number[]) {
  const x = e.tensor(data, shape);
  const y = pool(x);
  expect(y.shape).toEqual(outShape);
  expect(Array.from(await y.data())).toEqual(expected);
  for (const t of [x, y]) t.dispose();
}

describe('maxPool', () => {
  for (const c of cases) {
    it(describeCase(c), async (e) => {
      await checkOp(e, {
        inputs: [{ shape: c.shape, data: distinct(sizeOf(c.shape), c.shape.length) }],
        run: ([x]) => maxPool(x, c),
        ref: ([x]) => poolRef(x, c, maxRef),
      });
    });
  }

  it('routes the gradient of overlapping windows to each maximum (hand-checked)', async (e) => {
    // 1x1x1x4 row [1, 3, 2, 0], windows of 2 with stride 1: maxima 3, 3, 2 at positions 1, 1, 2.
    const x = e.param(e.tensor([1, 3, 2, 0], [1, 1, 1, 4]));
    const y = maxPool(x, { kernel: [1, 2], strides: [1, 1] });
    expect(Array.from(await y.data())).toEqual([3, 3, 2]);
    const loss = sum(y);
    loss.backward();
    expect(Array.from(await x.grad!.data())).toEqual([0, 2, 1, 0]);
    for (const t of [x, y, loss]) t.dispose();
  });

  it('names bad attributes', async (e) => {
    const x = e.zeros([1, 1, 4, 4]);
    expect(() => maxPool(x, { kernel: [2, 2, 2] })).toThrow('maxPool: kernel must be 2 integers ≥ 1 (one per spatial axis), got [2, 2, 2]');
    expect(() => maxPool(x, { kernel: 2, pads: [2, 0, 0, 0] })).toThrow(
      'maxPool: pads [2, 0, 0, 0] leave output 0 along spatial axis 0 with only padding in its window (kernel [2, 2], dilations [1, 1])',
    );
    expect(() => maxPool(x, { kernel: 5 })).toThrow('maxPool: kernel [5, 5] (dilations [1, 1]) is larger than the input [1, 1, 4, 4] padded by [0, 0, 0, 0]');
    expect(() => avgPool(e.zeros([4, 4]), { kernel: 2 })).toThrow('avgPool: input must be [N, C, H, W] or [N, C, D, H, W], got [4, 4]');
    expect(() => maxPool(x, { kernel: 2, dilations: [2, 0] })).toThrow('maxPool: dilations must be 2 integers ≥ 1 (one per spatial axis), got [2, 0]');
    // The dilated extent (3 − 1)·2 + 1 = 5 does not fit in 4.
    expect(() => maxPool(x, { kernel: 3, dilations: 2 })).toThrow('maxPool: kernel [3, 3] (dilations [2, 2]) is larger than the input [1, 1, 4, 4] padded by [0, 0, 0, 0]');
    // Pads smaller than the kernel, yet the taps −1 and 1 of the only window on a 1-wide axis both fall in padding.
    const thin = e.zeros([1, 1, 4, 1]);
    expect(() => avgPool(thin, { kernel: 2, strides: 1, dilations: 2, pads: [0, 1, 0, 1] })).toThrow(
      'avgPool: pads [0, 1, 0, 1] leave output 0 along spatial axis 1 with only padding in its window (kernel [2, 2], dilations [2, 2])',
    );
    for (const t of [x, thin]) t.dispose();
  });

  // ONNX's backend test cases.
  it('ONNX test_maxpool_2d_dilations', (e) =>
    onnxCase(e, (x) => maxPool(x, { kernel: [2, 2], strides: [1, 1], dilations: [2, 2] }), onnxRamp, [1, 1, 4, 4], [1, 1, 2, 2], [11, 12, 15, 16]));
  it('ONNX test_maxpool_2d_ceil', (e) =>
    onnxCase(e, (x) => maxPool(x, { kernel: [3, 3], strides: [2, 2], ceilMode: true }), onnxRamp, [1, 1, 4, 4], [1, 1, 2, 2], [11, 12, 15, 16]));
  it('ONNX test_maxpool_3d_dilations', (e) =>
    onnxCase(
      e,
      (x) => maxPool(x, { kernel: [2, 2, 2], strides: [1, 1, 1], dilations: [2, 2, 2] }),
      [...onnxRamp, ...onnxRamp, ...onnxRamp, ...onnxRamp], [1, 1, 4, 4, 4], [1, 1, 2, 2, 2], [11, 12, 15, 16, 11, 12, 15, 16],
    ));
});

describe('avgPool', () => {
  for (const c of cases) {
    it(describeCase(c), async (e) => {
      await checkOp(e, { inputs: [{ shape: c.shape }], run: ([x]) => avgPool(x, c), ref: ([x]) => poolRef(x, c, avgRef) });
    });
    if (c.pads || c.ceilMode) {
      it(`${describeCase(c)} countIncludePad`, async (e) => {
        await checkOp(e, {
          inputs: [{ shape: c.shape }],
          run: ([x]) => avgPool(x, { ...c, countIncludePad: true }),
          ref: ([x]) => poolRef(x, c, avgIncludeRef),
        });
      });
    }
  }

  it('countIncludePad never counts what a ceil-mode window has past the end padding (hand-checked)', async (e) => {
    // Row [1, 2, 3, 4, 5], windows of 2 with stride 2: the last one holds only 5, and PyTorch divides it by 1, not 2.
    const x = e.tensor([1, 2, 3, 4, 5], [1, 1, 1, 5]);
    const y = avgPool(x, { kernel: [1, 2], ceilMode: true, countIncludePad: true });
    expect(Array.from(await y.data())).toEqual([1.5, 3.5, 5]);
    for (const t of [x, y]) t.dispose();
  });

  // ONNX's backend test cases.
  it('ONNX test_averagepool_2d_ceil', (e) =>
    onnxCase(e, (x) => avgPool(x, { kernel: [3, 3], strides: [2, 2], ceilMode: true }), onnxRamp, [1, 1, 4, 4], [1, 1, 2, 2], [6, 7.5, 12, 13.5]));
  it('ONNX test_averagepool_2d_dilations', (e) =>
    onnxCase(
      e,
      (x) => avgPool(x, { kernel: [2, 2], strides: [1, 1], dilations: [2, 2], ceilMode: true }),
      onnxRamp, [1, 1, 4, 4], [1, 1, 2, 2], [6, 7, 10, 11],
    ));
  it('ONNX test_averagepool_3d_dilations_small', (e) =>
    onnxCase(
      e,
      (x) => avgPool(x, { kernel: [2, 2, 2], strides: [1, 1, 1], dilations: [2, 2, 2], ceilMode: true }),
      [...onnxRamp, ...onnxRamp, ...onnxRamp, ...onnxRamp], [1, 1, 4, 4, 4], [1, 1, 2, 2, 2], [6, 7, 10, 11, 6, 7, 10, 11],
    ));

  it('globalAvgPool averages every spatial axis', async (e) => {
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
