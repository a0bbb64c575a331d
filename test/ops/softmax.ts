// Softmax and log-softmax against float64 references along several axes, with gradient checks.
import { logSoftmax, softmax } from '../../src/index.ts';
import { checkOp, rng, uniform } from '../support/check.ts';
import { expect } from '../support/expect.ts';
import { checkList } from '../support/suite.ts';

const { checks, describe, it } = checkList();
export { checks };

/** Reference (log-)softmax of a row-major array of `shape` along `axis`, in float64. */
function softmaxRef(x: Float64Array, shape: number[], axis: number, log: boolean): Float64Array {
  const len = shape[axis];
  const inner = shape.slice(axis + 1).reduce((p, q) => p * q, 1);
  const outer = x.length / (len * inner);
  const out = new Float64Array(x.length);
  for (let o = 0; o < outer; o++) {
    for (let i = 0; i < inner; i++) {
      const at = (l: number) => o * len * inner + l * inner + i;
      let m = -Infinity;
      for (let l = 0; l < len; l++) m = Math.max(m, x[at(l)]);
      let s = 0;
      for (let l = 0; l < len; l++) s += Math.exp(x[at(l)] - m);
      for (let l = 0; l < len; l++) out[at(l)] = log ? x[at(l)] - m - Math.log(s) : Math.exp(x[at(l)] - m) / s;
    }
  }
  return out;
}

const cases: [number[], number][] = [
  [[5, 7], -1],
  [[4, 6], 0],
  [[2, 3, 4, 5], 1], // channel axis of N,C,H,W
  [[3, 1, 4], 1], // axis of length 1
  [[2, 1000], 1], // long rows: one workgroup per row
  [[300, 3], 0], // long strided rows
  [[2, 40, 3], 1], // medium rows, few of them: workgroup path with inner > 1
  [[512, 33], 1], // medium rows, many: a workgroup per row on a GPU, one invocation per row on a CPU adapter
];

describe('softmax', () => {
  for (const [shape, axis] of cases) {
    const k = axis < 0 ? axis + shape.length : axis;
    for (const log of [false, true]) {
      const op = log ? logSoftmax : softmax;
      it(`${log ? 'logSoftmax' : 'softmax'} over axis ${axis} of [${shape}]`, async (e) => {
        await checkOp(e, { inputs: [{ shape }], run: ([x]) => op(x, axis), ref: ([x]) => softmaxRef(x, shape, k, log) });
      });
    }
  }

  for (const log of [false, true]) {
    const name = log ? 'logSoftmax' : 'softmax';
    const op = log ? logSoftmax : softmax;
    it(`${name} of inputs in ±80 is stable`, async (e) => {
      const shape = [3, 8, 5];
      await checkOp(e, {
        inputs: [{ shape, data: uniform(120, rng(7), -80, 80) }],
        run: ([x]) => op(x, 1),
        ref: ([x]) => softmaxRef(x, shape, 1, log),
      });
    });

    it(`${name} of rows near 100 (exp overflows f32) is stable`, async (e) => {
      const shape = [2, 600];
      await checkOp(e, {
        inputs: [{ shape, data: uniform(1200, rng(8), 90, 100), grad: false }],
        run: ([x]) => op(x),
        ref: ([x]) => softmaxRef(x, shape, 1, log),
      });
    });
  }

  it('hand-checked values', async (e) => {
    // Rows [0, 1] and [1000, 1001]: the same answer, 1/(1+e) and e/(1+e), without overflowing.
    const x = e.tensor([0, 1, 1000, 1001], [2, 2]);
    const y = await softmax(x).data();
    expect(Array.from(y).map((v) => Number(v.toFixed(6)))).toEqual([0.268941, 0.731059, 0.268941, 0.731059]);
    const l = await logSoftmax(x).data();
    expect(Array.from(l).map((v) => Number(v.toFixed(5)))).toEqual([-1.31326, -0.31326, -1.31326, -0.31326]);
    const ones = await softmax(e.tensor([5, -7, 1e30], [3, 1]), 1).data();
    expect(Array.from(ones)).toEqual([1, 1, 1]);
  });

  it('errors name the op and axis', async (e) => {
    const x = e.zeros([2, 3]);
    expect(() => softmax(x, 2)).toThrow('softmax: axis 2 is out of range for rank 2');
    expect(() => logSoftmax(x, -3)).toThrow('logSoftmax: axis -3 is out of range for rank 2');
    expect(() => softmax(e.zeros([2, 0]))).toThrow('softmax: input [2, 0] is empty');
  });
});
