// PatchPerPix (papers/patchperpix.md, SPEC.md "PatchPerPix"): a U-Net of valid convolutions predicts, for every
// pixel, the binary P×P (P×P×P) patch of its instance around it. `ppp` reads the patch straight from P^d sigmoid
// logits per pixel; `ppp+dec` predicts a short shape code per pixel that a small decoder, trained end to end on codes
// sampled at ≤ 1024 foreground pixels per crop, turns into the patch. Where instances overlap (BBBC010's worms) a
// per-pixel "number of instances" class (0, 1, ≥ 2) replaces plain foreground, and pixels under two instances are left
// out of the patch loss. Instances come from the paper's assembly (src/models/ppp-assembly.ts): the patches vote a
// consensus per pixel pair, the most consistent ones cover the foreground, and a graph of them is partitioned.
//
// Whole images: infer() pads each tile by the U-Net's context (zeros) so its output covers the tile, and returns the
// evidence packed on the assembly's sampling grid (output stride = sampleStride): per grid pixel, the patch values at
// the sampled offsets (ppp) or the code (ppp+dec), computed for grid pixels only (41×41 = 1681 values for every pixel
// would take gigabytes for one BBBC010 image), then the per-pixel maps the painting needs at full resolution (class
// logits, else the foreground logit or patch centre) for each of the s^d pixels of the grid cell. A whole DSB2018
// image's evidence then fits one buffer; ppp+dec decodes only the sampled patch centres.
import type { Engine } from '../engine/engine.ts';
import type { Tensor } from '../engine/tensor.ts';
import { conv } from '../kernels/conv.ts';
import { add, div, equal, greater, greaterEqual, maximum, mul, neg, sigmoid, softplus, sub } from '../kernels/elementwise.ts';
import { gatherPixels, selectChannels } from '../kernels/gather.ts';
import { heNormal, zerosInit } from '../kernels/init.ts';
import { patchTargets } from '../kernels/patch-targets.ts';
import { sum } from '../kernels/reduce.ts';
import { cast, concat, pad, reshape, slice, transpose } from '../kernels/shape.ts';
import { matmul } from '../kernels/matmul.ts';
import { logSoftmax } from '../kernels/softmax.ts';
import type { Labels } from '../train/layers.ts';
import { seededRandom } from '../train/synthetic.ts';
import type { InstanceModel, ModelFactory, ModelSpec, NamedTensor, Spacing, TrainBatch } from './model.ts';
import { PatchDecoder, patchDecoderConfig, type PatchDecoderConfig } from './patch-decoder.ts';
import { assemblePatches, type AssemblyConfig, type PatchEvidence } from './ppp-assembly.ts';
import { UNet, unetConfig, unetPresets, type UNetConfig } from './unet.ts';

export interface PatchPerPixConfig {
  ndim: 2 | 3;
  inChannels: number;
  /** 'ppp': P^d patch logits per pixel; 'ppp+dec': a code per pixel and the decoder. */
  head: 'ppp' | 'ppp+dec';
  /** P per spatial axis, odd. */
  patchSize: number[];
  /** Predict the number of instances per pixel (0 / 1 / ≥ 2) instead of plain foreground: for data with overlaps. */
  numInstances: boolean;
  /** The U-Net (src/models/unet.ts; ndim and inChannels come from here). */
  unet: Omit<UNetConfig, 'ndim' | 'inChannels' | 'seed'>;
  /** ppp+dec: the decoder's code shape [c, s per axis] and widths (src/models/patch-decoder.ts). */
  codeShape: number[];
  decoderWidths: number[];
  /** ppp+dec: foreground pixels per crop whose codes train the decoder (the paper's 1024). */
  samplesPerCrop: number;
  /** Assembly (src/models/ppp-assembly.ts): sampling stride per axis, TH, partition, edge threshold, smallest instance. */
  sampleStride: number[];
  threshold: number;
  partition: 'components' | 'mutex';
  affinityThreshold: number;
  minSize: number;
  /** Seeds the weights and the decoder's pixel sampling. */
  seed: number;
}

const unetOf = (name: string) => {
  const { ndim: _n, inChannels: _c, seed: _s, ...rest } = unetPresets[name];
  return rest;
};
const assembly = { partition: 'components' as const, affinityThreshold: 0, samplesPerCrop: 1024, seed: 0, inChannels: 1 };

/**
 * Named configs. `paper`: the BBBC010 setup (ppp+dec, 41×41 patches, code 252 = 7×6×6, number-of-instances classes,
 * TH 0.9). `paper-dsb`: DSB2018 (25×25, code 256 = 16×4×4, plain foreground, TH 0.6). `paper-3d`: nuclei in 3D
 * (ppp, 9×9×9, as the paper ran it). `small` / `small-3d`: plain ppp on a 2-pooling U-Net of 8 maps, 25×25 and
 * 9×9×9 patches, sized for a software GPU.
 */
export const pppPresets: Readonly<Record<string, Readonly<PatchPerPixConfig>>> = {
  paper: {
    ...assembly, ndim: 2, head: 'ppp+dec', patchSize: [41, 41], numInstances: true, unet: unetOf('paper'),
    codeShape: [7, 6, 6], decoderWidths: [128, 64, 32], sampleStride: [3, 3], threshold: 0.9, minSize: 20,
  },
  'paper-dsb': {
    ...assembly, ndim: 2, head: 'ppp+dec', patchSize: [25, 25], numInstances: false, unet: unetOf('paper'),
    codeShape: [16, 4, 4], decoderWidths: [128, 64, 32], sampleStride: [2, 2], threshold: 0.6, minSize: 20,
  },
  'paper-3d': {
    ...assembly, ndim: 3, head: 'ppp', patchSize: [9, 9, 9], numInstances: false, unet: unetOf('paper-3d'),
    codeShape: [32, 2, 2, 2], decoderWidths: [128, 64, 32], sampleStride: [2, 2, 2], threshold: 0.6, minSize: 20,
  },
  small: {
    ...assembly, ndim: 2, head: 'ppp', patchSize: [25, 25], numInstances: false, unet: unetOf('small'),
    codeShape: [16, 4, 4], decoderWidths: [32, 16, 8], sampleStride: [2, 2], threshold: 0.6, minSize: 20,
  },
  'small-3d': {
    ...assembly, ndim: 3, head: 'ppp', patchSize: [9, 9, 9], numInstances: false, unet: unetOf('small-3d'),
    codeShape: [32, 2, 2, 2], decoderWidths: [32, 16, 8], sampleStride: [2, 2, 2], threshold: 0.6, minSize: 20,
  },
};

const isPositiveInt = (v: unknown): v is number => typeof v === 'number' && Number.isInteger(v) && v > 0;

/**
 * A full config from a partial one: missing fields from the `paper` preset of the config's dimension (`paper-3d` for
 * ndim 3); a partial `unet` is completed from that preset's U-Net. Throws naming the first bad field.
 */
export function pppConfig(user: Record<string, unknown> = {}): PatchPerPixConfig {
  const base = pppPresets[user.ndim === 3 ? 'paper-3d' : 'paper'];
  const known = new Set(Object.keys(base));
  const unknown = Object.keys(user).filter((k) => !known.has(k));
  if (unknown.length) throw new Error(`ppp: unknown config field ${unknown.map((k) => `"${k}"`).join(', ')}`);
  const c = { ...base, ...user } as PatchPerPixConfig;
  const bad = (field: string, want: string) => new Error(`ppp: ${field} must be ${want}, got ${JSON.stringify(c[field as keyof PatchPerPixConfig])}`);
  if (c.ndim !== 2 && c.ndim !== 3) throw bad('ndim', '2 or 3');
  if (!isPositiveInt(c.inChannels)) throw bad('inChannels', 'a positive integer');
  if (c.head !== 'ppp' && c.head !== 'ppp+dec') throw bad('head', "'ppp' or 'ppp+dec'");
  if (!Array.isArray(c.patchSize) || c.patchSize.length !== c.ndim || !c.patchSize.every((p) => isPositiveInt(p) && p % 2 === 1)) {
    throw bad('patchSize', `${c.ndim} odd positive integers (one per spatial axis)`);
  }
  if (typeof c.numInstances !== 'boolean') throw bad('numInstances', 'true or false');
  if (typeof c.unet !== 'object' || c.unet === null || Array.isArray(c.unet)) throw bad('unet', 'an object of U-Net fields');
  // The U-Net validates its own fields (and names them "unet: ...").
  // A given `unet` replaces the preset's as a whole; its missing fields come from the paper U-Net of the dimension.
  const unet = unetConfig({ ...c.unet, ndim: c.ndim, inChannels: c.inChannels, seed: 0 });
  if (!isPositiveInt(c.samplesPerCrop)) throw bad('samplesPerCrop', 'a positive integer');
  if (!Array.isArray(c.sampleStride) || c.sampleStride.length !== c.ndim || !c.sampleStride.every(isPositiveInt)) {
    throw bad('sampleStride', `${c.ndim} positive integers (one per spatial axis)`);
  }
  if (!(typeof c.threshold === 'number' && c.threshold > 0.5 && c.threshold < 1)) throw bad('threshold', 'a number in (0.5, 1)');
  if (c.partition !== 'components' && c.partition !== 'mutex') throw bad('partition', "'components' or 'mutex'");
  if (!(typeof c.affinityThreshold === 'number' && c.affinityThreshold > -1 && c.affinityThreshold < 1)) throw bad('affinityThreshold', 'a number in (−1, 1)');
  if (!(Number.isInteger(c.minSize) && c.minSize >= 0)) throw bad('minSize', 'a non-negative integer');
  if (!(Number.isSafeInteger(c.seed) && c.seed >= 0 && c.seed < 2 ** 20)) throw bad('seed', 'an integer in [0, 2^20)');
  const { ndim: _n, inChannels: _c, seed: _s, ...unetFields } = unet;
  const config: PatchPerPixConfig = { ...c, patchSize: [...c.patchSize], sampleStride: [...c.sampleStride], unet: unetFields };
  if (c.head === 'ppp+dec') patchDecoderConfig({ ...decoderFields(config) });
  return config;
}

function decoderFields(c: PatchPerPixConfig): PatchDecoderConfig {
  return { ndim: c.ndim, patchSize: c.patchSize, codeShape: c.codeShape, widths: c.decoderWidths, seed: c.seed };
}

const product = (v: readonly number[]) => v.reduce((a, b) => a * b, 1);

/** Per axis, the assembly's sampled patch offsets k·s for k in [−h, h], h = ⌊(P − 1)/2 / s⌋. */
export function sampledOffsets(patchSize: readonly number[], stride: readonly number[]): number[][] {
  return patchSize.map((p, a) => {
    const h = Math.floor((p - 1) / 2 / stride[a]);
    return Array.from({ length: 2 * h + 1 }, (_, k) => (k - h) * stride[a]);
  });
}

/** The patch channels (row-major over the patch, centre (P − 1)/2) of the sampled offsets, in row-major order. */
export function sampledChannels(patchSize: readonly number[], stride: readonly number[]): number[] {
  const offsets = sampledOffsets(patchSize, stride);
  let channels = [0];
  offsets.forEach((axis, a) => {
    channels = channels.flatMap((c) => axis.map((o) => c * patchSize[a] + o + (patchSize[a] - 1) / 2));
  });
  return channels;
}

export class PatchPerPix implements InstanceModel {
  readonly kind = 'ppp';
  readonly config: Readonly<PatchPerPixConfig>;
  readonly ndim: 2 | 3;
  readonly inChannels: number;
  readonly sizeMultiple: readonly number[];
  readonly tileMargin: readonly number[];
  /** infer() returns the evidence on the sampling grid: one output pixel per sampleStride pixels. */
  readonly outputStride: readonly number[];
  readonly overlapping: boolean;
  readonly unet: UNet;
  readonly decoder: PatchDecoder | null;
  /** Channels of infer()'s outputs: patch logits or code, then 3 number-of-instances logits (or 1 foreground logit for ppp+dec). */
  readonly outputChannels: number;
  private readonly patchChannels: number;
  private readonly classChannels: number;
  private readonly head = new Map<string, NamedTensor>();

  constructor(
    readonly engine: Engine,
    config: Record<string, unknown> = {},
  ) {
    const c = pppConfig(config);
    this.config = c;
    this.ndim = c.ndim;
    this.inChannels = c.inChannels;
    this.overlapping = c.numInstances;
    this.unet = new UNet(engine, { ...c.unet, ndim: c.ndim, inChannels: c.inChannels, seed: c.seed });
    const g = this.unet.geometry;
    // Tiles start on the pooling grid (for exact stitching) and on the sampling grid.
    this.sizeMultiple = g.step.map((step, a) => lcm(step, c.sampleStride[a]));
    this.tileMargin = g.context;
    this.outputStride = [...c.sampleStride];
    this.decoder = c.head === 'ppp+dec' ? new PatchDecoder(engine, { ...decoderFields(c) }) : null;
    this.patchChannels = this.decoder ? this.decoder.codeLength : product(c.patchSize);
    this.classChannels = c.numInstances ? 3 : this.decoder ? 1 : 0;
    this.outputChannels = this.patchChannels + this.classChannels;
    const ones = new Array<number>(c.ndim).fill(1);
    // A linear 1x1 head (gain 1); seeds after the U-Net's and the decoder's.
    this.head.set('head.weight', { tensor: heNormal(engine, [this.outputChannels, this.unet.outChannels, ...ones], c.seed * 2 ** 16 + 4096, { gain: 1 }), trainable: true });
    this.head.set('head.bias', { tensor: zerosInit(engine, [this.outputChannels]), trainable: true });
  }

  namedTensors(): Map<string, NamedTensor> {
    const all = new Map<string, NamedTensor>();
    for (const [name, t] of this.unet.namedTensors()) all.set(`unet.${name}`, t);
    if (this.decoder) for (const [name, t] of this.decoder.namedTensors()) all.set(`decoder.${name}`, t);
    for (const [name, t] of this.head) all.set(name, t);
    return all;
  }

  /** Outputs [N, outputChannels, ...unet output] of images of a valid U-Net input size. */
  private forward(images: Tensor): Tensor {
    return conv(this.unet.forward(images), this.head.get('head.weight')!.tensor, this.head.get('head.bias')!.tensor);
  }

  /** The output channels kept at grid pixels only: the patch values at the sampled offsets (ppp), the code (ppp+dec). */
  get sparseChannels(): number[] {
    if (this.decoder) return Array.from({ length: this.patchChannels }, (_, k) => k);
    return sampledChannels(this.config.patchSize, this.config.sampleStride);
  }

  /**
   * The output channels kept for every pixel: the number-of-instances logits, else the foreground logit (ppp+dec) or
   * the patch centre's logit (ppp), which says whether a pixel is foreground.
   */
  get denseChannels(): number[] {
    if (this.classChannels > 0) return Array.from({ length: this.classChannels }, (_, k) => this.patchChannels + k);
    return [(this.patchChannels - 1) / 2];
  }

  /** Channels of infer()'s packed evidence: the sparse ones, then each dense one for every pixel of a grid cell. */
  get evidenceChannels(): number {
    return this.sparseChannels.length + this.denseChannels.length * product(this.config.sampleStride);
  }

  /** The largest valid U-Net input that fits in `crop`, per axis; throws naming the crop when none does. */
  private validCrop(crop: readonly number[]): number[] {
    const g = this.unet.geometry;
    const valid = crop.map((s, a) => g.minInput[a] + Math.floor((s - g.minInput[a]) / g.step[a]) * g.step[a]);
    if (valid.some((v, a) => v < g.minInput[a])) {
      throw new Error(`ppp: training crops [${crop.join(', ')}] are smaller than the U-Net's smallest input [${g.minInput.join(', ')}]; raise data.patchSize`);
    }
    return valid;
  }

  /**
   * The patch loss (sigmoid cross-entropy over the patch, −1 targets ignored) and the foreground or number-of-instances
   * cross-entropy. Crops are cut to the largest valid U-Net input around their centre; targets cover the U-Net's
   * output window, and patches may reach into the context around it.
   */
  async loss(batch: TrainBatch, step: number): Promise<Record<string, Tensor>> {
    const e = this.engine;
    const c = this.config;
    const labels = batch.layers ?? batch.labels;
    const crop = batch.images.shape.slice(2);
    const valid = this.validCrop(crop);
    const begin = crop.map((s, a) => Math.floor((s - valid[a]) / 2));
    const cut = (t: Tensor) => (valid.every((v, a) => v === crop[a]) ? t : slice(t, [0, 0, ...begin], [t.shape[0], t.shape[1], ...valid]));
    const out = this.forward(cut(batch.images));
    const [n, , ...window] = out.shape;
    const origin = window.map(() => 0);
    const targets = patchTargets(cut(labels), { patchSize: c.patchSize, outputSize: window });
    const numInstances = cast(targets.numInstances, 'f32');
    targets.numInstances.dispose();
    targets.mask.dispose();
    const classes = () => slice(out, [0, this.patchChannels, ...origin], [n, this.classChannels, ...window]);
    const terms: Record<string, Tensor> = {};
    if (!this.decoder) {
      terms.patch = maskedBCE(slice(out, [0, 0, ...origin], [n, this.patchChannels, ...window]), targets.targets);
    } else {
      const pixels = await this.samplePixels(numInstances, step);
      if (pixels.length === 0) {
        terms.patch = mul(sum(slice(out, [0, 0, ...origin], [n, 1, ...window])), e.zeros([1]));
      } else {
        const codes = gatherPixels(slice(out, [0, 0, ...origin], [n, this.patchChannels, ...window]), pixels);
        const logits = reshape(this.decoder.forward(codes), [pixels.length, product(c.patchSize)]);
        terms.patch = maskedBCE(logits, gatherPixels(targets.targets, pixels));
      }
    }
    if (c.numInstances) terms.instances = maskedCE(classes(), numInstances);
    else if (this.decoder) terms.foreground = maskedBCE(classes(), greaterEqual(numInstances, e.fill([1], 1)), greaterEqual(numInstances, e.zeros([1])));
    // targets.targets stays alive: the patch term's backward reads it (the caller's scope frees it).
    return terms;
  }

  /** ppp+dec: up to samplesPerCrop distinct pixels with exactly one instance per crop, seeded by step (one readback). */
  private async samplePixels(numInstances: Tensor, step: number): Promise<Int32Array> {
    const counts = (await numInstances.data()) as Float32Array;
    const items = numInstances.shape[0];
    const per = counts.length / items;
    const rand = seededRandom(this.config.seed * 2 ** 20 + step);
    const chosen: number[] = [];
    for (let i = 0; i < items; i++) {
      const single: number[] = [];
      for (let p = 0; p < per; p++) if (counts[i * per + p] === 1) single.push(i * per + p);
      // A partial Fisher–Yates shuffle picks samplesPerCrop of them.
      const take = Math.min(this.config.samplesPerCrop, single.length);
      for (let k = 0; k < take; k++) {
        const j = k + Math.floor(rand() * (single.length - k));
        [single[k], single[j]] = [single[j], single[k]];
        chosen.push(single[k]);
      }
    }
    return Int32Array.from(chosen);
  }

  /**
   * The packed evidence [N, evidenceChannels, ...spatial / s] of tiles whose sizes are multiples of sizeMultiple: each
   * tile is padded by the U-Net's context with zeros (and up to the next valid input on the far side), so the valid
   * output covers it. The 1×1 head runs on gathered U-Net features: its sparse rows at the grid pixels, its dense rows
   * at every pixel, so no [N, P^d, ...spatial] tensor is made.
   */
  infer(images: Tensor): Tensor {
    const spatial = images.shape.slice(2);
    const bad = spatial.findIndex((d, i) => d % this.sizeMultiple[i] !== 0);
    if (bad >= 0) {
      throw new Error(`ppp: infer needs spatial sizes that are multiples of [${this.sizeMultiple.join(', ')}], got [${spatial.join(', ')}]`);
    }
    const e = this.engine;
    return e.noGrad(() => e.tidy(() => {
      const g = this.unet.geometry;
      const input = this.unet.validInputSize(spatial.map((s, a) => s + 2 * g.context[a]));
      const padded = pad(images, [[0, 0], [0, 0], ...spatial.map((s, a) => [g.context[a], input[a] - s - g.context[a]] as const)]);
      const features = this.unet.forward(padded);
      const cropped = slice(features, features.shape.map(() => 0), [features.shape[0], features.shape[1], ...spatial]);
      const n = images.shape[0];
      const stride = this.config.sampleStride;
      const head = (pixels: Int32Array, rows: number[]) => {
        const [cout, cin] = this.head.get('head.weight')!.tensor.shape;
        const weight = selectChannels(reshape(this.head.get('head.weight')!.tensor, [1, cout, cin]), rows);
        const bias = selectChannels(reshape(this.head.get('head.bias')!.tensor, [1, cout]), rows);
        return add(matmul(gatherPixels(cropped, pixels), reshape(weight, [rows.length, cin]), { transposeB: true }), reshape(bias, [1, rows.length]));
      };
      const sparse = head(packedPixels(n, spatial, stride, false), this.sparseChannels);
      const dense = head(packedPixels(n, spatial, stride, true), this.denseChannels);
      return packEvidence(sparse, dense, n, spatial.map((d, a) => d / stride[a]), product(stride));
    }));
  }

  /** The packed evidence (what infer() returns) of full outputs [N, outputChannels, ...spatial] (tests build them from ground truth). */
  evidence(outputs: Tensor): Tensor {
    if (outputs.shape[1] !== this.outputChannels) throw new Error(`ppp: evidence needs outputs with ${this.outputChannels} channels, got [${outputs.shape.join(', ')}]`);
    const spatial = outputs.shape.slice(2);
    const stride = this.config.sampleStride;
    if (spatial.some((d, a) => d % stride[a] !== 0)) throw new Error(`ppp: evidence needs spatial sizes that are multiples of the sample stride [${stride.join(', ')}], got [${spatial.join(', ')}]`);
    const e = this.engine;
    return e.noGrad(() => e.tidy(() => {
      const n = outputs.shape[0];
      const rows = (channels: number[], cells: boolean) => gatherPixels(selectChannels(outputs, channels), packedPixels(n, spatial, stride, cells));
      return packEvidence(rows(this.sparseChannels, false), rows(this.denseChannels, true), n, spatial.map((d, a) => d / stride[a]), product(stride));
    }));
  }

  postprocessGrid(): Record<string, number[]> {
    return { threshold: [0.6, 0.7, 0.8, 0.9] };
  }

  /**
   * The assembly on the stitched packed evidence [1, evidenceChannels, ...grid] of one image of `size` (default: the
   * grid times the stride): sampled patch values for ppp, codes for ppp+dec, and the full-resolution dense maps.
   */
  async postprocess(outputs: Tensor, _spacing: Spacing, values: Readonly<Record<string, number>> = {}, size?: readonly number[]): Promise<Labels> {
    const e = this.engine;
    const c = pppConfig({ ...this.config, ...values });
    if (c.sampleStride.join() !== this.config.sampleStride.join() || c.patchSize.join() !== this.config.patchSize.join()) {
      throw new Error('ppp: postprocess cannot change patchSize or sampleStride (the evidence was packed with the model\'s)');
    }
    const grid = outputs.shape.slice(2);
    const stride = c.sampleStride;
    const spatial = size ? [...size] : grid.map((g, a) => g * stride[a]);
    if (outputs.rank !== this.ndim + 2 || outputs.shape[0] !== 1 || outputs.shape[1] !== this.evidenceChannels) {
      throw new Error(`ppp: postprocess needs packed evidence [1, ${this.evidenceChannels}, ...grid], got [${outputs.shape.join(', ')}]`);
    }
    if (spatial.some((d, a) => Math.ceil(d / stride[a]) !== grid[a])) {
      throw new Error(`ppp: evidence on the grid [${grid.join(', ')}] does not cover the image [${spatial.join(', ')}] at stride [${stride.join(', ')}]`);
    }
    const origin = grid.map(() => 0);
    const S = this.sparseChannels.length;
    const dense = this.denseChannels.length;
    const sparse = slice(outputs, [0, 0, ...origin], [1, S, ...grid]);
    const maps = e.noGrad(() => unpackDense(slice(outputs, [0, S, ...origin], [1, outputs.shape[1] - S, ...grid]), dense, spatial, stride));
    const { single, foreground } = e.noGrad(() => this.foregroundMaps(maps, c.threshold));
    maps.dispose();
    const config: AssemblyConfig = {
      patchSize: c.patchSize, sampleStride: c.sampleStride, threshold: c.threshold, partition: c.partition,
      affinityThreshold: c.affinityThreshold, minSize: c.minSize,
    };
    const K = S;
    if (!this.decoder) {
      const samples = e.noGrad(() => reshape(sigmoid(sparse), [K, ...grid]));
      sparse.dispose();
      let read: Float32Array | null = null;
      const evidence: PatchEvidence = {
        size: spatial, single, foreground, samples,
        patches: async (centres) => {
          read ??= (await samples.data()) as Float32Array;
          return interpolatePatches(read, grid, c.patchSize, c.sampleStride, centres);
        },
      };
      return assemblePatches(evidence, config);
    }
    // ppp+dec: decode the codes of the grid pixels with one instance, keep their full patches for painting.
    const singleAt = (await single.data()) as Float32Array;
    const centres = gridIndices(spatial, stride).filter((p) => singleAt[p] > 0);
    const cells = centres.map((p) => gridCell(p, spatial, stride, grid));
    const patches = await this.decodeAt(sparse, cells);
    sparse.dispose();
    const sampled = sampledChannels(c.patchSize, stride);
    const Ks = sampled.length;
    const P = product(c.patchSize);
    const gridSize = product(grid);
    const table = new Float32Array(Ks * gridSize);
    const gridIndex = new Map<number, number>();
    centres.forEach((p, m) => {
      gridIndex.set(p, m);
      for (let k = 0; k < Ks; k++) table[k * gridSize + cells[m]] = patches[m * P + sampled[k]];
    });
    const samples = e.tensor(table, [Ks, ...grid]);
    const evidence: PatchEvidence = {
      size: spatial, single, foreground, samples,
      patches: async (wanted) => {
        const out = new Float32Array((wanted.length / this.ndim) * P);
        for (let i = 0; i < wanted.length / this.ndim; i++) {
          const pixel = wanted.slice(i * this.ndim, (i + 1) * this.ndim).reduce((acc, x, a) => acc * spatial[a] + x, 0);
          const m = gridIndex.get(pixel);
          if (m === undefined) throw new Error(`ppp: the assembly asked for the patch at [${Array.from(wanted.slice(i * this.ndim, (i + 1) * this.ndim)).join(', ')}], which is not a decoded centre`);
          out.set(patches.subarray(m * P, (m + 1) * P), i * P);
        }
        return out;
      },
    };
    return assemblePatches(evidence, config);
  }

  /**
   * single: 1 where a pixel is foreground with one instance; foreground: one or more. From the dense maps [1, D, ...]:
   * the number-of-instances classes (argmax), else the foreground logit (ppp+dec) or the patch centre's value above TH (ppp).
   */
  private foregroundMaps(maps: Tensor, threshold: number): { single: Tensor; foreground: Tensor } {
    const e = this.engine;
    const spatial = maps.shape.slice(2);
    const origin = spatial.map(() => 0);
    const channel = (k: number) => reshape(slice(maps, [0, k, ...origin], [1, 1, ...spatial]), spatial);
    if (this.config.numInstances) {
      const [none, one, more] = [0, 1, 2].map((k) => channel(k));
      const single = mul(greater(one, none), greaterEqual(one, more));
      const foreground = greater(maximum(one, more), none);
      return { single, foreground };
    }
    const logit = channel(0);
    const fg = this.decoder ? greater(logit, e.zeros([1])) : greater(sigmoid(logit), e.fill([1], threshold));
    return { single: fg, foreground: fg };
  }

  /** Full patch probabilities [n · P^d] of the codes at `pixels` (flat indices), decoded in chunks. */
  private async decodeAt(codes: Tensor, pixels: Int32Array): Promise<Float32Array> {
    const e = this.engine;
    const P = product(this.config.patchSize);
    const out = new Float32Array(pixels.length * P);
    const chunk = 256;
    for (let first = 0; first < pixels.length; first += chunk) {
      const part = pixels.subarray(first, first + chunk);
      const probs = e.noGrad(() => e.tidy(() => sigmoid(reshape(this.decoder!.forward(gatherPixels(codes, part)), [part.length, P]))));
      out.set((await probs.data()) as Float32Array, first * P);
      probs.dispose();
    }
    return out;
  }

  dispose(): void {
    this.unet.dispose();
    this.decoder?.dispose();
    for (const { tensor } of this.head.values()) tensor.dispose();
    this.head.clear();
  }
}

/**
 * Mean sigmoid cross-entropy of logits z against targets t ∈ {0, 1} over the elements where `valid` is 1 (default:
 * where t ≥ 0, so −1 targets are ignored): softplus(z) − t·z, finite for any z. 0 when nothing is valid.
 */
export function maskedBCE(z: Tensor, t: Tensor, valid?: Tensor): Tensor {
  const e = z.engine;
  const m = valid ?? greaterEqual(t, e.zeros([1]));
  const total = sum(mul(m, sub(softplus(z), mul(t, z))));
  return div(total, maximum(sum(m), e.fill([1], 1)));
}

/** Mean cross-entropy of class logits [N, 3, ...] against classes [N, 1, ...] (f32 0, 1, 2; −1 ignored). */
export function maskedCE(logits: Tensor, classes: Tensor): Tensor {
  const e = logits.engine;
  const onehot = concat([0, 1, 2].map((k) => equal(classes, e.fill([1], k))), 1);
  const valid = greaterEqual(classes, e.zeros([1]));
  const total = neg(sum(mul(onehot, logSoftmax(logits, 1))));
  return div(total, maximum(sum(valid), e.fill([1], 1)));
}

/** Flat indices of the grid pixels (every coordinate a multiple of the stride) of an image, row-major. */
export function gridIndices(spatial: readonly number[], stride: readonly number[]): Int32Array {
  let idx = [0];
  spatial.forEach((s, a) => {
    const steps = Array.from({ length: Math.ceil(s / stride[a]) }, (_, k) => k * stride[a]);
    idx = idx.flatMap((i) => steps.map((x) => i * s + x));
  });
  return Int32Array.from(idx);
}

/** The grid cell (flat, row-major over the grid) of the grid pixel with flat index p. */
function gridCell(p: number, spatial: readonly number[], stride: readonly number[], grid: readonly number[]): number {
  const coords: number[] = [];
  for (let a = spatial.length - 1; a >= 0; a--) {
    coords[a] = (p % spatial[a]) / stride[a];
    p = Math.floor(p / spatial[a]);
  }
  return coords.reduce((acc, x, a) => acc * grid[a] + x, 0);
}

const gcd = (a: number, b: number): number => (b === 0 ? a : gcd(b, a % b));
const lcm = (a: number, b: number) => (a / gcd(a, b)) * b;

/**
 * Flat indices into [N, ·, ...spatial] (sizes multiples of the stride) in the packed evidence's order: per item, the
 * grid pixels row-major, or with `cells` every pixel, cell offset o (row-major over the stride) outer, grid pixel g
 * inner, pixel g·s + o.
 */
function packedPixels(items: number, spatial: readonly number[], stride: readonly number[], cells: boolean): Int32Array {
  const grid = gridIndices(spatial, stride);
  const offsets = cells ? gridIndices(stride, stride.map(() => 1)).map((o) => {
    // o is flat in the stride's own shape: re-flatten its coordinates in the image's.
    let flat = 0;
    let rest = o;
    const coords: number[] = [];
    for (let a = stride.length - 1; a >= 0; a--) {
      coords[a] = rest % stride[a];
      rest = Math.floor(rest / stride[a]);
    }
    coords.forEach((x, a) => (flat = flat * spatial[a] + x));
    return flat;
  }) : Int32Array.of(0);
  const size = product(spatial);
  const out = new Int32Array(items * offsets.length * grid.length);
  let m = 0;
  for (let n = 0; n < items; n++) for (const o of offsets) for (const g of grid) out[m++] = n * size + g + o;
  return out;
}

/**
 * The packed evidence [N, S + D·c, ...grid] from sparse rows [N·G, S] (grid pixels, packedPixels order) and dense
 * rows [N·c·G, D] (every pixel, packedPixels' cell order): channel S + d·c + o holds dense channel d at pixel g·s + o.
 */
function packEvidence(sparse: Tensor, dense: Tensor, items: number, grid: readonly number[], cells: number): Tensor {
  const G = product(grid);
  const [S, D] = [sparse.shape[1], dense.shape[1]];
  const s = transpose(reshape(sparse, [items, G, S]), [0, 2, 1]);
  const d = reshape(transpose(reshape(dense, [items, cells * G, D]), [0, 2, 1]), [items, D * cells, G]);
  return reshape(concat([s, d], 1), [items, S + D * cells, ...grid]);
}

/** The dense maps [1, D, ...size] of packed dense channels [1, D·c, ...grid] (cropped to the image's size). */
export function unpackDense(packed: Tensor, channels: number, size: readonly number[], stride: readonly number[]): Tensor {
  const grid = packed.shape.slice(2);
  const G = product(grid);
  const cellStrides = stride.map((_, a) => product(stride.slice(a + 1)));
  const gridStrides = grid.map((_, a) => product(grid.slice(a + 1)));
  // For every image pixel, row-major: its place o·G + g in [D, c·G].
  const index = new Int32Array(product(size));
  const coords = size.map(() => 0);
  for (let p = 0; p < index.length; p++) {
    let o = 0;
    let g = 0;
    coords.forEach((x, a) => {
      o += (x % stride[a]) * cellStrides[a];
      g += Math.floor(x / stride[a]) * gridStrides[a];
    });
    index[p] = o * G + g;
    for (let a = size.length - 1; a >= 0 && ++coords[a] === size[a]; a--) coords[a] = 0;
  }
  const rows = gatherPixels(reshape(packed, [1, channels, packed.shape[1] / channels * G]), index);
  return reshape(transpose(rows, [1, 0]), [1, channels, ...size]);
}

/**
 * Full patches [n · P^d] for the grid-pixel centres [n · ndim] from the samples [K, ...grid], for painting: each patch
 * pixel is in (1) where the multilinear interpolation of the centre's own samples at the offsets around it (nearest
 * beyond the outermost ones) is at least ½, else out (0). Interpolation blurs a boundary over s pixels; cutting at ½
 * puts it halfway between the samples on either side, where cutting at TH (0.9 on worms) would shrink every instance
 * by up to 0.4·s pixels on each side.
 */
export function interpolatePatches(samples: Float32Array, grid: readonly number[], patchSize: readonly number[], stride: readonly number[], centres: Int32Array): Float32Array {
  const D = patchSize.length;
  const offsets = sampledOffsets(patchSize, stride);
  const counts = offsets.map((o) => o.length);
  const K = product(counts);
  const gridSize = product(grid);
  const P = product(patchSize);
  const n = centres.length / D;
  const out = new Float32Array(n * P);
  // Per axis and patch coordinate: the two sample indices and the weight of the second.
  const taps = patchSize.map((p, a) => Array.from({ length: p }, (_, x) => {
    const o = x - (p - 1) / 2;
    const h = (counts[a] - 1) / 2;
    const f = Math.min(Math.max(o / stride[a] + h, 0), counts[a] - 1);
    const i0 = Math.floor(f);
    const i1 = Math.min(i0 + 1, counts[a] - 1);
    return { i0, i1, w: f - i0 };
  }));
  for (let i = 0; i < n; i++) {
    const cell = Array.from(centres.subarray(i * D, (i + 1) * D)).reduce((acc, x, a) => acc * grid[a] + x / stride[a], 0);
    for (let q = 0; q < P; q++) {
      let rest = q;
      const coords: number[] = [];
      for (let a = D - 1; a >= 0; a--) {
        coords[a] = rest % patchSize[a];
        rest = Math.floor(rest / patchSize[a]);
      }
      let value = 0;
      for (let corner = 0; corner < 1 << D; corner++) {
        let w = 1;
        let k = 0;
        for (let a = 0; a < D; a++) {
          const t = taps[a][coords[a]];
          const high = (corner >> (D - 1 - a)) & 1;
          w *= high ? t.w : 1 - t.w;
          k = k * counts[a] + (high ? t.i1 : t.i0);
        }
        if (w !== 0) value += w * samples[k * gridSize + cell];
      }
      out[i * P + q] = value >= 0.5 ? 1 : 0;
    }
  }
  if (K === 0) throw new Error('ppp: no sampled offsets');
  return out;
}

export const createPatchPerPix: ModelFactory = (engine, config) => new PatchPerPix(engine, config);

export const pppSpec: ModelSpec = {
  kind: 'ppp',
  factory: createPatchPerPix,
  presets: pppPresets,
  presetsByNdim: { 2: ['paper', 'paper-dsb', 'small'], 3: ['paper-3d', 'small-3d'] },
  // The trainer's defaults (Adam, cosine 1e-3 → 1e-5, random crops, the dimension's augmentation: flips, rotations,
  // elastic and intensity, much as the authors' gunpowder pipeline). The authors' Adam 1e-4 suits their 400k steps,
  // not runs of a few thousand.
  recipe: {},
  tunes: ['threshold'],
  // One pooling of 2 maps: context 8 per side in y and x (none in z, where 3D uses 1×3×3 kernels and 1×2×2 pooling
  // so the contract test's thin crops fit); 5×5 patches (3×3×3 in 3D) at stride 1; a decoder of 4-2 maps.
  tiny: (preset) => {
    const d3 = preset.ndim === 3;
    const axes = (z: number, yx: number) => (d3 ? [z, yx, yx] : [yx, yx]);
    return {
      ...preset,
      unet: { levels: 1, baseWidth: 2, fmapIncFactors: [2], fmapDecFactors: [2], downsampleFactors: [axes(1, 2)], kernelSizes: [axes(1, 3), axes(1, 3)] },
      patchSize: axes(3, 5),
      sampleStride: axes(1, 1),
      codeShape: d3 ? [2, 1, 1, 1] : [2, 1, 1],
      decoderWidths: [4, 2, 2],
      samplesPerCrop: 64,
    };
  },
};
