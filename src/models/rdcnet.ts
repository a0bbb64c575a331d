// RDCNet (papers/rdcnet.md, SPEC.md "RDCNet"): a strided input conv, ONE recurrent block applied `iterations` times
// with shared weights (Y ← Y + block(concat[x, Y]), Y⁰ = 0), and a transposed-conv output layer. The block is spatial
// dropout → LeakyReLU → dense 1x1 conv → LeakyReLU → sSDC (one grouped 3x3 kernel at every dilation, outputs
// interleaved by group, LeakyReLU, grouped 1x1 conv). Outputs: `ndim` embedding offsets, to which the pixel
// coordinates (physical units) are added, and class logits (softmax). Trained with the semantic soft Jaccard plus the
// embedding soft Jaccard (ESJ); instances come from Hough voting on the embeddings.
import type { Engine } from '../engine/engine.ts';
import type { Tensor } from '../engine/tensor.ts';
import { conv, convTranspose } from '../kernels/conv.ts';
import { add, leakyRelu } from '../kernels/elementwise.ts';
import { xavierUniform, zerosInit } from '../kernels/init.ts';
import { embeddingJaccardLoss, softJaccardLoss } from '../kernels/jaccard.ts';
import { dropout } from '../kernels/random.ts';
import { concat, pad, reshape, slice } from '../kernels/shape.ts';
import { softmax } from '../kernels/softmax.ts';
import { houghVoting } from '../kernels/voting.ts';
import type { InstanceModel, ModelFactory, ModelSpec, NamedTensor, Spacing, TrainBatch } from './model.ts';

export interface RDCNetConfig {
  ndim: 2 | 3;
  /** Image channels. */
  inChannels: number;
  /** Semantic classes: background and foreground. */
  nClasses: number;
  /** Stride s of the input conv and the output transposed conv, per spatial axis ((1, 8, 8) for anisotropic 3D). */
  stride: number[];
  /** Channels of the input conv (the paper's 32). */
  inputChannels: number;
  groups: number;
  channelsPerGroup: number;
  /** Dilation rates of the sSDC, applied on every spatial axis. */
  dilations: number[];
  iterations: number;
  /** Embedding distance (physical units) at which an instance's probability is 0.5. */
  margin: number;
  leakySlope: number;
  /** Spatial dropout rate on the recurrent block's input (training only). */
  dropout: number;
  /** Minimum distance between instance centres in Hough voting (physical units). */
  votingWindow: number;
  /** Votes a centre needs. */
  minCount: number;
  /** Seeds the initial weights and the dropout masks. */
  seed: number;
}

const common = { inChannels: 1, nClasses: 2, inputChannels: 32, leakySlope: 0.3, dropout: 0.1, minCount: 5, seed: 0 };

/** Named configs: the paper's architecture, and one small enough to train in minutes on a software GPU. */
export const rdcnetPresets: Readonly<Record<string, Readonly<RDCNetConfig>>> = {
  paper: {
    ...common, ndim: 2, stride: [4, 4], groups: 8, channelsPerGroup: 64, dilations: [1, 2, 4, 8, 16], iterations: 5,
    margin: 10, votingWindow: 10,
  },
  'paper-3d': {
    ...common, ndim: 3, stride: [1, 8, 8], groups: 8, channelsPerGroup: 64, dilations: [1, 2, 4, 8], iterations: 5,
    margin: 3, votingWindow: 3,
  },
  small: {
    ...common, ndim: 2, stride: [2, 2], groups: 4, channelsPerGroup: 8, dilations: [1, 2, 4, 8], iterations: 4,
    margin: 5, votingWindow: 5,
  },
  'small-3d': {
    ...common, ndim: 3, stride: [1, 2, 2], groups: 4, channelsPerGroup: 8, dilations: [1, 2, 4], iterations: 4,
    margin: 3, votingWindow: 3,
  },
};

const isPositiveInt = (v: unknown): v is number => typeof v === 'number' && Number.isInteger(v) && v > 0;

/**
 * A full config from a partial one: missing fields come from the `paper` preset of the config's dimension (`paper-3d`
 * for ndim 3). Throws naming the first bad field.
 */
export function rdcnetConfig(user: Record<string, unknown> = {}): RDCNetConfig {
  const base = rdcnetPresets[user.ndim === 3 ? 'paper-3d' : 'paper'];
  const known = new Set(Object.keys(base));
  const unknown = Object.keys(user).filter((k) => !known.has(k));
  if (unknown.length) throw new Error(`rdcnet: unknown config field ${unknown.map((k) => `"${k}"`).join(', ')}`);
  const c = { ...base, ...user } as RDCNetConfig;
  const bad = (field: string, want: string) => new Error(`rdcnet: ${field} must be ${want}, got ${JSON.stringify(c[field as keyof RDCNetConfig])}`);
  if (c.ndim !== 2 && c.ndim !== 3) throw bad('ndim', '2 or 3');
  for (const f of ['inChannels', 'inputChannels', 'groups', 'channelsPerGroup', 'iterations'] as const) {
    if (!isPositiveInt(c[f])) throw bad(f, 'a positive integer');
  }
  if (c.nClasses !== 2) throw bad('nClasses', '2 (background and foreground: the labels are instances)');
  if (!Array.isArray(c.stride) || c.stride.length !== c.ndim || !c.stride.every(isPositiveInt)) {
    throw bad('stride', `${c.ndim} positive integers (one per spatial axis)`);
  }
  if (!Array.isArray(c.dilations) || c.dilations.length === 0 || !c.dilations.every(isPositiveInt)) {
    throw bad('dilations', 'a non-empty list of positive integers');
  }
  for (const f of ['margin', 'votingWindow'] as const) {
    if (!(typeof c[f] === 'number' && c[f] > 0 && Number.isFinite(c[f]))) throw bad(f, 'a positive number');
  }
  if (!(typeof c.leakySlope === 'number' && c.leakySlope >= 0)) throw bad('leakySlope', 'a non-negative number');
  if (!(typeof c.dropout === 'number' && c.dropout >= 0 && c.dropout < 1)) throw bad('dropout', 'in [0, 1)');
  if (!(Number.isInteger(c.minCount) && c.minCount >= 0)) throw bad('minCount', 'a non-negative integer');
  if (!(Number.isSafeInteger(c.seed) && c.seed >= 0 && c.seed < 2 ** 20)) throw bad('seed', 'an integer in [0, 2^20)');
  return { ...c, stride: [...c.stride], dilations: [...c.dilations] };
}

/** [1, ndim, ...spatial]: channel d holds each pixel's index along spatial axis d times spacing[d]. */
export function coordinateGrid(e: Engine, spatial: readonly number[], spacing: Spacing): Tensor {
  if (spacing.length !== spatial.length) throw new Error(`coordinateGrid: spacing [${spacing.join(', ')}] for ${spatial.length} spatial axes`);
  const n = spatial.reduce((a, b) => a * b, 1);
  const grid = new Float32Array(spatial.length * n);
  let stride = n;
  spatial.forEach((size, d) => {
    stride /= size;
    for (let i = 0; i < n; i++) grid[d * n + i] = (Math.floor(i / stride) % size) * spacing[d];
  });
  return e.tensor(grid, [1, spatial.length, ...spatial]);
}

/** ONNX pads [before..., after...] giving TensorFlow's 'same' for a kernel `k` and stride `s` on sizes divisible by s. */
function samePads(kernel: readonly number[], stride: readonly number[]): number[] {
  const total = kernel.map((k, i) => Math.max(k - stride[i], 0));
  const before = total.map((t) => Math.floor(t / 2));
  return [...before, ...total.map((t, i) => t - before[i])];
}

/** One recurrent iteration's outputs for the paper's Fig. 1: foreground probability and embeddings (grid added). */
export interface IterationOutput {
  /** [N, 1, ...spatial]. */
  foreground: Tensor;
  /** [N, ndim, ...spatial], physical units. */
  embeddings: Tensor;
}

export class RDCNet implements InstanceModel {
  readonly kind = 'rdcnet';
  readonly config: Readonly<RDCNetConfig>;
  readonly ndim: 2 | 3;
  readonly inChannels: number;
  readonly sizeMultiple: readonly number[];
  readonly tileMargin: readonly number[];
  private readonly params = new Map<string, Tensor>();
  private readonly state: number;
  private readonly inputKernel: number[];
  private readonly outputKernel: number[];

  constructor(
    readonly engine: Engine,
    config: Record<string, unknown> = {},
  ) {
    const c = rdcnetConfig(config);
    this.config = c;
    this.ndim = c.ndim;
    this.inChannels = c.inChannels;
    this.sizeMultiple = c.stride;
    // The full receptive field, s·(iterations·max dilation + 2) pixels per side, is far wider than the weights reach
    // in practice; 2·(max dilation) + 1 state pixels of context keep tile seams invisible at a fraction of the cost.
    const reach = 2 * Math.max(...c.dilations) + 1;
    this.tileMargin = c.stride.map((s) => s * reach);
    this.state = c.groups * c.channelsPerGroup;
    this.inputKernel = c.stride.map((s) => Math.max(3, s));
    this.outputKernel = c.stride.map((s) => Math.max(3, 2 * s));
    const one = new Array<number>(c.ndim).fill(1);
    const three = new Array<number>(c.ndim).fill(3);
    const G = this.state;
    const weights: [string, number[]][] = [
      ['input', [c.inputChannels, c.inChannels, ...this.inputKernel]],
      ['block.dense', [G, c.inputChannels + G, ...one]],
      ['block.sSDC', [G, c.channelsPerGroup, ...three]],
      ['block.sSDC.reduce', [G, c.dilations.length * c.channelsPerGroup, ...one]],
      // convTranspose weights are [Cin, Cout, k...].
      ['output', [G, c.ndim + c.nClasses, ...this.outputKernel]],
    ];
    weights.forEach(([name, shape], i) => {
      const bias = name === 'output' ? shape[1] : shape[0];
      this.params.set(`${name}.weight`, xavierUniform(engine, shape, c.seed * 64 + i));
      this.params.set(`${name}.bias`, zerosInit(engine, [bias]));
    });
  }

  private p(name: string): Tensor {
    return this.params.get(name)!;
  }

  namedTensors(): Map<string, NamedTensor> {
    return new Map([...this.params].map(([name, tensor]) => [name, { tensor, trainable: true }]));
  }

  /** The recurrent block's delta for state y: spatial dropout → LeakyReLU → 1x1 → LeakyReLU → sSDC. */
  private block(x: Tensor, y: Tensor, training: boolean, seed: number): Tensor {
    const c = this.config;
    const [n] = x.shape;
    const spatial = x.shape.slice(2);
    let h = concat([x, y], 1);
    h = dropout(h, c.dropout, seed, { training, noiseShape: [n, h.shape[1], ...spatial.map(() => 1)] });
    h = leakyRelu(conv(leakyRelu(h, c.leakySlope), this.p('block.dense.weight'), this.p('block.dense.bias')), c.leakySlope);
    // One grouped 3x3 kernel at every dilation; each output viewed as [N, G, 1, Cg, pixels] and stacked on axis 2
    // gives the interleaved order [g0:d1, g0:d2, ..., g1:d1, ...] that the grouped 1x1 conv reduces per group.
    const grouped = [n, c.groups, 1, c.channelsPerGroup, spatial.reduce((a, b) => a * b, 1)];
    const dilated = c.dilations.map((d) => {
      const out = conv(h, this.p('block.sSDC.weight'), this.p('block.sSDC.bias'), {
        pads: new Array<number>(2 * c.ndim).fill(d), dilations: spatial.map(() => d), group: c.groups,
      });
      return reshape(out, grouped);
    });
    const stacked = reshape(concat(dilated, 2), [n, c.groups * c.dilations.length * c.channelsPerGroup, ...spatial]);
    return conv(leakyRelu(stacked, c.leakySlope), this.p('block.sSDC.reduce.weight'), this.p('block.sSDC.reduce.bias'), { group: c.groups });
  }

  /** The output layer on a state: LeakyReLU → transposed conv back to the padded input size. */
  private head(y: Tensor): Tensor {
    return convTranspose(leakyRelu(y, this.config.leakySlope), this.p('output.weight'), this.p('output.bias'), {
      strides: this.config.stride, pads: samePads(this.outputKernel, this.config.stride),
    });
  }

  /**
   * Raw outputs [N, ndim + nClasses, ...spatial] of images of any size (padded to a multiple of the stride, cropped
   * back). `each` sees the state after every iteration; the tensors it returns are kept. Without gradients every
   * iteration's temporaries are freed before the next, so memory does not grow with the number of iterations.
   */
  private forward(images: Tensor, training: boolean, step: number, each?: (y: Tensor) => Tensor[]): { out: Tensor; kept: Tensor[] } {
    const c = this.config;
    const e = this.engine;
    if (images.rank !== c.ndim + 2 || images.shape[1] !== c.inChannels) {
      throw new Error(`rdcnet: images must be [N, ${c.inChannels}, ${c.ndim === 3 ? 'D, ' : ''}H, W], got [${images.shape.join(', ')}]`);
    }
    const spatial = images.shape.slice(2);
    const padded = spatial.map((d, i) => Math.ceil(d / c.stride[i]) * c.stride[i]);
    const needsPad = padded.some((d, i) => d !== spatial[i]);
    const input = needsPad ? pad(images, padded.map((d, i) => [0, d - spatial[i]] as const)) : images;
    const x = conv(input, this.p('input.weight'), this.p('input.bias'), { strides: c.stride, pads: samePads(this.inputKernel, c.stride) });
    if (needsPad && !e.gradEnabled) input.dispose();
    const kept: Tensor[] = [];
    let y = e.zeros([images.shape[0], this.state, ...x.shape.slice(2)]);
    for (let i = 0; i < c.iterations; i++) {
      const seed = (c.seed * 2 ** 24 + step) * 64 + i;
      const iterate = () => {
        const next = add(y, this.block(x, y, training, seed));
        return [next, ...(each ? each(next) : [])];
      };
      const [next, ...extra] = e.gradEnabled ? iterate() : e.tidy(iterate);
      if (!e.gradEnabled) y.dispose();
      y = next;
      kept.push(...extra);
    }
    const full = this.head(y);
    if (!e.gradEnabled) {
      x.dispose();
      y.dispose();
    }
    if (!needsPad) return { out: full, kept };
    const out = slice(full, full.shape.map(() => 0), [full.shape[0], full.shape[1], ...spatial]);
    if (!e.gradEnabled) full.dispose();
    return { out, kept };
  }

  /** Embeddings (outputs[0:ndim] + coordinates × spacing) and class probabilities (softmax of outputs[ndim:]). */
  private heads(out: Tensor, spacing: Spacing): { embeddings: Tensor; probs: Tensor } {
    const [n, , ...spatial] = out.shape;
    if (spacing.length !== this.ndim) throw new Error(`rdcnet: spacing [${spacing.join(', ')}] for a ${this.ndim}D model`);
    const origin = spatial.map(() => 0);
    const offsets = slice(out, [0, 0, ...origin], [n, this.ndim, ...spatial]);
    const embeddings = add(offsets, coordinateGrid(this.engine, spatial, spacing));
    const probs = softmax(slice(out, [0, this.ndim, ...origin], [n, this.config.nClasses, ...spatial]), 1);
    return { embeddings, probs };
  }

  /** The foreground channel [N, 1, ...spatial] of class probabilities. */
  private foreground(probs: Tensor): Tensor {
    return slice(probs, probs.shape.map((_, k) => (k === 1 ? 1 : 0)), [probs.shape[0], 1, ...probs.shape.slice(2)]);
  }

  /** The paper's two terms: soft Jaccard of the foreground, and the instance Jaccard of the embeddings. */
  loss(batch: TrainBatch, step: number): { semantic: Tensor; embedding: Tensor } {
    const { images, labels, spacing } = batch;
    const { out } = this.forward(images, true, step);
    const { embeddings, probs } = this.heads(out, spacing);
    return { semantic: softJaccardLoss(probs, labels, { foreground: true }), embedding: embeddingJaccardLoss(embeddings, labels, this.config.margin) };
  }

  infer(images: Tensor): Tensor {
    const bad = images.shape.slice(2).findIndex((d, i) => d % this.sizeMultiple[i] !== 0);
    if (bad >= 0) {
      throw new Error(`rdcnet: infer needs spatial sizes that are multiples of [${this.sizeMultiple.join(', ')}], got [${images.shape.slice(2).join(', ')}]`);
    }
    return this.engine.noGrad(() => this.forward(images, false, 0).out);
  }

  /**
   * Each recurrent iteration's foreground probability and embeddings (the paper's Fig. 1), inference only. The
   * caller disposes the returned tensors.
   */
  iterationOutputs(images: Tensor, spacing: Spacing): IterationOutput[] {
    return this.engine.noGrad(() => {
      const spatial = images.shape.slice(2);
      const { out, kept } = this.forward(images, false, 0, (y) => {
        const full = this.head(y);
        const cropped = slice(full, full.shape.map(() => 0), [full.shape[0], full.shape[1], ...spatial]);
        const { embeddings, probs } = this.heads(cropped, spacing);
        return [this.foreground(probs), embeddings];
      });
      out.dispose();
      const result: IterationOutput[] = [];
      for (let i = 0; i < kept.length; i += 2) result.push({ foreground: kept[i], embeddings: kept[i + 1] });
      return result;
    });
  }

  /**
   * The paper fine-tunes the voting window on the validation split (with a perfect loss, centres are at least
   * 2·margin apart, in practice closer); a lower vote count keeps small or poorly converged instances.
   */
  postprocessGrid(): Record<string, number[]> {
    return { votingWindow: [4, 6, 8, 10].map((tenths) => (tenths * this.config.margin) / 10), minCount: [2, 3, 5] };
  }

  async postprocess(outputs: Tensor, spacing: Spacing, values: Readonly<Record<string, number>> = {}): Promise<Int32Array> {
    const e = this.engine;
    const channels = this.ndim + this.config.nClasses;
    if (outputs.rank !== this.ndim + 2 || outputs.shape[0] !== 1 || outputs.shape[1] !== channels) {
      throw new Error(`rdcnet: postprocess needs outputs [1, ${channels}, ...spatial], got [${outputs.shape.join(', ')}]`);
    }
    const spatial = outputs.shape.slice(2);
    const scope = e.beginScope();
    try {
      const { embeddings, foreground } = e.noGrad(() => {
        const { embeddings, probs } = this.heads(outputs, spacing);
        return { embeddings: reshape(embeddings, [this.ndim, ...spatial]), foreground: reshape(this.foreground(probs), spatial) };
      });
      const { votingWindow, minCount } = rdcnetConfig({ ...this.config, ...values });
      return await houghVoting(embeddings, foreground, { spacing, minDistance: votingWindow, minCount });
    } finally {
      scope.end();
    }
  }

  dispose(): void {
    for (const t of this.params.values()) t.dispose();
    this.params.clear();
  }
}

export const createRDCNet: ModelFactory = (engine, config) => new RDCNet(engine, config);


export const rdcnetSpec: ModelSpec = {
  kind: 'rdcnet',
  factory: createRDCNet,
  presets: rdcnetPresets,
  presetsByNdim: { 2: ['paper', 'small'], 3: ['paper-3d', 'small-3d'] },
  // Adam with cosine decay 1e-3 → 1e-5 (the trainer's defaults), random crops, the supplement's augmentation.
  recipe: {},
  tunes: ['votingWindow', 'minCount'],
  // One iteration at dilations 1 and 2 reaches about 4 state pixels, inside the margin of 2·2 + 1.
  tiny: (preset) => ({ ...preset, groups: 2, channelsPerGroup: 2, inputChannels: 4, dilations: [1, 2], iterations: 1, margin: 3, votingWindow: 3 }),
};
