// Tiled prediction when the default tiles are too large for the adapter: a model whose tiles above a voxel budget
// fail as a too-large buffer would (BufferLimitError) is retried on smaller tiles, says so, and still stitches the
// same outputs as one pass; a tile size the caller chose is not second-guessed.
import { describe, expect, it } from 'vitest';
import { BufferLimitError } from '../src/engine/engine.ts';
import { conv, type Engine, type InstanceModel, type NamedTensor, OutOfMemoryError, type Spacing, type Tensor } from '../src/index.ts';
import { predictImage } from '../src/train/predict.ts';
import { rng, uniform } from './support/check.ts';
import { testEngine } from './support/engine.ts';

/** A 5×5 convolution (context 2) whose tiles of more than `budget` pixels fail like an oversized buffer. */
class BudgetModel implements InstanceModel {
  readonly kind = 'budget';
  readonly config = {};
  readonly ndim = 2;
  readonly inChannels = 1;
  readonly sizeMultiple = [4, 4];
  readonly tileMargin = [2, 2];
  readonly weight: Tensor;
  tiles: number[][] = [];
  stitched: Float32Array | null = null;

  constructor(e: Engine, readonly budget: number, readonly failure: 'buffer' | 'memory' = 'buffer') {
    this.weight = e.keep(e.tensor(Float32Array.from(uniform(25, rng(3), -1, 1)), [1, 1, 5, 5]));
  }

  namedTensors(): Map<string, NamedTensor> {
    return new Map([['weight', { tensor: this.weight, trainable: true }]]);
  }

  loss(): Tensor {
    throw new Error('not trained');
  }

  infer(images: Tensor): Tensor {
    const pixels = images.shape[2] * images.shape[3];
    if (pixels > this.budget) {
      if (this.failure === 'memory') throw new OutOfMemoryError(`tensor [${images.shape.join(', ')}]: out of GPU memory`);
      throw new BufferLimitError(`tensor [${images.shape.join(', ')}] too large`, pixels * 4, this.budget * 4);
    }
    this.tiles.push(images.shape.slice(2));
    return conv(images, this.weight, null, { pads: [2, 2, 2, 2] });
  }

  async postprocess(outputs: Tensor, _spacing: Spacing): Promise<Int32Array> {
    this.stitched = (await outputs.data()) as Float32Array;
    return new Int32Array(outputs.size);
  }

  dispose(): void {
    this.weight.dispose();
  }
}

describe('tiles shrunk to the adapter', () => {
  it('the default tiles are shrunk until they fit, and the stitched outputs equal one pass', async () => {
    const e = await testEngine();
    const shape = [1, 300, 260];
    const data = Float32Array.from(uniform(300 * 260, rng(5), 0, 1));
    const model = new BudgetModel(e, 100 * 100);
    const shrunk: number[][] = [];
    await predictImage(e, model, { data, shape, spacing: [1, 1] }, { onTileShrink: (tile) => shrunk.push(tile) });
    expect(shrunk.length).toBeGreaterThan(0);
    expect(model.tiles.every(([h, w]) => h * w <= 100 * 100)).toBe(true);
    const image = e.tensor(data, [1, ...shape]);
    const expected = await conv(image, model.weight, null, { pads: [2, 2, 2, 2] }).data();
    expect(Array.from(model.stitched!)).toEqual(Array.from(expected));
    image.dispose();
    // onTile may return a promise: the next tile waits for it (the app waits for the GPU there to repaint its bar).
    const events: string[] = [];
    const small = new BudgetModel(e, 1e9);
    const infer = small.infer.bind(small);
    small.infer = (images) => (events.push('infer'), infer(images));
    await predictImage(e, small, { data, shape, spacing: [1, 1] }, {
      tileSize: 128,
      onTile: async (done, total) => {
        await new Promise((r) => setTimeout(r, 5));
        events.push(`tile ${done}/${total}`);
      },
    });
    small.dispose();
    expect(events).toEqual(['infer', 'tile 1/9', 'infer', 'tile 2/9', 'infer', 'tile 3/9', 'infer', 'tile 4/9', 'infer', 'tile 5/9', 'infer', 'tile 6/9', 'infer', 'tile 7/9', 'infer', 'tile 8/9', 'infer', 'tile 9/9']);
    // A tile size the caller chose is theirs: the error stands.
    await expect(predictImage(e, model, { data, shape, spacing: [1, 1] }, { tileSize: 200 })).rejects.toThrow(BufferLimitError);
    model.dispose();
    // When even the smallest tile the margins allow (8×8) is too large, the buffer error itself is what the caller
    // gets, not a complaint about a tile size they never chose.
    const hopeless = new BudgetModel(e, 4 * 4);
    await expect(predictImage(e, hopeless, { data, shape, spacing: [1, 1] })).rejects.toThrow(/^tensor \[1, 1, 8, 8\] too large$/);
    hopeless.dispose();
  });

  it('tiles the device runs out of memory for are halved until they fit, with the same stitched outputs', async () => {
    const e = await testEngine();
    const shape = [1, 300, 260];
    const data = Float32Array.from(uniform(300 * 260, rng(6), 0, 1));
    const model = new BudgetModel(e, 150 * 150, 'memory');
    const shrunk: [number[], string][] = [];
    await predictImage(e, model, { data, shape, spacing: [1, 1] }, { onTileShrink: (tile, reason) => shrunk.push([tile, reason]) });
    // The default 512² tile is the whole 300×260 image, and the halving starts from that tile (not from 512², which
    // would retry the same 300×260 tile): 300×260 → 212×180 (half the area, rounded down to the size multiple 4) →
    // 148×124, the first that fits.
    expect(shrunk.map(([tile]) => tile)).toEqual([[212, 180], [148, 124]]);
    expect(model.tiles[0]).toEqual([148, 124]);
    expect(shrunk[0][1]).toMatch(/out of GPU memory$/);
    expect(model.tiles.every(([h, w]) => h * w <= 150 * 150)).toBe(true);
    const image = e.tensor(data, [1, ...shape]);
    const expected = await conv(image, model.weight, null, { pads: [2, 2, 2, 2] }).data();
    expect(Array.from(model.stitched!)).toEqual(Array.from(expected));
    image.dispose();
    await expect(predictImage(e, model, { data, shape, spacing: [1, 1] }, { tileSize: 200 })).rejects.toThrow(OutOfMemoryError);
    model.dispose();
  });
});
