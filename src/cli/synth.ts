// `wgseg synth`: writes a synthetic dataset folder (DIR/{train,val,test}/{images,masks}/NAME.tif) of nuclei-like
// touching blobs (2D) or anisotropic ellipsoids (3D), so training, prediction and evaluation can be tried and tested
// without real data.
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { syntheticBlobs, syntheticEllipsoids } from '../train/synthetic.ts';
import { writeLabels } from '../train/io-node.ts';
import { nonNegativeInt, parse, positiveInt, required, UsageError } from './args.ts';
import type { Context } from './main.ts';

export const synthHelp = `wgseg synth --out DIR [options]

Writes a synthetic instance-segmentation dataset: DIR/{train,val,test}/{images,masks}/NAME.tif (uint16 images,
uint16 instance masks; 3D stacks carry ImageJ spacing).

Options:
  --out DIR        output folder (created; existing files with the same names are replaced)
  --ndim 2|3       2D blobs (default) or 3D anisotropic ellipsoids
  --train N        training images (default 24)
  --val N          validation images (default 4)
  --test N         test images (default 8)
  --size H,W       image size in 2D (default 128,128); D,H,W in 3D (default 16,64,64)
  --seed N         seed (default 1); the same seed writes the same files`;

export async function synth(argv: string[], ctx: Context): Promise<number> {
  const { values } = parse('synth', argv, {
    out: { type: 'string' }, ndim: { type: 'string' }, train: { type: 'string' }, val: { type: 'string' },
    test: { type: 'string' }, size: { type: 'string' }, seed: { type: 'string' },
  });
  const out = required('synth', values, 'out');
  const ndim = Number(values.ndim ?? 2);
  if (ndim !== 2 && ndim !== 3) throw new UsageError(`--ndim must be 2 or 3, got ${values.ndim}`);
  const size = (values.size ?? (ndim === 2 ? '128,128' : '16,64,64')).split(',').map(Number);
  if (size.length !== ndim || size.some((s) => !Number.isInteger(s) || s < 8)) {
    throw new UsageError(`--size needs ${ndim} integers >= 8 separated by commas, got ${values.size}`);
  }
  const seed = nonNegativeInt('seed', values.seed) ?? 1;
  const counts = {
    train: nonNegativeInt('train', values.train) ?? 24,
    val: nonNegativeInt('val', values.val) ?? 4,
    test: positiveInt('test', values.test) ?? 8,
  };
  let index = 0;
  for (const [split, count] of Object.entries(counts)) {
    if (count === 0) continue;
    const images = join(out, split, 'images');
    const masks = join(out, split, 'masks');
    await mkdir(images, { recursive: true });
    await mkdir(masks, { recursive: true });
    for (let i = 0; i < count; i++, index++) {
      const name = `${split}_${String(i).padStart(3, '0')}.tif`;
      const s = seed * 100003 + index;
      const sample = ndim === 2
        ? { ...syntheticBlobs({ height: size[0], width: size[1], blobs: Math.round((size[0] * size[1]) / 330), radius: [5, 10], noise: 0.08, seed: s }), shape: size, spacing: [1, 1] }
        : syntheticEllipsoids({ shape: size as [number, number, number], spacing: [2, 0.5, 0.5], blobs: Math.round((size[0] * size[1] * size[2]) / 2000), radius: [3, 5], noise: 0.06, seed: s });
      // Intensities as uint16 through the same stack writer as the masks (what microscopes write).
      const intensities = Int32Array.from(sample.image, (v) => Math.max(0, Math.min(65535, Math.round(v * 20000))));
      await writeLabels(join(images, name), { data: intensities, shape: [...sample.shape], spacing: [...sample.spacing] });
      await writeLabels(join(masks, name), { data: sample.labels, shape: [...sample.shape], spacing: [...sample.spacing] });
    }
  }
  ctx.stdout.write(`wrote ${index} ${ndim}D images (${Object.entries(counts).map(([k, v]) => `${v} ${k}`).join(', ')}) to ${out}\n`);
  return 0;
}
