// Image and label files (Node): TIFF and PNG in, label TIFFs and preview PNGs out. Every problem with a file surfaces
// as a DataError whose message is one line naming the file, which the CLI prints before exiting non-zero.
import { readFile } from 'node:fs/promises';
import { decode as decodePngBytes, encode as encodePngBytes } from 'fast-png';
import { writeFileAtomic } from './checkpoint-node.ts';
import { decodeTiff, encodeLabelTiff, type RawVolume } from './tiff-node.ts';
import type { ImageVolume, LabelVolume } from './volume.ts';

/** Bad input data (a file or folder that cannot be used as it is); the message is one line and names the file. */
export class DataError extends Error {
  override name = 'DataError';
}

/** What a decoded file is for: a palette PNG's indices are an image's colours but a mask's labels. */
type Purpose = 'image' | 'labels';

/** Unpacks 1/2/4-bit PNG samples (rows padded to whole bytes) to one byte each. */
function unpackBits(packed: ArrayLike<number>, samplesPerRow: number, rows: number, depth: number): Uint8Array {
  const out = new Uint8Array(samplesPerRow * rows);
  const rowBytes = Math.ceil((samplesPerRow * depth) / 8);
  const mask = (1 << depth) - 1;
  for (let r = 0; r < rows; r++) {
    for (let i = 0; i < samplesPerRow; i++) {
      const bit = i * depth;
      out[r * samplesPerRow + i] = (packed[r * rowBytes + (bit >> 3)] >> (8 - depth - (bit & 7))) & mask;
    }
  }
  return out;
}

function decodePng(bytes: Uint8Array, purpose: Purpose): RawVolume {
  const png = decodePngBytes(bytes);
  const { width, height, palette } = png;
  let channels = png.channels;
  let samples = png.depth < 8 ? unpackBits(png.data, width * channels, height, png.depth) : png.data;
  if (palette && purpose === 'image') {
    channels = palette[0].length;
    const rgb = new Uint8Array(width * height * channels);
    samples.forEach((index, i) => rgb.set(palette[index], i * channels));
    samples = rgb;
  }
  const plane = width * height;
  const data = new (samples.constructor as new (n: number) => Uint8Array | Uint16Array)(plane * channels);
  for (let i = 0; i < plane; i++) {
    for (let c = 0; c < channels; c++) data[c * plane + i] = samples[i * channels + c];
  }
  return { data, shape: [channels, height, width], spacing: [1, 1] };
}

const isPng = (b: Uint8Array) => b.length >= 8 && b[0] === 0x89 && b[1] === 0x50 && b[2] === 0x4e && b[3] === 0x47;
const isTiff = (b: Uint8Array) =>
  b.length >= 4 && ((b[0] === 0x49 && b[1] === 0x49 && b[3] === 0) || (b[0] === 0x4d && b[1] === 0x4d && b[2] === 0));

/** Reads and decodes a TIFF or PNG (told apart by content, not name); any failure is a DataError naming the file. */
async function readRaw(path: string, purpose: Purpose): Promise<RawVolume> {
  let bytes: Uint8Array;
  try {
    bytes = new Uint8Array(await readFile(path));
  } catch (e) {
    throw new DataError(`${path}: cannot read (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`);
  }
  if (bytes.length === 0) throw new DataError(`${path}: empty file`);
  if (!isPng(bytes) && !isTiff(bytes)) throw new DataError(`${path}: not a TIFF or PNG file`);
  let raw: RawVolume;
  try {
    raw = isPng(bytes) ? decodePng(bytes, purpose) : await decodeTiff(bytes, path);
  } catch (e) {
    const message = (e as Error).message.split('\n')[0];
    throw new DataError(message.startsWith(path) ? message : `${path}: unreadable (${message})`);
  }
  if (raw.data.length === 0) throw new DataError(`${path}: empty image (${raw.shape.slice(1).join('x')})`);
  return raw;
}

/** An image file as float32, channels first: [C, H, W] in 2D (RGB and ImageJ channels as C), [C, D, H, W] for stacks. */
export async function readImage(path: string): Promise<ImageVolume> {
  const raw = await readRaw(path, 'image');
  return { data: Float32Array.from(raw.data as ArrayLike<number>), shape: raw.shape, spacing: raw.spacing };
}

/** The (z, y, x) of flat index `i` in a [(D), H, W] volume, for messages. */
function position(i: number, shape: number[]): string {
  const axes = shape.length === 3 ? ['z', 'y', 'x'] : ['y', 'x'];
  const coords: string[] = [];
  for (let a = shape.length - 1; a >= 0; a--) {
    coords.unshift(`${axes[a]}=${i % shape[a]}`);
    i = Math.floor(i / shape[a]);
  }
  return coords.join(' ');
}

/**
 * A mask file as instance labels [(D), H, W]: one channel of integers, 0 background, -1 unlabeled, any integer type
 * or float holding integers. Anything else is a DataError naming the file and the first offending voxel.
 */
export async function readLabels(path: string): Promise<LabelVolume> {
  const raw = await readRaw(path, 'labels');
  const [channels, ...shape] = raw.shape;
  if (channels !== 1) throw new DataError(`${path}: mask has ${channels} channels; expected one channel of integer labels`);
  const data = new Int32Array(raw.data.length);
  for (let i = 0; i < data.length; i++) {
    const v = raw.data[i];
    if (!Number.isInteger(v)) throw new DataError(`${path}: mask is not integer labels (${v} at ${position(i, shape)})`);
    if (v < -1) throw new DataError(`${path}: mask has negative label ${v} at ${position(i, shape)} (only -1, unlabeled, is allowed)`);
    if (v > 0x7fffffff) throw new DataError(`${path}: label ${v} at ${position(i, shape)} exceeds int32`);
    data[i] = v;
  }
  return { data, shape, spacing: raw.spacing };
}

/** Writes instance labels as a TIFF Fiji and tifffile open (see encodeLabelTiff), atomically. */
export async function writeLabels(path: string, labels: LabelVolume): Promise<void> {
  await writeFileAtomic(path, encodeLabelTiff(labels));
}

/** An 8-bit preview: `data` is H·W·channels bytes, interleaved (grey, RGB or RGBA). */
export interface Preview {
  data: Uint8Array;
  width: number;
  height: number;
  channels: 1 | 3 | 4;
}

/** Writes an 8-bit grey/RGB(A) PNG, atomically. */
export async function writePng(path: string, image: Preview): Promise<void> {
  await writeFileAtomic(path, encodePngBytes({ ...image, depth: 8 }));
}
