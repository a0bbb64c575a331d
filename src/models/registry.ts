// Every model the pipeline can build: the list of their specs, and the lookups by kind derived from it.
import { centerunetSpec } from './centerunet.ts';
import { embedsegSpec } from './embedseg.ts';
import type { ModelFactory, ModelPresets, ModelRegistry, ModelSpec } from './model.ts';
import { pppSpec } from './ppp.ts';
import { rdcnetSpec } from './rdcnet.ts';

export const modelSpecs: readonly ModelSpec[] = [rdcnetSpec, embedsegSpec, pppSpec, centerunetSpec];

/** The lookups by kind of a list of specs. */
export function modelRegistry(specs: readonly ModelSpec[]): Required<ModelRegistry> {
  const byKind = <T>(field: (s: ModelSpec) => T) => Object.fromEntries(specs.map((s) => [s.kind, field(s)]));
  return {
    factories: byKind((s) => s.factory), presets: byKind((s) => s.presets), recipes: byKind((s) => s.recipe),
    presetsByNdim: byKind((s) => s.presetsByNdim),
  };
}

/** What the CLI and src/train/run.ts look models up in. */
export const registry = modelRegistry(modelSpecs);

export const modelFactories: Readonly<Record<string, ModelFactory>> = registry.factories;
export const modelPresets: Readonly<Record<string, ModelPresets>> = registry.presets;

/** The config of preset `preset` of model `kind`; throws naming what exists when either is unknown. */
export function presetConfig(kind: string, preset: string): Record<string, unknown> {
  const presets = modelPresets[kind];
  if (!presets) throw new Error(`unknown model "${kind}" (known: ${Object.keys(modelFactories).join(', ')})`);
  const config = presets[preset];
  if (!config) throw new Error(`${kind} has no preset "${preset}" (known: ${Object.keys(presets).join(', ')})`);
  return structuredClone(config) as Record<string, unknown>;
}
