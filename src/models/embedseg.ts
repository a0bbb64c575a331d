// EmbedSeg (papers/embedseg.md, SPEC.md "EmbedSeg"): a BranchedERFNet predicts per pixel `ndim` offsets, `ndim`
// bandwidths σ and a seediness; the embedding is tanh(offset) + the pixel's coordinate on a grid of 1/1023 per pixel.
// Training scores, per true instance, a Gaussian around the embedding of its medoid pixel with the instance's mean
// bandwidth exp(10σ̄) by the Lovasz hinge, pulls σ towards σ̄ and regresses the seediness onto that Gaussian.
// Inference clusters greedily from the most seedy pixels (on the GPU), optionally averaging the raw outputs over the
// 8 rotations and flips of the image first (test-time augmentation), then removes objects smaller than minObjectSize.
import type { Engine } from '../engine/engine.ts';
import type { Tensor } from '../engine/tensor.ts';
import { clusterSeedsTensor } from '../kernels/cluster.ts';
import { dihedral, dihedralInverse, dihedralVectorMap } from '../kernels/dihedral.ts';
import { add, neg, scale, sigmoid, tanh } from '../kernels/elementwise.ts';
import { embedSegLoss } from '../kernels/embedseg-loss.ts';
import { concat, reshape, slice } from '../kernels/shape.ts';
import { removeSmallObjects } from '../kernels/voting.ts';
import { BranchedERFNet, erfnetConfig, erfnetPresets, type ERFNetConfig } from './erfnet.ts';
import type { InstanceModel, ModelFactory, ModelSpec, NamedTensor, Spacing, TrainBatch } from './model.ts';

/** What EmbedSeg adds to its network's config: loss weights and the clustering's thresholds. */
export interface EmbedSegHeadConfig {
  /** Weight of the seed loss on instance pixels (background pixels weigh 1). */
  foregroundWeight: number;
  /** Pixels with seediness above this are foreground. */
  fgThreshold: number;
  /** Clustering stops when the most seedy unclustered pixel is below this. */
  seedThreshold: number;
  /**
   * Proposals of at most this many pixels are rejected (still marked clustered): the reference code's
   * min_object_size, 36.
   */
  minMaskSum: number;
  /** A proposal is accepted when more than this share of it was unclustered. */
  minUnclusteredRatio: number;
  /**
   * Objects with fewer pixels are removed after clustering, where later proposals took pixels from earlier ones (the
   * paper's evaluation drops objects under 37 px).
   */
  minObjectSize: number;
  /**
   * Average the raw outputs over the 8 rotations/flips of the yx plane before clustering (2D only; 8 network passes,
   * so off during training's validation; `wgseg predict --tta` turns it on).
   */
  tta: boolean;
}

export type EmbedSegConfig = ERFNetConfig & EmbedSegHeadConfig;

const head: EmbedSegHeadConfig = {
  foregroundWeight: 10, fgThreshold: 0.5, seedThreshold: 0.9, minMaskSum: 36, minUnclusteredRatio: 0.5, minObjectSize: 37, tta: false,
};

/** Named configs: the paper's network, and one small enough to train in minutes on a software GPU. */
export const embedsegPresets: Readonly<Record<string, Readonly<EmbedSegConfig>>> = Object.fromEntries(
  Object.entries(erfnetPresets).map(([name, network]) => [name, { ...network, ...head }]),
);

/** A full config from a partial one (network defaults from erfnetConfig); throws naming the first bad field. */
export function embedsegConfig(user: Record<string, unknown> = {}): EmbedSegConfig {
  const headKeys = new Set(Object.keys(head));
  const network = erfnetConfig(Object.fromEntries(Object.entries(user).filter(([k]) => !headKeys.has(k))));
  const c = { ...head, ...Object.fromEntries(Object.entries(user).filter(([k]) => headKeys.has(k))), ...network } as EmbedSegConfig;
  const bad = (field: keyof EmbedSegConfig, want: string) => new Error(`embedseg: ${field} must be ${want}, got ${JSON.stringify(c[field])}`);
  if (c.outChannels.length !== 2 || c.outChannels[0] !== 2 * c.ndim || c.outChannels[1] !== 1) {
    throw bad('outChannels', `[${2 * c.ndim}, 1] (${c.ndim} offsets and ${c.ndim} sigmas, then the seed map)`);
  }
  for (const f of ['fgThreshold', 'seedThreshold', 'minUnclusteredRatio'] as const) {
    if (!(typeof c[f] === 'number' && c[f] >= 0 && c[f] <= 1)) throw bad(f, 'in [0, 1]');
  }
  if (!(typeof c.foregroundWeight === 'number' && c.foregroundWeight >= 0)) throw bad('foregroundWeight', 'a number >= 0');
  for (const f of ['minMaskSum', 'minObjectSize'] as const) if (!(Number.isInteger(c[f]) && c[f] >= 0)) throw bad(f, 'a non-negative integer');
  if (typeof c.tta !== 'boolean') throw bad('tta', 'true or false');
  if (c.tta && c.ndim === 3) throw bad('tta', 'false in 3D (test-time augmentation rotates the yx plane of 2D images)');
  return c;
}

/** Grid step per axis, [y, x] or [z, y, x]: 1/1023 along the finest axis, coarser axes in proportion (anisotropy). */
export function gridSpacing(spacing: Spacing): number[] {
  const finest = Math.min(...spacing);
  return spacing.map((s) => s / finest / 1023);
}

export class EmbedSeg implements InstanceModel {
  readonly kind = 'embedseg';
  readonly config: Readonly<EmbedSegConfig>;
  readonly ndim: 2 | 3;
  readonly inChannels: number;
  readonly sizeMultiple: readonly number[];
  readonly tileMargin: readonly number[];
  readonly network: BranchedERFNet;

  constructor(
    readonly engine: Engine,
    config: Record<string, unknown> = {},
  ) {
    this.config = embedsegConfig(config);
    const { foregroundWeight, fgThreshold, seedThreshold, minMaskSum, minUnclusteredRatio, minObjectSize, tta, ...network } = this.config;
    this.network = new BranchedERFNet(engine, network);
    this.ndim = this.config.ndim;
    this.inChannels = this.config.inChannels;
    this.sizeMultiple = this.network.sizeMultiple;
    // The dilated blocks at stride 8 reach 8·(Σ dilations + 3) pixels, more than a tile can afford, so tiles are
    // approximate: 96 pixels of context (32 in z) on each side of the kept part.
    this.tileMargin = this.ndim === 2 ? [96, 96] : [32, 96, 96];
  }

  namedTensors(): Map<string, NamedTensor> {
    return this.network.namedTensors();
  }

  loss(batch: TrainBatch, step: number): Promise<Tensor> {
    const prediction = this.network.forward(batch.images, true, this.config.seed * 2 ** 24 + step);
    return embedSegLoss(prediction, batch.labels, { foregroundWeight: this.config.foregroundWeight, gridSpacing: gridSpacing(batch.spacing) });
  }

  infer(images: Tensor): Tensor {
    const bad = images.shape.slice(2).findIndex((d, i) => d % this.sizeMultiple[i] !== 0);
    if (bad >= 0) {
      throw new Error(`embedseg: infer needs spatial sizes that are multiples of [${this.sizeMultiple.join(', ')}], got [${images.shape.slice(2).join(', ')}]`);
    }
    return this.engine.noGrad(() => (this.config.tta ? this.augmentedOutputs(images) : this.network.forward(images, false, 0)));
  }

  /**
   * The raw outputs averaged over the 8 rotations/flips t of the yx plane: each transformed image's outputs are
   * transformed back, and their offset and sigma channels (vectors in the transformed frame) mapped back to the
   * image's axes. tanh is odd, so mapping offsets before it equals mapping the embeddings' offsets after it.
   */
  private augmentedOutputs(images: Tensor): Tensor {
    const e = this.engine;
    const D = this.ndim;
    let sum: Tensor | null = null;
    for (let t = 0; t < 8; t++) {
      const next = e.tidy(() => {
        const back = dihedralInverse(this.network.forward(dihedral(images, t), false, 0), t);
        const [n, k, ...spatial] = back.shape;
        const channel = (c: number) => slice(back, [0, c, 0, 0], [n, 1, ...spatial]);
        // Offsets change sign and swap with the axes; bandwidths only swap.
        const { source, sign } = dihedralVectorMap(t);
        const offsets = source.map((s, c) => (sign[c] < 0 ? neg(channel(s)) : channel(s)));
        const sigmas = source.map((s) => channel(D + s));
        const mapped = concat([...offsets, ...sigmas, channel(k - 1)], 1);
        return sum ? add(sum, mapped) : mapped;
      });
      sum?.dispose();
      sum = next;
    }
    const mean = scale(sum!, 1 / 8);
    sum!.dispose();
    return mean;
  }

  async postprocess(outputs: Tensor, spacing: Spacing, values: Readonly<Record<string, number>> = {}): Promise<Int32Array> {
    const e = this.engine;
    const D = this.ndim;
    if (outputs.rank !== D + 2 || outputs.shape[0] !== 1 || outputs.shape[1] !== 2 * D + 1) {
      throw new Error(`embedseg: postprocess needs outputs [1, ${2 * D + 1}, ...spatial], got [${outputs.shape.join(', ')}]`);
    }
    if (spacing.length !== D) throw new Error(`embedseg: spacing [${spacing.join(', ')}] for a ${D}D model`);
    const c = embedsegConfig({ ...this.config, ...values });
    const spatial = outputs.shape.slice(2);
    const origin = spatial.map(() => 0);
    const scope = e.beginScope();
    try {
      const { embedding, sigma, seed } = e.noGrad(() => {
        const part = (from: number, count: number) => reshape(slice(outputs, [0, from, ...origin], [1, count, ...spatial]), [count, ...spatial]);
        return {
          embedding: add(tanh(part(0, D)), embeddingGrid(e, spatial, gridSpacing(spacing))),
          sigma: part(D, D),
          seed: sigmoid(part(2 * D, 1)),
        };
      });
      const clustered = await clusterSeedsTensor(embedding, sigma, seed, {
        fgThreshold: c.fgThreshold, seedThreshold: c.seedThreshold, minMaskSum: c.minMaskSum, minUnclusteredRatio: c.minUnclusteredRatio,
      });
      const labels = c.minObjectSize === 0 ? clustered : removeSmallObjects(clustered, c.minObjectSize);
      return (await labels.data()) as Int32Array;
    } finally {
      scope.end();
    }
  }

  /** The seed threshold trades missed objects against false ones; the reference code tunes it per dataset. */
  postprocessGrid(): Record<string, number[]> {
    return { seedThreshold: [0.5, 0.6, 0.7, 0.8, 0.9] };
  }

  dispose(): void {
    this.network.dispose();
  }
}

/**
 * [ndim, ...spatial]: the pixel coordinates on EmbedSeg's grid in the offsets' channel order (x first, then y, then
 * z): channel c holds the index along spatial axis ndim − 1 − c times that axis' step.
 */
export function embeddingGrid(e: Engine, spatial: readonly number[], step: readonly number[]): Tensor {
  const D = spatial.length;
  const n = spatial.reduce((a, b) => a * b, 1);
  const grid = new Float32Array(D * n);
  for (let c = 0; c < D; c++) {
    const axis = D - 1 - c;
    const stride = spatial.slice(axis + 1).reduce((a, b) => a * b, 1);
    for (let i = 0; i < n; i++) grid[c * n + i] = (Math.floor(i / stride) % spatial[axis]) * step[axis];
  }
  return e.tensor(grid, [D, ...spatial]);
}

export const createEmbedSeg: ModelFactory = (engine, config) => new EmbedSeg(engine, config);


export const embedsegSpec: ModelSpec = {
  kind: 'embedseg',
  factory: createEmbedSeg,
  presets: embedsegPresets,
  presetsByNdim: { 2: ['paper', 'small'], 3: ['paper-3d', 'small-3d'] },
  // EmbedSeg's code: Adam 5e-4 with weight decay 1e-4, poly decay, crops centred on objects, rot90 and flips only.
  recipe: {
    train: { lr: 5e-4, weightDecay: 1e-4, schedule: 'poly' },
    data: {
      crops: 'objects',
      augment: { flip: true, rot90: true, affine: null, elastic: null, blur: null, offset: 0, gain: [1, 1], noise: null, clip: null },
    },
  },
  tunes: ['seedThreshold'],
  // One dilated block at dilation 1 and one block per stage: a reach of about 60 pixels, inside the 96-pixel margin.
  tiny: (preset) => ({ ...preset, widths: [2, 4, 8], encoderBlocks: 1, dilations: [1], dilatedRepeats: 1, decoderBlocks: 1 }),
};
