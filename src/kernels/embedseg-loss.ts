// EmbedSeg's loss (shaders/embedseg-loss.wgsl; SPEC.md "EmbedSeg", after Neven et al.'s spatial embedding loss as
// EmbedSeg trains it): per true instance a Gaussian around the grid coordinate of its medoid pixel with the
// instance's mean bandwidth, scored by the Lovasz hinge; a variance term pulling σ towards its instance mean; and the
// seediness regressed onto the (detached) Gaussian on instances and onto 0 on background.
import { record } from '../engine/autograd.ts';
import type { Tensor } from '../engine/tensor.ts';
import { shaderConstants } from '../shaders.gen.ts';
import { add, expectF32, mul } from './elementwise.ts';
import { checkLabels, instanceIds } from './instance.ts';
import { lovaszHinge } from './lovasz.ts';
import { sum } from './reduce.ts';

const { WORKGROUP_SIZE } = shaderConstants['embedseg-loss'];
const fmt = (shape: readonly number[]) => `[${shape.join(', ')}]`;

/** EmbedSeg's grid: linspace(0, 1, 1024) per axis, so 1/1023 per pixel. */
const DEFAULT_GRID_SPACING = 1 / 1023;

export interface EmbedSegLossOptions {
  /** Weight of the seed loss on instance pixels (background pixels weigh 1). Default 10. */
  foregroundWeight?: number;
  /** Weight of the Lovasz (instance) term. Default 1. */
  wInst?: number;
  /** Weight of the σ variance term. Default 10. */
  wVar?: number;
  /** Weight of the seed term. Default 1. */
  wSeed?: number;
  /** Grid step per spatial axis in layout order ([y, x] or [z, y, x]). Default 1/1023 on every axis. */
  gridSpacing?: readonly number[];
}

/** The loss weights in the kernels' uniform (Params in shaders/embedseg-loss.wgsl). */
interface TermWeights {
  seedScale: number;
  foregroundWeight: number;
  varScale: number;
}

/** The instances of a batch as rows: instance k of item n is row itemRows[n] + k. */
interface InstanceRows {
  /** [N, 1, ...] i32: instance id within the item, −1 background, −2 ignored (instanceIds). */
  ids: Tensor;
  /** Per item its first row; itemRows[N] = R. */
  itemRows: number[];
  /** itemRows as [N + 1] u32, and the item of every row [R] u32, for the kernels. */
  rowStart: Tensor;
  rowItem: Tensor;
  /** [R] u32: pixels per instance. */
  sizes: Tensor;
  /** [R] u32: the medoid's pixel index within its item. */
  medoids: Tensor;
  /** The kernels' uniform. */
  params: Record<string, number | number[]>;
}

/** Checks the grid spacing (one positive step per spatial axis); returns it per axis in layout order. */
function gridSteps(op: string, dims: number, gridSpacing: readonly number[] | undefined): number[] {
  const steps = gridSpacing ?? new Array<number>(dims).fill(DEFAULT_GRID_SPACING);
  if (steps.length !== dims || !steps.every((s) => s > 0 && Number.isFinite(s))) {
    throw new Error(`${op}: gridSpacing needs ${dims} positive steps (one per spatial axis), got ${fmt(steps)}`);
  }
  return [...steps];
}

/**
 * Numbers the instances of `labels` [N, 1, ...spatial] (checked by the caller), reads the instance count of every
 * item back (the one readback: rows of the Lovasz hinge are sized on the host) and finds every instance's medoid on
 * the GPU: the pixel with the smallest sum of grid distances to the instance's pixels (the lowest index among equal
 * sums). `steps` is the grid step per spatial axis in layout order.
 */
async function instanceRows(op: string, labels: Tensor, steps: number[], weights: TermWeights): Promise<InstanceRows> {
  const e = labels.engine;
  const [items, , ...spatial] = labels.shape;
  const dims = spatial.length;
  const pixels = spatial.reduce((a, b) => a * b, 1);
  const { ids, counts } = instanceIds(labels, op);
  const perItem = await counts.data();
  counts.dispose();
  const itemRows = [0];
  const itemOfRow: number[] = [];
  for (let n = 0; n < items; n++) {
    itemRows.push(itemRows[n] + perItem[n]);
    for (let k = 0; k < perItem[n]; k++) itemOfRow.push(n);
  }
  const rows = itemRows[items];
  // Embedding channels run x, y, z: the reverse of the spatial axes.
  const extent = [0, 1, 2].map((d) => (d < dims ? spatial[dims - 1 - d] : 1));
  const spacing = [0, 1, 2].map((d) => (d < dims ? steps[dims - 1 - d] : 0));
  const diagonal = Math.hypot(...extent.map((x, d) => (x - 1) * spacing[d]));
  const params = { items, dims, pixels, rows, extent, spacing, diagonal, ...weights };
  const rowStart = e.tensor(Uint32Array.from(itemRows), [items + 1]);
  const rowItem = e.tensor(Uint32Array.from(itemOfRow), [rows]);
  const sizes = e.zeros([rows], 'u32');
  const medoids = e.empty([rows], 'u32');
  const table: InstanceRows = { ids, itemRows, rowStart, rowItem, sizes, medoids, params };
  if (rows === 0) return table;

  const pixelGroups = e.groups1D(items * pixels, WORKGROUP_SIZE);
  const rowGroups = e.groups1D(rows, 1);
  const run = (entry: string, bindings: Record<string, Tensor>, workgroups: readonly [number, number?]) =>
    e.dispatch({ shader: 'embedseg-loss', entry, label: `${op}.${entry}`, bindings: { ...bindings, params }, workgroups });
  run('instance_sizes', { ids, rowStart, sizeCounts: sizes }, pixelGroups);
  const offsets = e.empty([rows + 1], 'u32');
  const chunkStart = e.empty([rows + 1], 'u32');
  run('member_offsets', { sizes, offsets, chunkStart }, [1]);
  const cursor = e.zeros([rows], 'u32');
  const members = e.empty([items * pixels], 'u32');
  const memberCoords = e.empty([items * pixels, 4]);
  run('member_scatter', { ids, rowStart, offsets, cursor, members, memberCoords }, pixelGroups);
  const medoidSums = e.empty([items * pixels], 'u32');
  const medoidBounds = e.empty([rows, 4]);
  run('medoid_bounds', { offsets, memberCoords, medoidBounds }, rowGroups);
  // At most one part-filled workgroup per instance beyond the full ones: Σ ceil(size/W) <= items·pixels/W + rows.
  const sumGroups = e.groups1D(Math.ceil((items * pixels) / WORKGROUP_SIZE) + rows, 1);
  run('medoid_sums', { offsets, chunkStart, memberCoords, medoidBounds, medoidSums }, sumGroups);
  run('medoid_argmin', { offsets, members, medoidSums, medoids }, rowGroups);
  for (const t of [offsets, chunkStart, cursor, members, memberCoords, medoidBounds, medoidSums]) t.dispose();
  return table;
}

/**
 * The medoid of every instance of `labels` [N, 1, ...spatial] i32 (0 background, > 0 instances, < 0 ignored): per
 * item a map from label to the flat pixel index (within the item) of the instance pixel with the smallest sum of
 * distances to the instance's other pixels, distances measured on the grid of `gridSpacing` (steps per spatial axis
 * in layout order; only their ratios matter). Equal sums go to the lowest pixel index. Computed on the GPU as in
 * embedSegLoss; reads the labels back to name the instances.
 */
export async function instanceMedoids(labels: Tensor, gridSpacing?: readonly number[]): Promise<Map<number, number>[]> {
  const op = 'instanceMedoids';
  if (labels.rank < 3) throw new Error(`${op}: labels must be [N, 1, ...spatial], got ${fmt(labels.shape)}`);
  checkLabels(op, labels, 'labels', labels);
  const steps = gridSteps(op, labels.rank - 2, gridSpacing);
  const unweighted = { seedScale: 0, foregroundWeight: 0, varScale: 0 };
  const { ids, itemRows, rowStart, rowItem, sizes, medoids, params } = await instanceRows(op, labels, steps, unweighted);
  const [pixelOf, values] = [await medoids.data(), await labels.data()];
  for (const t of [ids, rowStart, rowItem, sizes, medoids]) t.dispose();
  const pixels = params.pixels as number;
  return itemRows.slice(0, -1).map((first, n) => {
    const m = new Map<number, number>();
    for (let r = first; r < itemRows[n + 1]; r++) m.set(values[n * pixels + pixelOf[r]], pixelOf[r]);
    return m;
  });
}

/**
 * EmbedSeg's training loss of the raw network output `prediction` [N, 2D+1, ...spatial] (D = 2 or 3 spatial axes;
 * channels: D offsets in x, y(, z) order, D bandwidth logits σ, one seed logit) against instance labels
 * [N, 1, ...spatial] i32 (0 background, > 0 instance ids, < 0 ignored everywhere). Per item, with the embedding
 * e = tanh(offset) + grid (grid = pixel index per axis times `gridSpacing`) and seediness s = sigmoid(seed logit):
 * for every instance k, c_k = the grid coordinate of its medoid pixel, σ̄_k = mean σ over its pixels,
 * dist_k = exp(−Σ_d (e_d − c_kd)²·exp(10·σ̄_kd)) over the item's scored pixels;
 * inst = mean_k lovaszHinge(2·dist_k − 1, mask_k), var = mean_k mean over channels and mask of (σ − σ̄_k)² (σ̄_k
 * detached), seed = (Σ_bg s² + foregroundWeight·Σ_k Σ_{mask_k} (s − dist_k)²) / pixels (dist detached), and the item's
 * loss wInst·inst + wVar·var + wSeed·seed (items without instances: the seed term alone). Returns the mean over items
 * as a scalar; the gradient reaches offsets, σ (also through σ̄_k into dist_k) and seed logits.
 *
 * Asynchronous: the number of instances per item is read back once (a few bytes) to size the Lovasz rows [R, P],
 * which stalls the queue until the labels are numbered.
 */
export async function embedSegLoss(prediction: Tensor, labels: Tensor, options: EmbedSegLossOptions = {}): Promise<Tensor> {
  const op = 'embedSegLoss';
  expectF32(op, 'prediction', prediction);
  const dims = prediction.rank - 2;
  if (dims !== 2 && dims !== 3) throw new Error(`${op}: prediction must be [N, C, H, W] or [N, C, D, H, W], got ${fmt(prediction.shape)}`);
  const channels = 2 * dims + 1;
  if (prediction.shape[1] !== channels) {
    throw new Error(`${op}: prediction has ${prediction.shape[1]} channels, ${dims}D needs ${channels} (${dims} offsets, ${dims} σ, 1 seed) in ${fmt(prediction.shape)}`);
  }
  const pixels = checkLabels(op, prediction, 'prediction', labels);
  const { foregroundWeight = 10, wInst = 1, wVar = 10, wSeed = 1 } = options;
  for (const [name, w] of Object.entries({ foregroundWeight, wInst, wVar, wSeed })) {
    if (!(w >= 0 && Number.isFinite(w))) throw new Error(`${op}: ${name} must be a number >= 0, got ${w}`);
  }
  const steps = gridSteps(op, dims, options.gridSpacing);

  const items = prediction.shape[0];
  const weights = { seedScale: wSeed / (items * pixels), foregroundWeight, varScale: wVar / (items * dims) };
  const { ids, itemRows, rowStart, rowItem, sizes, medoids, params } = await instanceRows(op, labels, steps, weights);
  const e = prediction.engine;
  const rows = itemRows[items];
  const run = (entry: string, bindings: Record<string, Tensor>, workgroups: readonly [number, number?]) =>
    e.dispatch({ shader: 'embedseg-loss', entry, label: `${op}.${entry}`, bindings: { ...bindings, params }, workgroups });
  const pixelGroups = e.groups1D(items * pixels, WORKGROUP_SIZE);
  const rowGroups = e.groups1D(rows, 1);

  // σ̄ and the Gaussian (centre, bandwidth) of every instance.
  const sigmaMeans = e.empty([rows, 4]);
  const gaussians = e.empty([rows, 8]);
  if (rows > 0) run('sigma_means', { prediction, ids, rowStart, rowItem, sizes, medoids, sigmaMeans, gaussians }, rowGroups);
  medoids.dispose();
  const shared = { prediction, ids, rowStart, sizes, sigmaMeans, gaussians };

  // Seed and var terms per pixel, summed.
  const terms = e.empty([items * pixels]);
  run('pixel_terms', { ...shared, terms }, pixelGroups);
  const pixelTerms = record(`${op}.pixelTerms`, [prediction], terms, (gterms) => {
    const gprediction = e.empty(prediction.shape);
    run('pixel_terms_grad', { ...shared, gterms, gprediction }, pixelGroups);
    return [gprediction];
  });
  const temporaries = [pixelTerms];
  let loss = sum(pixelTerms);

  if (rows > 0) {
    // The Lovasz hinge of every instance's Gaussian, each weighted wInst / (N·K_n).
    const logitRows = e.empty([rows, pixels]);
    const masks = e.empty([rows, pixels]);
    run('instance_logits', { prediction, ids, rowStart, gaussians, logits: logitRows, masks }, pixelGroups);
    const logits = record(`${op}.logits`, [prediction], logitRows, (glogits) => {
      const gsigmaMeans = e.empty([rows, 4]);
      run('sigma_mean_grad', { prediction, ids, rowItem, gaussians, glogits, gsigmaMeans }, rowGroups);
      const gprediction = e.empty(prediction.shape);
      run('logits_grad', { prediction, ids, rowStart, sizes, gaussians, glogits, gsigmaMeans, gprediction }, pixelGroups);
      gsigmaMeans.dispose();
      return [gprediction];
    });
    const rowWeights = new Float32Array(rows);
    for (let n = 0; n < items; n++) rowWeights.fill(wInst / (items * (itemRows[n + 1] - itemRows[n])), itemRows[n], itemRows[n + 1]);
    const instanceWeights = e.tensor(rowWeights, [rows]);
    const lovasz = lovaszHinge(logits, masks);
    const weighted = mul(lovasz, instanceWeights);
    const instanceLoss = sum(weighted);
    temporaries.push(logits, masks, instanceWeights, lovasz, weighted, instanceLoss, loss);
    loss = add(loss, instanceLoss);
  }
  if (!loss.node) {
    for (const t of temporaries) t.dispose();
    for (const t of [ids, rowStart, rowItem, sizes, sigmaMeans, gaussians]) t.dispose();
  }
  return loss;
}
