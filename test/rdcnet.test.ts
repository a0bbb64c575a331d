// RDCNet: shapes in 2D and anisotropic 3D, the sSDC's interleaved channel order against an explicit construction,
// training on synthetic blobs, checkpoint names, postprocessing through Hough voting, and inference memory that does
// not grow with the number of iterations.
import { describe, expect, it } from 'vitest';
import { Adam, syntheticBlobs, type Engine, type Tensor } from '../src/index.ts';
import { conv, convTranspose } from '../src/kernels/conv.ts';
import { add, leakyRelu } from '../src/kernels/elementwise.ts';
import { concat, slice } from '../src/kernels/shape.ts';
import { coordinateGrid, RDCNet, rdcnetConfig, rdcnetPresets } from '../src/models/rdcnet.ts';
import { modelFactories, presetConfig, registry } from '../src/models/registry.ts';
import { readTensors, writeTensors } from '../src/train/checkpoint.ts';
import { relError, rng, uniform } from './support/check.ts';
import { testEngine } from './support/engine.ts';
import { sumTerms } from '../src/train/trainer.ts';

const tiny = { groups: 2, channelsPerGroup: 3, inputChannels: 4, dilations: [1, 2, 3], iterations: 2, stride: [2, 2], margin: 2, votingWindow: 2, dropout: 0 };

function randomImages(e: Engine, shape: number[], seed: number): Tensor {
  return e.tensor(Float32Array.from(uniform(shape.reduce((a, b) => a * b, 1), rng(seed))), shape);
}

describe('rdcnet', () => {
  it('outputs [N, ndim + classes, ...] in 2D and anisotropic 3D', async () => {
    const e = await testEngine();
    const m2 = new RDCNet(e, tiny);
    const x2 = randomImages(e, [2, 1, 12, 16], 1);
    const y2 = m2.infer(x2);
    expect(y2.shape).toEqual([2, 4, 12, 16]);
    expect((await y2.data()).every(Number.isFinite)).toBe(true);
    expect(m2.sizeMultiple).toEqual([2, 2]);
    expect(() => m2.infer(randomImages(e, [1, 1, 13, 16], 2))).toThrow('rdcnet: infer needs spatial sizes that are multiples of [2, 2], got [13, 16]');

    const m3 = new RDCNet(e, { ...tiny, ndim: 3, stride: [1, 2, 2], inChannels: 2 });
    const x3 = randomImages(e, [1, 2, 3, 8, 6], 3);
    const y3 = m3.infer(x3);
    expect(y3.shape).toEqual([1, 5, 3, 8, 6]);
    expect((await y3.data()).every(Number.isFinite)).toBe(true);
    // Kernel max(3, s) in, max(3, 2s) out: 3 along z (stride 1), 3 and 4 in-plane.
    expect(m3.namedTensors().get('input.weight')!.tensor.shape).toEqual([4, 2, 3, 3, 3]);
    expect(m3.namedTensors().get('output.weight')!.tensor.shape).toEqual([6, 5, 3, 4, 4]);
    for (const t of [x2, y2, x3, y3]) t.dispose();
    m2.dispose();
    m3.dispose();
  });

  it('the block matches explicit per-dilation convs interleaved by group (and not by dilation)', async () => {
    const e = await testEngine();
    const c = { ...tiny, leakySlope: 0.3 };
    const model = new RDCNet(e, c);
    const w = (name: string) => model.namedTensors().get(name)!.tensor;
    const x = randomImages(e, [1, 1, 8, 10], 5);
    // Bias the sSDC per channel so that a wrong order changes the result even where activations are alike.
    writeTensors(new Map([['b', w('block.sSDC.bias')]]), new Map([['b', { shape: [6], data: Float32Array.from([0.3, -0.2, 0.5, -0.4, 0.1, 0.7]) }]]), 'test');
    const reference = (byGroup: boolean) =>
      e.noGrad(() => {
        const input = conv(x, w('input.weight'), w('input.bias'), { strides: [2, 2], pads: [0, 0, 1, 1] });
        let y = e.zeros([1, 6, 4, 5]);
        for (let i = 0; i < c.iterations; i++) {
          const h = leakyRelu(conv(leakyRelu(concat([input, y], 1), 0.3), w('block.dense.weight'), w('block.dense.bias')), 0.3);
          const outs = c.dilations.map((d) => conv(h, w('block.sSDC.weight'), w('block.sSDC.bias'), { pads: [d, d, d, d], dilations: [d, d], group: 2 }));
          const parts: Tensor[] = [];
          const group = (o: Tensor, g: number) => slice(o, [0, 3 * g, 0, 0], [1, 3, 4, 5]);
          if (byGroup) for (let g = 0; g < 2; g++) for (const o of outs) parts.push(group(o, g));
          else for (const o of outs) for (let g = 0; g < 2; g++) parts.push(group(o, g));
          const delta = conv(leakyRelu(concat(parts, 1), 0.3), w('block.sSDC.reduce.weight'), w('block.sSDC.reduce.bias'), { group: 2 });
          y = add(y, delta);
        }
        return convTranspose(leakyRelu(y, 0.3), w('output.weight'), w('output.bias'), { strides: [2, 2], pads: [1, 1, 1, 1] });
      });
    const got = await model.infer(x).data();
    expect(relError(got, await reference(true).data())).toBeLessThan(1e-5);
    expect(relError(got, await reference(false).data())).toBeGreaterThan(1e-3);
    model.dispose();
  });

  it('the loss falls over a few Adam steps on synthetic blobs (sizes not a multiple of the stride)', async () => {
    const e = await testEngine();
    e.poison = false;
    const h = 30;
    const wd = 34;
    const images = new Float32Array(2 * h * wd);
    const labels = new Int32Array(2 * h * wd);
    for (let i = 0; i < 2; i++) {
      const b = syntheticBlobs({ height: h, width: wd, blobs: 6, radius: [3, 6], seed: 40 + i });
      images.set(b.image, i * h * wd);
      labels.set(b.labels, i * h * wd);
    }
    labels[5] = -1;
    const batch = { images: e.tensor(images, [2, 1, h, wd]), labels: e.tensor(labels, [2, 1, h, wd]), spacing: [1, 1] };
    const model = new RDCNet(e, { ...tiny, groups: 4, channelsPerGroup: 4, inputChannels: 8, dilations: [1, 2, 4], iterations: 3, margin: 3, dropout: 0.1 });
    const params = [...model.namedTensors().values()].map((t) => t.tensor);
    const opt = new Adam(params, { lr: 5e-3 });
    const losses: number[] = [];
    for (let step = 0; step < 12; step++) {
      const loss = e.tidy(() => {
        const { total: l } = sumTerms(model.loss(batch, step), 'rdcnet');
        l.backward();
        opt.step();
        opt.zeroGrad();
        return l;
      });
      losses.push(await loss.item());
      loss.dispose();
    }
    expect(losses.every(Number.isFinite)).toBe(true);
    const first = (losses[0] + losses[1]) / 2;
    const last = (losses[10] + losses[11]) / 2;
    expect(last).toBeLessThan(first * 0.85);
    opt.dispose();
    model.dispose();
    batch.images.dispose();
    batch.labels.dispose();
    e.poison = true;
  });

  it('namedTensors: stable names; weights set by name reproduce the output', async () => {
    const e = await testEngine();
    const a = new RDCNet(e, { ...tiny, seed: 1 });
    const b = new RDCNet(e, { ...tiny, seed: 2 });
    expect([...a.namedTensors().keys()]).toEqual([
      'input.weight', 'input.bias', 'block.dense.weight', 'block.dense.bias', 'block.sSDC.weight', 'block.sSDC.bias',
      'block.sSDC.reduce.weight', 'block.sSDC.reduce.bias', 'output.weight', 'output.bias',
    ]);
    expect([...a.namedTensors().values()].every((t) => t.trainable)).toBe(true);
    const x = randomImages(e, [1, 1, 8, 8], 7);
    const ya = await a.infer(x).data();
    expect(relError(await b.infer(x).data(), ya)).toBeGreaterThan(1e-2);
    const tensorsOf = (m: RDCNet) => new Map([...m.namedTensors()].map(([n, t]) => [n, t.tensor]));
    writeTensors(tensorsOf(b), await readTensors(tensorsOf(a)), 'a');
    expect(relError(await b.infer(x).data(), ya)).toBeLessThan(1e-6);
    a.dispose();
    b.dispose();
  });

  it('inference memory does not grow with the number of iterations', async () => {
    const e = await testEngine();
    const x = randomImages(e, [1, 1, 32, 32], 9);
    const peakOf = (iterations: number) => {
      const model = new RDCNet(e, { ...tiny, iterations });
      const before = e.stats().liveBytes;
      e.resetPeak();
      const out = model.infer(x);
      const peak = e.stats().peakLiveBytes - before;
      out.dispose();
      model.dispose();
      return peak;
    };
    const state = 1 * 6 * 16 * 16 * 4;
    const three = peakOf(3);
    const eight = peakOf(8);
    expect(three).toBeGreaterThan(state);
    expect(Math.abs(eight - three)).toBeLessThan(state);
    await e.sync();
    x.dispose();
  });

  it('per-iteration outputs (Fig. 1): one foreground and embedding per iteration, the last one matching infer', async () => {
    const e = await testEngine();
    const model = new RDCNet(e, { ...tiny, iterations: 3 });
    const x = randomImages(e, [1, 1, 10, 8], 11);
    const steps = model.iterationOutputs(x, [0.5, 2]);
    expect(steps.length).toBe(3);
    for (const s of steps) {
      expect(s.foreground.shape).toEqual([1, 1, 10, 8]);
      expect(s.embeddings.shape).toEqual([1, 2, 10, 8]);
    }
    const raw = await model.infer(x).data();
    const fg = await steps[2].foreground.data();
    const emb = await steps[2].embeddings.data();
    const n = 80;
    const expectedFg = Array.from({ length: n }, (_, i) => 1 / (1 + Math.exp(raw[2 * n + i] - raw[3 * n + i])));
    expect(relError(fg, expectedFg)).toBeLessThan(1e-5);
    // Embedding channel 1 (x) = raw offset + column × 2.
    const expectedX = Array.from({ length: n }, (_, i) => raw[n + i] + (i % 8) * 2);
    expect(relError(emb.slice(n), expectedX)).toBeLessThan(1e-5);
    for (const s of steps) {
      s.foreground.dispose();
      s.embeddings.dispose();
    }
    model.dispose();
  });

  it('postprocess adds the coordinate grid in physical units and votes instances', async () => {
    const e = await testEngine();
    const model = new RDCNet(e, { ...tiny, votingWindow: 3, minCount: 3 });
    // Two 5x5 squares on a 12x20 image with spacing (1, 0.5): offsets point every square pixel at its centre.
    const [h, w] = [12, 20];
    const spacing = [1, 0.5];
    const raw = new Float32Array(4 * h * w);
    const truth = new Int32Array(h * w);
    const squares = [[2, 3], [5, 12]];
    squares.forEach(([top, left], k) => {
      for (let y = top; y < top + 5; y++) {
        for (let x = left; x < left + 5; x++) {
          const i = y * w + x;
          truth[i] = k + 1;
          raw[i] = (top + 2 - y) * spacing[0];
          raw[h * w + i] = (left + 2 - x) * spacing[1];
          raw[3 * h * w + i] = 5;
        }
      }
    });
    const outputs = e.tensor(raw, [1, 4, h, w]);
    const labels = await model.postprocess(outputs, spacing);
    expect(Array.from(labels)).toEqual(Array.from(truth));
    const wrong = e.zeros([1, 3, h, w]);
    await expect(model.postprocess(wrong, spacing)).rejects.toThrow('rdcnet: postprocess needs outputs [1, 4, ...spatial], got [1, 3, 12, 20]');
    outputs.dispose();
    wrong.dispose();
    model.dispose();
  });

  it('coordinateGrid holds index × spacing per axis', async () => {
    const e = await testEngine();
    const g = coordinateGrid(e, [2, 2, 3], [2, 1, 0.5]);
    expect(Array.from(await g.data())).toEqual([
      0, 0, 0, 0, 0, 0, 2, 2, 2, 2, 2, 2,
      0, 0, 0, 1, 1, 1, 0, 0, 0, 1, 1, 1,
      0, 0.5, 1, 0, 0.5, 1, 0, 0.5, 1, 0, 0.5, 1,
    ]);
    g.dispose();
  });

  it('configs: presets, defaults and named errors', () => {
    expect(rdcnetConfig({}).groups).toBe(8);
    expect(rdcnetConfig({ ndim: 3 }).stride).toEqual([1, 8, 8]);
    expect(rdcnetPresets.paper).toMatchObject({ groups: 8, channelsPerGroup: 64, stride: [4, 4], iterations: 5, dilations: [1, 2, 4, 8, 16] });
    expect(presetConfig('rdcnet', 'small')).toEqual(rdcnetPresets.small);
    expect(registry.factories).toBe(modelFactories);
    expect(() => presetConfig('rdcnet', 'huge')).toThrow('rdcnet has no preset "huge" (known: paper, paper-3d, small, small-3d)');
    expect(() => rdcnetConfig({ stride: [4, 4, 4] })).toThrow('rdcnet: stride must be 2 positive integers (one per spatial axis), got [4,4,4]');
    expect(() => rdcnetConfig({ groupz: 2 })).toThrow('rdcnet: unknown config field "groupz"');
    expect(() => rdcnetConfig({ dropout: 1 })).toThrow('rdcnet: dropout must be in [0, 1), got 1');
  });

  // Minutes on a software GPU: run with WGSEG_PAPER_STEP=1 npx vitest run test/rdcnet.test.ts -t 'paper preset'.
  it.skipIf(!process.env.WGSEG_PAPER_STEP)('one training step of the paper preset at 256x256, batch 2', async () => {
    const e = await testEngine();
    e.poison = false;
    const [n, size] = [2, 256];
    const images = new Float32Array(n * size * size);
    const labels = new Int32Array(n * size * size);
    for (let i = 0; i < n; i++) {
      const b = syntheticBlobs({ height: size, width: size, blobs: 60, radius: [6, 14], seed: i });
      images.set(b.image, i * size * size);
      labels.set(b.labels, i * size * size);
    }
    const batch = { images: e.tensor(images, [n, 1, size, size]), labels: e.tensor(labels, [n, 1, size, size]), spacing: [1, 1] };
    const model = new RDCNet(e, presetConfig('rdcnet', 'paper'));
    const opt = new Adam([...model.namedTensors().values()].map((t) => t.tensor), { lr: 1e-3 });
    await e.sync();
    e.resetPeak();
    const t0 = performance.now();
    const loss = e.tidy(() => {
      const { total: l } = sumTerms(model.loss(batch, 0), 'rdcnet');
      l.backward();
      opt.step();
      return l;
    });
    const value = await loss.item();
    await e.sync();
    const stats = e.stats();
    console.log(`paper preset step: ${((performance.now() - t0) / 1000).toFixed(1)} s, loss ${value.toFixed(4)}, peak ${(stats.peakLiveBytes / 2 ** 20).toFixed(0)} MiB live`);
    expect(Number.isFinite(value)).toBe(true);
    loss.dispose();
    opt.dispose();
    model.dispose();
  }, 1_800_000);
});
