// EmbedSeg's BranchedERFNet (papers/embedseg.md, SPEC.md "EmbedSeg"), 2D and 3D: one ERFNet encoder shared by one
// decoder per output branch, the branches concatenated on channels. The encoder is three downsamplers (strided conv
// beside a max-pool, concatenated) with factorized residual blocks (non_bottleneck_1d: 3x1 and 1x3 convs, the second
// pair dilated) after the second and third; each decoder mirrors it with transposed convs. Network only: the loss and
// clustering live in the EmbedSeg model. Tensor names follow the PyTorch reference (erfnet.py, BranchedERFNet), so
// "encoder.layers.3.conv3x1_1.weight" is the same weight there.
import type { Engine } from '../engine/engine.ts';
import type { Tensor } from '../engine/tensor.ts';
import { batchNorm } from '../kernels/batchnorm.ts';
import { conv, convTranspose } from '../kernels/conv.ts';
import { add, relu } from '../kernels/elementwise.ts';
import { fans, heUniform, zerosInit } from '../kernels/init.ts';
import { maxPool } from '../kernels/pool.ts';
import { dropout, randomUniform } from '../kernels/random.ts';
import { concat } from '../kernels/shape.ts';
import type { NamedTensor } from './model.ts';

export interface ERFNetConfig {
  ndim: 2 | 3;
  /** Image channels. */
  inChannels: number;
  /**
   * Channels of each decoder branch, concatenated in this order. The first branch holds `ndim` offsets, then the
   * sigmas (EmbedSeg's n_sigma: the rest); EmbedSeg uses [4, 1] in 2D and [6, 1] in 3D (offsets and sigmas, seed).
   */
  outChannels: number[];
  /** Channels after each of the three downsamplers (the paper's 16, 64, 128). */
  widths: number[];
  /** Residual blocks after the second downsampler (the paper's 5). */
  encoderBlocks: number;
  /** Dilations of the residual blocks after the third downsampler, repeated `dilatedRepeats` times. */
  dilations: number[];
  dilatedRepeats: number;
  /** Residual blocks after each of the decoder's two upsamplers (the paper's 2). */
  decoderBlocks: number;
  /** Channel (spatial) dropout rates of the encoder's blocks at widths[1] and widths[2]; training only. */
  dropout: number[];
  bnEps: number;
  /** Weight of the batch statistics in the batch-norm running averages. */
  bnMomentum: number;
  /** Seeds the initial weights. */
  seed: number;
}

const common = {
  inChannels: 1, widths: [16, 64, 128], dropout: [0.03, 0.3], bnEps: 1e-3, bnMomentum: 0.1, seed: 0,
};
const paperDepth = { encoderBlocks: 5, dilations: [2, 4, 8, 16], dilatedRepeats: 2, decoderBlocks: 2 };
// A step of 2x1x128x128 well under a second on a software GPU.
const smallDepth = { widths: [8, 32, 48], encoderBlocks: 2, dilations: [2, 4, 8], dilatedRepeats: 1, decoderBlocks: 1 };

/** Named configs: the paper's architecture, and one small enough to train in minutes on a software GPU. */
export const erfnetPresets: Readonly<Record<string, Readonly<ERFNetConfig>>> = {
  paper: { ...common, ...paperDepth, ndim: 2, outChannels: [4, 1] },
  'paper-3d': { ...common, ...paperDepth, ndim: 3, outChannels: [6, 1] },
  small: { ...common, ...smallDepth, ndim: 2, outChannels: [4, 1] },
  'small-3d': { ...common, ...smallDepth, ndim: 3, outChannels: [6, 1] },
};

const isPositiveInt = (v: unknown): v is number => typeof v === 'number' && Number.isInteger(v) && v > 0;
const isCount = (v: unknown): v is number => typeof v === 'number' && Number.isInteger(v) && v >= 0;

/**
 * A full config from a partial one: missing fields come from the `paper` preset of the config's dimension (`paper-3d`
 * for ndim 3). Throws naming the first bad field.
 */
export function erfnetConfig(user: Record<string, unknown> = {}): ERFNetConfig {
  const base = erfnetPresets[user.ndim === 3 ? 'paper-3d' : 'paper'];
  const known = new Set(Object.keys(base));
  const unknown = Object.keys(user).filter((k) => !known.has(k));
  if (unknown.length) throw new Error(`erfnet: unknown config field ${unknown.map((k) => `"${k}"`).join(', ')}`);
  const c = { ...base, ...user } as ERFNetConfig;
  const bad = (field: string, want: string) => new Error(`erfnet: ${field} must be ${want}, got ${JSON.stringify(c[field as keyof ERFNetConfig])}`);
  if (c.ndim !== 2 && c.ndim !== 3) throw bad('ndim', '2 or 3');
  if (!isPositiveInt(c.inChannels)) throw bad('inChannels', 'a positive integer');
  if (!Array.isArray(c.outChannels) || c.outChannels.length === 0 || !c.outChannels.every(isPositiveInt) || c.outChannels[0] <= c.ndim) {
    throw bad('outChannels', `a non-empty list of positive integers, the first above ${c.ndim} (${c.ndim} offsets, then sigmas)`);
  }
  // Each downsampler's conv makes the channels that the max-pooled input lacks: out − in of them.
  if (!Array.isArray(c.widths) || c.widths.length !== 3 || !c.widths.every(isPositiveInt) || !c.widths.every((w, i) => w > (i ? c.widths[i - 1] : c.inChannels))) {
    throw bad('widths', `3 increasing integers above inChannels (${c.inChannels})`);
  }
  for (const f of ['encoderBlocks', 'dilatedRepeats', 'decoderBlocks'] as const) {
    if (!isCount(c[f])) throw bad(f, 'a non-negative integer');
  }
  if (!Array.isArray(c.dilations) || !c.dilations.every(isPositiveInt)) throw bad('dilations', 'a list of positive integers');
  if (!Array.isArray(c.dropout) || c.dropout.length !== 2 || !c.dropout.every((p) => typeof p === 'number' && p >= 0 && p < 1)) {
    throw bad('dropout', '2 rates in [0, 1) (blocks at widths[1] and widths[2])');
  }
  if (!(typeof c.bnEps === 'number' && c.bnEps > 0 && Number.isFinite(c.bnEps))) throw bad('bnEps', 'a positive number');
  if (!(typeof c.bnMomentum === 'number' && c.bnMomentum >= 0 && c.bnMomentum <= 1)) throw bad('bnMomentum', 'in [0, 1]');
  if (!(Number.isSafeInteger(c.seed) && c.seed >= 0 && c.seed < 2 ** 32)) throw bad('seed', 'an integer in [0, 2^32)');
  return { ...c, outChannels: [...c.outChannels], widths: [...c.widths], dilations: [...c.dilations], dropout: [...c.dropout] };
}

type Layer =
  | { kind: 'downsampler'; name: string; inChannels: number; outChannels: number }
  | { kind: 'nonBottleneck1d'; name: string; channels: number; dropout: number; dilation: number }
  | { kind: 'upsampler'; name: string; inChannels: number; outChannels: number };

/** Dropout seeds of one forward pass: seed·2^10 + the encoder layer's index. */
const LAYERS_PER_SEED = 1024;

export class BranchedERFNet {
  readonly config: Readonly<ERFNetConfig>;
  readonly ndim: 2 | 3;
  /** Spatial sizes given to forward() must be multiples of this, per axis: three downsamplers of stride 2. */
  readonly sizeMultiple: readonly number[];
  private readonly tensors = new Map<string, NamedTensor>();
  private readonly encoder: Layer[];
  private readonly decoders: Layer[][];
  /** The factorized kernels of a residual block: 3 along one axis, 1 along the others ([3, 1], [1, 3] in 2D). */
  private readonly factorized: number[][];
  /** The Philox seed of the next initial weight or bias. */
  private initSeed: number;

  constructor(
    readonly engine: Engine,
    config: Record<string, unknown> = {},
  ) {
    const c = erfnetConfig(config);
    this.config = c;
    this.ndim = c.ndim;
    this.sizeMultiple = new Array<number>(c.ndim).fill(8);
    this.factorized = this.sizeMultiple.map((_, axis) => this.sizeMultiple.map((_, k) => (k === axis ? 3 : 1)));
    this.initSeed = c.seed * 2 ** 16;
    const [w0, w1, w2] = c.widths;
    const block = (name: string, channels: number, p: number, dilation: number): Layer => ({ kind: 'nonBottleneck1d', name, channels, dropout: p, dilation });
    this.encoder = [{ kind: 'downsampler', name: 'encoder.initial_block', inChannels: c.inChannels, outChannels: w0 }];
    // PyTorch's encoder.layers list starts after the initial block.
    const push = (layer: (name: string) => Layer) => this.encoder.push(layer(`encoder.layers.${this.encoder.length - 1}`));
    push((name) => ({ kind: 'downsampler', name, inChannels: w0, outChannels: w1 }));
    for (let i = 0; i < c.encoderBlocks; i++) push((name) => block(name, w1, c.dropout[0], 1));
    push((name) => ({ kind: 'downsampler', name, inChannels: w1, outChannels: w2 }));
    for (let r = 0; r < c.dilatedRepeats; r++) for (const d of c.dilations) push((name) => block(name, w2, c.dropout[1], d));
    this.decoders = c.outChannels.map((_, b) => {
      const layers: Layer[] = [];
      const up = (inChannels: number, outChannels: number) => {
        layers.push({ kind: 'upsampler', name: `decoders.${b}.layers.${layers.length}`, inChannels, outChannels });
        for (let i = 0; i < c.decoderBlocks; i++) layers.push(block(`decoders.${b}.layers.${layers.length}`, outChannels, 0, 1));
      };
      up(w2, w1);
      up(w1, w0);
      return layers;
    });
    for (const layer of [...this.encoder, ...this.decoders.flat()]) this.createLayer(layer);
    c.outChannels.forEach((n, b) => {
      const name = `decoders.${b}.output_conv`;
      const kernel = new Array<number>(c.ndim).fill(2);
      if (b > 0) {
        this.createConv(name, [w0, n, ...kernel], true);
      } else {
        // EmbedSeg's init_output: offsets start at 0 and sigmas at 1 whatever the input, so training starts from
        // every pixel embedded at its own coordinate with one bandwidth.
        this.set(`${name}.weight`, zerosInit(engine, [w0, n, ...kernel]));
        this.set(`${name}.bias`, engine.param(engine.tensor(Float32Array.from({ length: n }, (_, k) => (k < c.ndim ? 0 : 1)), [n])));
      }
    });
  }

  /** Every tensor by its PyTorch name; batch-norm running statistics are not trainable. */
  namedTensors(): Map<string, NamedTensor> {
    return new Map(this.tensors);
  }

  /**
   * Raw outputs [N, Σ outChannels, (D), H, W] of images [N, inChannels, (D), H, W] whose spatial sizes are multiples
   * of 8. Training mode uses batch statistics (and updates the running ones) and channel dropout drawn from `seed`;
   * evaluation mode is deterministic. Without gradients each layer's temporaries are freed as soon as it is done.
   */
  forward(x: Tensor, training: boolean, seed: number): Tensor {
    const c = this.config;
    const e = this.engine;
    if (x.rank !== c.ndim + 2 || x.shape[1] !== c.inChannels) {
      throw new Error(`erfnet: input must be [N, ${c.inChannels}, ${c.ndim === 3 ? 'D, ' : ''}H, W], got [${x.shape.join(', ')}]`);
    }
    if (x.shape.slice(2).some((d) => d % 8 !== 0)) {
      throw new Error(`erfnet: spatial sizes must be multiples of 8, got [${x.shape.slice(2).join(', ')}]`);
    }
    if (!(Number.isSafeInteger(seed) && seed >= 0 && seed < Number.MAX_SAFE_INTEGER / LAYERS_PER_SEED)) {
      throw new Error(`erfnet: seed must be a non-negative integer below 2^43, got ${seed}`);
    }
    const grad = e.gradEnabled;
    const run = (layers: Layer[], input: Tensor) =>
      layers.reduce((h, layer, i) => {
        const apply = () => this.layer(layer, h, training, seed * LAYERS_PER_SEED + i);
        if (grad) return apply();
        const out = e.tidy(apply);
        if (h !== input) h.dispose();
        return out;
      }, input);
    const features = run(this.encoder, x);
    const branches = this.decoders.map((layers, b) => {
      const h = run(layers, features);
      const out = convTranspose(h, this.p(`decoders.${b}.output_conv.weight`), this.p(`decoders.${b}.output_conv.bias`), {
        strides: this.sizeMultiple.map(() => 2),
      });
      if (!grad) h.dispose();
      return out;
    });
    if (!grad) features.dispose();
    if (branches.length === 1) return branches[0];
    const out = concat(branches, 1);
    if (!grad) for (const t of branches) t.dispose();
    return out;
  }

  dispose(): void {
    for (const { tensor } of this.tensors.values()) tensor.dispose();
    this.tensors.clear();
  }

  private set(name: string, tensor: Tensor, trainable = true): void {
    this.tensors.set(name, { tensor, trainable });
  }

  private p(name: string): Tensor {
    return this.tensors.get(name)!.tensor;
  }

  /**
   * PyTorch's default conv init: weights kaiming-uniform with a = √5 and biases uniform, both within ±1/√fan_in
   * (fan_in from the weight's dimension 1, which for a transposed conv [Cin, Cout, k...] is Cout·k).
   */
  private createConv(name: string, shape: number[], transposed = false): void {
    const e = this.engine;
    const bound = 1 / Math.sqrt(fans(shape).fanIn);
    this.set(`${name}.weight`, heUniform(e, shape, this.initSeed++, { slope: Math.sqrt(5) }));
    this.set(`${name}.bias`, e.param(randomUniform(e, [transposed ? shape[1] : shape[0]], this.initSeed++, -bound, bound)));
  }

  private createBatchNorm(name: string, channels: number): void {
    const e = this.engine;
    this.set(`${name}.weight`, e.param(e.fill([channels], 1)));
    this.set(`${name}.bias`, zerosInit(e, [channels]));
    this.set(`${name}.running_mean`, e.keep(e.zeros([channels])), false);
    this.set(`${name}.running_var`, e.keep(e.fill([channels], 1)), false);
  }

  private createLayer(layer: Layer): void {
    const kernel = new Array<number>(this.ndim).fill(3);
    switch (layer.kind) {
      case 'downsampler':
        this.createConv(`${layer.name}.conv`, [layer.outChannels - layer.inChannels, layer.inChannels, ...kernel]);
        return this.createBatchNorm(`${layer.name}.bn`, layer.outChannels);
      case 'upsampler':
        this.createConv(`${layer.name}.conv`, [layer.inChannels, layer.outChannels, ...kernel], true);
        return this.createBatchNorm(`${layer.name}.bn`, layer.outChannels);
      case 'nonBottleneck1d':
        for (const stage of [1, 2]) {
          for (const k of this.factorized) this.createConv(`${layer.name}.conv${k.join('x')}_${stage}`, [layer.channels, layer.channels, ...k]);
          this.createBatchNorm(`${layer.name}.bn${stage}`, layer.channels);
        }
    }
  }

  private batchNorm(name: string, x: Tensor, training: boolean): Tensor {
    const state = { runningMean: this.p(`${name}.running_mean`), runningVar: this.p(`${name}.running_var`) };
    return batchNorm(x, this.p(`${name}.weight`), this.p(`${name}.bias`), state, {
      training, momentum: this.config.bnMomentum, eps: this.config.bnEps,
    });
  }

  private layer(layer: Layer, x: Tensor, training: boolean, seed: number): Tensor {
    const w = (conv: string) => [this.p(`${layer.name}.${conv}.weight`), this.p(`${layer.name}.${conv}.bias`)] as const;
    const twos = this.sizeMultiple.map(() => 2);
    switch (layer.kind) {
      case 'downsampler': {
        const strided = conv(x, ...w('conv'), { strides: twos, pads: new Array<number>(2 * this.ndim).fill(1) });
        return relu(this.batchNorm(`${layer.name}.bn`, concat([strided, maxPool(x, { kernel: 2 })], 1), training));
      }
      case 'upsampler': {
        const up = convTranspose(x, ...w('conv'), { strides: twos, pads: new Array<number>(2 * this.ndim).fill(1), outputPadding: twos.map(() => 1) });
        return relu(this.batchNorm(`${layer.name}.bn`, up, training));
      }
      case 'nonBottleneck1d': {
        // conv3x1 → ReLU → conv1x3 → BN → ReLU → the same pair dilated → BN → dropout → ReLU(+ input).
        let h = x;
        for (const stage of [1, 2]) {
          const dilation = stage === 1 ? 1 : layer.dilation;
          this.factorized.forEach((k, axis) => {
            if (axis > 0) h = relu(h);
            const pads = new Array<number>(2 * this.ndim).fill(0);
            pads[axis] = pads[this.ndim + axis] = dilation;
            const dilations = k.map((_, a) => (a === axis ? dilation : 1));
            h = conv(h, ...w(`conv${k.join('x')}_${stage}`), { pads, dilations });
          });
          h = this.batchNorm(`${layer.name}.bn${stage}`, h, training);
          if (stage === 1) h = relu(h);
        }
        h = dropout(h, layer.dropout, seed, { training, noiseShape: [...x.shape.slice(0, 2), ...this.sizeMultiple.map(() => 1)] });
        return relu(add(h, x));
      }
    }
  }
}
