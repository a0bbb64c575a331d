// Whole-image prediction by overlapping tiles. Tiles start at multiples of the model's sizeMultiple, so a strided model
// sees each tile on the same grid as the whole image; each tile keeps only its central part, at least tileMargin from
// any tile edge that is not an edge of the (padded) image. With a margin that covers the receptive field the stitched
// raw outputs then equal those of one pass over the whole image: no blending is needed, and none is done. A model with an
// output stride (CenterNet's heads at 1/4) keeps tile parts whose bounds lie on its output grid, and one with a per-tile
// reduction (InstanceModel.reduceTile) has each tile's raw outputs reduced before they are stitched.
import { OutOfMemoryError } from '../engine/dispatch.ts';
import { BufferLimitError, type Engine } from '../engine/engine.ts';
import type { Tensor } from '../engine/tensor.ts';
import { pasteBox, translation, warpInto } from '../kernels/warp.ts';
import type { Detection, InstanceModel } from '../models/model.ts';
import type { Labels } from './layers.ts';
import type { ImageVolume } from './volume.ts';

/** One tile along one axis: the input range [start, start + size) and the part it keeps, [keepStart, keepEnd). */
export interface TileSpan {
  start: number;
  keepStart: number;
  keepEnd: number;
}

/**
 * Tiles along one axis of extent `size` (padded to a multiple of `multiple`): tiles of `tile` (a multiple of
 * `multiple`, at most the padded extent) at multiples of `multiple`, the first at 0 and the last ending at the padded
 * end; neighbours split their overlap in the middle, rounded down to a multiple of `grid` (the output stride, which
 * divides `multiple`), which leaves each side at least `margin` − `grid` of context. Keep ranges are clipped to
 * [0, size) and partition it.
 */
export function planTiles(size: number, tile: number, margin: number, multiple: number, grid = 1): TileSpan[] {
  const padded = Math.ceil(size / multiple) * multiple;
  if (tile >= padded) return [{ start: 0, keepStart: 0, keepEnd: size }];
  const step = Math.floor((tile - 2 * margin) / multiple) * multiple;
  if (step <= 0) throw new Error(`planTiles: tile ${tile} leaves no room between margins of ${margin} (size multiple ${multiple})`);
  const starts: number[] = [];
  for (let s = 0; s + tile < padded; s += step) starts.push(s);
  starts.push(padded - tile);
  return starts.map((start, j) => {
    const split = (end: number, next: number) => Math.floor((end + next) / 2 / grid) * grid;
    const keepStart = j === 0 ? 0 : split(starts[j - 1] + tile, start);
    const keepEnd = j === starts.length - 1 ? size : Math.min(size, split(start + tile, starts[j + 1]));
    return { start, keepStart, keepEnd };
  }).filter((t) => t.keepEnd > t.keepStart);
}

export interface PredictOptions {
  /**
   * Tile extent per spatial axis, rounded down to a multiple of the model's sizeMultiple (default 512 in 2D,
   * [64, 256, 256] in 3D, grown where the margins would leave no room). Axes shorter than a tile take one tile.
   */
  tileSize?: number | readonly number[];
  /** Context kept around each tile's kept part, per axis (default: model.tileMargin). */
  overlap?: number | readonly number[];
  /** Called when the default tiles were too large for the adapter and smaller ones are tried: their size, and why. */
  onTileShrink?: (tile: number[], reason: string) => void;
  /** Tiles per model.infer call (default 1). */
  batch?: number;
  /**
   * Called after each batch of tiles is submitted: tiles done so far, and of how many (progress displays). A returned
   * promise is awaited before the next batch (a page can wait for the GPU there and repaint its progress bar).
   */
  onTile?: (done: number, total: number) => void | Promise<void>;
}

const perAxis = (v: number | readonly number[], ndim: number, what: string): number[] => {
  const out = typeof v === 'number' ? new Array<number>(ndim).fill(v) : [...v];
  if (out.length !== ndim || !out.every((x) => Number.isInteger(x) && x >= 0)) {
    throw new Error(`predictImage: ${what} must be a non-negative integer or ${ndim} of them, got ${JSON.stringify(v)}`);
  }
  return out;
};

/**
 * The stitched raw outputs [1, K, (D), H, W] of a whole image [C, (D), H, W] (normalized as the model was trained): the
 * image is reflected out to a multiple of model.sizeMultiple, cut into overlapping tiles that model.infer runs on
 * (without gradients, `batch` tiles at a time, each batch's temporaries freed before the next, so memory is bounded by
 * the tile size), and the tiles' kept parts are stitched into one tensor of the image's size on the GPU. With an output
 * stride s the result is ⌈size / s⌉ per axis; with model.reduceTile it holds the reduced evidence. The caller disposes it.
 */
export async function predictOutputs(e: Engine, model: InstanceModel, image: ImageVolume, options: PredictOptions = {}): Promise<Tensor> {
  // Tiles whose tensors exceed the adapter's buffer limit are shrunk by the excess (per axis, its d-th root), and
  // tiles the device ran out of memory for are halved in volume (the free buffers are released first: one created
  // while the device was out of memory is unusable); the image is then tried again, unless the caller chose the
  // tile size.
  // The shrinking starts from the tile that failed (the default clamped to the image, say), and stops with the error
  // when the margins allow no smaller tile.
  let tileSize = options.tileSize;
  for (;;) {
    try {
      return await predictTiled(e, model, image, { ...options, tileSize }, options.tileSize === undefined);
    } catch (err) {
      if (!(err instanceof BufferLimitError || err instanceof OutOfMemoryError) || options.tileSize !== undefined) throw err;
      if (err instanceof OutOfMemoryError) e.pool.trim();
      const ndim = model.ndim;
      const current = tileShape(model, image.shape.slice(1), tileSize, options.overlap, false);
      const factor = err instanceof BufferLimitError ? Math.pow((1.1 * err.bytes) / err.limit, 1 / ndim) : Math.pow(2, 1 / ndim);
      const smaller = current.map((t, k) => Math.max(model.sizeMultiple[k], Math.floor(t / factor / model.sizeMultiple[k]) * model.sizeMultiple[k]));
      const next = tileShape(model, image.shape.slice(1), smaller, options.overlap, false);
      if (next.every((t, k) => t >= current[k])) throw err;
      options.onTileShrink?.(next, err.message);
      tileSize = next;
    }
  }
}

/** The margins of a tile, per axis: the overlap (default the model's tileMargin), plus one output pixel's worth with an output stride. */
function tileMargins(model: InstanceModel, overlap: PredictOptions['overlap']): number[] {
  const stride = model.outputStride ?? model.sizeMultiple.map(() => 1);
  // Margins grow by one output pixel where keep bounds are rounded to the output grid, so the full margin remains.
  return perAxis(overlap ?? model.tileMargin, model.ndim, 'overlap').map((m, k) => m + (stride[k] > 1 ? stride[k] : 0));
}

/**
 * The tile a prediction of an image of `size` uses for `tileSize` (default 512², or 64×256² in 3D): rounded down to the
 * size multiple, at most the padded image, and at least twice the margins plus one multiple (raised to that, unless
 * `explicit`: a tile size the caller chose that is too small is an error).
 */
function tileShape(model: InstanceModel, size: readonly number[], tileSize: PredictOptions['tileSize'], overlap: PredictOptions['overlap'], explicit: boolean): number[] {
  const multiple = model.sizeMultiple;
  const margin = tileMargins(model, overlap);
  return perAxis(tileSize ?? (model.ndim === 2 ? 512 : [64, 256, 256]), model.ndim, 'tileSize').map((t, k) => {
    const padded = Math.ceil(size[k] / multiple[k]) * multiple[k];
    const smallest = (Math.ceil((2 * margin[k]) / multiple[k]) + 1) * multiple[k];
    const rounded = Math.floor(t / multiple[k]) * multiple[k];
    if (rounded >= padded) return padded;
    if (rounded < smallest) {
      if (explicit) throw new Error(`predictImage: tileSize ${t} on axis ${k} is too small for margins of ${margin[k]} (size multiple ${multiple[k]}); use at least ${smallest}`);
      return Math.min(smallest, padded);
    }
    return rounded;
  });
}

/** With `chosen` the tile size is the pipeline's own (default or shrunk): one too small for the margins is raised, not refused. */
async function predictTiled(e: Engine, model: InstanceModel, image: ImageVolume, options: PredictOptions, chosen = false): Promise<Tensor> {
  const ndim = model.ndim;
  const size = image.shape.slice(1);
  if (size.length !== ndim) throw new Error(`predictImage: image [${image.shape.join(', ')}] is not ${ndim}D like the ${model.kind} model`);
  if (image.shape[0] !== model.inChannels) throw new Error(`predictImage: image has ${image.shape[0]} channels, the ${model.kind} model expects ${model.inChannels}`);
  const multiple = [...model.sizeMultiple];
  const stride = [...(model.outputStride ?? multiple.map(() => 1))];
  const bad = stride.findIndex((st, k) => !(Number.isInteger(st) && st >= 1 && multiple[k] % st === 0));
  if (bad >= 0) throw new Error(`predictImage: ${model.kind}'s output stride [${stride.join(', ')}] must divide its size multiple [${multiple.join(', ')}] on every axis`);
  const margin = tileMargins(model, options.overlap);
  const batch = options.batch ?? 1;
  if (!Number.isInteger(batch) || batch < 1) throw new Error(`predictImage: batch must be a positive integer, got ${batch}`);
  const tile = tileShape(model, size, options.tileSize, options.overlap, options.tileSize !== undefined && !chosen);
  const spans = size.map((s, k) => planTiles(s, tile[k], margin[k], multiple[k], stride[k]));
  const tiles = cartesian(spans);
  const outTile = tile.map((t, k) => t / stride[k]);
  const outSize = size.map((s, k) => Math.ceil(s / stride[k]));
  const down = (v: number, k: number) => Math.ceil(v / stride[k]);

  // Everything made here but the stitched outputs is freed when the scope ends.
  const scope = e.beginScope();
  let stitched: Tensor | null = null;
  try {
    const source = { image: e.tensor(image.data, image.shape), labels: null };
    for (let first = 0; first < tiles.length; first += batch) {
      const group = tiles.slice(first, first + batch);
      e.noGrad(() =>
        e.tidy(() => {
          const input = e.empty([group.length, image.shape[0], ...tile]);
          group.forEach((spansOfTile, n) => {
            const origin = spansOfTile.map((t) => t.start);
            warpInto(source, { images: input, labels: null, item: n }, translation(ndim === 2 ? [0, origin[0], origin[1]] : [origin[0], origin[1], origin[2]]));
          });
          const raw = model.infer(input);
          if (raw.rank !== ndim + 2 || raw.shape[0] !== group.length || raw.shape.slice(2).join() !== outTile.join()) {
            throw new Error(`predictImage: ${model.kind}.infer returned [${raw.shape.join(', ')}] for tiles [${input.shape.join(', ')}]; expected [${group.length}, K, ${outTile.join(', ')}] (output stride [${stride.join(', ')}])`);
          }
          const out = model.reduceTile ? model.reduceTile(raw) : raw;
          if (out !== raw) {
            if (out.rank !== raw.rank || out.shape[0] !== group.length || out.shape.slice(2).join() !== outTile.join()) {
              throw new Error(`predictImage: ${model.kind}.reduceTile returned [${out.shape.join(', ')}] for outputs [${raw.shape.join(', ')}]; expected [${group.length}, K', ${outTile.join(', ')}]`);
            }
            raw.dispose();
          }
          stitched ??= e.keep(e.empty([1, out.shape[1], ...outSize]));
          for (const [n, spansOfTile] of group.entries()) {
            const srcOrigin = spansOfTile.map((t, k) => (t.keepStart - t.start) / stride[k]);
            const dstOrigin = spansOfTile.map((t, k) => t.keepStart / stride[k]);
            pasteBox(out, n, srcOrigin, stitched, dstOrigin, spansOfTile.map((t, k) => down(t.keepEnd, k) - t.keepStart / stride[k]));
          }
        }),
      );
      e.flush();
      await options.onTile?.(Math.min(first + batch, tiles.length), tiles.length);
    }
    source.image.dispose();
    return stitched!;
  } catch (err) {
    (stitched as Tensor | null)?.dispose();
    throw err;
  } finally {
    scope.end();
  }
}

/**
 * Instance labels [(D), H, W] for a whole image (layers where the model finds overlapping instances): model.postprocess
 * of its stitched raw outputs (predictOutputs), with `postprocessValues` in place of the model config's postprocessing
 * parameters (InstanceModel.postprocessGrid).
 */
export async function predictImage(
  e: Engine, model: InstanceModel, image: ImageVolume, options: PredictOptions = {}, postprocessValues?: Readonly<Record<string, number>>,
): Promise<Labels> {
  const outputs = await predictOutputs(e, model, image, options);
  return postprocessOutputs(e, model, outputs, image, postprocessValues).finally(() => outputs.dispose());
}

/**
 * What `wgseg predict` writes for a whole image, from one network pass: its labels (as predictImage) and, from a model
 * that detects boxes (InstanceModel.detections), its detections in the same stitched outputs; null from other models.
 */
export async function predictInstances(
  e: Engine, model: InstanceModel, image: ImageVolume, options: PredictOptions = {},
): Promise<{ labels: Labels; detections: Detection[] | null }> {
  const outputs = await predictOutputs(e, model, image, options);
  try {
    const labels = await postprocessOutputs(e, model, outputs, image);
    const detections = model.detections ? await scoped(e, () => model.detections!(outputs, image.shape.slice(1))) : null;
    return { labels, detections };
  } finally {
    outputs.dispose();
  }
}

/** model.postprocess of the stitched outputs of `image`, its temporaries freed; the outputs stay the caller's. */
export function postprocessOutputs(
  e: Engine, model: InstanceModel, outputs: Tensor, image: Pick<ImageVolume, 'shape' | 'spacing'>, postprocessValues?: Readonly<Record<string, number>>,
): Promise<Labels> {
  return scoped(e, () => model.postprocess(outputs, image.spacing, postprocessValues, image.shape.slice(1)));
}

/** `fn`'s result, every tensor it made freed once it settles. */
async function scoped<T>(e: Engine, fn: () => Promise<T>): Promise<T> {
  const scope = e.beginScope();
  try {
    return await fn();
  } finally {
    scope.end();
  }
}

/** Every combination of one option per axis, the first axis slowest. */
export function cartesian<T>(axes: T[][]): T[][] {
  return axes.reduce<T[][]>((acc, options) => acc.flatMap((prefix) => options.map((o) => [...prefix, o])), [[]]);
}
