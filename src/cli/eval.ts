// `wgseg eval`: scores predicted label images against ground truth (paired by name) and prints one JSON line.
import { readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { rotatedBoxAP, type BoxImage } from '../train/box-ap.ts';
import { labelPairFiles } from '../train/dataset-node.ts';
import { DataError } from '../train/io-node.ts';
import { instanceBoxes, type RotatedBox } from '../train/rotated-box.ts';
import { labelsOf } from '../train/layers.ts';
import { aggregateMetrics, evaluatePair, type ImageMetrics } from '../train/metrics.ts';
import { headlineMetrics } from '../train/validate.ts';
import { parse, required } from './args.ts';
import type { Context } from './main.ts';
import { imageProgress } from './progress.ts';

export const evalHelp = `wgseg eval --gt DIR --pred DIR

Scores the label images in --pred against those of the same name in --gt (0 background, -1 unlabeled). Overlapping
instances are scored on their whole masks: a folder's stacks/NAME.tif (a label-stack TIFF, as predict writes where
instances overlap) is read instead of NAME.tif, and a --gt folder named "instances" holds one binary mask per
instance, NAME_1.png, NAME_2.png, ... (as BBBC010 ships its ground truth). Prints one JSON line: per-image averages
at IoU 0.5 (precision, recall, f1, apDsb50), apDsb (mean AP_dsb over IoU 0.5…0.9), sbd, aji, then every score per
threshold ("perImage") and pooled over the images ("dataset"); both views also hold the CenterUNet thesis's
pixel-wise IoU and F1 of the foreground (pwIoU, pwF1) and object-wise IoU and F1 averaged over IoU 0.5:0.05:0.95
(owIoU, owF1). Where --pred holds boxes/NAME.json for its images (as predict writes for CenterUNet), "boxes" adds
COCO's rotated-box AP, AP50 and AP75 against the minimum-area rotated rectangle of each true instance (2D). On a
terminal, a progress line shows the image, images per second and the time left.

  --gt DIR           ground-truth masks
  --pred DIR         predicted masks`;

const flags = { gt: { type: 'string' }, pred: { type: 'string' } } as const;

export async function evaluateFolders(argv: string[], ctx: Context): Promise<number> {
  const { values } = parse('eval', argv, flags);
  if (values.help) {
    ctx.stdout.write(`${evalHelp}\n`);
    return 0;
  }
  const files = await labelPairFiles(required('eval', values, 'gt'), required('eval', values, 'pred'));
  // One pair in memory at a time: read, scored, dropped.
  const boxDir = join(values.pred!, 'boxes');
  const withBoxes = await stat(boxDir).then((st) => st.isDirectory(), () => false);
  const progress = imageProgress(ctx.stderr);
  const images: ImageMetrics[] = [];
  const boxImages: BoxImage[] = [];
  try {
    for (const [index, file] of files.entries()) {
      progress({ index, total: files.length, name: file.name });
      const { name, gt, pred } = await file.load();
      images.push(evaluatePair({ name, gt: labelsOf(gt), pred: labelsOf(pred) }));
      if (withBoxes) {
        if (gt.shape.length !== 2) throw new DataError(`${boxDir}: boxes are scored on 2D images; ground truth ${name} is [${gt.shape.join(', ')}]`);
        const [height, width] = gt.shape;
        // Layer 0 holds every instance (the lowest id where they overlap).
        const truth = [...instanceBoxes(gt.data.subarray(0, height * width), height, width).values()];
        boxImages.push({ truth, detections: await readBoxes(join(boxDir, `${name}.json`)) });
      }
    }
  } finally {
    progress.done();
  }
  const result = aggregateMetrics(images);
  const boxes = withBoxes ? rotatedBoxAP(boxImages) : null;
  ctx.stdout.write(`${JSON.stringify({
    images: result.images, ...headlineMetrics(result),
    ...(boxes ? { boxes: { ap: boxes.ap, ap50: boxes.ap50, ap75: boxes.ap75, truths: boxes.truths, detections: boxes.detections } } : {}),
    thresholds: result.thresholds, perImage: result.perImage, dataset: result.dataset,
  })}\n`);
  return 0;
}

/** The detections of a boxes/NAME.json file as predict writes it; anything else is a DataError naming the file. */
async function readBoxes(path: string): Promise<(RotatedBox & { score: number })[]> {
  let json: unknown;
  try {
    json = JSON.parse(await readFile(path, 'utf8'));
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    throw new DataError(`${path}: ${code === 'ENOENT' ? 'missing (the prediction folder has boxes/ for other images)' : `cannot read boxes (${code ?? (e as Error).message})`}`);
  }
  const list = (json as { boxes?: unknown }).boxes;
  if (!Array.isArray(list)) throw new DataError(`${path}: no "boxes" array`);
  return list.map((b, i) => {
    const box = b as Record<string, unknown>;
    for (const key of ['cx', 'cy', 'width', 'height', 'angle', 'score']) {
      if (typeof box[key] !== 'number' || !Number.isFinite(box[key])) throw new DataError(`${path}: box ${i} has ${key} ${JSON.stringify(box[key])}, expected a finite number`);
    }
    const { cx, cy, width, height, angle, score } = box as unknown as RotatedBox & { score: number };
    return { cx, cy, width, height, angle, score };
  });
}
