// Synthetic worm-like instances that cross (BBBC010-like overlaps) for tests and benchmarks: thick curves whose heading
// drifts smoothly, tapered at both ends, placed at random, as canonical layered labels (src/train/layers.ts). Pure
// TypeScript (runs in every runtime), seeded.
import { layersFromMasks, type LayeredLabels } from './layers.ts';
import { seededRandom } from './synthetic.ts';

export interface WormOptions {
  height: number;
  width: number;
  worms: number;
  /** Centre-line length range in pixels. */
  length: [number, number];
  /** Largest radius (mid-body) range in pixels; the ends taper to 55 % of it. */
  radius: [number, number];
  seed: number;
}

export interface SyntheticWorms {
  labels: LayeredLabels;
  /** Pixels covered by two or more worms. */
  crossings: number;
  /** The seed that gave them: the first from options.seed on whose worms cross with no pixel under three. */
  seed: number;
}

/** Worms as `options` describe, the seed advanced until some cross and no pixel holds three. */
export function syntheticWorms(options: WormOptions): SyntheticWorms {
  const { height, width, worms, length, radius } = options;
  for (let seed = options.seed; ; seed++) {
    const rand = seededRandom(seed);
    const masks = Array.from({ length: worms }, () => {
      const mask = new Uint8Array(height * width);
      const size = length[0] + (length[1] - length[0]) * rand();
      const thickness = radius[0] + (radius[1] - radius[0]) * rand();
      let [y, x] = [height * (0.15 + 0.7 * rand()), width * (0.15 + 0.7 * rand())];
      let heading = 2 * Math.PI * rand();
      let turn = 0;
      for (let t = 0; t <= size; t += 0.5) {
        const r = thickness * (0.55 + 0.45 * Math.sin((Math.PI * t) / size));
        for (let py = Math.max(0, Math.floor(y - r)); py <= Math.min(height - 1, Math.ceil(y + r)); py++) {
          for (let px = Math.max(0, Math.floor(x - r)); px <= Math.min(width - 1, Math.ceil(x + r)); px++) {
            if ((py - y) ** 2 + (px - x) ** 2 <= r * r) mask[py * width + px] = 1;
          }
        }
        // The heading drifts by at most 0.06 rad per pixel: bends, no tight loops.
        turn = Math.max(-0.03, Math.min(0.03, turn + 0.01 * (rand() - 0.5)));
        heading += turn;
        y += 0.5 * Math.sin(heading);
        x += 0.5 * Math.cos(heading);
      }
      return mask;
    });
    const labels = layersFromMasks(masks, height * width);
    if (labels.layers !== 2) continue;
    const crossings = labels.data.subarray(height * width).reduce((n, id) => n + (id > 0 ? 1 : 0), 0);
    return { labels, crossings, seed };
  }
}
