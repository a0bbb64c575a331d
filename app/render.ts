// The picture: one slice of the image (grey, or RGB for colour images), stretched between its 0.5th and 99.5th
// percentiles, with each instance filled in its own colour and outlined.
import { percentiles } from '../src/train/normalize.ts';
import type { LoadedImage } from './image.ts';

/** Instance `id`'s colour: hues a golden angle apart, so neighbouring ids differ, in two lightnesses. */
export function labelColour(id: number): [number, number, number] {
  const hue = (id * 137.508) % 360;
  const [s, l] = [0.85, id % 2 ? 0.55 : 0.68];
  const f = (n: number) => {
    const k = (n + hue / 30) % 12;
    return Math.round(255 * (l - s * Math.min(l, 1 - l) * Math.max(-1, Math.min(k - 3, 9 - k, 1))));
  };
  return [f(0), f(8), f(4)];
}

export interface View {
  /** The z-slice shown (0 in 2D). */
  slice: number;
  /** How strongly instance colours cover the image, 0..1. */
  opacity: number;
}

/** Draws `view.slice` of the image, and of the flat labels [(D), H, W] when given, onto `canvas` at its pixel size. */
export function drawSlice(canvas: HTMLCanvasElement, image: LoadedImage, labels: Int32Array | null, view: View): void {
  const { data, shape } = image.volume;
  const [channels, ...spatial] = shape;
  const [h, w] = spatial.slice(-2);
  const depth = spatial.length === 3 ? spatial[0] : 1;
  const plane = h * w;
  const z = Math.min(view.slice, depth - 1);
  const shown = image.colour ? Math.min(3, channels) : 1;
  const channel = (c: number) => data.subarray((c * depth + z) * plane, (c * depth + z + 1) * plane);
  const planes = Array.from({ length: shown }, (_, c) => channel(c));
  const ranges = planes.map((p) => percentiles(p.slice(), [0.5, 99.5]));
  canvas.width = w;
  canvas.height = h;
  const ctx = canvas.getContext('2d');
  if (!ctx) throw new Error('drawSlice: the canvas has no 2D context');
  const pixels = ctx.createImageData(w, h);
  const out = pixels.data;
  const slice = labels?.subarray(z * plane, (z + 1) * plane);
  for (let i = 0; i < plane; i++) {
    for (let k = 0; k < 3; k++) {
      const c = Math.min(k, shown - 1);
      const [lo, hi] = ranges[c];
      out[4 * i + k] = Math.max(0, Math.min(255, (255 * (planes[c][i] - lo)) / (hi > lo ? hi - lo : 1)));
    }
    out[4 * i + 3] = 255;
    const id = slice?.[i] ?? 0;
    if (id <= 0) continue;
    const x = i % w;
    const y = (i - x) / w;
    const edge = (x > 0 && slice![i - 1] !== id) || (x < w - 1 && slice![i + 1] !== id) || (y > 0 && slice![i - w] !== id) || (y < h - 1 && slice![i + w] !== id);
    const alpha = edge ? Math.min(1, view.opacity + 0.4) : view.opacity;
    const colour = labelColour(id);
    for (let k = 0; k < 3; k++) out[4 * i + k] = (1 - alpha) * out[4 * i + k] + alpha * colour[k];
  }
  ctx.putImageData(pixels, 0, 0);
}
