// Reductions against float64 references, with finite-difference gradient checks.
import { max, mean, sum, sumTo } from '../../src/index.ts';
import { checkOp, rng, uniform } from '../support/check.ts';
import { expect } from '../support/expect.ts';
import { checkList } from '../support/suite.ts';

const { checks, describe, it } = checkList();
export { checks };

/** Reference reduction over `axes` of a row-major array of `shape`. */
function reduceRef(x: Float64Array, shape: number[], axes: number[], f: (acc: number, v: number) => number, init: number): Float64Array {
  const outShape = shape.map((d, k) => (axes.includes(k) ? 1 : d));
  const out = new Float64Array(outShape.reduce((p, q) => p * q, 1)).fill(init);
  for (let i = 0; i < x.length; i++) {
    let rest = i;
    let o = 0;
    let mul = 1;
    for (let k = shape.length - 1; k >= 0; k--) {
      const c = rest % shape[k];
      rest = Math.floor(rest / shape[k]);
      if (!axes.includes(k)) o += c * mul;
      mul *= outShape[k];
    }
    out[o] = f(out[o], x[i]);
  }
  return out;
}

const cases: [number[], number[]][] = [
  [[5, 7], [1]],
  [[5, 7], [0]],
  [[2, 3, 4, 5], [1, 3]],
  [[2, 3, 4], [0, 1, 2]],
  [[3, 300], [1]], // long rows: one workgroup per output, read as vec4s (300 = 4·75)
  [[3, 301], [1]], // the same with rows that are not whole vec4s: read as values
  [[2, 64, 3, 8], [0, 2, 3]], // rows of 6 vec4s: a workgroup's vec4 steps cross many rows
  [[1100, 12], [1]], // many outputs over vec4 rows: one invocation per output on a CPU adapter
  [[2, 1030, 8], [0, 2]], // the same over two rows per output
  [[1000, 3], [0]], // long strided columns
  [[4, 1, 6], [1]],
  [[3, 4, 20, 30], [0, 2, 3]], // bias gradient: kept [C] x reduced [N, H·W], rows of 600
  [[64, 3, 2], [0, 2]], // workgroup per output over rows of 2: steps of 256 cross many rows
  [[7, 2, 1, 5, 3], [0, 2, 4]], // size-1 axis between reduced axes, short rows, serial
  [[2, 5, 1, 1], [2, 3]], // only size-1 axes reduced
];

describe('reductions', () => {
  for (const [shape, axes] of cases) {
    it(`sum over ${axes} of [${shape}]`, async (e) => {
      await checkOp(e, { inputs: [{ shape }], run: ([x]) => sum(x, axes), ref: ([x]) => reduceRef(x, shape, axes, (a, v) => a + v, 0) });
    });
    it(`mean over ${axes} of [${shape}] (keepDims)`, async (e) => {
      const count = axes.reduce((n, k) => n * shape[k], 1);
      await checkOp(e, {
        inputs: [{ shape }],
        run: ([x]) => {
          const y = mean(x, axes, true);
          expect(y.shape).toEqual(shape.map((d, k) => (axes.includes(k) ? 1 : d)));
          return y;
        },
        ref: ([x]) => reduceRef(x, shape, axes, (a, v) => a + v, 0).map((v) => v / count),
      });
    });
    it(`max over ${axes} of [${shape}]`, async (e) => {
      await checkOp(e, { inputs: [{ shape }], run: ([x]) => max(x, axes), ref: ([x]) => reduceRef(x, shape, axes, Math.max, -Infinity) });
    });
  }

  it('sum of everything to a scalar, negative axes', async (e) => {
    await checkOp(e, { inputs: [{ shape: [6, 5] }], run: ([x]) => sum(x), ref: ([x]) => [x.reduce((a, v) => a + v, 0)] });
    await checkOp(e, { inputs: [{ shape: [6, 5] }], run: ([x]) => sum(x, -1), ref: ([x]) => reduceRef(x, [6, 5], [1], (a, v) => a + v, 0) });
  });

  it('sum of a large vector stays within f32 reference error', async (e) => {
    const n = 1 << 20;
    const data = uniform(n, rng(3));
    await checkOp(e, { inputs: [{ shape: [n], data, grad: false }], run: ([x]) => sum(x), ref: ([x]) => [x.reduce((a, v) => a + v, 0)] });
  });

  it('sumTo undoes a broadcast', async (e) => {
    await checkOp(e, {
      inputs: [{ shape: [2, 3, 4] }],
      run: ([x]) => sumTo(x, [3, 1]),
      ref: ([x]) => reduceRef(x, [2, 3, 4], [0, 2], (a, v) => a + v, 0),
    });
    const x = e.zeros([2, 3]);
    expect(sumTo(x, [2, 3])).toBe(x);
    expect(() => sumTo(x, [4])).toThrow('sumTo: [2, 3] does not reduce to [4]');
    expect(() => sum(x, 2)).toThrow('sum: axis 2 is out of range for rank 2');
    x.dispose();
  });
});
