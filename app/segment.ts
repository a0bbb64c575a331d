// One image through one model the way `wgseg predict` does it (the run's normalization, tiled prediction, the model's
// postprocessing), keeping the stitched raw outputs so that changed postprocessing parameters need no network pass.
// A 2D model takes a 3D stack slice by slice; an RGB image goes to a one-channel model as the mean of R, G and B.
import type { Engine } from '../src/engine/engine.ts';
import { asLayers, flatLabels } from '../src/train/layers.ts';
import { postprocessOutputs, predictOutputs } from '../src/train/predict.ts';
import { prepareSamples } from '../src/train/run.ts';
import type { ImageVolume, LabelVolume } from '../src/train/volume.ts';
import type { LoadedImage } from './image.ts';
import type { LoadedModel } from './models.ts';

/** Labels of the whole image, ids unique across it. */
export interface Segmentation {
  /** For the TIFF: as the model gave them (layers where instances overlap), or the slices' flat labels stacked. */
  volume: LabelVolume;
  /** The flat label image [(D), H, W] (the lowest id wins where instances overlap), for display. */
  flat: Int32Array;
  /** Distinct instances, in all layers. */
  count: number;
}

/** The model's inputs for an image: one volume, or one per slice; and what was changed to make them fit, in words. */
function modelInputs({ model, entry }: LoadedModel, image: LoadedImage): { inputs: ImageVolume[]; notes: string[] } {
  let volume = image.volume;
  const notes: string[] = [];
  const [channels, ...spatial] = volume.shape;
  if (channels !== model.inChannels) {
    if (!(image.colour && model.inChannels === 1 && channels >= 3)) {
      throw new Error(`${image.name} has ${channels} channel(s); the ${entry.name} model (${model.kind}) takes ${model.inChannels}`);
    }
    const plane = volume.data.length / channels;
    const grey = new Float32Array(plane);
    for (let i = 0; i < plane; i++) grey[i] = (volume.data[i] + volume.data[plane + i] + volume.data[2 * plane + i]) / 3;
    volume = { ...volume, data: grey, shape: [1, ...spatial] };
    notes.push('RGB averaged to grey for this one-channel model');
  }
  if (spatial.length === model.ndim) return { inputs: [volume], notes };
  if (model.ndim === 3) throw new Error(`${image.name} is a 2D image; the ${entry.name} model is 3D and needs a z-stack`);
  const [depth, h, w] = spatial;
  const c = volume.shape[0];
  const inputs = Array.from({ length: depth }, (_, z) => {
    const data = new Float32Array(c * h * w);
    for (let k = 0; k < c; k++) data.set(volume.data.subarray((k * depth + z) * h * w, (k * depth + z + 1) * h * w), k * h * w);
    return { data, shape: [c, h, w], spacing: volume.spacing.slice(1) };
  });
  notes.push(`${depth} slices segmented one by one (a 2D model)`);
  return { inputs, notes };
}

/** The number of distinct instance ids (not 0, not -1) in `data`. */
export function countInstances(data: Int32Array): number {
  const ids = new Set<number>();
  for (const v of data) if (v > 0) ids.add(v);
  return ids.size;
}

/** An image's raw outputs under one model, kept on the CPU; postprocess() turns them into labels with any parameters. */
export class Segmenter {
  private outputs: { data: Float32Array; shape: number[]; input: Pick<ImageVolume, 'shape' | 'spacing'> }[] = [];
  readonly notes: string[];
  private readonly inputs: ImageVolume[];

  constructor(private readonly e: Engine, private readonly loaded: LoadedModel, private readonly image: LoadedImage) {
    ({ inputs: this.inputs, notes: this.notes } = modelInputs(loaded, image));
  }

  /**
   * The network on every input (tiled). `onProgress` gets the share of the work done: after each tile the page waits
   * for the GPU to finish it, so the bar follows the tiles of one image as well as the slices of a stack.
   */
  async predict(onProgress: (fraction: number | null) => void): Promise<void> {
    const { model, run } = this.loaded;
    const normalized = prepareSamples(this.inputs.map((image, z) => ({ name: `${this.image.name}[${z}]`, image, labels: null })), run);
    this.outputs = [];
    for (const [k, { image }] of normalized.entries()) {
      onProgress(k / normalized.length);
      const outputs = await predictOutputs(this.e, model, image, {
        onTile: async (done, total) => {
          await this.e.sync();
          onProgress((k + done / total) / normalized.length);
        },
      });
      try {
        this.outputs.push({ data: (await outputs.data()) as Float32Array, shape: [...outputs.shape], input: image });
      } finally {
        outputs.dispose();
      }
      onProgress((k + 1) / normalized.length);
    }
  }

  /** Labels from the kept outputs, with `values` in place of the config's postprocessing parameters. */
  async postprocess(values: Readonly<Record<string, number>>): Promise<Segmentation> {
    if (this.outputs.length === 0) throw new Error('postprocess: predict() has not run');
    const { model } = this.loaded;
    const slices: Int32Array[] = [];
    let single: LabelVolume | null = null;
    let offset = 0;
    for (const { data, shape, input } of this.outputs) {
      const outputs = this.e.tensor(data, shape);
      try {
        const labels = asLayers(await postprocessOutputs(this.e, model, outputs, input, values));
        const size = input.shape.slice(1);
        if (this.outputs.length === 1) {
          single = { data: labels.data, shape: size, spacing: input.spacing, ...(labels.layers > 1 ? { layers: labels.layers } : {}) };
          break;
        }
        const flat = flatLabels(labels).slice();
        let max = 0;
        for (let i = 0; i < flat.length; i++) {
          if (flat[i] > 0) {
            if (flat[i] > max) max = flat[i];
            flat[i] += offset;
          }
        }
        offset += max;
        slices.push(flat);
      } finally {
        outputs.dispose();
      }
    }
    const volume = single ?? stackSlices(slices, this.image.volume);
    return { volume, flat: flatLabels(asLayers({ data: volume.data, layers: volume.layers ?? 1 })), count: countInstances(volume.data) };
  }
}

/** Slices' label images [H, W] as one label volume [D, H, W] with the image's spacing. */
function stackSlices(slices: Int32Array[], image: ImageVolume): LabelVolume {
  const plane = slices[0].length;
  const data = new Int32Array(plane * slices.length);
  slices.forEach((s, z) => data.set(s, z * plane));
  return { data, shape: image.shape.slice(1), spacing: image.spacing };
}
