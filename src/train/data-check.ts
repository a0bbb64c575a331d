// Warnings about data that loads but trains or predicts badly (pure TypeScript, every runtime): NaN or infinite pixels
// (normalizePercentile replaces them by their channel's lowest finite value) and a training set whose masks hold no
// instance. Each warning is one line naming how many images and which.
import type { ImageVolume, Sample } from './volume.ts';

/** How many of an image's values are NaN and how many ±infinite. */
export function nonFinitePixels(image: ImageVolume): { nan: number; infinite: number } {
  let nan = 0;
  let infinite = 0;
  for (const v of image.data) {
    if (v !== v) nan++;
    else if (v === Infinity || v === -Infinity) infinite++;
  }
  return { nan, infinite };
}

/** "3 NaN and 1 infinite pixel(s)", or null when every pixel is finite. */
function nonFiniteCount({ nan, infinite }: { nan: number; infinite: number }): string | null {
  if (nan + infinite === 0) return null;
  return `${[nan && `${nan} NaN`, infinite && `${infinite} infinite`].filter(Boolean).join(' and ')} pixel(s)`;
}

const replaced = 'replaced by the lowest finite value of their channel before normalization';

/** The warning for one image to predict, or null: `what` (its file) holds NaN or infinite pixels, and what is done. */
export function nonFiniteWarning(what: string, image: ImageVolume): string | null {
  const count = nonFiniteCount(nonFinitePixels(image));
  return count && `${what}: ${count} ${replaced}`;
}

const names = (samples: readonly Sample[]) => `${samples.slice(0, 3).map((s) => s.name).join(', ')}${samples.length > 3 ? ', ...' : ''}`;

/** Warnings (one line each, without a prefix) about training and validation samples as loaded. */
export function dataWarnings(samples: { train: readonly Sample[]; val: readonly Sample[] }): string[] {
  const warnings: string[] = [];
  for (const [split, list] of [['training', samples.train], ['validation', samples.val]] as const) {
    const counts = list.map((s) => ({ sample: s, ...nonFinitePixels(s.image) })).filter((c) => c.nan + c.infinite > 0);
    if (counts.length > 0) {
      const total = nonFiniteCount({ nan: counts.reduce((a, c) => a + c.nan, 0), infinite: counts.reduce((a, c) => a + c.infinite, 0) });
      warnings.push(`${counts.length} ${split} image(s) hold ${total} (${names(counts.map((c) => c.sample))}), ${replaced}`);
    }
  }
  const labelled = samples.train.filter((s) => s.labels);
  if (labelled.length > 0 && labelled.every((s) => !s.labels!.data.some((v) => v > 0))) {
    warnings.push(`all ${labelled.length} training mask(s) are empty (no instance, only background or unlabeled): the model can only learn background`);
  }
  return warnings;
}
