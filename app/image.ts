// A file the user dropped or picked, decoded in the page: PNG through fast-png, TIFF through the CLI's own decoder
// (src/train/tiff-node.ts, which needs only geotiff), as float32 channels first ([C, H, W] or [C, D, H, W] for stacks),
// the way `wgseg predict` reads it.
import { convertIndexedToRgb, decode as decodePng } from 'fast-png';
import { decodeTiff } from '../src/train/tiff-node.ts';
import type { ImageVolume } from '../src/train/volume.ts';

/** An image as the page holds it: its name (the file's, without extension) and its samples as read. */
export interface LoadedImage {
  name: string;
  volume: ImageVolume;
  /** Channels that are colours (RGB), not separate channels or slices. */
  colour: boolean;
}

const isPng = (b: Uint8Array) => b.length >= 8 && b[0] === 0x89 && b[1] === 0x50 && b[2] === 0x4e && b[3] === 0x47;
const isTiff = (b: Uint8Array) =>
  b.length >= 4 && ((b[0] === 0x49 && b[1] === 0x49 && b[3] === 0) || (b[0] === 0x4d && b[1] === 0x4d && b[2] === 0));

/** A PNG's samples channels first; a palette PNG's indices become its colours. */
function pngVolume(bytes: Uint8Array, file: string): { volume: ImageVolume; colour: boolean } {
  const png = decodePng(bytes);
  if (png.depth < 8 && !png.palette) throw new Error(`${file}: ${png.depth}-bit grey PNGs are not read here; save it as 8 or 16 bits`);
  const { width, height } = png;
  const samples = png.palette ? convertIndexedToRgb(png) : png.data;
  const channels = png.palette ? png.palette[0].length : png.channels;
  const plane = width * height;
  const data = new Float32Array(plane * channels);
  for (let i = 0; i < plane; i++) for (let c = 0; c < channels; c++) data[c * plane + i] = samples[i * channels + c];
  return { volume: { data, shape: [channels, height, width], spacing: [1, 1] }, colour: channels > 1 };
}

/** Decodes a TIFF or PNG (told apart by content, not name); errors name the file. */
export async function decodeImage(bytes: Uint8Array, file: string): Promise<LoadedImage> {
  const name = file.replace(/\.[^.]*$/, '');
  if (isPng(bytes)) return { name, ...pngVolume(bytes, file) };
  if (!isTiff(bytes)) throw new Error(`${file} is not a TIFF or PNG file`);
  const raw = await decodeTiff(bytes, file);
  if (raw.data.length === 0) throw new Error(`${file}: empty image`);
  return { name, volume: { data: Float32Array.from(raw.data as ArrayLike<number>), shape: raw.shape, spacing: raw.spacing }, colour: raw.samplesPerPixel > 1 };
}
