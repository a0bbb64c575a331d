// Tiled prediction: tile plans, and stitched raw outputs equal to one pass over the whole (padded) image, in 2D and 3D.
import { describe, expect, it } from 'vitest';
import { avgPool, conv, upsample, type Engine, type InstanceModel, type NamedTensor, type Spacing, type Tensor } from '../src/index.ts';
import { planTiles, predictImage } from '../src/train/predict.ts';
import { rng, uniform } from './support/check.ts';
import { testEngine } from './support/engine.ts';

/**
 * A fixed local operation as a model: a 5x5(x5) convolution with zero padding (context 2), optionally after a stride-2
 * average pool and before a ×2 nearest upsample (then only shifts by 2 commute with it: sizeMultiple 2), or after the
 * pool without the upsample (output stride 2). With `reduce`, reduceTile sums the 3 output channels after a 3x3(x3)
 * box filter (context 1 more). postprocess keeps the stitched outputs for the test.
 */
class LocalModel implements InstanceModel {
  readonly kind = 'local';
  readonly config = {};
  readonly inChannels = 2;
  readonly weight: Tensor;
  readonly outputStride?: readonly number[];
  readonly reduceTile?: (outputs: Tensor) => Tensor;
  stitched: Float32Array | null = null;
  stitchedShape: number[] = [];
  tileShapes: number[][] = [];

  constructor(
    e: Engine,
    readonly ndim: 2 | 3,
    readonly sizeMultiple: readonly number[],
    readonly tileMargin: readonly number[],
    readonly pooled = false,
    readonly strided = false,
    reduce = false,
  ) {
    if (strided) this.outputStride = sizeMultiple.map(() => 2);
    if (reduce) {
      const box = e.keep(e.tensor(new Float32Array(3 * 3 ** ndim).fill(1), [1, 3, ...new Array(ndim).fill(3)]));
      this.reduceTile = (outputs) => conv(outputs, box, null, { pads: new Array(2 * ndim).fill(1) });
      this.disposeBox = () => box.dispose();
    }
    const k = ndim === 2 ? [5, 5] : [5, 5, 5];
    const n = 3 * 2 * k.reduce((a, b) => a * b, 1);
    this.weight = e.keep(e.tensor(Float32Array.from(uniform(n, rng(ndim), -1, 1)), [3, 2, ...k]));
  }

  namedTensors(): Map<string, NamedTensor> {
    return new Map([['weight', { tensor: this.weight, trainable: true }]]);
  }

  loss(): Tensor {
    throw new Error('not trained');
  }

  infer(images: Tensor): Tensor {
    this.tileShapes.push([...images.shape]);
    const pads = new Array(2 * this.ndim).fill(2);
    if (this.strided) return conv(avgPool(images, { kernel: 2 }), this.weight, null, { pads });
    if (!this.pooled) return conv(images, this.weight, null, { pads });
    return upsample(conv(avgPool(images, { kernel: 2 }), this.weight, null, { pads }), { scale: 2 });
  }

  async postprocess(outputs: Tensor, _spacing: Spacing): Promise<Int32Array> {
    this.stitched = (await outputs.data()) as Float32Array;
    this.stitchedShape = [...outputs.shape];
    return new Int32Array(outputs.size / outputs.shape[1]);
  }

  private disposeBox = () => {};

  dispose(): void {
    this.weight.dispose();
    this.disposeBox();
  }
}

describe('planTiles', () => {
  it('covers the axis once with margins of context on every inner cut, tiles on the size multiple', () => {
    for (const [size, tile, margin, multiple] of [[37, 16, 2, 4], [100, 24, 3, 8], [9, 8, 2, 4], [64, 16, 4, 1], [33, 12, 4, 4]]) {
      const padded = Math.ceil(size / multiple) * multiple;
      const spans = planTiles(size, tile, margin, multiple);
      expect(spans[0].keepStart).toBe(0);
      expect(spans[spans.length - 1].keepEnd).toBe(size);
      spans.forEach((t, j) => {
        expect(t.start % multiple).toBe(0);
        expect(t.start + tile).toBeLessThanOrEqual(padded);
        if (j > 0) expect(t.keepStart).toBe(spans[j - 1].keepEnd);
        if (j > 0) expect(t.keepStart - t.start).toBeGreaterThanOrEqual(margin);
        if (j < spans.length - 1) expect(t.start + tile - t.keepEnd).toBeGreaterThanOrEqual(margin);
      });
    }
    expect(planTiles(13, 32, 2, 4)).toEqual([{ start: 0, keepStart: 0, keepEnd: 13 }]);
    expect(() => planTiles(40, 8, 3, 4)).toThrow('planTiles: tile 8 leaves no room between margins of 3 (size multiple 4)');
  });
});

/** The raw outputs for the image in one pass: predictImage with one tile covering the padded image. */
async function untiled(e: Engine, model: LocalModel, data: Float32Array, shape: number[]): Promise<Float32Array> {
  await predictImage(e, model, { data, shape, spacing: shape.slice(1).map(() => 1) }, { tileSize: shape.slice(1).map((s) => s + 16) });
  expect(model.tileShapes.length).toBe(1);
  model.tileShapes = [];
  return model.stitched!;
}

describe('predictImage', () => {
  const cases: [string, 2 | 3, number[], number[], number[], number[], boolean, boolean, boolean][] = [
    // name, ndim, image shape, tile, sizeMultiple, margin, pooled, output stride 2, reduceTile
    ['2D', 2, [2, 37, 29], [16, 12], [4, 4], [2, 2], false, false, false],
    ['2D, stride-2 model', 2, [2, 26, 31], [16, 16], [2, 2], [6, 6], true, false, false],
    ['3D', 3, [2, 11, 19, 14], [8, 12, 8], [2, 4, 4], [2, 2, 2], false, false, false],
    ['2D, output stride 2', 2, [2, 37, 29], [24, 20], [4, 4], [6, 6], false, true, false],
    ['2D, output stride 2 and a per-tile reduction', 2, [2, 45, 35], [28, 24], [4, 4], [8, 8], false, true, true],
    ['3D, per-tile reduction', 3, [2, 11, 19, 14], [8, 12, 12], [2, 4, 4], [3, 3, 3], false, false, true],
  ];
  for (const [name, ndim, shape, tile, multiple, margin, pooled, strided, reduce] of cases) {
    it(`${name}: stitched tiles equal the untiled outputs exactly (size not divisible by the tile)`, async () => {
      const e = await testEngine();
      const model = new LocalModel(e, ndim, multiple, margin, pooled, strided, reduce);
      const data = Float32Array.from(uniform(shape.reduce((a, b) => a * b, 1), rng(17), 0, 1));
      const whole = await untiled(e, model, data, shape);
      const outSize = shape.slice(1).map((s) => Math.ceil(s / (strided ? 2 : 1)));
      expect(model.stitchedShape).toEqual([1, reduce ? 1 : 3, ...outSize]);
      const before = e.stats().liveTensors;
      const labels = await predictImage(e, model, { data, shape, spacing: shape.slice(1).map(() => 1) }, { tileSize: tile, batch: 3 });
      expect(e.stats().liveTensors).toBe(before);
      expect((labels as Int32Array).length).toBe(outSize.reduce((a, b) => a * b, 1));
      expect(model.tileShapes.length).toBeGreaterThan(3);
      expect(model.tileShapes.every((s) => s.slice(2).join() === tile.join())).toBe(true);
      expect(model.stitched!.every(Number.isFinite)).toBe(true);
      expect(Array.from(model.stitched!)).toEqual(Array.from(whole));
      model.dispose();
    });
  }

  it('peak memory beyond the image and its stitched outputs does not grow with the image', async () => {
    const e = await testEngine();
    const model = new LocalModel(e, 2, [4, 4], [2, 2]);
    const extra: number[] = [];
    for (const side of [24, 72]) {
      const shape = [2, side, side];
      const data = new Float32Array(2 * side * side).fill(0.25);
      e.resetPeak();
      const before = e.stats().liveBytes;
      await predictImage(e, model, { data, shape, spacing: [1, 1] }, { tileSize: 16, batch: 2 });
      // The uploaded image (2 channels) and the stitched outputs (3 channels) are the only image-sized tensors.
      extra.push(e.stats().peakLiveBytes - before - (2 + 3) * 4 * side * side);
    }
    expect(extra[1]).toBe(extra[0]);
    model.dispose();
  });

  it('the untiled pass is the model on the image reflected out to the size multiple', async () => {
    const e = await testEngine();
    const model = new LocalModel(e, 2, [4, 4], [2, 2]);
    const [H, W] = [6, 7];
    const data = Float32Array.from(uniform(2 * H * W, rng(3), 0, 1));
    const out = await untiled(e, model, data, [2, H, W]);
    // Reference: reflect to 8x8, 5x5 conv with zero padding, crop to 6x7.
    const w = await model.weight.data();
    const reflect = (i: number, n: number) => (i < n ? i : 2 * (n - 1) - i);
    const padded = (c: number, y: number, x: number) => (y < 0 || x < 0 || y >= 8 || x >= 8 ? 0 : data[(c * H + reflect(y, H)) * W + reflect(x, W)]);
    let maxErr = 0;
    for (let k = 0; k < 3; k++) for (let y = 0; y < H; y++) for (let x = 0; x < W; x++) {
      let acc = 0;
      for (let c = 0; c < 2; c++) for (let dy = 0; dy < 5; dy++) for (let dx = 0; dx < 5; dx++) {
        acc += w[((k * 2 + c) * 5 + dy) * 5 + dx] * padded(c, y + dy - 2, x + dx - 2);
      }
      maxErr = Math.max(maxErr, Math.abs(out[(k * H + y) * W + x] - acc));
    }
    expect(maxErr).toBeLessThan(1e-5);
    model.dispose();
  });

  it('images smaller than one tile, default tiles grown to fit the margins, and errors by name', async () => {
    const e = await testEngine();
    const model = new LocalModel(e, 2, [4, 4], [2, 2]);
    const tiny = { data: new Float32Array(2 * 3 * 2).fill(0.5), shape: [2, 3, 2], spacing: [1, 1] };
    expect(((await predictImage(e, model, tiny)) as Int32Array).length).toBe(6);
    expect(model.tileShapes.pop()).toEqual([1, 2, 4, 4]);
    expect(model.stitchedShape).toEqual([1, 3, 3, 2]);
    // Margins of 300 leave no room in the default 512 tile: it grows to 2·300 plus one size multiple.
    const wide = new LocalModel(e, 2, [4, 4], [300, 300]);
    const tall = { data: new Float32Array(2 * 620 * 4), shape: [2, 620, 4], spacing: [1, 1] };
    await predictImage(e, wide, tall);
    expect(wide.tileShapes.every((s) => s.join() === '1,2,604,4')).toBe(true);
    const odd = new LocalModel(e, 2, [4, 4], [259, 0]);
    await predictImage(e, odd, { data: new Float32Array(2 * 530 * 4), shape: [2, 530, 4], spacing: [1, 1] });
    expect(odd.tileShapes[0]).toEqual([1, 2, 524, 4]);
    odd.dispose();
    await expect(predictImage(e, wide, tall, { tileSize: 64 })).rejects.toThrow(
      'predictImage: tileSize 64 on axis 0 is too small for margins of 300 (size multiple 4); use at least 604',
    );
    await expect(predictImage(e, model, { data: new Float32Array(16), shape: [1, 4, 4], spacing: [1, 1] })).rejects.toThrow(
      'predictImage: image has 1 channels, the local model expects 2',
    );
    model.dispose();
    wide.dispose();
  });
});
