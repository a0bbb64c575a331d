// Every model the pipeline can build, by its `--model` name, with its named configs (presets).
import type { ModelFactory } from './model.ts';
import { createRDCNet, rdcnetPresets } from './rdcnet.ts';

export const modelFactories: Record<string, ModelFactory> = {
  rdcnet: createRDCNet,
};

export const modelPresets: Record<string, Readonly<Record<string, Readonly<Record<string, unknown>>>>> = {
  rdcnet: rdcnetPresets as Readonly<Record<string, Readonly<Record<string, unknown>>>>,
};

/** The config of preset `preset` of model `kind`; throws naming what exists when either is unknown. */
export function presetConfig(kind: string, preset: string): Record<string, unknown> {
  const presets = modelPresets[kind];
  if (!presets) throw new Error(`unknown model "${kind}" (known: ${Object.keys(modelFactories).join(', ')})`);
  const config = presets[preset];
  if (!config) throw new Error(`${kind} has no preset "${preset}" (known: ${Object.keys(presets).join(', ')})`);
  return structuredClone(config) as Record<string, unknown>;
}

/** What the CLI looks models up in (src/cli/run.ts ModelRegistry). */
export const registry = { factories: modelFactories, presets: modelPresets };
