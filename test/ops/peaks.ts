// The peaks module against float64 / plain-JS references: window-max peaks with index ties, per-map lists and the
// top K, Gaussian blur, the exclusive prefix sum and nearest-centre assignment; hand cases, empty inputs, batches,
// 3D anisotropic windows, poisoned outputs, leaks and errors.
import { assignNearest, type Engine, exclusiveScan, findPeaks, type FindPeaksOptions, type Tensor } from '../../src/index.ts';
import { relError, rng, coordsOf, sizeOf } from '../support/check.ts';
import { expect } from '../support/expect.ts';
import { checkList } from '../support/suite.ts';

const { checks, describe, it } = checkList();
export { checks };

interface PeakList {
  indices: number[];
  values: number[];
  coords: number[];
  counts: number[];
}

/**
 * Peaks of each map of `values` (maps of `spatial` pixels), checked directly against every pixel of the window:
 * nothing larger, nothing equal at a lower index. Lists of K entries per map (index order, or the top `maxPeaks`
 * by value then index), padded with −1 / −∞.
 */
function peaksRef(values: ArrayLike<number>, maps: number, spatial: number[], radius: number[], o: { threshold?: number; mask?: ArrayLike<number>; maxPeaks?: number } = {}): PeakList {
  const pixels = sizeOf(spatial);
  const capacity = o.maxPeaks ?? sizeOf(spatial.map((d, a) => Math.ceil(d / (radius[a] + 1))));
  const out: PeakList = { indices: [], values: [], coords: [], counts: [] };
  for (let m = 0; m < maps; m++) {
    const v = (p: number) => values[m * pixels + p];
    const found: number[] = [];
    for (let p = 0; p < pixels; p++) {
      if (!(v(p) > (o.threshold ?? -Infinity)) || (o.mask && !o.mask[m * pixels + p])) continue;
      const c = coordsOf(p, spatial);
      let isMax = true;
      for (let q = 0; q < pixels && isMax; q++) {
        const d = coordsOf(q, spatial);
        if (d.some((x, a) => Math.abs(x - c[a]) > radius[a])) continue;
        if (v(q) > v(p) || (v(q) === v(p) && q < p)) isMax = false;
      }
      if (isMax) found.push(p);
    }
    if (o.maxPeaks !== undefined) found.sort((p, q) => v(q) - v(p) || p - q);
    const kept = found.slice(0, capacity);
    out.counts.push(kept.length);
    for (let k = 0; k < capacity; k++) {
      const p = kept[k];
      out.indices.push(p ?? -1);
      out.values.push(p === undefined ? -Infinity : v(p));
      out.coords.push(...(p === undefined ? spatial.map(() => -1) : coordsOf(p, spatial)));
    }
  }
  return out;
}

async function peaksOf(e: Engine, values: ArrayLike<number>, shape: number[], options: FindPeaksOptions): Promise<PeakList> {
  const map = e.tensor(Float32Array.from(values), shape);
  const before = e.stats().liveTensors;
  const p = findPeaks(map, options);
  expect(e.stats().liveTensors, 'findPeaks returns exactly its four tensors').toBe(before + 4);
  expect([p.indices.dtype, p.values.dtype, p.coords.dtype, p.counts.dtype]).toEqual(['i32', 'f32', 'i32', 'u32']);
  const out = {
    indices: Array.from(await p.indices.data()), values: Array.from(await p.values.data()),
    coords: Array.from(await p.coords.data()), counts: Array.from(await p.counts.data()),
  };
  for (const t of [p.indices, p.values, p.coords, p.counts]) t.dispose();
  map.dispose();
  return out;
}

/** Random values on a coarse grid of levels, so that equal neighbours (ties) are common. */
function levels(n: number, seed: number, count = 5): number[] {
  const rand = rng(seed);
  return Array.from({ length: n }, () => Math.floor(rand() * count) / 4 - 0.5);
}

describe('findPeaks', () => {
  it('a hand case: strict maxima, a plateau gives its first pixel, ties within a window go to the lower index', async (e) => {
    const map = [
      [1, 0, 0, 0, 2, 2, 0],
      [0, 0, 3, 0, 2, 2, 0],
      [0, 0, 0, 0, 0, 0, 0],
      [5, 0, 0, 0, 0, 0, 5],
    ].flat();
    const out = await peaksOf(e, map, [4, 7], { radius: 1, threshold: 0 });
    // (0, 0) = 1 has only zeros around it; (1, 2) = 3; the 2x2 plateau of 2s at (0..1, 4..5) gives (0, 4); both 5s.
    // Capacity ceil(4/2)·ceil(7/2) = 8.
    expect(out.counts).toEqual([5]);
    expect(out.indices).toEqual([0, 4, 9, 21, 27, -1, -1, -1]);
    expect(out.values).toEqual([1, 2, 3, 5, 5, -Infinity, -Infinity, -Infinity]);
    expect(out.coords).toEqual([0, 0, 0, 4, 1, 2, 3, 0, 3, 6, -1, -1, -1, -1, -1, -1]);
    expect(out).toEqual(peaksRef(map, 1, [4, 7], [1, 1], { threshold: 0 }));
    // The top 3 by value: the two 5s (lower index first), then the 3.
    const top = await peaksOf(e, map, [4, 7], { radius: 1, threshold: 0, maxPeaks: 3 });
    expect(top).toEqual({ indices: [21, 27, 9], values: [5, 5, 3], coords: [3, 0, 3, 6, 1, 2], counts: [3] });
    // Radius 6 along x spans whole rows: the 3 outranks the 1 and the 2s, and the 5 at (3, 0) wins its tie with (3, 6).
    const wide = await peaksOf(e, map, [4, 7], { radius: [1, 6], threshold: 0 });
    expect(wide.indices.filter((i) => i >= 0)).toEqual([9, 21]);
    expect(wide).toEqual(peaksRef(map, 1, [4, 7], [1, 6], { threshold: 0 }));
  });

  it('a constant map has one peak per window-free region; without a threshold every window maximum counts', async (e) => {
    const flat = new Array<number>(5 * 5).fill(0.25);
    const out = await peaksOf(e, flat, [5, 5], {});
    expect(out.counts).toEqual([1]);
    expect(out.indices[0]).toBe(0);
    expect(out).toEqual(peaksRef(flat, 1, [5, 5], [1, 1]));
    // radius 0: every pixel is its own window.
    const all = await peaksOf(e, flat, [5, 5], { radius: 0 });
    expect(all.counts).toEqual([25]);
    expect(all.indices).toEqual(Array.from({ length: 25 }, (_, i) => i));
  });

  it('CenterNet-style batch [2, 3, 8, 9]: 3x3 NMS and the top 6 per map by value, padded where a map has fewer', async (e) => {
    const shape = [2, 3, 8, 9];
    const values = levels(sizeOf(shape), 5);
    // Map (1, 2) is constant: one peak, five padded entries.
    values.fill(0.5, 5 * 72, 6 * 72);
    const out = await peaksOf(e, values, shape, { maxPeaks: 6 });
    const ref = peaksRef(values, 6, [8, 9], [1, 1], { maxPeaks: 6 });
    expect(ref.counts[5]).toBe(1);
    expect(out).toEqual(ref);
    // Every peak listed in index order matches the reference too.
    expect(await peaksOf(e, values, shape, {})).toEqual(peaksRef(values, 6, [8, 9], [1, 1]));
  });

  it('3D with an anisotropic window, a threshold and a mask', async (e) => {
    const spatial = [4, 6, 10];
    const n = sizeOf(spatial);
    const values = levels(n, 9, 7);
    const rand = rng(10);
    const mask = Array.from({ length: n }, () => (rand() < 0.7 ? 1 : 0));
    const radius = [0, 1, 2];
    const maskTensor = e.tensor(new Int32Array(mask), spatial, 'i32');
    const out = await peaksOf(e, values, spatial, { radius, threshold: 0, mask: maskTensor });
    const ref = peaksRef(values, 1, spatial, radius, { threshold: 0, mask });
    expect(ref.counts[0]).toBeGreaterThan(5);
    expect(out).toEqual(ref);
    const top = await peaksOf(e, values, spatial, { radius, threshold: 0, mask: maskTensor, maxPeaks: 4 });
    expect(top).toEqual(peaksRef(values, 1, spatial, radius, { threshold: 0, mask, maxPeaks: 4 }));
    maskTensor.dispose();
  });

  it('empty maps and no peak above the threshold give counts 0 and padded lists', async (e) => {
    const none = await peaksOf(e, [0.1, 0.2, 0.3, 0.2], [2, 2], { threshold: 0.5 });
    expect(none).toEqual({ indices: [-1], values: [-Infinity], coords: [-1, -1], counts: [0] });
    const empty = await peaksOf(e, [], [2, 0, 5], {});
    expect(empty).toEqual({ indices: [], values: [], coords: [], counts: [0] });
    const emptyTop = await peaksOf(e, [], [1, 2, 0, 3], { maxPeaks: 2 });
    expect(emptyTop).toEqual({ indices: [-1, -1, -1, -1], values: [-Infinity, -Infinity, -Infinity, -Infinity], coords: new Array<number>(8).fill(-1), counts: [0, 0] });
  });

  it('names what is wrong with its inputs', async (e) => {
    const map = e.zeros([4, 5]);
    const wrongMask = e.zeros([4, 4], 'u32');
    const floatMask = e.zeros([4, 5]);
    const ints = e.zeros([4, 5], 'i32');
    const line = e.zeros([5]);
    expect(() => findPeaks(ints)).toThrow('findPeaks: map must be f32, got i32 [4, 5]');
    expect(() => findPeaks(line)).toThrow('findPeaks: map must be [(D), H, W] or [N, C, (D), H, W], got [5]');
    expect(() => findPeaks(map, { radius: [1, 1, 1] })).toThrow('findPeaks: radius must be 2 integers ≥ 0 (one per spatial axis), got [1, 1, 1]');
    expect(() => findPeaks(map, { radius: 1.5 })).toThrow('findPeaks: radius must be 2 integers');
    expect(() => findPeaks(map, { maxPeaks: -1 })).toThrow('findPeaks: maxPeaks must be a non-negative integer, got -1');
    expect(() => findPeaks(map, { threshold: NaN })).toThrow('findPeaks: threshold must be a number, got NaN');
    expect(() => findPeaks(map, { mask: wrongMask })).toThrow('findPeaks: mask [4, 4] must match the map [4, 5]');
    expect(() => findPeaks(map, { mask: floatMask })).toThrow('findPeaks: mask must be u32 or i32, got f32 [4, 5]');
    for (const t of [map, wrongMask, floatMask, ints, line]) t.dispose();
  });
});

/** Separable Gaussian blur in float64 with the taps gaussianBlur uses (round(4σ) out, normalized, zero padding). */
function blurRef(values: ArrayLike<number>, maps: number, spatial: number[], sigma: number[]): number[] {
  let x = Array.from(values);
  const pixels = sizeOf(spatial);
  const strides = spatial.map((_, a) => sizeOf(spatial.slice(a + 1)));
  sigma.forEach((s, a) => {
    if (s === 0) return;
    const r = Math.round(4 * s);
    const w = Array.from({ length: 2 * r + 1 }, (_, k) => Math.exp(-0.5 * ((k - r) / s) ** 2));
    const total = w.reduce((p, q) => p + q, 0);
    x = x.map((_, i) => {
      const c = coordsOf(i % pixels, spatial)[a];
      let acc = 0;
      for (let k = -r; k <= r; k++) if (c + k >= 0 && c + k < spatial[a]) acc += (w[k + r] / total) * x[i + k * strides[a]];
      return acc;
    });
  });
  expect(x.length).toBe(maps * pixels);
  return x;
}

describe('findPeaks with blurSigma', () => {
  /** The blurred map itself: with radius 0 and no threshold every pixel is a peak, listed in index order. */
  async function blurred(e: Engine, values: number[], shape: number[], blurSigma: number | number[]): Promise<number[]> {
    const out = await peaksOf(e, values, shape, { radius: 0, blurSigma });
    expect(out.indices).toEqual(Array.from({ length: values.length }, (_, i) => i % sizeOf(shape.slice(shape.length >= 4 ? 2 : 0))));
    return out.values;
  }

  const cases: { name: string; shape: number[]; sigma: number | number[]; spatial: number[]; maps: number }[] = [
    { name: '2D, σ 1.5 on both axes', shape: [13, 17], sigma: 1.5, spatial: [13, 17], maps: 1 },
    { name: '3D anisotropic σ (0, 1, 0.7)', shape: [3, 9, 11], sigma: [0, 1, 0.7], spatial: [3, 9, 11], maps: 1 },
    { name: 'a batch [2, 2, 6, 40]: the blur stops at each map', shape: [2, 2, 6, 40], sigma: [0.8, 3], spatial: [6, 40], maps: 4 },
  ];
  for (const c of cases) {
    it(`blurs as the float64 reference (${c.name})`, async (e) => {
      const rand = rng(sizeOf(c.shape));
      const values = Array.from({ length: sizeOf(c.shape) }, () => Math.fround(rand() * 4 - 1));
      const sigma = typeof c.sigma === 'number' ? c.spatial.map(() => c.sigma as number) : c.sigma;
      expect(relError(await blurred(e, values, c.shape, c.sigma), blurRef(values, c.maps, c.spatial, sigma))).toBeLessThan(1e-6);
    });
  }

  it('a single spike becomes the normalized Gaussian; peaks and thresholds see the blurred values', async (e) => {
    const spike = [0, 0, 0, 0, 1, 0, 0, 0, 0];
    // σ 0.5 along x: taps reach round(2) = 2 out; exp(−2)/(1 + 2e^−2 + 2e^−8) at distance 1.
    const z = 1 + 2 * Math.exp(-2) + 2 * Math.exp(-8);
    const expected = [0, 0, Math.exp(-8) / z, Math.exp(-2) / z, 1 / z, Math.exp(-2) / z, Math.exp(-8) / z, 0, 0];
    expect(relError(await blurred(e, spike, [1, 9], [0, 0.5]), expected)).toBeLessThan(1e-6);
    // Two spikes 3 apart: unblurred both are peaks of a radius-1 window; blurred at σ 2 they merge into one at the
    // lower index (the blurred pair is symmetric, so its two maxima tie).
    const pair = [0, 0, 0, 1, 0, 0, 1, 0, 0, 0];
    expect((await peaksOf(e, pair, [1, 10], { threshold: 0 })).counts).toEqual([2]);
    const merged = await peaksOf(e, pair, [1, 10], { threshold: 0, blurSigma: [0, 2] });
    expect(merged).toEqual(peaksRef(blurRef(pair, 1, [1, 10], [0, 2]).map(Math.fround), 1, [1, 10], [1, 1], { threshold: 0 }));
    expect(merged.counts).toEqual([1]);
    // A threshold between the blurred peak (≈ 0.3) and the spikes' height applies to the blurred map.
    expect((await peaksOf(e, pair, [1, 10], { threshold: 0.5, blurSigma: [0, 2] })).counts).toEqual([0]);
  });

  it('names a wrong blurSigma', async (e) => {
    const map = e.zeros([4, 5]);
    expect(() => findPeaks(map, { blurSigma: [1] })).toThrow('findPeaks: blurSigma must be 2 finite numbers ≥ 0 (one per spatial axis), got [1]');
    expect(() => findPeaks(map, { blurSigma: -1 })).toThrow('findPeaks: blurSigma must be 2 finite numbers ≥ 0');
    map.dispose();
  });
});

describe('exclusiveScan', () => {
  async function scan(e: Engine, values: Uint32Array, shape: number[]): Promise<{ offsets: number[]; total: number }> {
    const t = e.tensor(values, shape);
    const before = e.stats().liveTensors;
    const { offsets, total } = exclusiveScan(t);
    expect(e.stats().liveTensors).toBe(before + 2);
    expect([offsets.shape, total.shape]).toEqual([[values.length], [1]]);
    const out = { offsets: Array.from(await offsets.data()), total: (await total.data())[0] };
    for (const x of [t, offsets, total]) x.dispose();
    return out;
  }

  function scanRef(values: ArrayLike<number>): { offsets: number[]; total: number } {
    const offsets: number[] = [];
    let run = 0;
    for (let i = 0; i < values.length; i++) {
      offsets.push(run);
      run += values[i];
    }
    return { offsets, total: run };
  }

  it('hand cases: flags, an empty input, and one element', async (e) => {
    expect(await scan(e, Uint32Array.from([1, 0, 0, 1, 1, 0, 1]), [7])).toEqual({ offsets: [0, 1, 1, 1, 2, 3, 3], total: 4 });
    expect(await scan(e, new Uint32Array(0), [0])).toEqual({ offsets: [], total: 0 });
    expect(await scan(e, Uint32Array.from([9]), [1, 1])).toEqual({ offsets: [0], total: 9 });
  });

  for (const n of [3000, 1_100_000]) {
    it(`matches a running sum over ${n} values (${Math.ceil(n / 1024)} blocks)`, async (e) => {
      const rand = rng(n);
      const values = Uint32Array.from({ length: n }, () => Math.floor(rand() * 4));
      expect(await scan(e, values, [n])).toEqual(scanRef(values));
    });
  }

  it('names a wrong dtype', async (e) => {
    const x = e.zeros([4]);
    expect(() => exclusiveScan(x)).toThrow('exclusiveScan: values must be u32, got f32 [4]');
    x.dispose();
  });
});

describe('assignNearest', () => {
  /** Nearest centre (1-based, lower index on ties) in float64; integer coordinates keep f32 distances exact. */
  function nearestRef(points: ArrayLike<number>, dims: number, n: number, centres: ArrayLike<number>, count: number, mask?: ArrayLike<number>): number[] {
    return Array.from({ length: n }, (_, i) => {
      if (mask && !mask[i]) return 0;
      let best = Infinity;
      let label = 0;
      for (let k = 0; k < count; k++) {
        let d = 0;
        for (let c = 0; c < dims; c++) d += (points[c * n + i] - centres[k * dims + c]) ** 2;
        if (d < best) {
          best = d;
          label = k + 1;
        }
      }
      return label;
    });
  }

  async function assign(e: Engine, points: number[], pointShape: number[], centres: number[], k: number, options: { count?: number; mask?: number[] } = {}): Promise<number[]> {
    const dims = pointShape[0];
    const p = e.tensor(Float32Array.from(points), pointShape);
    const c = e.tensor(Float32Array.from(centres), [k, dims]);
    const count = options.count === undefined ? undefined : e.tensor(Uint32Array.from([options.count]), [1]);
    const mask = options.mask && e.tensor(Int32Array.from(options.mask), pointShape.slice(1), 'i32');
    const before = e.stats().liveTensors;
    const labels = assignNearest(p, c, { count, mask });
    expect(e.stats().liveTensors).toBe(before + 1);
    expect(labels.shape).toEqual(pointShape.slice(1));
    const out = Array.from(await labels.data());
    for (const t of [p, c, count, mask, labels]) t?.dispose();
    return out;
  }

  it('a hand case: ties go to the lower index, a mask leaves zeros, count limits the centres', async (e) => {
    // Points (y, x) on a 1 x 4 row: (0, 0), (0, 1), (0, 2), (0, 3); centres (0, 0) and (0, 2).
    const points = [0, 0, 0, 0, 0, 1, 2, 3];
    const centres = [0, 0, 0, 2];
    // (0, 1) is 1 from both: the lower index (centre 1) wins.
    expect(await assign(e, points, [2, 1, 4], centres, 2)).toEqual([1, 1, 2, 2]);
    expect(await assign(e, points, [2, 1, 4], centres, 2, { mask: [1, 0, 1, 0] })).toEqual([1, 0, 2, 0]);
    expect(await assign(e, points, [2, 1, 4], centres, 2, { count: 1 })).toEqual([1, 1, 1, 1]);
    // No centres in use: everything 0.
    expect(await assign(e, points, [2, 1, 4], centres, 2, { count: 0 })).toEqual([0, 0, 0, 0]);
  });

  const cases: { name: string; shape: number[]; k: number; count?: number; masked?: boolean }[] = [
    { name: '2D, 300 centres (two tiles), 280 in use, masked', shape: [2, 30, 33], k: 300, count: 280, masked: true },
    { name: '3D points [3, 4, 5, 6]', shape: [3, 4, 5, 6], k: 17 },
    { name: '1D coordinates', shape: [1, 50], k: 6 },
  ];
  for (const c of cases) {
    it(`matches the reference on integer points with many ties (${c.name})`, async (e) => {
      const rand = rng(c.k);
      const dims = c.shape[0];
      const n = sizeOf(c.shape.slice(1));
      const points = Array.from({ length: dims * n }, () => Math.floor(rand() * 20));
      const centres = Array.from({ length: c.k * dims }, () => Math.floor(rand() * 20));
      const mask = c.masked ? Array.from({ length: n }, () => (rand() < 0.6 ? 1 : 0)) : undefined;
      const out = await assign(e, points, c.shape, centres, c.k, { count: c.count, mask });
      expect(out).toEqual(nearestRef(points, dims, n, centres, c.count ?? c.k, mask));
    });
  }

  it('names what is wrong with its inputs', async (e) => {
    const points = e.zeros([2, 3, 4]);
    const centres = e.zeros([5, 2]);
    const bad: Tensor[] = [e.zeros([4, 3, 4]), e.zeros([5, 3]), e.zeros([2], 'u32'), e.zeros([3, 3], 'i32'), e.zeros([5, 2], 'i32')];
    expect(() => assignNearest(bad[0], centres)).toThrow('assignNearest: points must be [dims, ...spatial] with 1 to 3 coordinates, got [4, 3, 4]');
    expect(() => assignNearest(points, bad[1])).toThrow('assignNearest: centres must be [K, 2] for points [2, 3, 4], got [5, 3]');
    expect(() => assignNearest(points, centres, { count: bad[2] })).toThrow('assignNearest: count must be one u32, got u32 [2]');
    expect(() => assignNearest(points, centres, { mask: bad[3] })).toThrow("assignNearest: mask [3, 3] must match the points' spatial shape [3, 4]");
    expect(() => assignNearest(points, bad[4])).toThrow('assignNearest: centres must be f32, got i32 [5, 2]');
    for (const t of [points, centres, ...bad]) t.dispose();
  });
});
