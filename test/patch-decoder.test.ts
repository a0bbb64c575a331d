// PatchPerPix's patch decoder (ppp+dec): configs, output shapes and names in 2D and 3D, the forward pass and the
// gradients of every parameter and of the codes against a float64 reference (central differences), a few Adam steps
// on a toy target with the patch BCE, and no leaked tensors.
import { describe, expect, it } from 'vitest';
import type { Engine } from '../src/engine/engine.ts';
import type { Tensor } from '../src/engine/tensor.ts';
import { mul, softplus, sub } from '../src/kernels/elementwise.ts';
import { Adam } from '../src/kernels/optim.ts';
import { mean } from '../src/kernels/reduce.ts';
import { reshape } from '../src/kernels/shape.ts';
import { PatchDecoder, patchDecoderConfig, patchDecoderPresets, type PatchDecoderConfig } from '../src/models/patch-decoder.ts';
import { rng, uniform } from './support/check.ts';
import { testEngine } from './support/engine.ts';
import { conv64, crop64, expectGradientsMatch, expectNoLeaks, randomizeBiases, relu64, upsample64, type Array64 } from './support/nn64.ts';

// Code 8 = 2×2×2; stages ×2 to 3, 2 and 1 channels; decoded 16×16, cropped to 13×11.
const tiny = { patchSize: [13, 11], codeShape: [2, 2, 2], widths: [4, 3, 2] };
// 3D: code 2 = 2×1×1×1, decoded 8×8×8, cropped to 5×6×5.
const tiny3d = { ndim: 3, patchSize: [5, 6, 5], codeShape: [2, 1, 1, 1], widths: [3, 2, 2] };

const sizeOf = (shape: readonly number[]) => shape.reduce((a, b) => a * b, 1);

function randomTensor(e: Engine, shape: number[], seed: number): Tensor {
  return e.tensor(Float32Array.from(uniform(sizeOf(shape), rng(seed))), shape);
}

/** The decoder in float64 from the reference layers, weights by name. */
function decoder64(c: PatchDecoderConfig, w: Map<string, Float64Array>, shapes: Map<string, number[]>, codes: Float64Array, m: number): Array64 {
  const layer = (name: string, h: Array64, pads: number[], linear: boolean) => {
    const out = conv64(h, { data: w.get(`${name}.weight`)!, shape: shapes.get(`${name}.weight`)! }, w.get(`${name}.bias`)!, pads);
    return linear ? out : relu64(out);
  };
  const zeros = new Array<number>(c.ndim).fill(0);
  const ones = new Array<number>(c.ndim).fill(1);
  const twos = new Array<number>(c.ndim).fill(2);
  let h = layer('from_code', { data: codes, shape: [m, ...c.codeShape] }, zeros, false);
  const stages = c.widths.length;
  for (let i = 0; i < stages; i++) {
    const last = i === stages - 1;
    h = layer(`layers.${i}.1`, layer(`layers.${i}.0`, upsample64(h, twos), ones, last), ones, last);
  }
  return crop64(h, zeros, c.patchSize);
}

describe('patchDecoder', () => {
  it('configs: presets, defaults and named errors', () => {
    expect(patchDecoderConfig({})).toEqual(patchDecoderPresets.paper);
    expect(patchDecoderPresets.paper).toEqual({ ndim: 2, patchSize: [25, 25], codeShape: [16, 4, 4], widths: [128, 64, 32], seed: 0 });
    expect(patchDecoderConfig({ ndim: 3 })).toEqual(patchDecoderPresets['paper-3d']);
    expect(() => patchDecoderConfig({ patch: [25, 25] })).toThrow('patchDecoder: unknown config field "patch"');
    expect(() => patchDecoderConfig({ ndim: 4 })).toThrow('patchDecoder: ndim must be 2 or 3, got 4');
    expect(() => patchDecoderConfig({ patchSize: [25] })).toThrow('patchDecoder: patchSize must be 2 positive integers (one per spatial axis), got [25]');
    expect(() => patchDecoderConfig({ codeShape: [16, 4] })).toThrow('patchDecoder: codeShape must be 3 positive integers ([channels, size per spatial axis]), got [16,4]');
    expect(() => patchDecoderConfig({ widths: [] })).toThrow('patchDecoder: widths must be a non-empty list of positive integers, got []');
    expect(() => patchDecoderConfig({ patchSize: [33, 25] })).toThrow(
      'patchDecoder: patchSize must be at most the decoded size [32, 32] (codeShape sizes × 2^3 stages) on every axis, got [33,25]',
    );
    expect(() => patchDecoderConfig({ seed: 0.5 })).toThrow('patchDecoder: seed must be an integer in [0, 2^32), got 0.5');
  });

  it('decodes [M, code] to [M, 1, ...patchSize] for the paper presets in 2D and 3D, with stable names', async () => {
    const e = await testEngine();
    for (const [preset, m, out] of [['paper', 3, [3, 1, 25, 25]], ['bbbc010', 2, [2, 1, 41, 41]], ['paper-3d', 2, [2, 1, 9, 9, 9]]] as const) {
      const model = new PatchDecoder(e, patchDecoderPresets[preset]);
      const y = e.tidy(() => e.noGrad(() => model.forward(randomTensor(e, [m, model.codeLength], 1))));
      expect(y.shape).toEqual(out);
      expect((await y.data()).every(Number.isFinite)).toBe(true);
      if (preset === 'paper') {
        expect(model.codeLength).toBe(256);
        const shapes = new Map([...model.namedTensors()].map(([n, t]) => [n, t.tensor.shape]));
        expect(shapes.get('from_code.weight')).toEqual([128, 16, 1, 1]);
        expect(shapes.get('layers.0.0.weight')).toEqual([64, 128, 3, 3]);
        expect(shapes.get('layers.1.1.weight')).toEqual([32, 32, 3, 3]);
        expect(shapes.get('layers.2.0.weight')).toEqual([1, 32, 3, 3]);
        expect(shapes.get('layers.2.1.bias')).toEqual([1]);
        // 128·16 + 128, then (64·128 + 64·64)·9 + 2·64, (32·64 + 32·32)·9 + 2·32, (32 + 1)·9 + 2.
        expect([...model.namedTensors().values()].reduce((s, t) => s + t.tensor.size, 0)).toBe(140_907);
        expect(() => model.forward(randomTensor(e, [3, 255], 2))).toThrow('patchDecoder: codes must be [M, 256] (codeShape [16, 4, 4]), got [3, 255]');
      }
      // A flat patch per code is a view.
      const flat = reshape(y, [m, -1]);
      expect(flat.shape).toEqual([m, sizeOf(out.slice(2))]);
      for (const t of [flat, y]) t.dispose();
      model.dispose();
    }
  });

  for (const [what, config, m] of [['2D', tiny, 3], ['3D', tiny3d, 2]] as const) {
    it(`forward and the gradients of every parameter and the codes match float64 central differences (${what})`, async () => {
      const e = await testEngine();
      const model = new PatchDecoder(e, config);
      const c = model.config;
      randomizeBiases(model.namedTensors(), 2);
      const codes = { name: 'codes', data: uniform(m * model.codeLength, rng(3)), shape: [m, model.codeLength] };
      await expectGradientsMatch(e, model, codes, (values, shapes) => decoder64(c, values, shapes, values.get('codes')!, m), { samples: 100, seed: 4 });
      model.dispose();
    }, 60_000);
  }

  it('a few Adam steps lower the patch BCE on a toy target (discs of a radius given by the code)', async () => {
    const e = await testEngine();
    e.poison = false;
    const model = new PatchDecoder(e, { ...tiny, widths: [8, 8, 4] });
    const m = 4;
    const codes = randomTensor(e, [m, model.codeLength], 5);
    const [ph, pw] = tiny.patchSize;
    const disc = Float32Array.from({ length: m * ph * pw }, (_, k) => {
      const i = Math.floor(k / (ph * pw));
      const y = Math.floor(k / pw) % ph;
      const x = k % pw;
      return (y - 6) ** 2 + (x - 5) ** 2 <= (i + 2) ** 2 ? 1 : 0;
    });
    const target = e.tensor(disc, [m, 1, ph, pw]);
    const opt = new Adam([...model.namedTensors().values()].map((t) => t.tensor), { lr: 1e-2, beta1: 0.95 });
    const losses: number[] = [];
    for (let step = 0; step < 15; step++) {
      const loss = e.tidy(() => {
        // Sigmoid cross-entropy with logits z: softplus(z) − y·z.
        const z = model.forward(codes);
        const l = mean(sub(softplus(z), mul(target, z)));
        l.backward();
        opt.step();
        opt.zeroGrad();
        return l;
      });
      losses.push(await loss.item());
      loss.dispose();
    }
    expect(losses.every(Number.isFinite)).toBe(true);
    expect(losses[14]).toBeLessThan(losses[0] * 0.7);
    for (const t of [codes, target]) t.dispose();
    opt.dispose();
    model.dispose();
    e.poison = true;
  });

  it('leaks nothing: a training step leaves only the parameters and their gradients; inference only its output', async () => {
    const e = await testEngine();
    await expectNoLeaks(e, () => {
      const block = new PatchDecoder(e, tiny3d);
      return { block, input: randomTensor(e, [3, block.codeLength], 7) };
    });
  });
});
