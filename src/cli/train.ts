// `wgseg train`: the run's config from the flags and the --config file (or, with --resume, the run folder's), the
// dataset from DIR/{train,val} (or a held-out part of train), and src/train/run.ts's trainRun over the run folder.
import { readFile } from 'node:fs/promises';
import { resolve } from 'node:path';
import { DeviceLostError } from '../engine/engine.ts';
import { decodeSafetensors } from '../train/checkpoint.ts';
import { RunFolder } from '../train/checkpoint-node.ts';
import { hasSplit, loadSplit } from '../train/dataset-node.ts';
import { DataError } from '../train/io-node.ts';
import { formatProfile, matmulCeiling, profileSteps } from '../train/profile.ts';
import { checkConfigFile, newRunConfig, patchSize, prepareSamples, resumedRunConfig, trainRun, type ConfigFile, type InitSource, type RunConfig } from '../train/run.ts';
import { holdOut } from '../train/split.ts';
import type { TrainState } from '../train/trainer.ts';
import type { Sample } from '../train/volume.ts';
import { nonNegativeInt, parse, positiveInt, positiveNumber, required, spacingFlag, UsageError } from './args.ts';
import type { Context } from './main.ts';
import { progressReporter } from './progress.ts';
import { buildModel, flagNames, readRun } from './run.ts';

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
                     Without data.patchSize, one training step is measured and the crops and batch (at most the
                     batch size) are chosen so that a step takes about 1.5 s; the choice is printed and saved
                     Unset fields follow the model's recipe (EmbedSeg: Adam 5e-4, weight decay 1e-4, poly
                     decay, object-centred crops, flips and rot90 only; RDCNet: cosine 1e-3 to 1e-5, random crops)
  --steps N          training steps (overrides the config)
  --batch N          batch size (overrides the config)
  --seed N           seed of the crops, augmentation, initial weights and dropout (a config's model.seed
                     keeps the weights' own)
  --spacing Z,Y,X    voxel spacing for every image, instead of the files' metadata (Y,X in 2D)
  --max-minutes M    stop cleanly after M minutes (the last checkpoint is saved)
  --fit-schedule     with --max-minutes, fit the learning-rate schedule to the limit: from the step time measured
                     over the first steps (and the validation and save times), the steps that fit become the run's
                     last step, and the learning rate decays to its end value there (refitted at every validation;
                     kept in state.json for --resume). Off by default: it has not yet beaten the planned schedule
  --resume           continue RUN from its last checkpoint, with its saved config
  --init FROM        fine-tune: start from the weights predict would use in the run folder FROM (a trained run or
                     a shipped model in pretrained/), with FROM's model config and normalization, a fresh optimizer
                     and step 0; --preset and a config "model" section are refused (the weights fix the model)
  --profile N        profile N training steps (after one that compiles the pipelines) instead of training: wall and GPU
                     time per step, the GPU's idle share, dispatches and submits, the step's GFLOP/s (convolutions and
                     matmuls) against a 1024³ matmul timed in the same run, GPU time by op family and kernel
                     (timestamp queries); nothing is written, --out is not needed
  --no-tune          keep the config's postprocessing parameters; by default, when training ends, every combination
                     of the model's candidates (RDCNet: votingWindow, minCount) is scored on the validation images
                     with the best checkpoint and the best one is saved into RUN/config.json for predict

If the GPU device is lost (a driver reset), training stops with one line naming the reason, the step of the last
checkpoint (written atomically, so it is whole) and the command that continues from it; the exit code is 1.`;

const flags = {
  model: { type: 'string' }, data: { type: 'string' }, out: { type: 'string' }, config: { type: 'string' },
  preset: { type: 'string' }, 'max-minutes': { type: 'string' }, spacing: { type: 'string' }, resume: { type: 'boolean' },
  steps: { type: 'string' }, batch: { type: 'string' }, seed: { type: 'string' }, 'no-tune': { type: 'boolean' },
  init: { type: 'string' }, 'fit-schedule': { type: 'boolean' }, profile: { type: 'string' },
} as const;

type Values = ReturnType<typeof parse<typeof flags>>['values'];

async function readConfigFile(path: string): Promise<ConfigFile> {
  let config: unknown;
  try {
    config = JSON.parse(await readFile(path, 'utf8'));
  } catch (e) {
    const err = e as NodeJS.ErrnoException;
    throw new UsageError(`--config ${path}: ${err.code === 'ENOENT' ? 'no such file' : err.message}`);
  }
  return checkConfigFile(config, { ...flagNames, config: `--config ${path}` });
}

/** The config of a new run: preset, then --config file, then flags; with --init, also the weights to start from. */
async function newRun(values: Values, ctx: Context): Promise<{ run: RunConfig; initWeights?: Uint8Array }> {
  const init = values.init ? await initFrom(values) : null;
  const kind = init?.source.run.model.kind ?? required('train', values, 'model');
  const dir = resolve(required('train', values, 'data'));
  const file = values.config ? await readConfigFile(values.config) : {};
  if (init && file.model) throw new UsageError(`--init takes the model config from ${values.init}; drop the "model" section of --config ${values.config}`);
  // --seed seeds the model too (initial weights, dropout) unless the config file's model section names a seed.
  const seed = nonNegativeInt('seed', values.seed);
  const model = seed !== undefined && file.model?.seed === undefined ? { ...file.model, seed } : file.model;
  const run = newRunConfig(
    ctx.registry,
    {
      model: init ? { init: init.source } : { kind, preset: values.preset, config: model },
      file,
      train: definedOnly({ steps: positiveInt('steps', values.steps), batchSize: positiveInt('batch', values.batch), seed }),
      data: { dir, spacing: spacingFlag(values.spacing) },
    },
    { ...flagNames, config: `--config ${values.config}` },
  );
  return { run, initWeights: init?.weights };
}

/** The run --init starts from: its config, the checkpoint predict would use, and that checkpoint's bytes and step. */
async function initFrom(values: Values): Promise<{ source: InitSource; weights: Uint8Array }> {
  if (values.preset !== undefined) throw new UsageError(`--init takes the model from ${values.init}; drop --preset`);
  const { run, weights } = await readRun(values.init!, '--init');
  if (values.model !== undefined && values.model !== run.model.kind) throw new UsageError(`--model ${values.model}: --init ${values.init} holds a ${run.model.kind} model`);
  try {
    const bytes = await readFile(weights);
    const step = Number(decodeSafetensors(bytes).metadata.step ?? 0);
    return { source: { from: resolve(values.init!), run, weights, step }, weights: bytes };
  } catch (err) {
    throw new UsageError(`--init: ${weights}: ${(err as Error).message}`);
  }
}

const definedOnly = <T extends object>(o: T): Partial<T> =>
  Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as Partial<T>;

/** The saved config of a run to resume; flags that would change it are refused. */
async function resumedRun(values: Values, folder: RunFolder): Promise<RunConfig> {
  for (const flag of ['config', 'preset', 'steps', 'batch', 'seed', 'spacing', 'init'] as const) {
    if (values[flag] !== undefined) throw new UsageError(`--resume continues ${folder.dir} with its saved config; drop --${flag}`);
  }
  return resumedRunConfig(folder, { kind: values.model, dir: values.data && resolve(values.data) }, flagNames);
}

/** Training and validation samples as loaded: DIR/val, or a held-out part of DIR/train. */
async function loadData(run: RunConfig, ndim: 2 | 3): Promise<{ train: Sample[]; val: Sample[] }> {
  const { dir, valFraction } = run.data;
  const train = await loadSplit(dir, 'train', { ndim });
  if (await hasSplit(dir, 'val')) return { train, val: await loadSplit(dir, 'val', { ndim }) };
  if (train.length < 2) throw new DataError(`${dir}: no val folder, and train has ${train.length} image(s): nothing to hold out for validation`);
  return holdOut(train, valFraction, run.train.seed);
}

export async function train(argv: string[], ctx: Context): Promise<number> {
  const { values } = parse('train', argv, flags);
  if (values.help) {
    ctx.stdout.write(`${trainHelp}\n`);
    return 0;
  }
  if (values.profile !== undefined) return profile(values, ctx);
  const out = required('train', values, 'out');
  const maxMinutes = positiveNumber('max-minutes', values['max-minutes']) ?? Infinity;
  const folder = new RunFolder(out);
  // A folder with a config but no saved step is a run that never got going: starting afresh replaces it.
  if (!values.resume && folder.has('state.json')) {
    throw new UsageError(`--out: ${out} already holds a run; add --resume to continue it, or choose another folder`);
  }
  const resume = values.resume ?? false;
  const { run, initWeights } = resume ? { run: await resumedRun(values, folder) } : await newRun(values, ctx);

  const e = await ctx.engine();
  const model = buildModel(e, ctx.registry, run.model.kind, run.model.config);
  try {
    const samples = await loadData(run, model.ndim);
    const report = progressReporter(ctx.stderr);
    // A line of text ends the progress bar's line first.
    const log = { write: (text: string) => (report.done(), ctx.stderr.write(text)) };
    let trained: Awaited<ReturnType<typeof trainRun>>;
    try {
      trained = await trainRun(e, model, run, folder, samples, {
        resume, initWeights, maxMinutes, fitSchedule: values['fit-schedule'] ?? false, tune: !values['no-tune'], log, progress: report, names: flagNames,
      });
    } catch (err) {
      // Whatever failed first, a lost device is the reason: nothing more can run.
      const lost = err instanceof DeviceLostError ? err : e.lost && new DeviceLostError(e.lost);
      if (!lost) throw err;
      log.write(`wgseg train: ${lost.message}; ${await whatIsKept(folder, values)}\n`);
      return 1;
    }
    const { result, tuning } = trained;
    if (result.reason === 'diverged') {
      log.write(`wgseg train: ${result.message}\n`);
      return 1;
    }
    if (values['no-tune']) log.write('postprocessing: not tuned (--no-tune)\n');
    const { step, best, loss, lr, fitted } = result.state;
    const summary = { reason: result.reason, step, planned: run.train.steps, fitted: fitted?.steps ?? null, lr, loss, best, tuned: tuning?.values ?? null, run: out };
    ctx.stdout.write(`${JSON.stringify(summary)}\n`);
    return 0;
  } finally {
    model.dispose();
  }
}

/** A word for a POSIX shell: as it is when that is safe, else single-quoted. */
const shellWord = (s: string) => (/^[\w@%+=:,./-]+$/.test(s) ? s : `'${s.replaceAll("'", `'\\''`)}'`);

/** After the GPU device was lost: the last checkpoint the run folder holds, and the command that continues from it. */
async function whatIsKept(folder: RunFolder, values: Values): Promise<string> {
  if (!folder.has('state.json')) return 'no checkpoint was saved yet: start the run again';
  const { step } = await folder.readJSON<TrainState>('state.json');
  // A dataset folder given to --resume (moved data) is not saved in the run: it must be given again.
  const data = values.resume && values.data ? ` --data ${shellWord(values.data)}` : '';
  return `the checkpoint of step ${step} is kept in ${folder.path('last.safetensors')}; continue with: wgseg train --out ${shellWord(folder.dir)} --resume${data}`;
}

/** `--profile N`: the run as configured, N profiled steps, the table on stdout; no run folder. */
async function profile(values: Values, ctx: Context): Promise<number> {
  const steps = positiveInt('profile', values.profile)!;
  for (const flag of ['resume', 'max-minutes', 'fit-schedule'] as const) {
    if (values[flag] !== undefined) throw new UsageError(`--profile runs a few steps of a new run; drop --${flag}`);
  }
  const { run } = await newRun(values, ctx);
  const e = await ctx.engine();
  const model = buildModel(e, ctx.registry, run.model.kind, run.model.config);
  try {
    const samples = await loadData(run, model.ndim);
    const sized: RunConfig = { ...run, data: { ...run.data, patchSize: patchSize(run, model.ndim, model.sizeMultiple) } };
    const train = prepareSamples(samples.train, sized, flagNames);
    ctx.stderr.write(`profiling ${steps} step(s) of ${run.model.kind}${run.model.preset ? ` (${run.model.preset})` : ''}: batch ${sized.train.batchSize} of [${sized.data.patchSize.join(', ')}] on ${e.adapterName}\n`);
    const profile = await profileSteps(e, model, sized, train, steps);
    ctx.stdout.write(formatProfile(profile, 15, await matmulCeiling(e)));
    return 0;
  } finally {
    model.dispose();
  }
}
