// Peaks of maps and what finds and uses them (shaders/peaks.wgsl), shared by RDCNet's Hough voting and CenterNet's
// decoding: peak finding (the maximum of a window, with ties broken by index so that a plateau gives one peak, after
// an optional Gaussian blur) with per-map peak lists or the top K by value, an exclusive prefix sum for compaction,
// and the assignment of points to their nearest centre. Everything runs on the GPU; nothing is differentiable, so
// nothing is recorded.
//
// Maps are [(D), H, W] (one map) or [N, C, (D), H, W] (N·C maps): 2 or 3 spatial axes, with any batch of maps filtered
// as one volume [M, D, H, W] (D = 1 in 2D) whose windows never cross from one map into the next.
import type { Engine } from '../engine/engine.ts';
import type { Tensor } from '../engine/tensor.ts';
import { shaderConstants } from '../shaders.gen.ts';
import { expectF32 } from './elementwise.ts';
import { perAxis } from './pool.ts';
import { sortRows } from './sort.ts';

/** Gaussian taps reach round(4σ) voxels out (scipy's and the official RDCNet code's truncate = 4). */
const GAUSSIAN_TRUNCATE = 4;
/** SCAN_BLOCK: elements per workgroup of the prefix sum. */
const { SCAN_BLOCK, WORKGROUP_SIZE } = shaderConstants.peaks;

const fmt = (shape: readonly number[]) => `[${shape.join(', ')}]`;

function product(xs: readonly number[]): number {
  return xs.reduce((p, q) => p * q, 1);
}

interface MapGeometry {
  /** Leading shape of the per-map results: [] for one map, [N, C] for a batch. */
  batch: number[];
  maps: number;
  /** Spatial shape ((D), H, W). */
  spatial: number[];
  /** [M, D, H, W], D = 1 in 2D. */
  volume: [number, number, number, number];
}

function mapGeometry(op: string, map: Tensor): MapGeometry {
  expectF32(op, 'map', map);
  if (map.rank < 2 || map.rank > 5) throw new Error(`${op}: map must be [(D), H, W] or [N, C, (D), H, W], got ${fmt(map.shape)}`);
  const batch = map.rank >= 4 ? map.shape.slice(0, 2) : [];
  const spatial = map.shape.slice(batch.length);
  const maps = product(batch);
  const [d, h, w] = spatial.length === 2 ? [1, spatial[0], spatial[1]] : spatial;
  return { batch, maps, spatial, volume: [maps, d, h, w] };
}

/** Per volume axis (M, D, H, W) a per-spatial-axis value, `fill` for the map axis and for the D of 2D. */
function volumeAxes(spatial: readonly number[], values: readonly number[], fill: number): number[] {
  return [fill, ...(spatial.length === 2 ? [fill] : []), ...values];
}

type LineEntry = 'blur_line' | 'max_values' | 'max_pairs';

/**
 * One pass of a separable filter of radius `radius` along volume axis `axis`. A workgroup filters a segment of
 * TILE_AXIS outputs × TILE_INNER lines staged with its halo in workgroup memory: 16 × 16 (coalesced along the
 * unit-stride axes) for inner axes, 256 × 1 for the last axis, shorter tiles when a large radius would not fit.
 */
function linePass(e: Engine, op: string, entry: LineEntry, volume: readonly number[], axis: number, radius: number, bindings: Record<string, Tensor>): void {
  const len = volume[axis];
  const inner = product(volume.slice(axis + 1));
  const outer = product(volume.slice(0, axis));
  const slotBytes = entry.startsWith('max') ? 8 : 4;
  const limit = e.device.limits.maxComputeWorkgroupStorageSize;
  const tiles: [number, number][] = inner > 1 ? [[16, 16], [256, 1], [64, 1]] : [[256, 1], [64, 1]];
  const tile = tiles.find(([a, i]) => (a + 2 * radius) * i * slotBytes <= limit);
  if (!tile) throw new Error(`${op}: a filter radius of ${radius} voxels does not fit in workgroup memory (${limit} bytes)`);
  const [tileAxis, tileInner] = tile;
  const tilesAxis = Math.ceil(len / tileAxis);
  const tilesInner = Math.ceil(inner / tileInner);
  e.dispatch({
    shader: 'peaks', entry, constants: { RADIUS: radius, TILE_AXIS: tileAxis, TILE_INNER: tileInner },
    bindings: { ...bindings, lineParams: { len, inner, outer, tilesAxis, tilesInner } },
    workgroups: e.groups1D(outer * tilesAxis * tilesInner, 1), label: `${op}.${entry}[axis ${axis}, r ${radius}]`,
  });
}

/** Normalized Gaussian taps of σ (in voxels) reaching round(4σ) voxels out. */
function gaussianTaps(sigma: number): number[] {
  const r = Math.round(GAUSSIAN_TRUNCATE * sigma);
  const w = Array.from({ length: 2 * r + 1 }, (_, k) => Math.exp(-0.5 * ((k - r) / sigma) ** 2));
  const total = w.reduce((p, q) => p + q, 0);
  return w.map((v) => v / total);
}

/**
 * `map` blurred by a separable Gaussian of σ pixels per spatial axis (0 leaves an axis alone), each reaching
 * round(4σ) pixels out, with zeros outside the map (TensorFlow's 'SAME' convolution); axes in layout order. Null
 * when no axis is blurred.
 */
function blur(op: string, map: Tensor, g: MapGeometry, sigma: readonly number[]): Tensor | null {
  const e = map.engine;
  const axisSigma = volumeAxes(g.spatial, sigma, 0);
  let current: Tensor | null = null;
  for (let axis = 1; axis < 4; axis++) {
    if (axisSigma[axis] === 0) continue;
    const taps = gaussianTaps(axisSigma[axis]);
    const tapTensor = e.tensor(new Float32Array(taps), [taps.length]);
    const next = e.empty(map.shape);
    linePass(e, op, 'blur_line', g.volume, axis, (taps.length - 1) / 2, { lineIn: current ?? map, lineOut: next, taps: tapTensor });
    tapTensor.dispose();
    current?.dispose();
    current = next;
  }
  return current;
}

/** For every pixel, the flat index (in the whole volume) of the maximum (value, lower index) pair within its window. */
function windowMaxIndex(op: string, map: Tensor, volume: readonly number[], radius: readonly number[]): Tensor {
  const e = map.engine;
  const axes = [1, 2, 3].filter((a) => radius[a] > 0);
  let value: Tensor | null = null;
  let index: Tensor | null = null;
  for (const axis of axes.length > 0 ? axes : [3]) {
    const nextValue = e.empty(map.shape);
    const nextIndex = e.empty(map.shape, 'u32');
    const out = { pairValueOut: nextValue, pairIndexOut: nextIndex };
    if (value && index) linePass(e, op, 'max_pairs', volume, axis, radius[axis], { pairValueIn: value, pairIndexIn: index, ...out });
    else linePass(e, op, 'max_values', volume, axis, radius[axis], { lineIn: map, ...out });
    value?.dispose();
    index?.dispose();
    value = nextValue;
    index = nextIndex;
  }
  value!.dispose();
  return index!;
}

/** A u32 view of an i32/u32 mask of `shape` (nonzero = allowed), checked. */
function maskView(op: string, mask: Tensor, shape: readonly number[], what: string): Tensor {
  if (mask.dtype === 'f32') throw new Error(`${op}: mask must be u32 or i32, got f32 ${fmt(mask.shape)}`);
  if (mask.rank !== shape.length || mask.shape.some((d, k) => d !== shape[k])) {
    throw new Error(`${op}: mask ${fmt(mask.shape)} must match the ${what} ${fmt(shape)}`);
  }
  return mask.engine.view(mask, mask.shape, 0, 'u32');
}

/**
 * Exclusive prefix sum of `values` (u32, any shape, read in row-major order) on the GPU: `offsets` [n] u32 with
 * offsets[i] = Σ_{j<i} values[j], and `total` [1] u32, the sum of all. Over 0/1 flags, offsets[i] is where element i
 * goes when the flagged elements are compacted, and total how many there are. Sums wrap around at 2³².
 */
export function exclusiveScan(values: Tensor): { offsets: Tensor; total: Tensor } {
  if (values.dtype !== 'u32') throw new Error(`exclusiveScan: values must be u32, got ${values.dtype} ${fmt(values.shape)}`);
  const e = values.engine;
  const n = values.size;
  const blocks = Math.max(1, Math.ceil(n / SCAN_BLOCK));
  const offsets = e.empty([n], 'u32');
  const blockSums = e.empty([blocks], 'u32');
  const total = e.empty([1], 'u32');
  const scanParams = { n, blocks };
  const scanIn = e.view(values, [n]);
  e.dispatch({ shader: 'peaks', entry: 'scan_blocks', bindings: { scanIn, scanOut: offsets, blockSums, scanParams }, workgroups: e.groups1D(blocks, 1) });
  e.dispatch({ shader: 'peaks', entry: 'scan_block_sums', bindings: { blockSums, scanTotal: total, scanParams }, workgroups: [1] });
  if (blocks > 1) {
    e.dispatch({ shader: 'peaks', entry: 'scan_add', bindings: { scanOut: offsets, blockSums, scanParams }, workgroups: e.groups1D(n, WORKGROUP_SIZE) });
  }
  scanIn.dispose();
  blockSums.dispose();
  return { offsets, total };
}

export interface FindPeaksOptions {
  /**
   * Window radius in pixels per spatial axis (or one for all): a peak is the maximum of the box of 2·radius + 1
   * pixels per axis around it. Default 1: the 3×3 (3×3×3) max-pool NMS of CenterNet's decoding.
   */
  radius?: number | readonly number[];
  /**
   * σ in pixels per spatial axis (or one for all) of a Gaussian blur of the map before the search: round(4σ) taps
   * each way, zeros outside the map (the truncate-4 filter of scipy and RDCNet's official code). Thresholds and
   * values are then the blurred map's. Default 0: no blur.
   */
  blurSigma?: number | readonly number[];
  /** A peak's value must exceed this (default −∞: every window maximum is a peak). */
  threshold?: number;
  /** u32 or i32 of the map's shape: peaks only where it is nonzero. */
  mask?: Tensor;
  /**
   * Keep at most this many peaks per map, the largest values first (equal values: the lower index first), as
   * CenterNet's top-K. Default: every peak, in index order.
   */
  maxPeaks?: number;
}

/** Per map a list of K peaks; B is the map's batch shape ([] for one map, [N, C] for a batch). */
export interface Peaks {
  /** B + [K] i32: the peak's flat index within its map ((z·H + y)·W + x); −1 past the map's peaks. */
  indices: Tensor;
  /** B + [K] f32: the map's value there; −∞ past the map's peaks. */
  values: Tensor;
  /** B + [K, dims] i32: the peak's coordinates ((z,) y, x); −1 past the map's peaks. */
  coords: Tensor;
  /** B u32: the number of peaks listed per map. */
  counts: Tensor;
}

/**
 * The peaks of `map` [(D), H, W] or [N, C, (D), H, W] f32 (2 or 3 spatial axes, no NaN), blurred first with
 * `blurSigma`: the pixels that are the maximum of their window of `radius` pixels per axis (clipped at the map's
 * border) and exceed `threshold` (and lie where `mask` is nonzero). Values are compared as (value, index) pairs,
 * larger value first and then the lower flat index, so equal values never make two peaks within one window: a
 * plateau that fits in a window gives one peak, its first pixel (CenterNet's `maxpool(heat) == heat` keeps all of a
 * plateau). Two peaks are therefore more than
 * `radius` apart along some axis, which bounds their number per map by K = Π ceil(size / (radius + 1)) over the axes.
 * Lists every peak per map in index order (K entries), or with `maxPeaks` the top maxPeaks by value (maxPeaks
 * entries). Returns tensors the caller disposes.
 */
export function findPeaks(map: Tensor, options: FindPeaksOptions = {}): Peaks {
  const op = 'findPeaks';
  const g = mapGeometry(op, map);
  const dims = g.spatial.length;
  const radius = perAxis(op, 'radius', options.radius ?? 1, dims, 0);
  const threshold = options.threshold ?? -Infinity;
  if (Number.isNaN(threshold)) throw new Error(`${op}: threshold must be a number, got NaN`);
  const { maxPeaks } = options;
  if (maxPeaks !== undefined && (!Number.isInteger(maxPeaks) || maxPeaks < 0)) {
    throw new Error(`${op}: maxPeaks must be a non-negative integer, got ${maxPeaks}`);
  }
  const sigma = options.blurSigma ?? 0;
  const sigmas = typeof sigma === 'number' ? g.spatial.map(() => sigma) : [...sigma];
  if (sigmas.length !== dims || sigmas.some((v) => !(v >= 0) || !Number.isFinite(v))) {
    throw new Error(`${op}: blurSigma must be ${dims} finite numbers ≥ 0 (one per spatial axis), got ${fmt(sigmas)}`);
  }
  const mask = options.mask ? maskView(op, options.mask, map.shape, 'map') : null;
  const e = map.engine;
  const capacity = product(g.spatial.map((d, a) => Math.ceil(d / (radius[a] + 1))));
  const peaksOf = (k: number): Peaks => ({
    indices: e.empty([...g.batch, k], 'i32'),
    values: e.empty([...g.batch, k]),
    coords: e.empty([...g.batch, k, dims], 'i32'),
    counts: e.empty(g.batch, 'u32'),
  });
  const list = peaksOf(capacity);
  const n = map.size;
  if (n > 0) {
    const blurred = blur(op, map, g, sigmas);
    const values = blurred ?? map;
    const maxIndex = windowMaxIndex(op, values, g.volume, volumeAxes(g.spatial, radius, 0));
    const flags = e.empty([n], 'u32');
    const markParams = { n, threshold };
    e.dispatch({
      shader: 'peaks', entry: mask ? 'mark_masked_peaks' : 'mark_peaks', label: `${op}.mark`, workgroups: e.groups1D(n, WORKGROUP_SIZE),
      bindings: { pairIndexIn: maxIndex, map: values, flags, markParams, ...(mask ? { mask } : {}) },
    });
    maxIndex.dispose();
    const { offsets, total } = exclusiveScan(flags);
    flags.dispose();
    const shape = [...new Array<number>(3 - dims).fill(1), ...g.spatial, dims];
    e.dispatch({
      shader: 'peaks', entry: 'list_peaks', label: `${op}.list`, workgroups: e.groups1D(g.maps * capacity, WORKGROUP_SIZE),
      bindings: {
        map: values, offsets, total, peakIndices: list.indices, peakValues: list.values, peakCoords: list.coords, peakCounts: list.counts,
        listParams: { maps: g.maps, pixels: n / g.maps, shape, capacity, empty: -Infinity },
      },
    });
    offsets.dispose();
    total.dispose();
    blurred?.dispose();
  } else {
    // Maps without pixels have no peaks.
    list.counts.dispose();
    list.counts = e.zeros(g.batch, 'u32');
  }
  mask?.dispose();
  if (maxPeaks === undefined) return list;

  const top = peaksOf(maxPeaks);
  const values2D = e.view(list.values, [g.maps, capacity]);
  // Stable: equal values keep their index order. Entries past a map's peaks hold −∞ and sort after them.
  const sorted = sortRows(values2D, { descending: true });
  e.dispatch({
    shader: 'peaks', entry: 'top_peaks', label: `${op}.top`, workgroups: e.groups1D(g.maps * maxPeaks, WORKGROUP_SIZE),
    bindings: {
      listIndices: list.indices, listValues: list.values, listCoords: list.coords, listCounts: list.counts, order: sorted.indices,
      peakIndices: top.indices, peakValues: top.values, peakCoords: top.coords, peakCounts: top.counts,
      topParams: { maps: g.maps, capacity, top: maxPeaks, dims, empty: -Infinity },
    },
  });
  for (const t of [values2D, sorted.values, sorted.indices, list.indices, list.values, list.coords, list.counts]) t.dispose();
  return top;
}

export interface AssignNearestOptions {
  /** u32, one element: how many rows of `centres` are in use (default all). */
  count?: Tensor;
  /** u32 or i32 of the points' spatial shape: only points where it is nonzero are assigned; the rest get 0. */
  mask?: Tensor;
}

/**
 * Labels every point of `points` [dims, ...spatial] f32 (dims = 1 to 3 coordinates per point, channel first, as
 * RDCNet's embeddings) with 1 + the index of its nearest row of `centres` [K, dims] f32 (Euclidean; the lower index on
 * ties), 0 where `mask` is zero or when there are no centres. Returns i32 labels of the spatial shape.
 */
export function assignNearest(points: Tensor, centres: Tensor, options: AssignNearestOptions = {}): Tensor {
  const op = 'assignNearest';
  expectF32(op, 'points', points);
  expectF32(op, 'centres', centres);
  const dims = points.shape[0];
  if (points.rank < 2 || dims < 1 || dims > 3) throw new Error(`${op}: points must be [dims, ...spatial] with 1 to 3 coordinates, got ${fmt(points.shape)}`);
  if (centres.rank !== 2 || centres.shape[1] !== dims) {
    throw new Error(`${op}: centres must be [K, ${dims}] for points ${fmt(points.shape)}, got ${fmt(centres.shape)}`);
  }
  const { count } = options;
  if (count && (count.dtype !== 'u32' || count.size !== 1)) throw new Error(`${op}: count must be one u32, got ${count.dtype} ${fmt(count.shape)}`);
  const spatial = points.shape.slice(1);
  const mask = options.mask ? maskView(op, options.mask, spatial, "points' spatial shape") : null;
  const e = points.engine;
  const n = product(spatial);
  const labels = e.empty(spatial, 'i32');
  if (n > 0) {
    const centreCount = count ?? e.tensor(new Uint32Array([centres.shape[0]]), [1]);
    e.dispatch({
      shader: 'peaks', entry: mask ? 'assign_nearest_masked' : 'assign_nearest', label: op, workgroups: e.groups1D(n, WORKGROUP_SIZE),
      bindings: { points, centres, centreCount, labelsOut: labels, assignParams: { n, dims, centres: centres.shape[0] }, ...(mask ? { mask } : {}) },
    });
    if (!count) centreCount.dispose();
  }
  mask?.dispose();
  return labels;
}
