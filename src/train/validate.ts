// Validation during training and the CLI's `eval`: the headline scores of an evaluation, and the model scored on
// held-out images through the same tiled prediction that `wgseg predict` uses. Pure TypeScript.
import type { Engine } from '../engine/engine.ts';
import type { InstanceModel } from '../models/model.ts';
import { evaluateImage, aggregateMetrics, type EvaluationResult } from './metrics.ts';
import { predictImage, type PredictOptions } from './predict.ts';
import { labelsOf } from './layers.ts';
import type { Sample } from './volume.ts';

/**
 * Scores averaged over images, as papers report them: precision, recall and F1 at IoU 0.5 (`f1` is F1@0.5), AP_dsb at
 * 0.5 and its mean over 0.5…0.9 (`apDsb`), SBD and AJI. These are the names `bestMetric` picks from.
 */
export function headlineMetrics(result: EvaluationResult): Record<string, number> {
  const at = result.thresholds.indexOf(0.5);
  if (at < 0) throw new Error(`metrics: the evaluation has no IoU threshold 0.5 (has ${result.thresholds.join(', ')})`);
  const p = result.perImage;
  return {
    precision: p.precision[at], recall: p.recall[at], f1: p.f1[at], apDsb50: p.apDsb[at], apDsb: p.meanApDsb, sbd: p.sbd, aji: p.aji,
  };
}

/** The model's headline metrics on labelled samples (images normalized as for training). */
export async function validationMetrics(
  e: Engine, model: InstanceModel, samples: readonly Sample[], options: PredictOptions = {},
): Promise<Record<string, number>> {
  const scores = [];
  for (const { name, image, labels } of samples) {
    if (!labels) throw new Error(`validation: sample "${name}" has no labels`);
    scores.push(evaluateImage(labelsOf(labels), await predictImage(e, model, image, options)));
  }
  if (scores.length === 0) throw new Error('validation: no samples');
  return headlineMetrics(aggregateMetrics(scores));
}
