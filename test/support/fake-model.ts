// A tiny InstanceModel for pipeline tests (trainer, checkpoints, CLI): a per-pixel 1x1 convolution with dropout on its
// input, trained towards the foreground mask; a non-trainable "running" tensor stands in for batch-norm statistics.
import {
  add, cast, conv, dropout, heNormal, mean, mul, square, sub, zerosInit,
  type Engine, type InstanceModel, type NamedTensor, type Spacing, type Tensor, type TrainBatch,
} from '../../src/index.ts';

export class TinyModel implements InstanceModel {
  readonly kind = 'tiny';
  readonly ndim = 2;
  readonly sizeMultiple = [1, 1];
  readonly tileMargin = [0, 0];
  readonly inChannels: number;
  readonly weight: Tensor;
  readonly bias: Tensor;
  readonly running: Tensor;

  constructor(readonly engine: Engine, readonly config: { channels: number; seed: number; dropout: number }) {
    this.inChannels = config.channels;
    this.weight = engine.param(heNormal(engine, [1, config.channels, 1, 1], config.seed));
    this.bias = engine.param(zerosInit(engine, [1]));
    this.running = engine.keep(engine.fill([1], 0.5));
  }

  namedTensors(): Map<string, NamedTensor> {
    return new Map([
      ['head.weight', { tensor: this.weight, trainable: true }],
      ['head.bias', { tensor: this.bias, trainable: true }],
      ['head.running', { tensor: this.running, trainable: false }],
    ]);
  }

  loss(batch: TrainBatch, step: number): Tensor {
    const x = dropout(batch.images, this.config.dropout, this.config.seed * 1_000_003 + step, { training: true });
    const target = cast(batch.labels, 'f32');
    return mean(square(sub(conv(x, this.weight, this.bias), mul(target, this.running))));
  }

  infer(images: Tensor): Tensor {
    return add(conv(images, this.weight, this.bias), this.running);
  }

  async postprocess(outputs: Tensor, _spacing: Spacing): Promise<Int32Array> {
    const values = await outputs.data();
    return Int32Array.from(values, (v) => (v > 1 ? 1 : 0));
  }

  dispose(): void {
    for (const { tensor } of this.namedTensors().values()) tensor.dispose();
  }
}

export const tinyFactory = (engine: Engine, config: Record<string, unknown>): InstanceModel =>
  new TinyModel(engine, { channels: 1, seed: 1, dropout: 0.1, ...config } as TinyModel['config']);
