// A training run without the CLI (src/train/run.ts): a tiny model trained on samples made in memory, its files in a
// MemoryStore, stopped by the time limit, resumed to the same bytes as an uninterrupted run, and predicting; what a
// Deno or browser program does. Also the model specs the registry lists.
import { describe, expect, it } from 'vitest';
import { predictImage, syntheticBlobs, type Sample } from '../src/index.ts';
import type { ModelRegistry } from '../src/models/model.ts';
import { modelSpecs, registry } from '../src/models/registry.ts';
import { json, MemoryStore, readJSON } from '../src/train/run-store.ts';
import {
  buildModel, ConfigError, loadModel, newRunConfig, prepareSamples, readRun, resumedRunConfig, trainRun, type RunConfig,
  type TrainRunOptions,
} from '../src/train/run.ts';
import type { TrainState } from '../src/train/trainer.ts';
import { testEngine } from './support/engine.ts';
import { tinyFactory } from './support/fake-model.ts';

const tiny: ModelRegistry = { factories: { tiny: tinyFactory }, presets: { tiny: { default: { channels: 1, seed: 1, dropout: 0.1 } } } };

/** 24x24 blob images with their labels, as a program would hold them (unnormalized, spacing 1). */
function samples(n: number, seed: number): Sample[] {
  return Array.from({ length: n }, (_, i) => {
    const s = syntheticBlobs({ height: 24, width: 24, blobs: 3, radius: [3, 5], seed: seed + i });
    return {
      name: `blobs${seed + i}`,
      image: { data: Float32Array.from(s.image, (v) => 255 * v), shape: [1, 24, 24], spacing: [1, 1] },
      labels: { data: s.labels, shape: [24, 24], spacing: [1, 1] },
    };
  });
}

describe('a run in memory', () => {
  const data = { train: samples(3, 1), val: samples(1, 10) };
  const config = (): RunConfig =>
    newRunConfig(tiny, {
      model: { kind: 'tiny' },
      file: { train: { logEvery: 1, validateEvery: 2, lr: 0.01 }, data: { patchSize: [16, 16] } },
      train: { steps: 4, batchSize: 2, seed: 3 },
      data: { dir: 'blobs' },
    });

  it('trains, resumes to the bytes of an uninterrupted run, and predicts from the store', async () => {
    const e = await testEngine();
    const train = async (store: MemoryStore, run: RunConfig, options: TrainRunOptions = {}) => {
      const model = buildModel(e, tiny, run.model.kind, run.model.config);
      try {
        return await trainRun(e, model, run, store, data, options);
      } finally {
        model.dispose();
      }
    };
    const whole = new MemoryStore('whole');
    let log = '';
    const live = e.stats().liveTensors;
    const { result } = await train(whole, config(), { log: { write: (text) => (log += text) } });
    // Nothing of the run outlives its model: weights, Adam's moments and the sample caches are freed.
    expect(e.stats().liveTensors).toBe(live);
    expect(result).toMatchObject({ reason: 'done', state: { step: 4, best: { metric: 'f1' } } });
    expect(log).toBe('training tiny (default) on 3 image(s), validating on 1, from step 0 of 4\npostprocessing: the tiny model has nothing to tune\n');
    expect([...whole.files.keys()].sort()).toEqual(['best.safetensors', 'config.json', 'last.safetensors', 'optimizer.safetensors', 'state.json']);

    const parts = new MemoryStore('parts');
    expect((await train(parts, config(), { maxMinutes: 1e-9 })).result).toMatchObject({ reason: 'time', state: { step: 1 } });
    const resumed = await resumedRunConfig(parts);
    expect((await train(parts, resumed, { resume: true })).result).toMatchObject({ reason: 'done', state: { step: 4 } });
    for (const file of ['last.safetensors', 'optimizer.safetensors', 'config.json']) expect(parts.files.get(file)).toEqual(whole.files.get(file));

    // A run whose schedule was fitted to a time limit resumes to its fitted end, and says so.
    const fitted = new MemoryStore('fitted');
    await train(fitted, config(), { maxMinutes: 1e-9 });
    const state = await readJSON<TrainState>(fitted, 'state.json');
    await fitted.write({ 'state.json': json({ ...state, fitted: { steps: 3, from: 1, position: 1 } }) });
    let fittedLog = '';
    const fittedRun = await train(fitted, await resumedRunConfig(fitted), { resume: true, log: { write: (text) => (fittedLog += text) } });
    expect(fittedRun.result).toMatchObject({ reason: 'done', state: { step: 3, fitted: { steps: 3 } } });
    expect(fittedLog).toContain('from step 1 of 3 (fitted to a time limit; 4 planned)\n');

    const { run, weights } = await readRun(whole);
    expect(run).toMatchObject({ model: { kind: 'tiny', preset: 'default' }, data: { dir: 'blobs', patchSize: [16, 16], trainSpacing: [1, 1] } });
    expect(weights).toBe('best.safetensors');
    const model = loadModel(e, tiny, run, await whole.read(weights), whole.path(weights));
    try {
      const [sample] = prepareSamples(data.val, run);
      expect(await predictImage(e, model, sample.image)).toHaveLength(24 * 24);
    } finally {
      model.dispose();
    }
  });

  it('says what is wrong in one line naming the config field, the store or the sample', async () => {
    const e = await testEngine();
    const fail = (f: () => unknown) => Promise.resolve().then(f).then(() => null, (err: Error) => [err.constructor, err.message]);
    const dir = { dir: 'blobs' };
    expect(await fail(() => newRunConfig(tiny, { model: { kind: 'nope' }, data: dir }))).toEqual([ConfigError, 'model.kind: unknown model "nope" (known: tiny)']);
    expect(await fail(() => newRunConfig(tiny, { model: { kind: 'tiny', preset: 'huge' }, data: dir }))).toEqual([
      ConfigError, 'model.preset: tiny has no preset "huge" (has default)',
    ]);
    expect(await fail(() => resumedRunConfig(new MemoryStore()))).toEqual([ConfigError, 'resume: memory has no run to resume (config.json and state.json)']);
    expect(await fail(() => readRun(new MemoryStore()))).toEqual([ConfigError, 'run: memory is not a run folder (no config.json)']);
    const model = buildModel(e, tiny, 'tiny', { channels: 2 });
    try {
      expect(await fail(() => trainRun(e, model, config(), new MemoryStore(), data))).toEqual([
        ConfigError, 'blobs: image blobs1 has 1 channel(s); the tiny model takes 2',
      ]);
    } finally {
      model.dispose();
    }
  });
});

describe('model specs', () => {
  it('the registry is derived from the specs; presets are listed by the ndim of their configs', () => {
    expect(Object.keys(registry.factories)).toEqual(modelSpecs.map((s) => s.kind));
    for (const spec of modelSpecs) {
      expect(registry.recipes[spec.kind]).toBe(spec.recipe);
      const byNdim = Object.entries(spec.presets).map(([name, config]) => [name, config.ndim]);
      expect([...spec.presetsByNdim[2].map((n) => [n, 2]), ...spec.presetsByNdim[3].map((n) => [n, 3])].sort()).toEqual(byNdim.sort());
    }
    const dir = { dir: 'volumes' };
    expect(newRunConfig(registry, { model: { kind: 'rdcnet', ndim: 3 }, data: dir }).model.preset).toBe('paper-3d');
    expect(newRunConfig(registry, { model: { kind: 'embedseg' }, data: dir })).toMatchObject({
      model: { preset: 'paper' }, train: { lr: 5e-4, schedule: 'poly' }, data: { crops: 'objects' },
    });
  });

  it("each spec's tuned fields are what its model's postprocessGrid() offers", async () => {
    const e = await testEngine();
    for (const spec of modelSpecs) {
      const model = spec.factory(e, { ...spec.presets[spec.presetsByNdim[2].at(-1)!] });
      expect(Object.keys(model.postprocessGrid?.() ?? {})).toEqual(spec.tunes);
      model.dispose();
    }
  });
});
