// Warnings about data that loads but trains or predicts badly (pure TypeScript, every runtime): NaN or infinite pixels
// (normalizePercentile replaces them by their channel's lowest finite value), a training set whose masks hold no
// instance, instances with holes, and instances smaller than the model's postprocessing keeps. Each warning is one line
// naming how many images and which.
import type { ImageVolume, LabelVolume, Sample } from './volume.ts';

/** How many of an image's values are NaN and how many ±infinite. */
export function nonFinitePixels(image: ImageVolume): { nan: number; infinite: number } {
  let nan = 0;
  let infinite = 0;
  for (const v of image.data) {
    if (v !== v) nan++;
    else if (v === Infinity || v === -Infinity) infinite++;
  }
  return { nan, infinite };
}

/** "3 NaN and 1 infinite pixel(s)", or null when every pixel is finite. */
function nonFiniteCount({ nan, infinite }: { nan: number; infinite: number }): string | null {
  if (nan + infinite === 0) return null;
  return `${[nan && `${nan} NaN`, infinite && `${infinite} infinite`].filter(Boolean).join(' and ')} pixel(s)`;
}

const replaced = 'replaced by the lowest finite value of their channel before normalization';

/** The warning for one image to predict, or null: `what` (its file) holds NaN or infinite pixels, and what is done. */
export function nonFiniteWarning(what: string, image: ImageVolume): string | null {
  const count = nonFiniteCount(nonFinitePixels(image));
  return count && `${what}: ${count} ${replaced}`;
}

/**
 * Holes: background regions (label 0, face-connected) that do not reach the image border and touch exactly one
 * instance, in 2D or 3D. Gaps between touching instances, or next to unlabeled voxels, are not holes. With layers, a
 * voxel is background where no layer holds an instance.
 */
export function countHoles(labels: LabelVolume): number {
  const { data, shape } = labels;
  const layers = labels.layers ?? 1;
  const size = data.length / layers;
  const strides = shape.map((_, k) => shape.slice(k + 1).reduce((a, b) => a * b, 1));
  const seen = new Uint8Array(size);
  const stack = new Int32Array(size);
  let holes = 0;
  for (let start = 0; start < size; start++) {
    if (data[start] !== 0 || seen[start]) continue;
    // Flood fill of this background region: does it reach the border, and which one instance (0: none yet, -2: several
    // or unlabeled) surrounds it?
    let border = false;
    let enclosing = 0;
    let top = 0;
    const visit = (q: number) => {
      if (data[q] === 0) {
        if (!seen[q]) {
          seen[q] = 1;
          stack[top++] = q;
        }
        return;
      }
      for (let l = 0; l < layers && data[l * size + q] !== 0; l++) {
        const id = data[l * size + q];
        enclosing = enclosing === 0 || enclosing === id ? (id > 0 ? id : -2) : -2;
      }
    };
    seen[start] = 1;
    stack[top++] = start;
    while (top > 0) {
      const p = stack[--top];
      for (let k = 0; k < shape.length; k++) {
        const c = Math.floor(p / strides[k]) % shape[k];
        if (c > 0) visit(p - strides[k]);
        if (c < shape[k] - 1) visit(p + strides[k]);
        if (c === 0 || c === shape[k] - 1) border = true;
      }
    }
    if (!border && enclosing > 0) holes++;
  }
  return holes;
}

/** How many instances hold fewer than `min` voxels (an instance in several layers counts once). */
export function countSmallInstances(labels: LabelVolume, min: number): number {
  const sizes = new Map<number, number>();
  for (const id of labels.data) if (id > 0) sizes.set(id, (sizes.get(id) ?? 0) + 1);
  let small = 0;
  for (const n of sizes.values()) if (n < min) small++;
  return small;
}

/**
 * The config fields under which postprocessing loses an instance, by the models that have them: EmbedSeg removes
 * objects under minObjectSize pixels, PatchPerPix instances under minSize; an RDCNet centre needs minCount votes, one
 * per pixel of its instance.
 */
const minimumSizes: Record<string, string> = {
  minObjectSize: 'prediction removes such objects',
  minSize: 'prediction drops such instances',
  minCount: 'a centre needs that many votes, one per pixel, so prediction cannot find them',
};

/** The smallest instance the model's postprocessing keeps (the first of minimumSizes' fields the config has), or null. */
function smallestKept(config: Readonly<Record<string, unknown>>): { field: string; voxels: number; why: string } | null {
  for (const [field, why] of Object.entries(minimumSizes)) {
    const voxels = config[field];
    if (typeof voxels === 'number' && voxels > 1) return { field, voxels, why };
  }
  return null;
}

const names = (samples: readonly Sample[]) => `${samples.slice(0, 3).map((s) => s.name).join(', ')}${samples.length > 3 ? ', ...' : ''}`;

/** The samples of `list` whose labels hold count(labels) > 0 of something, and the total. */
function labelCounts(list: readonly Sample[], count: (labels: LabelVolume) => number): { samples: Sample[]; total: number } {
  const found = list.flatMap((s) => (s.labels ? [{ sample: s, n: count(s.labels) }] : [])).filter((c) => c.n > 0);
  return { samples: found.map((c) => c.sample), total: found.reduce((a, c) => a + c.n, 0) };
}

/**
 * Warnings (one line each, without a prefix) about training and validation samples as loaded; `config`, the model's,
 * says which instances are too small for its postprocessing.
 */
export function dataWarnings(samples: { train: readonly Sample[]; val: readonly Sample[] }, config: Readonly<Record<string, unknown>> = {}): string[] {
  const warnings: string[] = [];
  const minimum = smallestKept(config);
  for (const [split, list] of [['training', samples.train], ['validation', samples.val]] as const) {
    const counts = list.map((s) => ({ sample: s, ...nonFinitePixels(s.image) })).filter((c) => c.nan + c.infinite > 0);
    if (counts.length > 0) {
      const total = nonFiniteCount({ nan: counts.reduce((a, c) => a + c.nan, 0), infinite: counts.reduce((a, c) => a + c.infinite, 0) });
      warnings.push(`${counts.length} ${split} image(s) hold ${total} (${names(counts.map((c) => c.sample))}), ${replaced}`);
    }
    const holes = labelCounts(list, countHoles);
    if (holes.total > 0) {
      warnings.push(
        `${holes.samples.length} ${split} mask(s) hold ${holes.total} hole(s), background enclosed by one instance (${names(holes.samples)}): the model learns the holes; fill them unless the objects are rings`,
      );
    }
    if (minimum) {
      const small = labelCounts(list, (labels) => countSmallInstances(labels, minimum.voxels));
      if (small.total > 0) {
        warnings.push(
          `${small.samples.length} ${split} mask(s) hold ${small.total} instance(s) smaller than the model's ${minimum.field} of ${minimum.voxels} ${small.samples[0].labels!.shape.length === 3 ? 'voxels' : 'pixels'} (${names(small.samples)}): ${minimum.why}`,
        );
      }
    }
  }
  const labelled = samples.train.filter((s) => s.labels);
  if (labelled.length > 0 && labelled.every((s) => !s.labels!.data.some((v) => v > 0))) {
    warnings.push(`all ${labelled.length} training mask(s) are empty (no instance, only background or unlabeled): the model can only learn background`);
  }
  return warnings;
}
