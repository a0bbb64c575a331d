// PatchPerPix's targets against a plain TypeScript reference on random layered labels (2D and 3D, anisotropic, one to
// three layers, unlabeled regions in layer 0 or in every layer, P = 1, 3, 5 and per axis, centred windows), a hand
// case of two crossing instances, the round trip to the instance masks the labels were made from, the BCE built from
// elementwise ops on the −1-for-ignore targets, poisoned outputs (every output element is compared), leaks and errors.
import { type Engine, greater, greaterEqual, logSigmoid, neg, patchTargets, sum, where, type PatchTargetOptions } from '../../src/index.ts';
import { rng, coordsOf, indexOf } from '../support/check.ts';
import { expect } from '../support/expect.ts';
import { checkList } from '../support/suite.ts';

const { checks, describe, it } = checkList();
export { checks };

interface Targets {
  targets: number[];
  mask: number[];
  numInstances: number[];
}

const product = (xs: readonly number[]) => xs.reduce((a, b) => a * b, 1);

/** The reference: for each window pixel its instance set (null: unlabeled), then every channel by the definition. */
function targetsRef(labels: ArrayLike<number>, shape: readonly number[], options: PatchTargetOptions): Targets {
  const [items, layers, ...crop] = shape;
  const dims = crop.length;
  const patch = typeof options.patchSize === 'number' ? new Array<number>(dims).fill(options.patchSize) : [...options.patchSize];
  const window = options.outputSize ?? crop;
  const volume = product(crop);
  const instancesAt = (n: number, c: readonly number[]): Set<number> | null => {
    const ids = new Set<number>();
    for (let k = 0; k < layers; k++) {
      const id = labels[(n * layers + k) * volume + indexOf(c, crop)];
      if (id < 0) return null;
      if (id > 0) ids.add(id);
    }
    return ids;
  };
  const out: Targets = { targets: [], mask: [], numInstances: [] };
  for (let n = 0; n < items; n++) {
    const own = Array.from({ length: product(window) }, (_, i) => {
      const p = coordsOf(i, window).map((x, a) => x + (crop[a] - window[a]) / 2);
      return { p, ids: instancesAt(n, p) };
    });
    for (const { ids } of own) {
      out.numInstances.push(ids ? Math.min(ids.size, 2) : -1);
      out.mask.push(ids && ids.size <= 1 ? 1 : 0);
    }
    for (let c = 0; c < product(patch); c++) {
      const offset = coordsOf(c, patch).map((x, a) => x - (patch[a] - 1) / 2);
      for (const { p, ids } of own) {
        if (!ids || ids.size > 1) out.targets.push(-1);
        else if (ids.size === 0) out.targets.push(0);
        else {
          const q = p.map((x, a) => x + offset[a]);
          const there = q.every((x, a) => x >= 0 && x < crop[a]) ? instancesAt(n, q) : null;
          out.targets.push(there ? Number(there.has([...ids][0])) : -1);
        }
      }
    }
  }
  return out;
}

/** patchTargets on the GPU, read back, shapes and dtypes checked, every tensor disposed and none leaked. */
async function run(e: Engine, labels: ArrayLike<number>, shape: number[], options: PatchTargetOptions): Promise<Targets> {
  const t = e.tensor(Int32Array.from(labels), shape);
  const before = e.stats().liveTensors;
  const out = patchTargets(t, options);
  const [items, , ...crop] = shape;
  const window = options.outputSize ?? crop;
  const patch = typeof options.patchSize === 'number' ? crop.map(() => options.patchSize as number) : options.patchSize;
  expect(out.targets.shape).toEqual([items, product(patch), ...window]);
  expect(out.mask.shape).toEqual([items, 1, ...window]);
  expect(out.numInstances.shape).toEqual([items, 1, ...window]);
  expect([out.targets.dtype, out.mask.dtype, out.numInstances.dtype]).toEqual(['f32', 'f32', 'i32']);
  // + 0 turns −0 into 0: lavapipe writes some zeros of select(−1, 0, c) as −0, which every comparison treats as 0.
  const read = {
    targets: Array.from(await out.targets.data(), (v) => v + 0), mask: Array.from(await out.mask.data(), (v) => v + 0),
    numInstances: Array.from(await out.numInstances.data()),
  };
  for (const x of Object.values(out)) x.dispose();
  expect(e.stats().liveTensors, 'tensors leaked').toBe(before);
  t.dispose();
  return read;
}

/** Equal element by element (NaN from a poisoned, unwritten element included); a mismatch names its first index. */
function expectSame(out: Targets, ref: Targets): void {
  for (const key of ['targets', 'mask', 'numInstances'] as const) {
    expect(out[key].length, `${key} length`).toBe(ref[key].length);
    const i = out[key].findIndex((v, j) => !Object.is(v, ref[key][j]));
    if (i >= 0) expect(out[key][i], `${key}[${i}]`).toBe(ref[key][i]);
  }
}

interface Scene {
  labels: Int32Array;
  shape: number[];
  /** Per item, per instance id, its pixels (crop indices). */
  masks: Map<number, Set<number>>[];
  /** Per item, the unlabeled pixels. */
  unlabeled: Set<number>[];
}

/**
 * Random ellipsoidal instances (sparse ids) over `items` crops of `crop`, in canonical layers, exactly `layers` deep:
 * the seed is advanced until the most crowded pixel has `layers` instances. An unlabeled box is −1 in layer 0 or, as
 * in training crops, in every layer.
 */
function scene(seed: number, items: number, crop: readonly number[], layers: number, count: number, unlabeledEverywhere: boolean): Scene {
  const volume = product(crop);
  for (let s = seed; ; s++) {
    const rand = rng(s);
    const masks: Map<number, Set<number>>[] = [];
    const unlabeled: Set<number>[] = [];
    const perPixel: (number[] | null)[] = [];
    for (let n = 0; n < items; n++) {
      const item = new Map<number, Set<number>>();
      for (let k = 0; k < count; k++) {
        const centre = crop.map((d) => rand() * d);
        const radius = crop.map((d) => 0.7 + rand() * d * 0.4);
        const pixels = new Set<number>();
        for (let i = 0; i < volume; i++) {
          const c = coordsOf(i, crop);
          if (c.reduce((r, x, a) => r + ((x - centre[a]) / radius[a]) ** 2, 0) <= 1) pixels.add(i);
        }
        if (pixels.size) item.set(3 + 11 * k + Math.floor(rand() * 5), pixels);
      }
      const lo = crop.map((d) => Math.floor(rand() * d));
      const hi = lo.map((l, a) => Math.min(crop[a], l + 1 + Math.floor(rand() * 3)));
      const box = new Set<number>();
      for (let i = 0; i < volume; i++) if (coordsOf(i, crop).every((x, a) => x >= lo[a] && x < hi[a])) box.add(i);
      masks.push(item);
      unlabeled.push(box);
      for (let i = 0; i < volume; i++) {
        perPixel.push(box.has(i) ? null : [...item].filter(([, m]) => m.has(i)).map(([id]) => id).sort((a, b) => a - b));
      }
    }
    if (Math.max(...perPixel.map((ids) => ids?.length ?? 0)) !== layers) continue;
    const labels = new Int32Array(items * layers * volume);
    perPixel.forEach((ids, j) => {
      const n = Math.floor(j / volume);
      const i = j % volume;
      for (let k = 0; k < layers; k++) {
        const at = (n * layers + k) * volume + i;
        labels[at] = ids === null ? (k === 0 || unlabeledEverywhere ? -1 : 0) : ids[k] ?? 0;
      }
    });
    return { labels, shape: [items, layers, ...crop], masks, unlabeled };
  }
}

describe('patchTargets', () => {
  it('two crossing instances: the crossing is masked with class 2, and lies in both instances\' patches', async (e) => {
    // Instance 1 is row 2, instance 2 column 2; they cross at (2, 2), where layer 0 holds 1 and layer 1 holds 2.
    // (3, 4) is unlabeled.
    const layer0 = [
      [0, 0, 2, 0, 0],
      [0, 0, 2, 0, 0],
      [1, 1, 1, 1, 1],
      [0, 0, 2, 0, -1],
      [0, 0, 2, 0, 0],
    ].flat();
    const layer1 = new Array<number>(25).fill(0);
    layer1[12] = 2;
    const labels = [...layer0, ...layer1];
    const shape = [1, 2, 5, 5];
    const out = await run(e, labels, shape, { patchSize: 3 });
    expectSame(out, targetsRef(labels, shape, { patchSize: 3 }));
    const patchAt = (y: number, x: number) => Array.from({ length: 9 }, (_, c) => out.targets[c * 25 + y * 5 + x]);
    expect(out.numInstances).toEqual([0, 0, 1, 0, 0, 0, 0, 1, 0, 0, 1, 1, 2, 1, 1, 0, 0, 1, 0, -1, 0, 0, 1, 0, 0]);
    expect(out.mask).toEqual(out.numInstances.map((k) => (k === 0 || k === 1 ? 1 : 0)));
    expect(patchAt(2, 2), 'the crossing').toEqual(new Array<number>(9).fill(-1));
    expect(patchAt(2, 1), 'instance 1 beside the crossing').toEqual([0, 0, 0, 1, 1, 1, 0, 0, 0]);
    // Layer 1 puts the crossing into instance 2's patches.
    expect(patchAt(1, 2), 'instance 2 above the crossing').toEqual([0, 1, 0, 0, 1, 0, 0, 1, 0]);
    expect(patchAt(0, 2), 'instance 2 at the border').toEqual([-1, -1, -1, 0, 1, 0, 0, 1, 0]);
    expect(patchAt(2, 4), 'instance 1 beside the unlabeled pixel').toEqual([0, 0, -1, 1, 1, -1, 0, -1, -1]);
    // Background patches are all 0: beyond the border and at unlabeled pixels too.
    expect(patchAt(0, 0), 'background at the corner').toEqual(new Array<number>(9).fill(0));
    expect(patchAt(4, 4), 'background beside the unlabeled pixel').toEqual(new Array<number>(9).fill(0));
    expect(patchAt(3, 4), 'the unlabeled pixel').toEqual(new Array<number>(9).fill(-1));
    // A centred 3×3 window: its pixel (0, 0) is the crop's (1, 1), and its patch reaches the labelled margin.
    const inner = await run(e, labels, shape, { patchSize: 3, outputSize: [3, 3] });
    expectSame(inner, targetsRef(labels, shape, { patchSize: 3, outputSize: [3, 3] }));
    expect(Array.from({ length: 9 }, (_, c) => inner.targets[c * 9 + 1]), 'instance 2 in the window').toEqual([0, 1, 0, 0, 1, 0, 0, 1, 0]);
    expect(inner.numInstances).toEqual([0, 1, 0, 1, 2, 1, 0, 1, 0]);
  });

  const cases: { name: string; crop: number[]; layers: number; count: number; everywhere: boolean; options: PatchTargetOptions; items?: number }[] = [
    { name: '2D, one layer, P = 3', crop: [7, 9], layers: 1, count: 4, everywhere: false, options: { patchSize: 3 } },
    { name: '2D, 2 layers, P = 5, unlabeled in every layer', crop: [8, 11], layers: 2, count: 5, everywhere: true, options: { patchSize: 5 } },
    { name: '2D, 3 layers, P = 1', crop: [9, 10], layers: 3, count: 7, everywhere: false, options: { patchSize: 1 }, items: 1 },
    { name: '2D, 3 layers, P = 5, centred window [4, 5]', crop: [8, 11], layers: 3, count: 7, everywhere: true, options: { patchSize: 5, outputSize: [4, 5] } },
    { name: '3D anisotropic, 2 layers, P = 3', crop: [4, 6, 7], layers: 2, count: 4, everywhere: false, options: { patchSize: 3 } },
    { name: '3D, 3 layers, P = [1, 5, 3], centred window [3, 4, 4]', crop: [3, 8, 6], layers: 3, count: 6, everywhere: true, options: { patchSize: [1, 5, 3], outputSize: [3, 4, 4] }, items: 1 },
  ];
  cases.forEach((c, k) => {
    it(`matches the reference on random layered labels (${c.name})`, async (e) => {
      const s = scene(100 * k + 7, c.items ?? 2, c.crop, c.layers, c.count, c.everywhere);
      expectSame(await run(e, s.labels, s.shape, c.options), targetsRef(s.labels, s.shape, c.options));
    });
  });

  it('round trip: each labelled single-instance pixel\'s 1s are exactly its instance within the patch (2D and 3D)', async (e) => {
    const trips: [Scene, PatchTargetOptions][] = [
      [scene(5, 2, [9, 12], 2, 6, false), { patchSize: 5, outputSize: [5, 8] }],
      [scene(6, 1, [5, 7, 6], 3, 6, true), { patchSize: 3 }],
    ];
    for (const [s, options] of trips) {
      const out = await run(e, s.labels, s.shape, options);
      const [items, , ...crop] = s.shape;
      const window = options.outputSize ?? crop;
      const patch = crop.map(() => options.patchSize as number);
      const pixels = product(window);
      const channels = product(patch);
      let checked = 0;
      for (let n = 0; n < items; n++) {
        for (let i = 0; i < pixels; i++) {
          const p = coordsOf(i, window).map((x, a) => x + (crop[a] - window[a]) / 2);
          const at = indexOf(p, crop);
          const own = [...s.masks[n]].filter(([, m]) => m.has(at));
          if (s.unlabeled[n].has(at) || own.length !== 1) continue;
          const [, instance] = own[0];
          const ones: number[] = [];
          const ignored: number[] = [];
          const expectedOnes: number[] = [];
          const expectedIgnored: number[] = [];
          for (let c = 0; c < channels; c++) {
            const value = out.targets[(n * channels + c) * pixels + i];
            if (value === 1) ones.push(c);
            if (value === -1) ignored.push(c);
            const q = coordsOf(c, patch).map((x, a) => p[a] + x - (patch[a] - 1) / 2);
            const inside = q.every((x, a) => x >= 0 && x < crop[a]);
            if (!inside || s.unlabeled[n].has(indexOf(q, crop))) expectedIgnored.push(c);
            else if (instance.has(indexOf(q, crop))) expectedOnes.push(c);
          }
          expect(ones, `item ${n}, pixel ${p}`).toEqual(expectedOnes);
          expect(ignored, `item ${n}, pixel ${p}`).toEqual(expectedIgnored);
          checked++;
        }
      }
      expect(checked).toBeGreaterThan(5);
    }
  });

  it('the patch BCE is a composition of where, comparisons and logSigmoid: ignored targets add nothing, nor gradient', async (e) => {
    const s = scene(9, 2, [6, 7], 2, 4, true);
    const options = { patchSize: 3 };
    const labels = e.tensor(s.labels, s.shape);
    const { targets, mask, numInstances } = patchTargets(labels, options);
    const rand = rng(11);
    const z = e.param(e.tensor(Array.from({ length: targets.size }, () => 8 * rand() - 4), targets.shape));
    const loss = e.tidy(() => {
      const zero = e.tensor([0], [1]);
      const valid = greaterEqual(targets, zero);
      const logLikelihood = where(greater(targets, e.tensor([0.5], [1])), logSigmoid(z), logSigmoid(neg(z)));
      const total = neg(sum(where(valid, logLikelihood, zero)));
      total.backward();
      return total;
    });
    const t = Array.from(await targets.data());
    const logits = Array.from(await z.data());
    const softplus = (v: number) => Math.max(v, 0) + Math.log1p(Math.exp(-Math.abs(v)));
    const sigmoid = (v: number) => 1 / (1 + Math.exp(-v));
    const expected = t.reduce((acc, v, i) => acc + (v < 0 ? 0 : softplus(logits[i]) - v * logits[i]), 0);
    expect(Math.abs((await loss.data())[0] - expected)).toBeLessThan(1e-5 * expected);
    const grad = Array.from(await z.grad!.data());
    grad.forEach((g, i) => expect(Math.abs(g - (t[i] < 0 ? 0 : sigmoid(logits[i]) - t[i])), `gradient ${i}`).toBeLessThan(1e-6));
    expect(t.filter((v) => v === -1).length).toBeGreaterThan(0);
    for (const x of [labels, targets, mask, numInstances, z, loss]) x.dispose();
  });

  it('names what is wrong with its inputs', async (e) => {
    const floats = e.zeros([1, 1, 4, 4]);
    const flat = e.zeros([1, 16], 'i32');
    const noLayers = e.zeros([1, 0, 4, 4], 'i32');
    const labels = e.zeros([1, 2, 6, 6], 'i32');
    expect(() => patchTargets(floats, { patchSize: 3 })).toThrow('patchTargets: labels must be i32 [N, L, H, W] or [N, L, D, H, W], got f32 [1, 1, 4, 4]');
    expect(() => patchTargets(flat, { patchSize: 3 })).toThrow('patchTargets: labels must be i32 [N, L, H, W] or [N, L, D, H, W], got i32 [1, 16]');
    expect(() => patchTargets(noLayers, { patchSize: 3 })).toThrow('patchTargets: labels need at least one layer, got [1, 0, 4, 4]');
    expect(() => patchTargets(labels, { patchSize: 4 })).toThrow('patchTargets: patchSize must be an odd integer ≥ 1 or 2 of them (one per spatial axis), got 4');
    expect(() => patchTargets(labels, { patchSize: 0 })).toThrow('patchSize must be an odd integer ≥ 1');
    expect(() => patchTargets(labels, { patchSize: [3, 3, 3] })).toThrow('or 2 of them (one per spatial axis), got [3,3,3]');
    expect(() => patchTargets(labels, { patchSize: 3, outputSize: [3, 4] })).toThrow('patchTargets: outputSize [3, 4] must give 2 sizes, each 1 to the crop\'s [6, 6] and smaller by an even number (a centred window)');
    expect(() => patchTargets(labels, { patchSize: 3, outputSize: [8, 8] })).toThrow('outputSize [8, 8] must give 2 sizes');
    expect(() => patchTargets(labels, { patchSize: 3, outputSize: [4] })).toThrow('outputSize [4] must give 2 sizes');
    for (const t of [floats, flat, noLayers, labels]) t.dispose();
  });
});
