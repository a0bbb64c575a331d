// PatchPerPix the model (src/models/ppp.ts): configs and their errors, the sampled offsets and grid, the patch
// interpolation, the masked losses against float64 references, the loss terms of each head, infer's sizes, and the
// oracle through the model: outputs made from the ground truth, postprocessed, give the ground truth back.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Engine } from '../src/engine/engine.ts';
import { conv } from '../src/kernels/conv.ts';
import { patchTargets } from '../src/kernels/patch-targets.ts';
import { pad, slice } from '../src/kernels/shape.ts';
import {
  gridIndices, interpolatePatches, unpackDense, maskedBCE, maskedCE, PatchPerPix, pppConfig, pppPresets, pppSpec, sampledChannels, sampledOffsets,
} from '../src/models/ppp.ts';
import { evaluateImage } from '../src/train/metrics.ts';
import { syntheticBlobs } from '../src/train/synthetic.ts';
import { syntheticWorms } from '../src/train/synthetic-worms.ts';
import { rng } from './support/check.ts';
import { testEngine } from './support/engine.ts';

let e: Engine;
beforeAll(async () => {
  e = await testEngine();
});
afterAll(() => e?.destroy());

describe('ppp config', () => {
  it('presets, defaults and named errors', () => {
    expect(pppConfig({})).toEqual(pppPresets.paper);
    expect(pppConfig({ ndim: 3 })).toEqual(pppPresets['paper-3d']);
    expect(pppPresets.paper).toMatchObject({ head: 'ppp+dec', patchSize: [41, 41], codeShape: [7, 6, 6], numInstances: true, threshold: 0.9 });
    expect(pppPresets['paper-dsb']).toMatchObject({ head: 'ppp+dec', patchSize: [25, 25], codeShape: [16, 4, 4], numInstances: false, threshold: 0.6 });
    expect(pppPresets['paper-3d']).toMatchObject({ head: 'ppp', patchSize: [9, 9, 9] });
    expect(() => pppConfig({ patch: 3 })).toThrow('ppp: unknown config field "patch"');
    expect(() => pppConfig({ head: 'dec' })).toThrow(`ppp: head must be 'ppp' or 'ppp+dec', got "dec"`);
    expect(() => pppConfig({ patchSize: [40, 41] })).toThrow('ppp: patchSize must be 2 odd positive integers (one per spatial axis), got [40,41]');
    expect(() => pppConfig({ threshold: 0.5 })).toThrow('ppp: threshold must be a number in (0.5, 1), got 0.5');
    expect(() => pppConfig({ sampleStride: [2] })).toThrow('ppp: sampleStride must be 2 positive integers (one per spatial axis), got [2]');
    expect(() => pppConfig({ partition: 'cc' })).toThrow(`ppp: partition must be 'components' or 'mutex', got "cc"`);
    expect(() => pppConfig({ unet: { levels: 0 } })).toThrow('unet: levels must be a positive integer, got 0');
    // The decoder checks its own fields: a code too small for the patch.
    expect(() => pppConfig({ codeShape: [7, 2, 2] })).toThrow('patchDecoder: patchSize must be at most the decoded size [16, 16]');
  });
});

describe('ppp sampling', () => {
  it('offsets, channels and grid indices by hand', () => {
    expect(sampledOffsets([9, 5], [4, 2])).toEqual([[-4, 0, 4], [-2, 0, 2]]);
    expect(sampledOffsets([7], [3])).toEqual([[-3, 0, 3]]);
    // 5×5 patch at stride 2: rows 0, 2, 4 and columns 0, 2, 4.
    expect(sampledChannels([5, 5], [2, 2])).toEqual([0, 2, 4, 10, 12, 14, 20, 22, 24]);
    expect(sampledChannels([3, 3, 3], [1, 1, 1])).toEqual(Array.from({ length: 27 }, (_, i) => i));
    // A 5×7 image on a stride-(2, 3) grid: rows 0, 2, 4, columns 0, 3, 6.
    expect(Array.from(gridIndices([5, 7], [2, 3]))).toEqual([0, 3, 6, 14, 17, 20, 28, 31, 34]);
  });

  it('interpolated patches cut the samples at ½ at stride 1, and a linear ramp halfway at stride 2', () => {
    const grid = [3, 4];
    const rand = rng(5);
    const K = 9;
    const samples = Float32Array.from({ length: K * 12 }, () => rand());
    const centres = Int32Array.from([1, 2, 2, 3]);
    const same = interpolatePatches(samples, grid, [3, 3], [1, 1], centres);
    for (const [i, cell] of [[0, 6], [1, 11]]) {
      for (let k = 0; k < K; k++) expect(same[i * 9 + k]).toBe(samples[k * 12 + cell] >= 0.5 ? 1 : 0);
    }
    // Samples of v(o) = 0.5 + 0.1·oy − 0.05·ox at offsets {−2, 0, 2}²: a 5×5 patch pixel is in where v(o) ≥ ½.
    const linear = new Float32Array(9 * 2);
    for (let k = 0; k < 9; k++) for (let c = 0; c < 2; c++) linear[k * 2 + c] = 0.5 + 0.1 * 2 * (Math.floor(k / 3) - 1) - 0.05 * 2 * ((k % 3) - 1);
    const patch = interpolatePatches(linear, [1, 2], [5, 5], [2, 2], Int32Array.from([0, 2]));
    for (let q = 0; q < 25; q++) {
      const v = 0.1 * (Math.floor(q / 5) - 2) - 0.05 * ((q % 5) - 2);
      if (Math.abs(v) > 1e-6) expect(patch[q]).toBe(v > 0 ? 1 : 0);
    }
  });
});

describe('ppp losses', () => {
  it('maskedBCE and maskedCE match float64 references, ignoring −1', async () => {
    const rand = rng(9);
    const n = 40;
    const z = Array.from({ length: n }, () => 8 * (rand() - 0.5));
    const t = Array.from({ length: n }, () => [-1, 0, 1][Math.floor(rand() * 3)]);
    const bce = await maskedBCE(e.tensor(z, [n]), e.tensor(t, [n])).data();
    let sum = 0;
    let count = 0;
    z.forEach((zi, i) => {
      if (t[i] < 0) return;
      sum += Math.log1p(Math.exp(-Math.abs(zi))) + Math.max(zi, 0) - t[i] * zi;
      count++;
    });
    expect(bce[0]).toBeCloseTo(sum / count, 5);

    const pixels = 6;
    const logits = Array.from({ length: 3 * pixels }, () => 4 * (rand() - 0.5));
    const classes = [0, 1, 2, -1, 1, 2];
    const ce = await maskedCE(e.tensor(logits, [1, 3, pixels]), e.tensor(classes, [1, 1, pixels])).data();
    let ref = 0;
    classes.forEach((k, p) => {
      if (k < 0) return;
      const l = [0, 1, 2].map((c) => logits[c * pixels + p]);
      const m = Math.max(...l);
      ref += -(l[k] - m - Math.log(l.reduce((a, v) => a + Math.exp(v - m), 0)));
    });
    expect(ce[0]).toBeCloseTo(ref / 5, 5);
    // Nothing valid: 0, not NaN.
    expect((await maskedBCE(e.tensor([1, 2], [2]), e.tensor([-1, -1], [2])).data())[0]).toBe(0);
  });

  it('each head returns its terms; crops are cut to a valid U-Net input', async () => {
    const blob = syntheticBlobs({ height: 36, width: 36, blobs: 5, radius: [3, 6], seed: 3 });
    const images = e.tensor(blob.image, [1, 1, 36, 36]);
    const labels = e.tensor(blob.labels, [1, 1, 36, 36], 'i32');
    for (const [preset, names] of [['small', ['patch']], ['paper-dsb', ['patch', 'foreground']], ['paper', ['patch', 'instances']]] as const) {
      const scope = e.beginScope();
      const model = new PatchPerPix(e, pppSpec.tiny(pppPresets[preset]));
      const terms = await model.loss({ images, labels, spacing: [1, 1] }, 0);
      expect(Object.keys(terms).sort()).toEqual([...names].sort());
      for (const t of Object.values(terms)) expect(Number.isFinite((await t.data())[0])).toBe(true);
      model.dispose();
      scope.end();
    }
    const small = new PatchPerPix(e, pppPresets.small);
    await expect(small.loss({ images, labels, spacing: [1, 1] }, 0)).rejects.toThrow(
      "ppp: training crops [36, 36] are smaller than the U-Net's smallest input [44, 44]; raise data.patchSize",
    );
    small.dispose();
    images.dispose();
    labels.dispose();
  });

  it('infer packs exactly the evidence of the full outputs on the sampling grid', async () => {
    const model = new PatchPerPix(e, { ...pppPresets.small, sampleStride: [4, 4] });
    const blob = syntheticBlobs({ height: 48, width: 52, blobs: 4, radius: [4, 7], seed: 2 });
    const image = e.tensor(blob.image, [1, 1, 48, 52]);
    const out = model.infer(image);
    // 25×25 at stride 4: offsets −12..12 by 4, 7 per axis, at the 12×13 grid pixels; then the patch centre's logit
    // of each of the 4×4 pixels of a grid cell.
    expect(out.shape).toEqual([1, 49 + 16, 12, 13]);
    expect(model.outputStride).toEqual([4, 4]);
    // The same channels of the full head: the U-Net on the padded tile, then all 625 rows.
    const full = e.noGrad(() => {
      const g = model.unet.geometry;
      const input = model.unet.validInputSize([48 + 2 * g.context[0], 52 + 2 * g.context[1]]);
      const padded = pad(image, [[0, 0], [0, 0], [g.context[0], input[0] - 48 - g.context[0]], [g.context[1], input[1] - 52 - g.context[1]]]);
      const f = conv(model.unet.forward(padded), model.namedTensors().get('head.weight')!.tensor, model.namedTensors().get('head.bias')!.tensor);
      return slice(f, [0, 0, 0, 0], [1, 625, 48, 52]);
    });
    const expected = await model.evidence(full).data();
    const got = await out.data();
    let worst = 0;
    for (let i = 0; i < got.length; i++) worst = Math.max(worst, Math.abs(got[i] - expected[i]));
    expect(worst).toBeLessThan(1e-5);
    expect(() => model.infer(e.zeros([1, 1, 46, 52]))).toThrow('ppp: infer needs spatial sizes that are multiples of [4, 4], got [46, 52]');
    for (const t of [out, full, image]) t.dispose();
    model.dispose();
  });
});

describe('packed evidence', () => {
  it('holds the sampled channels at grid pixels and every pixel of the dense ones, unpacked to any image size', async () => {
    const model = new PatchPerPix(e, { ...pppPresets.small, patchSize: [7, 7], sampleStride: [2, 3], numInstances: true });
    // Full outputs [1, 49 + 3, 8, 12]: value = channel · 1000 + y · 100 + x, so every place is recognizable.
    const [C, H, W] = [52, 8, 12];
    const full = e.tensor(Float32Array.from({ length: C * H * W }, (_, i) => Math.floor(i / (H * W)) * 1000 + Math.floor((i % (H * W)) / W) * 100 + (i % W)), [1, C, H, W]);
    const packed = model.evidence(full);
    // Offsets −2, 0, 2 in y and −3, 0, 3 in x around the centre (3, 3).
    const sampled = sampledChannels([7, 7], [2, 3]);
    expect(sampled).toEqual([7, 10, 13, 21, 24, 27, 35, 38, 41]);
    expect(packed.shape).toEqual([1, sampled.length + 3 * 6, 4, 4]);
    const got = (await packed.data()) as Float32Array;
    const at = (k: number, gy: number, gx: number) => got[(k * 4 + gy) * 4 + gx];
    expect(at(2, 1, 3)).toBe(13 * 1000 + 2 * 100 + 9);
    // Dense channel d (class d = full channel 49 + d) at cell offset (oy, ox) of grid pixel (gy, gx): channel 9 + d·6 + oy·3 + ox.
    expect(at(9 + 2 * 6 + 1 * 3 + 2, 3, 1)).toBe(51 * 1000 + 7 * 100 + 5);
    const dense = unpackDense(slice(packed, [0, 9, 0, 0], [1, 18, 4, 4]), 3, [7, 11], [2, 3]);
    expect(dense.shape).toEqual([1, 3, 7, 11]);
    const maps = (await dense.data()) as Float32Array;
    let wrong = 0;
    for (let d = 0; d < 3; d++) for (let y = 0; y < 7; y++) for (let x = 0; x < 11; x++) if (maps[(d * 7 + y) * 11 + x] !== (49 + d) * 1000 + y * 100 + x) wrong++;
    expect(wrong).toBe(0);
    for (const t of [full, packed, dense]) t.dispose();
    model.dispose();
  });
});

describe('ppp oracle through the model', () => {
  // Logits ±12 from the ground truth's patch targets (0 where a target is ignored), cut to the evidence and postprocessed like
  // predicted ones: the instances come back. (ppp+dec's evidence is codes, which only a trained decoder turns into
  // patches; the assembly's own oracle tests cover that path from patches on.)
  it('ppp: outputs made from the ground truth give it back', async () => {
    const blob = syntheticBlobs({ height: 64, width: 72, blobs: 9, radius: [5, 8], seed: 21 });
    const model = new PatchPerPix(e, { ...pppPresets.small, patchSize: [15, 15], sampleStride: [2, 2], threshold: 0.9, minSize: 5 });
    const scope = e.beginScope();
    const { targets } = patchTargets(e.tensor(blob.labels, [1, 1, 64, 72], 'i32'), { patchSize: [15, 15] });
    const z = Float32Array.from((await targets.data()) as Float32Array, (v) => (v < 0 ? 0 : v > 0.5 ? 12 : -12));
    const outputs = model.evidence(e.tensor(z, [1, 225, 64, 72]));
    const labels = await model.postprocess(outputs, [1, 1], {}, [64, 72]);
    const scores = evaluateImage(blob.labels, labels, { thresholds: [0.5, 0.8] });
    expect(scores.nPred).toBe(scores.nTrue);
    expect(scores.apDsb[0]).toBeGreaterThanOrEqual(0.98);
    expect(scores.apDsb[1]).toBeGreaterThanOrEqual(0.9);
    console.log(`ppp oracle through the model: AP_dsb@0.5 ${scores.apDsb[0]}, @0.8 ${scores.apDsb[1]}, SBD ${scores.sbd.toFixed(3)}`);
    scope.end();
    model.dispose();
  });

  it('ppp with the number-of-instances head: crossing worms come back, the crossings in both worms', async () => {
    const worms = syntheticWorms({ height: 72, width: 80, worms: 4, length: [30, 45], radius: [3, 4], seed: 7 });
    expect(worms.crossings).toBeGreaterThan(0);
    const P = 21;
    // Stride 1: worms 6-8 px wide lose too much to the painting's interpolation at stride 2 (there AP_dsb@0.8 is 0.33
    // on these worms, @0.5 still 1); the blob case above checks the interpolation.
    const model = new PatchPerPix(e, { ...pppPresets.small, numInstances: true, patchSize: [P, P], sampleStride: [1, 1], threshold: 0.9, minSize: 5 });
    const scope = e.beginScope();
    const { targets, numInstances } = patchTargets(e.tensor(worms.labels.data, [1, worms.labels.layers, 72, 80], 'i32'), { patchSize: [P, P] });
    const z = Float32Array.from((await targets.data()) as Float32Array, (v) => (v < 0 ? 0 : v > 0.5 ? 12 : -12));
    // Class logits: 12 for the true number of instances (0, 1, ≥ 2), 0 for the others.
    const counts = (await numInstances.data()) as Int32Array;
    const classes = new Float32Array(3 * counts.length);
    counts.forEach((k, p) => (classes[Math.max(0, k) * counts.length + p] = 12));
    const all = new Float32Array(z.length + classes.length);
    all.set(z);
    all.set(classes, z.length);
    const outputs = model.evidence(e.tensor(all, [1, P * P + 3, 72, 80]));
    const labels = await model.postprocess(outputs, [1, 1], {}, [72, 80]);
    expect(labels instanceof Int32Array).toBe(false);
    const scores = evaluateImage(worms.labels, labels, { thresholds: [0.5, 0.9] });
    expect(scores.nPred).toBe(scores.nTrue);
    expect(scores.apDsb[0]).toBeGreaterThanOrEqual(0.98);
    expect(scores.apDsb[1]).toBeGreaterThanOrEqual(0.98);
    scope.end();
    model.dispose();
  });
});
