// The wgseg app: pick a model from models.json, drop an image, see its instances. Everything runs in the page on
// WebGPU; the raw network outputs are kept so that postprocessing parameters re-run only the postprocessing.
// window.__wgseg exposes the state (status, instance count, labels, timings) to tests and to the curious.
import { createEngine, type Engine } from '../src/engine/engine.ts';
import { encodeLabelTiff } from '../src/train/tiff-node.ts';
import { webgpuProblem } from './gpu.ts';
import { decodeImage, type LoadedImage } from './image.ts';
import { fetchManifest, loadEntry, type LoadedModel, type ModelEntry } from './models.ts';
import { drawSlice, type View } from './render.ts';
import { Segmenter, type Segmentation } from './segment.ts';

/** What the page is doing, for tests (test/app/run.ts) and the console. */
export interface AppHook {
  status: 'starting' | 'ready' | 'busy' | 'done' | 'error' | 'unsupported';
  /** The status line, or the error. */
  message: string;
  adapter: string | null;
  model: string | null;
  image: string | null;
  count: number | null;
  /** The labels' spatial shape. */
  shape: number[] | null;
  /** The postprocessing values in use. */
  values: Record<string, number>;
  /** Network passes over an image (one per prediction), and postprocessing runs. */
  networkPasses: number;
  postprocessRuns: number;
  /** Milliseconds: from navigation to the first model ready, loading that model, the last prediction and postprocessing. */
  timings: { startup?: number; modelLoad?: number; predict?: number; postprocess?: number };
  /** The flat labels [(D), H, W] as an array, or null before a result. */
  labels(): number[] | null;
}

declare global {
  interface Window {
    __wgseg: AppHook;
  }
}

const $ = <T extends HTMLElement>(id: string) => document.getElementById(id) as T;
const ui = {
  model: $<HTMLSelectElement>('model'), modelInfo: $('model-info'), file: $<HTMLInputElement>('file'), drop: $('drop'),
  imageInfo: $('image-info'), params: $('params'), reset: $<HTMLButtonElement>('reset'), opacity: $<HTMLInputElement>('opacity'),
  opacityValue: $<HTMLOutputElement>('opacity-value'), download: $<HTMLButtonElement>('download'), problem: $('problem'),
  count: $('count'), progress: $<HTMLProgressElement>('progress'), status: $('status'), sliceRow: $('slice-row'),
  slice: $<HTMLInputElement>('slice'), sliceValue: $<HTMLOutputElement>('slice-value'), canvas: $<HTMLCanvasElement>('canvas'),
};

const hook: AppHook = {
  status: 'starting', message: '', adapter: null, model: null, image: null, count: null, shape: null, values: {},
  networkPasses: 0, postprocessRuns: 0, timings: {},
  labels: () => (result ? Array.from(result.flat) : null),
};
window.__wgseg = hook;

let engine: Engine | null = null;
let manifest: Awaited<ReturnType<typeof fetchManifest>> | null = null;
let loaded: LoadedModel | null = null;
let image: LoadedImage | null = null;
let segmenter: Segmenter | null = null;
let result: Segmentation | null = null;
const view: View = { slice: 0, opacity: 0.45 };

function setStatus(message: string, fraction: number | null = null): void {
  ui.status.textContent = message;
  hook.message = message;
  if (fraction === null) ui.progress.removeAttribute('value');
  else ui.progress.value = fraction;
}

function showProblem(message: string): void {
  ui.problem.textContent = message;
  ui.problem.hidden = false;
}

function redraw(): void {
  if (!image) return;
  drawSlice(ui.canvas, image, result?.flat ?? null, view);
  ui.canvas.classList.remove('empty');
  // Small images are shown enlarged, whole pixels at a time.
  const [h, w] = image.volume.shape.slice(-2);
  const zoom = Math.max(1, Math.min(4, Math.floor(640 / Math.max(h, w))));
  ui.canvas.style.aspectRatio = `${w} / ${h}`;
  ui.canvas.style.height = `${h * zoom}px`;
}

// Jobs (loading a model, predicting, postprocessing) run one at a time, in order; a failure is shown and ends that job only.
let queue: Promise<void> = Promise.resolve();
let pending = 0;
function job(fn: () => Promise<void>): Promise<void> {
  pending++;
  hook.status = 'busy';
  queue = queue.then(() => {
    ui.problem.hidden = true;
    hook.status = 'busy';
    return fn();
  }).catch((e: unknown) => {
    const message = e instanceof Error ? e.message : String(e);
    console.error(e);
    showProblem(message);
    hook.status = 'error';
    hook.message = message;
    setStatus('Failed (see above)', 0);
  }).finally(() => {
    pending--;
    if (pending === 0 && hook.status === 'busy') hook.status = result ? 'done' : 'ready';
  });
  return queue;
}

const describeModel = (entry: ModelEntry) =>
  `${entry.kind}${entry.preset ? ` (${entry.preset})` : ''}, ${entry.ndim}D, ${entry.inChannels} channel${entry.inChannels > 1 ? 's' : ''}`
  + `${entry.tuned ? `; tuned ${entry.tuned.metric} ${entry.tuned.score.toFixed(3)} on its validation images` : ''}`;

/** A range input per postprocessing parameter (InstanceModel.postprocessGrid), set to the run's tuned values. */
function buildParams(model: LoadedModel): void {
  const grid = model.model.postprocessGrid?.() ?? {};
  const config = model.run.model.config;
  ui.params.replaceChildren();
  hook.values = {};
  if (Object.keys(grid).length === 0) ui.params.innerHTML = '<div class="info">This model has no postprocessing parameters.</div>';
  for (const [field, candidates] of Object.entries(grid)) {
    const tuned = Number(config[field]);
    const values = [...candidates, tuned].filter(Number.isFinite);
    const [min, max] = [Math.min(...values), Math.max(...values)];
    const integers = values.every(Number.isInteger);
    const step = integers ? 1 : 10 ** Math.round(Math.log10((max - min || 1) / 50));
    const row = document.createElement('div');
    row.className = 'param';
    row.innerHTML = `<label for="param-${field}">${field}</label><output></output><input id="param-${field}" type="range">`;
    const input = row.querySelector('input')!;
    const output = row.querySelector('output')!;
    Object.assign(input, { min: String(min), max: String(max), step: String(step), value: String(tuned) });
    input.dataset.field = field;
    input.dataset.tuned = String(tuned);
    input.title = `${field}: the run tuned it to ${tuned} (tried ${candidates.join(', ')})`;
    output.textContent = String(tuned);
    hook.values[field] = tuned;
    input.addEventListener('input', () => {
      hook.values[field] = Number(input.value);
      output.textContent = input.value;
      requestPostprocess();
    });
    ui.params.append(row);
  }
  ui.reset.disabled = Object.keys(grid).length === 0;
}

async function selectModel(entry: ModelEntry): Promise<void> {
  const started = performance.now();
  loaded?.model.dispose();
  loaded = null;
  segmenter = null;
  setStatus(`Loading ${entry.name}…`, 0);
  loaded = await loadEntry(engine!, entry, manifest!.at, (received, total) =>
    setStatus(`Loading ${entry.name}: ${(received / 2 ** 20).toFixed(1)} MB`, total ? received / total : null));
  hook.model = entry.name;
  hook.timings.modelLoad = performance.now() - started;
  ui.modelInfo.textContent = describeModel(entry);
  buildParams(loaded);
  setStatus(`${entry.name} ready${image ? '' : ': drop an image'}`, 1);
  if (image) await predict();
}

async function predict(): Promise<void> {
  if (!loaded || !image) return;
  result = null;
  ui.download.disabled = true;
  ui.count.textContent = '…';
  const started = performance.now();
  segmenter = new Segmenter(engine!, loaded, image);
  ui.imageInfo.textContent = imageInfo(image, segmenter.notes);
  setStatus(`Predicting ${image.name} with ${loaded.entry.name}…`, 0);
  await segmenter.predict((fraction) => setStatus(`Predicting ${image!.name} with ${loaded!.entry.name}…`, fraction));
  hook.networkPasses++;
  hook.timings.predict = performance.now() - started;
  await postprocess();
}

async function postprocess(): Promise<void> {
  if (!segmenter) return;
  const started = performance.now();
  setStatus('Postprocessing…', null);
  result = await segmenter.postprocess({ ...hook.values });
  hook.postprocessRuns++;
  hook.timings.postprocess = performance.now() - started;
  hook.count = result.count;
  hook.shape = result.volume.shape;
  ui.count.textContent = `${result.count} instance${result.count === 1 ? '' : 's'}`;
  ui.download.disabled = false;
  const t = hook.timings;
  setStatus(`network ${((t.predict ?? 0) / 1000).toFixed(1)} s, postprocessing ${((t.postprocess ?? 0) / 1000).toFixed(1)} s`, 1);
  redraw();
}

// Parameter changes while postprocessing is running collapse into one more run with the latest values.
let postprocessQueued = false;
function requestPostprocess(): void {
  if (!segmenter || postprocessQueued) return;
  postprocessQueued = true;
  void job(async () => {
    postprocessQueued = false;
    await postprocess();
  });
}

function imageInfo(img: LoadedImage, notes: readonly string[]): string {
  const [c, ...spatial] = img.volume.shape;
  return `${img.name}: ${spatial.join(' × ')}${c > 1 ? `, ${c} channels` : ''}${notes.length ? `; ${notes.join('; ')}` : ''}`;
}

async function openFile(file: File): Promise<void> {
  setStatus(`Reading ${file.name}…`, null);
  ui.problem.hidden = true;
  const decoded = await decodeImage(new Uint8Array(await file.arrayBuffer()), file.name);
  image = decoded;
  result = null;
  segmenter = null;
  hook.image = decoded.name;
  const spatial = decoded.volume.shape.slice(1);
  ui.sliceRow.hidden = spatial.length !== 3;
  view.slice = spatial.length === 3 ? Math.floor(spatial[0] / 2) : 0;
  Object.assign(ui.slice, { max: String(spatial.length === 3 ? spatial[0] - 1 : 0), value: String(view.slice) });
  ui.sliceValue.textContent = `${view.slice + 1} / ${spatial.length === 3 ? spatial[0] : 1}`;
  ui.imageInfo.textContent = imageInfo(decoded, []);
  redraw();
  if (loaded) await predict();
  else setStatus('Choose a model to segment the image', 0);
}

function download(): void {
  if (!result || !image) return;
  const bytes = encodeLabelTiff(result.volume);
  const url = URL.createObjectURL(new Blob([bytes.slice().buffer], { type: 'image/tiff' }));
  const a = Object.assign(document.createElement('a'), { href: url, download: `${image.name}_labels.tif` });
  a.click();
  setTimeout(() => URL.revokeObjectURL(url), 10_000);
}

function wire(): void {
  ui.model.addEventListener('change', () => {
    const entry = manifest?.models.find((m) => m.name === ui.model.value);
    if (entry) void job(() => selectModel(entry));
  });
  ui.file.addEventListener('change', () => {
    const file = ui.file.files?.[0];
    if (file) void job(() => openFile(file));
    ui.file.value = '';
  });
  for (const target of [document.body, ui.drop]) {
    target.addEventListener('dragover', (e) => {
      e.preventDefault();
      ui.drop.classList.add('over');
    });
    target.addEventListener('dragleave', () => ui.drop.classList.remove('over'));
    target.addEventListener('drop', (e) => {
      e.preventDefault();
      e.stopPropagation();
      ui.drop.classList.remove('over');
      const file = e.dataTransfer?.files[0];
      if (file) void job(() => openFile(file));
    });
  }
  ui.reset.addEventListener('click', () => {
    ui.params.querySelectorAll('input').forEach((input) => {
      input.value = input.dataset.tuned!;
      input.dispatchEvent(new Event('input'));
    });
  });
  ui.opacity.addEventListener('input', () => {
    view.opacity = Number(ui.opacity.value);
    ui.opacityValue.textContent = ui.opacity.value;
    redraw();
  });
  ui.slice.addEventListener('input', () => {
    view.slice = Number(ui.slice.value);
    ui.sliceValue.textContent = `${view.slice + 1} / ${Number(ui.slice.max) + 1}`;
    redraw();
  });
  ui.download.addEventListener('click', download);
}

async function start(): Promise<void> {
  const problem = await webgpuProblem();
  if (problem) {
    showProblem(problem);
    setStatus('WebGPU is not available', 0);
    hook.status = 'unsupported';
    hook.message = problem;
    return;
  }
  engine = await createEngine();
  hook.adapter = engine.adapterName;
  try {
    manifest = await fetchManifest();
  } catch (e) {
    throw new Error(`No model list: ${(e as Error).message}. The page reads models.json beside it, which \`npx wgseg app\` writes from the models folder (pretrained/).`);
  }
  if (manifest.models.length === 0) {
    throw new Error(`No models: ${manifest.at} lists none. Put model folders (each with config.json and best.safetensors) in ${new URL(manifest.folder, manifest.at).href} and reload.`);
  }
  for (const entry of manifest.models) ui.model.append(new Option(entry.name, entry.name));
  ui.model.disabled = false;
  const wanted = new URLSearchParams(location.search).get('model');
  const first = manifest.models.find((m) => m.name === wanted) ?? manifest.models[0];
  ui.model.value = first.name;
  await selectModel(first);
  hook.timings.startup = performance.now();
}

wire();
void job(start);
