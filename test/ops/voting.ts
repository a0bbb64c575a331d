// Hough voting, label opening and small-object removal: hand-made cases with known answers, and the whole voting
// pipeline against a float64 CPU reference that follows the same rules.
import { type Engine, houghVotes, houghVoting, houghVotingTensor, labelOpening, removeSmallObjects } from '../../src/index.ts';
import { rng, coordsOf } from '../support/check.ts';
import { expect } from '../support/expect.ts';
import { checkList } from '../support/suite.ts';

const { checks, describe, it } = checkList();
export { checks };

// ---- float64 reference -------------------------------------------------------------------------------------------------

function stridesOf(shape: readonly number[]): number[] {
  const s = shape.map(() => 1);
  for (let a = shape.length - 2; a >= 0; a--) s[a] = s[a + 1] * shape[a + 1];
  return s;
}

interface RefOptions {
  spacing: number[];
  minDistance: number;
  minCount: number;
  blurSigma?: number[];
}

function votesRef(emb: ArrayLike<number>, fg: ArrayLike<number>, shape: number[], spacing: number[]): number[] {
  const n = shape.reduce((p, q) => p * q, 1);
  const strides = stridesOf(shape);
  const votes = new Array<number>(n).fill(0);
  for (let i = 0; i < n; i++) {
    if (!fg[i]) continue;
    let bin = 0;
    let inside = true;
    shape.forEach((d, a) => {
      const v = Math.floor(emb[a * n + i] / spacing[a] + 0.5);
      if (v < 0 || v >= d) inside = false;
      bin += v * strides[a];
    });
    if (inside) votes[bin]++;
  }
  return votes;
}

/** The whole pipeline in float64: votes, blur, window maxima (checked directly, not separably), centres, nearest centre. */
function votingRef(emb: ArrayLike<number>, fg: ArrayLike<number>, shape: number[], o: RefOptions): { labels: number[]; centres: number } {
  const n = shape.reduce((p, q) => p * q, 1);
  const strides = stridesOf(shape);
  const votes = votesRef(emb, fg, shape, o.spacing);
  let blurred = votes.slice();
  shape.forEach((d, a) => {
    const sigma = o.blurSigma ? o.blurSigma[a] : Math.sqrt(o.minDistance / o.spacing[a]);
    if (sigma === 0) return;
    const r = Math.round(4 * sigma);
    const w = Array.from({ length: 2 * r + 1 }, (_, k) => Math.exp(-0.5 * ((k - r) / sigma) ** 2));
    const total = w.reduce((p, q) => p + q, 0);
    const next = new Array<number>(n).fill(0);
    for (let i = 0; i < n; i++) {
      const c = coordsOf(i, shape)[a];
      for (let k = -r; k <= r; k++) if (c + k >= 0 && c + k < d) next[i] += (w[k + r] / total) * blurred[i + k * strides[a]];
    }
    blurred = next;
  });
  const radius = o.spacing.map((s) => Math.floor(o.minDistance / s));
  const centres: number[][] = [];
  for (let i = 0; i < n; i++) {
    if (!(blurred[i] > 0) || votes[i] < o.minCount) continue;
    const c = coordsOf(i, shape);
    let isMax = true;
    for (let j = 0; j < n && isMax; j++) {
      const q = coordsOf(j, shape);
      if (q.some((v, a) => Math.abs(v - c[a]) > radius[a])) continue;
      if (blurred[j] > blurred[i] || (blurred[j] === blurred[i] && j < i)) isMax = false;
    }
    if (isMax) centres.push(c.map((v, a) => v * o.spacing[a]));
  }
  const labels = new Array<number>(n).fill(0);
  for (let i = 0; i < n; i++) {
    if (!fg[i]) continue;
    let best = Infinity;
    centres.forEach((c, k) => {
      const d = c.reduce((acc, v, a) => acc + (emb[a * n + i] - v) ** 2, 0);
      if (d < best) {
        best = d;
        labels[i] = k + 1;
      }
    });
  }
  return { labels, centres: centres.length };
}

/** Label-wise opening by an ellipsoid of `radius` voxels (the rules of labelOpening), directly on the CPU. */
function openingRef(labels: number[], shape: number[], radius: number[]): number[] {
  const strides = stridesOf(shape);
  const reach = radius.map(Math.floor);
  const offsets: number[][] = [];
  const walk = (a: number, o: number[]) => {
    if (a === shape.length) {
      if (o.reduce((acc, v, k) => acc + (v === 0 ? 0 : (v / radius[k]) ** 2), 0) <= 1) offsets.push(o);
      return;
    }
    for (let v = -reach[a]; v <= reach[a]; v++) walk(a + 1, [...o, v]);
  };
  walk(0, []);
  const neighbour = (i: number, o: number[]) => {
    const c = coordsOf(i, shape).map((v, a) => v + o[a]);
    return c.some((v, a) => v < 0 || v >= shape[a]) ? -1 : c.reduce((acc, v, a) => acc + v * strides[a], 0);
  };
  const eroded = labels.map((l, i) => (l > 0 && offsets.every((o) => { const q = neighbour(i, o); return q < 0 || labels[q] === l; }) ? l : 0));
  return labels.map((l, i) => (l <= 0 ? l : offsets.some((o) => { const q = neighbour(i, o); return q >= 0 && eroded[q] === l; }) ? l : 0));
}

// ---- helpers ------------------------------------------------------------------------------------------------------------

/** Whether two labellings split the pixels the same way (background 0 must match exactly). */
function samePartition(a: ArrayLike<number>, b: ArrayLike<number>): boolean {
  const ab = new Map<number, number>();
  const ba = new Map<number, number>();
  for (let i = 0; i < a.length; i++) {
    if ((a[i] === 0) !== (b[i] === 0)) return false;
    if (a[i] === 0) continue;
    if ((ab.get(a[i]) ?? b[i]) !== b[i] || (ba.get(b[i]) ?? a[i]) !== a[i]) return false;
    ab.set(a[i], b[i]);
    ba.set(b[i], a[i]);
  }
  return true;
}

function distinct(labels: ArrayLike<number>): number[] {
  return [...new Set(Array.from(labels).filter((l) => l !== 0))].sort((p, q) => p - q);
}

/** Box instances in a 2D image: each pixel of box k is labelled k + 1 and its embedding points at `targets[k]` (+ noise). */
function boxes2D(h: number, w: number, items: { box: [number, number, number, number]; target: [number, number] }[], noise = 0, seed = 1) {
  const rand = rng(seed);
  const n = h * w;
  const truth = new Int32Array(n);
  const emb = new Float32Array(2 * n);
  items.forEach(({ box: [y0, y1, x0, x1], target }, k) => {
    for (let y = y0; y <= y1; y++) {
      for (let x = x0; x <= x1; x++) {
        const i = y * w + x;
        truth[i] = k + 1;
        emb[i] = target[0] + noise * (2 * rand() - 1);
        emb[n + i] = target[1] + noise * (2 * rand() - 1);
      }
    }
  });
  return { truth, emb };
}

async function labelsOf(e: Engine, emb: Float32Array, fg: Int32Array | Float32Array, shape: number[], options: Parameters<typeof houghVoting>[2]) {
  const embeddings = e.tensor(emb, [shape.length, ...shape]);
  const foreground = e.tensor(fg, shape);
  const labels = await houghVoting(embeddings, foreground, options);
  embeddings.dispose();
  foreground.dispose();
  return labels;
}

const threeInstances = [
  { box: [2, 6, 2, 6], target: [4, 4] },
  { box: [2, 6, 12, 16], target: [4, 14] },
  { box: [12, 16, 5, 13], target: [14, 9] },
] as { box: [number, number, number, number]; target: [number, number] }[];

// ---- tests ----------------------------------------------------------------------------------------------------------------

describe('houghVoting', () => {
  it('three instances voting exactly at their centres come back as the instances', async (e) => {
    const { truth, emb } = boxes2D(20, 20, threeInstances);
    const before = e.stats().liveTensors;
    const labels = await labelsOf(e, emb, truth, [20, 20], { minDistance: 3 });
    expect(e.stats().liveTensors).toBe(before);
    expect(distinct(labels)).toEqual([1, 2, 3]);
    expect(samePartition(labels, truth)).toBe(true);
    // Labels follow the centres' bin order: (4, 4), (4, 14), (14, 9).
    expect(Array.from(labels)).toEqual(Array.from(truth));
  });

  it('noisy embeddings and a probability foreground are still assigned to the right instance', async (e) => {
    const { truth, emb } = boxes2D(20, 20, threeInstances, 1.4, 7);
    const probability = Float32Array.from(truth, (t) => (t > 0 ? 0.9 : 0.2));
    // Noise spreads each instance's 25 votes over 3x3 bins: the default minCount of 5 would reject the peak bins of two.
    expect(distinct(await labelsOf(e, emb, probability, [20, 20], { minDistance: 3 }))).toEqual([1]);
    const labels = await labelsOf(e, emb, probability, [20, 20], { minDistance: 3, spacing: [1, 1], minCount: 2 });
    expect(samePartition(labels, truth)).toBe(true);
    // A higher threshold leaves no foreground.
    expect(distinct(await labelsOf(e, emb, probability, [20, 20], { minDistance: 3, threshold: 0.95 }))).toEqual([]);
  });

  it('two centres closer than minDistance make one instance', async (e) => {
    const items = [
      { box: [4, 8, 2, 6], target: [6, 4] },
      { box: [5, 7, 9, 11], target: [6, 6] },
    ] as { box: [number, number, number, number]; target: [number, number] }[];
    const { truth, emb } = boxes2D(14, 14, items);
    expect(distinct(await labelsOf(e, emb, truth, [14, 14], { minDistance: 4 }))).toEqual([1]);
    // Far enough apart, the same instances separate.
    const apart = boxes2D(14, 14, [items[0], { ...items[1], target: [6, 12] }]);
    expect(samePartition(await labelsOf(e, apart.emb, apart.truth, [14, 14], { minDistance: 4 }), apart.truth)).toBe(true);
  });

  it('a centre needs minCount raw votes; pixels of a rejected centre join the nearest accepted one', async (e) => {
    const items = [
      { box: [3, 7, 3, 7], target: [5, 5] },
      { box: [15, 16, 15, 16], target: [15, 15] },
    ] as { box: [number, number, number, number]; target: [number, number] }[];
    const { truth, emb } = boxes2D(20, 20, items);
    const rejected = await labelsOf(e, emb, truth, [20, 20], { minDistance: 2, minCount: 5 });
    expect(distinct(rejected)).toEqual([1]);
    expect(Array.from(rejected).filter((l) => l === 1).length).toBe(29);
    const accepted = await labelsOf(e, emb, truth, [20, 20], { minDistance: 2, minCount: 4 });
    expect(samePartition(accepted, truth)).toBe(true);
  });

  it('rounds votes half up to voxels in physical units and drops votes outside the image', async (e) => {
    const [h, w] = [4, 5];
    const n = h * w;
    // (y, x) physical embeddings with spacing (1, 2) for the first pixels; pixel 6 is background.
    const points = [[0, 0], [-0.6, 2], [3.49, 8.9], [3.5, 0], [1.5, 3.0], [0, 9.0], [0, 0]];
    const emb = new Float32Array(2 * n);
    const fg = new Int32Array(n);
    points.forEach(([y, x], i) => {
      emb[i] = y;
      emb[n + i] = x;
      fg[i] = i < 6 ? 1 : 0;
    });
    const votes = houghVotes(e.tensor(emb, [2, h, w]), e.tensor(fg, [h, w]), { spacing: [1, 2] });
    expect(votes.dtype).toBe('u32');
    const expected = new Array<number>(n).fill(0);
    expected[0 * w + 0] = 1;
    expected[3 * w + 4] = 1;
    expected[2 * w + 2] = 1;
    expect(Array.from(await votes.data())).toEqual(expected);
    expect(expected).toEqual(votesRef(emb, fg, [h, w], [1, 2]));
  });

  it('3D anisotropic spacing (2, 0.5, 0.5): instances separated in physical units', async (e) => {
    const shape = [5, 16, 16];
    const spacing = [2, 0.5, 0.5];
    const n = 5 * 16 * 16;
    const rand = rng(11);
    // [z0, z1, y0, y1, x0, x1] boxes and the voxel each votes for.
    const items = [
      { box: [0, 1, 3, 11, 2, 6], target: [1, 7, 4] },
      { box: [3, 4, 3, 11, 2, 6], target: [4, 7, 4] },
      { box: [0, 4, 3, 11, 10, 14], target: [2, 7, 12] },
    ];
    const truth = new Int32Array(n);
    const emb = new Float32Array(3 * n);
    items.forEach(({ box, target }, k) => {
      for (let z = box[0]; z <= box[1]; z++) for (let y = box[2]; y <= box[3]; y++) for (let x = box[4]; x <= box[5]; x++) {
        const i = (z * 16 + y) * 16 + x;
        truth[i] = k + 1;
        for (let a = 0; a < 3; a++) emb[a * n + i] = target[a] * spacing[a] + 0.3 * (2 * rand() - 1);
      }
    });
    const labels = await labelsOf(e, emb, truth, shape, { spacing, minDistance: 2 });
    expect(samePartition(labels, truth)).toBe(true);
    expect(Array.from(labels)).toEqual(votingRef(emb, truth, shape, { spacing, minDistance: 2, minCount: 5 }).labels);
  });

  it('a plateau of equal votes gives one centre', async (e) => {
    // Four groups of 6 pixels vote at the 2x2 plateau (5..6, 5..6); without blur the four counts tie exactly.
    const items = [[5, 5], [5, 6], [6, 5], [6, 6]].map(([y, x], k) => ({ box: [k * 3, k * 3 + 2, 13, 14], target: [y, x] })) as
      { box: [number, number, number, number]; target: [number, number] }[];
    const { truth, emb } = boxes2D(16, 16, items);
    for (const blurSigma of [0, undefined]) {
      const labels = await labelsOf(e, emb, truth, [16, 16], { minDistance: 2, blurSigma });
      expect(distinct(labels)).toEqual([1]);
      expect(Array.from(labels).filter((l) => l === 1).length).toBe(24);
    }
  });

  it('an empty foreground, votes all outside the image and too few votes give all zeros', async (e) => {
    const { truth, emb } = boxes2D(12, 12, [{ box: [2, 6, 2, 6], target: [4, 4] }]);
    const none = new Int32Array(144);
    expect(distinct(await labelsOf(e, emb, none, [12, 12], { minDistance: 2 }))).toEqual([]);
    const outside = emb.map((v) => v + 100);
    expect(Array.from(await labelsOf(e, outside, truth, [12, 12], { minDistance: 2 }))).toEqual(Array.from(none));
    expect(Array.from(await labelsOf(e, emb, truth, [12, 12], { minDistance: 2, minCount: 26 }))).toEqual(Array.from(none));
  });

  it('optional opening and minSize clean the result', async (e) => {
    const { truth, emb } = boxes2D(20, 20, threeInstances);
    const labels = await labelsOf(e, emb, truth, [20, 20], { minDistance: 3, minSize: 30, opening: 1 });
    // The 5x5 boxes (25 px) go; the 5x9 box loses its four corners to the opening (cross element) and becomes 1.
    const expected = Array.from(truth, (t) => (t === 3 ? 1 : 0));
    for (const [y, x] of [[12, 5], [12, 13], [16, 5], [16, 13]]) expected[y * 20 + x] = 0;
    expect(Array.from(labels)).toEqual(expected);
  });

  const randomCases: { name: string; shape: number[]; spacing: number[]; minDistance: number; step: number[] }[] = [
    { name: '2D, over 256 centres', shape: [72, 72], spacing: [1, 1], minDistance: 1.5, step: [4, 4] },
    { name: '3D anisotropic', shape: [6, 24, 24], spacing: [2, 0.5, 0.5], minDistance: 2, step: [3, 6, 6] },
  ];
  for (const c of randomCases) {
    it(`matches the float64 reference exactly on a random case (${c.name})`, async (e) => {
      const rand = rng(c.shape.length * 101);
      const n = c.shape.reduce((p, q) => p * q, 1);
      const nd = c.shape.length;
      const emb = new Float32Array(nd * n);
      const fg = new Int32Array(n);
      for (let i = 0; i < n; i++) {
        const p = coordsOf(i, c.shape);
        fg[i] = rand() < 0.8 ? 1 : 0;
        // Most pixels vote near the jittered centre of their grid cell; some vote anywhere, outside the image too.
        const wild = rand() < 0.04;
        for (let a = 0; a < nd; a++) {
          const cell = Math.floor(p[a] / c.step[a]);
          const centre = cell * c.step[a] + Math.floor(c.step[a] / 2) + ((cell * 7 + a) % 2);
          const voxel = wild ? rand() * (c.shape[a] + 10) - 5 : centre + 0.45 * (rand() + rand() + rand() - 1.5);
          emb[a * n + i] = voxel * c.spacing[a];
        }
      }
      const embeddings = e.tensor(emb, [nd, ...c.shape]);
      const foreground = e.tensor(fg, c.shape);
      const options = { spacing: c.spacing, minDistance: c.minDistance, minCount: 5 };
      const ref = votingRef(emb, fg, c.shape, options);
      if (nd === 2) expect(ref.centres).toBeGreaterThan(256);
      expect(Array.from(await houghVotes(embeddings, foreground, { spacing: c.spacing }).data())).toEqual(votesRef(emb, fg, c.shape, c.spacing));
      expect(Array.from(await houghVoting(embeddings, foreground, options))).toEqual(ref.labels);
    });
  }

  it('names what is wrong with its inputs', async (e) => {
    const emb = e.zeros([2, 4, 5]);
    expect(() => houghVotingTensor(emb, e.zeros([4, 4], 'i32'), { minDistance: 1 })).toThrow(
      'houghVoting: foreground [4, 4] does not match the embeddings\' spatial shape [4, 5]',
    );
    expect(() => houghVotingTensor(e.zeros([3, 4, 5]), e.zeros([4, 5], 'i32'), { minDistance: 1 })).toThrow('embeddings must be [ndim, (D), H, W]');
    expect(() => houghVotingTensor(emb, e.zeros([4, 5], 'i32'), { minDistance: 1, spacing: [1, 1, 1] })).toThrow(
      'houghVoting: spacing has 3 values for 2 spatial axes',
    );
    expect(() => houghVotingTensor(emb, e.zeros([4, 5], 'i32'), { minDistance: 0 })).toThrow('minDistance must be positive, got 0');
    expect(() => labelOpening(e.zeros([4, 5]), 1)).toThrow('labelOpening: labels must be i32, got f32');
    expect(() => removeSmallObjects(e.zeros([4, 5], 'i32'), -1)).toThrow('minSize must be a non-negative integer, got -1');
  });
});

describe('labelOpening', () => {
  it('a hand case: spurs, corners and single pixels go, the image border does not erode, negatives pass', async (e) => {
    const labels = [
      [-1, 0, 0, 0, 0, 0, 0, 0],
      [0, 1, 1, 1, 0, 0, 0, 0],
      [0, 1, 1, 1, 1, 1, 0, 0],
      [0, 1, 1, 1, 0, 2, 2, 2],
      [0, 0, 0, 0, 0, 2, 2, 2],
      [0, 0, 0, 0, 0, 2, 2, 2],
      [0, 0, 0, 0, 0, 0, 0, 3],
    ].flat();
    const expected = [
      [-1, 0, 0, 0, 0, 0, 0, 0],
      [0, 0, 1, 1, 0, 0, 0, 0],
      [0, 1, 1, 1, 1, 0, 0, 0],
      [0, 0, 1, 1, 0, 0, 2, 2],
      [0, 0, 0, 0, 0, 2, 2, 2],
      [0, 0, 0, 0, 0, 0, 2, 2],
      [0, 0, 0, 0, 0, 0, 0, 0],
    ].flat();
    const out = labelOpening(e.tensor(new Int32Array(labels), [7, 8]), 1);
    expect(Array.from(await out.data())).toEqual(expected);
    expect(openingRef(labels, [7, 8], [1, 1])).toEqual(expected);
  });

  it('matches the CPU rules on random 3D labels with an anisotropic ellipsoid', async (e) => {
    const shape = [4, 12, 12];
    const rand = rng(5);
    // Blocky random labels: 3x3 cells in y/x of one label, so that there is something to keep.
    const labels = Array.from({ length: 4 * 144 }, (_, i) => {
      const [z, y, x] = coordsOf(i, shape);
      const cell = (Math.floor(y / 3) * 4 + Math.floor(x / 3) + z * 16) * 2654435761;
      return rand() < 0.05 ? 0 : ((cell >>> 0) % 4);
    });
    const radius = [0.5, 1.5, 1.5];
    const out = labelOpening(e.tensor(new Int32Array(labels), shape), radius);
    const ref = openingRef(labels, shape, radius);
    expect(ref).not.toEqual(labels);
    expect(Array.from(await out.data())).toEqual(ref);
  });
});

describe('removeSmallObjects', () => {
  it('removes labels under minSize and renumbers the rest in order', async (e) => {
    const labels = e.tensor(new Int32Array([1, 1, 1, 1, 1, 2, 2, -1, 7, 7, 7, 0]), [3, 4]);
    expect(Array.from(await removeSmallObjects(labels, 3).data())).toEqual([1, 1, 1, 1, 1, 0, 0, -1, 2, 2, 2, 0]);
    expect(Array.from(await removeSmallObjects(labels, 0).data())).toEqual([1, 1, 1, 1, 1, 2, 2, -1, 3, 3, 3, 0]);
    // Labels above maxLabel are removed.
    expect(Array.from(await removeSmallObjects(labels, 1, 5).data())).toEqual([1, 1, 1, 1, 1, 2, 2, -1, 0, 0, 0, 0]);
  });

  it('handles label values past a million (a multi-chunk prefix sum)', async (e) => {
    const values = [5, 1_100_000, 1_100_000, 700_000, 700_000, 700_000, 1_024, 1_024, 0];
    const labels = e.tensor(new Int32Array(values), [values.length]);
    const out = removeSmallObjects(labels, 2, 1_100_000);
    expect(Array.from(await out.data())).toEqual([0, 3, 3, 2, 2, 2, 1, 1, 0]);
  });
});
