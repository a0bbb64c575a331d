// Training crops and batch size for a run whose config gives no crop size, chosen from a measured step (pure
// TypeScript, every runtime). A fixed default does not fit every machine: 4 crops of 16×128×128 take minutes per step
// on a software GPU, a fraction of a second on a real one. One step of the smallest crop the model takes is timed
// (the faster of two, after a first one that compiles the pipelines), the largest crop and batch predicted to stay within the step budget
// are chosen (step time taken as proportional to voxels × batch), and that choice is timed once more and stepped down
// while it is over. The model's weights and running statistics are restored afterwards, so training starts as if
// nothing had run.
import type { Engine } from '../engine/engine.ts';
import type { Tensor } from '../engine/tensor.ts';
import type { InstanceModel } from '../models/model.ts';
import { sampleBatch } from './augment.ts';
import { modelTensors, readTensors, writeTensors } from './checkpoint.ts';
import { sumTerms } from './trainer.ts';
import type { Sample } from './volume.ts';

/** Crop sizes to choose from, smallest first: 2D squares up to the former default 128², 3D up to 16×128×128. */
export function cropLadder(ndim: number, multiple: readonly number[]): number[][] {
  const raw = ndim === 2 ? [32, 48, 64, 96, 128].map((s) => [s, s]) : [[8, 32, 32], [8, 48, 48], [8, 64, 64], [8, 96, 96], [16, 96, 96], [16, 128, 128]];
  const rounded = raw.map((c) => c.map((s, k) => Math.max(1, Math.round(s / multiple[k])) * multiple[k]));
  return rounded.filter((c, i) => i === 0 || c.join() !== rounded[i - 1].join());
}

const voxels = (crop: readonly number[]) => crop.reduce((a, b) => a * b, 1);

/**
 * The largest (crop, batch) of the ladder and batches 1..maxBatch whose predicted time, `seconds` × its voxels·batch
 * over `base`'s, is within `budget` seconds; larger crops first (context matters more than batch), then larger
 * batches. Always at least `base` with batch 1.
 */
export function pickCropAndBatch(
  ladder: readonly number[][], base: { crop: readonly number[]; seconds: number }, maxBatch: number, budget: number,
): { crop: number[]; batch: number; predicted: number } {
  const perVoxel = base.seconds / voxels(base.crop);
  let best = { crop: [...base.crop], batch: 1, predicted: base.seconds };
  for (const crop of ladder) {
    if (voxels(crop) < voxels(base.crop)) continue;
    for (let batch = 1; batch <= maxBatch; batch++) {
      const predicted = perVoxel * voxels(crop) * batch;
      if (predicted > budget) break;
      const better = voxels(crop) > voxels(best.crop) || (voxels(crop) === voxels(best.crop) && batch > best.batch);
      if (better) best = { crop: [...crop], batch, predicted };
    }
  }
  return best;
}

export interface AutoSizeOptions {
  /** Seconds one training step may take (default 1.5: about 40 minutes for 1600 steps). */
  budget?: number;
  /** The largest batch to consider (the run's batch size). */
  maxBatch: number;
  augment: Parameters<typeof sampleBatch>[2]['augment'];
  crops: Parameters<typeof sampleBatch>[2]['crops'];
  seed: number;
  /** Milliseconds now (default performance.now). */
  now?: () => number;
}

export interface AutoSize {
  crop: number[];
  batch: number;
  /** What was timed: crop, batch and seconds per step, in order. */
  measured: { crop: number[]; batch: number; seconds: number }[];
}

/** Crops and batch for training `model` on `train` within the step budget (see the file comment). */
export async function chooseCropAndBatch(e: Engine, model: InstanceModel, train: readonly Sample[], options: AutoSizeOptions): Promise<AutoSize> {
  const budget = options.budget ?? 1.5;
  const now = options.now ?? (() => performance.now());
  const ladder = cropLadder(model.ndim, model.sizeMultiple);
  const saved = await readTensors(modelTensors(model));
  const measured: AutoSize['measured'] = [];
  let step = 0;
  const time = async (crop: number[], batch: number, warm: boolean): Promise<number> => {
    const once = async () => {
      const t0 = now();
      const scope = e.beginScope();
      try {
        const b = sampleBatch(e, train, { batchSize: batch, patchSize: crop, seed: options.seed + step++, augment: options.augment, crops: options.crops, layers: model.overlapping ?? false });
        const { total } = sumTerms(await model.loss(b, 0), model.kind);
        total.backward();
        await total.item();
      } finally {
        scope.end();
        for (const { tensor } of model.namedTensors().values()) clearGrad(tensor);
      }
      return (now() - t0) / 1000;
    };
    // The first step compiles the pipelines; of two more, the faster (other work on the machine only slows one down).
    if (warm) await once();
    const seconds = Math.min(await once(), warm ? await once() : Infinity);
    measured.push({ crop, batch, seconds });
    return seconds;
  };
  try {
    // The smallest crop the model trains on (a valid-convolution U-Net needs a minimum input).
    let base: { crop: number[]; seconds: number } | null = null;
    let lastError: unknown = null;
    for (const crop of ladder) {
      try {
        base = { crop, seconds: await time(crop, 1, true) };
        break;
      } catch (err) {
        lastError = err;
      }
    }
    if (!base) throw lastError;
    let pick = pickCropAndBatch(ladder, base, options.maxBatch, budget);
    if (pick.crop.join() === base.crop.join() && pick.batch === 1) return { crop: pick.crop, batch: 1, measured };
    // Check the prediction; step down (batch first, then crop) while the measured step is over the budget.
    for (;;) {
      const seconds = await time(pick.crop, pick.batch, false);
      if (seconds <= budget * 1.25) return { crop: pick.crop, batch: pick.batch, measured };
      const scaled = { crop: pick.crop, seconds: seconds / pick.batch };
      const next = pickCropAndBatch(ladder, { crop: base.crop, seconds: (scaled.seconds * voxels(base.crop)) / voxels(pick.crop) }, pick.batch, budget);
      if (next.crop.join() === pick.crop.join() && next.batch === pick.batch) {
        // Same pick again: the crop below, or the base.
        const below = ladder.filter((c) => voxels(c) < voxels(pick.crop) && voxels(c) >= voxels(base!.crop)).at(-1);
        if (!below) return { crop: base.crop, batch: 1, measured };
        pick = { crop: below, batch: 1, predicted: 0 };
      } else {
        pick = next;
      }
    }
  } finally {
    writeTensors(modelTensors(model), saved, 'the weights before the crop-size measurement');
  }
}

function clearGrad(t: Tensor): void {
  t.grad?.dispose();
  t.grad = null;
}
