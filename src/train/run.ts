// A training run without the command line (pure TypeScript, every runtime): its config (a run's config.json), made
// from a preset, the model's recipe, a config object and overrides, or reopened to resume; the model built from it;
// images prepared the way it was trained; and the run itself (trainer, augmented batches, validation, checkpoints,
// postprocessing tuning) over a RunStore that holds the run's files. `wgseg train` and `wgseg predict` read folders
// and flags and call this; a browser or Deno program can do the same with samples and files in memory.
import type { Engine } from '../engine/engine.ts';
import type { InstanceModel, ModelRegistry } from '../models/model.ts';
import { chooseCropAndBatch } from './auto-size.ts';
import { releaseSamples, sampleBatch, type AugmentOptions, type CropPlacement } from './augment.ts';
import { decodeModel } from './checkpoint.ts';
import { dataWarnings } from './data-check.ts';
import { normalizePercentile } from './normalize.ts';
import { json, readJSON, type RunStore } from './run-store.ts';
import { Trainer, trainOptions, type TrainEvent, type TrainOptions, type TrainResult, type TrainState } from './trainer.ts';
import { tunePostprocess, type TuningResult } from './tune.ts';
import { validationMetrics } from './validate.ts';
import type { ImageVolume, Sample } from './volume.ts';

/** A run that cannot start as configured (an unknown model, a bad option, samples that do not fit): one line naming it. */
export class ConfigError extends Error {
  override name = 'ConfigError';
}

/** How a model is trained where the config does not say: its paper's optimizer, schedule, crops, augmentation. */
export interface TrainingRecipe {
  train?: Partial<TrainOptions>;
  data?: Partial<Pick<DataOptions, 'augment' | 'crops'>>;
}

export interface DataOptions {
  /** The dataset folder the run trains on (or what a program calls its samples). */
  dir: string;
  /** Training crop per spatial axis. */
  patchSize: number[];
  /** Changes to the model dimension's default augmentation. */
  augment: Partial<AugmentOptions>;
  /** Where training crops are placed (absent in runs saved before it existed: random). */
  crops?: CropPlacement;
  /** Replaces the voxel spacing of every image (training and prediction); null keeps the images'. */
  spacing: number[] | null;
  /** The spacing of the first training image, as trained (for a warning when prediction images differ). */
  trainSpacing: number[];
  /** Share of train held out for validation when there is no validation split. */
  valFraction: number;
}

/**
 * The postprocessing parameters chosen on the validation images after training (InstanceModel.postprocessGrid):
 * `defaults` are the config's values before tuning (what validation during training used), `step` the step of the
 * weights they were scored with.
 */
export type Tuning = Omit<TuningResult, 'scores'> & { step: number };

/** config.json of a run. */
export interface RunConfig {
  format: 'wgseg-run/1';
  /** `config` holds the tuned postprocessing values when `tuning` is present. */
  model: { kind: string; preset: string | null; config: Record<string, unknown>; tuning?: Tuning };
  train: TrainOptions;
  data: DataOptions;
  /** Per image and channel: (x − p_low) / (p_high − p_low) with these percentiles. */
  normalization: { method: 'percentile'; pLow: number; pHigh: number };
  /** A run started from another run's weights: that run, and the file and step of its weights. */
  init?: { from: string; weights: string; step: number };
  /** A run made by `wgseg import` from a model another program trained: the file, and the method's code it came from. */
  imported?: { from: string; method: string };
}

/** What error messages call the inputs of a run: by default the RunConfig fields they set; the CLI names its flags. */
export interface InputNames {
  kind: string;
  preset: string;
  /** The ConfigFile. */
  config: string;
  spacing: string;
  init: string;
  resume: string;
}

export const configNames: InputNames = {
  kind: 'model.kind', preset: 'model.preset', config: 'config', spacing: 'data.spacing', init: 'init', resume: 'resume',
};

/** A run's settings over the preset and the recipe, by section (the CLI's --config file). */
export interface ConfigFile {
  /** Over the preset's model config. */
  model?: Record<string, unknown>;
  train?: Partial<TrainOptions>;
  data?: Partial<Pick<DataOptions, 'patchSize' | 'augment' | 'crops' | 'valFraction'>>;
  normalization?: { pLow?: number; pHigh?: number };
}

/** `value` as a ConfigFile; each section and data/normalization key is checked so a typo is an error, not ignored. */
export function checkConfigFile(value: unknown, names: InputNames = configNames): ConfigFile {
  const known: Record<string, string[] | null> = {
    model: null, train: null, data: ['patchSize', 'augment', 'crops', 'valFraction'], normalization: ['pLow', 'pHigh'],
  };
  if (!value || typeof value !== 'object' || Array.isArray(value)) throw new ConfigError(`${names.config}: not a JSON object`);
  for (const [section, entries] of Object.entries(value)) {
    if (!(section in known)) throw new ConfigError(`${names.config}: unknown section "${section}" (known: ${Object.keys(known).join(', ')})`);
    if (!entries || typeof entries !== 'object' || Array.isArray(entries)) throw new ConfigError(`${names.config}: "${section}" is not an object`);
    const keys = known[section];
    const unknown = keys && Object.keys(entries).find((k) => !keys.includes(k));
    if (unknown) throw new ConfigError(`${names.config}: unknown key "${section}.${unknown}" (known: ${keys.join(', ')})`);
  }
  return value as ConfigFile;
}

/** A trained run whose weights a new run starts from (fine-tuning): its config, and the file and step of the weights. */
export interface InitSource {
  /** The run, as the new run's config records it. */
  from: string;
  run: RunConfig;
  weights: string;
  step: number;
}

export interface NewRunOptions {
  /**
   * The model: a kind, with a preset (default: the first for `ndim` where the registry knows presets by dimension,
   * else the first) and changes to its config; or a trained run to fine-tune, whose model config and normalization
   * the run takes (its weights fix the model).
   */
  model: { kind: string; preset?: string; ndim?: 2 | 3; config?: Record<string, unknown> } | { init: InitSource };
  /** Settings over the preset and the model's recipe (its `model` section is model.config's business). */
  file?: Omit<ConfigFile, 'model'>;
  /** Training options over the file's (the CLI's --steps, --batch, --seed). */
  train?: Partial<TrainOptions>;
  data: { dir: string; spacing?: number[] | null };
}

/** The config of a new run: the model's preset, then its recipe, then the file, then the overrides. */
export function newRunConfig(registry: ModelRegistry, options: NewRunOptions, names: InputNames = configNames): RunConfig {
  const { kind, preset, config, from } = modelOf(registry, options.model, names);
  const file = options.file ?? {};
  const recipe = registry.recipes?.[kind] ?? {};
  let train: TrainOptions;
  try {
    train = trainOptions({ ...recipe.train, ...file.train, ...options.train });
  } catch (e) {
    throw new ConfigError((e as Error).message);
  }
  const crops = file.data?.crops ?? recipe.data?.crops ?? 'random';
  if (crops !== 'random' && crops !== 'objects') throw new ConfigError(`${names.config}: data.crops must be "random" or "objects", got ${JSON.stringify(crops)}`);
  const valFraction = file.data?.valFraction ?? 0.1;
  if (!(valFraction > 0 && valFraction < 1)) throw new ConfigError(`${names.config}: data.valFraction must be in (0, 1), got ${valFraction}`);
  const normalization = from && !file.normalization ? from.run.normalization : undefined;
  return {
    format: 'wgseg-run/1',
    model: { kind, preset, config },
    train,
    data: {
      dir: options.data.dir, patchSize: file.data?.patchSize ?? [], augment: { ...recipe.data?.augment, ...file.data?.augment },
      crops, spacing: options.data.spacing ?? null, trainSpacing: [], valFraction,
    },
    normalization: normalization ?? { method: 'percentile', pLow: file.normalization?.pLow ?? 1, pHigh: file.normalization?.pHigh ?? 99.8 },
    ...(from ? { init: { from: from.from, weights: from.weights, step: from.step } } : {}),
  };
}

function knownKind(registry: ModelRegistry, kind: string, names: InputNames): void {
  if (!registry.factories[kind]) throw new ConfigError(`${names.kind}: unknown model "${kind}" (known: ${Object.keys(registry.factories).join(', ')})`);
}

/** The model of a new run: the init run's, or a preset of the kind (the named one or the default) with the changes. */
function modelOf(
  registry: ModelRegistry, model: NewRunOptions['model'], names: InputNames,
): { kind: string; preset: string | null; config: Record<string, unknown>; from: InitSource | null } {
  if ('init' in model) {
    const { kind, preset, config } = model.init.run.model;
    knownKind(registry, kind, names);
    // A fine-tuned model keeps its source's config, tuned postprocessing included (tuning redoes it at the end).
    return { kind, preset, config: { ...config }, from: model.init };
  }
  knownKind(registry, model.kind, names);
  const presets = registry.presets[model.kind] ?? {};
  const ofNdim = model.ndim ? registry.presetsByNdim?.[model.kind]?.[model.ndim] : undefined;
  const preset = model.preset ?? ofNdim?.[0] ?? Object.keys(presets)[0] ?? null;
  if (preset !== null && !presets[preset]) {
    throw new ConfigError(`${names.preset}: ${model.kind} has no preset "${preset}" (has ${Object.keys(presets).join(', ') || 'none'})`);
  }
  return { kind: model.kind, preset, config: { ...(preset ? presets[preset] : {}), ...model.config }, from: null };
}

/**
 * The saved config of the run in `store`, to continue it: `kind`, when given, must be the run's; `dir` replaces the
 * dataset folder (moved data). Validation goes on with the postprocessing values the best checkpoint so far was
 * picked with; tuning redoes the choice.
 */
export async function resumedRunConfig(
  store: RunStore, options: { kind?: string; dir?: string } = {}, names: InputNames = configNames,
): Promise<RunConfig> {
  if (!(await store.has('config.json')) || !(await store.has('state.json'))) {
    throw new ConfigError(`${names.resume}: ${store.dir} has no run to resume (config.json and state.json)`);
  }
  const run = await readJSON<RunConfig>(store, 'config.json').catch((e: Error) => {
    throw new ConfigError(e.message);
  });
  if (options.kind && options.kind !== run.model.kind) throw new ConfigError(`${names.kind} ${options.kind}: ${store.dir} trains ${run.model.kind}`);
  const model = { ...run.model, config: { ...run.model.config, ...run.model.tuning?.defaults } };
  return { ...run, model, data: options.dir ? { ...run.data, dir: options.dir } : run.data };
}

/**
 * A trained run's config and the file of the store to predict with: best, or last when no validation ever ran.
 * `what` names the run in errors (the CLI: the flag that gave it).
 */
export async function readRun(store: RunStore, what = 'run'): Promise<{ run: RunConfig; weights: string }> {
  if (!(await store.has('config.json'))) throw new ConfigError(`${what}: ${store.dir} is not a run folder (no config.json)`);
  const run = await readJSON<RunConfig>(store, 'config.json').catch((e: Error) => {
    throw new ConfigError(e.message);
  });
  if (run.format !== 'wgseg-run/1') throw new ConfigError(`${store.path('config.json')}: not a wgseg run config (format ${run.format})`);
  for (const weights of ['best.safetensors', 'last.safetensors']) if (await store.has(weights)) return { run, weights };
  throw new ConfigError(`${what}: ${store.dir} has no checkpoint yet (best.safetensors or last.safetensors)`);
}

/** A model built from the registry; an unknown kind or a config the model rejects is a ConfigError. */
export function buildModel(e: Engine, registry: ModelRegistry, kind: string, config: Record<string, unknown>, names: InputNames = configNames): InstanceModel {
  knownKind(registry, kind, names);
  try {
    return registry.factories[kind](e, config);
  } catch (err) {
    throw new ConfigError(`${kind} config: ${(err as Error).message}`);
  }
}

/** The run's model with the weights file `bytes` loaded; `what` names the file in errors. */
export function loadModel(
  e: Engine, registry: ModelRegistry, run: RunConfig, bytes: Uint8Array, what: string, names: InputNames = configNames,
): InstanceModel {
  const model = buildModel(e, registry, run.model.kind, run.model.config, names);
  try {
    decodeModel(model, bytes, what);
  } catch (err) {
    model.dispose();
    throw new ConfigError((err as Error).message);
  }
  return model;
}

/** Applies the run's spacing override and normalization to samples as loaded. */
export function prepareSamples(samples: Sample[], run: Pick<RunConfig, 'data' | 'normalization'>, names: InputNames = configNames): Sample[] {
  const { spacing } = run.data;
  const { pLow, pHigh } = run.normalization;
  return samples.map(({ name, image, labels }) => {
    if (spacing && spacing.length !== image.shape.length - 1) {
      throw new ConfigError(`${names.spacing} has ${spacing.length} values, ${name} is ${image.shape.length - 1}D`);
    }
    let normalized: ImageVolume;
    try {
      normalized = normalizePercentile(spacing ? { ...image, spacing } : image, pLow, pHigh);
    } catch (err) {
      throw new ConfigError(`image ${name}: ${(err as Error).message.replace(/^normalizePercentile: /, '')}`);
    }
    return { name, image: normalized, labels: labels && (spacing ? { ...labels, spacing } : labels) };
  });
}

/** The training crop: the config's (checked), else about 128 pixels per axis (16 slices in z) in the model's multiples. */
export function patchSize(run: RunConfig, ndim: number, multiple: readonly number[]): number[] {
  const given = run.data.patchSize;
  if (given.length === 0) return (ndim === 2 ? [128, 128] : [16, 128, 128]).map((p, k) => Math.max(1, Math.round(p / multiple[k])) * multiple[k]);
  if (given.length !== ndim || given.some((p, k) => !Number.isInteger(p) || p <= 0 || p % multiple[k] !== 0)) {
    throw new ConfigError(`data.patchSize [${given.join(', ')}] must be ${ndim} positive multiples of [${multiple.join(', ')}] for this model`);
  }
  return given;
}

/** Where a run's text goes: a Node stream, or anything with write() (a browser's console). */
export interface Log {
  write(text: string): unknown;
}

export interface TrainRunOptions {
  /** Continue the store's run from its last checkpoint (`run` from resumedRunConfig); else start it, writing config.json. */
  resume?: boolean;
  /** A new run with `init`: the bytes of its weights file (RunConfig.init.weights). */
  initWeights?: Uint8Array;
  /** Stop cleanly after this many minutes (the last checkpoint is saved). */
  maxMinutes?: number;
  /** Fit the learning-rate schedule to maxMinutes (default false; see RunOptions.fitSchedule in trainer.ts). */
  fitSchedule?: boolean;
  /**
   * Where the run gives no crop size: measure a training step and choose the crops and batch (at most the run's batch
   * size) so that a step takes about 1.5 s (default true; false trains on the default 128² / 16×128×128 crops).
   */
  autoSize?: boolean;
  /** Tune the postprocessing on the validation images when training ends (default true). */
  tune?: boolean;
  /** What is trained, and the tuning's scores. */
  log?: Log;
  progress?: (event: TrainEvent) => void;
  names?: InputNames;
}

/** Samples as loaded, checked against the model (channels; one spacing, unless the run replaces it), prepared. */
function checkedSamples(run: RunConfig, model: InstanceModel, samples: { train: Sample[]; val: Sample[] }, names: InputNames): { train: Sample[]; val: Sample[] } {
  const { dir } = run.data;
  const [first] = samples.train;
  if (!first) throw new ConfigError(`${dir}: no training images`);
  for (const s of [...samples.train, ...samples.val]) {
    if (s.image.shape[0] !== model.inChannels) {
      throw new ConfigError(`${dir}: image ${s.name} has ${s.image.shape[0]} channel(s); the ${run.model.kind} model takes ${model.inChannels}`);
    }
    // One batch holds crops of several images: their voxels must be the same size (or the run says they are).
    if (!run.data.spacing && s.image.spacing.join() !== first.image.spacing.join()) {
      throw new ConfigError(
        `${dir}: image ${s.name} has spacing [${s.image.spacing.join(', ')}], ${first.name} [${first.image.spacing.join(', ')}]; pass ${names.spacing} to use one`,
      );
    }
  }
  return { train: prepareSamples(samples.train, run, names), val: prepareSamples(samples.val, run, names) };
}

/**
 * Trains `model` (built from `run`) on the samples as loaded (labelled; validation on `val`), keeping the run's files in
 * `store`: config.json when the run starts, the checkpoints and state.json as it goes, the tuned postprocessing in
 * config.json at the end. A run that diverged is not tuned; its result says so.
 */
export async function trainRun(
  e: Engine, model: InstanceModel, given: RunConfig, store: RunStore, samples: { train: Sample[]; val: Sample[] }, options: TrainRunOptions = {},
): Promise<{ result: TrainResult; tuning: Tuning | null }> {
  const { resume = false, names = configNames, log = { write: () => {} } } = options;
  for (const warning of dataWarnings(samples, model.config)) log.write(`warning: ${warning}\n`);
  const data = checkedSamples(given, model, samples, names);
  let run: RunConfig = { ...given, data: { ...given.data, patchSize: patchSize(given, model.ndim, model.sizeMultiple) } };
  if (!resume && given.data.patchSize.length === 0 && options.autoSize !== false) {
    // No crop size given: measure a step and choose crops and batch that fit the machine (src/train/auto-size.ts).
    const auto = await chooseCropAndBatch(e, model, data.train, {
      maxBatch: given.train.batchSize, augment: given.data.augment, crops: given.data.crops, seed: given.train.seed * 2 ** 32 + 2 ** 31,
    });
    const timed = auto.measured.map((m) => `${m.batch}×[${m.crop.join(', ')}] ${m.seconds.toFixed(2)} s`).join(', ');
    log.write(`no data.patchSize given: chose crops [${auto.crop.join(', ')}], batch ${auto.batch} for steps of at most about 1.5 s (measured ${timed}); set data.patchSize and --batch to choose\n`);
    run = { ...run, train: { ...run.train, batchSize: auto.batch }, data: { ...run.data, patchSize: auto.crop } };
  }
  if (!resume) {
    run.data.trainSpacing = data.train[0].image.spacing;
    await store.write({ 'config.json': json(run) });
  }
  if (run.init && !resume) {
    if (!options.initWeights) throw new ConfigError(`${names.init}: the weights ${run.init.weights} were not given (initWeights)`);
    try {
      decodeModel(model, options.initWeights, run.init.weights);
    } catch (err) {
      throw new ConfigError(`${names.init}: ${(err as Error).message}`);
    }
  }
  const trainer = new Trainer(model, run.train);
  if (resume) {
    try {
      const state = await readJSON<TrainState>(store, 'state.json');
      trainer.restore(await store.read('last.safetensors'), await store.read('optimizer.safetensors'), state, store.dir);
    } catch (err) {
      throw new ConfigError(`${names.resume}: ${(err as Error).message}`);
    }
  }
  const { batchSize, seed } = run.train;
  const init = run.init ? `, initialized from ${run.init.weights} (step ${run.init.step})` : '';
  const fitted = trainer.state.fitted ? ` (fitted to a time limit; ${run.train.steps} planned)` : '';
  log.write(
    `training ${run.model.kind}${run.model.preset ? ` (${run.model.preset})` : ''}${init} on ${data.train.length} image(s), validating on ${data.val.length}, from step ${trainer.state.step} of ${trainer.steps}${fitted}\n`,
  );
  // The optimizer's moments (two tensors per weight) are needed only while training: freed when it ends, however.
  const result = await trainer.run(
    {
      batch: (step) => sampleBatch(e, data.train, {
        batchSize, patchSize: run.data.patchSize, seed: seed * 2 ** 32 + step, augment: run.data.augment, crops: run.data.crops,
        layers: model.overlapping ?? false,
      }),
      validate: () => validationMetrics(e, model, data.val),
      save: async (c) => {
        if (c.which === 'best') await store.write({ 'best.safetensors': c.weights });
        else await store.write({ 'last.safetensors': c.weights, 'optimizer.safetensors': c.optimizer, 'state.json': json(c.state) });
      },
      progress: options.progress,
    },
    { maxMinutes: options.maxMinutes, fitSchedule: options.fitSchedule },
  ).finally(() => trainer.optimizer.dispose());
  releaseSamples(e);
  if (result.reason === 'diverged' || options.tune === false) return { result, tuning: null };
  return { result, tuning: await tuneRun(e, model, data.val, run.train.bestMetric, result, store, log) };
}

const skip = (log: Log, why: string): null => {
  log.write(`postprocessing: ${why}\n`);
  return null;
};

/**
 * Tunes the model's postprocessing parameters on the validation images with the best checkpoint's weights (loaded
 * over the last ones when they differ), logs one line per combination and saves the best into config.json.
 */
export async function tuneRun(
  e: Engine, model: InstanceModel, val: readonly Sample[], metric: string, result: TrainResult, store: RunStore, log: Log,
): Promise<Tuning | null> {
  if (!model.postprocessGrid) return skip(log, `the ${model.kind} model has nothing to tune`);
  if (val.length === 0) return skip(log, 'not tuned (no validation images)');
  const { best, step } = result.state;
  if (best && best.step !== step) decodeModel(model, await store.read('best.safetensors'), store.path('best.safetensors'));
  log.write(`tuning postprocessing on ${val.length} validation image(s) with the weights of step ${best?.step ?? step}, by ${metric}:\n`);
  const tuned = await tunePostprocess(e, model, val, metric);
  if (!tuned) return skip(log, `the ${model.kind} model has nothing to tune`);
  const same = (a: Record<string, number>, b: Record<string, number>) => Object.keys(a).every((k) => a[k] === b[k]);
  const list = (values: Record<string, number>, sep: string) => Object.entries(values).map(([k, v]) => `${k} ${v}`).join(sep);
  for (const { values, score } of tuned.scores) {
    const mark = same(values, tuned.values) ? '  (chosen)' : same(values, tuned.defaults) ? '  (config)' : '';
    log.write(`  ${list(values, '  ')}  ${metric} ${score.toFixed(4)}${mark}\n`);
  }
  const { scores: _, ...chosen } = tuned;
  const tuning: Tuning = { ...chosen, step: best?.step ?? step };
  // Re-read, so only the model config changes (not a dataset folder given to resume, nor the defaults restored for it).
  const saved = await readJSON<RunConfig>(store, 'config.json');
  await store.write({ 'config.json': json({ ...saved, model: { ...saved.model, config: { ...saved.model.config, ...tuned.values }, tuning } }) });
  log.write(
    `postprocessing: ${list(tuned.values, ', ')} saved to ${store.path('config.json')} (${metric} ${tuned.score.toFixed(4)}; the config's ${tuned.defaultScore.toFixed(4)})\n`,
  );
  return tuning;
}
