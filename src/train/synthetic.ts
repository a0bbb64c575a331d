// Synthetic nuclei-like images for tests and demos: touching, overlapping-free elliptical blobs with instance labels,
// smooth intensity inside, background gradient and Gaussian noise. Pure TypeScript (runs in every runtime), seeded.

export interface SyntheticImage {
  /** [height, width] intensities in about [0, 1]. */
  image: Float32Array;
  /** [height, width] instance labels, 0 = background, 1..count. */
  labels: Int32Array;
  height: number;
  width: number;
  count: number;
}

export interface BlobOptions {
  height: number;
  width: number;
  /** Number of blobs to try to place (fewer if they do not fit). */
  blobs: number;
  /** Radius range in pixels. */
  radius: [number, number];
  /** Standard deviation of the additive noise. */
  noise?: number;
  seed: number;
}

/** A seeded uniform generator in [0, 1) (mulberry32). */
export function seededRandom(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Blobs are placed one by one; a blob only claims pixels no earlier blob holds, so neighbours touch but keep their own ids. */
export function syntheticBlobs(options: BlobOptions): SyntheticImage {
  const { height, width, blobs, radius, noise = 0.05 } = options;
  const rand = seededRandom(options.seed);
  const gauss = () => Math.sqrt(-2 * Math.log(1 - rand())) * Math.cos(2 * Math.PI * rand());
  const labels = new Int32Array(height * width);
  const image = new Float32Array(height * width);
  let count = 0;
  for (let b = 0; b < blobs; b++) {
    const ry = radius[0] + (radius[1] - radius[0]) * rand();
    const rx = ry * (0.7 + 0.6 * rand());
    const angle = Math.PI * rand();
    const cy = ry + (height - 2 * ry) * rand();
    const cx = rx + (width - 2 * rx) * rand();
    const cos = Math.cos(angle);
    const sin = Math.sin(angle);
    const brightness = 0.6 + 0.4 * rand();
    const r = Math.ceil(Math.max(rx, ry));
    // Skip blobs mostly covered by earlier ones: every label should be a real object.
    let free = 0;
    let total = 0;
    const inside: number[] = [];
    for (let y = Math.max(0, Math.floor(cy - r)); y <= Math.min(height - 1, Math.ceil(cy + r)); y++) {
      for (let x = Math.max(0, Math.floor(cx - r)); x <= Math.min(width - 1, Math.ceil(cx + r)); x++) {
        const dy = y - cy;
        const dx = x - cx;
        const u = (dx * cos + dy * sin) / rx;
        const v = (-dx * sin + dy * cos) / ry;
        const d = u * u + v * v;
        if (d <= 1) {
          total++;
          if (labels[y * width + x] === 0) {
            free++;
            inside.push(y * width + x, d);
          }
        }
      }
    }
    if (total === 0 || free < 0.7 * total) continue;
    count++;
    for (let i = 0; i < inside.length; i += 2) {
      labels[inside[i]] = count;
      image[inside[i]] = brightness * (1 - 0.4 * inside[i + 1]);
    }
  }
  const tilt = rand() * 0.2;
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      const i = y * width + x;
      image[i] += 0.1 + tilt * (x / width) + noise * gauss();
    }
  }
  return { image, labels, height, width, count };
}
