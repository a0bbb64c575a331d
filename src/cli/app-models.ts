// What models.json holds: the models the app offers, one per folder of the models folder (pretrained/NAME/ with a
// config.json and a weights file). `wgseg app` writes it and the page (app/models.ts) reads it; pure TypeScript, so
// both sides share the type.

/** One model folder: where it is (relative to models.json) and what its config says. */
export interface ModelEntry {
  /** The folder's name, which the page lists. */
  name: string;
  /** The folder's URL relative to models.json, ending in '/': `pretrained/NAME/`. */
  url: string;
  /** The weights file in the folder: best.safetensors, or last.safetensors where there is no best (as predict picks). */
  weights: string;
  kind: string;
  preset: string | null;
  ndim: number;
  inChannels: number;
  /** The validation score the postprocessing was tuned to, where the run tuned it. */
  tuned?: { metric: string; score: number };
}

export interface ModelManifest {
  format: 'wgseg-models/1';
  /** The models folder's URL relative to models.json (for messages: where the page looks). */
  folder: string;
  models: ModelEntry[];
}
