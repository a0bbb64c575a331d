// PatchPerPix's U-Net: configs and the DSB up-path widths, the size rules against a brute-force walk through the
// levels (2D, 3D, anisotropic 3D), shapes and names, the forward pass and the gradients of every parameter and of the
// input against a float64 reference (central differences), translation equivariance under shifts by the pooling
// product (what exact tiled prediction relies on), a few Adam steps, and no leaked tensors.
import { describe, expect, it } from 'vitest';
import type { Engine } from '../src/engine/engine.ts';
import type { Tensor } from '../src/engine/tensor.ts';
import { conv } from '../src/kernels/conv.ts';
import { square, sub } from '../src/kernels/elementwise.ts';
import { heNormal, zerosInit } from '../src/kernels/init.ts';
import { Adam } from '../src/kernels/optim.ts';
import { mean } from '../src/kernels/reduce.ts';
import { slice } from '../src/kernels/shape.ts';
import {
  UNet, unetConfig, unetGeometry, unetInputSizeFor, unetOutputSize, unetPresets, unetValidInputSize, unetWidths, type UNetConfig,
} from '../src/models/unet.ts';
import { relError, rng, uniform } from './support/check.ts';
import { testEngine } from './support/engine.ts';
import { concat64, conv64, crop64, expectGradientsMatch, expectNoLeaks, maxPool64, randomizeBiases, relu64, upsample64, type Array64 } from './support/nn64.ts';

// 2 poolings; widths down 3, 6, 12, up ⌊6·2/1.5⌋ = 8 at level 1 and ⌊3·4/2.25⌋ = 5 at level 0. Sizes 44 + 4k.
const tiny = { levels: 2, baseWidth: 3, fmapIncFactors: [2, 2], fmapDecFactors: [1.5, 1.5] };
// Anisotropic 3D: (1, 2, 2) pooling and (1, 3, 3) kernels at the top, isotropic below. Sizes (10 + 2k, 44 + 4k, ...).
const aniso = {
  ndim: 3, levels: 2, baseWidth: 2, fmapIncFactors: [2, 2], fmapDecFactors: [1.5, 1.5],
  downsampleFactors: [[1, 2, 2], [2, 2, 2]], kernelSizes: [[1, 3, 3], [1, 3, 3], [3, 3, 3]],
};

const sizeOf = (shape: readonly number[]) => shape.reduce((a, b) => a * b, 1);

function randomTensor(e: Engine, shape: number[], seed: number): Tensor {
  return e.tensor(Float32Array.from(uniform(sizeOf(shape), rng(seed))), shape);
}

/**
 * One axis walked level by level: the size after each level's two convs must stay ≥ 1 and divide by the pooling; the
 * up path repeats, checks that the skip is at least as large and evenly croppable, and convolves. The output size, or
 * null where some step fails.
 */
function walk(c: UNetConfig, axis: number, input: number): number | null {
  const shrink = (l: number) => 2 * (c.kernelSizes[l][axis] - 1);
  const pool = (l: number) => c.downsampleFactors[l][axis];
  const skips: number[] = [];
  let s = input;
  for (let l = 0; l <= c.levels; l++) {
    s -= shrink(l);
    if (s < 1) return null;
    if (l === c.levels) break;
    if (s % pool(l) !== 0) return null;
    skips.push(s);
    s /= pool(l);
  }
  for (let l = c.levels - 1; l >= 0; l--) {
    s *= pool(l);
    if (skips[l] < s || (skips[l] - s) % 2 !== 0) return null;
    s -= shrink(l);
    if (s < 1) return null;
  }
  return s;
}

/** The network in float64: funlib's U-Net composed from the reference layers, weights by name. */
function unet64(c: UNetConfig, w: Map<string, Float64Array>, shapes: Map<string, number[]>, x: Array64): Array64 {
  const pass = (name: string, h: Array64) => {
    for (const i of [0, 2]) {
      const weight = `${name}.conv_pass.${i}.weight`;
      h = relu64(conv64(h, { data: w.get(weight)!, shape: shapes.get(weight)! }, w.get(`${name}.conv_pass.${i}.bias`)!, []));
    }
    return h;
  };
  const skips: Array64[] = [];
  let h = x;
  for (let l = 0; l <= c.levels; l++) {
    h = pass(`l_conv.${l}`, h);
    if (l < c.levels) {
      skips.push(h);
      h = maxPool64(h, c.downsampleFactors[l]);
    }
  }
  for (let l = c.levels - 1; l >= 0; l--) {
    const up = upsample64(h, c.downsampleFactors[l]);
    const size = up.shape.slice(2);
    const skip = crop64(skips[l], skips[l].shape.slice(2).map((s, a) => (s - size[a]) / 2), size);
    h = pass(`r_conv.0.${l}`, concat64(skip, up));
  }
  return h;
}

/** A spatial block of a host array [N, C, ...spatial], as a new tensor. */
function cropTensor(e: Engine, data: Float32Array, shape: number[], begin: number[], size: number[]): Tensor {
  const block = crop64({ data: Float64Array.from(data), shape }, begin, size);
  return e.tensor(Float32Array.from(block.data), block.shape);
}

describe('unet', () => {
  it('configs: presets, defaults, per-level lists, and named errors', () => {
    expect(unetConfig({})).toEqual(unetPresets.paper);
    expect(unetPresets.paper).toMatchObject({ ndim: 2, levels: 4, baseWidth: 40, fmapIncFactors: [2, 2, 2, 2], fmapDecFactors: [1.1, 1.1, 1.1, 1.1] });
    expect(unetConfig({ ndim: 3 })).toEqual(unetPresets['paper-3d']);
    // Per-level lists follow `levels` when not given.
    expect(unetConfig({ levels: 2 })).toMatchObject({ fmapIncFactors: [2, 2], downsampleFactors: [[2, 2], [2, 2]], kernelSizes: [[3, 3], [3, 3], [3, 3]] });
    expect(unetConfig(aniso).downsampleFactors).toEqual([[1, 2, 2], [2, 2, 2]]);
    expect(() => unetConfig({ level: 3 })).toThrow('unet: unknown config field "level"');
    expect(() => unetConfig({ ndim: 1 })).toThrow('unet: ndim must be 2 or 3, got 1');
    expect(() => unetConfig({ baseWidth: 0 })).toThrow('unet: baseWidth must be a positive integer, got 0');
    expect(() => unetConfig({ levels: 2, fmapIncFactors: [2] })).toThrow('unet: fmapIncFactors must be 2 positive numbers (one per pooling; levels is 2), got [2]');
    expect(() => unetConfig({ downsampleFactors: [[2, 2], [2, 2], [2, 2], [2]] })).toThrow(
      'unet: downsampleFactors must be 4 lists of 2 positive integers (one per pooling, one per spatial axis; levels is 4), got [[2,2],[2,2],[2,2],[2]]',
    );
    expect(() => unetConfig({ levels: 1, kernelSizes: [[3, 3], [2, 2]] })).toThrow(
      'unet: kernelSizes must be 2 lists of 2 odd positive integers (one per resolution level, one per spatial axis; levels is 1), got [[3,3],[2,2]]',
    );
    expect(() => unetConfig({ levels: 1, baseWidth: 2, fmapDecFactors: [5] })).toThrow('unet: fmapDecFactors must be factors that leave every level a feature map (up-path widths [0])');
    expect(() => unetConfig({ seed: -1 })).toThrow('unet: seed must be an integer in [0, 2^32), got -1');
  });

  it('up-path widths: 581, 528, 480, 437 in the DSB setup (40 maps doubling over 4 poolings, dec 1.1)', () => {
    // SPEC lists them from the bottom up; up[l] is level l's.
    expect(unetWidths(unetPresets.paper)).toEqual({ down: [40, 80, 160, 320, 640], up: [437, 480, 528, 581] });
    // nuclei3d: 20 maps tripling over 3 poolings, kept at the bottom's 540 on the way up.
    expect(unetWidths(unetPresets['paper-3d'])).toEqual({ down: [20, 60, 180, 540], up: [540, 540, 540] });
    // dec = inc is a standard U-Net: the up path mirrors the down path.
    expect(unetWidths({ levels: 3, baseWidth: 16, fmapIncFactors: [2, 2, 2], fmapDecFactors: [2, 2, 2] }).up).toEqual([16, 32, 64]);
  });

  it('size rules match a brute-force walk through the levels (2D, 3D, anisotropic 3D, odd factors)', () => {
    const configs = [
      unetConfig(tiny),
      unetPresets.paper,
      unetPresets['small-3d'],
      unetConfig(aniso),
      unetConfig({ ndim: 3, levels: 3, downsampleFactors: [[1, 2, 2], [1, 2, 2], [2, 2, 2]], kernelSizes: [[1, 3, 3], [1, 3, 3], [3, 3, 3], [3, 3, 3]] }),
      unetConfig({ levels: 2, downsampleFactors: [[3, 2], [2, 1]], kernelSizes: [[5, 3], [3, 1], [1, 3]] }),
    ];
    for (const c of configs) {
      const g = unetGeometry(c);
      for (let axis = 0; axis < c.ndim; axis++) {
        const what = `${JSON.stringify(c.downsampleFactors)} ${JSON.stringify(c.kernelSizes)} axis ${axis}`;
        const at = (s: number) => g.minInput.map((m, a) => (a === axis ? s : m));
        const valid: number[] = [];
        for (let s = 1; s <= 600; s++) {
          const out = walk(c, axis, s);
          if (out === null) {
            expect(() => unetOutputSize(c, at(s)), `${what} size ${s}`).toThrow(`along spatial axis ${axis} is not valid`);
          } else {
            valid.push(s);
            expect(unetOutputSize(c, at(s))[axis], `${what} size ${s}`).toBe(out);
            expect((s - out) / 2, what).toBe(g.context[axis]);
          }
        }
        expect(valid[0], what).toBe(g.minInput[axis]);
        expect(valid[1] - valid[0], what).toBe(g.step[axis]);
        for (let request = 1; request <= 150; request++) {
          expect(unetInputSizeFor(c, at(request))[axis], `${what} output ${request}`).toBe(valid.find((s) => walk(c, axis, s)! >= request));
          expect(unetValidInputSize(c, at(request))[axis], `${what} at least ${request}`).toBe(valid.find((s) => s >= request));
        }
      }
    }
    // The DSB setup: the authors' 268² training input gives 84², tiles in steps of 16 with a 92-pixel margin.
    expect(unetGeometry(unetPresets.paper)).toEqual({ minInput: [188, 188], step: [16, 16], context: [92, 92] });
    expect(unetOutputSize(unetPresets.paper, [268, 460])).toEqual([84, 276]);
    expect(() => unetOutputSize(unetPresets.paper, [268, 270])).toThrow(
      'unet: input size 270 along spatial axis 1 is not valid (valid sizes are 188 + k·16: every pooling must divide evenly and every level keep a pixel); nearest: 268 or 284',
    );
    expect(() => unetOutputSize(unetPresets.paper, [100, 188])).toThrow('nearest: 188');
  });

  it('outputs [N, up[0], ...outputSize] in 2D, 3D and anisotropic 3D, with funlib names; named input errors', async () => {
    const e = await testEngine();
    const m2 = new UNet(e, { ...tiny, inChannels: 2 });
    const y2 = e.tidy(() => m2.forward(randomTensor(e, [2, 2, 48, 52], 1)));
    expect(y2.shape).toEqual([2, 5, 8, 12]);
    expect((await y2.data()).every(Number.isFinite)).toBe(true);
    const shapes = new Map([...m2.namedTensors()].map(([n, t]) => [n, t.tensor.shape]));
    expect(shapes.size).toBe(2 * 2 * (3 + 2));
    expect(shapes.get('l_conv.0.conv_pass.0.weight')).toEqual([3, 2, 3, 3]);
    expect(shapes.get('l_conv.2.conv_pass.2.weight')).toEqual([12, 12, 3, 3]);
    expect(shapes.get('r_conv.0.1.conv_pass.0.weight')).toEqual([8, 6 + 12, 3, 3]);
    expect(shapes.get('r_conv.0.0.conv_pass.0.weight')).toEqual([5, 3 + 8, 3, 3]);
    expect(shapes.get('r_conv.0.0.conv_pass.2.bias')).toEqual([5]);
    expect(() => m2.forward(randomTensor(e, [1, 2, 48, 50], 2))).toThrow('unet: input size 50 along spatial axis 1 is not valid');
    expect(() => m2.forward(randomTensor(e, [1, 1, 48, 48], 2))).toThrow('unet: input must be [N, 2, H, W], got [1, 1, 48, 48]');

    const m3 = new UNet(e, aniso);
    expect(m3.geometry).toEqual({ minInput: [10, 44, 44], step: [2, 4, 4], context: [4, 20, 20] });
    const y3 = e.tidy(() => m3.forward(randomTensor(e, [1, 1, 12, 44, 48], 3)));
    expect(y3.shape).toEqual([1, 3, 4, 4, 8]);
    expect(new Map([...m3.namedTensors()].map(([n, t]) => [n, t.tensor.shape])).get('l_conv.0.conv_pass.0.weight')).toEqual([2, 1, 1, 3, 3]);
    expect(m3.inputSizeFor([3, 10, 10])).toEqual([12, 52, 52]);
    for (const t of [y2, y3]) t.dispose();
    m2.dispose();
    m3.dispose();
  });

  for (const [what, config, shape, samples] of [
    ['2D', { ...tiny, inChannels: 2 }, [2, 2, 48, 44], 12],
    ['anisotropic 3D', aniso, [1, 1, 10, 44, 48], 6],
  ] as const) {
    it(`forward and the gradients of every parameter and the input match float64 central differences (${what})`, async () => {
      const e = await testEngine();
      const model = new UNet(e, config);
      const c = model.config;
      randomizeBiases(model.namedTensors(), 2);
      const input = { name: 'input', data: uniform(sizeOf(shape), rng(5)), shape: [...shape] };
      await expectGradientsMatch(e, model, input, (values, shapes) => unet64(c, values, shapes, { data: values.get('input')!, shape: [...shape] }), { samples, seed: 6 });
      model.dispose();
    }, 60_000);
  }

  it('is translation-equivariant under shifts by the pooling product, and only those (2D and anisotropic 3D)', async () => {
    const e = await testEngine();
    for (const [config, big, size, shifts, offGrid] of [
      [tiny, [1, 1, 56, 52], [48, 44], [[4, 0], [0, 8], [8, 4]], [1, 0]],
      [aniso, [1, 1, 14, 52, 48], [10, 44, 44], [[2, 0, 0], [4, 4, 0], [2, 8, 4]], [1, 0, 0]],
    ] as const) {
      const model = new UNet(e, config);
      const data = Float32Array.from(uniform(sizeOf(big), rng(9)));
      const whole = e.noGrad(() => model.forward(e.tensor(data, [...big])));
      const wholeData = Float64Array.from(await whole.data());
      const outSize = model.outputSize(size);
      const shifted = async (shift: readonly number[]) => {
        const tile = cropTensor(e, data, [...big], [...shift], [...size]);
        const out = e.noGrad(() => model.forward(tile));
        const got = await out.data();
        tile.dispose();
        out.dispose();
        return { got, want: crop64({ data: wholeData, shape: [...whole.shape] }, [...shift], outSize).data };
      };
      for (const shift of shifts) {
        const { got, want } = await shifted(shift);
        expect(Array.from(got), `shift [${shift}]`).toEqual(Array.from(want, Math.fround));
      }
      // A shift off the pooling grid pools other pixels together: the output changes.
      const { got, want } = await shifted(offGrid);
      expect(relError(got, want)).toBeGreaterThan(1e-3);
      whole.dispose();
      model.dispose();
    }
  });

  it('a few Adam steps lower a regression loss on a toy target', async () => {
    const e = await testEngine();
    e.poison = false;
    const model = new UNet(e, tiny);
    const head = heNormal(e, [1, model.outChannels, 1, 1], 1, { gain: 1 });
    const headBias = zerosInit(e, [1]);
    const x = randomTensor(e, [2, 1, 48, 48], 11);
    // Reachable: the input itself, where the output sits (context 20 on each side).
    const target = slice(x, [0, 0, 20, 20], [2, 1, 8, 8]);
    const params = [...[...model.namedTensors().values()].map((t) => t.tensor), head, headBias];
    const opt = new Adam(params, { lr: 3e-3 });
    const losses: number[] = [];
    for (let step = 0; step < 12; step++) {
      const loss = e.tidy(() => {
        const l = mean(square(sub(conv(model.forward(x), head, headBias), target)));
        l.backward();
        opt.step();
        opt.zeroGrad();
        return l;
      });
      losses.push(await loss.item());
      loss.dispose();
    }
    expect(losses.every(Number.isFinite)).toBe(true);
    expect(losses[11]).toBeLessThan(losses[0] * 0.5);
    for (const t of [x, target, head, headBias]) t.dispose();
    opt.dispose();
    model.dispose();
    e.poison = true;
  });

  it('leaks nothing: a training step leaves only the parameters and their gradients; inference only its output', async () => {
    const e = await testEngine();
    await expectNoLeaks(e, () => ({ block: new UNet(e, aniso), input: randomTensor(e, [1, 1, 10, 44, 44], 13) }));
  });
});
