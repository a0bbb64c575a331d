// Crops and batch chosen from a measured step when a run gives no crop size (src/train/auto-size.ts): the choice by
// hand-checked numbers, the ladder's rounding, the whole measurement on a tiny model (the model's tensors restored
// exactly, running statistics included), and a run in memory that records its choice in config.json.
import { describe, expect, it } from 'vitest';
import { syntheticBlobs, type Sample, type TrainBatch } from '../src/index.ts';
import type { ModelRegistry } from '../src/models/model.ts';
import { chooseCropAndBatch, cropLadder, pickCropAndBatch } from '../src/train/auto-size.ts';
import { readTensors, modelTensors } from '../src/train/checkpoint.ts';
import { MemoryStore, readJSON } from '../src/train/run-store.ts';
import { buildModel, newRunConfig, trainRun, type RunConfig } from '../src/train/run.ts';
import { testEngine } from './support/engine.ts';
import { TinyModel, tinyFactory } from './support/fake-model.ts';

function samples(n: number, seed: number, size = 140): Sample[] {
  return Array.from({ length: n }, (_, i) => {
    const s = syntheticBlobs({ height: size, width: size, blobs: 8, radius: [4, 8], seed: seed + i });
    return {
      name: `blobs${seed + i}`,
      image: { data: Float32Array.from(s.image), shape: [1, size, size], spacing: [1, 1] },
      labels: { data: s.labels, shape: [size, size], spacing: [1, 1] },
    };
  });
}

/** The tiny model, whose loss also moves its running statistic (as batch norm's training mode does). */
class MovingTiny extends TinyModel {
  override loss(batch: TrainBatch, step: number) {
    this.engine.device.queue.writeBuffer(this.running.storageFor('test').buffer, this.running.byteOffset, Float32Array.from([0.25 + step]));
    return super.loss(batch, step);
  }
}

describe('auto crop and batch', () => {
  it('the ladder rounds to the size multiple and keeps distinct crops', () => {
    expect(cropLadder(2, [1, 1])).toEqual([[32, 32], [48, 48], [64, 64], [96, 96], [128, 128]]);
    expect(cropLadder(2, [16, 16])).toEqual([[32, 32], [48, 48], [64, 64], [96, 96], [128, 128]]);
    expect(cropLadder(2, [40, 40])).toEqual([[40, 40], [80, 80], [120, 120]]);
    expect(cropLadder(3, [1, 8, 8])[0]).toEqual([8, 32, 32]);
    expect(cropLadder(3, [1, 8, 8]).at(-1)).toEqual([16, 128, 128]);
  });

  it('picks the largest crop, then the largest batch, predicted within the budget', () => {
    const ladder = [[32, 32], [64, 64], [128, 128]];
    // 0.1 s for 1×32²: 64² is 0.4 s per item, 128² 1.6 s.
    expect(pickCropAndBatch(ladder, { crop: [32, 32], seconds: 0.1 }, 4, 1.5)).toEqual({ crop: [64, 64], batch: 3, predicted: 0.1 * 4 * 3 });
    expect(pickCropAndBatch(ladder, { crop: [32, 32], seconds: 0.1 }, 4, 1.6)).toEqual({ crop: [128, 128], batch: 1, predicted: 1.6 });
    expect(pickCropAndBatch(ladder, { crop: [32, 32], seconds: 0.01 }, 4, 1.5)).toEqual({ crop: [128, 128], batch: 4, predicted: 0.01 * 16 * 4 });
    // Nothing fits: the base crop with batch 1 all the same.
    expect(pickCropAndBatch(ladder, { crop: [32, 32], seconds: 5 }, 4, 1.5)).toEqual({ crop: [32, 32], batch: 1, predicted: 5 });
    // A base above the ladder's first crop (a model that needs larger crops) is never undercut.
    expect(pickCropAndBatch(ladder, { crop: [64, 64], seconds: 2 }, 4, 1.5).crop).toEqual([64, 64]);
  });

  it('measures the tiny model, respects the budget and restores every tensor exactly', async () => {
    const e = await testEngine();
    const model = new MovingTiny(e, { channels: 1, seed: 1, dropout: 0.1 });
    const before = await readTensors(modelTensors(model));
    const train = samples(2, 1);
    const common = { augment: {}, crops: 'random' as const, seed: 5 };
    const roomy = await chooseCropAndBatch(e, model, train, { ...common, maxBatch: 3, budget: 1e6 });
    expect(roomy).toMatchObject({ crop: [128, 128], batch: 3 });
    const tight = await chooseCropAndBatch(e, model, train, { ...common, maxBatch: 3, budget: 1e-9 });
    expect(tight).toMatchObject({ crop: [32, 32], batch: 1 });
    expect(tight.measured.map((m) => m.crop)).toEqual([[32, 32]]);
    const after = await readTensors(modelTensors(model));
    for (const [name, t] of before) expect(Array.from(after.get(name)!.data as Float32Array), name).toEqual(Array.from(t.data as Float32Array));
    expect([...model.namedTensors().values()].every(({ tensor }) => tensor.grad === null)).toBe(true);
    model.dispose();
  });

  it('a run without data.patchSize records the chosen crops and batch in config.json and says so', async () => {
    const e = await testEngine();
    const tiny: ModelRegistry = { factories: { tiny: tinyFactory }, presets: { tiny: { default: { channels: 1, seed: 1, dropout: 0 } } } };
    const run: RunConfig = newRunConfig(tiny, { model: { kind: 'tiny' }, file: { train: { logEvery: 1, validateEvery: 2 } }, train: { steps: 2, batchSize: 2 }, data: { dir: 'blobs' } });
    expect(run.data.patchSize).toEqual([]);
    const store = new MemoryStore('auto');
    let log = '';
    const model = buildModel(e, tiny, 'tiny', run.model.config);
    await trainRun(e, model, run, store, { train: samples(2, 1), val: samples(1, 9) }, { log: { write: (t) => (log += t) } });
    model.dispose();
    const saved = await readJSON<RunConfig>(store, 'config.json');
    expect(cropLadder(2, [1, 1]).map((c) => c.join())).toContain(saved.data.patchSize.join());
    expect(saved.train.batchSize).toBeGreaterThanOrEqual(1);
    expect(saved.train.batchSize).toBeLessThanOrEqual(2);
    expect(log).toContain(`no data.patchSize given: chose crops [${saved.data.patchSize.join(', ')}], batch ${saved.train.batchSize}`);
  });
});
