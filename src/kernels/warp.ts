// Patch sampling (shaders/warp.wgsl): the kernels behind training crops and augmentation (src/train/augment.ts) and
// tiled prediction (src/train/predict.ts). Data preparation only: nothing here records gradients.
import { sizeOf, type Tensor } from '../engine/tensor.ts';
import { shaderConstants } from '../shaders.gen.ts';

const { WORKGROUP_SIZE } = shaderConstants.warp;

const fmt = (shape: readonly number[]) => `[${shape.join(', ')}]`;

/**
 * Maps an output voxel to a source coordinate: source (z, y, x) = rows · (z', y', x', 1), with (z', y', x') the
 * output index plus its displacement. Three rows of four coefficients; a 2D transform leaves row 0 unused.
 */
export type AffineRows = readonly [readonly number[], readonly number[], readonly number[]];

/** The identity transform shifted by `origin` (z, y, x): a plain crop starting at origin. */
export function translation(origin: readonly [number, number, number]): AffineRows {
  return [
    [1, 0, 0, origin[0]],
    [0, 1, 0, origin[1]],
    [0, 0, 1, origin[2]],
  ];
}

export interface WarpTarget {
  /** [N, C, (D), H, W] f32: item `item` is written. */
  images: Tensor;
  /** [N, 1, (D), H, W] i32, or null to resample only the image. */
  labels: Tensor | null;
  item: number;
}

export interface WarpSource {
  /** [C, (D), H, W] f32. */
  image: Tensor;
  /** [(D), H, W] i32, or null. */
  labels: Tensor | null;
}

const lift3 = (spatial: readonly number[]) => (spatial.length === 2 ? [1, ...spatial] : [...spatial]);

/**
 * Resamples one source into item `target.item` of a batch, in one kernel: each output voxel maps to a source
 * coordinate through `rows` (after adding `displacement`, [N, 2, H, W] (dy, dx) per output pixel, 2D only); the image
 * is interpolated (bi/trilinear) with reflected borders, the labels take the nearest source voxel's value, or -1
 * (unlabeled) where that voxel lies outside the source. Label values are never interpolated.
 */
export function warpInto(source: WarpSource, target: WarpTarget, rows: AffineRows, displacement: Tensor | null = null): void {
  const { image, labels: srcLabels } = source;
  const { images, labels, item } = target;
  const e = image.engine;
  const spatial = image.shape.slice(1);
  const ndim = spatial.length;
  if (ndim !== 2 && ndim !== 3) throw new Error(`warp: source image must be [C, H, W] or [C, D, H, W], got ${fmt(image.shape)}`);
  if (image.dtype !== 'f32' || images.dtype !== 'f32') throw new Error('warp: images must be f32');
  const channels = image.shape[0];
  if (images.rank !== ndim + 2 || images.shape[1] !== channels) {
    throw new Error(`warp: output ${fmt(images.shape)} must be [N, ${channels}, ...] with ${ndim} spatial axes like the source ${fmt(image.shape)}`);
  }
  if (!Number.isInteger(item) || item < 0 || item >= images.shape[0]) throw new Error(`warp: item ${item} is outside the batch of ${images.shape[0]}`);
  const patch = images.shape.slice(2);
  if ((srcLabels === null) !== (labels === null)) throw new Error('warp: labels need both a source and an output, or neither');
  if (srcLabels && labels) {
    if (srcLabels.dtype !== 'i32' || labels.dtype !== 'i32') throw new Error('warp: labels must be i32');
    if (srcLabels.shape.join() !== spatial.join()) throw new Error(`warp: source labels ${fmt(srcLabels.shape)} do not match the image ${fmt(image.shape)}`);
    if (labels.shape.join() !== [images.shape[0], 1, ...patch].join()) throw new Error(`warp: output labels ${fmt(labels.shape)} must be [${images.shape[0]}, 1, ${patch.join(', ')}]`);
  }
  if (displacement) {
    if (ndim !== 2) throw new Error('warp: a displacement field is only supported in 2D');
    if (displacement.shape.join() !== [images.shape[0], 2, ...patch].join()) {
      throw new Error(`warp: displacement ${fmt(displacement.shape)} must be [${images.shape[0]}, 2, ${patch.join(', ')}]`);
    }
  }
  const patchSize = sizeOf(patch);
  // Bindings the chosen variant never reads or writes still need a buffer: reinterpreted views and a one-element scratch.
  const labelsIn = srcLabels ?? e.view(image, [1], 0, 'i32');
  const labelsOut = labels ?? e.empty([1], 'i32');
  e.dispatch({
    shader: 'warp', entry: 'warp_patch', label: 'warp',
    constants: { SPATIAL: ndim, LABELS: labels ? 1 : 0, ELASTIC: displacement ? 1 : 0 },
    bindings: {
      src: image, srcLabels: labelsIn, displacement: displacement ?? image, images, labels: labelsOut,
      warp: {
        channels, imageBase: item * channels * patchSize, labelBase: item * patchSize, displacementBase: item * 2 * patchSize,
        srcShape: lift3(spatial), outShape: lift3(patch), rows: rows.flatMap((r) => [...r]),
      },
    },
    workgroups: e.groups1D(patchSize, WORKGROUP_SIZE),
  });
  if (!srcLabels) labelsIn.dispose();
  if (!labels) labelsOut.dispose();
}

/**
 * A Gaussian blur of `x` [N, ...] along each of `axes` in turn (separable), with σ (in pixels) per batch item:
 * normalized taps out to ⌈3σ⌉, reflected borders; σ ≤ 0 leaves the item unchanged.
 */
export function gaussianBlur(x: Tensor, sigmas: readonly number[], axes: readonly number[]): Tensor {
  const e = x.engine;
  if (x.dtype !== 'f32') throw new Error(`gaussianBlur: input must be f32, got ${x.dtype}`);
  if (sigmas.length !== x.shape[0]) throw new Error(`gaussianBlur: ${sigmas.length} sigmas for a batch of ${x.shape[0]}`);
  for (const a of axes) {
    if (!Number.isInteger(a) || a < 1 || a >= x.rank) throw new Error(`gaussianBlur: axis ${a} is not a non-batch axis of ${fmt(x.shape)}`);
  }
  const sigmaTensor = e.tensor(new Float32Array(sigmas), [sigmas.length]);
  const strides = x.strides;
  let current = x;
  for (const axis of axes) {
    const out = e.empty(x.shape);
    e.dispatch({
      shader: 'warp', entry: 'gaussian_pass', label: 'gaussianBlur',
      bindings: { blurIn: current, sigmas: sigmaTensor, blurOut: out, blur: { n: x.size, itemSize: x.size / x.shape[0], axisLength: x.shape[axis], axisStride: strides[axis] } },
      workgroups: e.groups1D(x.size, WORKGROUP_SIZE),
    });
    if (current !== x) current.dispose();
    current = out;
  }
  sigmaTensor.dispose();
  return current === x ? e.copy(x) : current;
}

export interface IntensityChange {
  gain: number;
  offset: number;
  /** Standard deviation of the per-pixel Gaussian noise. */
  noiseStd: number;
  /** Values are clamped to [low, high] last (±Infinity: no clipping). */
  low: number;
  high: number;
}

const F32_MAX = 3.4028234663852886e38;

/**
 * clamp(x·gain + offset + noise·noiseStd, low, high) with one change per batch item of `x` [N, ...]; `noise` is a
 * standard-normal tensor of x's shape, or null when no item has noise.
 */
export function changeIntensity(x: Tensor, changes: readonly IntensityChange[], noise: Tensor | null): Tensor {
  const e = x.engine;
  if (changes.length !== x.shape[0]) throw new Error(`changeIntensity: ${changes.length} changes for a batch of ${x.shape[0]}`);
  if (noise && noise.shape.join() !== x.shape.join()) throw new Error(`changeIntensity: noise ${fmt(noise.shape)} must match the input ${fmt(x.shape)}`);
  const clampF32 = (v: number) => Math.max(-F32_MAX, Math.min(F32_MAX, v));
  const params = new Float32Array(changes.flatMap((c) => [c.gain, c.offset, c.noiseStd, clampF32(c.low), clampF32(c.high)]));
  const itemParams = e.tensor(params, [changes.length, 5]);
  const out = e.empty(x.shape);
  e.dispatch({
    shader: 'warp', entry: 'intensity_apply', label: 'changeIntensity', constants: { NOISE: noise ? 1 : 0 },
    bindings: { intensityIn: x, noise: noise ?? x, itemParams, intensityOut: out, intensity: { n: x.size, itemSize: x.size / x.shape[0] } },
    workgroups: e.groups1D(x.size, WORKGROUP_SIZE),
  });
  itemParams.dispose();
  return out;
}

/**
 * Copies the box of extent `extent` (spatial, (D), H, W) at `srcOrigin` in item `srcItem` of `src` [N, K, ...] to
 * `dstOrigin` in `dst` [1, K, ...], every channel. Stitches prediction tiles.
 */
export function pasteBox(src: Tensor, srcItem: number, srcOrigin: readonly number[], dst: Tensor, dstOrigin: readonly number[], extent: readonly number[]): void {
  const e = src.engine;
  const ndim = src.rank - 2;
  if (dst.rank !== src.rank || dst.shape[0] !== 1 || dst.shape[1] !== src.shape[1]) {
    throw new Error(`pasteBox: destination ${fmt(dst.shape)} must be [1, ${src.shape[1]}, ...] like the source ${fmt(src.shape)}`);
  }
  const srcShape = src.shape.slice(2);
  const dstShape = dst.shape.slice(2);
  for (let k = 0; k < ndim; k++) {
    if (srcOrigin[k] < 0 || srcOrigin[k] + extent[k] > srcShape[k] || dstOrigin[k] < 0 || dstOrigin[k] + extent[k] > dstShape[k]) {
      throw new Error(`pasteBox: box ${fmt(extent)} from ${fmt(srcOrigin)} to ${fmt(dstOrigin)} leaves ${fmt(srcShape)} or ${fmt(dstShape)} (axis ${k})`);
    }
  }
  const lift = (v: readonly number[], pad: number) => (ndim === 2 ? [pad, ...v] : [...v]);
  const n = src.shape[1] * sizeOf(extent);
  if (n === 0) return;
  e.dispatch({
    shader: 'warp', entry: 'paste_box', label: 'pasteBox',
    bindings: {
      pasteSrc: src, pasteDst: dst,
      paste: {
        n, srcBase: srcItem * src.shape[1] * sizeOf(srcShape),
        extent: lift(extent, 1), srcShape: lift(srcShape, 1), srcOrigin: lift(srcOrigin, 0), dstShape: lift(dstShape, 1), dstOrigin: lift(dstOrigin, 0),
      },
    },
    workgroups: e.groups1D(n, WORKGROUP_SIZE),
  });
}
