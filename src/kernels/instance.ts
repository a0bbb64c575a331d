// Instances of i32 label maps (shaders/instance.wgsl), shared by every model's per-instance losses and targets:
// label checks, instance ids (RDCNet's and EmbedSeg's losses) and per-instance label, pixel count, centroid and
// bounding box (CenterNet's targets). Everything stays on the GPU; ids follow ascending label order within an item,
// so every result depends on the labels only. Nothing here is differentiable, so nothing is recorded.
import type { Tensor } from '../engine/tensor.ts';
import { shaderConstants } from '../shaders.gen.ts';

/** SUM_WORDS: words per instance row of the accumulated sums. */
const { SUM_WORDS, WORKGROUP_SIZE } = shaderConstants.instance;
const fmt = (shape: readonly number[]) => `[${shape.join(', ')}]`;
const nextPowerOfTwo = (n: number) => 2 ** Math.ceil(Math.log2(Math.max(n, 1)));

/** Checks `labels` is i32 [N, 1, ...spatial of x]; returns the number of pixels per item. */
export function checkLabels(op: string, x: Tensor, what: string, labels: Tensor): number {
  if (x.rank < 3) throw new Error(`${op}: ${what} must be [N, C, ...spatial], got ${fmt(x.shape)}`);
  if (labels.dtype !== 'i32') throw new Error(`${op}: labels must be i32, got ${labels.dtype} ${fmt(labels.shape)}`);
  const expected = [x.shape[0], 1, ...x.shape.slice(2)];
  if (labels.rank !== expected.length || labels.shape.some((d, k) => d !== expected[k])) {
    throw new Error(`${op}: labels ${fmt(labels.shape)} must be ${fmt(expected)} for ${what} ${fmt(x.shape)}`);
  }
  return x.shape.slice(2).reduce((a, b) => a * b, 1);
}

/**
 * The instances of every item of `labels` [N, 1, ...spatial] i32 (0 background, > 0 instance labels, < 0 ignored),
 * numbered on the GPU so that per-instance losses never read labels back. `ids` (labels' shape, i32) holds each
 * instance pixel's id 0..K_n−1 within its item, in ascending label order (the smallest label of the item is 0), −1
 * for background and −2 for ignored pixels; `counts` [N] u32 holds K_n. `op` names the dispatches (the caller
 * checks the labels with checkLabels).
 */
export function instanceIds(labels: Tensor, op = 'instanceIds'): { ids: Tensor; counts: Tensor } {
  const { ids, counts, sortedLabels } = numberInstances(labels, op);
  sortedLabels.dispose();
  return { ids, counts };
}

/**
 * instanceIds, and [N, P] i32 whose row n starts with item n's K_n distinct labels in ascending order (the label of
 * instance k is entry k). A hash table per item collects the labels (insert), a prefix sum lists them (compact), each
 * is ranked among its item's labels (rank), and every pixel looks its label up in the sorted list (assign).
 */
function numberInstances(labels: Tensor, op: string): { ids: Tensor; counts: Tensor; sortedLabels: Tensor } {
  const e = labels.engine;
  const [items] = labels.shape;
  const pixels = labels.size / Math.max(items, 1);
  const ids = e.empty(labels.shape, 'i32');
  const counts = e.zeros([items], 'u32');
  const sortedLabels = e.empty([items, pixels], 'i32');
  if (labels.size === 0) return { ids, counts, sortedLabels };
  const slots = nextPowerOfTwo(pixels);
  const blocks = Math.ceil(pixels / WORKGROUP_SIZE);
  const instances = { items, pixels, slots, blocks };
  const pixelGroups = e.groups1D(items * pixels, WORKGROUP_SIZE);
  const keys = e.zeros([items, slots], 'i32');
  const labelList = e.empty([items, pixels], 'i32');
  const run = (entry: string, bindings: Record<string, Tensor>, workgroups: readonly [number, number?]) =>
    e.dispatch({ shader: 'instance', entry, label: `${op}.${entry.replace('instance_', '')}`, bindings: { ...bindings, instances }, workgroups });
  run('instance_insert', { labels, keys }, pixelGroups);
  run('instance_compact', { table: keys, labelList, counts }, [items]);
  run('instance_rank', { labelList, counts, sortedLabels }, e.groups1D(items * blocks, 1));
  run('instance_assign', { labels, sortedLabels, counts, ids }, pixelGroups);
  keys.dispose();
  labelList.dispose();
  return { ids, counts, sortedLabels };
}

export interface InstanceStatsOptions {
  /**
   * Instance rows per item (default: the pixels of an item, enough for any labelling). An item's instances past the
   * first maxInstances (in label order) get no row; `counts` still says how many it has.
   */
  maxInstances?: number;
}

export interface InstanceStats {
  /** Labels' shape, i32: each instance pixel's id in its item (ascending label order), −1 background, −2 ignored. */
  ids: Tensor;
  /** [N] u32: instances per item, K_n. */
  counts: Tensor;
  /** [N, S] i32: the label of instance k of item n (S = maxInstances; rows k ≥ K_n are 0 here and below). */
  labels: Tensor;
  /** [N, S] u32: the instance's pixel count (its extent). */
  sizes: Tensor;
  /** [N, S, dims] f32: the mean pixel coordinate per spatial axis, in layout order ((z,) y, x), in pixels. */
  centroids: Tensor;
  /** [N, S, dims] i32: the smallest and largest pixel coordinate per spatial axis (the bounding box, inclusive). */
  boxMin: Tensor;
  boxMax: Tensor;
}

/**
 * Per-instance statistics of `labels` [N, 1, ...spatial] i32 (1 to 3 spatial axes; 0 background, > 0 instance labels,
 * < 0 ignored), on the GPU: the instance ids as instanceIds and, per instance, its label, pixel count, centroid and
 * bounding box. Coordinates are integer sums (64-bit, exact) and integer minima and maxima, so the results do not
 * depend on the order in which pixels were counted. Returns tensors the caller disposes.
 */
export function instanceStats(labels: Tensor, options: InstanceStatsOptions = {}): InstanceStats {
  const op = 'instanceStats';
  if (labels.dtype !== 'i32') throw new Error(`${op}: labels must be i32, got ${labels.dtype} ${fmt(labels.shape)}`);
  const dims = labels.rank - 2;
  if (dims < 1 || dims > 3 || labels.shape[1] !== 1) {
    throw new Error(`${op}: labels must be [N, 1, ...spatial] with 1 to 3 spatial axes, got ${fmt(labels.shape)}`);
  }
  const e = labels.engine;
  const [items, , ...spatial] = labels.shape;
  const pixels = spatial.reduce((a, b) => a * b, 1);
  const rows = options.maxInstances ?? pixels;
  if (!Number.isInteger(rows) || rows < 0) throw new Error(`${op}: maxInstances must be a non-negative integer, got ${rows}`);
  const { ids, counts, sortedLabels } = numberInstances(labels, op);
  const result: InstanceStats = {
    ids, counts,
    labels: e.empty([items, rows], 'i32'),
    sizes: e.empty([items, rows], 'u32'),
    centroids: e.empty([items, rows, dims]),
    boxMin: e.empty([items, rows, dims], 'i32'),
    boxMax: e.empty([items, rows, dims], 'i32'),
  };
  if (items * rows > 0) {
    const shape = [...new Array<number>(3 - dims).fill(1), ...spatial, dims];
    const stats = { items, pixels, shape, rows };
    const sums = e.zeros([items * rows, SUM_WORDS], 'u32');
    const lows = e.fill([items * rows, 3], 0xffffffff, 'u32');
    e.dispatch({
      shader: 'instance', entry: 'instance_accumulate', label: `${op}.accumulate`, workgroups: e.groups1D(items * pixels, WORKGROUP_SIZE),
      bindings: { instanceIds: ids, sums, lows, stats },
    });
    e.dispatch({
      shader: 'instance', entry: 'instance_stats', label: `${op}.stats`, workgroups: e.groups1D(items * rows, WORKGROUP_SIZE),
      bindings: {
        instanceCounts: counts, instanceLabels: sortedLabels, summed: sums, lowest: lows, stats,
        rowLabels: result.labels, sizes: result.sizes, centroids: result.centroids, boxMin: result.boxMin, boxMax: result.boxMax,
      },
    });
    sums.dispose();
    lows.dispose();
  }
  sortedLabels.dispose();
  return result;
}
