// What the commands share about a run: its config.json, building its model from the registry, and preparing images
// the way the model was trained (spacing override, percentile normalization).
import { readFile } from 'node:fs/promises';
import type { Engine } from '../engine/engine.ts';
import type { InstanceModel, ModelFactory } from '../models/model.ts';
import { decodeModel } from '../train/checkpoint.ts';
import { RunFolder } from '../train/checkpoint-node.ts';
import { normalizePercentile } from '../train/normalize.ts';
import type { AugmentOptions, CropPlacement } from '../train/augment.ts';
import type { TrainOptions } from '../train/trainer.ts';
import type { TuningResult } from '../train/tune.ts';
import type { Sample } from '../train/volume.ts';
import { UsageError } from './args.ts';

/** How a model is trained where the --config file does not say: its paper's optimizer, schedule, crops, augmentation. */
export interface TrainingRecipe {
  train?: Partial<TrainOptions>;
  data?: Partial<Pick<DataOptions, 'augment' | 'crops'>>;
}

/** The models the CLI knows: a factory per `--model` name, named configs per model, and training recipes. */
export interface ModelRegistry {
  factories: Readonly<Record<string, ModelFactory>>;
  presets: Readonly<Record<string, Readonly<Record<string, Readonly<Record<string, unknown>>>>>>;
  recipes?: Readonly<Record<string, TrainingRecipe>>;
}

export interface DataOptions {
  /** The dataset folder the run trains on. */
  dir: string;
  /** Training crop per spatial axis. */
  patchSize: number[];
  /** Changes to the model dimension's default augmentation. */
  augment: Partial<AugmentOptions>;
  /** Where training crops are placed (absent in runs saved before it existed: random). */
  crops?: CropPlacement;
  /** --spacing: replaces the voxel spacing of every image (training and prediction); null keeps the files'. */
  spacing: number[] | null;
  /** The spacing of the first training image, as trained (for a warning when prediction images differ). */
  trainSpacing: number[];
  /** Share of train held out for validation when DIR/val does not exist. */
  valFraction: number;
}

/**
 * The postprocessing parameters chosen on the validation images after training (InstanceModel.postprocessGrid):
 * `defaults` are the config's values before tuning (what validation during training used), `step` the step of the
 * weights they were scored with.
 */
export type Tuning = Omit<TuningResult, 'scores'> & { step: number };

/** config.json of a run folder. */
export interface RunConfig {
  format: 'wgseg-run/1';
  /** `config` holds the tuned postprocessing values when `tuning` is present. */
  model: { kind: string; preset: string | null; config: Record<string, unknown>; tuning?: Tuning };
  train: TrainOptions;
  data: DataOptions;
  /** Per image and channel: (x − p_low) / (p_high − p_low) with these percentiles. */
  normalization: { method: 'percentile'; pLow: number; pHigh: number };
  /** A run started from another run's weights (`train --init`): that run's folder and the step of its weights. */
  init?: { from: string; weights: string; step: number };
}

/** A model built from the registry; an unknown name or a config the model rejects is a UsageError. */
export function buildModel(e: Engine, registry: ModelRegistry, kind: string, config: Record<string, unknown>): InstanceModel {
  const factory = registry.factories[kind];
  if (!factory) throw new UsageError(`--model: unknown model "${kind}" (known: ${Object.keys(registry.factories).join(', ')})`);
  try {
    return factory(e, config);
  } catch (err) {
    throw new UsageError(`${kind} config: ${(err as Error).message}`);
  }
}

/** Applies the run's spacing override and normalization to samples as loaded from files. */
export function prepareSamples(samples: Sample[], run: Pick<RunConfig, 'data' | 'normalization'>): Sample[] {
  const { spacing } = run.data;
  const { pLow, pHigh } = run.normalization;
  return samples.map(({ name, image, labels }) => {
    if (spacing && spacing.length !== image.shape.length - 1) {
      throw new UsageError(`--spacing has ${spacing.length} values, ${name} is ${image.shape.length - 1}D`);
    }
    const normalized = normalizePercentile(spacing ? { ...image, spacing } : image, pLow, pHigh);
    return { name, image: normalized, labels: labels && (spacing ? { ...labels, spacing } : labels) };
  });
}

/** A trained run's config and the checkpoint to predict with: best, or last when no validation ever ran. */
export async function readRun(dir: string, flag = '--model'): Promise<{ run: RunConfig; weights: string }> {
  const folder = new RunFolder(dir);
  if (!folder.has('config.json')) throw new UsageError(`${flag}: ${dir} is not a run folder (no config.json)`);
  const run = await folder.readJSON<RunConfig>('config.json').catch((err: Error) => {
    throw new UsageError(err.message);
  });
  if (run.format !== 'wgseg-run/1') throw new UsageError(`${folder.path('config.json')}: not a wgseg run config (format ${run.format})`);
  const weights = ['best.safetensors', 'last.safetensors'].find((f) => folder.has(f));
  if (!weights) throw new UsageError(`${flag}: ${dir} has no checkpoint yet (best.safetensors or last.safetensors)`);
  return { run, weights: folder.path(weights) };
}

/** The run's model with the weights of `weights` loaded. */
export async function loadModel(e: Engine, registry: ModelRegistry, run: RunConfig, weights: string): Promise<InstanceModel> {
  const model = buildModel(e, registry, run.model.kind, run.model.config);
  try {
    decodeModel(model, await readFile(weights), weights);
  } catch (err) {
    model.dispose();
    throw new UsageError((err as Error).message);
  }
  return model;
}
