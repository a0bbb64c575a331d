// BranchedERFNet: shapes in 2D and 3D, the paper's parameter count, PyTorch names, the forward pass against an explicit
// composition of the reference's layers, EmbedSeg's output initialization, gradients, training, dropout, inference
// memory, config errors, and (skipped by default) the time of one training step.
import { describe, expect, it } from 'vitest';
import type { Engine } from '../src/engine/engine.ts';
import type { Tensor } from '../src/engine/tensor.ts';
import { batchNorm } from '../src/kernels/batchnorm.ts';
import { conv, convTranspose } from '../src/kernels/conv.ts';
import { add, mul, relu, scale, square, sub } from '../src/kernels/elementwise.ts';
import { Adam } from '../src/kernels/optim.ts';
import { maxPool } from '../src/kernels/pool.ts';
import { mean, sum } from '../src/kernels/reduce.ts';
import { concat } from '../src/kernels/shape.ts';
import { BranchedERFNet, erfnetConfig, erfnetPresets } from '../src/models/erfnet.ts';
import { writeTensors } from '../src/train/checkpoint.ts';
import { relError, rng, uniform } from './support/check.ts';
import { testEngine } from './support/engine.ts';

// Encoder: Down(1,4), Down(4,8), 1 block, Down(8,12), blocks at dilations 2 and 3; decoders: Up, 1 block, Up, 1 block.
const tiny = { widths: [4, 8, 12], encoderBlocks: 1, dilations: [2, 3], dilatedRepeats: 1, decoderBlocks: 1 };

function randomTensor(e: Engine, shape: number[], seed: number): Tensor {
  return e.tensor(Float32Array.from(uniform(shape.reduce((a, b) => a * b, 1), rng(seed))), shape);
}

const tensorsOf = (m: BranchedERFNet) => new Map([...m.namedTensors()].map(([n, t]) => [n, t.tensor]));
const trainable = (m: BranchedERFNet) => [...m.namedTensors()].filter(([, t]) => t.trainable);

/** Channel c of an [N, C, ...] array, for every sample. */
function channel(data: ArrayLike<number>, shape: readonly number[], c: number): number[] {
  const [n, channels] = shape;
  const inner = shape.slice(2).reduce((a, b) => a * b, 1);
  const out: number[] = [];
  for (let i = 0; i < n; i++) for (let k = 0; k < inner; k++) out.push(data[(i * channels + c) * inner + k]);
  return out;
}

describe('erfnet', () => {
  it('outputs [N, Σ outChannels, ...] in 2D and 3D; named errors for bad inputs', async () => {
    const e = await testEngine();
    const m2 = new BranchedERFNet(e, tiny);
    const x2 = randomTensor(e, [2, 1, 16, 24], 1);
    const y2 = m2.forward(x2, true, 0);
    expect(y2.shape).toEqual([2, 5, 16, 24]);
    expect((await y2.data()).every(Number.isFinite)).toBe(true);
    expect(m2.sizeMultiple).toEqual([8, 8]);
    expect(() => m2.forward(randomTensor(e, [1, 1, 12, 16], 2), false, 0)).toThrow('erfnet: spatial sizes must be multiples of 8, got [12, 16]');
    expect(() => m2.forward(randomTensor(e, [1, 2, 8, 8], 2), false, 0)).toThrow('erfnet: input must be [N, 1, H, W], got [1, 2, 8, 8]');
    expect(() => m2.forward(x2, true, -1)).toThrow('erfnet: seed must be a non-negative integer below 2^43, got -1');

    const m3 = new BranchedERFNet(e, { ...tiny, ndim: 3, inChannels: 2, outChannels: [6, 1, 2] });
    const x3 = randomTensor(e, [1, 2, 8, 16, 8], 3);
    const y3 = m3.forward(x3, false, 0);
    expect(y3.shape).toEqual([1, 9, 8, 16, 8]);
    expect((await y3.data()).every(Number.isFinite)).toBe(true);
    const shapes = tensorsOf(m3);
    expect(shapes.get('encoder.initial_block.conv.weight')!.shape).toEqual([2, 2, 3, 3, 3]);
    expect(shapes.get('encoder.layers.1.conv1x1x3_2.weight')!.shape).toEqual([8, 8, 1, 1, 3]);
    expect(shapes.get('decoders.2.output_conv.weight')!.shape).toEqual([4, 2, 2, 2, 2]);
    m2.dispose();
    m3.dispose();
  });

  it('the paper preset has PyTorch BranchedERFNet([4, 1])\'s parameters under the same names', async () => {
    const e = await testEngine();
    const m = new BranchedERFNet(e, erfnetPresets.paper);
    const tensors = m.namedTensors();
    const count = trainable(m).reduce((s, [, t]) => s + t.tensor.size, 0);
    // By hand: encoder 182 + 7088 + 5·49664 + 37184 + 8·197632 = 1 873 830; each decoder 188 912 + 65·n (n = 4, 1).
    // PyTorch counts 645 more (2 252 624): encoder.output_conv (128 → 5, 1x1), which BranchedERFNet never runs.
    expect(count).toBe(2_251_979);
    expect(tensors.get('encoder.initial_block.conv.weight')!.tensor.shape).toEqual([15, 1, 3, 3]);
    expect(tensors.get('encoder.layers.3.conv3x1_1.weight')!.tensor.shape).toEqual([64, 64, 3, 1]);
    expect(tensors.get('encoder.layers.6.conv.weight')!.tensor.shape).toEqual([64, 64, 3, 3]);
    expect(tensors.get('encoder.layers.14.conv1x3_2.bias')!.tensor.shape).toEqual([128]);
    expect(tensors.has('encoder.layers.15.conv1x3_2.bias')).toBe(false);
    expect(tensors.get('decoders.1.layers.3.conv.weight')!.tensor.shape).toEqual([64, 16, 3, 3]);
    expect(tensors.get('decoders.0.output_conv.weight')!.tensor.shape).toEqual([16, 4, 2, 2]);
    expect(tensors.get('decoders.1.layers.5.bn2.running_var')).toMatchObject({ trainable: false });
    const frozen = [...tensors].filter(([, t]) => !t.trainable).map(([n]) => n);
    expect(frozen.every((n) => /\.bn\d?\.running_(mean|var)$/.test(n))).toBe(true);
    m.dispose();

    const m3 = new BranchedERFNet(e, erfnetPresets['paper-3d']);
    // Encoder 452 + 20 912 + 5·74 368 + 110 912 + 8·296 192; decoders 407 344 + 129·n (n = 6, 1). PyTorch: + 903.
    expect(trainable(m3).reduce((s, [, t]) => s + t.tensor.size, 0)).toBe(3_689_243);
    m3.dispose();
  });

  it('the forward pass matches the reference layers composed explicitly (eval mode, 2D)', async () => {
    const e = await testEngine();
    const model = new BranchedERFNet(e, { ...tiny, dilations: [2], outChannels: [3, 2], bnEps: 0.01 });
    const x = randomTensor(e, [2, 1, 16, 8], 5);
    // Training-mode passes move the running statistics away from (0, 1); a random first output conv replaces the
    // zero init, so every channel depends on the whole network.
    e.tidy(() => {
      model.forward(x, true, 1);
      model.forward(randomTensor(e, [2, 1, 16, 8], 6), true, 2);
    });
    const w = tensorsOf(model);
    writeTensors(new Map([['w', w.get('decoders.0.output_conv.weight')!]]), new Map([['w', { shape: [4, 3, 2, 2], data: Float32Array.from(uniform(48, rng(7))) }]]), 'test');
    const p = (name: string) => w.get(name)!;
    const bn = (h: Tensor, name: string) =>
      batchNorm(h, p(`${name}.weight`), p(`${name}.bias`), { runningMean: p(`${name}.running_mean`), runningVar: p(`${name}.running_var`) }, { training: false, eps: 0.01 });
    const down = (h: Tensor, name: string) =>
      relu(bn(concat([conv(h, p(`${name}.conv.weight`), p(`${name}.conv.bias`), { strides: [2, 2], pads: [1, 1, 1, 1] }), maxPool(h, { kernel: 2 })], 1), `${name}.bn`));
    const up = (h: Tensor, name: string) =>
      relu(bn(convTranspose(h, p(`${name}.conv.weight`), p(`${name}.conv.bias`), { strides: [2, 2], pads: [1, 1, 1, 1], outputPadding: [1, 1] }), `${name}.bn`));
    const nb1d = (input: Tensor, name: string, d: number) => {
      const c = (h: Tensor, conv_: string, pads: number[], dilations: number[]) => conv(h, p(`${name}.${conv_}.weight`), p(`${name}.${conv_}.bias`), { pads, dilations });
      let h = c(input, 'conv3x1_1', [1, 0, 1, 0], [1, 1]);
      h = relu(h);
      h = c(h, 'conv1x3_1', [0, 1, 0, 1], [1, 1]);
      h = relu(bn(h, `${name}.bn1`));
      h = c(h, 'conv3x1_2', [d, 0, d, 0], [d, 1]);
      h = relu(h);
      h = c(h, 'conv1x3_2', [0, d, 0, d], [1, d]);
      h = bn(h, `${name}.bn2`);
      return relu(add(h, input));
    };
    const reference = e.noGrad(() => {
      let h = down(x, 'encoder.initial_block');
      h = down(h, 'encoder.layers.0');
      h = nb1d(h, 'encoder.layers.1', 1);
      h = down(h, 'encoder.layers.2');
      h = nb1d(h, 'encoder.layers.3', 2);
      const branches = [0, 1].map((b) => {
        let g = up(h, `decoders.${b}.layers.0`);
        g = nb1d(g, `decoders.${b}.layers.1`, 1);
        g = up(g, `decoders.${b}.layers.2`);
        g = nb1d(g, `decoders.${b}.layers.3`, 1);
        return convTranspose(g, p(`decoders.${b}.output_conv.weight`), p(`decoders.${b}.output_conv.bias`), { strides: [2, 2] });
      });
      return concat(branches, 1);
    });
    const got = await e.noGrad(() => model.forward(x, false, 0)).data();
    expect(relError(got, await reference.data())).toBeLessThan(1e-5);
    model.dispose();
  });

  it('starts with offsets exactly 0 and sigmas exactly 1 for any input (EmbedSeg init_output)', async () => {
    const e = await testEngine();
    for (const [ndim, shape] of [[2, [2, 1, 16, 16]], [3, [1, 1, 8, 8, 16]]] as const) {
      const model = new BranchedERFNet(e, { ...tiny, ndim });
      for (const training of [false, true]) {
        const y = model.forward(randomTensor(e, [...shape], 11), training, 0);
        const data = await y.data();
        for (let c = 0; c < 2 * ndim; c++) expect(new Set(channel(data, y.shape, c))).toEqual(new Set([c < ndim ? 0 : 1]));
        // The seed branch keeps PyTorch's default init and varies over the image.
        expect(new Set(channel(data, y.shape, 2 * ndim)).size).toBeGreaterThan(10);
      }
      model.dispose();
    }
  });

  it('backward gives a finite gradient to every trainable tensor, and reaches the first layer', async () => {
    const e = await testEngine();
    const model = new BranchedERFNet(e, { ...tiny, ndim: 3, inChannels: 2 });
    const x = randomTensor(e, [2, 2, 8, 8, 8], 13);
    const weights = randomTensor(e, [2, 7, 8, 8, 8], 14);
    e.tidy(() => sum(mul(model.forward(x, true, 3), weights)).backward());
    const params = trainable(model);
    expect(params.length).toBeGreaterThan(50);
    for (const [name, { tensor }] of params) {
      expect(tensor.grad, name).not.toBeNull();
      expect((await tensor.grad!.data()).every(Number.isFinite), name).toBe(true);
    }
    const first = await model.namedTensors().get('encoder.initial_block.conv.weight')!.tensor.grad!.data();
    expect(first.some((g) => g !== 0)).toBe(true);
    for (const [, { tensor }] of params) {
      tensor.grad!.dispose();
      tensor.grad = null;
    }
    model.dispose();
  });

  it('a few Adam steps reduce a regression loss', async () => {
    const e = await testEngine();
    e.poison = false;
    const model = new BranchedERFNet(e, { ...tiny, dropout: [0, 0] });
    const x = randomTensor(e, [2, 1, 16, 16], 17);
    // A target the network can reach: a smooth function of the input per channel.
    const target = e.noGrad(() => concat([0.5, -0.3, 1.2, 0.8, -1].map((s) => scale(x, s)), 1));
    const opt = new Adam(trainable(model).map(([, t]) => t.tensor), { lr: 1e-2 });
    const losses: number[] = [];
    for (let step = 0; step < 12; step++) {
      const loss = e.tidy(() => {
        const l = mean(square(sub(model.forward(x, true, step), target)));
        l.backward();
        opt.step();
        opt.zeroGrad();
        return l;
      });
      losses.push(await loss.item());
      loss.dispose();
    }
    expect(losses.every(Number.isFinite)).toBe(true);
    expect(losses[11]).toBeLessThan(losses[0] * 0.7);
    opt.dispose();
    model.dispose();
    e.poison = true;
  });

  it('eval mode is deterministic; training mode draws channel dropout from the seed', async () => {
    const e = await testEngine();
    const model = new BranchedERFNet(e, { ...tiny, dropout: [0.3, 0.3] });
    const x = randomTensor(e, [2, 1, 16, 16], 19);
    const run = (training: boolean, seed: number) => e.tidy(() => model.forward(x, training, seed)).data();
    const evalA = await run(false, 0);
    expect(Array.from(await run(false, 5))).toEqual(Array.from(evalA));
    // Training-mode outputs depend on the batch statistics only, so the same seed gives the same output.
    const trainA = await run(true, 1);
    expect(Array.from(await run(true, 1))).toEqual(Array.from(trainA));
    expect(relError(await run(true, 2), trainA)).toBeGreaterThan(1e-3);
    model.dispose();

    const still = new BranchedERFNet(e, { ...tiny, dropout: [0, 0] });
    const run0 = (seed: number) => e.tidy(() => still.forward(x, true, seed)).data();
    expect(Array.from(await run0(2))).toEqual(Array.from(await run0(1)));
    still.dispose();
  });

  it('without gradients only the output stays alive, and it matches the recorded forward', async () => {
    const e = await testEngine();
    const model = new BranchedERFNet(e, tiny);
    const x = randomTensor(e, [1, 1, 32, 32], 21);
    const recorded = e.tidy(() => model.forward(x, false, 0));
    await e.sync();
    const before = e.stats().liveBytes;
    const out = e.noGrad(() => model.forward(x, false, 0));
    expect(e.stats().liveBytes - before).toBe(out.byteLength);
    expect(Array.from(await out.data())).toEqual(Array.from(await recorded.data()));
    out.dispose();
    recorded.dispose();
    model.dispose();
  });

  it('configs: presets, defaults and named errors', () => {
    expect(erfnetConfig({})).toEqual(erfnetPresets.paper);
    expect(erfnetConfig({ ndim: 3 }).outChannels).toEqual([6, 1]);
    expect(erfnetPresets.paper).toMatchObject({
      widths: [16, 64, 128], encoderBlocks: 5, dilations: [2, 4, 8, 16], dilatedRepeats: 2, decoderBlocks: 2, dropout: [0.03, 0.3], bnEps: 1e-3, bnMomentum: 0.1,
    });
    expect(erfnetPresets['small-3d']).toMatchObject({ ndim: 3, outChannels: [6, 1], widths: [8, 32, 48] });
    expect(() => erfnetConfig({ width: [8, 16, 32] })).toThrow('erfnet: unknown config field "width"');
    expect(() => erfnetConfig({ widths: [16, 16, 32] })).toThrow('erfnet: widths must be 3 increasing integers above inChannels (1), got [16,16,32]');
    expect(() => erfnetConfig({ inChannels: 16 })).toThrow('erfnet: widths must be 3 increasing integers above inChannels (16), got [16,64,128]');
    expect(() => erfnetConfig({ ndim: 3, outChannels: [3, 1] })).toThrow('erfnet: outChannels must be a non-empty list of positive integers, the first above 3 (3 offsets, then sigmas), got [3,1]');
    expect(() => erfnetConfig({ dropout: [0.1, 1] })).toThrow('erfnet: dropout must be 2 rates in [0, 1) (blocks at widths[1] and widths[2]), got [0.1,1]');
    expect(() => erfnetConfig({ encoderBlocks: 1.5 })).toThrow('erfnet: encoderBlocks must be a non-negative integer, got 1.5');
    expect(() => erfnetConfig({ dilations: [2, 0] })).toThrow('erfnet: dilations must be a list of positive integers, got [2,0]');
    expect(() => erfnetConfig({ ndim: 1 })).toThrow('erfnet: ndim must be 2 or 3, got 1');
  });

  // Slow on a software GPU: WGSEG_ERFNET_STEP=1 npx vitest run test/erfnet.test.ts -t 'training step'.
  it.skipIf(!process.env.WGSEG_ERFNET_STEP)('time of one training step (forward, backward, Adam): small at 128², paper at 256², batch 2', async () => {
    const e = await testEngine();
    e.poison = false;
    for (const [preset, size] of [['small', 128], ['paper', 256]] as const) {
      const model = new BranchedERFNet(e, erfnetPresets[preset]);
      const x = randomTensor(e, [2, 1, size, size], 23);
      const opt = new Adam(trainable(model).map(([, t]) => t.tensor), { lr: 1e-3 });
      const times: number[] = [];
      for (let step = 0; step < 3; step++) {
        await e.sync();
        e.resetPeak();
        const t0 = performance.now();
        const loss = e.tidy(() => {
          const l = mean(square(model.forward(x, true, step)));
          l.backward();
          opt.step();
          opt.zeroGrad();
          return l;
        });
        expect(Number.isFinite(await loss.item())).toBe(true);
        await e.sync();
        times.push(performance.now() - t0);
        loss.dispose();
      }
      const peak = e.stats().peakLiveBytes / 2 ** 20;
      console.log(`erfnet ${preset} [2, 1, ${size}, ${size}] step: ${times.map((t) => (t / 1000).toFixed(2)).join(', ')} s (first includes shader compilation), peak ${peak.toFixed(0)} MiB live`);
      opt.dispose();
      model.dispose();
      x.dispose();
    }
  }, 1_800_000);
});
