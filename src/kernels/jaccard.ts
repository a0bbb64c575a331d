// Soft Jaccard losses (shaders/jaccard.wgsl): the semantic soft Jaccard on class probabilities, and RDCNet's embedding
// soft Jaccard (ESJ), which scores Gaussian instance probabilities around the predicted centroids of the true
// instances. Both reduce per segment (an item's class, or an instance) the intersection and the sums of probabilities
// and targets in workgroups, and one shared kernel turns those rows into the mean loss and its derivatives.
import { record } from '../engine/autograd.ts';
import type { Engine } from '../engine/engine.ts';
import type { Tensor } from '../engine/tensor.ts';
import { expectF32 } from './elementwise.ts';

/** Instances scored per workgroup pass (KB in shaders/jaccard.wgsl). */
const KB = 8;
/** Workgroups per item for the per-instance passes; each loops over blocks of KB instances. */
const MAX_BLOCK_WORKGROUPS = 32;

const fmt = (shape: readonly number[]) => `[${shape.join(', ')}]`;

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
 * The mean of 1 − (I + ε)/(U + ε) over the valid rows of `stats` ([rows, 4]: I, A, Y, valid), and per row the
 * derivatives (dL/dI, dL/dA) for the backward.
 */
function lossFromRows(e: Engine, stats: Tensor, rows: number, op: string): { loss: Tensor; coef: Tensor } {
  const loss = e.empty([]);
  const coef = e.empty([rows, 2]);
  e.dispatch({ shader: 'jaccard', entry: 'jaccard_loss', label: op, bindings: { stats, loss, coef, lossParams: { rows } }, workgroups: [1] });
  return { loss, coef };
}

export interface SoftJaccardOptions {
  /**
   * Labels are instance ids and the classes background/foreground: class 1 where label > 0, class 0 where label = 0
   * (RDCNet's semantic head). Default false: labels are class indices.
   */
  foreground?: boolean;
}

/**
 * Soft Jaccard loss of class probabilities `probs` [N, C, ...] (softmax outputs) against class labels [N, 1, ...] i32:
 * per item n and class c, I = Σ p·y, U = Σ (p + y) − I over the pixels that have a class (label ≥ 0; −1 = ignored),
 * L_nc = 1 − (I + ε)/(U + ε), ε = 1e-6; the result is the mean over items and classes. Labels ≥ C count as a class
 * the probabilities never match. Returns a scalar.
 */
export function softJaccardLoss(probs: Tensor, labels: Tensor, options: SoftJaccardOptions = {}): Tensor {
  expectF32('softJaccardLoss', 'probs', probs);
  const pixels = checkLabels('softJaccardLoss', probs, 'probs', labels);
  const [items, classes] = probs.shape;
  if (options.foreground && classes !== 2) {
    throw new Error(`softJaccardLoss: foreground labels need 2 classes (background, foreground), probs have ${classes}`);
  }
  const e = probs.engine;
  const sj = { items, classes, pixels, foreground: options.foreground ? 1 : 0 };
  const rows = items * classes;
  const stats = e.zeros([rows, 4]);
  e.dispatch({
    shader: 'jaccard', entry: 'soft_jaccard_sums', label: 'softJaccardLoss.sums',
    bindings: { labels, probs, stats, sj }, workgroups: [classes, items],
  });
  const { loss, coef } = lossFromRows(e, stats, rows, 'softJaccardLoss');
  stats.dispose();
  const y = record('softJaccardLoss', [probs], loss, (gy) => {
    const gprobs = e.empty(probs.shape);
    e.dispatch({
      shader: 'jaccard', entry: 'soft_jaccard_backward', label: 'softJaccardLoss.backward',
      bindings: { labels, coef, gy, gprobs, sj }, workgroups: e.groups1D(gprobs.size, 256),
    });
    return [gprobs];
  });
  if (!y.node) coef.dispose();
  return y;
}

const nextPowerOfTwo = (n: number) => 2 ** Math.ceil(Math.log2(Math.max(n, 1)));

/**
 * Numbers the instances of every item on the GPU, so per-instance losses never read labels back: for labels
 * [N, 1, ...] i32 (checked by the caller), `ids` (labels' shape, i32) holds each instance pixel's id 0..K_n−1 within its
 * item (ids follow hash-table order, not label order), −1 for background (label 0) and −2 for ignored pixels (label
 * < 0); `counts` [N] u32 holds K_n. A hash table per item gives every label a slot (insert), a prefix sum over the
 * occupied slots numbers them (compact), and every pixel takes its slot's number (assign).
 */
export function instanceIds(labels: Tensor, op: string): { ids: Tensor; counts: Tensor } {
  const e = labels.engine;
  const [items] = labels.shape;
  const pixels = labels.size / Math.max(items, 1);
  const slots = nextPowerOfTwo(pixels);
  const instances = { items, pixels, slots };
  const pixelGroups = e.groups1D(items * pixels, 256);
  const keys = e.zeros([items, slots], 'i32');
  const ids = e.empty(labels.shape, 'i32');
  const counts = e.empty([items], 'u32');
  e.dispatch({ shader: 'jaccard', entry: 'esj_insert', label: `${op}.insert`, bindings: { labels, keys, ids, instances }, workgroups: pixelGroups });
  e.dispatch({ shader: 'jaccard', entry: 'esj_compact', label: `${op}.compact`, bindings: { table: keys, counts, instances }, workgroups: [items] });
  e.dispatch({ shader: 'jaccard', entry: 'esj_assign', label: `${op}.assign`, bindings: { table: keys, ids, instances }, workgroups: pixelGroups });
  keys.dispose();
  return { ids, counts };
}

/**
 * RDCNet's embedding soft Jaccard loss (ESJ) of pixel embeddings [N, D, ...] (D ≤ 3, in the units of `margin`)
 * against instance labels [N, 1, ...] i32 (0 background, > 0 instance ids, < 0 ignored everywhere). Instances are
 * per item. For every instance k: the centroid c_k is the mean predicted embedding over its true mask S_k (the
 * gradient flows through it), p_k(i) = exp(−½(‖e_i − c_k‖/σ)²) with σ = margin/√(2 ln 2) (p = 0.5 at the margin),
 * and over the item's foreground pixels (label > 0) I = Σ p·y, U = Σ (p + y) − I, L_k = 1 − (I + ε)/(U + ε).
 * The result is the mean over all instances of the batch (0 when there are none). Returns a scalar.
 *
 * On the GPU: a hash table per item gives every label a compact instance id (insert, then a prefix sum), then
 * workgroups reduce centroids and the sums for blocks of instances, so the labels never leave the GPU.
 */
export function embeddingJaccardLoss(embeddings: Tensor, labels: Tensor, margin: number): Tensor {
  const op = 'embeddingJaccardLoss';
  expectF32(op, 'embeddings', embeddings);
  const pixels = checkLabels(op, embeddings, 'embeddings', labels);
  const [items, dims] = embeddings.shape;
  if (dims < 1 || dims > 3) throw new Error(`${op}: embeddings need 1 to 3 channels, got ${dims} in ${fmt(embeddings.shape)}`);
  if (!(margin > 0 && Number.isFinite(margin))) throw new Error(`${op}: margin must be a positive number, got ${margin}`);
  const e = embeddings.engine;
  const slots = nextPowerOfTwo(pixels);
  const esj = { items, dims, pixels, slots, invMargin2: 1 / margin ** 2, invSigma2: (2 * Math.LN2) / margin ** 2 };
  const rows = items * slots;
  const blocks: [number, number] = [Math.min(MAX_BLOCK_WORKGROUPS, Math.ceil(pixels / KB)), items];
  const pixelGroups = e.groups1D(items * pixels, 256);

  const { ids, counts } = instanceIds(labels, op);
  const emb = embeddings;
  const centroids = e.empty([rows, 4]);
  e.dispatch({ shader: 'jaccard', entry: 'esj_centroids', label: `${op}.centroids`, bindings: { ids, counts, emb, centroids, esj }, workgroups: blocks });
  const stats = e.zeros([rows, 4]);
  e.dispatch({ shader: 'jaccard', entry: 'esj_sums', label: `${op}.sums`, bindings: { ids, counts, emb, centroids, stats, esj }, workgroups: blocks });
  const { loss, coef } = lossFromRows(e, stats, rows, op);
  stats.dispose();

  const y = record(op, [embeddings], loss, (gy) => {
    const gcent = e.empty([rows, 4]);
    e.dispatch({
      shader: 'jaccard', entry: 'esj_centroid_grad', label: `${op}.centroidGrad`,
      bindings: { ids, counts, emb, centroids, coef, gcent, esj }, workgroups: blocks,
    });
    const gemb = e.empty(embeddings.shape);
    e.dispatch({
      shader: 'jaccard', entry: 'esj_embedding_grad', label: `${op}.backward`,
      bindings: { ids, counts, emb, centroids, coef, gcent, gy, gemb, esj }, workgroups: pixelGroups,
    });
    gcent.dispose();
    return [gemb];
  });
  if (!y.node) for (const t of [ids, counts, centroids, coef]) t.dispose();
  return y;
}
