// Dataset folders: DIR/{train,val,test}/{images,masks}/NAME.(tif|png) load as named, sorted samples; every way a
// folder can be wrong stops the load with a one-line DataError naming the file; holdOut is deterministic.
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { encode as encodePng } from 'fast-png';
import { afterAll, describe, expect, it } from 'vitest';
import { hasSplit, loadImageFolder, loadLabelPairs, loadSplit } from '../src/train/dataset-node.ts';
import { DataError } from '../src/train/io-node.ts';
import { encodeLabelTiff } from '../src/train/tiff-node.ts';
import { holdOut } from '../src/train/split.ts';
import { tiffFixture } from './support/tiff.ts';

const root = mkdtempSync(join(tmpdir(), 'wgseg-dataset-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));

/** A uint16 TIFF of `shape` ([H, W] or [D, H, W]) whose voxels count up from `start`, with the given spacing. */
const tif = (shape: number[], start = 0, spacing = shape.map(() => 1)) =>
  encodeLabelTiff({ data: Int32Array.from({ length: shape.reduce((a, b) => a * b) }, (_, i) => (start + i) % 5), shape, spacing });

let count = 0;
/** Writes `files` ({'train/images/a.tif': bytes}) under a fresh dataset folder and returns it. */
function dataset(files: Record<string, Uint8Array | string>): string {
  const dir = join(root, `d${count++}`);
  for (const [path, bytes] of Object.entries(files)) {
    const full = join(dir, path);
    mkdirSync(join(full, '..'), { recursive: true });
    if (typeof bytes === 'string') mkdirSync(full, { recursive: true });
    else writeFileSync(full, bytes);
  }
  return dir;
}

const good = () => ({
  'train/images/b.tif': tif([4, 6], 0, [0.5, 0.25]),
  'train/masks/b.tif': tif([4, 6], 1),
  'train/images/a.png': encodePng({ width: 6, height: 4, data: new Uint8Array(72), depth: 8, channels: 3 }),
  'train/masks/a.png': encodePng({ width: 6, height: 4, data: new Uint8Array(24).fill(2), depth: 8, channels: 1 }),
  'train/images/.DS_Store': new Uint8Array(3),
  'train/images/notes.txt': new Uint8Array(3),
});

describe('loadSplit', () => {
  it('pairs images and masks by name, sorted, masks taking the image spacing; skips hidden and other files', async () => {
    const dir = dataset(good());
    const samples = await loadSplit(dir, 'train', { ndim: 2 });
    expect(samples.map((s) => s.name)).toEqual(['a', 'b']);
    expect(samples[0].image.shape).toEqual([3, 4, 6]);
    expect(Array.from(samples[0].labels!.data)).toEqual(new Array(24).fill(2));
    expect(samples[1].image.spacing).toEqual([0.5, 0.25]);
    expect(samples[1].labels).toMatchObject({ shape: [4, 6], spacing: [0.5, 0.25] });
    expect(samples[1].labels!.data[0]).toBe(1);
    expect(await hasSplit(dir, 'train')).toBe(true);
    expect(await hasSplit(dir, 'val')).toBe(false);
  });

  it('loads 3D stacks', async () => {
    const dir = dataset({ 'val/images/s.tif': tif([3, 4, 5], 0, [2, 0.5, 0.5]), 'val/masks/s.tif': tif([3, 4, 5]) });
    const [sample] = await loadSplit(dir, 'val', { ndim: 3 });
    expect(sample.image.shape).toEqual([1, 3, 4, 5]);
    expect(sample.labels).toMatchObject({ shape: [3, 4, 5], spacing: [2, 0.5, 0.5] });
  });

  it('loads images without masks when masks are optional, and image folders for prediction', async () => {
    const dir = dataset({ 'test/images/x.tif': tif([4, 6]) });
    expect((await loadSplit(dir, 'test', { masks: 'optional' })).map((s) => [s.name, s.labels])).toEqual([['x', null]]);
    expect((await loadImageFolder(join(dir, 'test/images'))).map((s) => s.image.shape)).toEqual([[1, 4, 6]]);
  });

  // Each case: the files, the split options, and the one-line message (relative paths resolved under the dataset).
  const cases: [string, Record<string, Uint8Array | string>, object, string][] = [
    ['missing split folder', { 'train/images/a.tif': tif([4, 6]) }, {}, 'val: missing folder'],
    ['missing masks folder', { 'val/images/a.tif': tif([4, 6]) }, {}, 'val/masks: missing folder'],
    ['empty images folder', { 'val/images': '', 'val/masks': '' }, {}, 'val/images: no images (.tif, .tiff or .png)'],
    ['image without mask', { 'val/images/a.tif': tif([4, 6]), 'val/images/b.tif': tif([4, 6]), 'val/masks/a.tif': tif([4, 6]) }, {}, 'val/images/b.tif: no mask named b in {dir}/val/masks'],
    ['mask without image', { 'val/images/a.tif': tif([4, 6]), 'val/masks/a.tif': tif([4, 6]), 'val/masks/c.png': tif([4, 6]) }, {}, 'val/masks/c.png: no image named c in {dir}/val/images'],
    ['two files with one name', { 'val/images/a.tif': tif([4, 6]), 'val/images/a.png': tif([4, 6]), 'val/masks/a.tif': tif([4, 6]) }, {}, 'val/images/a.tif: {dir}/val/images/a.png has the same name'],
    ['size mismatch', { 'val/images/a.tif': tif([4, 6]), 'val/masks/a.tif': tif([4, 5]) }, {}, 'val/masks/a.tif: mask is 4x5, image {dir}/val/images/a.tif is 4x6'],
    ['3D mask for a 2D model', { 'val/images/a.tif': tif([4, 6]), 'val/masks/a.tif': tif([2, 4, 6]) }, { ndim: 2 }, 'val/masks/a.tif: mask is 3D (2x4x6), expected 2D'],
    ['2D mask for a 3D model', { 'val/images/a.tif': tif([2, 4, 6]), 'val/masks/a.tif': tif([4, 6]) }, { ndim: 3 }, 'val/masks/a.tif: mask is 2D (4x6), expected 3D'],
    ['2D image for a 3D model', { 'val/images/a.tif': tif([4, 6]), 'val/masks/a.tif': tif([4, 6]) }, { ndim: 3 }, 'val/images/a.tif: image is 2D (4x6), expected 3D'],
    ['empty mask file', { 'val/images/a.tif': tif([4, 6]), 'val/masks/a.tif': new Uint8Array(0) }, {}, 'val/masks/a.tif: empty file'],
    ['unreadable image', { 'val/images/a.tif': new TextEncoder().encode('not a tiff'), 'val/masks/a.tif': tif([4, 6]) }, {}, 'val/images/a.tif: not a TIFF or PNG file'],
    ['non-integer mask', { 'val/images/a.tif': tif([2, 3]), 'val/masks/a.tif': tiffFixture([Float32Array.from([0, 1, 0.5, 0, 0, 0])], { width: 3, height: 2 }) }, {}, 'val/masks/a.tif: mask is not integer labels (0.5 at y=0 x=2)'],
  ];
  for (const [name, files, options, message] of cases) {
    it(`${name}: DataError naming the file`, async () => {
      const dir = dataset(files);
      const error = await loadSplit(dir, 'val', options).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(DataError);
      expect((error as Error).message).toBe(`${dir}/${message.replaceAll('{dir}', dir)}`);
    });
  }
});

describe('loadLabelPairs', () => {
  it('pairs ground truth and predictions by name and checks them like masks', async () => {
    const dir = dataset({ 'gt/a.tif': tif([4, 6], 1), 'pred/a.tif': tif([4, 6], 2), 'gt/b.tif': tif([4, 6]), 'pred/b.tif': tif([3, 6]) });
    const error = await loadLabelPairs(join(dir, 'gt'), join(dir, 'pred')).catch((e: unknown) => e);
    expect((error as Error).message).toBe(`${dir}/pred/b.tif: mask is 3x6, ground truth ${dir}/gt/b.tif is 4x6`);
    rmSync(join(dir, 'gt/b.tif'));
    await expect(loadLabelPairs(join(dir, 'gt'), join(dir, 'pred'))).rejects.toThrow(`${dir}/pred/b.tif: no ground truth named b in ${dir}/gt`);
    rmSync(join(dir, 'pred/b.tif'));
    const [pair] = await loadLabelPairs(join(dir, 'gt'), join(dir, 'pred'), { ndim: 2 });
    expect([pair.name, pair.gt.data[0], pair.pred.data[0]]).toEqual(['a', 1, 2]);
  });
});

describe('holdOut', () => {
  const names = Array.from({ length: 10 }, (_, i) => `s${i}`);

  it('holds out round(fraction·n) samples, the same ones for the same seed, keeping the input order', () => {
    const { train, val } = holdOut(names, 0.2, 7);
    expect(val).toHaveLength(2);
    expect([...train, ...val].sort()).toEqual([...names].sort());
    expect(train).toEqual(names.filter((n) => !val.includes(n)));
    expect(val).toEqual(names.filter((n) => val.includes(n)));
    expect(holdOut(names, 0.2, 7)).toEqual({ train, val });
    const picks = new Set(Array.from({ length: 8 }, (_, seed) => holdOut(names, 0.2, seed).val.join()));
    expect(picks.size).toBeGreaterThan(4);
  });

  it('keeps at least one sample on each side, and rejects what cannot be split', () => {
    expect(holdOut(names, 0.01, 1).val).toHaveLength(1);
    expect(holdOut(names, 0.99, 1).train).toHaveLength(1);
    expect(() => holdOut(names, 0, 1)).toThrow('holdOut: fraction 0 is not in (0, 1)');
    expect(() => holdOut(['only'], 0.2, 1)).toThrow('holdOut: 1 sample(s); need at least 2 to hold one out');
  });
});
