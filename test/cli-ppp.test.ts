// PatchPerPix through the wgseg command line, with its tiny test configs: 2D crossing worms given as BBBC010-style
// per-instance masks (train with the number-of-instances head, predict, evaluate on whole worm masks),
// and 3D synthetic nuclei from `wgseg synth --ndim 3`.
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import type { ModelRegistry } from '../src/models/model.ts';
import { createPatchPerPix, pppSpec } from '../src/models/ppp.ts';
import { readLabels, writePng } from '../src/train/io-node.ts';
import { syntheticWorms } from '../src/train/synthetic-worms.ts';
import { runMain } from './support/cli.ts';

const made: string[] = [];
const tmp = () => {
  made.push(mkdtempSync(join(tmpdir(), 'wgseg-ppp-')));
  return made.at(-1)!;
};
afterAll(() => made.forEach((dir) => rmSync(dir, { recursive: true, force: true })));

// The real presets' tiny test configs (src/models/ppp.ts), under the registry the CLI looks them up in.
const tiny: ModelRegistry = {
  factories: { ppp: createPatchPerPix },
  presets: { ppp: Object.fromEntries(Object.entries(pppSpec.presets).map(([name, c]) => [name, { ...pppSpec.tiny(c), minSize: 0 }])) },
  recipes: { ppp: pppSpec.recipe },
  presetsByNdim: { ppp: pppSpec.presetsByNdim },
};

/** A BBBC010-like folder: images of crossing worms, and per split an `instances` folder with one mask per worm. */
async function worms(dir: string, counts: Record<string, number>, size = 40): Promise<{ dir: string; layered: number }> {
  let seed = 3;
  let layered = 0;
  for (const [split, n] of Object.entries(counts)) {
    for (const sub of ['images', 'instances']) mkdirSync(join(dir, split, sub), { recursive: true });
    for (let i = 0; i < n; i++) {
      const w = syntheticWorms({ height: size, width: size, worms: 3, length: [20, 30], radius: [2, 3], seed: seed++ });
      const pixels = size * size;
      const grey = new Uint8Array(pixels);
      for (let p = 0; p < pixels; p++) grey[p] = w.labels.data[p] > 0 ? 200 : 40;
      await writePng(join(dir, split, 'images', `img${i}.png`), { data: grey, width: size, height: size, channels: 1 });
      const ids = new Set(Array.from(w.labels.data).filter((v) => v > 0));
      for (const id of ids) {
        const mask = new Uint8Array(pixels);
        for (let k = 0; k < w.labels.layers; k++) for (let p = 0; p < pixels; p++) if (w.labels.data[k * pixels + p] === id) mask[p] = 255;
        await writePng(join(dir, split, 'instances', `img${i}_${id}.png`), { data: mask, width: size, height: size, channels: 1 });
      }
      if (w.labels.layers > 1) layered++;
    }
  }
  return { dir, layered };
}

describe('PatchPerPix through the CLI', () => {
  it('2D crossing worms: trains with the number-of-instances head, predicts label stacks, evaluates on whole worms', async () => {
    const { dir: data, layered } = await worms(tmp(), { train: 2, val: 1, test: 2 });
    expect(layered).toBeGreaterThan(0);
    const config = join(tmp(), 'ppp.json');
    writeFileSync(config, JSON.stringify({ train: { logEvery: 1, validateEvery: 2 }, data: { patchSize: [32, 32] } }));
    const runDir = join(tmp(), 'run');
    const t = await runMain(['train', '--model', 'ppp', '--preset', 'paper', '--data', data, '--out', runDir, '--config', config, '--steps', '2'], tiny);
    expect(t.stderr).not.toContain('wgseg train:');
    expect(t.code).toBe(0);
    // The paper preset learns overlaps: its terms are the decoder's patch loss and the number-of-instances classes.
    expect(t.stderr).toMatch(/patch [\d.]+/);
    expect(t.stderr).toMatch(/instances [\d.]+/);
    const state = JSON.parse(readFileSync(join(runDir, 'state.json'), 'utf8'));
    expect(Object.keys(state.terms).sort()).toEqual(['instances', 'patch']);
    const out = join(tmp(), 'pred');
    const p = await runMain(['predict', '--model', runDir, '--input', join(data, 'test', 'images'), '--out', out], tiny);
    expect(p.stderr).not.toContain('wgseg predict:');
    expect(p.code).toBe(0);
    // Label stacks beside the flat images for the images where the model finds overlaps (after 2 steps, maybe none;
    // test/ppp.test.ts's oracle checks that overlaps come out as layers).
    expect(readdirSync(out).filter((f) => f !== 'stacks').sort()).toEqual(['img0.tif', 'img1.tif']);
    if (existsSync(join(out, 'stacks'))) for (const f of readdirSync(join(out, 'stacks'))) expect(['img0.tif', 'img1.tif']).toContain(f);
    const flat = await readLabels(join(out, 'img0.tif'), { ndim: 2 });
    expect(flat.shape).toEqual([40, 40]);
    const ev = await runMain(['eval', '--gt', join(data, 'test', 'instances'), '--pred', out], tiny);
    expect(ev.code).toBe(0);
    expect(Object.keys(JSON.parse(ev.stdout))).toContain('apDsb50');
  });

  it('3D nuclei from wgseg synth: trains the small-3d preset and predicts volumes', async () => {
    const data = join(tmp(), 'syn3d');
    expect((await runMain(['synth', '--out', data, '--ndim', '3', '--train', '2', '--val', '1', '--test', '1', '--size', '8,32,32'], tiny)).code).toBe(0);
    const config = join(tmp(), 'ppp3d.json');
    writeFileSync(config, JSON.stringify({ train: { logEvery: 1, validateEvery: 2 }, data: { patchSize: [8, 24, 24] } }));
    const runDir = join(tmp(), 'run3d');
    const t = await runMain(['train', '--model', 'ppp', '--preset', 'small-3d', '--data', data, '--out', runDir, '--config', config, '--steps', '2'], tiny);
    expect(t.stderr).not.toContain('wgseg train:');
    expect(t.code).toBe(0);
    const out = join(tmp(), 'pred3d');
    const p = await runMain(['predict', '--model', runDir, '--input', join(data, 'test', 'images'), '--out', out], tiny);
    expect(p.code).toBe(0);
    const labels = await readLabels(join(out, 'test_000.tif'), { ndim: 3 });
    expect(labels.shape).toEqual([8, 32, 32]);
    // An untrained model may paint overlaps: then a label stack stands beside the flat volume.
    if (existsSync(join(out, 'stacks'))) expect(readdirSync(join(out, 'stacks'))).toEqual(['test_000.tif']);
    expect((await runMain(['eval', '--gt', join(data, 'test', 'masks'), '--pred', out], tiny)).code).toBe(0);
  });
});
