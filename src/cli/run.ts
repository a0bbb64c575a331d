// What the commands share about a run folder on disk: src/train/run.ts with the flags named in errors and files read
// from the folder.
import { readFile } from 'node:fs/promises';
import type { Engine } from '../engine/engine.ts';
import type { InstanceModel, ModelRegistry } from '../models/model.ts';
import { RunFolder } from '../train/checkpoint-node.ts';
import * as run from '../train/run.ts';
import type { Sample } from '../train/volume.ts';

export type { ModelRegistry };

/** What errors call the inputs of a run: the flags that give them. */
export const flagNames: run.InputNames = {
  kind: '--model', preset: '--preset', config: '--config', spacing: '--spacing', init: '--init', resume: '--resume',
};

export const buildModel = (e: Engine, registry: ModelRegistry, kind: string, config: Record<string, unknown>): InstanceModel =>
  run.buildModel(e, registry, kind, config, flagNames);

export const prepareSamples = (samples: Sample[], config: Pick<run.RunConfig, 'data' | 'normalization'>): Sample[] =>
  run.prepareSamples(samples, config, flagNames);

/** A trained run's config and the path of the checkpoint to predict with: best, or last when no validation ever ran. */
export async function readRun(dir: string, flag = '--model'): Promise<{ run: run.RunConfig; weights: string }> {
  const folder = new RunFolder(dir);
  const saved = await run.readRun(folder, flag);
  return { run: saved.run, weights: folder.path(saved.weights) };
}

/** The run's model with the weights of the file `weights` loaded. */
export async function loadModel(e: Engine, registry: ModelRegistry, config: run.RunConfig, weights: string): Promise<InstanceModel> {
  return run.loadModel(e, registry, config, await readFile(weights), weights, flagNames);
}
