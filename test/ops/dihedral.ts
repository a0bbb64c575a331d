// The 8 rotations/flips of the (H, W) plane against numpy-style references, their inverses, and the vector remap.
import { dihedral, dihedralInverse, dihedralInverseIndex, dihedralVectorMap } from '../../src/index.ts';
import { rng } from '../support/check.ts';
import { expect } from '../support/expect.ts';
import { checkList } from '../support/suite.ts';

const { checks, describe, it } = checkList();
export { checks };

/** np.rot90(a, 1, axes=(-2, -1)) of [P, H, W] planes: out[i, j] = a[j, W−1−i], shape [P, W, H]. */
function rot90(a: number[], planes: number, h: number, w: number): number[] {
  const out: number[] = [];
  for (let p = 0; p < planes; p++) for (let i = 0; i < w; i++) for (let j = 0; j < h; j++) out.push(a[(p * h + j) * w + (w - 1 - i)]);
  return out;
}

/** np.flip(a, -1). */
function flipX(a: number[], planes: number, h: number, w: number): number[] {
  const out: number[] = [];
  for (let p = 0; p < planes; p++) for (let y = 0; y < h; y++) for (let x = 0; x < w; x++) out.push(a[(p * h + y) * w + (w - 1 - x)]);
  return out;
}

/** Transform t = k + 4·f: the optional flip, then k quarter turns; returns the values and the plane's new size. */
function dihedralRef(a: number[], planes: number, h: number, w: number, t: number): { values: number[]; h: number; w: number } {
  let values = t >= 4 ? flipX(a, planes, h, w) : a;
  for (let k = 0; k < t % 4; k++) {
    values = rot90(values, planes, h, w);
    [h, w] = [w, h];
  }
  return { values, h, w };
}

const shapes = [
  [2, 3, 5, 7],
  [1, 2, 37, 20], // partial 16 x 16 tiles on both axes
  [3, 1, 1],
];

describe('dihedral', () => {
  for (const shape of shapes) {
    it(`matches flip + np.rot90 and inverts exactly for every t, [${shape}]`, async (e) => {
      const rand = rng(shape.length * 31 + shape[shape.length - 1]);
      const size = shape.reduce((p, q) => p * q, 1);
      const data = Float32Array.from({ length: size }, () => rand() * 2 - 1);
      const [h, w] = shape.slice(-2);
      const planes = size / (h * w);
      const x = e.tensor(data, shape);
      for (let t = 0; t < 8; t++) {
        const y = dihedral(x, t);
        const ref = dihedralRef(Array.from(data), planes, h, w, t);
        expect(y.shape).toEqual([...shape.slice(0, -2), ref.h, ref.w]);
        expect(Array.from(await y.data())).toEqual(ref.values.map(Math.fround));
        const back = dihedralInverse(y, t);
        expect(back.shape).toEqual(shape);
        expect(Array.from(await back.data())).toEqual(Array.from(data));
        y.dispose();
        back.dispose();
      }
      x.dispose();
    });
  }

  it('moves i32 labels bit for bit; the group structure holds (t = 1 four times is the identity; flips are involutions)', async (e) => {
    const labels = Int32Array.from({ length: 4 * 6 }, (_, i) => (i % 5 === 0 ? -1 : i * 7919));
    const x = e.tensor(labels, [1, 1, 4, 6], 'i32');
    let y = x;
    for (let k = 0; k < 4; k++) y = dihedral(y, 1);
    expect(y.dtype).toBe('i32');
    expect(Array.from(await y.data())).toEqual(Array.from(labels));
    expect(Array.from(await dihedral(x, 2).data())).toEqual(Array.from(await dihedral(dihedral(x, 1), 1).data()));
    expect(Array.from(await dihedral(x, 5).data())).toEqual(Array.from(await dihedral(dihedral(x, 4), 1).data()));
    for (let t = 0; t < 8; t++) expect(dihedralInverseIndex(dihedralInverseIndex(t))).toBe(t);
    expect([0, 1, 2, 3, 4, 5, 6, 7].map(dihedralInverseIndex)).toEqual([0, 3, 2, 1, 4, 5, 6, 7]);
  });

  it("the vector remap brings offsets predicted in the transformed frame back to the image's axes", async (e) => {
    const [h, w] = [6, 9];
    const v = { y: 2, x: -3 };
    // The image's pixel indices, transformed: where each image pixel lands in the transformed frame.
    const index = e.tensor(Int32Array.from({ length: h * w }, (_, i) => i), [1, 1, h, w], 'i32');
    for (let t = 0; t < 8; t++) {
      const moved = dihedral(index, t);
      const [th, tw] = moved.shape.slice(2);
      const origin = (await moved.data()) as Int32Array;
      const at = new Map<number, [number, number]>();
      origin.forEach((q, p) => at.set(q, [Math.floor(p / tw), p % tw]));
      // An equivariant model's offsets on the transformed image: from each pixel to where its image-frame target
      // p + v landed, as (x, y) channels of the transformed frame; NaN where the target leaves the image.
      const offsets = new Float32Array(2 * th * tw).fill(NaN);
      origin.forEach((q, p) => {
        const [y, x] = [Math.floor(q / w) + v.y, (q % w) + v.x];
        if (y < 0 || y >= h || x < 0 || x >= w) return;
        const [ty, tx] = at.get(y * w + x)!;
        offsets[p] = tx - (p % tw);
        offsets[th * tw + p] = ty - Math.floor(p / tw);
      });
      const back = (await dihedralInverse(e.tensor(offsets, [1, 2, th, tw]), t).data()) as Float32Array;
      for (const order of ['xy', 'yx'] as const) {
        const { source, sign } = dihedralVectorMap(t, order);
        // The channels in `order`: the xy field read with its channels swapped for yx.
        const channel = (c: number) => (order === 'xy' ? c : 1 - c);
        let checked = 0;
        for (let i = 0; i < h * w; i++) {
          const got = [0, 1].map((c) => sign[c] * back[channel(source[c]) * h * w + i]);
          if (Number.isNaN(got[0])) continue;
          expect(got, `t = ${t}, ${order}, pixel ${i}`).toEqual(order === 'xy' ? [v.x, v.y] : [v.y, v.x]);
          checked++;
        }
        expect(checked).toBe((h - v.y) * (w + v.x));
      }
    }
  });

  it("matches SPEC.md's TTA formulas for the rotations (channels x, y): rot90 [−o1, o0], rot180 [−o0, −o1], rot270 [o1, −o0]", () => {
    expect(dihedralVectorMap(0)).toEqual({ source: [0, 1], sign: [1, 1] });
    expect(dihedralVectorMap(1)).toEqual({ source: [1, 0], sign: [-1, 1] });
    expect(dihedralVectorMap(2)).toEqual({ source: [0, 1], sign: [-1, -1] });
    expect(dihedralVectorMap(3)).toEqual({ source: [1, 0], sign: [1, -1] });
    // The x-flip negates x only.
    expect(dihedralVectorMap(4)).toEqual({ source: [0, 1], sign: [-1, 1] });
  });

  it('names what is wrong', async (e) => {
    const x = e.zeros([2, 3]);
    expect(() => dihedral(x, 8)).toThrow('dihedral: transform must be an integer in 0..7, got 8');
    expect(() => dihedralInverse(x, 1.5)).toThrow('dihedralInverse: transform must be an integer in 0..7, got 1.5');
    expect(() => dihedral(e.zeros([5]), 0)).toThrow('dihedral: needs [..., H, W], got [5]');
    expect(() => dihedralVectorMap(-1)).toThrow('dihedralVectorMap: transform must be an integer in 0..7');
  });
});
