// Overlapping instances (pure TypeScript, every runtime). A pixel may belong to several instances (BBBC010's worms
// cross), so labels come as `layers` label images of the same size, one after the other in one Int32Array. Layer k
// holds, at each pixel, the k-th smallest id of the instances covering it (0 where fewer cover it): the canonical form
// every reader produces. Layer 0 is therefore the flat label image where the lowest id wins, and code that knows
// nothing of overlaps reads the first `size` values as the plain label image it always had. Data without overlaps is
// one layer, exactly as before. -1 (unlabeled) is only ever in layer 0, with 0 in the layers above.

/** Instance labels that may overlap: `layers` label images of data.length / layers pixels each, canonical (above). */
export interface LayeredLabels {
  data: Int32Array;
  layers: number;
}

/** Either form a label image comes in: a plain (one-layer) label image, or layers. */
export type Labels = Int32Array | LayeredLabels;

/** `labels` as layers (a plain label image is one layer; no copy). */
export function asLayers(labels: Labels): LayeredLabels {
  return labels instanceof Int32Array ? { data: labels, layers: 1 } : labels;
}

/** Pixels per layer; throws when the data does not split into `layers` equal layers. */
export function layerSize(labels: LayeredLabels, what = 'labels'): number {
  const { data, layers } = labels;
  if (!Number.isInteger(layers) || layers < 1 || data.length % layers !== 0) {
    throw new Error(`${what}: ${data.length} values do not split into ${layers} layers`);
  }
  return data.length / layers;
}

/** The flat label image (layer 0: the lowest id wins where instances overlap), as a view. */
export function flatLabels(labels: Labels): Int32Array {
  const l = asLayers(labels);
  return l.layers === 1 ? l.data : l.data.subarray(0, layerSize(l));
}

/**
 * Canonical layers from any stack of label images of `size` pixels each (a label-stack TIFF's channels, in any order,
 * an id possibly in several layers): per pixel, the distinct ids sorted ascending, as few layers as the most crowded
 * pixel needs (at least one). -1 in any layer makes the pixel unlabeled.
 */
export function canonicalLayers(stack: Int32Array, size: number): LayeredLabels {
  const depth = stack.length / size;
  if (!Number.isInteger(depth) || depth < 1) throw new Error(`canonicalLayers: ${stack.length} values are not layers of ${size} pixels`);
  if (depth === 1) return { data: stack, layers: 1 };
  const ids: number[] = [];
  const perPixel: number[][] = new Array(size);
  let layers = 1;
  for (let i = 0; i < size; i++) {
    ids.length = 0;
    let unlabeled = false;
    for (let k = 0; k < depth; k++) {
      const id = stack[k * size + i];
      if (id === -1) unlabeled = true;
      else if (id !== 0 && !ids.includes(id)) ids.push(id);
    }
    perPixel[i] = unlabeled ? [-1] : ids.sort((a, b) => a - b).slice();
    layers = Math.max(layers, perPixel[i].length);
  }
  const data = new Int32Array(layers * size);
  perPixel.forEach((pixel, i) => pixel.forEach((id, k) => (data[k * size + i] = id)));
  return { data, layers };
}

/**
 * Layers from one binary mask per instance (BBBC010's one-file-per-worm ground truth): instance k (1-based, in the
 * order given) covers the pixels where masks[k - 1] is non-zero.
 */
export function layersFromMasks(masks: readonly ArrayLike<number>[], size: number): LayeredLabels {
  const count = new Uint8Array(size);
  masks.forEach((mask, k) => {
    if (mask.length !== size) throw new Error(`layersFromMasks: mask ${k + 1} has ${mask.length} pixels, expected ${size}`);
    for (let i = 0; i < size; i++) if (mask[i] !== 0) count[i]++;
  });
  // A loop, not Math.max(...count): a spread of a whole image's pixels overflows the call stack.
  let layers = 1;
  for (let i = 0; i < size; i++) if (count[i] > layers) layers = count[i];
  const data = new Int32Array(layers * size);
  const filled = new Uint8Array(size);
  // Ids ascend with k, so appending each instance to the next free layer keeps every pixel's ids sorted.
  masks.forEach((mask, k) => {
    for (let i = 0; i < size; i++) if (mask[i] !== 0) data[filled[i]++ * size + i] = k + 1;
  });
  return { data, layers };
}

/** Instances per pixel (0, 1, 2, ...; -1 where unlabeled): what PatchPerPix's number-of-instances class learns. */
export function instanceCount(labels: Labels): Int32Array {
  const l = asLayers(labels);
  const size = layerSize(l);
  const count = new Int32Array(size);
  for (let i = 0; i < size; i++) {
    if (l.data[i] === -1) count[i] = -1;
    else for (let k = 0; k < l.layers && l.data[k * size + i] !== 0; k++) count[i]++;
  }
  return count;
}

/** `labels` with `layers` layers (added layers are empty), for stacking samples with different overlap depths. */
export function padLayers(labels: LayeredLabels, layers: number): LayeredLabels {
  if (layers === labels.layers) return labels;
  if (layers < labels.layers) throw new Error(`padLayers: cannot drop layers (${labels.layers} → ${layers})`);
  const data = new Int32Array(layers * layerSize(labels));
  data.set(labels.data);
  return { data, layers };
}

/** The labels of a label volume ({ data, layers? }, as files are read): plain, or layers where it has several. */
export function labelsOf(volume: { data: Int32Array; layers?: number }): Labels {
  return (volume.layers ?? 1) > 1 ? { data: volume.data, layers: volume.layers! } : volume.data;
}
