// `wgseg eval`: scores predicted label images against ground truth (paired by name) and prints one JSON line.
import { labelPairFiles } from '../train/dataset-node.ts';
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
threshold ("perImage") and pooled over the images ("dataset"). On a terminal, a progress line shows the image, images
per second and the time left.

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
  const progress = imageProgress(ctx.stderr);
  const images: ImageMetrics[] = [];
  try {
    for (const [index, file] of files.entries()) {
      progress({ index, total: files.length, name: file.name });
      const { name, gt, pred } = await file.load();
      images.push(evaluatePair({ name, gt: labelsOf(gt), pred: labelsOf(pred) }));
    }
  } finally {
    progress.done();
  }
  const result = aggregateMetrics(images);
  ctx.stdout.write(`${JSON.stringify({ images: result.images, ...headlineMetrics(result), thresholds: result.thresholds, perImage: result.perImage, dataset: result.dataset })}\n`);
  return 0;
}
