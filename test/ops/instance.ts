// Instance ids and per-instance statistics against a float64 CPU reference: hand cases, sparse and many labels,
// empty items, 1D/3D anisotropic shapes, truncated rows, 64-bit coordinate sums, poisoned outputs and leaks.
import { type Engine, instanceIds, instanceStats } from '../../src/index.ts';
import { rng, coordsOf } from '../support/check.ts';
import { expect } from '../support/expect.ts';
import { checkList } from '../support/suite.ts';

const { checks, describe, it } = checkList();
export { checks };

interface StatsRef {
  ids: number[];
  counts: number[];
  labels: number[];
  sizes: number[];
  centroids: number[];
  boxMin: number[];
  boxMax: number[];
}

/** Per item: ids in ascending label order; per row (S per item) label, size, mean coordinate and box, 0 past K_n. */
function statsRef(labels: ArrayLike<number>, shape: readonly number[], rows: number): StatsRef {
  const [items, , ...spatial] = shape;
  const dims = spatial.length;
  const pixels = spatial.reduce((a, b) => a * b, 1);
  const ref: StatsRef = { ids: [], counts: [], labels: [], sizes: [], centroids: [], boxMin: [], boxMax: [] };
  for (let n = 0; n < items; n++) {
    const values = Array.from({ length: pixels }, (_, p) => labels[n * pixels + p]);
    const distinct = [...new Set(values.filter((l) => l > 0))].sort((a, b) => a - b);
    ref.counts.push(distinct.length);
    ref.ids.push(...values.map((l) => (l > 0 ? distinct.indexOf(l) : l === 0 ? -1 : -2)));
    for (let k = 0; k < rows; k++) {
      const pixelsOf = k < distinct.length ? values.flatMap((l, p) => (l === distinct[k] ? [coordsOf(p, spatial)] : [])) : [];
      ref.labels.push(k < distinct.length ? distinct[k] : 0);
      ref.sizes.push(pixelsOf.length);
      for (let a = 0; a < dims; a++) {
        const axis = pixelsOf.map((c) => c[a]);
        ref.centroids.push(axis.length ? axis.reduce((s, v) => s + v, 0) / axis.length : 0);
        ref.boxMin.push(axis.length ? Math.min(...axis) : 0);
        ref.boxMax.push(axis.length ? Math.max(...axis) : 0);
      }
    }
  }
  return ref;
}

/** instanceStats on the GPU, read back, with every tensor disposed and none leaked. */
async function stats(e: Engine, labels: ArrayLike<number>, shape: number[], maxInstances?: number): Promise<StatsRef> {
  const t = e.tensor(Int32Array.from(labels), shape);
  const before = e.stats().liveTensors;
  const s = instanceStats(t, maxInstances === undefined ? {} : { maxInstances });
  const rows = maxInstances ?? shape.slice(2).reduce((a, b) => a * b, 1);
  const dims = shape.length - 2;
  expect(s.ids.shape).toEqual(shape);
  expect(s.counts.shape).toEqual([shape[0]]);
  expect(s.labels.shape).toEqual([shape[0], rows]);
  expect(s.sizes.shape).toEqual([shape[0], rows]);
  for (const box of [s.centroids, s.boxMin, s.boxMax]) expect(box.shape).toEqual([shape[0], rows, dims]);
  expect([s.ids, s.labels, s.boxMin, s.boxMax].map((x) => x.dtype)).toEqual(['i32', 'i32', 'i32', 'i32']);
  expect([s.counts.dtype, s.sizes.dtype, s.centroids.dtype]).toEqual(['u32', 'u32', 'f32']);
  const out = {
    ids: Array.from(await s.ids.data()), counts: Array.from(await s.counts.data()), labels: Array.from(await s.labels.data()),
    sizes: Array.from(await s.sizes.data()), centroids: Array.from(await s.centroids.data()),
    boxMin: Array.from(await s.boxMin.data()), boxMax: Array.from(await s.boxMax.data()),
  };
  for (const x of Object.values(s)) x.dispose();
  expect(e.stats().liveTensors, 'tensors leaked').toBe(before);
  t.dispose();
  return out;
}

/** GPU and reference agree: integers exactly, centroids to f32 rounding. */
function expectMatches(out: StatsRef, ref: StatsRef): void {
  const { centroids, ...exact } = out;
  const { centroids: refCentroids, ...refExact } = ref;
  expect(exact).toEqual(refExact);
  expect(centroids.length).toBe(refCentroids.length);
  centroids.forEach((c, i) => expect(Math.abs(c - refCentroids[i]), `centroid ${i}: ${c} vs ${refCentroids[i]}`).toBeLessThanOrEqual(1e-6 * Math.max(1, Math.abs(refCentroids[i]))));
}

describe('instanceStats', () => {
  it('a hand case: sparse labels numbered in label order, ignored and background pixels, boxes and centroids', async (e) => {
    const labels = [
      [0, 1000, 1000, 0, 0],
      [0, 1000, -1, 7, 7],
      [0, 0, 0, 7, 0],
    ].flat();
    const out = await stats(e, labels, [1, 1, 3, 5], 3);
    // Label 7 (the smaller) is instance 0, label 1000 instance 1.
    expect(out.ids).toEqual([-1, 1, 1, -1, -1, -1, 1, -2, 0, 0, -1, -1, -1, 0, -1]);
    expect(out.counts).toEqual([2]);
    expect(out.labels).toEqual([7, 1000, 0]);
    expect(out.sizes).toEqual([3, 3, 0]);
    // 7 at (1, 3), (1, 4), (2, 3); 1000 at (0, 1), (0, 2), (1, 1).
    expect(out.centroids.map((v) => Math.round(v * 3))).toEqual([4, 10, 1, 4, 0, 0]);
    expect(out.boxMin).toEqual([1, 3, 0, 1, 0, 0]);
    expect(out.boxMax).toEqual([2, 4, 1, 2, 0, 0]);
    expectMatches(out, statsRef(labels, [1, 1, 3, 5], 3));
  });

  it('items without instances, one instance filling its item, and several items', async (e) => {
    const shape = [3, 1, 4, 3];
    const labels = [...new Array<number>(12).fill(0).map((_, i) => (i % 5 === 0 ? -1 : 0)), ...new Array<number>(12).fill(3), ...new Array<number>(12).fill(0).map((_, i) => (i < 6 ? 2 : 9))];
    const out = await stats(e, labels, shape, 2);
    expect(out.counts).toEqual([0, 1, 2]);
    expect(out.sizes).toEqual([0, 0, 12, 0, 6, 6]);
    expect(out.labels).toEqual([0, 0, 3, 0, 2, 9]);
    expectMatches(out, statsRef(labels, shape, 2));
    // All background: every row zero.
    const none = await stats(e, new Array<number>(12).fill(0), [1, 1, 4, 3]);
    expectMatches(none, statsRef(new Array<number>(12).fill(0), [1, 1, 4, 3], 12));
    expect(none.counts).toEqual([0]);
  });

  const randomCases: { name: string; shape: number[]; range: [number, number]; rows?: number }[] = [
    { name: '3D anisotropic [2, 1, 3, 5, 7]', shape: [2, 1, 3, 5, 7], range: [-1, 6] },
    { name: '1D [2, 1, 40]', shape: [2, 1, 40], range: [-1, 9] },
    { name: '2D, rows truncated to 3 of up to 8 instances', shape: [2, 1, 6, 9], range: [0, 8], rows: 3 },
  ];
  for (const c of randomCases) {
    it(`matches the reference on random labels (${c.name})`, async (e) => {
      const rand = rng(c.shape.length * 31 + c.shape[2]);
      const size = c.shape.reduce((a, b) => a * b, 1);
      const [lo, hi] = c.range;
      const labels = Array.from({ length: size }, () => lo + Math.floor(rand() * (hi - lo + 1)));
      const rows = c.rows ?? size / c.shape[0];
      const out = await stats(e, labels, c.shape, c.rows);
      const ref = statsRef(labels, c.shape, rows);
      if (c.rows) expect(Math.max(...ref.counts)).toBeGreaterThan(c.rows);
      expectMatches(out, ref);
    });
  }

  it('many instances with large, shuffled labels (several rank blocks, hash collisions) come out in label order', async (e) => {
    // 2x2 blocks of a 40 x 40 image: 400 instances, labels a random permutation scaled into the millions.
    const rand = rng(3);
    const perm = Array.from({ length: 400 }, (_, k) => k);
    for (let k = perm.length - 1; k > 0; k--) {
      const j = Math.floor(rand() * (k + 1));
      [perm[k], perm[j]] = [perm[j], perm[k]];
    }
    const labels = Array.from({ length: 1600 }, (_, i) => 1 + 7919 * perm[Math.floor(Math.floor(i / 40) / 2) * 20 + Math.floor((i % 40) / 2)]);
    const shape = [1, 1, 40, 40];
    const ref = statsRef(labels, shape, 400);
    expect(ref.counts).toEqual([400]);
    expectMatches(await stats(e, labels, shape, 400), ref);
  });

  it('sums coordinates past 2^32 exactly (64-bit sums)', async (e) => {
    // One instance over a line of 2^17 pixels: Σ x = 2^16·(2^17 − 1) ≈ 8.6e9.
    const n = 2 ** 17;
    const out = await stats(e, new Int32Array(n).fill(5), [1, 1, n], 1);
    expect(out.sizes).toEqual([n]);
    expect(out.centroids).toEqual([(n - 1) / 2]);
    expect([out.boxMin, out.boxMax]).toEqual([[0], [n - 1]]);
  });

  it('names what is wrong with its inputs', async (e) => {
    const floatLabels = e.zeros([1, 1, 4, 4]);
    const twoChannels = e.zeros([1, 2, 4, 4], 'i32');
    const fourAxes = e.zeros([1, 1, 2, 2, 2, 2], 'i32');
    const labels = e.zeros([1, 1, 4, 4], 'i32');
    expect(() => instanceStats(floatLabels)).toThrow('instanceStats: labels must be i32, got f32 [1, 1, 4, 4]');
    expect(() => instanceStats(twoChannels)).toThrow('instanceStats: labels must be [N, 1, ...spatial] with 1 to 3 spatial axes, got [1, 2, 4, 4]');
    expect(() => instanceStats(fourAxes)).toThrow('with 1 to 3 spatial axes, got [1, 1, 2, 2, 2, 2]');
    expect(() => instanceStats(labels, { maxInstances: -1 })).toThrow('instanceStats: maxInstances must be a non-negative integer, got -1');
    for (const t of [floatLabels, twoChannels, fourAxes, labels]) t.dispose();
  });
});

describe('instanceIds', () => {
  it('numbers each item in label order, −1 background, −2 ignored, without leaking', async (e) => {
    const shape = [2, 1, 3, 4];
    const values = [5, 5, 0, -3, 2, 0, 9, 9, 2, 0, 0, 5, /* item 1 */ 0, 0, 0, 0, 0, -1, 0, 0, 4, 4, 4, 0];
    const labels = e.tensor(new Int32Array(values), shape);
    const before = e.stats().liveTensors;
    const { ids, counts } = instanceIds(labels);
    expect(e.stats().liveTensors).toBe(before + 2);
    expect(Array.from(await ids.data())).toEqual([1, 1, -1, -2, 0, -1, 2, 2, 0, -1, -1, 1, -1, -1, -1, -1, -1, -2, -1, -1, 0, 0, 0, -1]);
    expect(Array.from(await counts.data())).toEqual([3, 1]);
    expect(Array.from(await ids.data())).toEqual(statsRef(values, shape, 0).ids);
    ids.dispose();
    counts.dispose();
    expect(e.stats().liveTensors).toBe(before);
    labels.dispose();
  });
});
