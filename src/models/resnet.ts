// ResNet encoders (He et al. 2016) as torchvision builds them, for CenterUNet's backbone: a 7x7 stride-2 conv, batch
// norm and ReLU, a 3x3 stride-2 max-pool, then four stages of basic blocks (ResNet18/34) or bottlenecks (ResNet50,
// the stride on the 3x3 conv as in torchvision's v1.5), each stage after the first halving the resolution. Forward
// returns the five levels (strides 2, 4, 8, 16, 32) a U-Net decoder needs. No classifier. Tensor names follow
// torchvision ("layer2.0.downsample.1.running_var"), so converted ImageNet weights load with `--init`.
import type { Engine } from '../engine/engine.ts';
import type { Tensor } from '../engine/tensor.ts';
import { batchNorm } from '../kernels/batchnorm.ts';
import { conv } from '../kernels/conv.ts';
import { add, relu } from '../kernels/elementwise.ts';
import { heNormal, zerosInit } from '../kernels/init.ts';
import { maxPool } from '../kernels/pool.ts';
import type { NamedTensor } from './model.ts';

export interface ResNetConfig {
  /** 18 and 34: basic blocks; 50: bottlenecks. */
  depth: 18 | 34 | 50;
  inChannels: number;
  /** Channels of the stem and the first stage's blocks (torchvision: 64); each stage doubles it. */
  width: number;
  /** Blocks per stage; null: the depth's ([2, 2, 2, 2], [3, 4, 6, 3], [3, 4, 6, 3]). */
  blocks: number[] | null;
  bnEps: number;
  /** Weight of the batch statistics in the batch-norm running averages. */
  bnMomentum: number;
}

export const RESNET_BLOCKS: Readonly<Record<ResNetConfig['depth'], readonly number[]>> = { 18: [2, 2, 2, 2], 34: [3, 4, 6, 3], 50: [3, 4, 6, 3] };

/** A conv weight [Cout, Cin, k, k] as torchvision initializes ResNets: He normal over fan-out, for the ReLU after it. */
export const resnetConvWeight = (e: Engine, shape: number[], seed: number): Tensor => heNormal(e, shape, seed, { mode: 'fanOut' });

/** A batch norm's four tensors by suffix: weight 1 and bias 0 (trainable), running mean 0 and variance 1 (not). */
export function batchNormTensors(e: Engine, channels: number): [string, NamedTensor][] {
  return [
    ['weight', { tensor: e.param(e.fill([channels], 1)), trainable: true }],
    ['bias', { tensor: zerosInit(e, [channels]), trainable: true }],
    ['running_mean', { tensor: e.keep(e.zeros([channels])), trainable: false }],
    ['running_var', { tensor: e.keep(e.fill([channels], 1)), trainable: false }],
  ];
}

/** A batch norm applied with the tensors named `${name}.weight` etc. in `tensors`. */
export function applyBatchNorm(tensors: ReadonlyMap<string, NamedTensor>, name: string, x: Tensor, training: boolean, eps: number, momentum: number): Tensor {
  const p = (suffix: string) => tensors.get(`${name}.${suffix}`)!.tensor;
  return batchNorm(x, p('weight'), p('bias'), { runningMean: p('running_mean'), runningVar: p('running_var') }, { training, eps, momentum });
}

interface Block {
  name: string;
  /** The block's stride (2 in the first block of stages 2 to 4), also its shortcut's. */
  stride: number;
  /** The convs in order: [name, kernel, stride] (the first 3x3 carries the block's stride). */
  convs: [string, number, number][];
  downsample: boolean;
}

export class ResNet {
  readonly config: Readonly<ResNetConfig>;
  /** Channels of the five levels, strides 2 to 32. */
  readonly channels: readonly number[];
  private readonly tensors = new Map<string, NamedTensor>();
  private readonly stages: Block[][];

  /** `seed` seeds the weights: seed, seed + 1, ... one per conv. */
  constructor(
    readonly engine: Engine,
    config: ResNetConfig,
    seed: number,
  ) {
    const c = config;
    this.config = c;
    const blocks = c.blocks ?? RESNET_BLOCKS[c.depth];
    if (blocks.length !== 4 || !blocks.every((b) => Number.isInteger(b) && b > 0)) {
      throw new Error(`resnet: blocks must be 4 positive integers (one per stage), got ${JSON.stringify(blocks)}`);
    }
    const bottleneck = c.depth === 50;
    const expansion = bottleneck ? 4 : 1;
    let nextSeed = seed;
    const convWeight = (name: string, cout: number, cin: number, k: number) =>
      this.tensors.set(`${name}.weight`, { tensor: resnetConvWeight(engine, [cout, cin, k, k], nextSeed++), trainable: true });
    const bn = (name: string, channels: number) => {
      for (const [suffix, t] of batchNormTensors(engine, channels)) this.tensors.set(`${name}.${suffix}`, t);
    };
    convWeight('conv1', c.width, c.inChannels, 7);
    bn('bn1', c.width);
    let cin = c.width;
    const channels = [c.width];
    this.stages = blocks.map((count, s) => {
      const planes = c.width * 2 ** s;
      const stage = Array.from({ length: count }, (_, b): Block => {
        const name = `layer${s + 1}.${b}`;
        const stride = s > 0 && b === 0 ? 2 : 1;
        const cout = planes * expansion;
        const kernels = bottleneck ? [1, 3, 1] : [3, 3];
        const convs = kernels.map((k, i): [string, number, number] => [`conv${i + 1}`, k, i === kernels.indexOf(3) ? stride : 1]);
        convs.forEach(([conv, k], i) => {
          convWeight(`${name}.${conv}`, i === convs.length - 1 ? cout : planes, i === 0 ? cin : planes, k);
          bn(`${name}.bn${i + 1}`, i === convs.length - 1 ? cout : planes);
        });
        const downsample = stride !== 1 || cin !== cout;
        if (downsample) {
          convWeight(`${name}.downsample.0`, cout, cin, 1);
          bn(`${name}.downsample.1`, cout);
        }
        cin = cout;
        return { name, stride, convs, downsample };
      });
      channels.push(cin);
      return stage;
    });
    this.channels = channels;
  }

  namedTensors(): Map<string, NamedTensor> {
    return new Map(this.tensors);
  }

  /**
   * The five levels [N, channels[l], H/2^(l+1), W/2^(l+1)] of images [N, inChannels, H, W] (sizes multiples of 32):
   * the stem's ReLU output, then each stage's. Training mode uses (and updates) batch statistics. Without gradients
   * each block's temporaries are freed as soon as it is done.
   */
  forward(x: Tensor, training: boolean): Tensor[] {
    const e = this.engine;
    const c = this.config;
    if (x.rank !== 4 || x.shape[1] !== c.inChannels || x.shape.slice(2).some((d) => d % 32 !== 0)) {
      throw new Error(`resnet: input must be [N, ${c.inChannels}, H, W] with H and W multiples of 32, got [${x.shape.join(', ')}]`);
    }
    const w = (name: string) => this.tensors.get(`${name}.weight`)!.tensor;
    const bn = (name: string, h: Tensor) => applyBatchNorm(this.tensors, name, h, training, c.bnEps, c.bnMomentum);
    const step = (fn: () => Tensor) => (e.gradEnabled ? fn() : e.tidy(fn));
    const stem = step(() => relu(bn('bn1', conv(x, w('conv1'), null, { strides: [2, 2], pads: [3, 3, 3, 3] }))));
    const levels = [stem];
    let h = step(() => maxPool(stem, { kernel: 3, strides: 2, pads: [1, 1, 1, 1] }));
    for (const stage of this.stages) {
      for (const block of stage) {
        const input = h;
        h = step(() => {
          let y = input;
          block.convs.forEach(([name, k, stride], i) => {
            const strides = [stride, stride];
            y = bn(`${block.name}.bn${i + 1}`, conv(y, w(`${block.name}.${name}`), null, { strides, pads: new Array<number>(4).fill((k - 1) / 2) }));
            if (i < block.convs.length - 1) y = relu(y);
          });
          const shortcut = block.downsample
            ? bn(`${block.name}.downsample.1`, conv(input, w(`${block.name}.downsample.0`), null, { strides: [block.stride, block.stride] }))
            : input;
          return relu(add(y, shortcut));
        });
        // Without gradients a block's input is freed unless it is a level the caller gets.
        if (!e.gradEnabled && !levels.includes(input)) input.dispose();
      }
      levels.push(h);
    }
    return levels;
  }

  /**
   * How far (in input pixels, each way) an output of the last level reaches into the image, and its jump (32):
   * Σ (k − 1)/2 · jump over the convs and pools on the main path.
   */
  reach(): { radius: number; jump: number } {
    let radius = 3;
    let jump = 2;
    radius += jump;
    jump *= 2;
    for (const stage of this.stages) {
      for (const block of stage) {
        for (const [, k, stride] of block.convs) {
          radius += ((k - 1) / 2) * jump;
          jump *= stride;
        }
      }
    }
    return { radius, jump };
  }

  dispose(): void {
    for (const { tensor } of this.tensors.values()) tensor.dispose();
    this.tensors.clear();
  }
}
