// `wgseg train`: builds (or, with --resume, reopens) a run folder, loads and checks the dataset, and runs the shared
// training loop with GPU-augmented crops, validation on DIR/val (or a held-out part of train) and checkpoints.
import { mkdir, readFile } from 'node:fs/promises';
import { resolve } from 'node:path';
import { sampleBatch, releaseSamples } from '../train/augment.ts';
import { json, RunFolder } from '../train/checkpoint-node.ts';
import { hasSplit, loadSplit } from '../train/dataset-node.ts';
import { DataError } from '../train/io-node.ts';
import { holdOut } from '../train/split.ts';
import { Trainer, trainOptions, type TrainOptions, type TrainResult, type TrainState } from '../train/trainer.ts';
import { tunePostprocess } from '../train/tune.ts';
import { validationMetrics } from '../train/validate.ts';
import type { Sample } from '../train/volume.ts';
import { nonNegativeInt, parse, positiveInt, positiveNumber, required, spacingFlag, UsageError } from './args.ts';
import type { Context } from './main.ts';
import { progressReporter } from './progress.ts';
import { buildModel, prepareSamples, readRun, type DataOptions, type RunConfig, type Tuning } from './run.ts';
import type { Engine } from '../engine/engine.ts';
import type { InstanceModel } from '../models/model.ts';
import { decodeModel, decodeSafetensors } from '../train/checkpoint.ts';

export const trainHelp = `wgseg train --model NAME --data DIR --out RUN [options]

Trains a model on DIR/{train,val}/{images,masks}/NAME.tif|png (without DIR/val, part of train is held out) and
keeps RUN/{config.json, last.safetensors, best.safetensors, optimizer.safetensors, state.json}.

  --model NAME       the model (see wgseg --help)
  --data DIR         the dataset folder
  --out RUN          the run folder (created; must not hold a run unless --resume)
  --preset NAME      a named model config (default: the model's first preset)
  --config FILE      JSON {"model": {...}, "train": {...}, "data": {...}, "normalization": {...}} over the preset
                     train: steps, batchSize, lr, lrMin, schedule (cosine|poly), weightDecay, warmup, seed,
                     logEvery, validateEvery, saveEvery (last checkpoint only; default 100), bestMetric
                     data: patchSize, augment, crops (random|objects), valFraction; normalization: pLow, pHigh
                     Unset fields follow the model's recipe (EmbedSeg: Adam 5e-4, weight decay 1e-4, poly
                     decay, object-centred crops, flips and rot90 only; RDCNet: cosine 1e-3 to 1e-5, random crops)
  --steps N          training steps (overrides the config)
  --batch N          batch size (overrides the config)
  --seed N           seed of the crops, augmentation and dropout
  --spacing Z,Y,X    voxel spacing for every image, instead of the files' metadata (Y,X in 2D)
  --max-minutes M    stop cleanly after M minutes (the last checkpoint is saved)
  --resume           continue RUN from its last checkpoint, with its saved config
  --init FROM        fine-tune: start from the weights predict would use in the run folder FROM (a trained run or
                     a shipped model in pretrained/), with FROM's model config and normalization, a fresh optimizer
                     and step 0; --preset and a config "model" section are refused (the weights fix the model)
  --no-tune          keep the config's postprocessing parameters; by default, when training ends, every combination
                     of the model's candidates (RDCNet: votingWindow, minCount) is scored on the validation images
                     with the best checkpoint and the best one is saved into RUN/config.json for predict`;

const flags = {
  model: { type: 'string' }, data: { type: 'string' }, out: { type: 'string' }, config: { type: 'string' },
  preset: { type: 'string' }, 'max-minutes': { type: 'string' }, spacing: { type: 'string' }, resume: { type: 'boolean' },
  steps: { type: 'string' }, batch: { type: 'string' }, seed: { type: 'string' }, 'no-tune': { type: 'boolean' },
  init: { type: 'string' },
} as const;

/** The --config file's sections; each key is checked so a typo is an error, not a silently ignored setting. */
interface ConfigFile {
  model?: Record<string, unknown>;
  train?: Partial<TrainOptions>;
  data?: Partial<Pick<DataOptions, 'patchSize' | 'augment' | 'crops' | 'valFraction'>>;
  normalization?: { pLow?: number; pHigh?: number };
}

async function readConfigFile(path: string): Promise<ConfigFile> {
  let config: ConfigFile;
  try {
    config = JSON.parse(await readFile(path, 'utf8'));
  } catch (e) {
    const err = e as NodeJS.ErrnoException;
    throw new UsageError(`--config ${path}: ${err.code === 'ENOENT' ? 'no such file' : err.message}`);
  }
  const known: Record<string, string[] | null> = {
    model: null, train: null, data: ['patchSize', 'augment', 'crops', 'valFraction'], normalization: ['pLow', 'pHigh'],
  };
  if (!config || typeof config !== 'object' || Array.isArray(config)) throw new UsageError(`--config ${path}: not a JSON object`);
  for (const [section, value] of Object.entries(config)) {
    if (!(section in known)) throw new UsageError(`--config ${path}: unknown section "${section}" (known: ${Object.keys(known).join(', ')})`);
    if (!value || typeof value !== 'object' || Array.isArray(value)) throw new UsageError(`--config ${path}: "${section}" is not an object`);
    const keys = known[section];
    const unknown = keys && Object.keys(value).find((k) => !keys.includes(k));
    if (unknown) throw new UsageError(`--config ${path}: unknown key "${section}.${unknown}" (known: ${keys.join(', ')})`);
  }
  return config;
}

/** The config of a new run: preset, then --config file, then flags. */
async function newRun(values: ReturnType<typeof parse<typeof flags>>['values'], ctx: Context): Promise<RunConfig> {
  const from = values.init ? await initFrom(values) : null;
  const kind = from?.run.model.kind ?? required('train', values, 'model');
  const dir = resolve(required('train', values, 'data'));
  if (!ctx.registry.factories[kind]) {
    throw new UsageError(`--model: unknown model "${kind}" (known: ${Object.keys(ctx.registry.factories).join(', ')})`);
  }
  const file = values.config ? await readConfigFile(values.config) : {};
  if (from && file.model) throw new UsageError(`--init takes the model config from ${values.init}; drop the "model" section of --config ${values.config}`);
  const presets = ctx.registry.presets[kind] ?? {};
  const preset = from ? from.run.model.preset : (values.preset ?? Object.keys(presets)[0] ?? null);
  if (!from && preset !== null && !presets[preset]) {
    throw new UsageError(`--preset: ${kind} has no preset "${preset}" (has ${Object.keys(presets).join(', ') || 'none'})`);
  }
  const recipe = ctx.registry.recipes?.[kind] ?? {};
  let train: TrainOptions;
  try {
    train = trainOptions({
      ...recipe.train,
      ...file.train,
      ...definedOnly({ steps: positiveInt('steps', values.steps), batchSize: positiveInt('batch', values.batch), seed: nonNegativeInt('seed', values.seed) }),
    });
  } catch (e) {
    throw new UsageError((e as Error).message);
  }
  const crops = file.data?.crops ?? recipe.data?.crops ?? 'random';
  if (crops !== 'random' && crops !== 'objects') throw new UsageError(`--config ${values.config}: data.crops must be "random" or "objects", got ${JSON.stringify(crops)}`);
  const valFraction = file.data?.valFraction ?? 0.1;
  if (!(valFraction > 0 && valFraction < 1)) throw new UsageError(`--config ${values.config}: data.valFraction must be in (0, 1), got ${valFraction}`);
  const normalization = from && !file.normalization ? from.run.normalization : undefined;
  return {
    format: 'wgseg-run/1',
    // A fine-tuned model keeps its source's config, tuned postprocessing included (tuning redoes it at the end).
    model: { kind, preset, config: from ? { ...from.run.model.config } : { ...(preset ? presets[preset] : {}), ...file.model } },
    train,
    data: {
      dir, patchSize: file.data?.patchSize ?? [], augment: { ...recipe.data?.augment, ...file.data?.augment },
      crops, spacing: spacingFlag(values.spacing) ?? null,
      trainSpacing: [], valFraction,
    },
    normalization: normalization ?? { method: 'percentile', pLow: file.normalization?.pLow ?? 1, pHigh: file.normalization?.pHigh ?? 99.8 },
    ...(from ? { init: { from: resolve(values.init!), weights: from.weights, step: from.step } } : {}),
  };
}

/** The run --init starts from: its config, the checkpoint predict would use, and that checkpoint's step. */
async function initFrom(values: ReturnType<typeof parse<typeof flags>>['values']): Promise<{ run: RunConfig; weights: string; step: number }> {
  if (values.preset !== undefined) throw new UsageError(`--init takes the model from ${values.init}; drop --preset`);
  const { run, weights } = await readRun(values.init!, '--init');
  if (values.model !== undefined && values.model !== run.model.kind) throw new UsageError(`--model ${values.model}: --init ${values.init} holds a ${run.model.kind} model`);
  try {
    const step = Number(decodeSafetensors(await readFile(weights)).metadata.step ?? 0);
    return { run, weights, step };
  } catch (err) {
    throw new UsageError(`--init: ${weights}: ${(err as Error).message}`);
  }
}

const definedOnly = <T extends object>(o: T): Partial<T> =>
  Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as Partial<T>;

/** The saved config of a run to resume; flags that would change it are refused. */
async function resumedRun(values: ReturnType<typeof parse<typeof flags>>['values'], folder: RunFolder): Promise<RunConfig> {
  for (const flag of ['config', 'preset', 'steps', 'batch', 'seed', 'spacing', 'init'] as const) {
    if (values[flag] !== undefined) throw new UsageError(`--resume continues ${folder.dir} with its saved config; drop --${flag}`);
  }
  if (!folder.has('config.json') || !folder.has('state.json')) {
    throw new UsageError(`--resume: ${folder.dir} has no run to resume (config.json and state.json)`);
  }
  const run = await folder.readJSON<RunConfig>('config.json').catch((e: Error) => {
    throw new UsageError(e.message);
  });
  if (values.model && values.model !== run.model.kind) throw new UsageError(`--model ${values.model}: ${folder.dir} trains ${run.model.kind}`);
  // Validation goes on with the postprocessing the best checkpoint so far was picked with; tuning redoes the choice.
  const model = { ...run.model, config: { ...run.model.config, ...run.model.tuning?.defaults } };
  return { ...run, model, data: values.data ? { ...run.data, dir: resolve(values.data) } : run.data };
}

/** Training and validation samples, checked against the model, normalized. */
async function loadData(run: RunConfig, ndim: 2 | 3, channels: number): Promise<{ train: Sample[]; val: Sample[] }> {
  const { dir, valFraction } = run.data;
  let train = await loadSplit(dir, 'train', { ndim });
  let val: Sample[];
  if (await hasSplit(dir, 'val')) val = await loadSplit(dir, 'val', { ndim });
  else if (train.length < 2) throw new DataError(`${dir}: no val folder, and train has ${train.length} image(s): nothing to hold out for validation`);
  else ({ train, val } = holdOut(train, valFraction, run.train.seed));
  const spacing = run.data.spacing ?? train[0].image.spacing;
  for (const s of [...train, ...val]) {
    if (s.image.shape[0] !== channels) {
      throw new DataError(`${dir}: image ${s.name} has ${s.image.shape[0]} channel(s); the ${run.model.kind} model takes ${channels}`);
    }
    // One batch holds crops of several images: their voxels must be the same size (or --spacing says they are).
    if (!run.data.spacing && s.image.spacing.join() !== spacing.join()) {
      throw new DataError(`${dir}: image ${s.name} has spacing [${s.image.spacing.join(', ')}], ${train[0].name} [${spacing.join(', ')}]; pass --spacing to use one`);
    }
  }
  return { train: prepareSamples(train, run), val: prepareSamples(val, run) };
}

/** The training crop: the config's (checked), else about 128 pixels per axis (16 slices in z) in the model's multiples. */
function patchSize(run: RunConfig, ndim: number, multiple: readonly number[]): number[] {
  const given = run.data.patchSize;
  if (given.length === 0) return (ndim === 2 ? [128, 128] : [16, 128, 128]).map((p, k) => Math.max(1, Math.round(p / multiple[k])) * multiple[k]);
  if (given.length !== ndim || given.some((p, k) => !Number.isInteger(p) || p <= 0 || p % multiple[k] !== 0)) {
    throw new UsageError(`data.patchSize [${given.join(', ')}] must be ${ndim} positive multiples of [${multiple.join(', ')}] for this model`);
  }
  return given;
}

const skip = (stderr: NodeJS.WritableStream, why: string): null => {
  stderr.write(`postprocessing: ${why}\n`);
  return null;
};

/**
 * Tunes the model's postprocessing parameters on the validation images with the best checkpoint's weights (loaded
 * over the last ones when they differ), logs one line per combination and saves the best into RUN/config.json.
 */
export async function tuneRun(
  e: Engine, model: InstanceModel, val: readonly Sample[], metric: string, result: TrainResult, folder: RunFolder, stderr: NodeJS.WritableStream,
): Promise<Tuning | null> {
  if (!model.postprocessGrid) return skip(stderr, `the ${model.kind} model has nothing to tune`);
  if (val.length === 0) return skip(stderr, 'not tuned (no validation images)');
  const { best, step } = result.state;
  if (best && best.step !== step) decodeModel(model, await folder.read('best.safetensors'), folder.path('best.safetensors'));
  stderr.write(`tuning postprocessing on ${val.length} validation image(s) with the weights of step ${best?.step ?? step}, by ${metric}:\n`);
  const tuned = await tunePostprocess(e, model, val, metric);
  if (!tuned) return skip(stderr, `the ${model.kind} model has nothing to tune`);
  const same = (a: Record<string, number>, b: Record<string, number>) => Object.keys(a).every((k) => a[k] === b[k]);
  const list = (values: Record<string, number>, sep: string) => Object.entries(values).map(([k, v]) => `${k} ${v}`).join(sep);
  for (const { values, score } of tuned.scores) {
    const mark = same(values, tuned.values) ? '  (chosen)' : same(values, tuned.defaults) ? '  (config)' : '';
    stderr.write(`  ${list(values, '  ')}  ${metric} ${score.toFixed(4)}${mark}\n`);
  }
  const { scores: _, ...chosen } = tuned;
  const tuning: Tuning = { ...chosen, step: best?.step ?? step };
  // Re-read, so only the model config changes (not a --data given to --resume, nor the defaults restored for it).
  const saved = await folder.readJSON<RunConfig>('config.json');
  await folder.write({ 'config.json': json({ ...saved, model: { ...saved.model, config: { ...saved.model.config, ...tuned.values }, tuning } }) });
  stderr.write(
    `postprocessing: ${list(tuned.values, ', ')} saved to ${folder.path('config.json')} (${metric} ${tuned.score.toFixed(4)}; the config's ${tuned.defaultScore.toFixed(4)})\n`,
  );
  return tuning;
}

export async function train(argv: string[], ctx: Context): Promise<number> {
  const { values } = parse('train', argv, flags);
  if (values.help) {
    ctx.stdout.write(`${trainHelp}\n`);
    return 0;
  }
  const out = required('train', values, 'out');
  const maxMinutes = positiveNumber('max-minutes', values['max-minutes']) ?? Infinity;
  const folder = new RunFolder(out);
  // A folder with a config but no saved step is a run that never got going: starting afresh replaces it.
  if (!values.resume && folder.has('state.json')) {
    throw new UsageError(`--out: ${out} already holds a run; add --resume to continue it, or choose another folder`);
  }
  const run = values.resume ? await resumedRun(values, folder) : await newRun(values, ctx);

  const e = await ctx.engine();
  const model = buildModel(e, ctx.registry, run.model.kind, run.model.config);
  try {
    const data = await loadData(run, model.ndim, model.inChannels);
    run.data.patchSize = patchSize(run, model.ndim, model.sizeMultiple);
    if (!values.resume) {
      run.data.trainSpacing = data.train[0].image.spacing;
      await mkdir(out, { recursive: true });
      await folder.write({ 'config.json': json(run) });
    }
    if (run.init && !values.resume) {
      try {
        decodeModel(model, await readFile(run.init.weights), run.init.weights);
      } catch (err) {
        throw new UsageError(`--init: ${(err as Error).message}`);
      }
    }
    const trainer = new Trainer(model, run.train);
    if (values.resume) {
      try {
        const state = await folder.readJSON<TrainState>('state.json');
        trainer.restore(await folder.read('last.safetensors'), await folder.read('optimizer.safetensors'), state, out);
      } catch (err) {
        throw new UsageError(`--resume: ${(err as Error).message}`);
      }
    }
    const { batchSize, seed } = run.train;
    const report = progressReporter(ctx.stderr);
    const init = run.init ? `, initialized from ${run.init.weights} (step ${run.init.step})` : '';
    ctx.stderr.write(`training ${run.model.kind}${run.model.preset ? ` (${run.model.preset})` : ''}${init} on ${data.train.length} image(s), validating on ${data.val.length}, from step ${trainer.state.step} of ${run.train.steps}\n`);
    const result = await trainer.run(
      {
        batch: (step) => sampleBatch(e, data.train, { batchSize, patchSize: run.data.patchSize, seed: seed * 2 ** 32 + step, augment: run.data.augment, crops: run.data.crops }),
        validate: () => validationMetrics(e, model, data.val),
        save: async (c) => {
          if (c.which === 'best') await folder.write({ 'best.safetensors': c.weights });
          else await folder.write({ 'last.safetensors': c.weights, 'optimizer.safetensors': c.optimizer, 'state.json': json(c.state) });
        },
        progress: report,
      },
      { maxMinutes },
    );
    report.done();
    releaseSamples(e);
    const { step, best, loss } = result.state;
    if (result.reason === 'diverged') {
      ctx.stderr.write(`wgseg train: ${result.message}\n`);
      return 1;
    }
    const tuning = values['no-tune'] ? skip(ctx.stderr, 'not tuned (--no-tune)') : await tuneRun(e, model, data.val, run.train.bestMetric, result, folder, ctx.stderr);
    const summary = { reason: result.reason, step, loss, best, tuned: tuning?.values ?? null, run: out };
    ctx.stdout.write(`${JSON.stringify(summary)}\n`);
    return 0;
  } finally {
    model.dispose();
  }
}
