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

/**
 * A seeded uniform generator in [0, 1) (mulberry32) for any integer seed below 2^53. Mulberry32's state is 32 bits:
 * a seed below 2^32 is its state, and the bits above are hashed into it (a training batch's seed is
 * run seed · 2^32 + step, so those bits carry the run's seed and must not drop out).
 */
export function seededRandom(seed: number): () => number {
  if (!Number.isInteger(seed) || seed < 0 || seed >= 2 ** 53) throw new Error(`seededRandom: seed must be an integer in [0, 2^53), got ${seed}`);
  const high = Math.floor(seed / 2 ** 32);
  let a = (seed >>> 0) ^ (high === 0 ? 0 : hash32(high));
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** A 32-bit integer hash: the murmur3 finalizer of v XOR the golden ratio's bits. */
function hash32(v: number): number {
  let h = (v ^ 0x9e3779b9) >>> 0;
  h = Math.imul(h ^ (h >>> 16), 0x85ebca6b);
  h = Math.imul(h ^ (h >>> 13), 0xc2b2ae35);
  return (h ^ (h >>> 16)) >>> 0;
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

export interface EllipsoidOptions {
  /** Voxels [depth, height, width]. */
  shape: [number, number, number];
  /** Physical voxel size [z, y, x]: anisotropic stacks have a larger z step (light-sheet: e.g. [2, 0.5, 0.5]). */
  spacing: [number, number, number];
  blobs: number;
  /** Radius range in physical units. */
  radius: [number, number];
  noise?: number;
  seed: number;
}

export interface SyntheticVolume {
  /** [D, H, W] intensities in about [0, 1]. */
  image: Float32Array;
  /** [D, H, W] instance labels, 0 = background. */
  labels: Int32Array;
  shape: [number, number, number];
  spacing: [number, number, number];
  count: number;
}

/**
 * Nuclei-like ellipsoids in an anisotropic stack: shapes are drawn in physical space (so an object spans few z slices
 * and many y/x pixels), placed one by one, each claiming only free voxels, as in syntheticBlobs.
 */
export function syntheticEllipsoids(options: EllipsoidOptions): SyntheticVolume {
  const { shape, spacing, blobs, radius, noise = 0.05 } = options;
  const [depth, height, width] = shape;
  const rand = seededRandom(options.seed);
  const gauss = () => Math.sqrt(-2 * Math.log(1 - rand())) * Math.cos(2 * Math.PI * rand());
  const n = depth * height * width;
  const labels = new Int32Array(n);
  const image = new Float32Array(n);
  const extent = shape.map((s, k) => s * spacing[k]);
  let count = 0;
  for (let b = 0; b < blobs; b++) {
    const r = [0, 1, 2].map(() => radius[0] + (radius[1] - radius[0]) * rand());
    const centre = r.map((rk, k) => rk + (extent[k] - 2 * rk) * rand());
    const angle = Math.PI * rand(); // rotation in the y/x plane
    const cos = Math.cos(angle);
    const sin = Math.sin(angle);
    const brightness = 0.6 + 0.4 * rand();
    const lo = centre.map((c, k) => Math.max(0, Math.floor((c - Math.max(...r)) / spacing[k])));
    const hi = centre.map((c, k) => Math.min(shape[k] - 1, Math.ceil((c + Math.max(...r)) / spacing[k])));
    const inside: number[] = [];
    let total = 0;
    for (let z = lo[0]; z <= hi[0]; z++) {
      for (let y = lo[1]; y <= hi[1]; y++) {
        for (let x = lo[2]; x <= hi[2]; x++) {
          const dz = z * spacing[0] - centre[0];
          const dy = y * spacing[1] - centre[1];
          const dx = x * spacing[2] - centre[2];
          const u = (dx * cos + dy * sin) / r[2];
          const v = (-dx * sin + dy * cos) / r[1];
          const d = u * u + v * v + (dz / r[0]) ** 2;
          if (d > 1) continue;
          total++;
          const i = (z * height + y) * width + x;
          if (labels[i] === 0) inside.push(i, d);
        }
      }
    }
    if (total === 0 || inside.length / 2 < 0.7 * total) continue;
    count++;
    for (let i = 0; i < inside.length; i += 2) {
      labels[inside[i]] = count;
      image[inside[i]] = brightness * (1 - 0.4 * inside[i + 1]);
    }
  }
  for (let i = 0; i < n; i++) image[i] += 0.1 + noise * gauss();
  return { image, labels, shape, spacing, count };
}
