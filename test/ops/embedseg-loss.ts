// EmbedSeg's loss against a float64 reference of SPEC.md's formula: medoids, the loss, its gradient by finite
// differences, items without instances, 3D, and the errors.
import { embedSegLoss, type EmbedSegLossOptions, type Engine, instanceMedoids, sigmoid, type Tensor } from '../../src/index.ts';
import { relError, rng, uniform, coordsOf, sizeOf } from '../support/check.ts';
import { expect } from '../support/expect.ts';
import { checkList } from '../support/suite.ts';

const { checks, describe, it } = checkList();
export { checks };

/** The medoid of `pixels` (flat indices): the smallest Σ of grid distances, the lowest index among (near-)equal sums. */
function medoidRef(pixels: number[], spatial: readonly number[], steps: readonly number[]): number {
  const coords = pixels.map((p) => coordsOf(p, spatial).map((c, a) => c * steps[a]));
  let best = -1;
  let bestSum = Infinity;
  pixels.forEach((p, i) => {
    let total = 0;
    for (const c of coords) total += Math.hypot(...c.map((v, a) => v - coords[i][a]));
    if (total < bestSum * (1 - 1e-12) || (total <= bestSum * (1 + 1e-12) && p < best)) {
      best = p;
      bestSum = Math.min(total, bestSum);
    }
  });
  return best;
}

/** Per item: label → the pixels of that instance. */
function instancesOf(labels: ArrayLike<number>, items: number, pixels: number): Map<number, number[]>[] {
  return Array.from({ length: items }, (_, n) => {
    const m = new Map<number, number[]>();
    for (let p = 0; p < pixels; p++) {
      const l = labels[n * pixels + p];
      if (l > 0) m.set(l, [...(m.get(l) ?? []), p]);
    }
    return m;
  });
}

/** lovasz_hinge_flat of Berman et al. in float64. */
function lovaszRef(logits: number[], labels: number[]): number {
  const errors = logits.map((z, i) => 1 - z * (2 * labels[i] - 1));
  const order = errors.map((_, i) => i).sort((a, b) => errors[b] - errors[a]);
  const gts = labels.reduce((a, b) => a + b, 0);
  let loss = 0;
  let cumGt = 0;
  let previous = 0;
  order.forEach((i, k) => {
    cumGt += labels[i];
    const jaccard = 1 - (gts - cumGt) / (gts + (k + 1 - cumGt));
    loss += Math.max(errors[i], 0) * (jaccard - previous);
    previous = jaccard;
  });
  return loss;
}

interface Problem {
  shape: number[];
  labels: Int32Array;
  options: EmbedSegLossOptions;
}

const medoidCache = new WeakMap<Problem, Map<number, number>[]>();

/** Per item: label → medoid, computed once per problem (finite differences evaluate the loss thousands of times). */
function problemMedoids(problem: Problem): Map<number, number>[] {
  if (!medoidCache.has(problem)) {
    const [items, , ...spatial] = problem.shape;
    const steps = problem.options.gridSpacing ?? spatial.map(() => 1 / 1023);
    const instances = instancesOf(problem.labels, items, sizeOf(spatial));
    medoidCache.set(problem, instances.map((m) => new Map([...m].map(([l, ps]) => [l, medoidRef(ps, spatial, steps)]))));
  }
  return medoidCache.get(problem)!;
}

/**
 * The loss in float64. `frozen` holds the values that the detached terms see (σ̄ in the var term, dist in the seed
 * term): the prediction itself, except under finite differences. Also returns the Lovasz hinge errors of every row.
 */
function lossRef(pred: Float64Array, problem: Problem, frozen = pred): { loss: number; errors: number[][] } {
  const { shape, labels, options } = problem;
  const [items, channels, ...spatial] = shape;
  const dims = spatial.length;
  const pixels = sizeOf(spatial);
  const medoids = problemMedoids(problem);
  const { foregroundWeight = 10, wInst = 1, wVar = 10, wSeed = 1 } = options;
  const steps = options.gridSpacing ?? new Array<number>(dims).fill(1 / 1023);
  const at = (x: Float64Array, n: number, c: number, p: number) => x[(n * channels + c) * pixels + p];
  // Channel d runs along spatial axis dims − 1 − d.
  const grid = (p: number) => coordsOf(p, spatial).map((c, a) => c * steps[a]).reverse();
  const embedding = (x: Float64Array, n: number, p: number) => grid(p).map((g, d) => Math.tanh(at(x, n, d, p)) + g);
  const seed = (n: number, p: number) => 1 / (1 + Math.exp(-at(pred, n, 2 * dims, p)));
  const instances = instancesOf(labels, items, pixels);
  const errors: number[][] = [];
  let total = 0;
  for (let n = 0; n < items; n++) {
    const label = (p: number) => labels[n * pixels + p];
    const scored = Array.from({ length: pixels }, (_, p) => p).filter((p) => label(p) >= 0);
    let seedLoss = 0;
    for (const p of scored) if (label(p) === 0) seedLoss += seed(n, p) ** 2;
    let inst = 0;
    let variance = 0;
    for (const [id, members] of instances[n]) {
      const centre = grid(medoids[n].get(id)!);
      const sigmaMean = (x: Float64Array) =>
        Array.from({ length: dims }, (_, d) => members.reduce((s, p) => s + at(x, n, dims + d, p), 0) / members.length);
      const frozenMean = sigmaMean(frozen);
      let spread = 0;
      for (const p of members) for (let d = 0; d < dims; d++) spread += (at(pred, n, dims + d, p) - frozenMean[d]) ** 2;
      variance += spread / (dims * members.length);
      const gaussian = (x: Float64Array) => {
        const bandwidth = sigmaMean(x).map((s) => Math.exp(10 * s));
        return (p: number) => Math.exp(-embedding(x, n, p).reduce((s, e, d) => s + (e - centre[d]) ** 2 * bandwidth[d], 0));
      };
      const dist = gaussian(pred);
      const frozenDist = gaussian(frozen);
      const inMask = scored.map((p) => (label(p) === id ? 1 : 0));
      const logits = scored.map((p) => 2 * dist(p) - 1);
      errors.push(logits.map((z, i) => 1 - z * (2 * inMask[i] - 1)));
      inst += lovaszRef(logits, inMask);
      for (const p of members) seedLoss += foregroundWeight * (seed(n, p) - frozenDist(p)) ** 2;
    }
    const count = instances[n].size;
    if (count > 0) {
      inst /= count;
      variance /= count;
    }
    total += wInst * inst + wVar * variance + wSeed * (seedLoss / pixels);
  }
  return { loss: total / items, errors };
}

/** Labels [N, 1, ...spatial]: a few rectangular instances per item (some touching), ignored pixels sprinkled. */
function blobLabels(shape: number[], perItem: number[], seed: number): Int32Array {
  const [items, , ...spatial] = shape;
  const pixels = sizeOf(spatial);
  const rand = rng(seed);
  const labels = new Int32Array(items * pixels);
  for (let n = 0; n < items; n++) {
    for (let k = 0; k < perItem[n]; k++) {
      const lo = spatial.map((s) => Math.floor(rand() * (s - 2)));
      const hi = lo.map((l, a) => Math.min(spatial[a], l + 2 + Math.floor(rand() * 3)));
      const id = 3 * k + 2 + n;
      for (let p = 0; p < pixels; p++) {
        if (coordsOf(p, spatial).every((c, a) => c >= lo[a] && c < hi[a])) labels[n * pixels + p] = id;
      }
    }
    for (let p = 0; p < pixels; p++) if (rand() < 0.06) labels[n * pixels + p] = -1;
  }
  return labels;
}

/** A prediction with offsets, σ and seed logits in ranges where the Gaussians take values across (0, 1). */
function randomPrediction(shape: number[], seed: number): Float64Array {
  const [items, channels, ...spatial] = shape;
  const dims = spatial.length;
  const pixels = sizeOf(spatial);
  const rand = rng(seed);
  const pred = new Float64Array(sizeOf(shape));
  for (let n = 0; n < items; n++) {
    for (let c = 0; c < channels; c++) {
      const [lo, hi] = c < dims ? [-0.6, 0.6] : c < 2 * dims ? [-0.1, 0.3] : [-2, 2];
      pred.set(uniform(pixels, rand, lo, hi), (n * channels + c) * pixels);
    }
  }
  return pred;
}

async function engineLoss(e: Engine, pred: Float64Array, problem: Problem): Promise<{ loss: number; grad: Float32Array }> {
  const scope = e.beginScope();
  const x = e.param(e.tensor(Float32Array.from(pred), problem.shape));
  const labels = e.tensor(problem.labels, [problem.shape[0], 1, ...problem.shape.slice(2)]);
  const loss: Tensor = await embedSegLoss(x, labels, problem.options);
  expect(loss.shape).toEqual([]);
  loss.backward();
  const result = { loss: await loss.item(), grad: (await x.grad!.data()) as Float32Array };
  x.dispose();
  scope.end();
  return result;
}

/** The engine's loss and gradient against the reference and central differences of it (h small: no Lovasz kink crossed). */
async function checkLoss(e: Engine, problem: Problem, seed: number): Promise<void> {
  const before = e.stats().liveTensors;
  const pred = randomPrediction(problem.shape, seed);
  const { loss: expected, errors } = lossRef(pred, problem);
  // No two hinge errors of a row so close that float32 could sort them apart from float64 (errors near 0 weigh nothing).
  for (const row of errors) {
    const sorted = row.filter((x) => x > 1e-6).sort((a, b) => a - b);
    for (let i = 1; i < sorted.length; i++) expect(sorted[i] - sorted[i - 1], 'gap between hinge errors').toBeGreaterThan(2e-6);
  }
  const { loss, grad } = await engineLoss(e, pred, problem);
  expect(Math.abs(loss - expected) / Math.abs(expected), `loss ${loss} vs ${expected}`).toBeLessThan(1e-5);

  const h = 1e-7;
  const numeric = new Float64Array(pred.length);
  const frozen = Float64Array.from(pred);
  for (let i = 0; i < pred.length; i++) {
    const orig = pred[i];
    pred[i] = orig + h;
    const plus = lossRef(pred, problem, frozen).loss;
    pred[i] = orig - h;
    const minus = lossRef(pred, problem, frozen).loss;
    pred[i] = orig;
    numeric[i] = (plus - minus) / (2 * h);
  }
  expect(relError(grad, numeric), 'gradient relative error').toBeLessThan(1e-4);
  expect(e.stats().liveTensors, 'tensors leaked').toBe(before);
}

describe('instanceMedoids', () => {
  it('finds the medoid of an L-shaped instance (not the pixel nearest its centroid) and breaks ties by pixel index', async (e) => {
    const [h, w] = [12, 10];
    const labels = new Int32Array(2 * h * w);
    const set = (n: number, y: number, x: number, l: number) => (labels[n * h * w + y * w + x] = l);
    // An L: a column at x = 1 (y 1..9) and a row at y = 9 (x 2..7); its centroid (y 6.6, x 2.4) lies outside it.
    for (let y = 1; y <= 9; y++) set(0, y, 1, 5);
    for (let x = 2; x <= 7; x++) set(0, 9, x, 5);
    // A 2x2 square: all four pixels tie.
    for (const [y, x] of [[2, 6], [2, 7], [3, 6], [3, 7]]) set(0, y, x, 9);
    // Item 1: a 2x4 bar (the middle four tie) and a pixel instance; ignored pixels around.
    for (let x = 3; x < 7; x++) for (let y = 4; y < 6; y++) set(1, y, x, 2);
    set(1, 0, 0, 7);
    for (let x = 0; x < w; x++) set(1, 11, x, -1);

    const t = e.tensor(labels, [2, 1, h, w]);
    const medoids = await instanceMedoids(t);
    t.dispose();
    const pixels = instancesOf(labels, 2, h * w);
    const expected = pixels.map((m) => new Map([...m].map(([l, ps]) => [l, medoidRef(ps, [h, w], [1, 1])])));
    expect(medoids).toEqual(expected);
    expect(medoids[0].get(5)).toBe(7 * w + 1);
    expect(medoids[0].get(9)).toBe(2 * w + 6);
    expect(medoids[1].get(2)).toBe(4 * w + 4);
    expect(medoids[1].get(7)).toBe(0);
  });

  it('matches the reference on random instances in 2D and anisotropic 3D', async (e) => {
    for (const [shape, steps] of [[[3, 1, 12, 10], [1, 1]], [[2, 1, 4, 6, 6], [3, 1, 1]]] as const) {
      const labels = blobLabels([...shape], shape.map(() => 4), 7);
      const t = e.tensor(labels, [...shape]);
      const medoids = await instanceMedoids(t, steps);
      t.dispose();
      const spatial = shape.slice(2);
      const expected = instancesOf(labels, shape[0], sizeOf(spatial)).map((m) => new Map([...m].map(([l, ps]) => [l, medoidRef(ps, spatial, steps)])));
      expect(medoids).toEqual(expected);
    }
  });

  it('instances larger than one workgroup (256 pixels) next to one-pixel ones and an item without instances', async (e) => {
    const [h, w] = [40, 36];
    const labels = new Int32Array(3 * h * w);
    for (let y = 0; y < h; y++) {
      for (let x = 0; x < w; x++) {
        // Item 0: a disk of 709 pixels (3 workgroups) off centre, and one pixel; item 2: a 257-pixel block (1 pixel
        // into a second workgroup), a 16x16 block (exactly one) and a ring; item 1 stays empty.
        if ((y - 18) ** 2 + (x - 16) ** 2 <= 15 ** 2) labels[y * w + x] = 3;
        if (y === 39 && x === 35) labels[y * w + x] = 8;
        const at = 2 * h * w + y * w + x;
        if (y < 16 && x < 16) labels[at] = 1;
        else if (y === 16 && x === 0) labels[at] = 1;
        else if (y >= 20 && y < 36 && x >= 20 && x < 36) labels[at] = 4;
        else if (Math.abs(Math.hypot(y - 30, x - 8) - 6) < 1) labels[at] = 6;
      }
    }
    const t = e.tensor(labels, [3, 1, h, w]);
    const medoids = await instanceMedoids(t);
    t.dispose();
    const pixels = instancesOf(labels, 3, h * w);
    expect([pixels[0].get(3)!.length, pixels[0].get(8)!.length, pixels[1].size]).toEqual([709, 1, 0]);
    expect([pixels[2].get(1)!.length, pixels[2].get(4)!.length]).toEqual([257, 256]);
    const expected = pixels.map((m) => new Map([...m].map(([l, ps]) => [l, medoidRef(ps, [h, w], [1, 1])])));
    expect(medoids).toEqual(expected);
  });

  // Two-pixel instances are the one case where the bound of medoid_bounds is tight: both pixels lie on its radius and
  // tie. 289 instances (more rows than one workgroup scans in member_offsets, so its carry is used): horizontal and
  // diagonal pairs and diagonals of three (whose medoid is not their lowest pixel) in 2D, and pairs along z, y and x
  // in 3D with spacing (3, 1, 1).
  it('small instances (pairs tie at the bound, diagonals of three), more than 256 of them, in 2D and anisotropic 3D', async (e) => {
    const [h, w] = [51, 51];
    const flat = new Int32Array(h * w);
    let label = 0;
    for (let y = 0; y + 1 < h; y += 3) {
      for (let x = 0; x + 1 < w; x += 3) {
        label++;
        flat[y * w + x] = label;
        if (label % 3 === 0) flat[y * w + x + 1] = label;
        else if (label % 3 === 1) flat[(y + 1) * w + x + 1] = label;
        else [1, 2].forEach((k) => (flat[(y + k) * w + x + k] = label)); // a diagonal of three: the middle one

      }
    }
    const cases: [Int32Array, number[], number[]][] = [[flat, [1, 1, h, w], [1, 1]]];
    const [d, hh, ww] = [4, 6, 6];
    const vol = new Int32Array(d * hh * ww);
    let l3 = 0;
    for (const z of [0, 2]) {
      for (const y of [0, 3]) {
        for (const x of [0, 3]) {
          const [dz, dy, dx] = [[1, 0, 0], [0, 1, 0], [0, 0, 1]][l3 % 3];
          l3++;
          vol[(z * hh + y) * ww + x] = l3;
          vol[((z + dz) * hh + y + dy) * ww + x + dx] = l3;
        }
      }
    }
    cases.push([vol, [1, 1, d, hh, ww], [3, 1, 1]]);
    expect(label).toBeGreaterThan(256);
    for (const [labels, shape, steps] of cases) {
      const t = e.tensor(labels, shape);
      const medoids = await instanceMedoids(t, steps);
      t.dispose();
      const spatial = shape.slice(2);
      const pixels = instancesOf(labels, 1, sizeOf(spatial));
      const expected = pixels.map((m) => new Map([...m].map(([l, ps]) => [l, medoidRef(ps, spatial, steps)])));
      expect(medoids).toEqual(expected);
      // A pair's lower pixel, a diagonal's middle one.
      for (const [l, ps] of pixels[0]) expect(medoids[0].get(l)).toBe(ps.length === 2 ? Math.min(...ps) : [...ps].sort((p, q) => p - q)[1]);
    }
  });
});

describe('embedSegLoss', () => {
  it('matches the float64 reference and its finite-difference gradient (2D, ignored pixels)', async (e) => {
    const shape = [2, 5, 12, 10];
    await checkLoss(e, { shape, labels: blobLabels(shape, [3, 4], 11), options: {} }, 21);
  });

  it('weights and an anisotropic grid', async (e) => {
    const shape = [1, 5, 8, 9];
    const options = { foregroundWeight: 3, wInst: 2, wVar: 0.5, wSeed: 4, gridSpacing: [2 / 1023, 1 / 1023] };
    await checkLoss(e, { shape, labels: blobLabels(shape, [2], 5), options }, 8);
  });

  it('an item without instances contributes its background seed term only', async (e) => {
    const shape = [2, 5, 12, 10];
    const labels = blobLabels(shape, [3, 0], 11);
    await checkLoss(e, { shape, labels, options: {} }, 21);
    // Alone, such an item's loss is Σ_bg sigmoid(seed)² / pixels.
    const single = [1, 5, 12, 10];
    const pred = randomPrediction(single, 3);
    const empty = labels.slice(120);
    const { loss } = await engineLoss(e, pred, { shape: single, labels: empty, options: {} });
    let expected = 0;
    for (let p = 0; p < 120; p++) if (empty[p] === 0) expected += (1 / (1 + Math.exp(-pred[4 * 120 + p]))) ** 2;
    expect(loss).toBeCloseTo(expected / 120, 6);
  });

  it("the seed probability is the elementwise sigmoid's, to 3e-7 on confident background (logits -18 to -22)", async (e) => {
    // Lavapipe's built-in exp may be off by 3 + 2|v| ulp: with it this loss was 1.1e-6 off, with sigmoid's 3e-8.
    const shape = [1, 5, 4, 4];
    const pred = new Float64Array(5 * 16);
    for (let p = 0; p < 16; p++) pred[4 * 16 + p] = -18 - p / 4;
    const { loss } = await engineLoss(e, pred, { shape, labels: new Int32Array(16), options: {} });
    const seeds = e.tensor(Float32Array.from(pred.slice(64)), [16]);
    const probabilities = sigmoid(seeds);
    const s = await probabilities.data();
    probabilities.dispose();
    seeds.dispose();
    const expected = Array.from(s).reduce((sum, v) => sum + v * v, 0) / 16;
    expect(Math.abs(loss - expected) / expected).toBeLessThan(3e-7);
  });

  it('3D: prediction [1, 7, 4, 6, 6]', async (e) => {
    const shape = [1, 7, 4, 6, 6];
    await checkLoss(e, { shape, labels: blobLabels(shape, [3], 4), options: {} }, 6);
  });

  it('names wrong shapes, channel counts and options', async (e) => {
    const scope = e.beginScope();
    const pred = e.zeros([2, 5, 12, 10]);
    const labels = e.zeros([2, 1, 12, 10], 'i32');
    await expect(embedSegLoss(e.zeros([2, 4, 12, 10]), labels)).rejects.toThrow('embedSegLoss: prediction has 4 channels, 2D needs 5 (2 offsets, 2 σ, 1 seed) in [2, 4, 12, 10]');
    await expect(embedSegLoss(e.zeros([1, 5, 4, 6, 6]), e.zeros([1, 1, 4, 6, 6], 'i32'))).rejects.toThrow('prediction has 5 channels, 3D needs 7');
    await expect(embedSegLoss(e.zeros([2, 5, 12]), labels)).rejects.toThrow('embedSegLoss: prediction must be [N, C, H, W] or [N, C, D, H, W], got [2, 5, 12]');
    await expect(embedSegLoss(pred, e.zeros([2, 1, 12, 9], 'i32'))).rejects.toThrow('embedSegLoss: labels [2, 1, 12, 9] must be [2, 1, 12, 10] for prediction [2, 5, 12, 10]');
    await expect(embedSegLoss(pred, e.zeros([2, 1, 12, 10]))).rejects.toThrow('embedSegLoss: labels must be i32, got f32');
    await expect(embedSegLoss(pred, labels, { gridSpacing: [1] })).rejects.toThrow('embedSegLoss: gridSpacing needs 2 positive steps (one per spatial axis), got [1]');
    await expect(embedSegLoss(pred, labels, { wVar: -1 })).rejects.toThrow('embedSegLoss: wVar must be a number >= 0, got -1');
    scope.end();
  });
});
