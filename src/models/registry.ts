// Every model the pipeline can build, by its `--model` name, with its named configs (presets) and how its paper trains
// it where a --config file does not say otherwise.
import type { TrainingRecipe } from '../cli/run.ts';
import { createEmbedSeg, embedsegPresets } from './embedseg.ts';
import type { ModelFactory } from './model.ts';
import { createRDCNet, rdcnetPresets } from './rdcnet.ts';

export const modelFactories: Record<string, ModelFactory> = {
  rdcnet: createRDCNet,
  embedseg: createEmbedSeg,
};

type Presets = Readonly<Record<string, Readonly<Record<string, unknown>>>>;

export const modelPresets: Record<string, Presets> = {
  rdcnet: rdcnetPresets as Presets,
  embedseg: embedsegPresets as Presets,
};

export const modelRecipes: Record<string, TrainingRecipe> = {
  // RDCNet: Adam with cosine decay 1e-3 → 1e-5 (the trainer's defaults), random crops, the supplement's augmentation.
  rdcnet: {},
  // EmbedSeg's code: Adam 5e-4 with weight decay 1e-4, poly decay, crops centred on objects, rot90 and flips only.
  embedseg: {
    train: { lr: 5e-4, weightDecay: 1e-4, schedule: 'poly' },
    data: {
      crops: 'objects',
      augment: { flip: true, rot90: true, affine: null, elastic: null, blur: null, offset: 0, gain: [1, 1], noise: null, clip: null },
    },
  },
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
export const registry = { factories: modelFactories, presets: modelPresets, recipes: modelRecipes };
