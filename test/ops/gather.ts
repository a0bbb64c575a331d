// gatherPixels and selectChannels against float64 references, with the gather's gradient by finite differences.
import { gatherPixels, selectChannels } from '../../src/index.ts';
import { checkOp, rng, sizeOf } from '../support/check.ts';
import { expect } from '../support/expect.ts';
import { checkList } from '../support/suite.ts';

const { checks, describe, it } = checkList();
export { checks };

/** `count` distinct pixel indices out of `total`, in a seeded random order. */
function distinctPixels(total: number, count: number, seed: number): Int32Array {
  const rand = rng(seed);
  const all = Array.from({ length: total }, (_, i) => i);
  for (let i = total - 1; i > 0; i--) {
    const j = Math.floor(rand() * (i + 1));
    [all[i], all[j]] = [all[j], all[i]];
  }
  return Int32Array.from(all.slice(0, count));
}

describe('gatherPixels', () => {
  const cases: [number[], number][] = [
    [[2, 3, 4, 5], 17],
    [[1, 5, 3, 2, 4], 24],
    [[3, 1, 7], 21],
    [[2, 4, 2, 2], 1],
  ];
  for (const [shape, count] of cases) {
    it(`[${shape}] → ${count} rows`, async (e) => {
      const [items, channels] = shape;
      const spatial = sizeOf(shape.slice(2));
      const pixels = distinctPixels(items * spatial, count, shape.length * 31 + count);
      await checkOp(e, {
        inputs: [{ shape }],
        run: ([x]) => {
          const y = gatherPixels(x, pixels);
          expect(y.shape).toEqual([count, channels]);
          return y;
        },
        ref: ([x]) => {
          const out = new Float64Array(count * channels);
          pixels.forEach((p, m) => {
            const n = Math.floor(p / spatial);
            for (let c = 0; c < channels; c++) out[m * channels + c] = x[(n * channels + c) * spatial + (p % spatial)];
          });
          return out;
        },
      });
    });
  }

  it('names indices outside x and repeated ones', async (e) => {
    const x = e.zeros([1, 2, 3, 3]);
    expect(() => gatherPixels(x, Int32Array.from([0, 9]))).toThrow('gatherPixels: pixel index 9 (row 1) is outside the 9 pixels of x [1, 2, 3, 3]');
    expect(() => gatherPixels(x, Int32Array.from([4, 2, 4]))).toThrow('gatherPixels: pixel index 4 is given twice (rows 0 and 2); pixels must be distinct');
    x.dispose();
  });
});

describe('selectChannels', () => {
  it('keeps the listed channels in their order, repeats allowed', async (e) => {
    const shape = [2, 5, 3, 4];
    const channels = [4, 0, 2, 2];
    await checkOp(e, {
      inputs: [{ shape, grad: false }],
      run: ([x]) => selectChannels(x, channels),
      ref: ([x]) => {
        const spatial = 12;
        const out = new Float64Array(2 * channels.length * spatial);
        for (let n = 0; n < 2; n++) {
          channels.forEach((c, k) => {
            for (let s = 0; s < spatial; s++) out[(n * channels.length + k) * spatial + s] = x[(n * 5 + c) * spatial + s];
          });
        }
        return out;
      },
    });
  });

  it('names a channel that x does not have', async (e) => {
    const x = e.zeros([1, 3, 2, 2]);
    expect(() => selectChannels(x, [1, 3])).toThrow('selectChannels: channel 3 (entry 1) is not one of the 3 channels of x [1, 3, 2, 2]');
    x.dispose();
  });
});
