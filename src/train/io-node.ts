// Image and label files (Node): TIFF and PNG in, label TIFFs and preview PNGs out. Every problem with a file surfaces
// as a DataError whose message is one line naming the file, which the CLI prints before exiting non-zero.
import { readFile } from 'node:fs/promises';
import { decode as decodePngBytes, encode as encodePngBytes } from 'fast-png';
import { writeFileAtomic } from './checkpoint-node.ts';
import { decodeTiff, encodeLabelTiff, type RawVolume } from './tiff-node.ts';
import { canonicalLayers, layersFromMasks } from './layers.ts';
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
  const png = decodePngBytes(bytes, { checkCrc: true });
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
  return { data, shape: [channels, height, width], spacing: [1, 1], samplesPerPixel: channels, zDeclared: false };
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
    const err = e as Error;
    if (err.message.startsWith(path)) throw new DataError(err.message.split('\n')[0]);
    // The decoders meet a file cut short as a RangeError, theirs or (PNG) their decompressor's as the cause.
    const cause = err.cause instanceof Error ? err.cause : null;
    const message = [err.message, cause?.message].filter(Boolean).join(' ').split('\n')[0];
    const corrupt = err instanceof RangeError || cause instanceof RangeError || message.startsWith('CRC mismatch');
    throw new DataError(`${path}: unreadable (${corrupt ? `truncated or corrupt ${isPng(bytes) ? 'PNG' : 'TIFF'}: ` : ''}${message})`);
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

/** Integer labels from raw samples: 0 background, -1 unlabeled; anything else is a DataError naming the voxel. */
function integerLabels(path: string, raw: RawVolume, shape: number[]): Int32Array {
  const data = new Int32Array(raw.data.length);
  const size = shape.reduce((a, b) => a * b, 1);
  for (let i = 0; i < data.length; i++) {
    const v = raw.data[i];
    const at = () => `${position(i % size, shape)}${data.length > size ? ` of layer ${Math.floor(i / size)}` : ''}`;
    if (!Number.isInteger(v)) throw new DataError(`${path}: mask is not integer labels (${v} at ${at()})`);
    if (v < -1) throw new DataError(`${path}: mask has negative label ${v} at ${at()} (only -1, unlabeled, is allowed)`);
    if (v > 0x7fffffff) throw new DataError(`${path}: label ${v} at ${at()} exceeds int32`);
    data[i] = v;
  }
  return data;
}

export interface ReadLabelsOptions {
  /** The spatial dimensions expected: with 2, the pages of a plain multi-page TIFF are layers, not z-slices. */
  ndim?: 2 | 3;
}

/**
 * A mask file as instance labels [(D), H, W]: integers of any type (or floats holding integers), 0 background, -1
 * unlabeled. A label-stack TIFF (ImageJ channels, as encodeLabelTiff writes them, or, where 2D is expected, a
 * multi-page TIFF whose metadata does not call its pages z-slices) holds overlapping instances: its channels or pages are layers, put in canonical form
 * (src/train/layers.ts). Anything else is a DataError naming the file and the first offending voxel.
 */
export async function readLabels(path: string, options: ReadLabelsOptions = {}): Promise<LabelVolume> {
  const raw = await readRaw(path, 'labels');
  let [channels, ...shape] = raw.shape;
  let spacing = raw.spacing;
  if (raw.samplesPerPixel > 1) {
    throw new DataError(`${path}: mask has ${channels} channels; expected one channel of integer labels (or a label stack: ImageJ channels or pages)`);
  }
  if (channels === 1 && options.ndim === 2 && shape.length === 3 && !raw.zDeclared) {
    [channels, ...shape] = shape;
    spacing = spacing.slice(1);
  }
  const data = integerLabels(path, raw, shape);
  if (channels === 1) return { data, shape, spacing };
  const { data: layered, layers } = canonicalLayers(data, shape.reduce((a, b) => a * b, 1));
  return { data: layered, shape, spacing, layers };
}

/**
 * One binary mask file per instance (BBBC010's ground truth: instances/A01_01.png, A01_02.png, ...) as layered
 * instance labels: the k-th file (in the order given) is instance k, and instances may overlap.
 */
export async function readInstanceMasks(paths: readonly string[], what: string): Promise<LabelVolume> {
  if (paths.length === 0) throw new DataError(`${what}: no instance masks`);
  const masks: Int32Array[] = [];
  let shape: number[] = [];
  let spacing: number[] = [];
  for (const path of paths) {
    const mask = await readLabels(path);
    if (mask.layers && mask.layers > 1) throw new DataError(`${path}: an instance mask must be one binary image, not a label stack`);
    if (masks.length === 0) [shape, spacing] = [mask.shape, mask.spacing];
    else if (mask.shape.join('x') !== shape.join('x')) throw new DataError(`${path}: instance mask is ${mask.shape.join('x')}, ${paths[0]} is ${shape.join('x')}`);
    masks.push(mask.data);
  }
  const { data, layers } = layersFromMasks(masks, masks[0].length);
  return layers > 1 ? { data, shape, spacing, layers } : { data, shape, spacing };
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
