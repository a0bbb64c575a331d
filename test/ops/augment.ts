// Normalization, the patch-sampling kernels against float64 references, and the seeded training-batch sampler.
import {
  type AffineRows,
  changeIntensity,
  defaultAugment,
  gaussianBlur,
  noAugment,
  normalizePercentile,
  percentiles,
  releaseSamples,
  type Sample,
  sampleBatch,
  syntheticBlobs,
  translation,
  uploadSample,
  warpInto,
} from '../../src/index.ts';
import { relError, rng, uniform } from '../support/check.ts';
import { expect } from '../support/expect.ts';
import { checkList } from '../support/suite.ts';

const { checks, describe, it } = checkList();
export { checks };

const reflect = (i: number, n: number) => {
  if (n === 1) return 0;
  const period = 2 * (n - 1);
  const m = ((i % period) + period) % period;
  return m >= n ? period - m : m;
};

interface RefOut {
  images: Float64Array;
  labels: Int32Array;
  /** Per output voxel: whether its nearest-neighbour source coordinate is near a rounding tie (f32 may round either way). */
  tie: boolean[];
}

/** warpInto in float64: src [C, D, H, W] (D = 1 in 2D), patch [D, H, W], displacement [2, H, W] or null. */
function warpRef(src: Float64Array, labels: Int32Array, shape: number[], patch: number[], rows: AffineRows, displacement: Float64Array | null, is3D: boolean): RefOut {
  const [C, D, H, W] = shape;
  const [pd, ph, pw] = patch;
  const n = pd * ph * pw;
  const images = new Float64Array(C * n);
  const out = new Int32Array(n);
  const tie: boolean[] = [];
  for (let z = 0; z < pd; z++) for (let y = 0; y < ph; y++) for (let x = 0; x < pw; x++) {
    const i = (z * ph + y) * pw + x;
    const o = [z, y, x, 1];
    if (displacement) {
      o[1] += displacement[y * pw + x];
      o[2] += displacement[ph * pw + y * pw + x];
    }
    const s = rows.map((r) => r[0] * o[0] + r[1] * o[1] + r[2] * o[2] + r[3] * o[3]);
    if (!is3D) s[0] = 0;
    const lo = s.map(Math.floor);
    const f = s.map((v, k) => v - lo[k]);
    for (let c = 0; c < C; c++) {
      let v = 0;
      for (const dz of [0, 1]) for (const dy of [0, 1]) for (const dx of [0, 1]) {
        const w = (dz ? f[0] : 1 - f[0]) * (dy ? f[1] : 1 - f[1]) * (dx ? f[2] : 1 - f[2]);
        if (w === 0) continue;
        v += w * src[((c * D + reflect(lo[0] + dz, D)) * H + reflect(lo[1] + dy, H)) * W + reflect(lo[2] + dx, W)];
      }
      images[c * n + i] = v;
    }
    const near = s.map((v) => Math.floor(v + 0.5));
    tie.push(s.some((v) => Math.abs(v - Math.round(v) - 0.5) < 1e-3 || Math.abs(v - Math.round(v) + 0.5) < 1e-3));
    const inside = near.every((v, k) => v >= 0 && v < [D, H, W][k]);
    out[i] = inside ? labels[(near[0] * H + near[1]) * W + near[2]] : -1;
  }
  return { images, labels: out, tie };
}

function randomLabels(n: number, rand: () => number, max: number): Int32Array {
  return Int32Array.from({ length: n }, () => Math.floor(rand() * (max + 2)) - 1);
}

describe('normalizePercentile', () => {
  it('takes exact percentiles with linear interpolation (NumPy default)', () => {
    const values = Float32Array.from({ length: 101 }, (_, i) => 1 + ((i * 37) % 101)); // 1..101 shuffled
    const got = percentiles(values.slice(), [0, 1, 50, 99.8, 100]);
    [1, 2, 51, 100.8, 101].forEach((v, k) => expect(got[k]).toBeCloseTo(v, 10));
    // Four values: rank of q = 25 is 0.75 → 10 + 0.75·(20 − 10).
    expect(percentiles(Float32Array.from([40, 10, 30, 20]), [25])).toEqual([17.5]);
    expect(percentiles(Float32Array.from([5, 5, 5, 1, 5]), [10, 90])).toEqual([2.6, 5]);
  });

  it('normalizes each channel on its own, constant channels to x − p_low, non-finite values as the lowest finite one', () => {
    const data = new Float32Array(2 * 101);
    for (let i = 0; i < 101; i++) {
      data[i] = i; // channel 0: 0..100 → p1 = 1, p99 = 99
      data[101 + i] = 7;
    }
    // NaN and ±Inf become the channel's lowest finite value (0) before the percentiles are taken.
    [data[50], data[60], data[70]] = [NaN, Infinity, -Infinity];
    const out = normalizePercentile({ data, shape: [2, 1, 101], spacing: [1, 1] }, 1, 99);
    const ref = percentiles(Float32Array.from([...Array(101).keys()].map((i) => ([50, 60, 70].includes(i) ? 0 : i))), [1, 99]);
    expect(ref[0]).toBe(0);
    expect(out.data[0]).toBeCloseTo((0 - ref[0]) / (ref[1] - ref[0]), 6);
    expect(out.data[100]).toBeCloseTo((100 - ref[0]) / (ref[1] - ref[0]), 6);
    for (const i of [50, 60, 70]) expect(out.data[i]).toBe(out.data[0]);
    expect([...out.data.subarray(101)].every((v) => v === 0)).toBe(true);
    expect(out.shape).toEqual([2, 1, 101]);
    const clipped = normalizePercentile({ data: data.slice(0, 101), shape: [1, 1, 101], spacing: [1, 1] }, 1, 99, { clip: true });
    expect(Math.max(...clipped.data)).toBe(1);
    expect(() => normalizePercentile({ data: Float32Array.of(NaN, Infinity), shape: [1, 1, 2], spacing: [1, 1] })).toThrow(
      'normalizePercentile: channel 0 has no finite values',
    );
  });

  it('agrees with sorting on random data and is fast on 696x520 and 64x256x256', () => {
    const rand = rng(3);
    const small = Float32Array.from({ length: 5001 }, () => rand() * 1000);
    const sorted = small.slice().sort();
    const rank = 0.998 * 5000;
    const k = Math.floor(rank);
    expect(percentiles(small.slice(), [99.8])[0]).toBeCloseTo(sorted[k] + (rank - k) * (sorted[k + 1] - sorted[k]), 3);
    for (const shape of [[1, 520, 696], [1, 64, 256, 256]]) {
      const n = shape.reduce((a, b) => a * b, 1);
      const data = new Float32Array(n);
      for (let i = 0; i < n; i++) data[i] = (i * 2654435761) % 65536;
      const t0 = performance.now();
      const out = normalizePercentile({ data, shape, spacing: shape.slice(1).map(() => 1) });
      const ms = performance.now() - t0;
      console.log(`normalizePercentile [${shape}]: ${ms.toFixed(0)} ms`);
      expect(out.data.length).toBe(n);
      expect(ms).toBeLessThan(3000);
    }
  });

  it('rejects bad percentiles by name', () => {
    const image = { data: new Float32Array(4), shape: [1, 2, 2], spacing: [1, 1] };
    expect(() => normalizePercentile(image, 50, 10)).toThrow('normalizePercentile: need 0 ≤ pLow < pHigh ≤ 100, got 50 and 10');
  });
});

describe('warp kernel', () => {
  it('flips and rot90 move hand-made pixels where expected', async (e) => {
    // 3x4 image with values 10·y + x, labels y·4 + x.
    const image = e.tensor(Float32Array.from({ length: 12 }, (_, i) => 10 * Math.floor(i / 4) + (i % 4)), [1, 3, 4]);
    const labels = e.tensor(Int32Array.from({ length: 12 }, (_, i) => i), [3, 4]);
    const run = async (rows: AffineRows, patch: number[]) => {
      const out = e.empty([1, 1, ...patch]);
      const outLabels = e.empty([1, 1, ...patch], 'i32');
      warpInto({ image, labels }, { images: out, labels: outLabels, item: 0 }, rows);
      const result = [Array.from(await out.data()), Array.from(await outLabels.data())];
      out.dispose();
      outLabels.dispose();
      return result;
    };
    // Mirror x: source x = 3 − x.
    expect(await run([[1, 0, 0, 0], [0, 1, 0, 0], [0, 0, -1, 3]], [3, 4])).toEqual([
      [3, 2, 1, 0, 13, 12, 11, 10, 23, 22, 21, 20],
      [3, 2, 1, 0, 7, 6, 5, 4, 11, 10, 9, 8],
    ]);
    // Rotation by 90° into a 4x3 patch: output (y, x) reads source (2 − x, y).
    expect(await run([[1, 0, 0, 0], [0, 0, -1, 2], [0, 1, 0, 0]], [4, 3])).toEqual([
      [20, 10, 0, 21, 11, 1, 22, 12, 2, 23, 13, 3],
      [8, 4, 0, 9, 5, 1, 10, 6, 2, 11, 7, 3],
    ]);
    // A crop reaching one pixel past each edge: reflected image, labels -1 outside.
    const [img, lab] = await run(translation([0, -1, -1]), [5, 6]);
    expect(img.slice(0, 6)).toEqual([11, 10, 11, 12, 13, 12]);
    expect(lab.slice(0, 6)).toEqual([-1, -1, -1, -1, -1, -1]);
    expect(lab.slice(6, 12)).toEqual([-1, 0, 1, 2, 3, -1]);
    image.dispose();
    labels.dispose();
  });

  const cases: [string, number[], number[], boolean][] = [
    ['2D', [2, 1, 23, 19], [1, 17, 21], false],
    ['3D', [1, 7, 11, 9], [5, 8, 10], true],
  ];
  for (const [name, shape, patch, is3D] of cases) {
    it(`${name}: a random affine matches a float64 reference (linear image, nearest labels)`, async (e) => {
      const rand = rng(is3D ? 11 : 7);
      const n = shape.reduce((a, b) => a * b, 1);
      const srcValues = uniform(n, rand);
      const srcLabels = randomLabels(n / shape[0], rand, 5);
      // Rotation by 0.4 rad, zoom 1.15, shear, a translation partly outside the source (reflection, -1 labels).
      const t = 0.4;
      const rows: AffineRows = [
        is3D ? [0.9, 0.1, 0, -0.6] : [1, 0, 0, 0],
        [0, Math.cos(t) / 1.15, -Math.sin(t) / 1.15 + 0.05, 2.3],
        [is3D ? 0.2 : 0, Math.sin(t) / 1.15, Math.cos(t) / 1.15, -3.7],
      ].map((r) => r.map(Math.fround)) as unknown as AffineRows;
      const image = e.tensor(Float32Array.from(srcValues), shape.filter((_, k) => is3D || k !== 1));
      const labels = e.tensor(srcLabels, shape.slice(1).filter((_, k) => is3D || k !== 0));
      const spatialPatch = is3D ? patch : patch.slice(1);
      const out = e.empty([2, shape[0], ...spatialPatch]);
      const outLabels = e.empty([2, 1, ...spatialPatch], 'i32');
      let displacement: Float64Array | null = null;
      let field = null;
      if (!is3D) {
        displacement = uniform(2 * 2 * patch[1] * patch[2], rand, -3, 3);
        field = e.tensor(Float32Array.from(displacement), [2, 2, patch[1], patch[2]]);
      }
      warpInto({ image, labels }, { images: out, labels: outLabels, item: 1 }, rows, field);
      const ref = warpRef(srcValues, srcLabels, shape, patch, rows, displacement?.subarray(2 * patch[1] * patch[2]) ?? null, is3D);
      const got = await out.data();
      const gotLabels = await outLabels.data();
      const itemSize = ref.images.length;
      expect(relError(got.subarray(itemSize), ref.images)).toBeLessThan(1e-5);
      const mismatches = ref.labels.filter((v, i) => !ref.tie[i] && gotLabels[ref.labels.length + i] !== v).length;
      expect(mismatches).toBe(0);
      expect(ref.labels.some((v) => v === -1) && ref.labels.some((v) => v > 0)).toBe(true);
      for (const t of [image, labels, out, outLabels, field]) t?.dispose();
    });
  }

  it('gaussianBlur matches a float64 reference, per-item sigma, σ = 0 copies', async (e) => {
    const shape = [2, 1, 9, 13];
    const values = uniform(2 * 9 * 13, rng(5));
    const x = e.tensor(Float32Array.from(values), shape);
    const sigmas = [1.3, 0];
    const y = await gaussianBlur(x, sigmas, [2, 3]).data();
    const blur1D = (v: Float64Array, len: number, stride: number, sigma: number) => {
      const r = Math.ceil(3 * sigma);
      const out = new Float64Array(v.length);
      for (let i = 0; i < v.length; i++) {
        const p = Math.floor(i / stride) % len;
        const base = i - p * stride;
        let acc = 0;
        let wsum = 0;
        for (let t = -r; t <= r; t++) {
          const w = Math.exp(-(t * t) / (2 * sigma * sigma));
          acc += w * v[base + reflect(p + t, len) * stride];
          wsum += w;
        }
        out[i] = acc / wsum;
      }
      return out;
    };
    const item0 = blur1D(blur1D(values.subarray(0, 117), 9, 13, 1.3), 13, 1, 1.3);
    expect(relError(y.subarray(0, 117), item0)).toBeLessThan(1e-5);
    expect(Array.from(y.subarray(117))).toEqual(Array.from(Float32Array.from(values.subarray(117))));
    x.dispose();
  });

  it('changeIntensity applies gain, offset, noise and clipping per item', async (e) => {
    const x = e.tensor([0, 1, 2, 3, 4, 5], [2, 3]);
    const noise = e.tensor([1, -1, 0, 2, 2, 2], [2, 3]);
    const y = changeIntensity(x, [
      { gain: 2, offset: 0.5, noiseStd: 0.25, low: -Infinity, high: Infinity },
      { gain: 1, offset: -3, noiseStd: 0, low: 0.5, high: 1.5 },
    ], noise);
    expect(Array.from(await y.data())).toEqual([0.75, 2.25, 4.5, 0.5, 1, 1.5]);
    for (const t of [x, noise, y]) t.dispose();
  });
});

function blobSample(name: string, height: number, width: number, seed: number): Sample {
  const blobs = syntheticBlobs({ height, width, blobs: 6, radius: [3, 6], seed });
  return { name, image: { data: blobs.image, shape: [1, height, width], spacing: [1, 1] }, labels: { data: blobs.labels, shape: [height, width], spacing: [1, 1] } };
}

describe('sampleBatch', () => {
  const samples = [blobSample('a', 40, 36, 1), blobSample('b', 30, 44, 2)];

  it('same seed → identical batch; another seed → another batch', async (e) => {
    const options = { batchSize: 3, patchSize: [32, 32], augment: { noise: [0.02, 0.05] as const, blur: { p: 1, sigma: [0.5, 1] as const } } };
    const read = async (seed: number) => {
      const b = sampleBatch(e, samples, { ...options, seed });
      const out = [Array.from(await b.images.data()), Array.from(await b.labels.data())];
      expect(b.images.shape).toEqual([3, 1, 32, 32]);
      expect(b.labels.shape).toEqual([3, 1, 32, 32]);
      expect(b.labels.dtype).toBe('i32');
      expect(b.spacing).toEqual([1, 1]);
      b.images.dispose();
      b.labels.dispose();
      return out;
    };
    const first = await read(42);
    expect(await read(42)).toEqual(first);
    const other = await read(43);
    expect(other[0]).not.toEqual(first[0]);
    expect(first[0].every(Number.isFinite)).toBe(true);
    // A training batch's seed is run seed · 2^32 + step: runs with seeds 7 and 8 must not see the same crops.
    const run7 = await read(7 * 2 ** 32 + 42);
    expect(run7[0]).not.toEqual(first[0]);
    expect((await read(8 * 2 ** 32 + 42))[0]).not.toEqual(run7[0]);
  });

  it("crops: 'objects' centres each crop on an instance's centroid (clamped inside the image), drawn over all instances", async (e) => {
    // Two images, three square instances with known centroids; crops of 8x8 without augmentation.
    const make = (name: string, boxes: number[][]): Sample => {
      const labels = new Int32Array(40 * 40);
      boxes.forEach(([y0, x0, size], k) => {
        for (let y = y0; y < y0 + size; y++) for (let x = x0; x < x0 + size; x++) labels[y * 40 + x] = k + 1;
      });
      const image = Float32Array.from(labels, (_, i) => i);
      return { name, image: { data: image, shape: [1, 40, 40], spacing: [1, 1] }, labels: { data: labels, shape: [40, 40], spacing: [1, 1] } };
    };
    const samples = [make('a', [[10, 10, 5], [30, 2, 3]]), make('b', [[0, 35, 5]])];
    // Expected crop starts: centroid − 4, clamped to [0, 32].
    const starts = new Set(['a:8,8', 'a:27,0', 'b:0,32']);
    const batch = sampleBatch(e, samples, { batchSize: 12, patchSize: [8, 8], seed: 5, augment: noAugment, crops: 'objects' });
    const images = await batch.images.data();
    const seen = new Set<string>();
    for (let n = 0; n < 12; n++) {
      const first = images[n * 64];
      const [y, x] = [Math.floor(first / 40), first % 40];
      // Image values are pixel indices, so the first pixel tells the start; both images share the index ramp.
      const key = starts.has(`a:${y},${x}`) ? `a:${y},${x}` : `b:${y},${x}`;
      expect(starts.has(key)).toBe(true);
      seen.add(key);
    }
    expect(seen.size).toBe(3);
    expect(() => sampleBatch(e, samples, { batchSize: 1, patchSize: [8, 8], seed: 1, crops: 'middle' as never })).toThrow(/crops must be/);
    batch.images.dispose();
    batch.labels.dispose();
  });

  it('flips and rot90 only: each item is one of the 8 symmetries of the image, labels moved with it', async (e) => {
    const sample = blobSample('square', 16, 16, 4);
    const batch = sampleBatch(e, [sample], { batchSize: 8, patchSize: [16, 16], seed: 9, augment: { ...noAugment, flip: true, rot90: true } });
    const images = await batch.images.data();
    const labels = await batch.labels.data();
    const img = sample.image.data;
    const lab = sample.labels!.data;
    // The 8 maps of (y, x) → source index in a 16x16 square.
    const maps: ((y: number, x: number) => number)[] = [];
    for (const transpose of [false, true]) for (const fy of [false, true]) for (const fx of [false, true]) {
      maps.push((y, x) => {
        let [a, b] = transpose ? [x, y] : [y, x];
        if (fy) a = 15 - a;
        if (fx) b = 15 - b;
        return a * 16 + b;
      });
    }
    const found = new Set<number>();
    for (let n = 0; n < 8; n++) {
      const m = maps.findIndex((map) => {
        for (let y = 0; y < 16; y++) for (let x = 0; x < 16; x++) {
          const i = n * 256 + y * 16 + x;
          if (images[i] !== img[map(y, x)] || labels[i] !== lab[map(y, x)]) return false;
        }
        return true;
      });
      expect(m).toBeGreaterThanOrEqual(0);
      found.add(m);
    }
    expect(found.size).toBeGreaterThan(2);
    batch.images.dispose();
    batch.labels.dispose();
  });

  it('full 2D augmentation on an image smaller than the patch: labels only take source values or -1', async (e) => {
    const small = blobSample('small', 20, 24, 5);
    // The default warp (A = 20 px, σ = 40) is sized for 256-px patches; this image is smaller than one.
    const batch = sampleBatch(e, [small], { batchSize: 2, patchSize: [32, 28], seed: 3, augment: { ...defaultAugment(2), elastic: { amplitude: 3 } } });
    const labels = await batch.labels.data();
    const allowed = new Set([...small.labels!.data, -1]);
    expect([...labels].every((v) => allowed.has(v))).toBe(true);
    expect(labels.includes(-1)).toBe(true);
    expect([...labels].some((v) => v > 0)).toBe(true);
    expect([...(await batch.images.data())].every(Number.isFinite)).toBe(true);
    batch.images.dispose();
    batch.labels.dispose();
  });

  it('affine and elastic warps of zero amplitude are the identity', async (e) => {
    const plain = sampleBatch(e, samples, { batchSize: 2, patchSize: [24, 20], seed: 17, augment: noAugment });
    const zero = sampleBatch(e, samples, {
      batchSize: 2, patchSize: [24, 20], seed: 17,
      augment: { ...noAugment, affine: { rotation: 0, zoom: [1, 1], shear: 0 }, elastic: { amplitude: 0, sigma: 3 } },
    });
    expect(Array.from(await zero.images.data())).toEqual(Array.from(await plain.images.data()));
    expect(Array.from(await zero.labels.data())).toEqual(Array.from(await plain.labels.data()));
    for (const t of [plain.images, plain.labels, zero.images, zero.labels]) t.dispose();
  });

  it('an elastic warp moves pixels with a standard deviation of a third of the amplitude, smoothly', async (e) => {
    const sample = blobSample('ramp', 96, 96, 6);
    // A horizontal ramp: the warped value minus the plain value is the x displacement (away from reflected borders).
    sample.image.data.forEach((_, i) => (sample.image.data[i] = i % 96));
    const options = { batchSize: 16, patchSize: [32, 32], seed: 8 };
    const read = async (augment: typeof noAugment) => {
      const b = sampleBatch(e, [sample], { ...options, augment });
      const values = await b.images.data();
      b.images.dispose();
      b.labels.dispose();
      return values;
    };
    const amplitude = 6;
    const plain = await read(noAugment);
    const warped = await read({ ...noAugment, elastic: { amplitude } });
    // Only where the source x is well inside the image (no reflection): plain values are the crop's x coordinates.
    const inside = (i: number) => plain[i] >= 12 && plain[i] <= 83;
    const d = Array.from(warped, (v, i) => v - plain[i]);
    const kept = d.filter((_, i) => inside(i));
    expect(kept.length).toBeGreaterThan(d.length / 2);
    const rms = Math.sqrt(kept.reduce((a, v) => a + v * v, 0) / kept.length);
    expect(rms).toBeGreaterThan(0.75 * (amplitude / 3));
    expect(rms).toBeLessThan(1.25 * (amplitude / 3));
    // Smooth: neighbouring pixels move alike.
    let step = 0;
    for (let i = 0; i < d.length - 1; i++) if (i % 32 !== 31 && inside(i) && inside(i + 1)) step = Math.max(step, Math.abs(d[i + 1] - d[i]));
    expect(step).toBeLessThan(1);
    releaseSamples(e, [sample]);
  });

  it('3D: flips on every axis and rot90; labels keep their values', async (e) => {
    const [D, H, W] = [6, 10, 10];
    const data = Float32Array.from({ length: D * H * W }, (_, i) => i);
    const labels = Int32Array.from({ length: D * H * W }, (_, i) => i % 7);
    const sample: Sample = { name: 'vol', image: { data, shape: [1, D, H, W], spacing: [2, 0.5, 0.5] }, labels: { data: labels, shape: [D, H, W], spacing: [2, 0.5, 0.5] } };
    const batch = sampleBatch(e, [sample], { batchSize: 2, patchSize: [4, 8, 8], seed: 1, augment: { ...noAugment, flip: true, flipZ: true, rot90: true } });
    expect(batch.images.shape).toEqual([2, 1, 4, 8, 8]);
    expect(batch.spacing).toEqual([2, 0.5, 0.5]);
    const imgs = await batch.images.data();
    const labs = await batch.labels.data();
    // Each output voxel holds an exact source voxel index whose label is the one sampled.
    for (let i = 0; i < imgs.length; i++) {
      expect(Number.isInteger(imgs[i])).toBe(true);
      expect(labs[i]).toBe(imgs[i] % 7);
    }
    releaseSamples(e, [sample]);
  });

  it('uploads each sample once and reuses it', async (e) => {
    const sample = blobSample('cached', 12, 12, 7);
    const first = uploadSample(e, sample);
    expect(uploadSample(e, sample)).toBe(first);
    const before = e.stats().liveTensors;
    const b = sampleBatch(e, [sample], { batchSize: 1, patchSize: [8, 8], seed: 2, augment: noAugment });
    b.images.dispose();
    b.labels.dispose();
    expect(e.stats().liveTensors).toBe(before);
    releaseSamples(e, [sample]);
    expect(e.stats().liveTensors).toBe(before - 2);
  });

  it('names what is wrong', async (e) => {
    const unlabeled: Sample = { ...samples[0], name: 'nolabels', labels: null };
    expect(() => sampleBatch(e, [unlabeled], { batchSize: 1, patchSize: [8, 8], seed: 0 })).toThrow('sample "nolabels": has no labels to train on');
    expect(() => sampleBatch(e, samples, { batchSize: 1, patchSize: [8, 8, 8], seed: 0 })).toThrow('sampleBatch: patchSize [8, 8, 8] must be 2 positive integers for 2D samples');
    expect(() => sampleBatch(e, samples, { batchSize: 1, patchSize: [8, 8], seed: -1 })).toThrow('seed');
  });
});
