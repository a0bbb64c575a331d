// Malformed and unusual image files, made here byte by byte, through the readers and through `wgseg predict`: each bad
// file is one line naming it and what is wrong, nothing crashes, the good images are still written (and nothing for
// the bad ones), --strict writes nothing. 16-bit signed, 64-bit float and 1-pixel images are legitimate: read as they are.
import { copyFileSync, mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { encode as encodePng } from 'fast-png';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadImageFile, loadSplit } from '../src/train/dataset-node.ts';
import { DataError, readLabels } from '../src/train/io-node.ts';
import { dataset, runMain, tinyRegistry } from './support/cli.ts';
import { tiffFixture } from './support/tiff.ts';

const made: string[] = [];
const tmp = () => {
  made.push(mkdtempSync(join(tmpdir(), 'wgseg-hostile-')));
  return made.at(-1)!;
};
afterAll(() => made.forEach((dir) => rmSync(dir, { recursive: true, force: true })));

/** A little-endian TIFF with entries of its first IFD rewritten (tag: value), as a lying or careless writer leaves them. */
function withTags(tiff: Uint8Array, tags: Record<number, number>): Uint8Array {
  const bytes = tiff.slice();
  const view = new DataView(bytes.buffer);
  const ifd = view.getUint32(4, true);
  for (let k = 0; k < view.getUint16(ifd, true); k++) {
    const at = ifd + 2 + 12 * k;
    const value = tags[view.getUint16(at, true)];
    if (value === undefined) continue;
    if (view.getUint16(at + 2, true) === 3) view.setUint16(at + 8, value, true);
    else view.setUint32(at + 8, value, true);
  }
  return bytes;
}

/** Where a PNG's first IDAT chunk starts (its length field) and how many data bytes it holds. */
function idat(png: Uint8Array): { at: number; length: number } {
  const view = new DataView(png.buffer, png.byteOffset);
  for (let at = 8; at < png.length; at += 12 + view.getUint32(at)) {
    if (String.fromCharCode(...png.subarray(at + 4, at + 8)) === 'IDAT') return { at, length: view.getUint32(at) };
  }
  throw new Error('no IDAT');
}

const ramp = Uint16Array.from({ length: 64 }, (_, i) => i);
const tiff8x8 = tiffFixture([ramp], { width: 8, height: 8 });
const png = encodePng({ data: Uint8Array.from({ length: 64 }, (_, i) => 4 * i), width: 8, height: 8, channels: 1, depth: 8 });
const { at: idatAt, length: idatLength } = idat(png);
const brokenCrc = png.slice();
brokenCrc[idatAt + 8 + idatLength] ^= 0xff;
const int16 = Int16Array.from({ length: 64 }, (_, i) => 100 * i - 3000);
const float64 = Float64Array.from({ length: 64 }, (_, i) => i / 4 - 5.5);

/** The bad files, each with the reason its line gives after the path. */
const bad: Record<string, { bytes: Uint8Array; reason: string | RegExp }> = {
  'cut.tif': { bytes: tiff8x8.slice(0, 100), reason: 'unreadable (truncated or corrupt TIFF: Offset is outside the bounds of the DataView)' },
  // A file whose pixels were cut off after the header: the one strip is said to run past the end.
  'cut-strip.tif': { bytes: withTags(tiff8x8, { 279: 4096 }), reason: `truncated: the image data runs to byte 4104, the file has ${tiff8x8.length}` },
  'empty.tif': { bytes: new Uint8Array(0), reason: 'empty file' },
  'gif.tif': { bytes: new TextEncoder().encode('GIF89a\x08\x00\x08\x00'), reason: 'not a TIFF or PNG file' },
  'liar.tif': {
    bytes: withTags(tiff8x8, { 256: 64, 257: 64, 278: 64 }),
    reason: 'the header says 64x64 at 16 bits per pixel (8192 bytes), the image data holds 128 bytes',
  },
  'pages.tif': { bytes: tiffFixture([ramp, ramp, ramp], { width: 8, height: 8 }), reason: 'image is 3D (3x8x8), expected 2D' },
  'crc.png': { bytes: brokenCrc, reason: /^unreadable \(truncated or corrupt PNG: CRC mismatch for chunk IDAT\. Expected \d+, found \d+\)$/ },
  'cut-idat.png': {
    bytes: png.slice(0, idatAt + 8 + Math.floor(idatLength / 2)),
    reason: /^unreadable \(truncated or corrupt PNG: Error while decompressing the data: .+\)$/,
  },
};

/** Unusual but legitimate files, with what they hold. */
const good: Record<string, { bytes: Uint8Array; shape: number[]; values: ArrayLike<number> }> = {
  'int16.tif': { bytes: tiffFixture([int16], { width: 8, height: 8 }), shape: [1, 8, 8], values: int16 },
  // 64-bit samples written as pairs of 32-bit words, then declared as what they are.
  'float64.tif': {
    bytes: withTags(tiffFixture([new Uint32Array(float64.buffer)], { width: 16, height: 8 }), { 256: 8, 258: 64, 339: 3 }),
    shape: [1, 8, 8], values: float64,
  },
  'one-pixel.tif': { bytes: tiffFixture([new Uint16Array([7])], { width: 1, height: 1 }), shape: [1, 1, 1], values: [7] },
};

function hostileFolder(): string {
  const dir = join(tmp(), 'input');
  mkdirSync(dir);
  for (const [file, { bytes }] of [...Object.entries(bad), ...Object.entries(good)]) writeFileSync(join(dir, file), bytes);
  return dir;
}

/** Checks that `line` is `path: reason`. */
function expectLine(line: string, path: string, reason: string | RegExp): void {
  expect(line.startsWith(`${path}: `), line).toBe(true);
  const got = line.slice(path.length + 2);
  if (typeof reason === 'string') expect(got).toBe(reason);
  else expect(got).toMatch(reason);
}

describe('the readers on hostile files', () => {
  it('refuse each bad file with one line naming it and what is wrong, and read the unusual good ones exactly', async () => {
    const dir = hostileFolder();
    for (const [file, { reason }] of Object.entries(bad)) {
      const path = join(dir, file);
      const err = await loadImageFile(file, path, { ndim: 2 }).then(() => null, (e: Error) => e);
      expect(err, file).toBeInstanceOf(DataError);
      expectLine(err!.message, path, reason);
    }
    for (const [file, { shape, values }] of Object.entries(good)) {
      const { image } = await loadImageFile(file, join(dir, file), { ndim: 2 });
      expect(image.shape, file).toEqual(shape);
      expect(Array.from(image.data), file).toEqual(Array.from(Float32Array.from(values)));
    }
  });

  it('a training folder with a bad image is refused naming the file', async () => {
    const dir = await dataset(tmp(), { train: 2 });
    writeFileSync(join(dir, 'train', 'images', 'img1.png'), bad['crc.png'].bytes);
    await expect(loadSplit(dir, 'train', { ndim: 2 })).rejects.toThrow(`${join(dir, 'train', 'images', 'img1.png')}: unreadable (truncated or corrupt PNG: CRC mismatch`);
  });
});

describe('wgseg predict on a folder of hostile files', () => {
  let runDir: string;
  let valid: string;
  beforeAll(async () => {
    const data = await dataset(tmp(), { train: 2, val: 1, test: 1 });
    valid = join(data, 'test', 'images', 'img0.png');
    const config = join(tmp(), 'config.json');
    writeFileSync(config, JSON.stringify({ train: { logEvery: 1, validateEvery: 1 }, data: { patchSize: [16, 16] } }));
    runDir = join(tmp(), 'run');
    const r = await runMain(['train', '--model', 'tiny', '--data', data, '--out', runDir, '--config', config, '--steps', '1', '--no-tune'], tinyRegistry);
    expect(r.code).toBe(0);
  });

  it('names each bad file once as it goes and once in the summary, writes the valid and legitimate images only', async () => {
    const input = hostileFolder();
    copyFileSync(valid, join(input, 'valid.png'));
    const out = join(tmp(), 'labels');
    const r = await runMain(['predict', '--model', runDir, '--input', input, '--out', out], tinyRegistry);
    expect(r.code).toBe(1);
    const lines = r.stderr.trimEnd().split('\n');
    const badFiles = Object.keys(bad).sort();
    // In the folder's (sorted) order: one line per bad file, the count, the bad files again.
    const asItGoes = lines.slice(0, badFiles.length);
    const summary = lines.slice(badFiles.length + 1);
    expect(lines[badFiles.length]).toBe(
      `wgseg predict: ${badFiles.length} of ${badFiles.length + 4} image(s) failed (4 written); fix them and rerun with --skip-existing to predict only those:`,
    );
    expect(summary).toEqual(asItGoes.map((line) => line.replace(/^wgseg predict: /, '  ')));
    badFiles.forEach((file, k) => expectLine(asItGoes[k].replace(/^wgseg predict: /, ''), join(input, file), bad[file].reason));
    expect(r.stderr).not.toMatch(/\n\s+at |WGSEG_DEBUG/);
    expect(JSON.parse(r.stdout)).toMatchObject({ images: 4, skipped: 0, failed: badFiles.length, out });
    expect(readdirSync(out).sort()).toEqual(['float64.tif', 'int16.tif', 'one-pixel.tif', 'valid.tif']);
    for (const [file, { shape }] of Object.entries(good)) expect((await readLabels(join(out, file))).shape).toEqual(shape.slice(1));
  });

  it('with --strict, the first bad file is the one line, exit 2, and nothing is written', async () => {
    const input = hostileFolder();
    copyFileSync(valid, join(input, 'valid.png'));
    const parent = tmp();
    const r = await runMain(['predict', '--model', runDir, '--input', input, '--out', join(parent, 'labels'), '--strict'], tinyRegistry);
    expect(r).toMatchObject({ code: 2, stdout: '' });
    expect(r.stderr).toMatch(new RegExp(`^wgseg predict: ${join(input, 'crc.png')}: unreadable \\(truncated or corrupt PNG: CRC mismatch [^\n]*\\)\n$`));
    expect(readdirSync(parent)).toEqual([]);
  });
});
