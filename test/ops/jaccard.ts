// Soft Jaccard losses against float64 references, with finite-difference gradient checks and hand cases.
import { embeddingJaccardLoss, softJaccardLoss } from '../../src/index.ts';
import { checkOp, rng, uniform } from '../support/check.ts';
import { expect } from '../support/expect.ts';
import { checkList } from '../support/suite.ts';

const { checks, describe, it } = checkList();
export { checks };

const EPS = 1e-6;
const jaccard = (i: number, a: number, y: number) => 1 - (i + EPS) / (a + y - i + EPS);

/** Semantic soft Jaccard in float64: probs [N, C, P], labels [N, P]; foreground maps instance ids to {0, 1}. */
function softJaccardRef(probs: Float64Array, labels: ArrayLike<number>, n: number, c: number, p: number, foreground = false): number {
  let total = 0;
  for (let b = 0; b < n; b++) {
    for (let k = 0; k < c; k++) {
      let inter = 0;
      let a = 0;
      let y = 0;
      for (let i = 0; i < p; i++) {
        const l = labels[b * p + i];
        if (l < 0) continue;
        const cls = foreground ? Math.min(l, 1) : l;
        const t = cls === k ? 1 : 0;
        const q = probs[(b * c + k) * p + i];
        inter += q * t;
        a += q;
        y += t;
      }
      total += jaccard(inter, a, y);
    }
  }
  return total / (n * c);
}

/** ESJ in float64: embeddings [N, D, P], labels [N, P]. */
function esjRef(emb: Float64Array, labels: ArrayLike<number>, n: number, d: number, p: number, margin: number): number {
  const sigma2 = margin ** 2 / (2 * Math.LN2);
  let total = 0;
  let instances = 0;
  for (let b = 0; b < n; b++) {
    const e = (i: number, k: number) => emb[(b * d + k) * p + i];
    const ids = [...new Set(Array.from({ length: p }, (_, i) => labels[b * p + i]).filter((l) => l > 0))];
    for (const id of ids) {
      const c = new Float64Array(d);
      let size = 0;
      for (let i = 0; i < p; i++) {
        if (labels[b * p + i] !== id) continue;
        size++;
        for (let k = 0; k < d; k++) c[k] += e(i, k);
      }
      c.forEach((v, k) => (c[k] = v / size));
      let inter = 0;
      let a = 0;
      for (let i = 0; i < p; i++) {
        if (!(labels[b * p + i] > 0)) continue;
        let dist2 = 0;
        for (let k = 0; k < d; k++) dist2 += (e(i, k) - c[k]) ** 2;
        const q = Math.exp(-0.5 * dist2 / sigma2);
        a += q;
        if (labels[b * p + i] === id) inter += q;
      }
      total += jaccard(inter, a, size);
      instances++;
    }
  }
  return instances ? total / instances : 0;
}

/** Random probabilities that sum to 1 over classes (softmax of uniform logits), rounded to f32. */
function randomProbs(n: number, c: number, p: number, seed: number): Float64Array {
  const logits = uniform(n * c * p, rng(seed), -2, 2);
  const out = new Float64Array(logits.length);
  for (let b = 0; b < n; b++) {
    for (let i = 0; i < p; i++) {
      let s = 0;
      for (let k = 0; k < c; k++) s += Math.exp(logits[(b * c + k) * p + i]);
      for (let k = 0; k < c; k++) out[(b * c + k) * p + i] = Math.fround(Math.exp(logits[(b * c + k) * p + i]) / s);
    }
  }
  return out;
}

function randomLabels(count: number, lo: number, hi: number, seed: number): number[] {
  const r = rng(seed);
  return Array.from({ length: count }, () => lo + Math.floor(r() * (hi - lo + 1)));
}

describe('softJaccardLoss', () => {
  const cases: [string, number[], number, number][] = [
    ['2D, 3 classes with ignored pixels', [2, 3, 5, 7], -1, 2],
    ['3D, 2 classes', [1, 2, 3, 4, 5], 0, 1],
    ['long rows (several passes per workgroup)', [2, 2, 40, 30], -1, 1],
  ];
  for (const [name, shape, lo, hi] of cases) {
    it(name, async (e) => {
      const [n, c] = shape;
      const p = shape.slice(2).reduce((a, b) => a * b, 1);
      const labels = randomLabels(n * p, lo, hi, 7);
      await checkOp(e, {
        inputs: [{ shape, data: randomProbs(n, c, p, 3) }, { shape: [n, 1, ...shape.slice(2)], data: labels, dtype: 'i32' }],
        run: ([probs, l]) => softJaccardLoss(probs, l),
        ref: ([probs]) => [softJaccardRef(probs, labels, n, c, p)],
      });
    });
  }

  it('foreground mode: instance ids map to class 1, negatives are ignored', async (e) => {
    const shape = [2, 2, 6, 6];
    const labels = randomLabels(2 * 36, -1, 5, 11);
    await checkOp(e, {
      inputs: [{ shape, data: randomProbs(2, 2, 36, 5) }, { shape: [2, 1, 6, 6], data: labels, dtype: 'i32' }],
      run: ([probs, l]) => softJaccardLoss(probs, l, { foreground: true }),
      ref: ([probs]) => [softJaccardRef(probs, labels, 2, 2, 36, true)],
    });
  });

  it('hand cases: a perfect prediction scores 0, a fully wrong one 1', async (e) => {
    const labels = e.tensor(new Int32Array([0, 1, 1, 0]), [1, 1, 2, 2]);
    const perfect = e.tensor([1, 0, 0, 1, 0, 1, 1, 0], [1, 2, 2, 2]);
    const wrong = e.tensor([0, 1, 1, 0, 1, 0, 0, 1], [1, 2, 2, 2]);
    expect(await softJaccardLoss(perfect, labels).item()).toBeCloseTo(0, 6);
    expect(await softJaccardLoss(wrong, labels).item()).toBeCloseTo(1, 6);
    // Uniform 0.5: per class I = 1, U = 2 + 2 − 1 = 3 → 1 − 1/3.
    const half = e.fill([1, 2, 2, 2], 0.5);
    expect(await softJaccardLoss(half, labels).item()).toBeCloseTo(2 / 3, 6);
    for (const t of [labels, perfect, wrong, half]) t.dispose();
  });

  it('names bad arguments', async (e) => {
    const probs = e.zeros([2, 3, 4, 4]);
    const labels = e.zeros([2, 1, 4, 4], 'i32');
    const wrongShape = e.zeros([2, 1, 4, 5], 'i32');
    const floatLabels = e.zeros([2, 1, 4, 4]);
    expect(() => softJaccardLoss(probs, wrongShape)).toThrow('softJaccardLoss: labels [2, 1, 4, 5] must be [2, 1, 4, 4] for probs [2, 3, 4, 4]');
    expect(() => softJaccardLoss(probs, floatLabels)).toThrow('softJaccardLoss: labels must be i32, got f32 [2, 1, 4, 4]');
    expect(() => softJaccardLoss(probs, labels, { foreground: true })).toThrow('foreground labels need 2 classes');
    for (const t of [probs, labels, wrongShape, floatLabels]) t.dispose();
  });
});

describe('embeddingJaccardLoss', () => {
  // Embeddings near their pixel coordinates plus noise, so instances are neither trivially separated nor merged.
  function embeddingsNearGrid(n: number, d: number, spatial: number[], noise: number, seed: number): Float64Array {
    const p = spatial.reduce((a, b) => a * b, 1);
    const out = uniform(n * d * p, rng(seed), -noise, noise);
    for (let b = 0; b < n; b++) {
      for (let i = 0; i < p; i++) {
        let rest = i;
        for (let k = spatial.length - 1; k >= 0; k--) {
          const coord = rest % spatial[k];
          rest = Math.floor(rest / spatial[k]);
          const axis = k - (spatial.length - d);
          if (axis >= 0) out[(b * d + axis) * p + i] = Math.fround(out[(b * d + axis) * p + i] + coord);
        }
      }
    }
    return out;
  }

  const cases: { name: string; spatial: number[]; n: number; labels: (n: number, p: number) => number[]; margin: number }[] = [
    { name: '2D, random labels with ignored pixels', spatial: [6, 7], n: 2, labels: (n, p) => randomLabels(n * p, -1, 4, 21), margin: 2 },
    {
      name: '2D, items with different instance counts, one without instances, sparse ids',
      spatial: [5, 6], n: 3,
      labels: (_n, p) => [
        ...randomLabels(p, 0, 2, 31),
        ...Array.from({ length: p }, (_, i) => (i % 7 === 3 ? -1 : 0)),
        ...randomLabels(p, 0, 5, 32).map((l) => (l ? 1000 + 37 * l : 0)),
      ],
      margin: 3,
    },
    { name: '3D', spatial: [3, 4, 5], n: 1, labels: (n, p) => randomLabels(n * p, 0, 3, 41), margin: 2.5 },
  ];
  for (const c of cases) {
    it(c.name, async (e) => {
      const d = c.spatial.length;
      const p = c.spatial.reduce((a, b) => a * b, 1);
      const labels = c.labels(c.n, p);
      await checkOp(e, {
        inputs: [
          { shape: [c.n, d, ...c.spatial], data: embeddingsNearGrid(c.n, d, c.spatial, 1.5, 9) },
          { shape: [c.n, 1, ...c.spatial], data: labels, dtype: 'i32' },
        ],
        run: ([emb, l]) => embeddingJaccardLoss(emb, l, c.margin),
        ref: ([emb]) => [esjRef(emb, labels, c.n, d, p, c.margin)],
      });
    });
  }

  it('many instances in one item (several blocks per workgroup)', async (e) => {
    const spatial = [24, 30];
    const p = 720;
    // 8x6-pixel tiles: 90 instances, more than one block of KB per workgroup.
    const labels = Array.from({ length: p }, (_, i) => 1 + Math.floor(Math.floor(i / 30) / 8) * 5 + Math.floor((i % 30) / 6));
    await checkOp(e, {
      inputs: [{ shape: [1, 2, ...spatial], data: embeddingsNearGrid(1, 2, spatial, 1, 4) }, { shape: [1, 1, ...spatial], data: labels, dtype: 'i32' }],
      run: ([emb, l]) => embeddingJaccardLoss(emb, l, 3),
      ref: ([emb]) => [esjRef(emb, labels, 1, 2, p, 3)],
    });
  });

  it('hand cases: far-apart perfect embeddings score 0; equal embeddings a known value; no instances 0', async (e) => {
    // Two instances of 3 pixels, each embedded at one point, 100 margins apart: p = y exactly.
    const labels = e.tensor(new Int32Array([1, 1, 1, 0, 2, 2, 2, -1]), [1, 1, 2, 4]);
    const perfect = e.tensor([0, 0, 0, 50, 100, 100, 100, 7, 0, 0, 0, 50, 100, 100, 100, 7], [1, 2, 2, 4]);
    expect(await embeddingJaccardLoss(perfect, labels, 1).item()).toBeCloseTo(0, 6);
    // All embeddings equal: p = 1 on the 6 foreground pixels, so I = 3, U = 6 for both instances → 1 − 3/6.
    const equal = e.fill([1, 2, 2, 4], 5);
    expect(await embeddingJaccardLoss(equal, labels, 1).item()).toBeCloseTo(0.5, 6);
    const none = e.tensor(new Int32Array([0, 0, -1, 0, 0, 0, 0, 0]), [1, 1, 2, 4]);
    expect(await embeddingJaccardLoss(equal, none, 1).item()).toBe(0);
    for (const t of [labels, perfect, equal, none]) t.dispose();
  });

  it('at the margin p = 0.5', async (e) => {
    // Two one-pixel instances one margin apart.
    const labels = e.tensor(new Int32Array([1, 2]), [1, 1, 1, 2]);
    const emb = e.tensor([0, 3], [1, 1, 1, 2]);
    // Each instance: I = 1, A = 1 + 0.5, Y = 1 → U = 1.5, L = 1 − 1/1.5 = 1/3.
    expect(await embeddingJaccardLoss(emb, labels, 3).item()).toBeCloseTo(1 / 3, 5);
    labels.dispose();
    emb.dispose();
  });

  it('names bad arguments', async (e) => {
    const emb = e.zeros([1, 4, 3, 3]);
    const labels = e.zeros([1, 1, 3, 3], 'i32');
    expect(() => embeddingJaccardLoss(emb, labels, 1)).toThrow('embeddingJaccardLoss: embeddings need 1 to 3 channels, got 4 in [1, 4, 3, 3]');
    const emb2 = e.zeros([1, 2, 3, 3]);
    expect(() => embeddingJaccardLoss(emb2, labels, 0)).toThrow('embeddingJaccardLoss: margin must be a positive number, got 0');
    for (const t of [emb, labels, emb2]) t.dispose();
  });
});
