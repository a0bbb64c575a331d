// The shipped models in pretrained/: each folder is a run folder that `wgseg predict --model pretrained/NAME` opens
// from a fresh clone (config of the right model, weights a few MB), and predicting a BBBC010-like image with it is
// deterministic and puts its foreground on worms. The image is made here (BBBC010 itself is not ours to ship): faint
// arcs and one bright rod in a well, at the intensities of BBBC010's 16-bit images.
import { mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { encode as encodePng } from 'fast-png';
import { afterAll, describe, expect, it } from 'vitest';
import { registry } from '../src/models/registry.ts';
import { readLabels } from '../src/train/io-node.ts';
import { rng } from './support/check.ts';
import { runMain } from './support/cli.ts';

/** The shipped models and the model kind each must hold. */
const shipped = [{ name: 'bbbc010-rdcnet', kind: 'rdcnet' }];

const made: string[] = [];
afterAll(() => made.forEach((dir) => rmSync(dir, { recursive: true, force: true })));

/**
 * A BBBC010-like image and its worm mask: a well (96 ± 3) inside a darker frame (86), three faint worm-like arcs 8 px
 * thick (111) and one bright straight "dead" worm (190), in the proportions of BBBC010's 16-bit counts, so that
 * percentile normalization maps it as it maps BBBC010's images.
 */
function wormImage(height: number, width: number, seed: number): { image: Uint16Array; worms: Uint8Array } {
  const rand = rng(seed);
  const gauss = () => Math.sqrt(-2 * Math.log(1 - rand())) * Math.cos(2 * Math.PI * rand());
  const arcs = [
    { cy: 70, cx: 90, r: 45, from: 0.2, to: 1.9 },
    { cy: 170, cx: 100, r: 55, from: 3.6, to: 5.2 },
    { cy: 120, cx: 220, r: 40, from: 1.6, to: 3.6 },
  ];
  const image = new Uint16Array(height * width);
  const worms = new Uint8Array(height * width);
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      const inWell = y >= 16 && y < height - 16 && x >= 16 && x < width - 16;
      let v = inWell ? 96 : 86;
      for (const a of arcs) {
        let angle = Math.atan2(y - a.cy, x - a.cx);
        if (angle < 0) angle += 2 * Math.PI;
        if (Math.abs(Math.hypot(y - a.cy, x - a.cx) - a.r) <= 4 && angle >= a.from && angle <= a.to) v = 111;
      }
      if (Math.abs(y - 0.5 * x - 20) <= 3 && x >= 200 && x <= 260) v = 190;
      worms[y * width + x] = v > 100 ? 1 : 0;
      image[y * width + x] = Math.round(v + 3 * gauss());
    }
  }
  return { image, worms };
}

const wgseg = (argv: string[]) => runMain(argv, registry);

describe.each(shipped)('pretrained/$name', ({ name, kind }) => {
  const dir = join('pretrained', name);

  it(`is a ${kind} run folder with weights under 5 MB`, () => {
    const config = JSON.parse(readFileSync(join(dir, 'config.json'), 'utf8'));
    expect(config.format).toBe('wgseg-run/1');
    expect(config.model.kind).toBe(kind);
    expect(config.model.tuning).toBeDefined();
    // A shipped config names no folder of the machine it was trained on.
    expect(config.data.dir).not.toMatch(/^\//);
    const bytes = statSync(join(dir, 'best.safetensors')).size;
    expect(bytes).toBeGreaterThan(10_000);
    expect(bytes).toBeLessThan(5 * 2 ** 20);
  });

  it('predicts a worm image deterministically, its foreground on the worms', async () => {
    const root = mkdtempSync(join(tmpdir(), 'wgseg-pretrained-'));
    made.push(root);
    mkdirSync(join(root, 'in'));
    const [height, width] = [240, 320];
    const { image, worms } = wormImage(height, width, 5);
    writeFileSync(join(root, 'in', 'worms.png'), encodePng({ data: image, width, height, channels: 1, depth: 16 }));
    const labels: Int32Array[] = [];
    for (const out of ['a', 'b']) {
      const r = await wgseg(['predict', '--model', dir, '--input', join(root, 'in'), '--out', join(root, out)]);
      expect(r.stderr).not.toMatch(/error/i);
      expect(r.code).toBe(0);
      const l = await readLabels(join(root, out, 'worms.tif'));
      expect(l.shape).toEqual([height, width]);
      labels.push(Int32Array.from(l.data));
    }
    expect(labels[1]).toEqual(labels[0]);
    // The model's foreground holds most worm pixels, and worm pixels are several times more frequent in it than in
    // the image: a model that lost its weights or its normalization labels nothing, or everything alike.
    let hit = 0;
    let foreground = 0;
    labels[0].forEach((v, i) => {
      if (v > 0) foreground++;
      if (v > 0 && worms[i]) hit++;
    });
    const wormPixels = worms.reduce((a, b) => a + b, 0);
    expect(hit / wormPixels).toBeGreaterThan(0.5);
    expect(hit / foreground).toBeGreaterThan(3 * (wormPixels / worms.length));
  }, 120_000);
});
