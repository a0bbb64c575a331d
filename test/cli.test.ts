// The wgseg command line on tiny generated datasets: a full train → resume → predict → eval round in process with a
// tiny model, and the error paths (messages and exit codes) through the real `bin/wgseg.js` in a child process.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadModel, prepareSamples, readRun } from '../src/cli/run.ts';
import { CenterUNet, centerunetSpec, createCenterUNet } from '../src/models/centerunet.ts';
import type { ModelRegistry } from '../src/models/model.ts';
import { registry } from '../src/models/registry.ts';
import type { Engine, Tensor } from '../src/index.ts';
import { decodeSafetensors } from '../src/train/checkpoint.ts';
import { loadImageFolder } from '../src/train/dataset-node.ts';
import { readLabels, writeLabels } from '../src/train/io-node.ts';
import { instanceBoxes } from '../src/train/rotated-box.ts';
import { predictOutputs } from '../src/train/predict.ts';
import { TinyModel, tinyFactory } from './support/fake-model.ts';
import { dataset, runMain, tinyRegistry } from './support/cli.ts';
import { testEngine } from './support/engine.ts';

const bin = resolve('bin/wgseg.js');

const made: string[] = [];
const tmp = () => {
  made.push(mkdtempSync(join(tmpdir(), 'wgseg-cli-')));
  return made.at(-1)!;
};
afterAll(() => made.forEach((dir) => rmSync(dir, { recursive: true, force: true })));

/** Runs main() in this process with the tiny model and the test engine (kept alive between commands). */
async function run(argv: string[], registry: ModelRegistry = tiny) {
  return runMain(argv, registry);
}

/** Runs the real command line in a child process. */
function cli(args: string[], cwd = tmpdir()) {
  const r = spawnSync(process.execPath, [bin, ...args], { cwd, encoding: 'utf8', timeout: 60_000 });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

const tiny = tinyRegistry;

let data: string;
let configFile: string;
beforeAll(async () => {
  data = await dataset(tmp(), { train: 3, val: 1, test: 2 });
  configFile = join(tmp(), 'config.json');
  writeFileSync(configFile, JSON.stringify({ train: { logEvery: 1, validateEvery: 2, lr: 0.01 }, data: { patchSize: [16, 16] } }));
});

describe('wgseg train / predict / eval (in process, tiny model)', () => {
  it('trains, and a run stopped by --max-minutes then resumed writes the same files as an uninterrupted run', async () => {
    const whole = join(tmp(), 'whole');
    const args = ['train', '--model', 'tiny', '--data', data, '--config', configFile, '--steps', '4', '--batch', '2', '--seed', '3'];
    const r = await run([...args, '--out', whole]);
    expect(r.stderr).not.toContain('Error');
    expect(r.code).toBe(0);
    expect(JSON.parse(r.stdout)).toMatchObject({ reason: 'done', step: 4, planned: 4, fitted: null, best: { metric: 'f1' } });
    expect(readdirSync(whole).sort()).toEqual(['best.safetensors', 'config.json', 'last.safetensors', 'optimizer.safetensors', 'state.json']);
    const config = JSON.parse(readFileSync(join(whole, 'config.json'), 'utf8'));
    expect(config).toMatchObject({
      model: { kind: 'tiny', preset: 'default', config: { channels: 1, seed: 3 } },
      train: { steps: 4, batchSize: 2, seed: 3, lr: 0.01, validateEvery: 2 },
      data: { dir: data, patchSize: [16, 16], spacing: null, trainSpacing: [1, 1] },
      normalization: { method: 'percentile', pLow: 1, pHigh: 99.8 },
    });
    expect(r.stderr).toMatch(/validation at step 2: precision [\d.]+ {2}recall/);

    const parts = join(tmp(), 'parts');
    const first = await run([...args, '--out', parts, '--max-minutes', '1e-9']);
    expect(first.code).toBe(0);
    expect(JSON.parse(first.stdout)).toMatchObject({ reason: 'time', step: 1 });
    const again = await run(['train', '--data', data, '--out', parts, '--config', configFile]);
    expect(again).toMatchObject({ code: 2, stderr: `wgseg train: --out: ${parts} already holds a run; add --resume to continue it, or choose another folder\n` });
    expect((await run(['train', '--out', parts, '--resume', '--steps', '9'])).stderr).toBe(`wgseg train: --resume continues ${parts} with its saved config; drop --steps\n`);
    const resumed = await run(['train', '--out', parts, '--resume']);
    expect(resumed.code).toBe(0);
    expect(resumed.stderr).toContain('from step 1 of 4');
    for (const file of ['last.safetensors', 'optimizer.safetensors']) {
      expect(readFileSync(join(parts, file)).equals(readFileSync(join(whole, file)))).toBe(true);
    }
    const [a, b] = [parts, whole].map((d) => JSON.parse(readFileSync(join(d, 'state.json'), 'utf8')));
    expect({ ...a, seconds: 0 }).toEqual({ ...b, seconds: 0 });

    const labels = join(tmp(), 'out', 'labels');
    const p = await run(['predict', '--model', whole, '--input', join(data, 'test', 'images'), '--out', labels]);
    expect(p.code).toBe(0);
    expect(JSON.parse(p.stdout)).toMatchObject({ images: 2, out: labels, weights: join(whole, 'best.safetensors') });
    expect(readdirSync(labels).sort()).toEqual(['img0.tif', 'img1.tif']);
    expect(readdirSync(join(labels, '..'))).toEqual(['labels']);

    const ev = await run(['eval', '--gt', join(data, 'test', 'masks'), '--pred', labels]);
    expect(ev.code).toBe(0);
    expect(ev.stdout.trim().split('\n')).toHaveLength(1);
    const scores = JSON.parse(ev.stdout);
    expect(scores.images).toBe(2);
    for (const key of ['precision', 'recall', 'f1', 'apDsb50', 'apDsb', 'sbd', 'aji']) expect(scores[key]).toBeGreaterThanOrEqual(0);
  });

  it('--init fine-tunes from a run: its model config and weights, a fresh optimizer from step 0', async () => {
    const source = join(tmp(), 'source');
    const args = ['--data', data, '--config', configFile, '--steps', '2', '--batch', '2'];
    expect((await run(['train', '--model', 'tiny', ...args, '--out', source])).code).toBe(0);
    // A learning rate of 1e-30 leaves the weights as they were loaded: the fine-tuned run's weights are the source's.
    const still = join(tmp(), 'still.json');
    writeFileSync(still, JSON.stringify({ train: { lr: 1e-30, lrMin: 0, validateEvery: 1 }, data: { patchSize: [16, 16] } }));
    const tuned = join(tmp(), 'tuned');
    const r = await run(['train', '--init', source, '--data', data, '--config', still, '--steps', '1', '--no-tune', '--out', tuned]);
    expect(r.code).toBe(0);
    expect(r.stderr).toContain(`initialized from ${join(source, 'best.safetensors')} (step 2) on 3 image(s), validating on 1, from step 0 of 1`);
    const config = JSON.parse(readFileSync(join(tuned, 'config.json'), 'utf8'));
    expect(config).toMatchObject({ model: { kind: 'tiny', preset: 'default' }, init: { from: source, step: 2 }, train: { steps: 1 } });
    const weights = (dir: string) => {
      const { tensors } = decodeSafetensors(readFileSync(join(dir, 'best.safetensors')));
      return Object.fromEntries([...tensors].map(([name, t]) => [name, Array.from(t.data as Float32Array)]));
    };
    expect(weights(tuned)).toEqual(weights(source));
    // The same with the default learning rate moves them.
    const moved = join(tmp(), 'moved');
    expect((await run(['train', '--init', source, ...args, '--steps', '1', '--no-tune', '--out', moved])).code).toBe(0);
    expect(weights(moved)).not.toEqual(weights(source));

    expect((await run(['train', '--init', source, '--preset', 'default', ...args, '--out', join(tmp(), 'x')])).stderr).toBe(`wgseg train: --init takes the model from ${source}; drop --preset\n`);
    expect((await run(['train', '--init', data, ...args, '--out', join(tmp(), 'x')])).stderr).toBe(`wgseg train: --init: ${data} is not a run folder (no config.json)\n`);
    expect((await run(['train', '--out', tuned, '--resume', '--init', source])).stderr).toBe(`wgseg train: --resume continues ${tuned} with its saved config; drop --init\n`);
  });

  it('with --strict, a failure while predicting leaves nothing in --out', async () => {
    const runDir = join(tmp(), 'run');
    expect((await run(['train', '--model', 'tiny', '--data', data, '--out', runDir, '--config', configFile, '--steps', '2'])).code).toBe(0);
    let calls = 0;
    const failing: ModelRegistry = {
      ...tiny,
      factories: {
        tiny: (e: Engine, config: Record<string, unknown>) => {
          const model = tinyFactory(e, config) as TinyModel;
          const postprocess = model.postprocess.bind(model);
          model.postprocess = async (outputs: Tensor, spacing: readonly number[]) => {
            if (++calls === 2) throw new Error('out of memory (simulated)');
            return postprocess(outputs, spacing);
          };
          return model;
        },
      },
    };
    const parent = tmp();
    expect(await run(['predict', '--model', runDir, '--input', join(data, 'test', 'images'), '--out', join(parent, 'x'), '--iterations-png'])).toMatchObject({
      code: 2, stderr: 'wgseg predict: --iterations-png: the tiny model has no recurrent iterations to show\n',
    });
    const r = await run(['predict', '--model', runDir, '--input', join(data, 'test', 'images'), '--out', join(parent, 'labels'), '--strict'], failing);
    expect(r).toMatchObject({ code: 1, stderr: 'wgseg predict: out of memory (simulated) (WGSEG_DEBUG=1 shows where)\n' });
    expect(readdirSync(parent)).toEqual([]);
  });

  it('bad flags are one line naming the flag, exit code 2 (the real model registry)', async () => {
    const rdcnet = (argv: string[]) => run(argv, registry);
    expect(await rdcnet(['train', '--bogus'])).toMatchObject({ code: 2, stderr: "wgseg train: Unknown option '--bogus' (see wgseg train --help)\n" });
    expect(await rdcnet(['train', '--model', 'nope', '--data', data, '--out', 'x'])).toMatchObject({
      code: 2, stderr: expect.stringMatching(/^wgseg train: --model: unknown model "nope" \(known: rdcnet.*\)\n$/),
    });
    expect(await rdcnet(['train', '--model', 'rdcnet', '--preset', 'huge', '--data', data, '--out', 'x'])).toMatchObject({
      code: 2, stderr: expect.stringMatching(/^wgseg train: --preset: rdcnet has no preset "huge" \(has .*small.*\)\n$/),
    });
    expect(await rdcnet(['train', '--model', 'rdcnet', '--data', data, '--out', 'x', '--steps', '0'])).toMatchObject({
      code: 2, stderr: 'wgseg train: --steps must be a positive integer, got "0"\n',
    });
    expect(await rdcnet(['train', '--model', 'rdcnet', '--data', data, '--out', 'x', '--spacing', '1,0'])).toMatchObject({
      code: 2, stderr: 'wgseg train: --spacing must be Y,X or Z,Y,X positive numbers, got "1,0"\n',
    });
    expect(await rdcnet(['train', '--out', join(tmp(), 'r'), '--resume'])).toMatchObject({
      code: 2, stderr: expect.stringMatching(/^wgseg train: --resume: .* has no run to resume \(config.json and state.json\)\n$/),
    });
    expect(await rdcnet(['predict', '--model', data, '--input', data, '--out', join(tmp(), 'o')])).toMatchObject({
      code: 2, stderr: `wgseg predict: --model: ${data} is not a run folder (no config.json)\n`,
    });
    expect(await rdcnet(['eval', '--gt', data])).toMatchObject({ code: 2, stderr: 'wgseg eval: --pred is required (see wgseg eval --help)\n' });
  });

  it('bad data is one line naming the file, exit code 2, and no run folder', async () => {
    const bad = await dataset(tmp(), { train: 2 });
    writeFileSync(join(bad, 'train', 'masks', 'img1.tif'), '');
    const out = join(tmp(), 'run');
    const r = await run(['train', '--model', 'tiny', '--data', bad, '--out', out]);
    expect(r.code).toBe(2);
    expect(r.stderr).toBe(`wgseg train: ${join(bad, 'train', 'masks', 'img1.tif')}: empty file\n`);
    expect(existsSync(out)).toBe(false);
    const patch = join(tmp(), 'c.json');
    writeFileSync(patch, JSON.stringify({ data: { patchSize: [16] } }));
    expect((await run(['train', '--model', 'tiny', '--data', data, '--out', out, '--config', patch])).stderr).toBe(
      'wgseg train: data.patchSize [16] must be 2 positive multiples of [1, 1] for this model\n',
    );
    writeFileSync(patch, JSON.stringify({ train: { stepz: 3 } }));
    expect((await run(['train', '--model', 'tiny', '--data', data, '--out', out, '--config', patch])).stderr).toMatch(
      /^wgseg train: training option "stepz" is unknown/,
    );
    writeFileSync(patch, JSON.stringify({ data: { patch: 3 } }));
    expect((await run(['train', '--model', 'tiny', '--data', data, '--out', out, '--config', patch])).stderr).toBe(
      `wgseg train: --config ${patch}: unknown key "data.patch" (known: patchSize, augment, crops, valFraction)\n`,
    );
    writeFileSync(patch, JSON.stringify({ data: { valFraction: 1 } }));
    expect((await run(['train', '--model', 'tiny', '--data', data, '--out', out, '--config', patch])).stderr).toBe(
      `wgseg train: --config ${patch}: data.valFraction must be in (0, 1), got 1\n`,
    );
    expect(existsSync(out)).toBe(false);
  });
});

/** Trains `model`'s small preset (the real registry) for `steps` steps on the shared dataset; returns the run folder. */
async function trainSmall(model: string, steps: number): Promise<string> {
  const runDir = join(tmp(), model);
  const args = ['train', '--model', model, '--preset', 'small', '--data', data, '--out', runDir, '--config', configFile, '--steps', String(steps)];
  const t = await run(args, registry);
  expect(t.stderr).not.toContain('wgseg train:');
  expect(t.code).toBe(0);
  return runDir;
}

describe('RDCNet through the CLI', () => {
  it('trains the small preset for a few steps and predicts with one PNG per recurrent iteration', async () => {
    const runDir = await trainSmall('rdcnet', 2);
    const out = join(tmp(), 'pred');
    const p = await run(['predict', '--model', runDir, '--input', join(data, 'test', 'images'), '--out', out, '--iterations-png'], registry);
    expect(p.code).toBe(0);
    expect(readdirSync(out).sort()).toEqual(['img0.tif', 'img1.tif', 'iterations']);
    expect(readdirSync(join(out, 'iterations')).sort()).toEqual([
      'img0.iter1.png', 'img0.iter2.png', 'img0.iter3.png', 'img0.iter4.png', 'img1.iter1.png', 'img1.iter2.png', 'img1.iter3.png', 'img1.iter4.png',
    ]);
    // Predicting again into the same folder replaces the files; the label folder still evaluates.
    expect((await run(['predict', '--model', runDir, '--input', join(data, 'test', 'images'), '--out', out, '--iterations-png'], registry)).code).toBe(0);
    expect(readdirSync(join(out, 'iterations'))).toHaveLength(8);
    expect((await run(['eval', '--gt', join(data, 'test', 'masks'), '--pred', out])).code).toBe(0);
    const asTiny = await run(['predict', '--model', runDir, '--input', data, '--out', out], { ...registry, factories: { rdcnet: tinyFactory } });
    expect(asTiny).toMatchObject({ code: 2, stderr: `wgseg predict: ${join(runDir, 'best.safetensors')} holds a rdcnet model, not tiny\n` });
  });
});

describe('EmbedSeg through the CLI', () => {
  it('trains the small preset with its recipe, predicts with and without test-time augmentation, and evaluates', async () => {
    const runDir = await trainSmall('embedseg', 2);
    // The recipe (EmbedSeg's code) fills what the config file does not say; the file's own keys win.
    const saved = JSON.parse(readFileSync(join(runDir, 'config.json'), 'utf8'));
    expect(saved.train).toMatchObject({ weightDecay: 1e-4, schedule: 'poly', lr: 0.01 });
    expect(saved.data.crops).toBe('objects');
    expect(saved.model.kind).toBe('embedseg');
    for (const flag of ['--tta', '--no-tta']) {
      const out = join(tmp(), `pred${flag}`);
      const p = await run(['predict', '--model', runDir, '--input', join(data, 'test', 'images'), '--out', out, flag], registry);
      expect(p.stderr).toBe('');
      expect(p.code).toBe(0);
      expect(readdirSync(out).sort()).toEqual(['img0.tif', 'img1.tif']);
      const ev = await run(['eval', '--gt', join(data, 'test', 'masks'), '--pred', out]);
      expect(ev.code).toBe(0);
      expect(Object.keys(JSON.parse(ev.stdout))).toContain('apDsb50');
    }
    const both = await run(['predict', '--model', runDir, '--input', data, '--out', join(tmp(), 'x'), '--tta', '--no-tta'], registry);
    expect(both).toMatchObject({ code: 2, stderr: 'wgseg predict: --tta and --no-tta contradict each other\n' });
  });

  it('--tta on a model without test-time augmentation is named', async () => {
    const runDir = await trainSmall('rdcnet', 1);
    const p = await run(['predict', '--model', runDir, '--input', join(data, 'test', 'images'), '--out', join(tmp(), 'y'), '--tta'], registry);
    expect(p).toMatchObject({ code: 2, stderr: 'wgseg predict: --tta: the rdcnet model has no test-time augmentation\n' });
  });
});

describe('CenterUNet through the CLI', () => {
  // CenterUNet's tiny test config, with a score threshold low enough that a model trained for 2 steps detects boxes.
  const centerunet: ModelRegistry = {
    factories: { centerunet: createCenterUNet },
    presets: { centerunet: { tiny: { ...centerunetSpec.tiny(centerunetSpec.presets.small), scoreThreshold: 0.05, maxObjects: 20 } } },
    recipes: { centerunet: centerunetSpec.recipe },
  };
  let blobs: string;
  let runDir: string;
  beforeAll(async () => {
    blobs = await dataset(tmp(), { train: 2, val: 1, test: 2 }, 64);
    const config = join(tmp(), 'centerunet.json');
    writeFileSync(config, JSON.stringify({ train: { logEvery: 1, validateEvery: 2 }, data: { patchSize: [32, 32] } }));
    runDir = join(tmp(), 'centerunet');
    const t = await run(['train', '--model', 'centerunet', '--preset', 'tiny', '--data', blobs, '--out', runDir, '--config', config, '--steps', '2'], centerunet);
    expect(t.stderr).not.toContain('wgseg train:');
    expect(t.code).toBe(0);
  });

  it('predict writes OUT/boxes/NAME.json beside the labels: a header and the boxes the model decodes, by score', async () => {
    const out = join(tmp(), 'pred');
    const p = await run(['predict', '--model', runDir, '--input', join(blobs, 'test', 'images'), '--out', out], centerunet);
    expect(p.stderr).toBe('');
    expect(p.code).toBe(0);
    expect(readdirSync(out).sort()).toEqual(['boxes', 'img0.tif', 'img1.tif']);
    expect(readdirSync(join(out, 'boxes')).sort()).toEqual(['img0.json', 'img1.json']);
    // The boxes the saved model decodes from the same image, tuned thresholds included.
    const e = await testEngine();
    const saved = await readRun(runDir);
    const model = (await loadModel(e, centerunet, saved.run, saved.weights)) as CenterUNet;
    for (const { name, image } of prepareSamples(await loadImageFolder(join(blobs, 'test', 'images'), { ndim: 2 }), saved.run)) {
      const outputs = await predictOutputs(e, model, image);
      const { boxes } = await model.decode(outputs, {}, [64, 64]);
      outputs.dispose();
      const json = JSON.parse(readFileSync(join(out, 'boxes', `${name}.json`), 'utf8'));
      expect(Object.keys(json)).toEqual(['header', 'boxes']);
      expect(json.header).toEqual({ model: 'centerunet', image: name, height: 64, width: 64 });
      expect(boxes.length).toBeGreaterThan(0);
      expect(json.boxes).toHaveLength(boxes.length);
      json.boxes.forEach((b: Record<string, number>, k: number) => {
        expect(Object.keys(b)).toEqual(['cx', 'cy', 'width', 'height', 'angle', 'score']);
        expect(b.width).toBeGreaterThanOrEqual(b.height);
        expect(b.height).toBeGreaterThanOrEqual(0);
        expect(b.angle).toBeGreaterThanOrEqual(0);
        expect(b.angle).toBeLessThan(Math.PI);
        expect(b.score).toBeLessThanOrEqual(k === 0 ? 1 : json.boxes[k - 1].score);
        for (const key of ['cx', 'cy', 'width', 'height', 'angle', 'score'] as const) expect(b[key]).toBeCloseTo(boxes[k][key], 4);
      });
    }
    model.dispose();
  });

  it("eval scores boxes/NAME.json: the truth's own rectangles give AP 1 (an oracle), the model's a value in [0, 1], a missing file is named", async () => {
    const masks = join(blobs, 'test', 'masks');
    // Oracle: the ground truth as the prediction, and each instance's minimum-area rectangle as its box.
    const oracle = join(tmp(), 'oracle');
    mkdirSync(join(oracle, 'boxes'), { recursive: true });
    let truths = 0;
    for (const name of ['img0', 'img1']) {
      const gt = await readLabels(join(masks, `${name}.tif`));
      await writeLabels(join(oracle, `${name}.tif`), gt);
      const boxes = [...instanceBoxes(gt.data, gt.shape[0], gt.shape[1]).values()].map((b, k) => ({ ...b, score: 1 - k / 10 }));
      writeFileSync(join(oracle, 'boxes', `${name}.json`), JSON.stringify({ header: {}, boxes }));
      truths += boxes.length;
    }
    expect(truths).toBeGreaterThanOrEqual(4);
    const ev = await run(['eval', '--gt', masks, '--pred', oracle], centerunet);
    expect(ev.code).toBe(0);
    const scores = JSON.parse(ev.stdout);
    expect(scores.boxes).toEqual({ ap: 1, ap50: 1, ap75: 1, truths, detections: truths });
    expect(scores.perImage).toMatchObject({ pwIoU: 1, pwF1: 1, owIoU: 1, owF1: 1 });
    // The trained model's prediction.
    const pred = join(tmp(), 'pred2');
    expect((await run(['predict', '--model', runDir, '--input', join(blobs, 'test', 'images'), '--out', pred], centerunet)).code).toBe(0);
    const mine = JSON.parse((await run(['eval', '--gt', masks, '--pred', pred], centerunet)).stdout);
    expect(mine.boxes.truths).toBe(truths);
    for (const v of [mine.boxes.ap, mine.boxes.ap50, mine.boxes.ap75, mine.perImage.pwIoU, mine.perImage.owF1]) {
      expect(v).toBeGreaterThanOrEqual(0);
      expect(v).toBeLessThanOrEqual(1);
    }
    rmSync(join(oracle, 'boxes', 'img1.json'));
    expect(await run(['eval', '--gt', masks, '--pred', oracle], centerunet)).toMatchObject({
      code: 2, stderr: `wgseg eval: ${join(oracle, 'boxes', 'img1.json')}: missing (the prediction folder has boxes/ for other images)\n`,
    });
    writeFileSync(join(oracle, 'boxes', 'img1.json'), JSON.stringify({ boxes: [{ cx: 1, cy: 2, width: 3, height: 1, angle: 0 }] }));
    expect((await run(['eval', '--gt', masks, '--pred', oracle], centerunet)).stderr).toBe(
      `wgseg eval: ${join(oracle, 'boxes', 'img1.json')}: box 0 has score undefined, expected a finite number\n`,
    );
  });

  it('with --strict, a failure while detecting leaves nothing in --out; a file as --out is one line', async () => {
    let calls = 0;
    const failing: ModelRegistry = {
      ...centerunet,
      factories: {
        centerunet: (e: Engine, config: Record<string, unknown>) => {
          const model = createCenterUNet(e, config) as CenterUNet;
          const detections = model.detections.bind(model);
          model.detections = async (outputs: Tensor, size: readonly number[]) => {
            if (++calls === 2) throw new Error('lost the device (simulated)');
            return detections(outputs, size);
          };
          return model;
        },
      },
    };
    const parent = tmp();
    const r = await run(['predict', '--model', runDir, '--input', join(blobs, 'test', 'images'), '--out', join(parent, 'labels'), '--strict'], failing);
    expect(r).toMatchObject({ code: 1, stderr: 'wgseg predict: lost the device (simulated) (WGSEG_DEBUG=1 shows where)\n' });
    expect(readdirSync(parent)).toEqual([]);
    const file = join(parent, 'file');
    writeFileSync(file, '');
    expect(await run(['predict', '--model', runDir, '--input', join(blobs, 'test', 'images'), '--out', file], centerunet)).toMatchObject({
      code: 2, stderr: `wgseg predict: --out: ${file} exists and is not a folder\n`,
    });
  });
});

describe('bin/wgseg.js (child process, run from another folder)', () => {
  it('prints help and exits 0; no command or an unknown one exits 2', () => {
    const h = cli(['--help']);
    expect(h.code).toBe(0);
    expect(h.stdout).toContain('wgseg train --model NAME --data DIR --out RUN');
    expect(h.stdout).toContain('rdcnet');
    const trainHelp = cli(['train', '--help']);
    expect(trainHelp).toMatchObject({ code: 0, stdout: expect.stringContaining('--max-minutes M') });
    expect(trainHelp.stdout).toContain('--fit-schedule');
    // Every command answers --help, even one whose required options are missing.
    for (const name of ['predict', 'eval', 'synth', 'import', 'app']) {
      expect(cli([name, '--help'])).toMatchObject({ code: 0, stdout: expect.stringContaining(`wgseg ${name} `), stderr: '' });
    }
    expect(cli(['frobnicate'])).toMatchObject({ code: 2, stderr: 'wgseg: unknown command "frobnicate" (train, predict, eval, synth, import, app; see wgseg --help)\n' });
  });

  it('names the flag or file at fault, with exit code 2', () => {
    expect(cli(['train', '--model', 'rdcnet', '--out', 'x'])).toMatchObject({ code: 2, stderr: 'wgseg train: --data is required (see wgseg train --help)\n' });
    expect(cli(['synth', '--out', join(tmp(), 'syn'), '--test', '0'])).toMatchObject({ code: 2, stderr: 'wgseg synth: --test must be a positive integer, got "0"\n' });
    const missing = join(tmp(), 'none');
    expect(cli(['eval', '--gt', missing, '--pred', data])).toMatchObject({ code: 2, stderr: `wgseg eval: ${missing}: missing folder\n` });
  });

  it('eval prints one JSON line', () => {
    const masks = join(data, 'test', 'masks');
    const r = cli(['eval', '--gt', masks, '--pred', masks]);
    expect(r.code).toBe(0);
    const lines = r.stdout.trim().split('\n');
    expect(lines).toHaveLength(1);
    expect(JSON.parse(lines[0])).toMatchObject({ images: 2, precision: 1, recall: 1, f1: 1, apDsb: 1, sbd: 1, aji: 1 });
  });
});
