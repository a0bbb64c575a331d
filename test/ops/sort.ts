// sortRows against a stable JavaScript sort of every row: values, indices, ties, NaNs, short and long rows, by both
// methods (the bitonic network and the per-row merge sort of CPU adapters) whatever the adapter.
import { type Engine, sortRows } from '../../src/index.ts';
import { rng, uniform } from '../support/check.ts';
import { expect } from '../support/expect.ts';
import { checkList } from '../support/suite.ts';

const { checks, describe, it } = checkList();
export { checks };

/** Per row, the columns in stable sorted order (NaN last in either order). */
function referenceOrder(keys: Float32Array, rows: number, cols: number, descending: boolean): Int32Array {
  const out = new Int32Array(rows * cols);
  for (let r = 0; r < rows; r++) {
    const row = keys.subarray(r * cols, (r + 1) * cols);
    const order = Array.from({ length: cols }, (_, i) => i).sort((a, b) => {
      const x = row[a];
      const y = row[b];
      if (Number.isNaN(x) || Number.isNaN(y)) return Number(Number.isNaN(x)) - Number(Number.isNaN(y)) || a - b;
      return (descending ? y - x : x - y) || a - b;
    });
    out.set(order, r * cols);
  }
  return out;
}

/** Sorts on the GPU and compares with the reference; returns the first mismatch or null. */
async function sortAndCompare(e: Engine, keys: Float32Array, rows: number, cols: number, descending: boolean, method: SortMethod): Promise<string | null> {
  const scope = e.beginScope();
  const { values, indices } = sortRows(e.tensor(keys, [rows, cols]), { descending, method });
  const v = (await values.data()) as Float32Array;
  const ix = (await indices.data()) as Int32Array;
  scope.end();
  expect(values.shape).toEqual([rows, cols]);
  expect(indices.dtype).toBe('i32');
  const expected = referenceOrder(keys, rows, cols, descending);
  for (let r = 0; r < rows; r++) {
    const seen = new Uint8Array(cols);
    for (let i = 0; i < cols; i++) {
      const at = r * cols + i;
      const c = ix[at];
      if (!(c >= 0 && c < cols) || seen[c]) return `row ${r}: indices are not a permutation (column ${c} at ${i})`;
      seen[c] = 1;
      if (!Object.is(v[at], keys[r * cols + c])) return `row ${r}, position ${i}: value ${v[at]} but keys[${c}] = ${keys[r * cols + c]}`;
      if (c !== expected[at]) return `row ${r}, position ${i}: column ${c}, expected ${expected[at]}`;
    }
  }
  return null;
}

type SortMethod = 'network' | 'serial';
const methods: SortMethod[] = ['network', 'serial'];

function randomKeys(n: number, seed: number, distinct: number | null = null): Float32Array {
  const rand = rng(seed);
  const x = Float32Array.from(uniform(n, rand, -100, 100));
  // Few distinct values: many ties.
  if (distinct !== null) for (let i = 0; i < n; i++) x[i] = Math.floor(rand() * distinct) - distinct / 2;
  return x;
}

describe('sortRows', () => {
  const shapes: [number, number][] = [
    [1, 1], [3, 1], [1, 2], [5, 7], [4, 100], [37, 33], [2, 2048], [3, 2049], [2, 5000], [1, 8192], [3, 12345],
  ];
  for (const method of methods) {
    for (const [rows, cols] of shapes) {
      for (const descending of [false, true]) {
        it(`${method}: [${rows}, ${cols}] ${descending ? 'descending' : 'ascending'}`, async (e) => {
          expect(await sortAndCompare(e, randomKeys(rows * cols, rows * 7919 + cols), rows, cols, descending, method)).toBeNull();
        });
      }
    }

    it(`${method}: ties keep their column order (stable) and lose no element`, async (e) => {
      expect(await sortAndCompare(e, randomKeys(6 * 3000, 5, 7), 6, 3000, false, method)).toBeNull();
      expect(await sortAndCompare(e, randomKeys(50 * 40, 6, 3), 50, 40, true, method)).toBeNull();
      expect(await sortAndCompare(e, new Float32Array(4 * 5000).fill(1.5), 4, 5000, true, method)).toBeNull();
    });

    it(`${method}: NaNs come last in either order; infinities and zeros sort by value`, async (e) => {
      const keys = Float32Array.from([3, NaN, -Infinity, 0, Infinity, NaN, -2, 1e-30, -1e-30, 7]);
      for (const descending of [false, true]) {
        expect(await sortAndCompare(e, keys, 1, keys.length, descending, method)).toBeNull();
        const big = randomKeys(3000, 9);
        for (let i = 0; i < big.length; i += 17) big[i] = NaN;
        expect(await sortAndCompare(e, big, 1, big.length, descending, method)).toBeNull();
      }
    });

    it(`${method}: many short rows in one dispatch`, async (e) => {
      expect(await sortAndCompare(e, randomKeys(3000 * 5, 11), 3000, 5, true, method)).toBeNull();
    });

    it(`${method}: a long row (300k) and several long rows`, async (e) => {
      expect(await sortAndCompare(e, randomKeys(300_000, 12), 1, 300_000, true, method)).toBeNull();
      expect(await sortAndCompare(e, randomKeys(4 * 40_000, 13), 4, 40_000, false, method)).toBeNull();
    });
  }

  it('the hand case', async (e) => {
    const { values, indices } = sortRows(e.tensor([0.5, -1, 2, 0.5, 0, 9, 8, 7], [2, 4]), { descending: true });
    expect(Array.from(await values.data())).toEqual([2, 0.5, 0.5, -1, 9, 8, 7, 0]);
    expect(Array.from(await indices.data())).toEqual([2, 0, 3, 1, 1, 2, 3, 0]);
    values.dispose();
    indices.dispose();
  });

  it('names bad inputs', async (e) => {
    const ints = e.tensor(new Int32Array(4), [2, 2]);
    expect(() => sortRows(ints)).toThrow('sortRows: keys must be f32, got i32 [2, 2]');
    const cube = e.zeros([2, 2, 2]);
    expect(() => sortRows(cube)).toThrow('sortRows: keys must be [rows, cols], got [2, 2, 2]');
    const keys = e.zeros([2, 2]);
    expect(() => sortRows(keys, { method: 'quick' as never })).toThrow(`sortRows: method must be 'network' or 'serial', got "quick"`);
    keys.dispose();
    ints.dispose();
    cube.dispose();
  });
});
