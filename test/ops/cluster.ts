// EmbedSeg's greedy clustering on the GPU against hand-made cases and a float64 reference of the same algorithm.
import { clusterSeeds, type ClusterSeedsOptions, clusterSeedsTensor, type Engine } from '../../src/index.ts';
import { rng, coordsOf } from '../support/check.ts';
import { expect } from '../support/expect.ts';
import { checkList } from '../support/suite.ts';

const { checks, describe, it } = checkList();
export { checks };

/** EmbedSeg's grid: 1/1023 per pixel. */
const GRID = 1 / 1023;
/**
 * σ of a tight bandwidth: exp(10·1.5) ≈ 3.3e6, a proposal radius √(ln 2 / 3.3e6) of about half a pixel around a point
 * embedding (the radius in pixels is 0.83·1023·exp(−5σ)).
 */
const TIGHT = 1.5;

interface Field {
  /** Spatial shape ([H, W] or [D, H, W]). */
  shape: number[];
  /** [ndim, ...shape] in EmbedSeg's channel order: channel c is along spatial axis ndim − 1 − c (x first). */
  embedding: Float32Array;
  sigma: Float32Array;
  seed: Float32Array;
}

function emptyField(shape: number[]): Field {
  const n = shape.reduce((p, q) => p * q, 1);
  return { shape, embedding: new Float32Array(shape.length * n), sigma: new Float32Array(shape.length * n), seed: new Float32Array(n).fill(0.1) };
}

/**
 * Paints an instance: every pixel of the box [lo, hi] (inclusive, per spatial axis) embeds at the grid coordinate of
 * `centre` (pixels) with bandwidth σ and seed `seed`, except the pixel `peak`, which gets `peakSeed`.
 */
function paint(f: Field, box: { lo: number[]; hi: number[] }, centre: number[], sigma: number, seed: number, peak?: number[], peakSeed = 0.95): void {
  const n = f.seed.length;
  const nd = f.shape.length;
  for (let i = 0; i < n; i++) {
    const p = coordsOf(i, f.shape);
    if (p.some((v, a) => v < box.lo[a] || v > box.hi[a])) continue;
    for (let c = 0; c < nd; c++) {
      f.embedding[c * n + i] = centre[nd - 1 - c] * GRID;
      f.sigma[c * n + i] = sigma;
    }
    f.seed[i] = peak && p.every((v, a) => v === peak[a]) ? peakSeed : seed;
  }
}

/**
 * The same greedy clustering in float64 (comparisons as EmbedSeg makes them). `margin` is the smallest relative distance
 * of any tested Σ_d (e_d − c_d)²·s_d from ln 2, the proposal boundary: far enough, f32 cannot have decided otherwise.
 * `seeds` counts the seeds taken, accepted or not.
 */
function clusterRef(f: Field, options: ClusterSeedsOptions = {}): { labels: number[]; margin: number; instances: number; seeds: number } {
  const { fgThreshold = 0.5, seedThreshold = 0.9, minMaskSum = 0, minUnclusteredRatio = 0.5, minForegroundSum = 0, minUnclusteredSum = 0 } = options;
  const n = f.seed.length;
  const nd = f.shape.length;
  const labels = new Array<number>(n).fill(0);
  const fg = [...f.seed.keys()].filter((i) => f.seed[i] > Math.fround(fgThreshold));
  let margin = Infinity;
  let count = 0;
  let seeds = 0;
  if (fg.length <= minForegroundSum) return { labels, margin, instances: 0, seeds };
  const unclustered = new Set(fg);
  while (unclustered.size > minUnclusteredSum) {
    let best = -1;
    for (const i of fg) if (unclustered.has(i) && (best < 0 || f.seed[i] > f.seed[best])) best = i;
    if (best < 0 || f.seed[best] < seedThreshold) break;
    unclustered.delete(best);
    seeds++;
    const centre = [...Array(nd).keys()].map((c) => f.embedding[c * n + best]);
    const s = [...Array(nd).keys()].map((c) => Math.exp(10 * f.sigma[c * n + best]));
    const proposal = fg.filter((i) => {
      const d = centre.reduce((acc, cc, c) => acc + (f.embedding[c * n + i] - cc) ** 2 * s[c], 0);
      margin = Math.min(margin, Math.abs(d - Math.LN2) / Math.LN2);
      return Math.exp(-d) > 0.5;
    });
    const fresh = proposal.filter((i) => unclustered.has(i)).length;
    if (proposal.length > minMaskSum && Math.fround(fresh / proposal.length) > Math.fround(minUnclusteredRatio)) {
      count++;
      for (const i of proposal) labels[i] = count;
    }
    for (const i of proposal) unclustered.delete(i);
  }
  return { labels, margin, instances: count, seeds };
}

async function cluster(e: Engine, f: Field, options?: ClusterSeedsOptions): Promise<number[]> {
  const nd = f.shape.length;
  const embedding = e.tensor(f.embedding, [nd, ...f.shape]);
  const sigma = e.tensor(f.sigma, [nd, ...f.shape]);
  const seed = e.tensor(f.seed, [1, ...f.shape]);
  const before = e.stats().liveTensors;
  const labels = await clusterSeeds(embedding, sigma, seed, options);
  expect(e.stats().liveTensors).toBe(before);
  embedding.dispose();
  sigma.dispose();
  seed.dispose();
  expect(labels).toBeInstanceOf(Int32Array);
  return Array.from(labels);
}

/** The label map of boxes given as [lo, hi] pairs, numbered 1.. in the order given. */
function boxLabels(shape: number[], boxes: { lo: number[]; hi: number[] }[]): number[] {
  const n = shape.reduce((p, q) => p * q, 1);
  return Array.from({ length: n }, (_, i) => {
    const p = coordsOf(i, shape);
    const k = boxes.findIndex((b) => p.every((v, a) => v >= b.lo[a] && v <= b.hi[a]));
    return k + 1;
  });
}

describe('clusterSeeds', () => {
  it('recovers three separated instances exactly, numbered by seed (ties to the earlier pixel)', async (e) => {
    const f = emptyField([16, 16]);
    const boxes = [
      { lo: [9, 1], hi: [13, 5] }, // seed 0.99: instance 1
      { lo: [1, 1], hi: [5, 6] }, // seed 0.97 at (3, 3): instance 2 (tie with the third, earlier pixel)
      { lo: [2, 9], hi: [14, 14] }, // seed 0.97 at (8, 11): instance 3
    ];
    paint(f, boxes[0], [11, 3], TIGHT, 0.6, [11, 3], 0.99);
    paint(f, boxes[1], [3, 3], TIGHT, 0.6, [3, 3], 0.97);
    paint(f, boxes[2], [8, 11], TIGHT, 0.6, [8, 11], 0.97);
    const labels = await cluster(e, f);
    expect(labels).toEqual(boxLabels([16, 16], boxes));
    expect(clusterRef(f).labels).toEqual(labels);
  });

  it('separates two touching instances', async (e) => {
    const f = emptyField([8, 12]);
    const boxes = [
      { lo: [1, 1], hi: [6, 5] },
      { lo: [1, 6], hi: [6, 10] },
    ];
    paint(f, boxes[0], [3, 3], TIGHT, 0.7, [4, 2], 0.96);
    paint(f, boxes[1], [3, 8], TIGHT, 0.7, [2, 9], 0.93);
    expect(await cluster(e, f)).toEqual(boxLabels([8, 12], boxes));
  });

  it('seeds below seedThreshold start nothing; the threshold compares as EmbedSeg does (f32 seed vs float64 threshold)', async (e) => {
    const f = emptyField([6, 6]);
    paint(f, { lo: [1, 1], hi: [4, 4] }, [2, 2], TIGHT, 0.8, [2, 2], 0.85);
    const none = new Array<number>(36).fill(0);
    expect(await cluster(e, f)).toEqual(none);
    // The f32 nearest to 0.9 is below 0.9 in float64: still nothing. One f32 step up starts the instance.
    f.seed[2 * 6 + 2] = Math.fround(0.9);
    expect(Math.fround(0.9)).toBeLessThan(0.9);
    expect(await cluster(e, f)).toEqual(none);
    f.seed[2 * 6 + 2] = 0.9000001;
    expect(await cluster(e, f)).toEqual(boxLabels([6, 6], [{ lo: [1, 1], hi: [4, 4] }]));
    // No foreground at all, and a foreground of at most minForegroundSum pixels, give zeros.
    expect(await cluster(e, f, { fgThreshold: 0.99 })).toEqual(none);
    expect(await cluster(e, f, { minForegroundSum: 16 })).toEqual(none);
    expect(await cluster(e, f, { minForegroundSum: 15 })).toEqual(boxLabels([6, 6], [{ lo: [1, 1], hi: [4, 4] }]));
  });

  it('rejects a proposal that was mostly clustered already; a lower ratio accepts it and its labels overwrite', async (e) => {
    const f = emptyField([6, 10]);
    // A: 10 pixels around (1.5, 2); its seed's tight bandwidth leaves B out of A's proposal.
    const a = { lo: [1, 1], hi: [2, 5] };
    paint(f, a, [1, 3], TIGHT, 0.7, [1, 1], 0.99);
    // B: 3 pixels embedding 2 px from A's centre with a wide bandwidth (σ = 0.8: a radius of √(ln 2 / e^8) ≈ 16 px),
    // so B's proposal is A's 10 clustered pixels and B's 3 (its seed already clustered): 2/13 unclustered.
    const b = { lo: [4, 7], hi: [4, 9] };
    paint(f, b, [1, 5], 0.8, 0.7, [4, 8], 0.95);
    const onlyA = boxLabels([6, 10], [a]);
    expect(await cluster(e, f)).toEqual(onlyA);
    expect(clusterRef(f).labels).toEqual(onlyA);
    const overwritten = boxLabels([6, 10], [a, b]).map((l) => (l > 0 ? 2 : 0));
    expect(await cluster(e, f, { minUnclusteredRatio: 2 / 13 - 0.01 })).toEqual(overwritten);
    expect(await cluster(e, f, { minUnclusteredRatio: 2 / 13 + 0.01 })).toEqual(onlyA);
    // A 10-pixel proposal needs minMaskSum < 10.
    expect(await cluster(e, f, { minMaskSum: 10 })).toEqual(new Array<number>(60).fill(0));
    expect(await cluster(e, f, { minMaskSum: 9 })).toEqual(onlyA);
  });

  it('minMaskSum rejects small proposals, and minUnclusteredSum stops early', async (e) => {
    const f = emptyField([8, 8]);
    const big = { lo: [0, 0], hi: [3, 3] };
    const small = { lo: [6, 5], hi: [7, 7] };
    paint(f, big, [1, 1], TIGHT, 0.6, [1, 1], 0.99);
    paint(f, small, [6, 6], TIGHT, 0.6, [6, 6], 0.98);
    expect(await cluster(e, f, { minMaskSum: 6 })).toEqual(boxLabels([8, 8], [big]));
    expect(await cluster(e, f, { minMaskSum: 5 })).toEqual(boxLabels([8, 8], [big, small]));
    // After the big instance 6 pixels are unclustered: minUnclusteredSum 6 stops there, 5 does not.
    expect(await cluster(e, f, { minUnclusteredSum: 6 })).toEqual(boxLabels([8, 8], [big]));
    expect(await cluster(e, f, { minUnclusteredSum: 5 })).toEqual(boxLabels([8, 8], [big, small]));
  });

  it('clusters in 3D', async (e) => {
    const shape = [4, 8, 8];
    const f = emptyField(shape);
    const boxes = [
      { lo: [0, 0, 0], hi: [1, 3, 7] },
      { lo: [2, 0, 0], hi: [3, 3, 7] },
      { lo: [0, 5, 2], hi: [3, 7, 5] },
    ];
    paint(f, boxes[0], [0.5, 1.5, 3.5], TIGHT, 0.7, [1, 2, 3], 0.99);
    paint(f, boxes[1], [2.5, 1.5, 3.5], TIGHT, 0.7, [2, 1, 1], 0.98);
    paint(f, boxes[2], [1.5, 6, 3.5], TIGHT, 0.7, [3, 7, 5], 0.97);
    expect(await cluster(e, f)).toEqual(boxLabels(shape, boxes));
  });

  const randomCases = [
    { name: '2D, 64 x 64: 4 chunks, 3 batches', shape: [64, 64], step: 8, seed: 5 },
    { name: '3D, 6 x 20 x 20', shape: [6, 20, 20], step: 5, seed: 4 },
  ];
  for (const c of randomCases) {
    it(`matches the float64 reference on noisy overlapping blobs (${c.name})`, async (e) => {
      const rand = rng(c.seed);
      const f = emptyField(c.shape);
      const n = f.seed.length;
      const nd = c.shape.length;
      // Instances on a jittered grid of cells (a cell in 6 is background): embeddings near the cell's centre with
      // noise, bandwidths varying per cell (radii 1.6 to 4.5 px) so that neighbouring proposals overlap or fall short,
      // seeds falling off from the
      // centre so that some cells have no seed above threshold and others several.
      const cellOf = (p: number[]) => p.map((v, a) => (a === 0 && nd === 3 ? 0 : Math.floor(v / c.step)));
      const cells = new Map<string, { centre: number[]; sigma: number; background: boolean; peak: number }>();
      for (let i = 0; i < n; i++) {
        const p = coordsOf(i, c.shape);
        const key = cellOf(p).join(',');
        if (!cells.has(key)) {
          const centre = p.map((v, a) => (a === 0 && nd === 3 ? c.shape[0] / 2 : (Math.floor(v / c.step) + 0.5) * c.step) + (rand() - 0.5) * 2);
          cells.set(key, { centre, sigma: 1.05 + 0.2 * rand(), background: rand() < 1 / 6, peak: 0.85 + 0.15 * rand() });
        }
        const cell = cells.get(key)!;
        const r = Math.hypot(...p.map((v, a) => v - cell.centre[a])) / c.step;
        f.seed[i] = cell.background ? 0.4 * rand() : Math.max(0.3, cell.peak - 0.3 * r + 0.05 * (rand() - 0.5));
        for (let ch = 0; ch < nd; ch++) {
          const a = nd - 1 - ch;
          f.embedding[ch * n + i] = (cell.centre[a] + 2 * (rand() + rand() - 1)) * GRID;
          f.sigma[ch * n + i] = cell.sigma + 0.05 * (rand() - 0.5);
        }
      }
      const ref = clusterRef(f);
      expect(ref.margin).toBeGreaterThan(1e-5);
      expect(ref.instances).toBeGreaterThan(nd === 2 ? 25 : 5);
      // Some seeds' proposals were rejected for overlapping earlier ones.
      expect(ref.seeds).toBeGreaterThan(ref.instances);
      const labels = await cluster(e, f);
      expect(labels).toEqual(ref.labels);
      // Stricter acceptance rejects more.
      const options = { minMaskSum: 20, minUnclusteredRatio: 0.7 };
      const strict = clusterRef(f, options);
      expect(strict.instances).toBeLessThan(ref.instances);
      expect(await cluster(e, f, options)).toEqual(strict.labels);
    });
  }

  it('clusterSeedsTensor keeps the labels on the GPU: an i32 tensor of the spatial shape, nothing else left behind', async (e) => {
    for (const shape of [[8, 12], [3, 6, 5]]) {
      const f = emptyField(shape);
      const boxes = shape.length === 2
        ? [{ lo: [1, 1], hi: [6, 5] }, { lo: [1, 6], hi: [6, 10] }]
        : [{ lo: [0, 0, 0], hi: [2, 2, 4] }, { lo: [0, 3, 0], hi: [1, 5, 4] }];
      paint(f, boxes[0], boxes[0].lo.map((v, a) => (v + boxes[0].hi[a]) / 2), TIGHT, 0.7, boxes[0].lo, 0.96);
      paint(f, boxes[1], boxes[1].lo.map((v, a) => (v + boxes[1].hi[a]) / 2), TIGHT, 0.7, boxes[1].hi, 0.93);
      const nd = shape.length;
      const embedding = e.tensor(f.embedding, [nd, ...shape]);
      const sigma = e.tensor(f.sigma, [nd, ...shape]);
      const seed = e.tensor(f.seed, [1, ...shape]);
      const before = e.stats().liveTensors;
      const labels = await clusterSeedsTensor(embedding, sigma, seed);
      expect(e.stats().liveTensors).toBe(before + 1);
      expect([labels.shape, labels.dtype]).toEqual([shape, 'i32']);
      expect(Array.from(await labels.data())).toEqual(boxLabels(shape, boxes));
      expect(Array.from(await labels.data())).toEqual(clusterRef(f).labels);
      // No foreground: a zero tensor of the same shape.
      const none = await clusterSeedsTensor(embedding, sigma, seed, { fgThreshold: 0.99 });
      expect([none.shape, Array.from(await none.data())]).toEqual([shape, new Array<number>(f.seed.length).fill(0)]);
      for (const t of [labels, none]) t.dispose();
      expect(e.stats().liveTensors).toBe(before);
      for (const t of [embedding, sigma, seed]) t.dispose();
    }
  });

  it('names what is wrong with its inputs', async (e) => {
    const emb = e.zeros([2, 4, 5]);
    const seed = e.zeros([1, 4, 5]);
    await expect(clusterSeeds(e.zeros([4, 4, 5]), emb, seed)).rejects.toThrow('clusterSeeds: embedding must be [D, ...spatial] with D = 2 or 3 spatial axes, got [4, 4, 5]');
    await expect(clusterSeeds(emb, e.zeros([2, 5, 4]), seed)).rejects.toThrow("clusterSeeds: sigma [2, 5, 4] must have the embedding's shape [2, 4, 5]");
    await expect(clusterSeeds(emb, emb, e.zeros([4, 5]))).rejects.toThrow('clusterSeeds: seed [4, 5] must be [1, 4, 5]');
    await expect(clusterSeeds(emb, emb, e.zeros([1, 4, 5], 'i32'))).rejects.toThrow('clusterSeeds: seed must be f32, got i32');
    await expect(clusterSeeds(emb, emb, seed, { minMaskSum: -1 })).rejects.toThrow('clusterSeeds: minMaskSum must be a non-negative integer, got -1');
    await expect(clusterSeeds(emb, emb, seed, { seedThreshold: NaN })).rejects.toThrow('clusterSeeds: seedThreshold must be a finite number, got NaN');
  });
});
