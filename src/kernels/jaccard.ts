// Soft Jaccard losses (shaders/jaccard.wgsl): the semantic soft Jaccard on class probabilities, and RDCNet's embedding
// soft Jaccard (ESJ), which scores Gaussian instance probabilities around the predicted centroids of the true
// instances. Both reduce per segment (an item's class, or an instance) the intersection and the sums of probabilities
// and targets in workgroups, and one shared kernel turns those rows into the mean loss and its derivatives.
import { record } from '../engine/autograd.ts';
import type { Engine } from '../engine/engine.ts';
import type { Tensor } from '../engine/tensor.ts';
import { shaderConstants } from '../shaders.gen.ts';
import { expectF32 } from './elementwise.ts';
import { checkLabels, instanceIds } from './instance.ts';

/** KB: instances scored per workgroup pass. */
const { KB, WORKGROUP_SIZE } = shaderConstants.jaccard;
/** Workgroups per item for the per-instance passes; each loops over blocks of KB instances. */
const MAX_BLOCK_WORKGROUPS = 32;

const fmt = (shape: readonly number[]) => `[${shape.join(', ')}]`;

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
      bindings: { labels, coef, gy, gprobs, sj }, workgroups: e.groups1D(gprobs.size, WORKGROUP_SIZE),
    });
    return [gprobs];
  });
  if (!y.node) coef.dispose();
  return y;
}

/**
 * RDCNet's embedding soft Jaccard loss (ESJ) of pixel embeddings [N, D, ...] (D ≤ 3, in the units of `margin`)
 * against instance labels [N, 1, ...] i32 (0 background, > 0 instance ids, < 0 ignored everywhere). Instances are
 * per item. For every instance k: the centroid c_k is the mean predicted embedding over its true mask S_k (the
 * gradient flows through it), p_k(i) = exp(−½(‖e_i − c_k‖/σ)²) with σ = margin/√(2 ln 2) (p = 0.5 at the margin),
 * and over the item's foreground pixels (label > 0) I = Σ p·y, U = Σ (p + y) − I, L_k = 1 − (I + ε)/(U + ε).
 * The result is the mean over all instances of the batch (0 when there are none). Returns a scalar.
 *
 * On the GPU: every label gets a compact instance id (instanceIds), then workgroups reduce centroids and the sums for
 * blocks of instances, so the labels never leave the GPU.
 */
export function embeddingJaccardLoss(embeddings: Tensor, labels: Tensor, margin: number): Tensor {
  const op = 'embeddingJaccardLoss';
  expectF32(op, 'embeddings', embeddings);
  const pixels = checkLabels(op, embeddings, 'embeddings', labels);
  const [items, dims] = embeddings.shape;
  if (dims < 1 || dims > 3) throw new Error(`${op}: embeddings need 1 to 3 channels, got ${dims} in ${fmt(embeddings.shape)}`);
  if (!(margin > 0 && Number.isFinite(margin))) throw new Error(`${op}: margin must be a positive number, got ${margin}`);
  const e = embeddings.engine;
  const esj = { items, dims, pixels, invMargin2: 1 / margin ** 2, invSigma2: (2 * Math.LN2) / margin ** 2 };
  // Row n·P + k for instance k of item n (an item has at most P instances).
  const rows = items * pixels;
  const blocks: [number, number] = [Math.min(MAX_BLOCK_WORKGROUPS, Math.ceil(pixels / KB)), items];
  const pixelGroups = e.groups1D(items * pixels, WORKGROUP_SIZE);

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
