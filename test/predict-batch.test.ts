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
import { countHoles, countSmallInstances, dataWarnings } from '../src/train/data-check.ts';
import { writeLabels, writePng } from '../src/train/io-node.ts';
import { syntheticBlobs } from '../src/index.ts';
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

  it('says when instances are too small for the model\'s postprocessing', async () => {
    const dir = await dataset(tmp(), { train: 3, val: 1 });
    const config = join(tmp(), 'small.json');
    writeFileSync(config, JSON.stringify({ model: { minCount: 1000 }, train: { logEvery: 1, validateEvery: 2 }, data: { patchSize: [16, 16] } }));
    const r = await run(['train', '--model', 'tiny', '--data', dir, '--out', join(tmp(), 'run'), '--config', config, '--steps', '1', '--no-tune']);
    expect(r.stderr).toMatch(
      /warning: 3 training mask\(s\) hold \d+ instance\(s\) smaller than the model's minCount of 1000 pixels \(img0, img1, img2\): a centre needs that many votes, one per pixel, so prediction cannot find them\n/,
    );
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

describe('labels that train badly: holes and instances too small for the model', () => {
  /** A 2D label image from rows of digits ('.' is 0, '-' is -1). */
  const grid = (...rows: string[]) => ({
    data: Int32Array.from(rows.join(''), (c) => (c === '.' ? 0 : c === '-' ? -1 : Number(c))),
    shape: [rows.length, rows[0].length],
    spacing: [1, 1],
  });
  const labels2D = grid(
    '..........',
    '.11111.44.',
    '.1.1.1.454',
    '.11111.44.',
    '..........',
    '.2233.-88.',
    '.2..3.-.8.',
    '.2233.-88.',
    '......6...',
  );

  it('counts the background regions one instance encloses: not gaps between instances, unlabeled or the border', () => {
    // Instance 1 has two holes; 5 inside 4 is an instance, not background; the gap between 2 and 3 has two instances
    // around it; the one in 8 touches unlabeled voxels. An 8-connected ring encloses too (background is 4-connected).
    expect(countHoles(labels2D)).toBe(2);
    expect(countHoles(grid('....', '.77.', '7..7', '7..7', '.77.'))).toBe(1);
    expect(countHoles(grid('.77.', '7..7', '.77.'))).toBe(1);
    expect(countHoles(grid('7.7', '.7.'))).toBe(0);
  });

  it('counts holes in 3D: a cavity is one, a ring (open above and below) is none', () => {
    const [d, h, w] = [5, 5, 10];
    const data = new Int32Array(d * h * w);
    const at = (z: number, y: number, x: number) => (z * h + y) * w + x;
    for (let z = 1; z <= 3; z++) for (let y = 1; y <= 3; y++) for (let x = 1; x <= 3; x++) data[at(z, y, x)] = 1;
    data[at(2, 2, 2)] = 0;
    for (let y = 1; y <= 3; y++) for (let x = 5; x <= 7; x++) data[at(2, y, x)] = 2;
    data[at(2, 2, 6)] = 0;
    expect(countHoles({ data, shape: [d, h, w], spacing: [1, 1, 1] })).toBe(1);
  });

  it('counts instances under a size, once however many layers hold them', () => {
    // Sizes: 1: 13, 2: 5, 3: 5, 4: 6, 5: 1, 6: 1, 8: 5.
    expect(countSmallInstances(labels2D, 6)).toBe(5);
    expect(countSmallInstances(labels2D, 1)).toBe(0);
    // Instance 2 covers pixels 1 to 3, in layer 1 where it overlaps 1.
    expect(countSmallInstances({ data: Int32Array.from([1, 1, 2, 2, 0, 2, 0, 0]), shape: [4], spacing: [1], layers: 2 }, 3)).toBe(1);
  });

  it('dataWarnings: one line per kind of problem and split, with counts and the first three images; none for clean data', () => {
    const image = { data: new Float32Array(90), shape: [1, 9, 10], spacing: [1, 1] };
    const sample = (name: string, labels: ReturnType<typeof grid>) => ({ name, image, labels });
    const bad = ['a', 'b', 'c', 'd'].map((name) => sample(name, labels2D));
    expect(dataWarnings({ train: bad, val: [bad[0]] }, { minObjectSize: 6 })).toEqual([
      '4 training mask(s) hold 8 hole(s), background enclosed by one instance (a, b, c, ...): the model learns the holes; fill them unless the objects are rings',
      "4 training mask(s) hold 20 instance(s) smaller than the model's minObjectSize of 6 pixels (a, b, c, ...): prediction removes such objects",
      '1 validation mask(s) hold 2 hole(s), background enclosed by one instance (a): the model learns the holes; fill them unless the objects are rings',
      "1 validation mask(s) hold 5 instance(s) smaller than the model's minObjectSize of 6 pixels (a): prediction removes such objects",
    ]);
    expect(dataWarnings({ train: bad, val: [] }, { minSize: 2 })[1]).toBe(
      "4 training mask(s) hold 8 instance(s) smaller than the model's minSize of 2 pixels (a, b, c, ...): prediction drops such instances",
    );
    // A model without a minimum size (centerunet) gets no size warning.
    expect(dataWarnings({ train: bad, val: [] }, { scoreThreshold: 0.3 })).toHaveLength(1);

    const blobs = [1, 2, 3].map((seed) => {
      const s = syntheticBlobs({ height: 48, width: 48, blobs: 4, radius: [4, 7], seed });
      return { name: `blobs${seed}`, image: { data: s.image, shape: [1, 48, 48], spacing: [1, 1] }, labels: { data: s.labels, shape: [48, 48], spacing: [1, 1] } };
    });
    expect(dataWarnings({ train: blobs, val: blobs }, { minObjectSize: 37 })).toEqual([]);
  });
});
