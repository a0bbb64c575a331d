// Training batches: random crops with augmentation, on the GPU (src/kernels/warp.ts). Every random choice of a batch
// comes from its seed (geometry on the CPU with a seeded generator, per-pixel noise with Philox on the GPU), so the
// same seed gives the same batch. Each sample is uploaded once and kept on the GPU; a step uploads only a few numbers.
//
// Order per item: one resampling kernel (crop + flips + rot90 + affine + elastic displacement, images linear, labels
// nearest) → Gaussian blur → gain, offset, noise → clipping. The defaults follow RDCNet's supplement (Table 1) where it
// applies to images normalized to about [0, 1] (normalizePercentile).
import type { Engine } from '../engine/engine.ts';
import type { Tensor } from '../engine/tensor.ts';
import { randomNormal, randomUniform } from '../kernels/random.ts';
import { concat, slice } from '../kernels/shape.ts';
import { upsample } from '../kernels/upsample.ts';
import { changeIntensity, gaussianBlur, warpInto, type AffineRows, type IntensityChange, type WarpSource } from '../kernels/warp.ts';
import type { TrainBatch } from '../models/model.ts';
import { seededRandom } from './synthetic.ts';
import type { Sample } from './volume.ts';

export interface AffineAugment {
  /** Rotation angle in degrees, uniform in ±rotation. */
  rotation: number;
  /** Isotropic zoom factor range (> 1 magnifies). */
  zoom: readonly [number, number];
  /** Shear angle in degrees, uniform in ±shear. */
  shear: number;
}

export interface ElasticAugment {
  /**
   * Displacement amplitude A in pixels. A uniform random offset per pixel is smoothed with a Gaussian of `sigma`
   * (default 2A, as the supplement) and then scaled so that each component's standard deviation is A/3: |d| ≤ A at
   * 99.7% of pixels. (Smoothing alone would shrink offsets of ±A to a fraction of a pixel at σ = 2A.)
   */
  amplitude: number;
  sigma?: number;
}

export interface BlurAugment {
  /** Probability that a patch is blurred. */
  p: number;
  /** σ in pixels, uniform in this range (y and x only; z is left alone in anisotropic 3D). */
  sigma: readonly [number, number];
}

export interface ClipAugment {
  /** Mean and standard deviation of the lower clipping value. */
  low: readonly [number, number];
  high: readonly [number, number];
}

export interface AugmentOptions {
  /** Mirror y and x, each with probability 0.5. */
  flip: boolean;
  /** Mirror z with probability 0.5 (3D). */
  flipZ: boolean;
  /** Rotate the yx plane by k·90°, k uniform in 0..3 (only 0 or 180° when the patch is not square). */
  rot90: boolean;
  /** Random rotation, zoom and shear in the yx plane. */
  affine: AffineAugment | null;
  /** Random smooth displacement (2D only). */
  elastic: ElasticAugment | null;
  blur: BlurAugment | null;
  /** Standard deviation of the additive offset, one per patch. */
  offset: number;
  /** Multiplicative gain range, one draw per patch. */
  gain: readonly [number, number];
  /** Range of the per-patch standard deviation of the per-pixel Gaussian noise. */
  noise: readonly [number, number] | null;
  clip: ClipAugment | null;
}

/** No augmentation: crops only. */
export const noAugment: AugmentOptions = {
  flip: false, flipZ: false, rot90: false, affine: null, elastic: null, blur: null, offset: 0, gain: [1, 1], noise: null, clip: null,
};

/**
 * The supplement's 2D setting (flips, affine ±10° / zoom 0.9–1.1 / shear ±5°, warp A = 20, blur p 0.5 σ 0.5–2, offset
 * σ 0.2 scaled to a [0, 1] range: 0.1) plus rot90, gain 0.8–1.2 and mild noise; in 3D (3D-ORG) flips on every axis,
 * rot90, offset and noise, no warps or blur. The warp amplitude suits patches of a few hundred pixels; scale it down with
 * smaller images (a smooth field wider than the image mostly shifts it, and labels shifted in from outside are -1).
 */
export function defaultAugment(ndim: 2 | 3): AugmentOptions {
  const common = { flip: true, rot90: true, offset: 0.1, gain: [0.8, 1.2] as const, noise: [0, 0.05] as const, clip: null };
  if (ndim === 3) return { ...common, flipZ: true, affine: null, elastic: null, blur: null };
  return {
    ...common, flipZ: false,
    affine: { rotation: 10, zoom: [0.9, 1.1], shear: 5 },
    elastic: { amplitude: 20 },
    blur: { p: 0.5, sigma: [0.5, 2] },
  };
}

export interface SampleBatchOptions {
  batchSize: number;
  /** Spatial patch size, [H, W] or [D, H, W]. */
  patchSize: readonly number[];
  /** Non-negative integer below 2^53 (typically a base seed plus the step). */
  seed: number;
  /** Changes to defaultAugment(ndim); pass noAugment for plain crops. */
  augment?: Partial<AugmentOptions>;
  /**
   * Also warp every layer of overlapping labels into TrainBatch.layers (for models that learn overlaps), when some
   * sample has more than one layer. Default false: the batch holds the flat labels only.
   */
  layers?: boolean;
  /**
   * Where crops are placed: 'random' (default) anywhere in a random image; 'objects' centred on the centroid of an
   * instance drawn uniformly from all instances of all samples (EmbedSeg's object-centred crops), kept inside the
   * image where it is large enough.
   */
  crops?: CropPlacement;
}

export type CropPlacement = 'random' | 'objects';

/** Per sample, the centroid (in voxels, rounded) of every instance; computed once on the CPU. */
const centroidCache = new WeakMap<Sample, number[][]>();

function instanceCentroids(sample: Sample): number[][] {
  const hit = centroidCache.get(sample);
  if (hit) return hit;
  const labels = sample.labels!;
  const shape = labels.shape;
  const sums = new Map<number, number[]>();
  const coord = new Array<number>(shape.length).fill(0);
  for (let i = 0; i < labels.data.length; i++) {
    const id = labels.data[i];
    if (id > 0) {
      let acc = sums.get(id);
      if (!acc) sums.set(id, (acc = new Array<number>(shape.length + 1).fill(0)));
      for (let k = 0; k < shape.length; k++) acc[k] += coord[k];
      acc[shape.length]++;
    }
    for (let k = shape.length - 1; k >= 0 && ++coord[k] === shape[k]; k--) coord[k] = 0;
  }
  const centroids = [...sums.values()].map((acc) => acc.slice(0, shape.length).map((v) => Math.round(v / acc[shape.length])));
  centroidCache.set(sample, centroids);
  return centroids;
}

/** A sample and crop start: uniformly over all instances of all samples, the crop centred on the instance. */
function objectCrop(rand: () => number, samples: readonly Sample[], patch: readonly number[]): { sample: Sample; start: number[] } | null {
  const perSample = samples.map(instanceCentroids);
  const total = perSample.reduce((a, c) => a + c.length, 0);
  if (total === 0) return null;
  let pick = Math.floor(rand() * total);
  let index = 0;
  while (pick >= perSample[index].length) pick -= perSample[index++].length;
  const sample = samples[index];
  const centre = perSample[index][pick];
  const size = sample.image.shape.slice(1);
  // Inside the image where it fits; a patch larger than the image is centred on it (the rest reflected, labels -1).
  const start = centre.map((c, k) =>
    size[k] >= patch[k] ? Math.min(Math.max(0, c - Math.floor(patch[k] / 2)), size[k] - patch[k]) : -Math.floor((patch[k] - size[k]) / 2));
  return { sample, start };
}

/** A sample on the GPU: image and flat labels (layer 0), and each further layer of overlapping labels. */
export interface UploadedSample extends WarpSource {
  upperLayers: Tensor[];
}

// Uploaded samples, per engine. A sample's arrays must not change after its first batch.
const uploads = new WeakMap<Engine, Map<Sample, UploadedSample>>();

/** The sample's image [C, (D), H, W] and labels [(D), H, W] (per layer) on the GPU, uploaded on first use and kept. */
export function uploadSample(e: Engine, sample: Sample): UploadedSample {
  let cache = uploads.get(e);
  if (!cache) uploads.set(e, (cache = new Map()));
  const hit = cache.get(sample);
  if (hit) return hit;
  const { image, labels } = sample;
  if (image.shape.length !== 3 && image.shape.length !== 4) {
    throw new Error(`sample "${sample.name}": image must be [C, H, W] or [C, D, H, W], got [${image.shape.join(', ')}]`);
  }
  if (!labels) throw new Error(`sample "${sample.name}": has no labels to train on`);
  if (labels.shape.join() !== image.shape.slice(1).join()) {
    throw new Error(`sample "${sample.name}": labels [${labels.shape.join(', ')}] do not match the image [${image.shape.join(', ')}]`);
  }
  const size = labels.shape.reduce((a, b) => a * b, 1);
  const layer = (k: number) => e.keep(e.tensor(labels.data.subarray(k * size, (k + 1) * size), labels.shape));
  const uploaded = {
    image: e.keep(e.tensor(image.data, image.shape)), labels: layer(0),
    upperLayers: Array.from({ length: (labels.layers ?? 1) - 1 }, (_, k) => layer(k + 1)),
  };
  cache.set(sample, uploaded);
  return uploaded;
}

/** Frees the uploads of `samples` (default: every sample uploaded on this engine). */
export function releaseSamples(e: Engine, samples?: readonly Sample[]): void {
  const cache = uploads.get(e);
  if (!cache) return;
  for (const s of samples ?? [...cache.keys()]) {
    const u = cache.get(s);
    if (!u) continue;
    u.image.dispose();
    u.labels?.dispose();
    for (const t of u.upperLayers) t.dispose();
    cache.delete(s);
  }
}

interface ItemPlan {
  sample: Sample;
  rows: AffineRows;
  blurSigma: number;
  intensity: IntensityChange;
}

/** 2x2 matrix product in (y, x). */
const mul2 = (a: number[][], b: number[][]) => [
  [a[0][0] * b[0][0] + a[0][1] * b[1][0], a[0][0] * b[0][1] + a[0][1] * b[1][1]],
  [a[1][0] * b[0][0] + a[1][1] * b[1][0], a[1][0] * b[0][1] + a[1][1] * b[1][1]],
];

function randomCrop(rand: () => number, samples: readonly Sample[], patch: readonly number[]): { sample: Sample; start: number[] } {
  const sample = samples[Math.floor(rand() * samples.length)];
  const size = sample.image.shape.slice(1);
  // A patch larger than the image places the image at a random position inside it; the rest is reflected (labels -1).
  const start = size.map((s, k) => {
    const [lo, hi] = [Math.min(0, s - patch[k]), Math.max(0, s - patch[k])];
    return lo + Math.floor(rand() * (hi - lo + 1));
  });
  return { sample, start };
}

function planItem(rand: () => number, samples: readonly Sample[], patch: readonly number[], aug: AugmentOptions, crops: CropPlacement): ItemPlan {
  const uniform = (lo: number, hi: number) => lo + (hi - lo) * rand();
  const gauss = () => Math.sqrt(-2 * Math.log(1 - rand())) * Math.cos(2 * Math.PI * rand());
  const coin = () => rand() < 0.5;
  // Images without any instance fall back to random crops.
  const { sample, start } = (crops === 'objects' && objectCrop(rand, samples, patch)) || randomCrop(rand, samples, patch);
  const ndim = patch.length;
  // The linear part in the yx plane: L = affine · rot90 · flips, about the patch centre.
  let linear = [[aug.flip && coin() ? -1 : 1, 0], [0, aug.flip && coin() ? -1 : 1]];
  const square = patch[ndim - 1] === patch[ndim - 2];
  if (aug.rot90) {
    const k = square ? Math.floor(rand() * 4) : 2 * Math.floor(rand() * 2);
    const [c, s] = [[1, 0], [0, 1], [-1, 0], [0, -1]][k];
    linear = mul2([[c, -s], [s, c]], linear);
  }
  if (aug.affine) {
    const rad = Math.PI / 180;
    const theta = uniform(-aug.affine.rotation, aug.affine.rotation) * rad;
    const shear = Math.tan(uniform(-aug.affine.shear, aug.affine.shear) * rad);
    const zoom = uniform(aug.affine.zoom[0], aug.affine.zoom[1]);
    const rotation = [[Math.cos(theta), -Math.sin(theta)], [Math.sin(theta), Math.cos(theta)]];
    linear = mul2(mul2(mul2(rotation, [[1, 0], [shear, 1]]), [[1 / zoom, 0], [0, 1 / zoom]]), linear);
  }
  const flipZ = ndim === 3 && aug.flipZ && coin() ? -1 : 1;
  // source = centreSource + L·(output − centrePatch); centres are half-integers, so crops, flips and rot90 stay exact.
  const centrePatch = patch.map((p) => (p - 1) / 2);
  const centreSource = start.map((s, k) => s + centrePatch[k]);
  const [cy, cx] = centrePatch.slice(-2);
  const [sy, sx] = centreSource.slice(-2);
  const rows: AffineRows = [
    ndim === 3 ? [flipZ, 0, 0, centreSource[0] - flipZ * centrePatch[0]] : [1, 0, 0, 0],
    [0, linear[0][0], linear[0][1], sy - (linear[0][0] * cy + linear[0][1] * cx)],
    [0, linear[1][0], linear[1][1], sx - (linear[1][0] * cy + linear[1][1] * cx)],
  ];
  const blurSigma = aug.blur && rand() < aug.blur.p ? uniform(aug.blur.sigma[0], aug.blur.sigma[1]) : 0;
  const intensity: IntensityChange = {
    gain: uniform(aug.gain[0], aug.gain[1]),
    offset: aug.offset * gauss(),
    noiseStd: aug.noise ? uniform(aug.noise[0], aug.noise[1]) : 0,
    low: aug.clip ? aug.clip.low[0] + aug.clip.low[1] * gauss() : -Infinity,
    high: aug.clip ? aug.clip.high[0] + aug.clip.high[1] * gauss() : Infinity,
  };
  return { sample, rows, blurSigma, intensity };
}

/** Σ k² of gaussianBlur's normalized taps for σ. */
function sumOfSquaredTaps(sigma: number): number {
  const radius = Math.ceil(3 * sigma);
  const w = Array.from({ length: 2 * radius + 1 }, (_, i) => Math.exp(-((i - radius) ** 2) / (2 * sigma * sigma)));
  const total = w.reduce((a, b) => a + b, 0);
  return w.reduce((a, b) => a + (b / total) ** 2, 0);
}

/**
 * [N, 2, H, W] (dy, dx) smooth random displacements for the elastic warp. The field varies on the scale σ, so it is
 * drawn and blurred on a grid of about σ/4 spacing and interpolated to pixels: at σ = 40 a full-resolution blur took
 * 2 s per 256² batch of 2 on the software GPU, the grid about 50 ms.
 */
function elasticField(e: Engine, batch: number, patch: readonly number[], elastic: ElasticAugment, seed: number): Tensor {
  const sigma = elastic.sigma ?? 2 * elastic.amplitude;
  if (!(elastic.amplitude >= 0 && (sigma > 0 || elastic.amplitude === 0))) {
    throw new Error(`sampleBatch: elastic amplitude must be ≥ 0 and sigma > 0, got amplitude ${elastic.amplitude}, sigma ${sigma}`);
  }
  if (elastic.amplitude === 0) return e.zeros([batch, 2, ...patch]);
  const step = Math.max(1, sigma / 4);
  const grid = patch.map((p) => Math.ceil((p - 1) / step) + 1);
  // Grid points sit on the first and last pixels (alignCorners), so the grid's σ per axis is σ over its spacing.
  const gridSigma = patch.map((p, k) => (grid[k] > 1 ? (sigma * (grid[k] - 1)) / (p - 1) : sigma));
  // Uniform(−r, r) noise has variance r²/3 and the separable blur multiplies it by Σk² per axis: scale to std A/3.
  const unitStd = Math.sqrt(sumOfSquaredTaps(gridSigma[0]) * sumOfSquaredTaps(gridSigma[1]) / 3);
  const range = elastic.amplitude / (3 * unitStd);
  // Noise drawn out to the blur's reach beyond the grid, so no tap is a reflected (repeated) draw.
  const reach = gridSigma.map((g) => Math.ceil(3 * g));
  return e.tidy(() => {
    const noise = randomUniform(e, [batch, 2, ...grid.map((g, k) => g + 2 * reach[k])], seed, -range, range);
    const smooth = gaussianBlur(gaussianBlur(noise, new Array(batch).fill(gridSigma[0]), [2]), new Array(batch).fill(gridSigma[1]), [3]);
    const field = slice(smooth, [0, 0, ...reach], [batch, 2, ...grid]);
    return grid.every((g, k) => g === patch[k]) ? field : upsample(field, { size: patch, mode: 'linear', alignCorners: true });
  });
}

/**
 * A training batch of `batchSize` random patches from `samples` (each image [C, (D), H, W] already normalized, with
 * labels): images [N, C, (D), H, W] f32 and labels [N, 1, (D), H, W] i32 (-1 where the patch reaches outside the image
 * or the source says unlabeled). Where a patch reaches outside its image, the image is mirrored (reflect) and the
 * labels are -1, so no loss sees invented objects. With `layers` and overlapping labels, layers [N, L, (D), H, W] holds
 * every layer warped the same way (L the most of any sample; -1 in every layer outside the image).
 */
export function sampleBatch(e: Engine, samples: readonly Sample[], options: SampleBatchOptions): TrainBatch {
  const { batchSize, patchSize, seed } = options;
  if (samples.length === 0) throw new Error('sampleBatch: no samples');
  const ndim = samples[0].image.shape.length - 1;
  if (ndim !== 2 && ndim !== 3) throw new Error(`sampleBatch: sample "${samples[0].name}" has image shape [${samples[0].image.shape.join(', ')}]; expected [C, H, W] or [C, D, H, W]`);
  if (!Number.isSafeInteger(seed) || seed < 0) throw new Error(`sampleBatch: seed must be a non-negative integer below 2^53, got ${seed}`);
  if (!Number.isInteger(batchSize) || batchSize < 1) throw new Error(`sampleBatch: batchSize must be a positive integer, got ${batchSize}`);
  if (patchSize.length !== ndim || !patchSize.every((p) => Number.isInteger(p) && p > 0)) {
    throw new Error(`sampleBatch: patchSize [${patchSize.join(', ')}] must be ${ndim} positive integers for ${ndim}D samples`);
  }
  const channels = samples[0].image.shape[0];
  for (const s of samples) {
    if (s.image.shape.length !== ndim + 1 || s.image.shape[0] !== channels) {
      throw new Error(`sampleBatch: sample "${s.name}" has image shape [${s.image.shape.join(', ')}]; "${samples[0].name}" has [${samples[0].image.shape.join(', ')}] (channels and dimensions must agree)`);
    }
  }
  const aug: AugmentOptions = { ...defaultAugment(ndim), ...options.augment };
  const crops = options.crops ?? 'random';
  if (crops !== 'random' && crops !== 'objects') throw new Error(`sampleBatch: crops must be "random" or "objects", got ${JSON.stringify(crops)}`);
  for (const s of crops === 'objects' ? samples : []) if (!s.labels) throw new Error(`sampleBatch: sample "${s.name}" has no labels to centre crops on`);
  if (aug.elastic && ndim !== 2) throw new Error('sampleBatch: elastic warps are only supported in 2D');

  // Each item draws from its own generator, crop first: the crops of a seed do not depend on the augment options.
  const rand = seededRandom(seed);
  const word = () => Math.floor(rand() * 2 ** 32);
  const plans = Array.from({ length: batchSize }, () => word()).map((s) => planItem(seededRandom(s), samples, patchSize, aug, crops));
  const [elasticSeed, noiseSeed] = [word(), word()];
  const spacing = plans[0].sample.image.spacing;
  for (const p of plans) {
    const other = p.sample.image.spacing;
    if (other.length !== spacing.length || other.some((v, k) => Math.abs(v - spacing[k]) > 1e-6 * Math.abs(spacing[k]))) {
      throw new Error(`sampleBatch: samples "${plans[0].sample.name}" and "${p.sample.name}" have different spacing [${spacing.join(', ')}] vs [${other.join(', ')}]`);
    }
  }
  const sources = plans.map((p) => uploadSample(e, p.sample));
  const depth = options.layers ? Math.max(...samples.map((s) => s.labels?.layers ?? 1)) : 1;

  return e.noGrad(() =>
    e.tidy(() => {
      const warped = e.empty([batchSize, channels, ...patchSize]);
      const labels = e.empty([batchSize, 1, ...patchSize], 'i32');
      const field = aug.elastic ? elasticField(e, batchSize, patchSize, aug.elastic, elasticSeed) : null;
      plans.forEach((p, n) => warpInto(sources[n], { images: warped, labels, item: n }, p.rows, field));
      const layers = depth > 1 ? warpLayers(e, sources, plans, labels, depth, field) : undefined;
      const blurred = plans.some((p) => p.blurSigma > 0) ? gaussianBlur(warped, plans.map((p) => p.blurSigma), [ndim, ndim + 1]) : warped;
      const noise = plans.some((p) => p.intensity.noiseStd > 0) ? randomNormal(e, blurred.shape, noiseSeed) : null;
      const images = changeIntensity(blurred, plans.map((p) => p.intensity), noise);
      return { images, labels, ...(layers ? { layers } : {}), spacing: [...spacing] };
    }),
  );
}

/**
 * [N, L, ...patch] i32: layer 0 is the batch's flat labels, each further layer warped exactly like it (the warp's
 * image output is a scratch tensor; the labels' nearest-neighbour lookup is what matters). An item whose sample has
 * fewer layers gets 0 there inside its image.
 */
function warpLayers(e: Engine, sources: readonly UploadedSample[], plans: readonly ItemPlan[], flat: Tensor, depth: number, field: Tensor | null): Tensor {
  const [n, , ...patch] = flat.shape;
  const scratch = e.empty([n, sources[0].image.shape[0], ...patch]);
  const empty = new Map<UploadedSample, Tensor>();
  const upper = Array.from({ length: depth - 1 }, (_, k) => {
    const layer = e.empty([n, 1, ...patch], 'i32');
    plans.forEach((p, item) => {
      const source = sources[item];
      let labels = source.upperLayers[k];
      if (!labels) {
        if (!empty.has(source)) empty.set(source, e.zeros(source.labels!.shape, 'i32'));
        labels = empty.get(source)!;
      }
      warpInto({ image: source.image, labels }, { images: scratch, labels: layer, item }, p.rows, field);
    });
    return layer;
  });
  return concat([flat, ...upper], 1);
}
