// CenterUNet (papers/centerunet-thesis.txt Sec. 4.3–4.6, SPEC.md "CenterUNet"): a ResNet encoder, CenterNet's neck of
// three [DCNv2 3x3 → BN → ReLU → transposed conv 4x4 s2 → BN → ReLU] layers to stride 4, where CenterNet's heads
// (3x3 conv → ReLU → 1x1 conv) predict a centre heatmap, the long and short side of each object's minimum-area
// rotated rectangle, the centre's sub-cell offset and the long side's angle; two more such layers, fed U-Net skip
// connections from the encoder's stride-4 and stride-2 levels, bring the features to full resolution for a
// segmentation head (with neckSkips 'all', the second and third CenterNet layers also take the stride-16 and stride-8
// levels: the `small` preset, which does not learn its heatmap from scratch without them). Trained with the focal
// loss, L1 at the centres and Dice (thesis Eq. 7). Instances: the detected centres (3x3 max-pool NMS and top-K on the
// GPU) seed a marker watershed of the segmentation.
import type { Engine } from '../engine/engine.ts';
import type { Tensor } from '../engine/tensor.ts';
import { chain } from '../kernels/chain.ts';
import { conv, convTranspose } from '../kernels/conv.ts';
import { deformConv } from '../kernels/deform-conv.ts';
import { diceLoss } from '../kernels/dice.ts';
import { abs, mul, relu, scale, sigmoid, sub } from '../kernels/elementwise.ts';
import { fans, heUniform, zerosInit } from '../kernels/init.ts';
import { focalLoss } from '../kernels/focal-loss.ts';
import { findPeaks } from '../kernels/peaks.ts';
import { randomUniform } from '../kernels/random.ts';
import { sum } from '../kernels/reduce.ts';
import { concat, reshape, slice, transpose } from '../kernels/shape.ts';
import { centerNetTargets, rotatedBox, type RotatedBox } from '../train/rotated-box.ts';
import { markerWatershed } from '../train/watershed.ts';
import type { Detection, InstanceModel, ModelFactory, ModelSpec, NamedTensor, Spacing, TrainBatch } from './model.ts';
import { applyBatchNorm, batchNormTensors, ResNet, type ResNetConfig } from './resnet.ts';

export interface CenterUNetConfig {
  ndim: 2;
  inChannels: number;
  /** The encoder: ResNet18, 34 or 50, its stem width (torchvision: 64) and blocks per stage (null: the depth's). */
  depth: ResNetConfig['depth'];
  width: number;
  blocks: number[] | null;
  /** Output channels of the five decoder layers: CenterNet's three to stride 4 (256, 128, 64), then the two added. */
  neckChannels: number[];
  /**
   * Which decoder layers take U-Net skip connections (concatenation) from the encoder level of their input's stride:
   * 'segmentation' (the thesis' CenterUNet: only the two layers added for the segmentation head, from the stride-4 and
   * stride-2 levels) or 'all' (also the second and third CenterNet layers, from the stride-16 and stride-8 levels, so
   * the detection heads see encoder features finer than stride 32, as CenterNet's DLA-34 upsampling does).
   */
  neckSkips: 'segmentation' | 'all';
  /** Channels of the detection heads' 3x3 conv (CenterNet's head_conv, 64) and of the segmentation head's. */
  headChannels: number;
  segHeadChannels: number;
  /**
   * Bound b of the deformable offsets in cells of their level: b·tanh(raw/b), smooth and the identity near 0. Null:
   * DCNv2's unbounded offsets, for which tileMargin allows 2 cells (tiles are exact as long as offsets stay within).
   */
  offsetBound: number | null;
  /** Loss weights of thesis Eq. 7 (the heatmap's focal loss weighs 1). */
  sizeWeight: number;
  offsetWeight: number;
  angleWeight: number;
  segmentationWeight: number;
  /** CornerNet's min_overlap for the heatmap's Gaussian radius. */
  minOverlap: number;
  /** A centre needs a heatmap score above this. */
  scoreThreshold: number;
  /** At most this many centres per image (top-K). */
  maxObjects: number;
  /** Pixels with segmentation probability above this are foreground. */
  segThreshold: number;
  bnEps: number;
  bnMomentum: number;
  /** Seeds the initial weights. */
  seed: number;
}

/** Input pixels per heatmap cell. */
const STRIDE = 4;
/** Channels of infer(): heatmap logit, width, height, offset x, offset y, angle, then the segmentation logits. */
const DETECTION_CHANNELS = 6;
const SEG_CHANNELS = STRIDE * STRIDE;
/** The heatmap's initial bias: sigmoid(−2.19) ≈ 0.1, CenterNet's prior. */
const HEATMAP_BIAS = -2.19;

const common = {
  ndim: 2 as const, inChannels: 1, blocks: null, neckSkips: 'segmentation' as const, offsetBound: null, sizeWeight: 2, offsetWeight: 1, angleWeight: 2, segmentationWeight: 1,
  minOverlap: 0.7, scoreThreshold: 0.3, maxObjects: 1000, segThreshold: 0.5, bnEps: 1e-5, bnMomentum: 0.1, seed: 0,
};

/**
 * Named configs: the thesis' ResNet50 network, and a ResNet18 at an eighth of its width that trains ~1000 steps in
 * about an hour on a software GPU (0.41M parameters, 0.39M before neckSkips 'all'; measured before it, a training
 * step of 2×1×128×128 crops took 2.3–2.7 s through `wgseg train` on lavapipe with the CPU shared). The last decoder layer and the segmentation head dominate a step
 * (64% of its GPU time at width 16): their convs run at half and full crop resolution, the deformable and offset
 * convs on the stem's `width` channels (the skip connection) beside the decoder's 8, so width sets their cost. At
 * width 16 a step took 4.5 s, and 9–15 s on 256×256 crops. `small` also feeds the stride-16 and stride-8 encoder levels
 * into the CenterNet layers (neckSkips 'all'): trained from scratch with the thesis' skips only, its heatmap did not
 * learn even synthetic blobs in 1050 steps (validation F1 0), and with them reached F1 0.60 in 200 (README, CenterUNet).
 */
export const centerunetPresets: Readonly<Record<string, Readonly<CenterUNetConfig>>> = {
  paper: { ...common, depth: 50, width: 64, neckChannels: [256, 128, 64, 32, 16], headChannels: 64, segHeadChannels: 16 },
  small: { ...common, depth: 18, width: 8, neckSkips: 'all', neckChannels: [64, 32, 16, 8, 8], headChannels: 16, segHeadChannels: 8 },
};

const isPositiveInt = (v: unknown): v is number => typeof v === 'number' && Number.isInteger(v) && v > 0;

/** A full config from a partial one (missing fields from `paper`); throws naming the first bad field. */
export function centerunetConfig(user: Record<string, unknown> = {}): CenterUNetConfig {
  const base = centerunetPresets.paper;
  const unknown = Object.keys(user).filter((k) => !(k in base));
  if (unknown.length) throw new Error(`centerunet: unknown config field ${unknown.map((k) => `"${k}"`).join(', ')}`);
  const c = { ...base, ...user } as CenterUNetConfig;
  const bad = (field: keyof CenterUNetConfig, want: string) => new Error(`centerunet: ${field} must be ${want}, got ${JSON.stringify(c[field])}`);
  if (c.ndim !== 2) throw bad('ndim', '2 (CenterUNet is a 2D model)');
  if (![18, 34, 50].includes(c.depth)) throw bad('depth', '18, 34 or 50');
  for (const f of ['inChannels', 'width', 'headChannels', 'segHeadChannels', 'maxObjects'] as const) if (!isPositiveInt(c[f])) throw bad(f, 'a positive integer');
  if (c.blocks !== null && !(Array.isArray(c.blocks) && c.blocks.length === 4 && c.blocks.every(isPositiveInt))) throw bad('blocks', 'null or 4 positive integers');
  if (!(Array.isArray(c.neckChannels) && c.neckChannels.length === 5 && c.neckChannels.every(isPositiveInt))) throw bad('neckChannels', '5 positive integers');
  if (c.neckSkips !== 'segmentation' && c.neckSkips !== 'all') throw bad('neckSkips', '"segmentation" or "all"');
  if (c.offsetBound !== null && !(typeof c.offsetBound === 'number' && c.offsetBound > 0)) throw bad('offsetBound', 'null or a number > 0');
  for (const f of ['sizeWeight', 'offsetWeight', 'angleWeight', 'segmentationWeight'] as const) if (!(typeof c[f] === 'number' && c[f] >= 0)) throw bad(f, 'a number >= 0');
  for (const f of ['minOverlap', 'scoreThreshold', 'segThreshold'] as const) if (!(typeof c[f] === 'number' && c[f] >= 0 && c[f] < 1)) throw bad(f, 'in [0, 1)');
  if (!(c.bnEps > 0)) throw bad('bnEps', 'a positive number');
  if (!(c.bnMomentum >= 0 && c.bnMomentum <= 1)) throw bad('bnMomentum', 'in [0, 1]');
  if (!(Number.isSafeInteger(c.seed) && c.seed >= 0 && c.seed < 2 ** 32)) throw bad('seed', 'an integer in [0, 2^32)');
  return { ...c, blocks: c.blocks ? [...c.blocks] : null, neckChannels: [...c.neckChannels] };
}

/** The 4x4 bilinear upsampling kernel of CenterNet's fill_up_weights, per channel (w[c, c]); 0 between channels. */
function bilinearUpWeights(e: Engine, channels: number): Tensor {
  const k = 4;
  const f = Math.ceil(k / 2);
  const centre = (2 * f - 1 - (f % 2)) / (2 * f);
  const w = new Float32Array(channels * channels * k * k);
  for (let c = 0; c < channels; c++) {
    for (let i = 0; i < k; i++) {
      for (let j = 0; j < k; j++) w[((c * channels + c) * k + i) * k + j] = (1 - Math.abs(i / f - centre)) * (1 - Math.abs(j / f - centre));
    }
  }
  return e.param(e.tensor(w, [channels, channels, k, k]));
}

/** The network's heads of one batch: heatmap logits and regression at stride 4, segmentation logits at full resolution. */
interface Heads {
  heatmap: Tensor;
  regression: Tensor;
  segmentation: Tensor;
}

export class CenterUNet implements InstanceModel {
  readonly kind = 'centerunet';
  readonly config: Readonly<CenterUNetConfig>;
  readonly ndim = 2 as const;
  readonly inChannels: number;
  /** Five stride-2 levels. */
  readonly sizeMultiple = [32, 32];
  readonly outputStride = [STRIDE, STRIDE];
  readonly tileMargin: readonly number[];
  private readonly backbone: ResNet;
  private readonly tensors = new Map<string, NamedTensor>();
  /** Per decoder layer: its input channels (with the skip connection's). */
  private readonly neckInputs: number[];
  private initSeed: number;

  constructor(
    readonly engine: Engine,
    config: Record<string, unknown> = {},
  ) {
    const c = centerunetConfig(config);
    this.config = c;
    this.inChannels = c.inChannels;
    this.initSeed = c.seed * 2 ** 16;
    this.backbone = new ResNet(engine, { depth: c.depth, inChannels: c.inChannels, width: c.width, blocks: c.blocks, bnEps: c.bnEps, bnMomentum: c.bnMomentum }, this.initSeed);
    this.initSeed += 1024;
    const levels = this.backbone.channels;
    // Decoder layer l (input stride 32 / 2^l) concatenates the encoder level of that stride where skipLevel says.
    this.neckInputs = c.neckChannels.map((_, l) => {
      const skip = this.skipLevel(l);
      return (l === 0 ? levels[4] : c.neckChannels[l - 1]) + (skip === null ? 0 : levels[skip]);
    });
    c.neckChannels.forEach((out, l) => {
      const name = `neck.${l}`;
      const cin = this.neckInputs[l];
      // DCNv2 starts as a plain conv: its offset-and-mask conv is zero (offsets 0, mask 0.5 everywhere).
      this.set(`${name}.offset.weight`, zerosInit(engine, [27, cin, 3, 3]));
      this.set(`${name}.offset.bias`, zerosInit(engine, [27]));
      this.createConv(`${name}.dcn`, [out, cin, 3, 3]);
      this.createBatchNorm(`${name}.dcn_bn`, out);
      this.set(`${name}.up_sample.weight`, bilinearUpWeights(engine, out));
      this.createBatchNorm(`${name}.up_bn`, out);
    });
    const features = c.neckChannels[2];
    for (const [head, channels] of [['heatmap', 1], ['wh', 2], ['offset', 2], ['angle', 1]] as const) {
      this.createConv(`head.${head}.0`, [c.headChannels, features, 3, 3]);
      this.createConv(`head.${head}.2`, [channels, c.headChannels, 1, 1]);
    }
    this.p('head.heatmap.2.bias').dispose();
    this.set('head.heatmap.2.bias', engine.param(engine.fill([1], HEATMAP_BIAS)));
    this.createConv('head.segmentation.0', [c.segHeadChannels, c.neckChannels[4], 3, 3]);
    this.createConv('head.segmentation.2', [1, c.segHeadChannels, 1, 1]);
    this.tileMargin = [this.reach(), this.reach()];
  }

  /** The encoder level whose features decoder layer l concatenates to its input (same stride), or null. */
  private skipLevel(l: number): number | null {
    if (l === 3 || l === 4) return 4 - l;
    return this.config.neckSkips === 'all' && l > 0 ? 4 - l : null;
  }

  /**
   * How far an output reaches into the input, in pixels each way, rounded up to a multiple of 4: the encoder's reach,
   * then per decoder layer the offset conv and the deformable conv's kernel, its offsets (offsetBound, or 2 cells) and
   * its bilinear taps (1 + 1 + b cells), the transposed conv (1 cell), the segmentation head's 3x3, and the shifts of
   * strided windows.
   */
  private reach(): number {
    let { radius, jump } = this.backbone.reach();
    const bound = this.config.offsetBound ?? 2;
    for (let l = 0; l < 5; l++) {
      radius += (2 + bound) * jump + jump;
      jump /= 2;
    }
    // A strided layer's windows sit up to half its input jump off-centre, and a transposed conv's as much: those
    // shifts add up to less than two cells of the last encoder level.
    return Math.ceil((radius + 1 + 64) / STRIDE) * STRIDE;
  }

  namedTensors(): Map<string, NamedTensor> {
    const all = new Map<string, NamedTensor>();
    for (const [name, t] of this.backbone.namedTensors()) all.set(`backbone.${name}`, t);
    for (const [name, t] of this.tensors) all.set(name, t);
    return all;
  }

  private set(name: string, tensor: Tensor, trainable = true): void {
    this.tensors.set(name, { tensor, trainable });
  }

  private p(name: string): Tensor {
    return this.tensors.get(name)!.tensor;
  }

  /** PyTorch's default conv init: weights and biases uniform within ±1/√fan_in (weights: kaiming-uniform, a = √5). */
  private createConv(name: string, shape: number[]): void {
    const e = this.engine;
    const bound = 1 / Math.sqrt(fans(shape).fanIn);
    this.set(`${name}.weight`, heUniform(e, shape, this.initSeed++, { slope: Math.sqrt(5) }));
    this.set(`${name}.bias`, e.param(randomUniform(e, [shape[0]], this.initSeed++, -bound, bound)));
  }

  private createBatchNorm(name: string, channels: number): void {
    for (const [suffix, t] of batchNormTensors(this.engine, channels)) this.tensors.set(`${name}.${suffix}`, t);
  }

  private bn(name: string, x: Tensor, training: boolean): Tensor {
    return applyBatchNorm(this.tensors, name, x, training, this.config.bnEps, this.config.bnMomentum);
  }

  private convLayer(name: string, x: Tensor, pad: number): Tensor {
    return conv(x, this.p(`${name}.weight`), this.p(`${name}.bias`), { pads: [pad, pad, pad, pad] });
  }

  /** One decoder layer: DCNv2 3x3 (offsets and mask from a 3x3 conv) → BN → ReLU → transposed conv 4x4 s2 p1 → BN → ReLU. */
  private neckLayer(l: number, x: Tensor, training: boolean): Tensor {
    const name = `neck.${l}`;
    const [n, , h, w] = x.shape;
    const offsetMask = this.convLayer(`${name}.offset`, x, 1);
    const raw = slice(offsetMask, [0, 0, 0, 0], [n, 18, h, w]);
    const b = this.config.offsetBound;
    const offset = b === null ? raw : chain(raw, [{ op: 'scale', alpha: 1 / b }, { op: 'tanh' }, { op: 'scale', alpha: b }]);
    const mask = sigmoid(slice(offsetMask, [0, 18, 0, 0], [n, 9, h, w]));
    const deformed = deformConv(x, offset, mask, this.p(`${name}.dcn.weight`), this.p(`${name}.dcn.bias`), { pads: [1, 1, 1, 1] });
    const y = relu(this.bn(`${name}.dcn_bn`, deformed, training));
    const up = convTranspose(y, this.p(`${name}.up_sample.weight`), null, { strides: [2, 2], pads: [1, 1, 1, 1] });
    return relu(this.bn(`${name}.up_bn`, up, training));
  }

  private head(name: string, x: Tensor): Tensor {
    return this.convLayer(`head.${name}.2`, relu(this.convLayer(`head.${name}.0`, x, 1)), 0);
  }

  private forward(images: Tensor, training: boolean): Heads {
    const e = this.engine;
    if (images.rank !== 4 || images.shape[1] !== this.inChannels || images.shape.slice(2).some((d) => d % 32 !== 0)) {
      throw new Error(`centerunet: images must be [N, ${this.inChannels}, H, W] with H and W multiples of 32, got [${images.shape.join(', ')}]`);
    }
    const levels = this.backbone.forward(images, training);
    const step = (fn: () => Tensor) => (e.gradEnabled ? fn() : e.tidy(fn));
    let x = levels[4];
    const heads: Partial<Heads> = {};
    for (let l = 0; l < 5; l++) {
      const skip = this.skipLevel(l);
      const input = skip === null ? x : concat([x, levels[skip]], 1);
      x = step(() => this.neckLayer(l, input, training));
      if (l === 2) {
        const features = x;
        heads.heatmap = step(() => this.head('heatmap', features));
        heads.regression = step(() => concat(['wh', 'offset', 'angle'].map((h) => this.head(h, features)), 1));
      }
    }
    const full = x;
    heads.segmentation = step(() => this.head('segmentation', full));
    return heads as Heads;
  }

  /**
   * Terms of thesis Eq. 7: the heatmap's focal loss, and weighted by the config the L1 losses at the centres of the
   * sizes, offsets and angles (each a mean over centres and channels) and the segmentation's Dice. The targets are
   * built on the CPU from the labels, read back once per batch. Unlabeled pixels (−1) are left out of the focal
   * loss (their cells) and the Dice.
   */
  async loss(batch: TrainBatch, _step: number): Promise<Record<string, Tensor>> {
    const e = this.engine;
    const c = this.config;
    const [n, , H, W] = batch.labels.shape;
    const labels = (await batch.labels.data()) as Int32Array;
    const [h, w] = [H / STRIDE, W / STRIDE];
    const cells = h * w;
    const heat = new Float32Array(n * cells);
    const regression = new Float32Array(n * 5 * cells);
    const centres = new Float32Array(n * cells);
    const valid = new Float32Array(n * cells);
    let count = 0;
    for (let i = 0; i < n; i++) {
      const t = centerNetTargets(labels.subarray(i * H * W, (i + 1) * H * W), H, W, STRIDE, c.minOverlap);
      heat.set(t.heatmap, i * cells);
      regression.set(t.regression, i * 5 * cells);
      centres.set(t.centres, i * cells);
      valid.set(t.valid, i * cells);
      count += t.count;
    }
    const segTarget = Float32Array.from(labels, (l) => (l > 0 ? 1 : 0));
    const segWeight = Float32Array.from(labels, (l) => (l >= 0 ? 1 : 0));
    const heads = this.forward(batch.images, true);
    const grid = (data: Float32Array, channels: number) => e.tensor(data, [n, channels, h, w]);
    const centreMask = grid(centres, 1);
    const target = grid(regression, 5);
    // L1 at the centres of channels [from, from + k), averaged over centres and channels (CenterNet's reg_l1_loss).
    const l1 = (from: number, k: number, weight: number) => {
      const diff = abs(sub(slice(heads.regression, [0, from, 0, 0], [n, k, h, w]), slice(target, [0, from, 0, 0], [n, k, h, w])));
      return scale(sum(mul(diff, centreMask)), weight / Math.max(1, count * k));
    };
    return {
      heatmap: focalLoss(heads.heatmap, grid(heat, 1), { count, weight: grid(valid, 1) }),
      size: l1(0, 2, c.sizeWeight),
      offset: l1(2, 2, c.offsetWeight),
      angle: l1(4, 1, c.angleWeight),
      segmentation: scale(diceLoss(heads.segmentation, e.tensor(segTarget, [n, 1, H, W]), e.tensor(segWeight, [n, 1, H, W])), c.segmentationWeight),
    };
  }

  /**
   * [N, 22, H/4, W/4]: heatmap logit, width, height, offset x, offset y, angle (sizes in cells), then the full-resolution
   * segmentation logits carried as 16 channels on the stride-4 grid (space-to-depth: channel 4·dy + dx holds pixel
   * (4y + dy, 4x + dx)). That keeps one grid for everything infer() returns, so tiles are cut, kept and stitched on
   * cell bounds and the full-resolution map comes back exactly; postprocess() puts the pixels back in place.
   */
  infer(images: Tensor): Tensor {
    const e = this.engine;
    return e.noGrad(() =>
      e.tidy(() => {
        const heads = this.forward(images, false);
        const [n, , H, W] = heads.segmentation.shape;
        const [h, w] = [H / STRIDE, W / STRIDE];
        const blocks = transpose(reshape(heads.segmentation, [n, 1, h, STRIDE, w, STRIDE]), [0, 1, 3, 5, 2, 4]);
        return concat([heads.heatmap, heads.regression, reshape(blocks, [n, SEG_CHANNELS, h, w])], 1);
      }),
    );
  }

  /**
   * CenterNet's decoding of stitched outputs [1, 22, h, w] on the GPU (sigmoid, 3x3 max-pool NMS, the top maxObjects
   * peaks above scoreThreshold), the offsets, sizes and angles read at the peaks: rotated boxes in image pixels, by
   * score, in RotatedBox's form whatever order and range the heads predict sides and angle in; and the segmentation
   * probabilities [H, W] (depth-to-space back to full resolution, cropped to `size`).
   */
  async decode(outputs: Tensor, values: Readonly<Record<string, number>> = {}, size?: readonly number[]): Promise<{ boxes: Detection[]; probability: Float32Array; height: number; width: number }> {
    const e = this.engine;
    const c = centerunetConfig({ ...this.config, ...values });
    if (outputs.rank !== 4 || outputs.shape[0] !== 1 || outputs.shape[1] !== DETECTION_CHANNELS + SEG_CHANNELS) {
      throw new Error(`centerunet: postprocess needs outputs [1, ${DETECTION_CHANNELS + SEG_CHANNELS}, h, w], got [${outputs.shape.join(', ')}]`);
    }
    const [, , h, w] = outputs.shape;
    const [height, width] = size ?? [h * STRIDE, w * STRIDE];
    const scope = e.beginScope();
    try {
      const { peaks, regression, probability } = e.noGrad(() => {
        const heatmap = sigmoid(reshape(slice(outputs, [0, 0, 0, 0], [1, 1, h, w]), [h, w]));
        const seg = reshape(slice(outputs, [0, DETECTION_CHANNELS, 0, 0], [1, SEG_CHANNELS, h, w]), [STRIDE, STRIDE, h, w]);
        const full = reshape(transpose(seg, [2, 0, 3, 1]), [h * STRIDE, w * STRIDE]);
        return {
          peaks: findPeaks(heatmap, { radius: 1, threshold: c.scoreThreshold, maxPeaks: c.maxObjects }),
          regression: slice(outputs, [0, 1, 0, 0], [1, 5, h, w]),
          probability: sigmoid(slice(full, [0, 0], [height, width])),
        };
      });
      const [count] = await peaks.counts.data();
      const [indices, scores, reg, prob] = await Promise.all([peaks.indices.data(), peaks.values.data(), regression.data(), probability.data()]);
      const cells = h * w;
      const boxes: Detection[] = [];
      for (let k = 0; k < count; k++) {
        const cell = indices[k];
        const at = (channel: number) => reg[channel * cells + cell];
        const [y, x] = [Math.floor(cell / w), cell % w];
        boxes.push({ ...rotatedBox((x + at(2)) * STRIDE, (y + at(3)) * STRIDE, at(0) * STRIDE, at(1) * STRIDE, at(4)), score: scores[k] });
      }
      return { boxes, probability: prob as Float32Array, height, width };
    } finally {
      scope.end();
    }
  }

  /**
   * Instances from stitched outputs: the decoded centres as markers (the higher score wins a shared pixel) of a
   * watershed of 1 − probability over the pixels above segThreshold. Labels follow the boxes' order (1 = best score).
   */
  async postprocess(outputs: Tensor, _spacing: Spacing, values: Readonly<Record<string, number>> = {}, size?: readonly number[]): Promise<Int32Array> {
    const c = centerunetConfig({ ...this.config, ...values });
    const { boxes, probability, height, width } = await this.decode(outputs, values, size);
    return instancesFromCentres(boxes, probability, height, width, c.segThreshold);
  }

  /** The decoded boxes (decode()) that seed postprocess()'s instances: label k + 1 at box k's centre, where that is foreground. */
  async detections(outputs: Tensor, size: readonly number[]): Promise<Detection[]> {
    return (await this.decode(outputs, {}, size)).boxes;
  }

  /** The thresholds on centres and on the segmentation trade missed objects against false ones and merges. */
  postprocessGrid(): Record<string, number[]> {
    return { scoreThreshold: [0.1, 0.2, 0.3, 0.4, 0.5], segThreshold: [0.4, 0.5, 0.6] };
  }

  dispose(): void {
    this.backbone.dispose();
    for (const { tensor } of this.tensors.values()) tensor.dispose();
    this.tensors.clear();
  }
}

/**
 * Labels [H, W] of a marker watershed of 1 − `probability` over the pixels above `threshold`, seeded by box k's centre
 * pixel with label k + 1 (boxes by descending score: a higher score keeps a shared pixel). Centres outside the
 * foreground seed nothing.
 */
export function instancesFromCentres(boxes: readonly RotatedBox[], probability: Float32Array, height: number, width: number, threshold: number): Int32Array {
  const markers = new Int32Array(height * width);
  for (let k = boxes.length - 1; k >= 0; k--) {
    const x = Math.min(width - 1, Math.max(0, Math.floor(boxes[k].cx)));
    const y = Math.min(height - 1, Math.max(0, Math.floor(boxes[k].cy)));
    markers[y * width + x] = k + 1;
  }
  const mask = Uint8Array.from(probability, (p) => (p > threshold ? 1 : 0));
  const elevation = Float32Array.from(probability, (p) => 1 - p);
  return markerWatershed(elevation, markers, mask, height, width);
}

export const createCenterUNet: ModelFactory = (engine, config) => new CenterUNet(engine, config);

export const centerunetSpec: ModelSpec = {
  kind: 'centerunet',
  factory: createCenterUNet,
  presets: centerunetPresets,
  presetsByNdim: { 2: ['paper', 'small'], 3: [] },
  // Thesis Sec. 5.1: Adam 5e-3 decaying to 5e-5, weight decay 1e-4 (the thesis trains 256x256 crops of DSB2018).
  recipe: { train: { lr: 5e-3, lrMin: 5e-5, weightDecay: 1e-4, schedule: 'cosine' } },
  tunes: ['scoreThreshold', 'segThreshold'],
  // One block per stage at width 4 and bounded offsets (1 cell): a reach of about 340 pixels, inside tileMargin.
  tiny: (preset) => ({ ...preset, width: 4, blocks: [1, 1, 1, 1], neckChannels: [8, 8, 8, 4, 4], headChannels: 4, segHeadChannels: 4, offsetBound: 1 }),
};
