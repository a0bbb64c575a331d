// The models the page offers: models.json beside the page (written by `wgseg app`, see src/cli/app-models.ts), and a
// model's two files fetched from its folder (config.json and the weights), built on the engine.
import type { ModelEntry, ModelManifest } from '../src/cli/app-models.ts';
import type { Engine } from '../src/engine/engine.ts';
import type { InstanceModel } from '../src/models/model.ts';
import { registry } from '../src/models/registry.ts';
import { loadModel, type RunConfig } from '../src/train/run.ts';

export type { ModelEntry };

/** The manifest at `url` (relative to the page); an error names the URL and what was wrong with it. */
export async function fetchManifest(url = 'models.json'): Promise<ModelManifest & { at: string }> {
  const at = new URL(url, location.href).href;
  const response = await fetch(at, { cache: 'no-cache' }).catch((e: Error) => {
    throw new Error(`cannot fetch ${at} (${e.message})`);
  });
  if (!response.ok) throw new Error(`${at}: ${response.status} ${response.statusText}`);
  const manifest = (await response.json().catch(() => null)) as ModelManifest | null;
  if (manifest?.format !== 'wgseg-models/1' || !Array.isArray(manifest.models)) throw new Error(`${at} is not a wgseg model list (format wgseg-models/1)`);
  return { ...manifest, at };
}

/** The bytes at `url`, reporting (received, total) as they come; total is 0 when the server does not say. */
async function fetchBytes(url: string, onBytes: (received: number, total: number) => void): Promise<Uint8Array> {
  const response = await fetch(url).catch((e: Error) => {
    throw new Error(`cannot fetch ${url} (${e.message})`);
  });
  if (!response.ok || !response.body) throw new Error(`${url}: ${response.status} ${response.statusText}`);
  const total = Number(response.headers.get('content-length') ?? 0);
  const chunks: Uint8Array[] = [];
  let received = 0;
  const reader = response.body.getReader();
  for (let chunk = await reader.read(); !chunk.done; chunk = await reader.read()) {
    chunks.push(chunk.value);
    received += chunk.value.length;
    onBytes(received, total);
  }
  const bytes = new Uint8Array(received);
  let at = 0;
  for (const c of chunks) {
    bytes.set(c, at);
    at += c.length;
  }
  return bytes;
}

/** A model of the manifest at `manifestUrl`, with its run config (normalization, tuned postprocessing values). */
export interface LoadedModel {
  entry: ModelEntry;
  run: RunConfig;
  model: InstanceModel;
}

/** Fetches a model's config and weights and builds it on `e`; `onBytes` follows the weights' download. */
export async function loadEntry(e: Engine, entry: ModelEntry, manifestUrl: string, onBytes: (received: number, total: number) => void): Promise<LoadedModel> {
  const folder = new URL(entry.url, manifestUrl);
  const configUrl = new URL('config.json', folder).href;
  const run = JSON.parse(new TextDecoder().decode(await fetchBytes(configUrl, () => {}))) as RunConfig;
  if (run.format !== 'wgseg-run/1') throw new Error(`${configUrl}: not a wgseg run config (format ${run.format})`);
  const weightsUrl = new URL(entry.weights, folder).href;
  const weights = await fetchBytes(weightsUrl, onBytes);
  return { entry, run, model: loadModel(e, registry, run, weights, weightsUrl) };
}
