// Upsampling against a float64 reference of PyTorch's F.interpolate rules, with finite-difference gradient checks.
import { upsample, type UpsampleOptions } from '../../src/index.ts';
import { checkOp, sizeOf } from '../support/check.ts';
import { expect } from '../support/expect.ts';
import { checkList } from '../support/suite.ts';

const { checks, describe, it } = checkList();
export { checks };

/** Taps of output index o along one axis: [[index, weight], ...] (PyTorch's source-index rules). */
function axisTaps(o: number, inSize: number, outSize: number, ratio: number, opts: UpsampleOptions): [number, number][] {
  if ((opts.mode ?? 'nearest') === 'nearest') {
    // PyTorch computes the nearest source in f32: ⌊o · ratio⌋ with ratio rounded to f32.
    return [[Math.min(Math.floor(Math.fround(o * Math.fround(ratio))), inSize - 1), 1]];
  }
  const src = opts.alignCorners
    ? o * (outSize > 1 ? (inSize - 1) / (outSize - 1) : 0)
    : Math.max((o + 0.5) * ratio - 0.5, 0);
  const i0 = Math.min(Math.floor(src), inSize - 1);
  const i1 = Math.min(i0 + 1, inSize - 1);
  const l1 = i1 === i0 ? 0 : src - i0;
  return [[i0, 1 - l1], [i1, l1]];
}

function upsampleRef(x: Float64Array, shape: number[], opts: UpsampleOptions): { out: Float64Array; outShape: number[] } {
  const dims = shape.length - 2;
  const spatial = shape.slice(2);
  const scale = opts.scale === undefined ? undefined : typeof opts.scale === 'number' ? spatial.map(() => opts.scale as number) : [...opts.scale];
  const outSpatial = opts.size ? [...opts.size] : spatial.map((s, a) => Math.floor(s * scale![a]));
  const ratio = spatial.map((s, a) => (scale ? 1 / scale[a] : s / outSpatial[a]));
  const planes = shape[0] * shape[1];
  const inVol = sizeOf(spatial);
  const outVol = sizeOf(outSpatial);
  const out = new Float64Array(planes * outVol);
  for (let p = 0; p < planes; p++) {
    for (let o = 0; o < outVol; o++) {
      const oc: number[] = [];
      let rest = o;
      for (let a = dims - 1; a >= 0; a--) {
        oc[a] = rest % outSpatial[a];
        rest = Math.floor(rest / outSpatial[a]);
      }
      // Tensor product of the per-axis taps.
      let terms: [number, number][] = [[0, 1]];
      for (let a = 0; a < dims; a++) {
        const t = axisTaps(oc[a], spatial[a], outSpatial[a], ratio[a], opts);
        terms = terms.flatMap(([at, w]) => t.map(([i, wi]): [number, number] => [at * spatial[a] + i, w * wi]));
      }
      out[p * outVol + o] = terms.reduce((acc, [at, w]) => acc + w * x[p * inVol + at], 0);
    }
  }
  return { out, outShape: [shape[0], shape[1], ...outSpatial] };
}

const cases: [number[], UpsampleOptions][] = [
  [[2, 3, 3, 4], { scale: 2 }],
  [[1, 2, 3, 5], { scale: [3, 2] }],
  [[1, 2, 4, 3], { size: [7, 5] }],
  [[1, 1, 6, 5], { size: [4, 2] }],
  [[2, 2, 3, 4], { scale: 2, mode: 'linear' }],
  [[1, 2, 4, 5], { scale: [1.5, 2.5], mode: 'linear' }],
  [[1, 1, 5, 6], { size: [3, 4], mode: 'linear' }],
  [[1, 2, 3, 4], { size: [5, 7], mode: 'linear', alignCorners: true }],
  [[1, 1, 1, 1], { scale: 3, mode: 'linear' }],
  [[1, 1, 1, 1], { size: [1, 2], mode: 'linear', alignCorners: true }],
  [[1, 2, 2, 3, 4], { scale: [1, 2, 2] }],
  [[2, 1, 2, 3, 3], { scale: 2, mode: 'linear' }],
  [[1, 2, 3, 2, 4], { size: [4, 3, 5], mode: 'linear', alignCorners: true }],
  [[1, 1, 3, 4, 3], { scale: [1.5, 1, 2.5] }],
];

describe('upsample', () => {
  for (const [shape, opts] of cases) {
    it(`[${shape}] ${JSON.stringify(opts)}`, async (e) => {
      const outShape = upsampleRef(new Float64Array(sizeOf(shape)), shape, opts).outShape;
      await checkOp(e, {
        inputs: [{ shape }],
        run: ([x]) => {
          const y = upsample(x, opts);
          expect(y.shape).toEqual(outShape);
          return y;
        },
        ref: ([x]) => upsampleRef(x, shape, opts).out,
      });
    });
  }

  it('matches PyTorch on hand-checked 2x2 inputs', async (e) => {
    const x = e.tensor([1, 2, 3, 4], [1, 1, 2, 2]);
    const near = upsample(x, { scale: 2 });
    expect(Array.from(await near.data())).toEqual([1, 1, 2, 2, 1, 1, 2, 2, 3, 3, 4, 4, 3, 3, 4, 4]);
    const lin = upsample(x, { scale: 2, mode: 'linear' });
    expect(Array.from((await lin.data()).slice(0, 4))).toEqual([1, 1.25, 1.75, 2]);
    const aligned = upsample(x, { size: [3, 3], mode: 'linear', alignCorners: true });
    expect(Array.from(await aligned.data())).toEqual([1, 1.5, 2, 2, 2.5, 3, 3, 3.5, 4]);
    for (const t of [x, near, lin, aligned]) t.dispose();
  });

  it('names bad options', async (e) => {
    const x = e.zeros([1, 1, 2, 2]);
    expect(() => upsample(x, {})).toThrow('upsample: give exactly one of scale and size');
    expect(() => upsample(x, { scale: 2, alignCorners: true })).toThrow("upsample: alignCorners needs mode 'linear'");
    expect(() => upsample(x, { size: [3] })).toThrow('upsample: size must be 2 positive integers, got [3]');
    expect(() => upsample(x, { scale: 0.2 })).toThrow('upsample: scale [0.2, 0.2] leaves an empty output from [1, 1, 2, 2]');
    x.dispose();
  });
});
