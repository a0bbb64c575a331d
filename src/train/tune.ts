// Postprocessing parameters tuned on the validation images after training, as the RDCNet paper does for its voting
// window: each image's stitched raw outputs are computed once, postprocessed with every combination of the model's
// candidate values (InstanceModel.postprocessGrid) and scored with the validation metric. Pure TypeScript.
import type { Engine } from '../engine/engine.ts';
import type { InstanceModel } from '../models/model.ts';
import { aggregateMetrics, evaluateImage, type ImageMetrics } from './metrics.ts';
import { cartesian, postprocessOutputs, predictOutputs, type PredictOptions } from './predict.ts';
import { headlineMetrics } from './validate.ts';
import { labelsOf } from './layers.ts';
import type { Sample } from './volume.ts';

export interface TuningScore {
  values: Record<string, number>;
  score: number;
}

export interface TuningResult {
  /** The headline metric scored (a key of headlineMetrics; the run's bestMetric). */
  metric: string;
  /** The config's values before tuning. */
  defaults: Record<string, number>;
  /** The best combination: the highest score; among equal scores the defaults, then the smallest relative change. */
  values: Record<string, number>;
  score: number;
  defaultScore: number;
  /** Every combination tried, the defaults included, in grid order (values ascending, first parameter slowest). */
  scores: TuningScore[];
}

/** Sum over parameters of |value − default| / |default|: how far a combination moves from the config. */
function change(values: Record<string, number>, defaults: Record<string, number>): number {
  return Object.entries(values).reduce((sum, [k, v]) => sum + Math.abs(v - defaults[k]) / (Math.abs(defaults[k]) || 1), 0);
}

/**
 * Scores every combination of `model.postprocessGrid()` (with the config's current values added to each list) on the
 * labelled samples and picks the best; null when the model has nothing to tune. GPU memory holds one image's raw
 * outputs at a time.
 */
export async function tunePostprocess(
  e: Engine, model: InstanceModel, samples: readonly Sample[], metric: string, options: PredictOptions = {},
): Promise<TuningResult | null> {
  const grid = model.postprocessGrid?.() ?? {};
  const names = Object.keys(grid);
  if (names.length === 0) return null;
  if (samples.length === 0) throw new Error('tuning: no validation samples');
  const defaults: Record<string, number> = {};
  for (const name of names) {
    const value = model.config[name];
    if (typeof value !== 'number') throw new Error(`tuning: ${model.kind}.postprocessGrid names "${name}", which is not a number in its config`);
    defaults[name] = value;
  }
  const axes = names.map((name) => [...new Set([...grid[name], defaults[name]])].sort((a, b) => a - b));
  const combinations = cartesian(axes).map((row) => Object.fromEntries(names.map((name, k) => [name, row[k]])));

  const perCombination: ImageMetrics[][] = combinations.map(() => []);
  for (const { name, image, labels } of samples) {
    if (!labels) throw new Error(`tuning: sample "${name}" has no labels`);
    const outputs = await predictOutputs(e, model, image, options);
    try {
      for (const [i, values] of combinations.entries()) {
        perCombination[i].push(evaluateImage(labelsOf(labels), await postprocessOutputs(e, model, outputs, image, values)));
      }
    } finally {
      outputs.dispose();
    }
  }
  const scores = combinations.map((values, i) => {
    const headline = headlineMetrics(aggregateMetrics(perCombination[i]));
    if (!(metric in headline)) throw new Error(`tuning: no metric "${metric}" (bestMetric); there are ${Object.keys(headline).join(', ')}`);
    return { values, score: headline[metric] };
  });
  const ranked = [...scores].sort((a, b) => b.score - a.score || change(a.values, defaults) - change(b.values, defaults));
  const defaultScore = scores.find((s) => change(s.values, defaults) === 0)!.score;
  return { metric, defaults, values: ranked[0].values, score: ranked[0].score, defaultScore, scores };
}
