// `wgseg predict` over a folder as a batch: an image that cannot be read or predicted is named and skipped while the
// others are written (exit code 1), --strict keeps all or nothing, --skip-existing continues a partial run, a progress
// line shows on a terminal only; and the warnings for data that trains badly (NaN pixels, all-empty masks). The tiny
// model keeps it fast.
import { copyFileSync, mkdirSync, mkdtempSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ModelRegistry } from '../src/models/model.ts';
import type { Engine, Tensor } from '../src/index.ts';
import { dataWarnings } from '../src/train/data-check.ts';
import { writeLabels, writePng } from '../src/train/io-node.ts';
import { dataset, runMain, tinyRegistry } from './support/cli.ts';
import { TinyModel, tinyFactory } from './support/fake-model.ts';
import { tiffFixture } from './support/tiff.ts';

const made: string[] = [];
const tmp = () => {
  made.push(mkdtempSync(join(tmpdir(), 'wgseg-batch-')));
  return made.at(-1)!;
};
afterAll(() => made.forEach((dir) => rmSync(dir, { recursive: true, force: true })));

const run = (argv: string[], registry: ModelRegistry = tinyRegistry, tty = false) => runMain(argv, registry, { tty });

/** The tiny model, with `onPostprocess` called before each image's postprocessing (it may throw). */
function watched(onPostprocess: (call: number) => void): ModelRegistry {
  let calls = 0;
  return {
    ...tinyRegistry,
    factories: {
      tiny: (e: Engine, config: Record<string, unknown>) => {
        const model = tinyFactory(e, config) as TinyModel;
        const postprocess = model.postprocess.bind(model);
        model.postprocess = async (outputs: Tensor, spacing: readonly number[]) => {
          onPostprocess(++calls);
          return postprocess(outputs, spacing);
        };
        return model;
      },
    },
  };
}

/** 24x24 float32 TIFF bytes: a ramp with NaN at two pixels and +Inf at one. */
function nanTiff(): Uint8Array {
  const pixels = Float32Array.from({ length: 24 * 24 }, (_, i) => i % 24);
  [pixels[3], pixels[40], pixels[100]] = [NaN, NaN, Infinity];
  return tiffFixture([pixels], { width: 24, height: 24 });
}

let data: string;
let configFile: string;
let runDir: string;
beforeAll(async () => {
  data = await dataset(tmp(), { train: 3, val: 1, test: 3 });
  configFile = join(tmp(), 'config.json');
  writeFileSync(configFile, JSON.stringify({ train: { logEvery: 1, validateEvery: 2, lr: 0.01 }, data: { patchSize: [16, 16] } }));
  runDir = join(tmp(), 'run');
  expect((await run(['train', '--model', 'tiny', '--data', data, '--out', runDir, '--config', configFile, '--steps', '2', '--no-tune'])).code).toBe(0);
});

/** A folder of the three test images and `extra` files. */
function inputFolder(extra: Record<string, string | Uint8Array> = {}): string {
  const dir = join(tmp(), 'input');
  mkdirSync(dir);
  for (const file of readdirSync(join(data, 'test', 'images'))) copyFileSync(join(data, 'test', 'images', file), join(dir, file));
  for (const [file, bytes] of Object.entries(extra)) writeFileSync(join(dir, file), bytes);
  return dir;
}

const predictArgs = (input: string, out: string) => ['predict', '--model', runDir, '--input', input, '--out', out];

describe('wgseg predict: one image failing does not stop the others', () => {
  it('names the unreadable and unfitting files, writes the others, exits 1 and leaves no temporary files', async () => {
    const rgb = new Uint8Array(24 * 24 * 3);
    const input = inputFolder({ 'zz-bad.tif': 'not an image', 'notes.txt': 'skipped: not an image name' });
    await writePng(join(input, 'rgb.png'), { data: rgb, width: 24, height: 24, channels: 3 });
    const out = join(tmp(), 'labels');
    const r = await run(predictArgs(input, out));
    const bad = `${join(input, 'zz-bad.tif')}: not a TIFF or PNG file`;
    const channels = `${join(input, 'rgb.png')}: image has 3 channel(s); the tiny model takes 1`;
    expect(r.stderr).toBe(
      `wgseg predict: ${channels}\nwgseg predict: ${bad}\n` +
        'wgseg predict: 2 of 5 image(s) failed (3 written); fix them and rerun with --skip-existing to predict only those:\n' +
        `  ${channels}\n  ${bad}\n`,
    );
    expect(r.code).toBe(1);
    expect(JSON.parse(r.stdout)).toMatchObject({ images: 3, skipped: 0, failed: 2, out });
    expect(readdirSync(out).sort()).toEqual(['img0.tif', 'img1.tif', 'img2.tif']);
  });

  it('with --strict, the first failure writes nothing and exits 2 (bad data), as before', async () => {
    const input = inputFolder({ 'zz-bad.tif': 'not an image' });
    const parent = tmp();
    const r = await run([...predictArgs(input, join(parent, 'labels')), '--strict']);
    expect(r).toMatchObject({ code: 2, stderr: `wgseg predict: ${join(input, 'zz-bad.tif')}: not a TIFF or PNG file\n`, stdout: '' });
    expect(readdirSync(parent)).toEqual([]);
  });

  it('--skip-existing after a failed image predicts only that one and leaves the finished ones untouched', async () => {
    const input = inputFolder();
    const out = join(tmp(), 'labels');
    const first = await run(predictArgs(input, out), watched((call) => {
      if (call === 2) throw new Error('out of memory (simulated)');
    }));
    expect(first.code).toBe(1);
    expect(first.stderr.split('\n')[0]).toBe(`wgseg predict: ${join(input, 'img1.png')}: out of memory (simulated)`);
    expect(readdirSync(out).sort()).toEqual(['img0.tif', 'img2.tif']);
    const mtimes = ['img0.tif', 'img2.tif'].map((f) => statSync(join(out, f)).mtimeMs);

    let predicted = 0;
    const again = await run([...predictArgs(input, out), '--skip-existing'], watched(() => predicted++));
    expect(again).toMatchObject({ code: 0, stderr: `skipping 2 image(s) whose label image is already in ${out} (--skip-existing)\n` });
    expect(JSON.parse(again.stdout)).toMatchObject({ images: 1, skipped: 2, failed: 0 });
    expect(predicted).toBe(1);
    expect(readdirSync(out).sort()).toEqual(['img0.tif', 'img1.tif', 'img2.tif']);
    expect(['img0.tif', 'img2.tif'].map((f) => statSync(join(out, f)).mtimeMs)).toEqual(mtimes);
  });
});

describe('progress of predict and eval', () => {
  it('draws image i of N with its tiles, the rate and the time left on a terminal, and nothing otherwise', async () => {
    const input = inputFolder();
    const out = join(tmp(), 'labels');
    const quiet = await run([...predictArgs(input, out), '--tile', '8']);
    expect(quiet).toMatchObject({ code: 0, stderr: '' });
    const shown = await run([...predictArgs(input, join(tmp(), 'labels')), '--tile', '8'], tinyRegistry, true);
    expect(shown.code).toBe(0);
    // A 24x24 image in tiles of 8: 9 tiles.
    expect(shown.stderr).toMatch(/^\r\x1b\[K\[\.+\] image 1\/3 img0 {2}\? images\/s {2}eta \?/);
    expect(shown.stderr).toMatch(/\r\x1b\[K\[#*\.*\] image 2\/3 img1 {2}tile 9\/9 {2}([\d.]+ images|\S+)\/(s|image) {2}eta \S+/);
    expect(shown.stderr.endsWith('\n')).toBe(true);

    const masks = join(data, 'test', 'masks');
    expect((await run(['eval', '--gt', masks, '--pred', out])).stderr).toBe('');
    const ev = await run(['eval', '--gt', masks, '--pred', out], tinyRegistry, true);
    expect(ev.code).toBe(0);
    expect(ev.stderr).toMatch(/image 3\/3 img2 {2}([\d.]+ images|\S+)\/(s|image) {2}eta /);
  });
});

describe('warnings for data that trains badly', () => {
  it('counts NaN and infinite pixels, says they become the lowest finite value, and trains and predicts on', async () => {
    const dir = await dataset(tmp(), { train: 3, val: 1 });
    rmSync(join(dir, 'train', 'images', 'img1.png'));
    writeFileSync(join(dir, 'train', 'images', 'img1.tif'), nanTiff());
    const r = await run(['train', '--model', 'tiny', '--data', dir, '--out', join(tmp(), 'run'), '--config', configFile, '--steps', '2', '--no-tune']);
    expect(r.stderr).toContain(
      'warning: 1 training image(s) hold 2 NaN and 1 infinite pixel(s) (img1), replaced by the lowest finite value of their channel before normalization\n',
    );
    expect(r.code).toBe(0);
    expect(JSON.parse(r.stdout)).toMatchObject({ reason: 'done', step: 2 });

    const input = inputFolder({ 'nan.tif': nanTiff() });
    const p = await run(predictArgs(input, join(tmp(), 'labels')));
    expect(p).toMatchObject({
      code: 0, stderr: `warning: ${join(input, 'nan.tif')}: 2 NaN and 1 infinite pixel(s) replaced by the lowest finite value of their channel before normalization\n`,
    });
  });

  it('says when every training mask is empty', async () => {
    const dir = await dataset(tmp(), { train: 3, val: 1 });
    for (const k of [0, 1, 2]) await writeLabels(join(dir, 'train', 'masks', `img${k}.tif`), { data: new Int32Array(24 * 24), shape: [24, 24], spacing: [1, 1] });
    const r = await run(['train', '--model', 'tiny', '--data', dir, '--out', join(tmp(), 'run'), '--config', configFile, '--steps', '1', '--no-tune']);
    expect(r.stderr).toContain('warning: all 3 training mask(s) are empty (no instance, only background or unlabeled): the model can only learn background\n');
    expect(r.code).toBe(0);
  });

  it('dataWarnings: nothing for clean data; several images are named, the first three', () => {
    const image = (values: number[]) => ({ data: Float32Array.from(values), shape: [1, 1, values.length], spacing: [1, 1] });
    const labels = (values: number[]) => ({ data: Int32Array.from(values), shape: [1, values.length], spacing: [1, 1] });
    const clean = { name: 'a', image: image([0, 1]), labels: labels([0, 1]) };
    expect(dataWarnings({ train: [clean], val: [clean] })).toEqual([]);
    const nan = (name: string) => ({ name, image: image([NaN, 1]), labels: labels([0, -1]) });
    expect(dataWarnings({ train: ['a', 'b', 'c', 'd'].map(nan), val: [] })).toEqual([
      '4 training image(s) hold 4 NaN pixel(s) (a, b, c, ...), replaced by the lowest finite value of their channel before normalization',
      'all 4 training mask(s) are empty (no instance, only background or unlabeled): the model can only learn background',
    ]);
  });
});
