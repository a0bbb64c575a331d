// Float64 references of the layers the U-Net and the patch decoder are made of, on row-major arrays [N, C, ...spatial]
// with 1 to 3 spatial axes: the model tests compose them into a whole network, compare its forward with the GPU's and
// take central finite differences of it for gradient checks. Written for clarity, not speed: tiny networks only.
import type { NamedTensor } from '../../src/models/model.ts';
import { writeTensors } from '../../src/train/checkpoint.ts';
import { expect } from 'vitest';
import type { Engine } from '../../src/engine/engine.ts';
import type { Tensor } from '../../src/engine/tensor.ts';
import { mul } from '../../src/kernels/elementwise.ts';
import { sum } from '../../src/kernels/reduce.ts';
import { relError, rng, uniform } from './check.ts';

export interface Array64 {
  data: Float64Array;
  shape: number[];
}

/** [N, C, D, H, W] with D (and H) = 1 where the array has fewer spatial axes. */
function as3d(shape: readonly number[]): number[] {
  const spatial = shape.slice(2);
  return [shape[0], shape[1], ...new Array<number>(3 - spatial.length).fill(1), ...spatial];
}

const pad3 = (v: readonly number[], fill: number) => [...new Array<number>(3 - v.length).fill(fill), ...v];

/** Cross-correlation with zero padding `pads` (one per spatial axis, both sides) and stride 1; w [Cout, Cin, k...]. */
export function conv64(x: Array64, w: Array64, b: Float64Array, pads: readonly number[]): Array64 {
  const [n, cin, d, h, wd] = as3d(x.shape);
  const [cout, wcin, kd, kh, kw] = as3d(w.shape);
  if (wcin !== cin) throw new Error(`conv64: input has ${cin} channels, weight ${wcin}`);
  const [pd, ph, pw] = pad3(pads, 0);
  const [od, oh, ow] = [d + 2 * pd - kd + 1, h + 2 * ph - kh + 1, wd + 2 * pw - kw + 1];
  const out = new Float64Array(n * cout * od * oh * ow);
  let o = 0;
  for (let i = 0; i < n; i++) {
    for (let co = 0; co < cout; co++) {
      for (let z = 0; z < od; z++) {
        for (let y = 0; y < oh; y++) {
          for (let xx = 0; xx < ow; xx++) {
            let s = b[co];
            for (let ci = 0; ci < cin; ci++) {
              for (let a = 0; a < kd; a++) {
                const zi = z + a - pd;
                if (zi < 0 || zi >= d) continue;
                for (let c = 0; c < kh; c++) {
                  const yi = y + c - ph;
                  if (yi < 0 || yi >= h) continue;
                  const xBase = (((i * cin + ci) * d + zi) * h + yi) * wd;
                  const wBase = (((co * cin + ci) * kd + a) * kh + c) * kw;
                  for (let e = 0; e < kw; e++) {
                    const xi = xx + e - pw;
                    if (xi >= 0 && xi < wd) s += x.data[xBase + xi] * w.data[wBase + e];
                  }
                }
              }
            }
            out[o++] = s;
          }
        }
      }
    }
  }
  return { data: out, shape: [n, cout, ...[od, oh, ow].slice(3 - (x.shape.length - 2))] };
}

export function relu64(x: Array64): Array64 {
  return { data: x.data.map((v) => Math.max(v, 0)), shape: [...x.shape] };
}

/** Visits every element of an [N, C, D, H, W] grid of `shape` (3-padded) with its flat index and coordinates. */
function forEach3d(shape: readonly number[], fn: (index: number, nc: number, z: number, y: number, x: number) => void): void {
  const [n, c, d, h, w] = as3d(shape);
  let k = 0;
  for (let nc = 0; nc < n * c; nc++) for (let z = 0; z < d; z++) for (let y = 0; y < h; y++) for (let x = 0; x < w; x++) fn(k++, nc, z, y, x);
}

/** Max over non-overlapping windows of `factors` (one per spatial axis); sizes must divide. */
export function maxPool64(x: Array64, factors: readonly number[]): Array64 {
  const spatial = x.shape.slice(2).map((s, a) => s / factors[a]);
  if (!spatial.every(Number.isInteger)) throw new Error(`maxPool64: [${x.shape.join(', ')}] by [${factors.join(', ')}]`);
  const shape = [x.shape[0], x.shape[1], ...spatial];
  const [, , od, oh, ow] = as3d(shape);
  const [fd, fh, fw] = pad3(factors, 1);
  const out = new Float64Array(shape.reduce((a, b) => a * b, 1)).fill(-Infinity);
  forEach3d(x.shape, (k, nc, z, y, xx) => {
    const o = ((nc * od + Math.floor(z / fd)) * oh + Math.floor(y / fh)) * ow + Math.floor(xx / fw);
    out[o] = Math.max(out[o], x.data[k]);
  });
  return { data: out, shape };
}

/** Nearest upsampling by integer `factors`: every pixel repeated. */
export function upsample64(x: Array64, factors: readonly number[]): Array64 {
  const shape = [x.shape[0], x.shape[1], ...x.shape.slice(2).map((s, a) => s * factors[a])];
  const [, , d, h, w] = as3d(x.shape);
  const [fd, fh, fw] = pad3(factors, 1);
  const out = new Float64Array(shape.reduce((a, b) => a * b, 1));
  forEach3d(shape, (k, nc, z, y, xx) => {
    out[k] = x.data[((nc * d + Math.floor(z / fd)) * h + Math.floor(y / fh)) * w + Math.floor(xx / fw)];
  });
  return { data: out, shape };
}

/** The spatial block starting at `begin` of extent `size`, all batch items and channels. */
export function crop64(x: Array64, begin: readonly number[], size: readonly number[]): Array64 {
  const shape = [x.shape[0], x.shape[1], ...size];
  const [, , d, h, w] = as3d(x.shape);
  const [bd, bh, bw] = pad3(begin, 0);
  const out = new Float64Array(shape.reduce((a, b) => a * b, 1));
  forEach3d(shape, (k, nc, z, y, xx) => {
    out[k] = x.data[((nc * d + z + bd) * h + y + bh) * w + xx + bw];
  });
  return { data: out, shape };
}

/** Channels of `a`, then of `b`. */
export function concat64(a: Array64, b: Array64): Array64 {
  const [n, ca] = a.shape;
  const cb = b.shape[1];
  const inner = a.shape.slice(2).reduce((p, q) => p * q, 1);
  const out = new Float64Array(n * (ca + cb) * inner);
  for (let i = 0; i < n; i++) {
    out.set(a.data.subarray(i * ca * inner, (i + 1) * ca * inner), i * (ca + cb) * inner);
    out.set(b.data.subarray(i * cb * inner, (i + 1) * cb * inner), (i * (ca + cb) + ca) * inner);
  }
  return { data: out, shape: [n, ca + cb, ...a.shape.slice(2)] };
}

/**
 * Checks `grads` (analytic, by tensor name) against central differences of `f` (a scalar of float64 tensors by name),
 * at up to `samples` evenly spread elements per tensor. Returns the worst relative error, by tensor name.
 */
export function finiteDifferences(
  values: Map<string, Float64Array>,
  grads: Map<string, ArrayLike<number>>,
  f: () => number,
  samples: number,
  h = 1e-6,
): Map<string, number> {
  const errors = new Map<string, number>();
  for (const [name, v] of values) {
    const g = grads.get(name)!;
    const stride = Math.max(1, Math.floor(v.length / samples));
    let num = 0;
    let den = 0;
    for (let j = 0; j < v.length; j += stride) {
      const orig = v[j];
      v[j] = orig + h;
      const plus = f();
      v[j] = orig - h;
      const minus = f();
      v[j] = orig;
      const numeric = (plus - minus) / (2 * h);
      num += (g[j] - numeric) ** 2;
      den += numeric ** 2;
    }
    errors.set(name, den === 0 ? Math.sqrt(num) : Math.sqrt(num / den));
  }
  return errors;
}

/**
 * Overwrites every ".bias" tensor with values uniform in ±0.3. Models start with zero biases; then a conv whose inputs
 * are all zero (a dead ReLU channel) sits exactly on the next ReLU's kink, where central differences are meaningless,
 * and the forward check would not see a bias added in the wrong place.
 */
export function randomizeBiases(tensors: ReadonlyMap<string, NamedTensor>, seed: number): void {
  const rand = rng(seed);
  const biases = new Map([...tensors].filter(([n]) => n.endsWith('.bias')).map(([n, t]) => [n, t.tensor]));
  writeTensors(biases, new Map([...biases].map(([n, t]) => [n, { shape: [...t.shape], data: Float32Array.from(uniform(t.size, rand, -0.3, 0.3)) }])), 'randomizeBiases');
}

/** A network block as the leak check drives it: its tensors by name and its forward pass. */
interface Block {
  namedTensors(): Map<string, { tensor: Tensor }>;
  forward(x: Tensor): Tensor;
  dispose(): void;
}

/**
 * Builds a block, then checks that a training step leaves only the parameters' gradients (plus the input), that
 * inference leaves only its output (equal to the recorded forward's), and that disposing everything returns the live
 * tensors to where they were. `make` builds the block and its input after the baseline is taken.
 */
export async function expectNoLeaks(e: Engine, make: () => { block: Block; input: Tensor }): Promise<void> {
  await e.sync();
  const before = e.stats().liveTensors;
  const { block, input } = make();
  const params = [...block.namedTensors().values()].map((t) => t.tensor);
  e.tidy(() => sum(block.forward(input)).backward());
  expect(e.stats().liveTensors - before).toBe(2 * params.length + 1);
  for (const p of params) {
    p.grad!.dispose();
    p.grad = null;
  }
  const recorded = e.tidy(() => block.forward(input));
  await e.sync();
  const live = e.stats().liveBytes;
  const out = e.noGrad(() => block.forward(input));
  expect(e.stats().liveBytes - live).toBe(out.byteLength);
  expect(Array.from(await out.data())).toEqual(Array.from(await recorded.data()));
  for (const t of [out, recorded, input]) t.dispose();
  block.dispose();
  expect(e.stats().liveTensors).toBe(before);
}

/**
 * The gradient check of a network block: forward(input) on the GPU against `reference` (the float64 network of the
 * same parameter values), then a probe loss Σ r·y (so every output's gradient is its random r) whose gradients for the
 * input and every parameter must match central differences of the reference at `samples` entries per tensor.
 */
export async function expectGradientsMatch(
  e: Engine,
  block: Pick<Block, 'namedTensors' | 'forward'>,
  input: { name: string; data: Float64Array; shape: number[] },
  reference: (values: Map<string, Float64Array>, shapes: Map<string, number[]>) => Array64,
  options: { samples: number; seed: number },
): Promise<void> {
  const x = e.param(e.tensor(Float32Array.from(input.data), input.shape));
  const y = block.forward(x);
  const r = uniform(y.size, rng(options.seed));
  e.tidy(() => sum(mul(y, e.tensor(Float32Array.from(r), y.shape))).backward());
  const named = [...block.namedTensors()].map(([n, t]) => [n, t.tensor] as const);
  const values = new Map<string, Float64Array>([[input.name, input.data]]);
  const grads = new Map<string, ArrayLike<number>>([[input.name, await x.grad!.data()]]);
  const shapes = new Map<string, number[]>();
  for (const [n, t] of named) {
    values.set(n, Float64Array.from(await t.data()));
    grads.set(n, await t.grad!.data());
    shapes.set(n, [...t.shape]);
  }
  const ref = reference(values, shapes);
  expect(ref.shape).toEqual(y.shape);
  expect(relError(await y.data(), ref.data)).toBeLessThan(1e-5);
  const probe = () => reference(values, shapes).data.reduce((acc, v, i) => acc + v * r[i], 0);
  for (const [name, err] of finiteDifferences(values, grads, probe, options.samples)) expect(err, name).toBeLessThan(1e-4);
  for (const [, t] of named) {
    t.grad!.dispose();
    t.grad = null;
  }
  y.dispose();
  x.dispose();
}
