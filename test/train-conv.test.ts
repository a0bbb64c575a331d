// A small conv net (conv, batch norm, max pool, upsample, concat, log-softmax) trains end to end on synthetic blobs.
import { describe, expect, it } from 'vitest';
import { Adam, syntheticBlobs } from '../src/index.ts';
import { nllLoss, TinyUNet } from '../examples/tiny-unet.ts';
import { testEngine } from './support/engine.ts';

describe('synthetic blobs', () => {
  it('are seeded, labelled 1..count and brighter inside', () => {
    const a = syntheticBlobs({ height: 48, width: 40, blobs: 8, radius: [3, 7], seed: 5 });
    const b = syntheticBlobs({ height: 48, width: 40, blobs: 8, radius: [3, 7], seed: 5 });
    expect(a.labels).toEqual(b.labels);
    expect(a.count).toBeGreaterThan(3);
    const ids = new Set(a.labels);
    expect([...ids].sort((p, q) => p - q)).toEqual([...Array(a.count + 1).keys()]);
    let fg = 0;
    let bg = 0;
    a.labels.forEach((l, i) => (l ? (fg += a.image[i]) : (bg += a.image[i])));
    const nFg = a.labels.filter((l) => l > 0).length;
    expect(fg / nFg).toBeGreaterThan(bg / (a.labels.length - nFg) + 0.3);
    expect(syntheticBlobs({ height: 48, width: 40, blobs: 8, radius: [3, 7], seed: 6 }).labels).not.toEqual(a.labels);
  });
});

describe('conv net training', () => {
  it('a tiny U-Net learns to segment blobs (loss falls below 0.15)', async () => {
    const e = await testEngine();
    e.poison = false;
    const size = 32;
    const n = 2;
    const batch = (seed: number) => {
      const x = new Float32Array(n * size * size);
      const target = new Float32Array(n * 2 * size * size);
      for (let i = 0; i < n; i++) {
        const img = syntheticBlobs({ height: size, width: size, blobs: 6, radius: [3, 6], seed: seed * 10 + i });
        x.set(img.image, i * size * size);
        img.labels.forEach((l, p) => (target[(i * 2 + (l > 0 ? 1 : 0)) * size * size + p] = 1));
      }
      return { x: e.tensor(x, [n, 1, size, size]), target: e.tensor(target, [n, 2, size, size]) };
    };
    const net = new TinyUNet(e, 8, 3);
    const opt = new Adam(net.parameters, { lr: 5e-3 });
    const before = e.stats().liveTensors;
    const losses: number[] = [];
    for (let step = 0; step < 40; step++) {
      const loss = e.tidy(() => {
        const { x, target } = batch(step);
        const l = nllLoss(net.forward(x, true), target);
        l.backward();
        opt.step();
        opt.zeroGrad();
        return l;
      });
      if (step % 10 === 0 || step === 39) losses.push(await loss.item());
      loss.dispose();
    }
    expect(losses[0]).toBeGreaterThan(0.4);
    expect(losses[losses.length - 1]).toBeLessThan(0.15);
    // Optimizer moments are the only tensors a step may add.
    expect(e.stats().liveTensors).toBe(before + 2 * net.parameters.length);
    opt.dispose();
    net.dispose();
  });
});
