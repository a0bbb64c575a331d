// Hough voting, RDCNet's inference post-processing (papers/rdcnet.md "Post-processing", SPEC.md "Voting"), and the
// label clean-ups every model's post-processing shares: label-wise opening and small-object removal. Everything runs
// on the GPU (shaders/voting.wgsl); nothing here is differentiable, so nothing is recorded.
//
// Voting: every foreground pixel's embedding (physical units) is rounded to a voxel and counted in a histogram with one
// bin per voxel; the histogram is blurred (separable Gaussian); a bin is a centre when it is the maximum of its window
// (separable max filter over (value, index) pairs, so a plateau gives one centre) with at least minCount raw votes;
// centres are numbered 1..K in bin order through a prefix sum; each foreground pixel takes the label of the nearest
// centre in embedding space.
import type { Engine } from '../engine/engine.ts';
import type { Tensor } from '../engine/tensor.ts';

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

/** Gaussian taps reach round(4σ) voxels out (the official code's truncate = 4). */
const GAUSSIAN_TRUNCATE = 4;
/** Elements per workgroup of the prefix sum (shaders/voting.wgsl SCAN_BLOCK). */
const SCAN_BLOCK = 1024;

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
    shader: 'voting', entry: 'foreground_from_probability', workgroups: e.groups1D(mask.size, 256),
    bindings: { probability: foreground, fgMask: mask, maskParams: { n: mask.size, threshold } },
  });
  return mask;
}

function voteParams(g: VotingGeometry, capacity: number) {
  return { shape: [...g.volume, product(g.volume)], spacing: g.spacing, ndim: g.ndim, capacity };
}

function castVotes(embeddings: Tensor, mask: Tensor, g: VotingGeometry): Tensor {
  const e = embeddings.engine;
  const votes = e.zeros(mask.shape, 'u32');
  e.dispatch({
    shader: 'voting', entry: 'cast_votes', workgroups: e.groups1D(mask.size, 256),
    bindings: { embeddings, foreground: mask, votes, voteParams: voteParams(g, 0) },
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

type LineEntry = 'blur_votes' | 'blur_line' | 'max_blurred' | 'max_pairs';

/**
 * One pass of a separable filter of radius `radius` along volume axis `axis`. A workgroup filters a segment of
 * TILE_AXIS outputs × TILE_INNER lines staged with its halo in workgroup memory: 16 × 16 (coalesced along the
 * unit-stride axes) for inner axes, 256 × 1 for the last axis, shorter tiles when a large radius would not fit.
 */
function linePass(e: Engine, entry: LineEntry, volume: readonly number[], axis: number, radius: number, bindings: Record<string, Tensor>): void {
  const len = volume[axis];
  const inner = product(volume.slice(axis + 1));
  const outer = product(volume.slice(0, axis));
  const slotBytes = entry.startsWith('max') ? 8 : 4;
  const limit = e.device.limits.maxComputeWorkgroupStorageSize;
  const tiles: [number, number][] = inner > 1 ? [[16, 16], [256, 1], [64, 1]] : [[256, 1], [64, 1]];
  const tile = tiles.find(([a, i]) => (a + 2 * radius) * i * slotBytes <= limit);
  if (!tile) throw new Error(`houghVoting: a filter radius of ${radius} voxels does not fit in workgroup memory (${limit} bytes)`);
  const [tileAxis, tileInner] = tile;
  const tilesAxis = Math.ceil(len / tileAxis);
  const tilesInner = Math.ceil(inner / tileInner);
  e.dispatch({
    shader: 'voting', entry, constants: { RADIUS: radius, TILE_AXIS: tileAxis, TILE_INNER: tileInner },
    bindings: { ...bindings, lineParams: { len, inner, outer, tilesAxis, tilesInner } },
    workgroups: e.groups1D(outer * tilesAxis * tilesInner, 1), label: `voting.${entry}[axis ${axis}, r ${radius}]`,
  });
}

/** Normalized Gaussian taps of σ (in voxels) reaching round(4σ) voxels out. */
function gaussianTaps(sigma: number): number[] {
  const r = Math.round(GAUSSIAN_TRUNCATE * sigma);
  const w = Array.from({ length: 2 * r + 1 }, (_, k) => Math.exp(-0.5 * ((k - r) / sigma) ** 2));
  const total = w.reduce((p, q) => p + q, 0);
  return w.map((v) => v / total);
}

/** The votes blurred by a separable Gaussian of σ per volume axis (zero padding, as TensorFlow's 'SAME' conv). */
function blurVotes(votes: Tensor, volume: readonly number[], sigma: readonly number[]): Tensor {
  const e = votes.engine;
  const axes = [0, 1, 2].filter((a) => sigma[a] > 0);
  // Without any blur the first pass still converts the counts to f32 (radius 0, tap 1).
  const passes = axes.length > 0 ? axes.map((a) => ({ axis: a, taps: gaussianTaps(sigma[a]) })) : [{ axis: 2, taps: [1] }];
  let current: Tensor | null = null;
  for (const { axis, taps } of passes) {
    const next = e.empty(votes.shape, 'f32');
    const tapTensor = e.tensor(new Float32Array(taps), [taps.length]);
    const radius = (taps.length - 1) / 2;
    if (current) linePass(e, 'blur_line', volume, axis, radius, { blurIn: current, blurOut: next, taps: tapTensor });
    else linePass(e, 'blur_votes', volume, axis, radius, { counts: votes, blurOut: next, taps: tapTensor });
    tapTensor.dispose();
    current?.dispose();
    current = next;
  }
  return current!;
}

/** For every bin, the index of the maximum (value, lower index) pair within `radius` voxels per axis. */
function windowMaxIndex(blurred: Tensor, volume: readonly number[], radius: readonly number[]): Tensor {
  const e = blurred.engine;
  const axes = [0, 1, 2].filter((a) => radius[a] > 0);
  const passes = axes.length > 0 ? axes : [2];
  let value: Tensor | null = null;
  let index: Tensor | null = null;
  for (const axis of passes) {
    const nextValue = e.empty(blurred.shape, 'f32');
    const nextIndex = e.empty(blurred.shape, 'u32');
    const out = { pairValueOut: nextValue, pairIndexOut: nextIndex };
    if (value && index) linePass(e, 'max_pairs', volume, axis, radius[axis], { pairValueIn: value, pairIndexIn: index, ...out });
    else linePass(e, 'max_blurred', volume, axis, radius[axis], { blurIn: blurred, ...out });
    value?.dispose();
    index?.dispose();
    value = nextValue;
    index = nextIndex;
  }
  value!.dispose();
  return index!;
}

/** Exclusive prefix sum of a u32 vector, and its total ([1] u32), on the GPU. */
function exclusiveScan(values: Tensor): { offsets: Tensor; total: Tensor } {
  const e = values.engine;
  const n = values.size;
  const blocks = Math.max(1, Math.ceil(n / SCAN_BLOCK));
  const offsets = e.empty([n], 'u32');
  const blockSums = e.empty([blocks], 'u32');
  const total = e.empty([1], 'u32');
  const scanParams = { n, blocks };
  e.dispatch({ shader: 'voting', entry: 'scan_blocks', bindings: { scanIn: values, scanOut: offsets, blockSums, scanParams }, workgroups: e.groups1D(blocks, 1) });
  e.dispatch({ shader: 'voting', entry: 'scan_block_sums', bindings: { blockSums, scanTotal: total, scanParams }, workgroups: [1] });
  if (blocks > 1) {
    e.dispatch({ shader: 'voting', entry: 'scan_add', bindings: { scanOut: offsets, blockSums, scanParams }, workgroups: e.groups1D(n, 256) });
  }
  blockSums.dispose();
  return { offsets, total };
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
  const sigmaGiven = options.blurSigma === undefined ? null : perAxis(op, 'blurSigma', options.blurSigma, g.ndim);
  if (sigmaGiven?.some((s) => !(s >= 0))) throw new Error(`${op}: blurSigma must be non-negative, got [${sigmaGiven.join(', ')}]`);
  const sigma = [0, 1, 2].map((a) => {
    const k = spatialAxes.indexOf(a);
    if (k < 0) return 0;
    return sigmaGiven ? sigmaGiven[k] : Math.sqrt(minDistance / g.spacing[a]);
  });
  const radius = [0, 1, 2].map((a) => (spatialAxes.includes(a) ? Math.floor(minDistance / g.spacing[a]) : 0));
  // Two centres cannot lie in each other's window, so each cell of (radius + 1) voxels per axis holds at most one;
  // each centre also needs minCount of the at most n votes.
  const cells = product(g.volume.map((d, a) => Math.ceil(d / (radius[a] + 1))));
  const capacity = Math.max(1, Math.min(cells, minCount > 0 ? Math.floor(n / minCount) : n));

  const mask = foregroundMask(foreground, threshold);
  const votes = castVotes(embeddings, mask, g);
  const blurred = blurVotes(votes, g.volume, sigma);
  const maxIndex = windowMaxIndex(blurred, g.volume, radius);
  const isCentre = e.empty([n], 'u32');
  e.dispatch({
    shader: 'voting', entry: 'mark_centres', workgroups: e.groups1D(n, 256),
    bindings: { pairIndexIn: maxIndex, blurIn: blurred, counts: votes, flags: isCentre, centreParams: { n, minCount } },
  });
  votes.dispose();
  blurred.dispose();
  maxIndex.dispose();
  const { offsets, total } = exclusiveScan(isCentre);
  const centres = e.empty([capacity * 3], 'f32');
  e.dispatch({
    shader: 'voting', entry: 'compact_centres', workgroups: e.groups1D(n, 256),
    bindings: { scanIn: isCentre, scanOut: offsets, centres, voteParams: voteParams(g, capacity) },
  });
  isCentre.dispose();
  offsets.dispose();
  let labels = e.empty(foreground.shape, 'i32');
  e.dispatch({
    shader: 'voting', entry: 'assign_labels', workgroups: e.groups1D(n, 256),
    bindings: { embeddings, foreground: mask, centres, scanTotal: total, labelsOut: labels, voteParams: voteParams(g, capacity) },
  });
  mask.dispose();
  centres.dispose();
  total.dispose();

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
  const workgroups = e.groups1D(labels.size, 256);
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
  e.dispatch({ shader: 'voting', entry: 'label_sizes', workgroups: e.groups1D(labels.size, 256), bindings: { labelsIn: labels, sizes, sizeParams } });
  const kept = e.empty([maxLabel + 1], 'u32');
  e.dispatch({ shader: 'voting', entry: 'keep_labels', workgroups: e.groups1D(maxLabel + 1, 256), bindings: { sizes, flags: kept, sizeParams } });
  sizes.dispose();
  const { offsets, total } = exclusiveScan(kept);
  total.dispose();
  const out = e.empty(labels.shape, 'i32');
  e.dispatch({
    shader: 'voting', entry: 'relabel', workgroups: e.groups1D(labels.size, 256),
    bindings: { labelsIn: labels, scanIn: kept, scanOut: offsets, labelsOut: out, sizeParams },
  });
  kept.dispose();
  offsets.dispose();
  return out;
}
