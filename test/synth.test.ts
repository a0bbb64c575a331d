// `wgseg synth` writes dataset folders that the dataset loader reads back with labels and spacing intact.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { afterAll, describe, expect, it } from 'vitest';
import { main } from '../src/cli/main.ts';
import { loadSplit } from '../src/train/dataset-node.ts';
import { seededRandom, syntheticEllipsoids } from '../src/train/synthetic.ts';
import { registry } from '../src/models/registry.ts';

const dirs: string[] = [];
afterAll(() => Promise.all(dirs.map((d) => rm(d, { recursive: true, force: true }))));

async function run(argv: string[]): Promise<{ code: number; out: string; err: string }> {
  let out = '';
  let err = '';
  const sink = (f: (s: string) => void) => new Writable({ write: (chunk, _e, cb) => (f(String(chunk)), cb()) });
  const code = await main(argv, {
    stdout: sink((s) => (out += s)), stderr: sink((s) => (err += s)), registry,
    engine: () => Promise.reject(new Error('synth must not start the GPU')),
  });
  return { code, out, err };
}

describe('wgseg synth', () => {
  it('writes 2D and 3D datasets that load back with their labels and spacing', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'wgseg-synth-'));
    dirs.push(dir);
    expect((await run(['synth', '--out', join(dir, 'd2'), '--train', '2', '--val', '0', '--test', '1', '--size', '48,40'])).code).toBe(0);
    const train2 = await loadSplit(join(dir, 'd2'), 'train', { ndim: 2 });
    expect(train2.map((s) => s.name)).toEqual(['train_000', 'train_001']);
    expect(train2[0].image.shape).toEqual([1, 48, 40]);
    expect(Math.max(...train2[0].labels!.data)).toBeGreaterThan(2);

    expect((await run(['synth', '--out', join(dir, 'd3'), '--ndim', '3', '--train', '1', '--val', '0', '--test', '1', '--size', '8,32,32'])).code).toBe(0);
    const [s3] = await loadSplit(join(dir, 'd3'), 'train', { ndim: 3 });
    expect(s3.image.shape).toEqual([1, 8, 32, 32]);
    expect(s3.labels!.spacing.map((v) => Number(v.toFixed(4)))).toEqual([2, 0.5, 0.5]);
    expect(Math.max(...s3.labels!.data)).toBeGreaterThan(0);
  });

  it('rejects bad flags with exit code 2', async () => {
    const r = await run(['synth', '--out', '/tmp/never', '--size', '4,4']);
    expect(r.code).toBe(2);
    expect(r.err).toContain('--size needs 2 integers >= 8');
  });

  it('makes anisotropic ellipsoids: objects span few z slices and many y/x pixels', () => {
    const v = syntheticEllipsoids({ shape: [16, 64, 64], spacing: [2, 0.5, 0.5], blobs: 10, radius: [3, 5], seed: 2 });
    expect(v.count).toBeGreaterThan(2);
    const [d, h, w] = v.shape;
    const zs = new Set<number>();
    const ys = new Set<number>();
    for (let i = 0; i < d * h * w; i++) {
      if (v.labels[i] === 1) {
        zs.add(Math.floor(i / (h * w)));
        ys.add(Math.floor(i / w) % h);
      }
    }
    // A radius of 3-5 physical units is 1.5-2.5 slices in z and 6-10 pixels in y.
    expect(zs.size).toBeLessThanOrEqual(6);
    expect(ys.size).toBeGreaterThanOrEqual(8);
  });
});

describe('seededRandom', () => {
  it('is mulberry32 for seeds below 2^32 and hashes the bits above into its state', () => {
    const first = (seed: number) => seededRandom(seed)();
    // mulberry32(0)'s first two draws (the generator as it was before seeds above 2^32 were hashed).
    const zero = seededRandom(0);
    expect([zero(), zero()]).toEqual([0.26642920868471265, 0.0003297457005828619]);
    expect(first(2 ** 32 + 5)).not.toBe(first(5));
    expect(first(2 * 2 ** 32 + 5)).not.toBe(first(2 ** 32 + 5));
    expect(first(7 * 2 ** 32 + 5)).toBe(first(7 * 2 ** 32 + 5));
    expect(() => seededRandom(-1)).toThrow('seededRandom: seed must be an integer in [0, 2^53), got -1');
    expect(() => seededRandom(0.5)).toThrow('got 0.5');
  });
});
