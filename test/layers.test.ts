// Overlapping instances end to end: the canonical layer form, scoring on whole instance masks, label-stack TIFFs that
// round-trip, BBBC010-style per-instance mask folders, `wgseg eval` on both, and training batches that carry every layer.
import { mkdtemp, mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadLabelPairs, loadSplit } from '../src/train/dataset-node.ts';
import { readLabels, writeLabels, writePng } from '../src/train/io-node.ts';
import { asLayers, canonicalLayers, flatLabels, instanceCount, labelsOf, layersFromMasks, padLayers } from '../src/train/layers.ts';
import { evaluateImage } from '../src/train/metrics.ts';
import { noAugment, releaseSamples, sampleBatch } from '../src/train/augment.ts';
import { decodeTiff } from '../src/train/tiff-node.ts';
import { runMain } from './support/cli.ts';
import { testEngine } from './support/engine.ts';
import { tiffFixture } from './support/tiff.ts';
import { registry } from '../src/models/registry.ts';

/** A 1×10 strip: worm 1 on x 0..7 and worm 2 on x 2..9, crossing on x 2..7 (6 pixels in common). */
const crossing = () => {
  const one = Int32Array.from({ length: 10 }, (_, x) => (x <= 7 ? 1 : 0));
  const two = Int32Array.from({ length: 10 }, (_, x) => (x >= 2 ? 1 : 0));
  return layersFromMasks([one, two], 10);
};

describe('layers', () => {
  it('builds canonical layers from per-instance masks: the lowest id in layer 0, ids ascending upwards', () => {
    const l = crossing();
    expect(l.layers).toBe(2);
    expect(Array.from(flatLabels(l))).toEqual([1, 1, 1, 1, 1, 1, 1, 1, 2, 2]);
    expect(Array.from(l.data.subarray(10))).toEqual([0, 0, 2, 2, 2, 2, 2, 2, 0, 0]);
    expect(Array.from(instanceCount(l))).toEqual([1, 1, 2, 2, 2, 2, 2, 2, 1, 1]);
    // Without overlaps it is one layer, and a plain label image is one layer without a copy.
    expect(layersFromMasks([Int32Array.of(1, 0), Int32Array.of(0, 1)], 2)).toEqual({ data: Int32Array.of(1, 2), layers: 1 });
    const plain = Int32Array.of(3, 0, 4);
    expect(asLayers(plain).data).toBe(plain);
    expect(flatLabels(plain)).toBe(plain);
    expect(labelsOf({ data: plain })).toBe(plain);
  });

  it('handles whole images (696×520 per-worm masks overflowed the call stack once)', () => {
    const size = 696 * 520;
    const one = new Uint8Array(size).fill(1);
    const two = new Uint8Array(size);
    two[size - 1] = 255;
    const l = layersFromMasks([one, two], size);
    expect(l.layers).toBe(2);
    expect([l.data[size - 1], l.data[2 * size - 1], l.data[size]]).toEqual([1, 2, 0]);
  });

  it('puts any stack of label images in canonical form (order, duplicates, -1) and pads layers', () => {
    // Pixel 0: ids 5 and 2 (unordered); pixel 1: 7 twice; pixel 2: -1 in the upper layer; pixel 3: empty.
    const stack = Int32Array.of(5, 7, 0, 0, 2, 7, -1, 0);
    const c = canonicalLayers(stack, 4);
    expect(c).toEqual({ data: Int32Array.of(2, 7, -1, 0, 5, 0, 0, 0), layers: 2 });
    expect(padLayers(c, 3).data.subarray(8)).toEqual(new Int32Array(4));
    expect(() => padLayers(c, 1)).toThrow('padLayers: cannot drop layers (2 → 1)');
    expect(() => canonicalLayers(Int32Array.of(1, 2, 3), 2)).toThrow('canonicalLayers: 3 values are not layers of 2 pixels');
  });
});

describe('metrics with overlapping instances', () => {
  it('matches on whole instance masks: a crossing pair that the flat (lowest id wins) image would lose', () => {
    const gt = crossing();
    const exact = evaluateImage(gt, crossing());
    expect(exact.tp).toEqual(new Array(9).fill(2));
    expect([exact.fp[0], exact.fn[0], exact.aji, exact.sbd, exact.meanApDsb]).toEqual([0, 0, 1, 1, 1]);
    // Scored against the flat ground truth, worm 2 is its 2 uncovered pixels: IoU 2/8 with the predicted worm 2.
    const flat = evaluateImage(flatLabels(gt), crossing());
    expect(flat.tp[0]).toBe(1);
    expect(flat.fp[0]).toBe(1);
    // A flat prediction of the same strip finds worm 1 (IoU 8/8) and misses worm 2 (IoU 2/8).
    const flatPrediction = evaluateImage(gt, flatLabels(crossing()));
    expect([flatPrediction.tp[0], flatPrediction.fn[0], flatPrediction.fp[0]]).toEqual([1, 1, 1]);
    // Areas and intersections count every instance of a pixel once: worm 2's IoU with a prediction of x 2..9 only.
    const shifted = evaluateImage(gt, Int32Array.from({ length: 10 }, (_, x) => (x >= 4 ? 9 : 0)));
    expect(shifted.meanMatchedIoU[0]).toBeCloseTo(6 / 8, 12);
  });

  it('drops unlabeled pixels in every layer, and rejects -1 above layer 0 by name', () => {
    const gt = { data: Int32Array.of(-1, 1, 1, 0, 2, 2), layers: 2 };
    const pred = { data: Int32Array.of(4, 4, 4, 0, 0, 5), layers: 2 };
    const m = evaluateImage(gt, pred);
    // Pixel 0 is dropped: worm 4 covers 2 pixels, both in worms 1 and 2 (IoU 1 each); worm 5 half of worm 2 (IoU 0.5).
    expect([m.nTrue, m.nPred, m.tp[0], m.tp[1]]).toEqual([2, 2, 2, 1]);
    expect(() => evaluateImage({ data: Int32Array.of(1, 0, 0, -1), layers: 2 }, Int32Array.of(1, 0)))
      .toThrow('metrics: ground truth label -1 at pixel 1 of layer 1 (labels are ≥ 0, or -1 = unlabeled in layer 0)');
    expect(() => evaluateImage({ data: Int32Array.of(1, 0, 0), layers: 2 }, Int32Array.of(1))).toThrow('metrics: ground truth: 3 values do not split into 2 layers');
  });
});

describe('files with overlapping instances', () => {
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'wgseg-layers-'));
  });
  afterAll(() => rm(dir, { recursive: true, force: true }));

  it('writes a label stack as an ImageJ hyperstack (one channel per layer) and reads it back canonical', async () => {
    const data = new Int32Array(2 * 3 * 4 * 5);
    for (let i = 0; i < 60; i++) [data[i], data[60 + i]] = [(i % 7) + 1, i % 3 === 0 ? 0 : (i % 7) + 9];
    const path = join(dir, 'stack.tif');
    await writeLabels(path, { data, shape: [3, 4, 5], spacing: [2, 0.5, 0.5], layers: 2 });
    const raw = await decodeTiff(new Uint8Array(await readFile(path)), path);
    expect(raw.shape).toEqual([2, 3, 4, 5]);
    expect(raw.spacing).toEqual([2, 0.5, 0.5]);
    expect(Array.from(raw.data.subarray(0, 60))).toEqual(Array.from(data.subarray(0, 60)));
    const back = await readLabels(path);
    expect(back).toEqual({ data, shape: [3, 4, 5], spacing: [2, 0.5, 0.5], layers: 2 });
    // Where 2D is expected, the pages of a plain multi-page TIFF are layers; a declared z-stack stays 3D.
    const pages = join(dir, 'pages.tif');
    await writeFile(pages, tiffFixture([Uint16Array.of(2, 0), Uint16Array.of(1, 1)], { width: 2, height: 1 }));
    expect(await readLabels(pages, { ndim: 2 })).toEqual({ data: Int32Array.of(1, 1, 2, 0), shape: [1, 2], spacing: [1, 1], layers: 2 });
    expect((await readLabels(pages)).shape).toEqual([2, 1, 2]);
    const slices = join(dir, 'slices.tif');
    await writeLabels(slices, { data: Int32Array.of(2, 0, 1, 1), shape: [2, 1, 2], spacing: [1, 1, 1] });
    expect((await readLabels(slices, { ndim: 2 })).shape).toEqual([2, 1, 2]);
  });

  it('loads a dataset split from instances/ (one mask per instance) and eval scores stacks against them', async () => {
    const data = join(dir, 'data');
    const [images, instances, masks, pred] = ['train/images', 'train/instances', 'train/masks', 'pred'].map((p) => join(data, p));
    for (const folder of [images, instances, masks, join(pred, 'stacks')]) await mkdir(folder, { recursive: true });
    const strip = (values: number[]) => ({ data: Uint8Array.from(values), width: values.length, height: 1, channels: 1 as const });
    await writePng(join(images, 'w1.png'), strip([10, 20, 30, 40, 50, 60, 70, 80, 90, 99]));
    const worm = crossing();
    for (const k of [1, 2]) {
      await writePng(join(instances, `w1_${k}.png`), strip(Array.from({ length: 10 }, (_, x) => (worm.data[x] === k || worm.data[10 + x] === k ? 255 : 0))));
    }
    await writeLabels(join(masks, 'w1.tif'), { data: flatLabels(worm), shape: [1, 10], spacing: [1, 1] });
    const [sample] = await loadSplit(data, 'train', { ndim: 2 });
    expect(sample.labels).toMatchObject({ shape: [1, 10], layers: 2 });
    expect(Array.from(sample.labels!.data)).toEqual(Array.from(worm.data));

    await writeLabels(join(pred, 'w1.tif'), { data: flatLabels(worm), shape: [1, 10], spacing: [1, 1] });
    await writeLabels(join(pred, 'stacks', 'w1.tif'), { data: worm.data, shape: [1, 10], spacing: [1, 1], layers: 2 });
    const pairs = await loadLabelPairs(instances, pred);
    expect(pairs[0].pred.layers).toBe(2);
    const layered = await runMain(['eval', '--gt', instances, '--pred', pred], registry);
    expect(layered.code).toBe(0);
    expect(JSON.parse(layered.stdout)).toMatchObject({ f1: 1, aji: 1 });
    // The flat ground truth loses worm 2 (see the metrics test): F1 1/2.
    const flat = await runMain(['eval', '--gt', masks, '--pred', pred], registry);
    expect(JSON.parse(flat.stdout)).toMatchObject({ f1: 0.5 });
    await writePng(join(instances, 'w2_1.png'), strip(new Array(10).fill(0)));
    expect(await runMain(['eval', '--gt', instances, '--pred', pred], registry)).toMatchObject({ code: 2 });
  });
});

describe('training batches with overlapping instances', () => {
  it('warps every layer exactly like the flat labels, only when asked', async () => {
    const e = await testEngine();
    const w = 16;
    const one = Int32Array.from({ length: w * w }, (_, i) => (i % w < 10 ? 1 : 0));
    const two = Int32Array.from({ length: w * w }, (_, i) => (Math.floor(i / w) < 9 ? 1 : 0));
    const labels = layersFromMasks([one, two], w * w);
    const image = Float32Array.from({ length: w * w }, (_, i) => i / (w * w));
    const sample = { name: 's', image: { data: image, shape: [1, w, w], spacing: [1, 1] }, labels: { data: labels.data, shape: [w, w], spacing: [1, 1], layers: 2 } };
    const options = { batchSize: 2, patchSize: [12, 12], seed: 7, augment: { ...noAugment, flip: true, rot90: true } };
    const before = e.stats().liveTensors;
    const plain = sampleBatch(e, [sample], options);
    expect(plain.layers).toBeUndefined();
    const batch = sampleBatch(e, [sample], { ...options, layers: true });
    expect(batch.layers!.shape).toEqual([2, 2, 12, 12]);
    const [flat, layers, crops] = [await batch.labels.data(), await batch.layers!.data(), await batch.images.data()];
    expect(Array.from(await plain.labels.data())).toEqual(Array.from(flat));
    // Each crop's pixel values name its source pixel (image = index / 256): both layers must come from that pixel.
    for (let n = 0; n < 2; n++) {
      for (let p = 0; p < 144; p++) {
        const source = Math.round(crops[n * 144 + p] * w * w);
        expect(layers[n * 288 + p]).toBe(flat[n * 144 + p]);
        expect([layers[n * 288 + p], layers[n * 288 + 144 + p]]).toEqual([labels.data[source], labels.data[w * w + source]]);
      }
    }
    for (const t of [plain.images, plain.labels, batch.images, batch.labels, batch.layers!]) t.dispose();
    releaseSamples(e);
    expect(e.stats().liveTensors).toBe(before);
  });
});
