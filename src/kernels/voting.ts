// Hough voting, RDCNet's inference post-processing (papers/rdcnet.md "Post-processing", SPEC.md "Voting"), and the
// label clean-ups every model's post-processing shares: label-wise opening and small-object removal. Everything runs
// on the GPU (shaders/voting.wgsl); nothing here is differentiable, so nothing is recorded.
//
// Voting: every foreground pixel's embedding (physical units) is rounded to a voxel and counted in a histogram with one
// bin per voxel; the histogram is blurred (separable Gaussian); a bin is a centre when it is a peak of the blurred
// votes (the maximum of its window, ties to the lower index, so a plateau gives one centre) with at least minCount raw
// votes; centres are numbered 1..K in bin order; each foreground pixel takes the label of the nearest centre in
// embedding space. Blur, peaks, compaction and assignment are the peaks module's (src/kernels/peaks.ts).
import type { Tensor } from '../engine/tensor.ts';
import { shaderConstants } from '../shaders.gen.ts';
import { mul } from './elementwise.ts';
import { assignNearest, exclusiveScan, findPeaks } from './peaks.ts';
import { cast } from './shape.ts';

const { WORKGROUP_SIZE } = shaderConstants.voting;

export interface HoughVotingOptions {
  /** Voxel size per spatial axis ([y, x] or [z, y, x], or one number for all): the embeddings' unit. Default 1. */
  spacing?: number | readonly number[];
  /**
   * Minimum distance between centres in physical units (the official example: 20 px). The peak window spans
   * floor(minDistance / spacing) voxels on each side of a bin, per axis.
   */
  minDistance: number;
  /** Votes a centre's own bin needs (default 5, the official min_count). */
  minCount?: number;
  /** Gaussian σ of the vote blur in voxels, per axis or one for all; default √(minDistance / spacing). 0: no blur. */
  blurSigma?: number | readonly number[];
  /** For f32 foreground probabilities: a pixel is foreground where its probability exceeds this (default 0.5). */
  threshold?: number;
  /** Radius in physical units of a label-wise morphological opening of the result (3D-ORG: 0.5 µm). Default none. */
  opening?: number;
  /** Instances with fewer pixels are removed (after the opening) and the rest renumbered 1..K. Default none. */
  minSize?: number;
}

interface VotingGeometry {
  ndim: 2 | 3;
  /** [D, H, W] with D = 1 in 2D. */
  volume: [number, number, number];
  /** Spacing per volume axis (z, y, x); 1 for the z of 2D. */
  spacing: [number, number, number];
}

function product(xs: readonly number[]): number {
  return xs.reduce((p, q) => p * q, 1);
}

function perAxis(op: string, what: string, value: number | readonly number[], ndim: number): number[] {
  const list = typeof value === 'number' ? new Array<number>(ndim).fill(value) : [...value];
  if (list.length !== ndim) throw new Error(`${op}: ${what} has ${list.length} values for ${ndim} spatial axes`);
  return list;
}

/** The volume [D, H, W] (D = 1 in 2D) of a [(D), H, W] shape. */
function volumeOf(op: string, shape: readonly number[]): [number, number, number] {
  if (shape.length !== 2 && shape.length !== 3) throw new Error(`${op}: expected a [(D), H, W] shape, got [${shape.join(', ')}]`);
  return shape.length === 2 ? [1, shape[0], shape[1]] : [shape[0], shape[1], shape[2]];
}

function checkVoting(op: string, embeddings: Tensor, foreground: Tensor, spacing: number | readonly number[]): VotingGeometry {
  const ndim = embeddings.shape[0];
  if (embeddings.dtype !== 'f32') throw new Error(`${op}: embeddings must be f32, got ${embeddings.dtype}`);
  if ((ndim !== 2 && ndim !== 3) || embeddings.rank !== ndim + 1) {
    throw new Error(`${op}: embeddings must be [ndim, (D), H, W] with ndim 2 or 3, got [${embeddings.shape.join(', ')}]`);
  }
  const spatial = embeddings.shape.slice(1);
  if (foreground.rank !== ndim || foreground.shape.some((d, k) => d !== spatial[k])) {
    throw new Error(`${op}: foreground [${foreground.shape.join(', ')}] does not match the embeddings' spatial shape [${spatial.join(', ')}]`);
  }
  const s = perAxis(op, 'spacing', spacing, ndim);
  if (s.some((v) => !(v > 0) || !Number.isFinite(v))) throw new Error(`${op}: spacing must be positive, got [${s.join(', ')}]`);
  return { ndim, volume: volumeOf(op, spatial), spacing: ndim === 2 ? [1, s[0], s[1]] : [s[0], s[1], s[2]] };
}

/** The foreground as a u32 mask (nonzero = foreground): f32 probabilities are thresholded, integer masks viewed as u32. */
function foregroundMask(foreground: Tensor, threshold: number): Tensor {
  const e = foreground.engine;
  if (foreground.dtype !== 'f32') return e.view(foreground, foreground.shape, 0, 'u32');
  const mask = e.empty(foreground.shape, 'u32');
  e.dispatch({
    shader: 'voting', entry: 'foreground_from_probability', workgroups: e.groups1D(mask.size, WORKGROUP_SIZE),
    bindings: { probability: foreground, fgMask: mask, maskParams: { n: mask.size, threshold } },
  });
  return mask;
}

function voteParams(g: VotingGeometry) {
  return { shape: [...g.volume, product(g.volume)], spacing: g.spacing, ndim: g.ndim };
}

function castVotes(embeddings: Tensor, mask: Tensor, g: VotingGeometry): Tensor {
  const e = embeddings.engine;
  const votes = e.zeros(mask.shape, 'u32');
  e.dispatch({
    shader: 'voting', entry: 'cast_votes', workgroups: e.groups1D(mask.size, WORKGROUP_SIZE),
    bindings: { embeddings, foreground: mask, votes, voteParams: voteParams(g) },
  });
  return votes;
}

/**
 * The vote histogram (u32, the foreground's shape): how many foreground pixels' embeddings round to each voxel.
 * Votes outside the image are dropped. For inspection (the supplement's Fig. 2) and tests.
 */
export function houghVotes(embeddings: Tensor, foreground: Tensor, options: Pick<HoughVotingOptions, 'spacing' | 'threshold'> = {}): Tensor {
  const g = checkVoting('houghVotes', embeddings, foreground, options.spacing ?? 1);
  const mask = foregroundMask(foreground, options.threshold ?? 0.5);
  const votes = castVotes(embeddings, mask, g);
  mask.dispose();
  return votes;
}

/**
 * Instance labels (i32, the foreground's shape; 0 = background, 1..K by centre position in bin order) from
 * RDCNet's embeddings [ndim, (D), H, W] (f32, physical units: pixel coordinates × spacing, grid included) and a
 * foreground [(D), H, W]: f32 probabilities (thresholded at `threshold`) or an i32/u32 mask (nonzero = foreground).
 * Without any centre, every pixel is 0.
 */
export function houghVotingTensor(embeddings: Tensor, foreground: Tensor, options: HoughVotingOptions): Tensor {
  const op = 'houghVoting';
  const g = checkVoting(op, embeddings, foreground, options.spacing ?? 1);
  const { minDistance, minCount = 5, threshold = 0.5 } = options;
  if (!(minDistance > 0) || !Number.isFinite(minDistance)) throw new Error(`${op}: minDistance must be positive, got ${minDistance}`);
  if (!Number.isInteger(minCount) || minCount < 0) throw new Error(`${op}: minCount must be a non-negative integer, got ${minCount}`);
  const e = embeddings.engine;
  const n = product(g.volume);
  if (n === 0) return e.zeros(foreground.shape, 'i32');
  const spatialAxes = g.ndim === 2 ? [1, 2] : [0, 1, 2];
  const spacing = spatialAxes.map((a) => g.spacing[a]);
  const sigma = options.blurSigma === undefined ? spacing.map((s) => Math.sqrt(minDistance / s)) : perAxis(op, 'blurSigma', options.blurSigma, g.ndim);
  if (sigma.some((s) => !(s >= 0))) throw new Error(`${op}: blurSigma must be non-negative, got [${sigma.join(', ')}]`);
  const radius = spacing.map((s) => Math.floor(minDistance / s));

  const mask = foregroundMask(foreground, threshold);
  const votes = castVotes(embeddings, mask, g);
  const enough = e.empty(votes.shape, 'u32');
  e.dispatch({
    shader: 'voting', entry: 'enough_votes', workgroups: e.groups1D(n, WORKGROUP_SIZE),
    bindings: { counts: votes, flags: enough, centreParams: { n, minCount } },
  });
  const counts = cast(votes, 'f32');
  votes.dispose();
  const peaks = findPeaks(counts, { blurSigma: sigma, radius, threshold: 0, mask: enough });
  counts.dispose();
  enough.dispose();
  // Centres in physical units: bin coordinates times the spacing.
  const bins = cast(peaks.coords, 'f32');
  const spacingTensor = e.tensor(new Float32Array(spacing), [g.ndim]);
  const centres = mul(bins, spacingTensor);
  let labels = assignNearest(embeddings, centres, { count: peaks.counts, mask });
  const capacity = peaks.indices.shape[0];
  for (const t of [mask, bins, spacingTensor, centres, peaks.indices, peaks.values, peaks.coords, peaks.counts]) t.dispose();

  if (options.opening !== undefined) {
    const opened = labelOpening(labels, spatialAxes.map((a) => options.opening! / g.spacing[a]));
    labels.dispose();
    labels = opened;
  }
  if (options.minSize !== undefined) {
    const kept = removeSmallObjects(labels, options.minSize, capacity);
    labels.dispose();
    labels = kept;
  }
  return labels;
}

/** houghVotingTensor read back: the instance labels as an Int32Array (row-major, the foreground's shape). */
export async function houghVoting(embeddings: Tensor, foreground: Tensor, options: HoughVotingOptions): Promise<Int32Array> {
  const labels = houghVotingTensor(embeddings, foreground, options);
  try {
    return (await labels.data()) as Int32Array;
  } finally {
    labels.dispose();
  }
}

/** Offsets (z, y, x) of the ellipsoid with semi-axes `radius` voxels (per volume axis; 0 = flat along that axis). */
function ellipsoidOffsets(radius: readonly number[]): number[] {
  const reach = radius.map((r) => Math.floor(r));
  const offsets: number[] = [];
  for (let z = -reach[0]; z <= reach[0]; z++) {
    for (let y = -reach[1]; y <= reach[1]; y++) {
      for (let x = -reach[2]; x <= reach[2]; x++) {
        const d = [z, y, x].reduce((acc, o, a) => acc + (o === 0 ? 0 : (o / radius[a]) ** 2), 0);
        if (d <= 1) offsets.push(z, y, x);
      }
    }
  }
  return offsets;
}

/**
 * Label-wise morphological opening of i32 labels [(D), H, W] with an ellipsoid (ellipse in 2D) of `radius` voxels per
 * axis (fractional radii allowed; 3D-ORG's 0.5 µm is 0.5 / spacing). Erosion: a pixel keeps its label when every
 * neighbour under the element carries the same label (neighbours outside the image do not erode, so objects cut by
 * a tile border are not eaten from it). Dilation: a pixel of the original label comes back when a neighbour under
 * the element survived with that label. Labels <= 0 pass through; removed pixels become 0.
 */
export function labelOpening(labels: Tensor, radius: number | readonly number[]): Tensor {
  const op = 'labelOpening';
  if (labels.dtype !== 'i32') throw new Error(`${op}: labels must be i32, got ${labels.dtype}`);
  const volume = volumeOf(op, labels.shape);
  const r = perAxis(op, 'radius', radius, labels.rank);
  if (r.some((v) => !(v >= 0) || !Number.isFinite(v))) throw new Error(`${op}: radius must be non-negative, got [${r.join(', ')}]`);
  const e = labels.engine;
  const offsets = ellipsoidOffsets(labels.rank === 2 ? [0, ...r] : r);
  if (offsets.length === 3 || labels.size === 0) return e.copy(labels);
  const seOffsets = e.tensor(new Int32Array(offsets), [offsets.length], 'i32');
  const morphParams = { shape: [...volume, labels.size], offsets: offsets.length / 3 };
  const workgroups = e.groups1D(labels.size, WORKGROUP_SIZE);
  const eroded = e.empty(labels.shape, 'i32');
  e.dispatch({ shader: 'voting', entry: 'erode_labels', workgroups, bindings: { labelsIn: labels, seOffsets, eroded, morphParams } });
  const out = e.empty(labels.shape, 'i32');
  e.dispatch({ shader: 'voting', entry: 'dilate_labels', workgroups, bindings: { labelsIn: labels, seOffsets, eroded, labelsOut: out, morphParams } });
  eroded.dispose();
  seOffsets.dispose();
  return out;
}

/**
 * Removes the instances of i32 labels (any shape) with fewer than `minSize` pixels and renumbers the rest 1..K in
 * the order of their old labels. Label values above `maxLabel` (default: the number of pixels, which bounds any
 * sequential labelling) are removed too; labels <= 0 pass through.
 */
export function removeSmallObjects(labels: Tensor, minSize: number, maxLabel: number = labels.size): Tensor {
  const op = 'removeSmallObjects';
  if (labels.dtype !== 'i32') throw new Error(`${op}: labels must be i32, got ${labels.dtype}`);
  if (!Number.isInteger(minSize) || minSize < 0) throw new Error(`${op}: minSize must be a non-negative integer, got ${minSize}`);
  if (!Number.isInteger(maxLabel) || maxLabel < 0) throw new Error(`${op}: maxLabel must be a non-negative integer, got ${maxLabel}`);
  const e = labels.engine;
  const sizeParams = { n: labels.size, maxLabel, minSize };
  const sizes = e.zeros([maxLabel + 1], 'u32');
  e.dispatch({ shader: 'voting', entry: 'label_sizes', workgroups: e.groups1D(labels.size, WORKGROUP_SIZE), bindings: { labelsIn: labels, sizes, sizeParams } });
  const kept = e.empty([maxLabel + 1], 'u32');
  e.dispatch({ shader: 'voting', entry: 'keep_labels', workgroups: e.groups1D(maxLabel + 1, WORKGROUP_SIZE), bindings: { sizes, flags: kept, sizeParams } });
  sizes.dispose();
  const { offsets, total } = exclusiveScan(kept);
  total.dispose();
  const out = e.empty(labels.shape, 'i32');
  e.dispatch({
    shader: 'voting', entry: 'relabel', workgroups: e.groups1D(labels.size, WORKGROUP_SIZE),
    bindings: { labelsIn: labels, kept, keptOffsets: offsets, labelsOut: out, sizeParams },
  });
  kept.dispose();
  offsets.dispose();
  return out;
}
