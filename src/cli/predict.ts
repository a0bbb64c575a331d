// `wgseg predict`: instance labels for every image of a folder with a trained run's model, written as label TIFFs
// with the images' names, and the boxes of models that detect them as JSON. Each image's files are written into a
// hidden folder inside --out and renamed into place once all of them are (OUT/NAME.tif last), so an interrupted run
// leaves only finished images under their final names; an image that cannot be read or predicted is reported and
// skipped. With --strict, files go to a temporary folder beside --out and are moved in only when every image succeeded.
import { mkdir, mkdtemp, readdir, rename, rm, stat, writeFile } from 'node:fs/promises';
import { basename, dirname, join, resolve } from 'node:path';
import { DeviceLostError, type Engine } from '../engine/engine.ts';
import type { Tensor } from '../engine/tensor.ts';
import type { Detection, InstanceModel, Spacing } from '../models/model.ts';
import { nonFiniteWarning } from '../train/data-check.ts';
import { listImageFiles, loadImageFile } from '../train/dataset-node.ts';
import { asLayers, flatLabels } from '../train/layers.ts';
import { DataError, writeLabels, writePng } from '../train/io-node.ts';
import { predictInstances } from '../train/predict.ts';
import type { RunConfig } from '../train/run.ts';
import type { ImageVolume } from '../train/volume.ts';
import { parse, positiveInt, required, UsageError } from './args.ts';
import type { Context } from './main.ts';
import { imageProgress } from './progress.ts';
import { loadModel, prepareSamples, readRun } from './run.ts';

export const predictHelp = `wgseg predict --model RUN --input DIR --out DIR [options]

Predicts instance labels for every image in DIR (.tif, .tiff, .png) with RUN's best checkpoint (its last when it has
no best) and writes OUT/NAME.tif (label TIFFs that Fiji and tifffile open), normalized as RUN was trained. Where the
model finds overlapping instances, OUT/NAME.tif is the flat label image (the lowest id wins) and OUT/stacks/NAME.tif
the label stack with one channel per layer (a hyperstack in Fiji), which eval reads. Models that detect objects as
rotated boxes (centerunet) also write OUT/boxes/NAME.json: {"header": {"model", "image", "height", "width"}, "boxes":
[{"cx", "cy", "width", "height", "angle", "score"}, ...]}, by descending score, in pixels (pixel (y, x) covers
[x, x+1) x [y, y+1)): the centre, the long side (width) and the short side (height), the long side's angle to the x
axis towards y in radians in [0, pi), and the centre's heatmap score.

  --model RUN        a run folder written by wgseg train
  --input DIR        a folder of images
  --out DIR          where the label images (and boxes) go (created; files of the same name are replaced)
  --tile N           tile size per axis for whole-image prediction (default: the model's)
  --tta, --no-tta    average the raw outputs over the 8 rotations/flips of each image before postprocessing, or not
                     (models with test-time augmentation: EmbedSeg; default: the run's config, off unless set)
  --iterations-png   also write OUT/iterations/NAME.iterK.png for each recurrent iteration K (models that have them):
                     foreground probability (left) and embeddings coloured by where they point (right), as in the
                     RDCNet paper's Fig. 1; the middle slice of 3D images
  --skip-existing    skip the images whose OUT/NAME.tif exists: continues an interrupted run, or retries only the
                     images that failed
  --strict           all or nothing: stop at the first image that fails and write nothing (exit code 2 for bad input
                     data, 1 for other failures)

Each image's files are written under temporary names inside OUT (a hidden .wgseg-partial-* folder, which a killed run
may leave behind) and renamed into place once all of them are written, OUT/NAME.tif last: an image whose NAME.tif
exists is finished. An image that cannot be read or predicted is named on stderr with the reason as it happens
(wgseg predict: FILE: reason) and skipped; the other images are written, the failures are listed again at the end,
and the exit code is 1. If the GPU device is lost (a driver reset), predict stops with one line naming the reason and
the image, exit code 1; the images finished before it stay written. On a terminal, a progress line shows the image, its
tiles, images per second and the time left. Prints one JSON line: {"images" (written), "skipped", "failed", "out",
"weights"}.`;

const flags = {
  model: { type: 'string' }, input: { type: 'string' }, out: { type: 'string' }, tile: { type: 'string' }, 'iterations-png': { type: 'boolean' },
  tta: { type: 'boolean' }, 'no-tta': { type: 'boolean' }, strict: { type: 'boolean' }, 'skip-existing': { type: 'boolean' },
} as const;

/** A model with interpretable intermediate outputs (RDCNet's recurrent iterations). */
interface IterativeModel extends InstanceModel {
  iterationOutputs(images: Tensor, spacing: Spacing): { foreground: Tensor; embeddings: Tensor }[];
}

const isIterative = (m: InstanceModel): m is IterativeModel => typeof (m as Partial<IterativeModel>).iterationOutputs === 'function';

/**
 * One RGB PNG per iteration, [foreground | embeddings] side by side: grey foreground probability; each embedding's
 * (y, x) as red and green relative to the image extent, dimmed by the foreground, so an instance whose pixels vote for
 * one centre shows as one flat colour. Returns the number of iterations.
 */
async function writeIterationPngs(e: Engine, model: IterativeModel, image: ImageVolume, path: (k: number) => string): Promise<number> {
  const spatial = image.shape.slice(1);
  const [h, w] = spatial.slice(-2);
  const depth = spatial.length === 3 ? spatial[0] : 1;
  const plane = h * w;
  const z = Math.floor(depth / 2);
  const extent = spatial.slice(-2).map((d, k) => d * image.spacing[image.spacing.length - 2 + k]);
  const scope = e.beginScope();
  try {
    const outputs = model.iterationOutputs(e.tensor(image.data, [1, ...image.shape]), image.spacing);
    for (const [k, { foreground, embeddings }] of outputs.entries()) {
      const fg = (await foreground.data()).subarray(z * plane, (z + 1) * plane);
      const emb = await embeddings.data();
      const rgb = new Uint8Array(plane * 2 * 3);
      const byte = (v: number) => Math.max(0, Math.min(255, Math.round(255 * v)));
      for (let i = 0; i < plane; i++) {
        const row = Math.floor(i / w);
        const left = (row * 2 * w + (i % w)) * 3;
        const right = left + w * 3;
        rgb.fill(byte(fg[i]), left, left + 3);
        // The last two embedding channels are y and x; in 3D they follow z.
        const ey = emb[(spatial.length - 2) * depth * plane + z * plane + i];
        const ex = emb[(spatial.length - 1) * depth * plane + z * plane + i];
        rgb[right] = byte((fg[i] * ey) / extent[0]);
        rgb[right + 1] = byte((fg[i] * ex) / extent[1]);
        rgb[right + 2] = byte(fg[i] * 0.5);
      }
      await writePng(path(k + 1), { data: rgb, width: 2 * w, height: h, channels: 3 });
    }
    return outputs.length;
  } finally {
    scope.end();
  }
}

/** OUT/boxes/NAME.json: which model and image (name, size) the boxes come from, then the boxes, one per line. */
function boxesJson(model: string, image: string, size: readonly number[], detections: readonly Detection[]): string {
  const header = JSON.stringify({ model, image, height: size[0], width: size[1] });
  const boxes = detections.map(({ cx, cy, width, height, angle, score }) => `    ${JSON.stringify({ cx, cy, width, height, angle, score })}`);
  return `{\n  "header": ${header},\n  "boxes": [${boxes.length ? `\n${boxes.join(',\n')}\n  ` : ''}]\n}\n`;
}

/** Moves the contents of `from` into `to`, merging folders that exist in both; `from` is removed. */
async function moveInto(from: string, to: string): Promise<void> {
  const existing = await stat(to).catch(() => null);
  if (!existing) return rename(from, to);
  if (!existing.isDirectory()) throw new DataError(`--out: ${to} exists and is not a folder`);
  for (const entry of await readdir(from, { withFileTypes: true })) {
    if (entry.isDirectory()) await moveInto(join(from, entry.name), join(to, entry.name));
    else await rename(join(from, entry.name), join(to, entry.name));
  }
  await rm(from, { recursive: true });
}

/** Moves the files at `paths` (relative) from `from` into the same places in `to`, the last one last. */
async function placeFiles(from: string, to: string, paths: readonly string[]): Promise<void> {
  for (const path of paths) {
    await mkdir(dirname(join(to, path)), { recursive: true });
    await rename(join(from, path), join(to, path));
  }
}

/** What predict needs to turn one image file into its outputs. */
interface Predictor {
  e: Engine;
  model: InstanceModel;
  run: RunConfig;
  runDir: string;
  tileSize: number | undefined;
  iterationPngs: boolean;
  warn: (line: string) => void;
  onTile: (done: number, total: number) => void;
}

/**
 * Reads, checks and predicts one image file and writes its outputs into `dir` in OUT's layout; returns their paths
 * relative to `dir`, NAME.tif last (an image is finished when its NAME.tif stands).
 */
async function predictFile(p: Predictor, name: string, path: string, dir: string): Promise<string[]> {
  const { e, model, run } = p;
  const sample = await loadImageFile(name, path, { ndim: model.ndim });
  if (sample.image.shape[0] !== model.inChannels) {
    throw new DataError(`${path}: image has ${sample.image.shape[0]} channel(s); the ${model.kind} model takes ${model.inChannels}`);
  }
  if (!run.data.spacing && sample.image.spacing.join() !== run.data.trainSpacing.join()) {
    p.warn(`warning: ${name} has spacing [${sample.image.spacing.join(', ')}]; ${p.runDir} was trained at [${run.data.trainSpacing.join(', ')}]`);
  }
  const nonFinite = nonFiniteWarning(path, sample.image);
  if (nonFinite) p.warn(`warning: ${nonFinite}`);
  const [{ image }] = prepareSamples([sample], run);
  const prediction = await predictInstances(e, model, image, { tileSize: p.tileSize, onTile: p.onTile });
  const labels = asLayers(prediction.labels);
  const volume = { shape: image.shape.slice(1), spacing: image.spacing };
  const written: string[] = [];
  if (labels.layers > 1) {
    await mkdir(join(dir, 'stacks'), { recursive: true });
    await writeLabels(join(dir, 'stacks', `${name}.tif`), { ...volume, ...labels });
    written.push(join('stacks', `${name}.tif`));
  }
  if (prediction.detections) {
    await mkdir(join(dir, 'boxes'), { recursive: true });
    await writeFile(join(dir, 'boxes', `${name}.json`), boxesJson(model.kind, name, volume.shape, prediction.detections));
    written.push(join('boxes', `${name}.json`));
  }
  if (p.iterationPngs) {
    await mkdir(join(dir, 'iterations'), { recursive: true });
    const png = (k: number) => join('iterations', `${name}.iter${k}.png`);
    const iterations = await writeIterationPngs(e, model as IterativeModel, image, (k) => join(dir, png(k)));
    for (let k = 1; k <= iterations; k++) written.push(png(k));
  }
  await writeLabels(join(dir, `${name}.tif`), { ...volume, data: flatLabels(labels) });
  written.push(`${name}.tif`);
  return written;
}

/** One line for an image that failed: its file and why (a DataError's message names the file already). */
function failure(path: string, err: unknown): string {
  const message = (err as Error).message.split('\n')[0];
  return message.startsWith(path) ? message : `${path}: ${message}`;
}

/** The image files whose OUT/NAME.tif does not exist yet. */
async function unfinished(files: [string, string][], out: string): Promise<[string, string][]> {
  const todo: [string, string][] = [];
  for (const [name, path] of files) if (!(await stat(join(out, `${name}.tif`)).catch(() => null))) todo.push([name, path]);
  return todo;
}

export async function predict(argv: string[], ctx: Context): Promise<number> {
  const { values } = parse('predict', argv, flags);
  if (values.help) {
    ctx.stdout.write(`${predictHelp}\n`);
    return 0;
  }
  const runDir = required('predict', values, 'model');
  const input = required('predict', values, 'input');
  const out = resolve(required('predict', values, 'out'));
  const tileSize = positiveInt('tile', values.tile);
  const strict = values.strict ?? false;
  const outStat = await stat(out).catch(() => null);
  if (outStat && !outStat.isDirectory()) throw new DataError(`--out: ${out} exists and is not a folder`);

  const { run, weights } = await readRun(runDir);
  if (values.tta && values['no-tta']) throw new UsageError('--tta and --no-tta contradict each other');
  if (values.tta || values['no-tta']) {
    if (typeof run.model.config.tta !== 'boolean') throw new UsageError(`--tta: the ${run.model.kind} model has no test-time augmentation`);
    run.model.config.tta = Boolean(values.tta);
  }
  const e = await ctx.engine();
  const model = await loadModel(e, ctx.registry, run, weights);
  try {
    if (values['iterations-png'] && !isIterative(model)) throw new UsageError(`--iterations-png: the ${model.kind} model has no recurrent iterations to show`);
    const files = [...(await listImageFiles(input))];
    const todo = values['skip-existing'] ? await unfinished(files, out) : files;
    const skipped = files.length - todo.length;
    if (skipped > 0) ctx.stderr.write(`skipping ${skipped} image(s) whose label image is already in ${out} (--skip-existing)\n`);
    const progress = imageProgress(ctx.stderr);
    await mkdir(strict ? dirname(out) : out, { recursive: true });
    const staging = await mkdtemp(strict ? join(dirname(out), `.${basename(out)}.tmp-`) : join(out, '.wgseg-partial-'));
    const failures: string[] = [];
    let lost: { error: DeviceLostError; path: string } | null = null;
    let at = { index: 0, total: todo.length, name: '' };
    const predictor: Predictor = {
      e, model, run, runDir, tileSize, iterationPngs: values['iterations-png'] ?? false,
      warn: (line) => progress.print(`${line}\n`),
      onTile: (done, total) => progress({ ...at, tiles: { done, total } }),
    };
    try {
      for (const [index, [name, path]] of todo.entries()) {
        at = { ...at, index, name };
        progress(at);
        try {
          const written = await predictFile(predictor, name, path, staging);
          if (!strict) await placeFiles(staging, out, written);
        } catch (err) {
          // Whatever failed first, a lost device is the reason, and no later image can run.
          const error = err instanceof DeviceLostError ? err : e.lost && new DeviceLostError(e.lost);
          if (error) {
            lost = { error, path };
            break;
          }
          if (strict) throw err;
          failures.push(failure(path, err));
          const stack = process.env.WGSEG_DEBUG ? `\n${(err as Error).stack}` : '';
          progress.print(`wgseg predict: ${failures.at(-1)}${stack}\n`);
        }
      }
      if (strict && !lost) await moveInto(staging, out);
    } finally {
      progress.done();
      await rm(staging, { recursive: true, force: true });
    }
    if (lost) {
      const kept = strict ? 'nothing was written (--strict)' : `${at.index - failures.length} image(s) written to ${out}; rerun with --skip-existing to predict the others`;
      ctx.stderr.write(`wgseg predict: ${lost.error.message} while predicting ${lost.path}; ${kept}\n`);
      return 1;
    }
    const written = todo.length - failures.length;
    if (failures.length > 0) {
      const counts = `${written} written${skipped ? `, ${skipped} skipped as already in ${out}` : ''}`;
      ctx.stderr.write(`wgseg predict: ${failures.length} of ${todo.length} image(s) failed (${counts}); fix them and rerun with --skip-existing to predict only those:\n`);
      for (const line of failures) ctx.stderr.write(`  ${line}\n`);
    }
    ctx.stdout.write(`${JSON.stringify({ images: written, skipped, failed: failures.length, out, weights })}\n`);
    return failures.length > 0 ? 1 : 0;
  } finally {
    model.dispose();
  }
}
