// PatchPerPix's training targets (shaders/patch-targets.wgsl), computed on the GPU from the layered instance labels of
// a training crop: per pixel p a binary P×P (P×P×P) patch of p's instance, overlap-aware, and the per-pixel
// "number of instances" class that replaces plain foreground where instances overlap (BBBC010's worms). Targets need
// no gradient, so nothing is recorded.
import type { Tensor } from '../engine/tensor.ts';
import { shaderConstants } from '../shaders.gen.ts';

const { WORKGROUP_SIZE } = shaderConstants['patch-targets'];
const fmt = (shape: readonly number[]) => `[${shape.join(', ')}]`;

export interface PatchTargetOptions {
  /** Patch extent: one odd size for every spatial axis, or one per axis ((P_z,) P_y, P_x). */
  patchSize: number | readonly number[];
  /**
   * Spatial size of the centred window to compute targets for (default: the whole crop): the output of a U-Net with
   * valid convolutions. Per axis at most the crop's size, and smaller by an even number of pixels. Patches reach into
   * the crop's margin around the window, whose labels count.
   */
  outputSize?: readonly number[];
}

export interface PatchTargets {
  /**
   * [N, P_z·P_y·P_x (P_y·P_x in 2D), (D'), H', W'] f32: channel c at window pixel p is offset o = coords(c) − (P − 1)/2
   * (row-major over the patch axes, so the centre channel is p's foreground). 1 iff p belongs to exactly one instance
   * and p + o belongs to it as well (in any layer), 0 where p is background or p + o is labelled and outside p's
   * instance, and −1 where the loss must ignore it: p unlabeled or covered by ≥ 2 instances (every channel), or p
   * foreground and p + o outside the crop or unlabeled. One tensor with −1 rather than a mask of the same size (P²
   * channels: 1681 per pixel at 41×41) halves the memory, and the BCE on logits z stays a composition of existing
   * ops: `where(greaterEqual(t, 0), where(greater(t, ½), −logSigmoid(z), −logSigmoid(−z)), 0)`, summed and divided
   * by the count of greaterEqual(t, 0); logSigmoid is finite and `where` sends no gradient to the unselected side.
   */
  targets: Tensor;
  /** [N, 1, (D'), H', W'] f32: 1 where p is labelled and has at most one instance (the patch loss counts it), else 0. */
  mask: Tensor;
  /** [N, 1, (D'), H', W'] i32: p's number of instances, 0, 1 or 2 (two or more); −1 where p is unlabeled. */
  numInstances: Tensor;
}

/**
 * PatchPerPix's targets for the instance labels of a batch of crops, `labels` i32 [N, L, (D), H, W] in canonical
 * layered form (src/train/layers.ts: a pixel's instance ids in its non-zero layers, 0 background; a negative id in
 * any layer marks it unlabeled). With L = 1 (no overlaps) the targets are the paper's plain ppp patches. Returns
 * tensors the caller disposes.
 */
export function patchTargets(labels: Tensor, options: PatchTargetOptions): PatchTargets {
  const op = 'patchTargets';
  if (labels.dtype !== 'i32' || (labels.rank !== 4 && labels.rank !== 5)) {
    throw new Error(`${op}: labels must be i32 [N, L, H, W] or [N, L, D, H, W], got ${labels.dtype} ${fmt(labels.shape)}`);
  }
  const [items, layers, ...crop] = labels.shape;
  if (layers < 1) throw new Error(`${op}: labels need at least one layer, got ${fmt(labels.shape)}`);
  const dims = crop.length;
  const patch = typeof options.patchSize === 'number' ? new Array<number>(dims).fill(options.patchSize) : [...options.patchSize];
  if (patch.length !== dims || patch.some((s) => !Number.isInteger(s) || s < 1 || s % 2 === 0)) {
    throw new Error(`${op}: patchSize must be an odd integer ≥ 1 or ${dims} of them (one per spatial axis), got ${JSON.stringify(options.patchSize)}`);
  }
  const window = options.outputSize ? [...options.outputSize] : crop;
  if (options.outputSize && (window.length !== dims || window.some((s, a) => !Number.isInteger(s) || s < 1 || s > crop[a] || (crop[a] - s) % 2 !== 0))) {
    throw new Error(`${op}: outputSize ${fmt(window)} must give ${dims} sizes, each 1 to the crop's ${fmt(crop)} and smaller by an even number (a centred window)`);
  }
  const e = labels.engine;
  const channels = patch.reduce((a, b) => a * b, 1);
  const pixels = window.reduce((a, b) => a * b, 1);
  const result: PatchTargets = {
    targets: e.empty([items, channels, ...window]),
    mask: e.empty([items, 1, ...window]),
    numInstances: e.empty([items, 1, ...window], 'i32'),
  };
  if (items * pixels === 0) return result;
  // (D, H, W, -) with D = 1 (P_z = 1) in 2D.
  const volume = (xs: readonly number[], fill: number) => [...(dims === 2 ? [fill] : []), ...xs, 0];
  const params = {
    items, layers, channels, pixels,
    crop: volume(crop, 1),
    window: volume(window, 1),
    margin: volume(crop.map((s, a) => (s - window[a]) / 2), 0),
    patchShape: volume(patch, 1),
  };
  e.dispatch({
    shader: 'patch-targets', entry: 'patch_targets', label: `${op}.targets`,
    bindings: { params, labels, targets: result.targets }, workgroups: e.groups1D(items * channels * pixels, WORKGROUP_SIZE),
  });
  e.dispatch({
    shader: 'patch-targets', entry: 'patch_pixels', label: `${op}.pixels`,
    bindings: { params, labels, mask: result.mask, numInstances: result.numInstances }, workgroups: e.groups1D(items * pixels, WORKGROUP_SIZE),
  });
  return result;
}
