// Postprocessing tuning after training: the best combination of a model's candidates on the validation images (ties to
// the config's values, then to the smallest change), saved into the run's config.json, used by `wgseg predict`, and
// skipped (saying so) with --no-tune or without validation images; RDCNet's voting candidates.
import { mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { tuneRun } from '../src/train/run.ts';
import { RunFolder } from '../src/train/checkpoint-node.ts';
import type { ModelRegistry } from '../src/models/model.ts';
import {
  RDCNet, syntheticBlobs, tunePostprocess,
  type Engine, type InstanceModel, type NamedTensor, type Sample, type Spacing, type Tensor,
} from '../src/index.ts';
import { writeLabels, writePng } from '../src/train/io-node.ts';
import { testEngine } from './support/engine.ts';
import { TinyModel } from './support/fake-model.ts';
import { runMain, sink } from './support/cli.ts';

/** Its raw output is the image; postprocess labels pixels above `threshold` as instance 1. */
class ThresholdModel implements InstanceModel {
  readonly kind = 'threshold';
  readonly ndim = 2;
  readonly inChannels = 1;
  readonly sizeMultiple = [1, 1];
  readonly tileMargin = [0, 0];
  inferCalls = 0;

  constructor(readonly engine: Engine, readonly config: { threshold: number }, readonly grid: number[]) {}

  namedTensors(): Map<string, NamedTensor> {
    return new Map();
  }

  loss(): Tensor {
    throw new Error('not trained');
  }

  infer(images: Tensor): Tensor {
    this.inferCalls++;
    return this.engine.copy(images);
  }

  postprocessGrid(): Record<string, number[]> {
    return { threshold: this.grid };
  }

  async postprocess(outputs: Tensor, _spacing: Spacing, values: Readonly<Record<string, number>> = {}): Promise<Int32Array> {
    const threshold = values.threshold ?? this.config.threshold;
    return Int32Array.from(await outputs.data(), (v) => (v > threshold ? 1 : 0));
  }

  dispose(): void {}
}

/**
 * 12x12 images: one instance (a 4x4 square of value 0.6) in a ring of value 0.3 three times its area. Thresholds in
 * [0.3, 0.6) find it exactly (F1 1); below 0.3 the ring joins it (IoU 1/4, F1 0); from 0.6 nothing is found (F1 0).
 */
function squares(n: number): Sample[] {
  return Array.from({ length: n }, (_, i) => {
    const image = new Float32Array(144);
    const labels = new Int32Array(144);
    const [y0, x0] = [3 + (i % 2), 3];
    for (let y = y0 - 2; y < y0 + 6; y++) for (let x = x0 - 2; x < x0 + 6; x++) image[y * 12 + x] = 0.3;
    for (let y = y0; y < y0 + 4; y++) {
      for (let x = x0; x < x0 + 4; x++) {
        image[y * 12 + x] = 0.6;
        labels[y * 12 + x] = 1;
      }
    }
    return { name: `sq${i}`, image: { data: image, shape: [1, 12, 12], spacing: [1, 1] }, labels: { data: labels, shape: [12, 12], spacing: [1, 1] } };
  });
}

describe('tunePostprocess', () => {
  it('picks the best combination, scoring each image\'s raw outputs computed once', async () => {
    const e = await testEngine();
    const model = new ThresholdModel(e, { threshold: 0.9 }, [0.1, 0.5, 0.7]);
    const live = e.stats().liveTensors;
    const r = (await tunePostprocess(e, model, squares(3), 'f1'))!;
    expect(model.inferCalls).toBe(3);
    expect(e.stats().liveTensors).toBe(live);
    expect(r.scores).toEqual([
      { values: { threshold: 0.1 }, score: 0 },
      { values: { threshold: 0.5 }, score: 1 },
      { values: { threshold: 0.7 }, score: 0 },
      { values: { threshold: 0.9 }, score: 0 },
    ]);
    expect(r).toMatchObject({ metric: 'f1', defaults: { threshold: 0.9 }, values: { threshold: 0.5 }, score: 1, defaultScore: 0 });
  });

  it('breaks ties by the config\'s values, then by the smallest change', async () => {
    const e = await testEngine();
    const tie = (threshold: number, grid: number[]) => tunePostprocess(e, new ThresholdModel(e, { threshold }, grid), squares(1), 'f1');
    expect((await tie(0.4, [0.35, 0.5]))!.values).toEqual({ threshold: 0.4 });
    expect((await tie(0.9, [0.35, 0.5]))!.values).toEqual({ threshold: 0.5 });
    expect((await tie(0.1, [0.35, 0.5]))!.values).toEqual({ threshold: 0.35 });
  });

  it('names what is wrong; a model without a grid has nothing to tune', async () => {
    const e = await testEngine();
    const model = new ThresholdModel(e, { threshold: 0.9 }, [0.5]);
    await expect(tunePostprocess(e, model, squares(1), 'ap')).rejects.toThrow('tuning: no metric "ap" (bestMetric); there are precision, recall, f1');
    await expect(tunePostprocess(e, model, [], 'f1')).rejects.toThrow('tuning: no validation samples');
    const tiny = new TinyModel(e, { channels: 1, seed: 1, dropout: 0 });
    expect(await tunePostprocess(e, tiny, squares(1), 'f1')).toBeNull();
    tiny.dispose();
  });
});

describe('RDCNet voting candidates', () => {
  it('votingWindow in margin × {0.4, 0.6, 0.8, 1}, minCount in {2, 3, 5}; postprocess values act as the config would', async () => {
    const e = await testEngine();
    const config = { ndim: 2, stride: [2, 2], groups: 1, channelsPerGroup: 2, dilations: [1], iterations: 1, inputChannels: 2, margin: 5, votingWindow: 5, minCount: 5 };
    const model = new RDCNet(e, config);
    expect(model.postprocessGrid()).toEqual({ votingWindow: [2, 3, 4, 5], minCount: [2, 3, 5] });
    // Offsets that pull the pixels of each 4x4 block towards its centre (two blocks 8 px apart), all foreground.
    const [h, w] = [8, 16];
    const out = new Float32Array(4 * h * w);
    for (let y = 0; y < h; y++) {
      for (let x = 0; x < w; x++) {
        const i = y * w + x;
        out[i] = 3.5 - y;
        out[h * w + i] = (x < 8 ? 3.5 : 11.5) - x;
        out[3 * h * w + i] = 5;
      }
    }
    const outputs = e.tensor(out, [1, 4, h, w]);
    const values = { votingWindow: 3, minCount: 2 };
    const tuned = await model.postprocess(outputs, [1, 1], values);
    const rebuilt = new RDCNet(e, { ...config, ...values });
    expect(tuned).toEqual(await rebuilt.postprocess(outputs, [1, 1]));
    expect(new Set(tuned).size).toBe(2);
    await expect(model.postprocess(outputs, [1, 1], { minCount: -1 })).rejects.toThrow('rdcnet: minCount must be a non-negative integer');
    outputs.dispose();
    model.dispose();
    rebuilt.dispose();
  });
});

const made: string[] = [];
const tmp = () => {
  made.push(mkdtempSync(join(tmpdir(), 'wgseg-tune-')));
  return made.at(-1)!;
};
afterAll(() => made.forEach((dir) => rmSync(dir, { recursive: true, force: true })));

/** A dataset of 16x16 images of one blob each. */
async function dataset(counts: Record<string, number>): Promise<string> {
  const dir = tmp();
  let seed = 1;
  for (const [split, n] of Object.entries(counts)) {
    for (const sub of ['images', 'masks']) mkdirSync(join(dir, split, sub), { recursive: true });
    for (let i = 0; i < n; i++) {
      const s = syntheticBlobs({ height: 16, width: 16, blobs: 1, radius: [3, 4], seed: seed++ });
      const grey = Uint8Array.from(s.image, (v) => Math.max(0, Math.min(255, Math.round(v * 255))));
      await writePng(join(dir, split, 'images', `img${i}.png`), { data: grey, width: 16, height: 16, channels: 1 });
      await writeLabels(join(dir, split, 'masks', `img${i}.tif`), { data: s.labels, shape: [16, 16], spacing: [1, 1] });
    }
  }
  return dir;
}

/**
 * The tiny model trains as usual, but infers the (normalized) image itself and thresholds it: on images of one blob,
 * threshold 0.5 finds the blob, the others nothing or everything. Every config it is built with is recorded.
 */
const built: Record<string, unknown>[] = [];
class TunableTiny extends TinyModel {
  constructor(engine: Engine, readonly tunable: Record<string, unknown>) {
    super(engine, { channels: 1, seed: 1, dropout: 0, ...tunable } as TinyModel['config']);
  }

  override infer(images: Tensor): Tensor {
    return this.engine.copy(images);
  }

  postprocessGrid(): Record<string, number[]> {
    return { threshold: [-1e9, 0.5, 1e9] };
  }

  override async postprocess(outputs: Tensor, _spacing: Spacing, values: Readonly<Record<string, number>> = {}): Promise<Int32Array> {
    const threshold = values.threshold ?? (this.config as unknown as { threshold: number }).threshold;
    return Int32Array.from(await outputs.data(), (v) => (v > threshold ? 1 : 0));
  }
}
const registry: ModelRegistry = {
  factories: { tiny: (e, config) => (built.push(config), new TunableTiny(e, config)) },
  presets: { tiny: { default: { threshold: 1 } } },
};

const run = (argv: string[]) => runMain(argv, registry);

describe('wgseg train tunes postprocessing', () => {
  let data: string;
  let configFile: string;
  beforeAll(async () => {
    data = await dataset({ train: 2, val: 2 });
    configFile = join(tmp(), 'config.json');
    writeFileSync(configFile, JSON.stringify({ train: { validateEvery: 2, lr: 0.01 }, data: { patchSize: [8, 8] } }));
  });
  const args = () => ['train', '--model', 'tiny', '--data', data, '--config', configFile, '--batch', '1'];
  const configOf = (dir: string) => JSON.parse(readFileSync(join(dir, 'config.json'), 'utf8'));

  it('logs every combination, saves the best into config.json, and predict uses it; --resume validates with the defaults again', async () => {
    const out = join(tmp(), 'run');
    const first = await run([...args(), '--steps', '4', '--out', out, '--max-minutes', '1e-9']);
    expect(first.code).toBe(0);
    expect(first.stderr).toContain('tuning postprocessing on 2 validation image(s) with the weights of step 1, by f1:\n');
    const lines = first.stderr.split('\n').filter((l) => /^ {2}threshold /.test(l));
    expect(lines.map((l) => l.split(/\s+/)[2])).toEqual(['-1000000000', '0.5', '1', '1000000000']);
    expect(lines[1]).toBe('  threshold 0.5  f1 1.0000  (chosen)');
    expect(lines[2]).toBe('  threshold 1  f1 0.0000  (config)');
    const threshold = 0.5;
    const tuned = configOf(out).model;
    expect(tuned.config.threshold).toBe(threshold);
    expect(tuned.tuning).toMatchObject({ metric: 'f1', step: 1, defaults: { threshold: 1 }, values: { threshold } });
    expect(JSON.parse(first.stdout).tuned).toEqual({ threshold });

    built.length = 0;
    const resumed = await run(['train', '--out', out, '--resume']);
    expect(resumed.code).toBe(0);
    expect(built[0]).toMatchObject({ threshold: 1 });
    expect(resumed.stderr).toMatch(/with the weights of step [24], by f1:\n/);
    expect(configOf(out).model.tuning.defaults).toEqual({ threshold: 1 });

    built.length = 0;
    const labels = join(tmp(), 'labels');
    expect((await run(['predict', '--model', out, '--input', join(data, 'val', 'images'), '--out', labels])).code).toBe(0);
    expect(built).toEqual([configOf(out).model.config]);
    expect(readdirSync(labels).sort()).toEqual(['img0.tif', 'img1.tif']);
    expect(JSON.parse((await run(['eval', '--gt', join(data, 'val', 'masks'), '--pred', labels])).stdout)).toMatchObject({ f1: 1 });
  });

  it('--no-tune and a run without validation images skip tuning and say why', async () => {
    const noTune = join(tmp(), 'no-tune');
    const r = await run([...args(), '--steps', '2', '--out', noTune, '--no-tune']);
    expect(r.code).toBe(0);
    expect(r.stderr).toContain('postprocessing: not tuned (--no-tune)\n');
    expect(configOf(noTune).model).toEqual({ kind: 'tiny', preset: 'default', config: { threshold: 1 } });

    // The CLI always validates (DIR/val, or a held-out part of train); tuneRun is also the skip for other callers.
    const e = await testEngine();
    const model = new TunableTiny(e, { threshold: 1 });
    const log = sink();
    const result = { reason: 'done' as const, state: JSON.parse(readFileSync(join(noTune, 'state.json'), 'utf8')) };
    expect(await tuneRun(e, model, [], 'f1', result, new RunFolder(noTune), log.stream)).toBeNull();
    expect(log.text()).toBe('postprocessing: not tuned (no validation images)\n');
    expect(configOf(noTune).model.tuning).toBeUndefined();
    model.dispose();
  });
});
