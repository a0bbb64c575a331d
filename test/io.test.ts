// Image and label files: every TIFF flavour microscopes write (compressions, sample types, stacks, ImageJ and OME
// metadata) and PNG, read into volumes; label TIFFs written and read back; every bad file named in a one-line error.
// Fixtures come from three encoders: our label writer, geotiff's writer and test/support/tiff.ts.
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { readFile, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { decode as decodePng, encode as encodePng } from 'fast-png';
import { fromArrayBuffer, writeArrayBuffer } from 'geotiff';
import { afterAll, describe, expect, it } from 'vitest';
import { DataError, readImage, readLabels, writeLabels, writePng } from '../src/train/io-node.ts';
import { encodeLabelTiff, parseImageJDescription, parseOmePixels } from '../src/train/tiff-node.ts';
import { type Samples, tiffFixture } from './support/tiff.ts';

const dir = mkdtempSync(join(tmpdir(), 'wgseg-io-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
let count = 0;
async function file(bytes: Uint8Array | ArrayBuffer, ext = 'tif'): Promise<string> {
  const path = join(dir, `f${count++}.${ext}`);
  await writeFile(path, new Uint8Array(bytes));
  return path;
}
function ramp(n: number): number[];
function ramp<T>(n: number, f: (i: number) => T): T[];
function ramp(n: number, f: (i: number) => unknown = (i) => i) {
  return Array.from({ length: n }, (_, i) => f(i));
}

describe('TIFF reading', () => {
  // 4x3 pages; values chosen to use each type's range (negative, > 255, > 65535, fractional).
  const types: [string, (n: number) => Samples, (i: number) => number][] = [
    ['uint8', (n) => new Uint8Array(n), (i) => i * 20],
    ['int8', (n) => new Int8Array(n), (i) => i * 10 - 60],
    ['uint16', (n) => new Uint16Array(n), (i) => i * 5000],
    ['int16', (n) => new Int16Array(n), (i) => i * 3000 - 20000],
    ['uint32', (n) => new Uint32Array(n), (i) => i * 300000],
    ['int32', (n) => new Int32Array(n), (i) => i * 300000 - 2000000],
    ['float32', (n) => new Float32Array(n), (i) => i * 0.25 - 1.5],
  ];
  for (const [name, make, value] of types) {
    for (const compression of ['none', 'lzw', 'deflate'] as const) {
      it(`${name}, ${compression}`, async () => {
        const page = make(12);
        page.set(ramp(12, value));
        const image = await readImage(await file(tiffFixture([page], { width: 4, height: 3, compression })));
        expect(image.shape).toEqual([1, 3, 4]);
        expect(Array.from(image.data)).toEqual(ramp(12, value));
        expect(image.spacing).toEqual([1, 1]);
      });
    }
  }

  it('undoes horizontal differencing, and reads big-endian files', async () => {
    const page = Uint16Array.from(ramp(12, (i) => (i * 7919) % 60000));
    for (const options of [{ predictor: true, compression: 'deflate' as const }, { predictor: true, compression: 'lzw' as const }, { bigEndian: true }]) {
      const image = await readImage(await file(tiffFixture([page], { width: 4, height: 3, ...options })));
      expect(Array.from(image.data)).toEqual(Array.from(page));
    }
  });

  it("reads what geotiff's own writer writes", async () => {
    for (const values of [Uint8Array.from([1, 2, 3, 250, 0, 7]), Uint16Array.from([1, 2, 70000 % 65536, 3, 65535, 0]), Float32Array.from([1.5, -2, 3, 4, 5, 6])]) {
      const image = await readImage(await file(writeArrayBuffer(values, { width: 3, height: 2 } as Parameters<typeof writeArrayBuffer>[1])));
      expect(image.shape).toEqual([1, 2, 3]);
      expect(Array.from(image.data)).toEqual(Array.from(values));
    }
  });

  it('reads RGB as channels [3, H, W]', async () => {
    // Pixel i is (i, 100 + i, 200 + i).
    const rgb = Uint8Array.from(ramp(6 * 3, (k) => 100 * (k % 3) + Math.floor(k / 3)));
    const image = await readImage(await file(tiffFixture([rgb], { width: 3, height: 2, samples: 3, compression: 'lzw' })));
    expect(image.shape).toEqual([3, 2, 3]);
    expect(Array.from(image.data)).toEqual([...ramp(6), ...ramp(6, (i) => 100 + i), ...ramp(6, (i) => 200 + i)]);
  });

  const stack = (pages: number, plane = 6) => ramp(pages, (p) => Uint16Array.from(ramp(plane, (i) => 100 * p + i)));

  it('reads a multi-page stack without metadata as 3D, spacing 1, skipping reduced-resolution pages', async () => {
    const pages = stack(4);
    const image = await readImage(await file(tiffFixture(pages, { width: 3, height: 2, subfileTypes: [0, 0, 0, 1] })));
    expect(image.shape).toEqual([1, 3, 2, 3]);
    expect(Array.from(image.data)).toEqual(pages.slice(0, 3).flatMap((p) => Array.from(p)));
    expect(image.spacing).toEqual([1, 1, 1]);
  });

  it("reads an ImageJ hyperstack (channels fastest) with its z spacing and X/YResolution in ImageJ's unit", async () => {
    // 2 channels x 3 slices: page = c + 2z, so page 100p + i lands at channel p % 2, slice p / 2.
    const description = 'ImageJ=1.54f\nimages=6\nchannels=2\nslices=3\nhyperstack=true\nmode=composite\nunit=nm\nloop=false\nspacing=500';
    const image = await readImage(await file(tiffFixture(stack(6), { width: 3, height: 2, description, resolution: [4, 5, 1] })));
    expect(image.shape).toEqual([2, 3, 2, 3]);
    const expected = [0, 1].flatMap((c) => [0, 1, 2].flatMap((z) => ramp(6, (i) => 100 * (c + 2 * z) + i)));
    expect(Array.from(image.data)).toEqual(expected);
    // 500 nm = 0.5 µm; 5 px/nm in y = 0.2 nm = 2e-4 µm, 4 px/nm in x = 2.5e-4 µm.
    expect(image.spacing[0]).toBeCloseTo(0.5, 12);
    expect(image.spacing[1]).toBeCloseTo(2e-4, 12);
    expect(image.spacing[2]).toBeCloseTo(2.5e-4, 12);
  });

  it('reads an ImageJ 2D multi-channel image as [C, H, W]', async () => {
    const description = 'ImageJ=1.54f\nimages=3\nchannels=3\nmode=composite\n';
    const image = await readImage(await file(tiffFixture(stack(3), { width: 3, height: 2, description })));
    expect(image.shape).toEqual([3, 2, 3]);
    expect(image.spacing).toEqual([1, 1]);
  });

  it('reads an OME-TIFF in its DimensionOrder with PhysicalSizeX/Y/Z and their units', async () => {
    // XYZCT: z fastest, so page = z + 3c.
    const description =
      '<?xml version="1.0" encoding="UTF-8"?><OME xmlns="http://www.openmicroscopy.org/Schemas/OME/2016-06"><Image ID="Image:0">' +
      '<Pixels ID="Pixels:0" DimensionOrder="XYZCT" Type="uint16" SizeX="3" SizeY="2" SizeZ="3" SizeC="2" SizeT="1" ' +
      'PhysicalSizeX="0.25" PhysicalSizeY="300" PhysicalSizeYUnit="nm" PhysicalSizeZ="0.002" PhysicalSizeZUnit="mm">' +
      '<Channel ID="Channel:0:0" SamplesPerPixel="1"/><Channel ID="Channel:0:1" SamplesPerPixel="1"/></Pixels></Image></OME>';
    const image = await readImage(await file(tiffFixture(stack(6), { width: 3, height: 2, description, compression: 'deflate' })));
    expect(image.shape).toEqual([2, 3, 2, 3]);
    const expected = [0, 1].flatMap((c) => [0, 1, 2].flatMap((z) => ramp(6, (i) => 100 * (z + 3 * c) + i)));
    expect(Array.from(image.data)).toEqual(expected);
    expect(image.spacing[0]).toBeCloseTo(2, 12);
    expect(image.spacing[1]).toBeCloseTo(0.3, 12);
    expect(image.spacing[2]).toBeCloseTo(0.25, 12);
  });

  it('takes x/y spacing from X/YResolution in cm, and ignores inch (desktop dpi)', async () => {
    const page = [new Uint8Array(6)];
    const cm = await readImage(await file(tiffFixture(page, { width: 3, height: 2, resolution: [10000, 5000, 3] })));
    expect(cm.spacing).toEqual([2, 1]);
    const inch = await readImage(await file(tiffFixture(page, { width: 3, height: 2, resolution: [72, 72, 2] })));
    expect(inch.spacing).toEqual([1, 1]);
  });

  it('parses ImageJ descriptions and OME-XML Pixels attributes', () => {
    expect(parseImageJDescription('ImageJ=1.11a\nimages=4\nslices=4\nunit=\\u00B5m\nspacing=2.5\n')).toEqual({
      ImageJ: '1.11a', images: '4', slices: '4', unit: '\\u00B5m', spacing: '2.5',
    });
    expect(parseImageJDescription('<OME/>')).toBeNull();
    expect(parseOmePixels('<ome:OME><ome:Image><ome:Pixels SizeZ="5" PhysicalSizeZ = "1.5" DimensionOrder="XYCZT"><ome:Channel SamplesPerPixel="3"/>')).toEqual({
      SizeZ: '5', PhysicalSizeZ: '1.5', DimensionOrder: 'XYCZT', SamplesPerPixel: '3',
    });
    expect(parseOmePixels('ImageJ=1.11a')).toBeNull();
  });

  it('rejects time series and metadata that disagree with the pages, naming the file', async () => {
    const frames = await file(tiffFixture(stack(2), { width: 3, height: 2, description: 'ImageJ=1.54f\nimages=2\nframes=2\n' }));
    await expect(readImage(frames)).rejects.toThrow(`${frames}: 2 time points; time series are not supported (make them z-slices if they are)`);
    const short = await file(tiffFixture(stack(2), { width: 3, height: 2, description: 'ImageJ=1.54f\nimages=3\nslices=3\n' }));
    await expect(readImage(short)).rejects.toThrow(`${short}: ImageJ says channels=1 slices=3 frames=1, but the file has 2 pages`);
  });
});

describe('PNG reading', () => {
  it('reads 8- and 16-bit grey, RGB and RGBA (channels first)', async () => {
    const grey16 = Uint16Array.from([0, 1, 65535, 300, 40000, 7]);
    expect(Array.from((await readImage(await file(encodePng({ width: 3, height: 2, data: grey16, depth: 16, channels: 1 }), 'png'))).data)).toEqual(Array.from(grey16));
    const rgba = Uint8Array.from(ramp(24, (k) => 50 * (k % 4) + Math.floor(k / 4)));
    const image = await readImage(await file(encodePng({ width: 3, height: 2, data: rgba, depth: 8, channels: 4 }), 'png'));
    expect(image.shape).toEqual([4, 2, 3]);
    expect(Array.from(image.data)).toEqual([0, 1, 2, 3].flatMap((c) => ramp(6, (i) => 50 * c + i)));
    expect(image.spacing).toEqual([1, 1]);
  });

  it('unpacks 1-bit masks whose rows end mid-byte', async () => {
    // 10 px wide: each row is 2 bytes, the last 6 bits padding. Row 0 = 1010101010, row 1 = 0000000011.
    const packed = Uint8Array.from([0b10101010, 0b10000000, 0b00000000, 0b11000000]);
    const labels = await readLabels(await file(encodePng({ width: 10, height: 2, data: packed, depth: 1, channels: 1 }), 'png'));
    expect(Array.from(labels.data)).toEqual([1, 0, 1, 0, 1, 0, 1, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 1]);
  });

  it('reads a palette PNG as colours for an image and as indices for a mask', async () => {
    const path = await file(encodePng({ width: 3, height: 1, data: Uint8Array.from([0, 2, 1]), depth: 8, channels: 1, palette: [[0, 0, 0], [255, 0, 0], [0, 255, 0]] }), 'png');
    const image = await readImage(path);
    expect(image.shape).toEqual([3, 1, 3]);
    expect(Array.from(image.data)).toEqual([0, 0, 255, 0, 255, 0, 0, 0, 0]);
    expect(Array.from((await readLabels(path)).data)).toEqual([0, 2, 1]);
  });
});

describe('label TIFF writing', () => {
  async function tags(path: string) {
    const tiff = await fromArrayBuffer(new Uint8Array(await readFile(path)).buffer);
    const pages = [];
    for (let i = 0; i < (await tiff.getImageCount()); i++) {
      const page = await tiff.getImage(i);
      const fd = page.getFileDirectory();
      pages.push({
        bits: page.getBitsPerSample(), format: page.getSampleFormat(), strip: Number(((await fd.loadValue('StripOffsets')) as ArrayLike<number>)[0]),
        description: fd.hasTag('ImageDescription') ? String(await fd.loadValue('ImageDescription')).replace(/\0$/, '') : undefined,
      });
    }
    return pages;
  }

  it('round-trips 2D labels as uint16 with the pixel size', async () => {
    const labels = { data: Int32Array.from(ramp(20, (i) => (i * 3001) % 65536)), shape: [4, 5], spacing: [0.3, 0.65] };
    const path = join(dir, 'labels2d.tif');
    await writeLabels(path, labels);
    expect(await readLabels(path)).toEqual(labels);
    const [page, ...rest] = await tags(path);
    expect(rest).toEqual([]);
    expect(page).toMatchObject({ bits: 16, format: 1, description: 'ImageJ=1.11a\nunit=micron\n' });
  });

  it("round-trips 3D labels as an ImageJ stack: one page per slice, pixels contiguous as ImageJ reads them, z spacing in the description", async () => {
    const [d, h, w] = [4, 3, 5];
    const labels = { data: Int32Array.from(ramp(d * h * w, (i) => i % 7)), shape: [d, h, w], spacing: [2.5, 0.3, 0.1625] };
    const path = join(dir, 'labels3d.tif');
    await writeLabels(path, labels);
    expect(await readLabels(path)).toEqual(labels);
    const pages = await tags(path);
    expect(pages.map((p) => p.strip)).toEqual(ramp(d, (z) => 8 + z * h * w * 2));
    expect(pages[0].description).toBe('ImageJ=1.11a\nimages=4\nslices=4\nunit=micron\nspacing=2.5\nloop=false\n');
    expect(pages.slice(1).every((p) => p.description === undefined && p.bits === 16)).toBe(true);
  });

  it('writes int32 when labels exceed 65535 or include -1 (unlabeled)', async () => {
    for (const values of [[0, 1, 65535, 65536, 100000, 2147483647], [0, -1, 3, 3, 0, -1]]) {
      const labels = { data: Int32Array.from(values), shape: [2, 3], spacing: [1, 1] };
      const path = join(dir, 'labels32.tif');
      await writeLabels(path, labels);
      expect(await readLabels(path)).toEqual(labels);
      expect((await tags(path))[0]).toMatchObject({ bits: 32, format: 2 });
    }
  });

  it('writes atomically (no temporary file left beside the output) and checks the shape', async () => {
    const sub = mkdtempSync(join(dir, 'atomic-'));
    await writeLabels(join(sub, 'a.tif'), { data: new Int32Array(6), shape: [2, 3], spacing: [1, 1] });
    await writePng(join(sub, 'a.png'), { data: Uint8Array.from(ramp(18, (i) => i * 10)), width: 3, height: 2, channels: 3 });
    expect(readdirSync(sub).sort()).toEqual(['a.png', 'a.tif']);
    const png = decodePng(await readFile(join(sub, 'a.png')));
    expect([png.width, png.height, png.channels, png.depth]).toEqual([3, 2, 3, 8]);
    expect(Array.from(png.data)).toEqual(ramp(18, (i) => i * 10));
    expect(() => encodeLabelTiff({ data: new Int32Array(5), shape: [2, 3], spacing: [1, 1] })).toThrow(
      'encodeLabelTiff: shape [2,3] × 1 layer(s) does not describe 5 labels as [(D), H, W]',
    );
  });
});

describe('bad files', () => {
  const float = (values: number[]) => tiffFixture([Float32Array.from(values)], { width: 3, height: 2 });
  const cases: [string, () => Promise<string>, (path: string) => string][] = [
    ['missing', async () => join(dir, 'nope.tif'), (p) => `${p}: cannot read (ENOENT)`],
    ['empty', () => file(new Uint8Array(0)), (p) => `${p}: empty file`],
    ['not an image', () => file(new TextEncoder().encode('hello, world')), (p) => `${p}: not a TIFF or PNG file`],
    ['truncated TIFF', () => file(float([1, 2, 3, 4, 5, 6]).slice(0, 40)), (p) => `${p}: unreadable (`],
    ['non-integer mask', () => file(float([0, 1, 1, 2, 2.5, 0])), (p) => `${p}: mask is not integer labels (2.5 at y=1 x=1)`],
    ['negative mask', () => file(tiffFixture([Int16Array.from([0, -1, 0, -2, 1, 1])], { width: 3, height: 2 })), (p) => `${p}: mask has negative label -2 at y=1 x=0 (only -1, unlabeled, is allowed)`],
    ['too large for int32', () => file(tiffFixture([Uint32Array.from([0, 1, 2 ** 31, 0, 0, 0])], { width: 3, height: 2 })), (p) => `${p}: label 2147483648 at y=0 x=2 exceeds int32`],
    ['RGB mask', () => file(tiffFixture([new Uint8Array(18)], { width: 3, height: 2, samples: 3 })), (p) => `${p}: mask has 3 channels; expected one channel of integer labels (or a label stack: ImageJ channels or pages)`],
  ];
  for (const [name, make, message] of cases) {
    it(`${name}: a one-line DataError naming the file`, async () => {
      const path = await make();
      const error = await readLabels(path).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(DataError);
      expect((error as Error).message.startsWith(message(path))).toBe(true);
      expect((error as Error).message).not.toContain('\n');
    });
  }

  it('accepts -1 (unlabeled) and integer-valued float masks', async () => {
    expect(Array.from((await readLabels(await file(float([0, -1, 1, 2, 3, 0])))).data)).toEqual([0, -1, 1, 2, 3, 0]);
  });
});
