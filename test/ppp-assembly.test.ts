// PatchPerPix's instance assembly (src/models/ppp-assembly.ts) fed the oracle's evidence (src/models/ppp-oracle.ts:
// patches computed from the ground truth) must give the ground truth back: AP_dsb@0.5 ≥ 0.98 on synthetic crossing
// worms (2 layers, both partitions), synthetic 3D nuclei with 9×9×9 patches, and BBBC010's training images with
// 41×41 patches (where ../shared/data is there). Also: the plain TypeScript assembly (bench/ppp-assembly-cpu.ts)
// agrees, nothing leaks, an image without foreground, minSize, and errors naming the field.
import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { assemblePatchesCpu } from '../bench/ppp-assembly-cpu.ts';
import { assemblePatches, defaultSampleStride, samplingGeometry, type AssemblyConfig, type PatchEvidence } from '../src/models/ppp-assembly.ts';
import { oracleArrays, oracleEvidence } from '../src/models/ppp-oracle.ts';
import { readInstanceMasks } from '../src/train/io-node.ts';
import { asLayers, labelsOf, type Labels } from '../src/train/layers.ts';
import { evaluateImage } from '../src/train/metrics.ts';
import { syntheticEllipsoids } from '../src/train/synthetic.ts';
import { syntheticWorms } from '../src/train/synthetic-worms.ts';
import { testEngine } from './support/engine.ts';

const configFor = (patchSize: number[], partition: AssemblyConfig['partition'] = 'components'): AssemblyConfig => ({
  patchSize, sampleStride: defaultSampleStride(patchSize), threshold: 0.9, partition, affinityThreshold: 0, minSize: 0,
});

/** The oracle's evidence assembled on the GPU, checked for leaks; the labels and their AP_dsb at 0.5 … 0.9. */
async function assembleOracle(labels: Labels, size: number[], config: AssemblyConfig): Promise<{ pred: Labels; ap: number[] }> {
  const e = await testEngine();
  const evidence = oracleEvidence(e, labels, size, config);
  await e.sync();
  const before = e.stats().liveTensors;
  const pred = await assemblePatches(evidence, config);
  expect(e.stats().liveTensors, 'tensors leaked').toBe(before);
  evidence.dispose();
  return { pred, ap: evaluateImage(labels, pred).apDsb };
}

describe('assemblePatches on the oracle', () => {
  const size: [number, number] = [128, 144];
  const images = [1, 2, 4].map((seed) => syntheticWorms({ height: size[0], width: size[1], worms: 7, length: [50, 90], radius: [3, 4.5], seed }));

  it('crossing worms (2 layers, 25×25 patches): the instances come back, overlaps as layers', async () => {
    for (const worms of images) {
      expect(worms.crossings).toBeGreaterThan(50);
      const { pred, ap } = await assembleOracle(worms.labels, size, configFor([25, 25]));
      expect(ap[0]).toBeGreaterThanOrEqual(0.98);
      expect(ap[4], 'AP_dsb@0.7').toBeGreaterThanOrEqual(0.9);
      // The crossings are painted by both worms.
      expect(asLayers(pred).layers).toBe(2);
    }
  });

  it('crossing worms with the mutex watershed', async () => {
    for (const worms of images) expect((await assembleOracle(worms.labels, size, configFor([25, 25], 'mutex'))).ap[0]).toBeGreaterThanOrEqual(0.98);
  });

  it('the plain TypeScript assembly gives the same instances', async () => {
    const config = configFor([25, 25]);
    const { pred } = await assembleOracle(images[0].labels, size, config);
    const cpu = await assemblePatchesCpu(oracleArrays(images[0].labels, size, config), config);
    const m = evaluateImage(cpu, pred, { thresholds: [0.99] });
    expect([m.nPred, m.apDsb[0]]).toEqual([m.nTrue, 1]);
  });

  it('3D nuclei, 9×9×9 patches', async () => {
    const shape: [number, number, number] = [24, 48, 48];
    const volume = syntheticEllipsoids({ shape, spacing: [1, 1, 1], blobs: 30, radius: [3, 6], seed: 4 });
    expect(volume.count).toBeGreaterThan(12);
    const { ap } = await assembleOracle(volume.labels, shape, configFor([9, 9, 9]));
    expect(ap[0]).toBeGreaterThanOrEqual(0.98);
    expect(ap[8], 'AP_dsb@0.9').toBeGreaterThanOrEqual(0.9);
  });

  // BBBC010 (Ljosa et al., Nature Methods 2012): the per-worm ground truth of a few training images.
  const shared = process.env.WGSEG_SHARED ?? join(import.meta.dirname, '..', '..', 'shared');
  const instances = join(shared, 'data', 'bbbc010', 'train', 'instances');
  it('BBBC010 training images, 41×41 patches', async (context) => {
    if (!existsSync(instances)) context.skip(`no BBBC010 instance masks at ${instances} (set WGSEG_SHARED to the shared folder)`);
    const files = readdirSync(instances).filter((f) => f.endsWith('.png')).sort();
    for (const name of ['A01', 'B05', 'C02']) {
      const gt = await readInstanceMasks(files.filter((f) => f.startsWith(`${name}_`)).map((f) => join(instances, f)), name);
      const { ap } = await assembleOracle(labelsOf(gt), gt.shape, configFor([41, 41]));
      expect(ap[0], `${name}: AP_dsb@0.5`).toBeGreaterThanOrEqual(0.98);
    }
  });
});

describe('assemblePatches', () => {
  it('no foreground: empty labels, and no patch is asked for', async () => {
    const e = await testEngine();
    const config = configFor([5, 5]);
    const g = samplingGeometry([9, 11], config);
    const evidence: PatchEvidence = {
      size: [9, 11], single: e.zeros([9, 11]), foreground: e.zeros([9, 11]), samples: e.zeros([g.samples, ...g.grid]),
      patches: () => Promise.reject(new Error('patches was called')),
    };
    const labels = await assemblePatches(evidence, config);
    expect(labels).toEqual(new Int32Array(99));
    for (const t of [evidence.single, evidence.foreground, evidence.samples]) t.dispose();
  });

  it('minSize drops the instances smaller than it', async () => {
    const labels = new Int32Array(20 * 20);
    for (let y = 2; y < 8; y++) for (let x = 2; x < 8; x++) labels[y * 20 + x] = 1;
    for (let y = 12; y < 15; y++) for (let x = 12; x < 15; x++) labels[y * 20 + x] = 2;
    const config = { ...configFor([7, 7]), minSize: 10 };
    const { pred } = await assembleOracle(labels, [20, 20], config);
    expect(pred).toEqual(labels.map((id) => (id === 1 ? 1 : 0)));
  });

  it('names the field that is wrong', async () => {
    const e = await testEngine();
    const config = configFor([5, 5]);
    const g = samplingGeometry([9, 11], config);
    const evidence: PatchEvidence = {
      size: [9, 11], single: e.zeros([9, 11]), foreground: e.zeros([9, 11]), samples: e.zeros([g.samples, ...g.grid]),
      patches: async () => new Float32Array(0),
    };
    const fails = (change: Partial<AssemblyConfig>) => assemblePatches(evidence, { ...config, ...change });
    await expect(fails({ patchSize: [4, 5] })).rejects.toThrow('assemblePatches: config.patchSize must be 2 odd integers ≥ 1 (one per spatial axis of the [9, 11] image), got [4,5]');
    await expect(fails({ patchSize: [5, 5, 5] })).rejects.toThrow('config.patchSize must be 2 odd integers');
    await expect(fails({ sampleStride: [0, 1] })).rejects.toThrow('assemblePatches: config.sampleStride must be 2 integers ≥ 1 (one per spatial axis of the [9, 11] image), got [0,1]');
    await expect(fails({ threshold: 0.5 })).rejects.toThrow('assemblePatches: config.threshold must be in (0.5, 1), got 0.5');
    await expect(fails({ partition: 'watershed' as AssemblyConfig['partition'] })).rejects.toThrow(`assemblePatches: config.partition must be 'components' or 'mutex', got "watershed"`);
    await expect(fails({ affinityThreshold: NaN })).rejects.toThrow('assemblePatches: config.affinityThreshold must be a finite number, got NaN');
    await expect(fails({ minSize: -1 })).rejects.toThrow('assemblePatches: config.minSize must be an integer ≥ 0, got -1');
    await expect(assemblePatches({ ...evidence, size: [9, 10] }, config)).rejects.toThrow('assemblePatches: evidence.single must be f32 [9, 10] (the image\'s size), got f32 [9, 11]');
    await expect(assemblePatches(evidence, { ...config, sampleStride: [2, 2] })).rejects.toThrow(
      'assemblePatches: evidence.samples must be f32 [9, 5, 6] (K = Π(2h + 1) for h = [1, 1], then the grid ⌈size / s⌉), got f32 [25, 9, 11]',
    );
    for (const t of [evidence.single, evidence.foreground, evidence.samples]) t.dispose();
  });
});
