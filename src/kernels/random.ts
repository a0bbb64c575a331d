// Random tensors from a counter-based generator (shaders/random.wgsl, Philox4x32-10): element i is a pure function of
// (seed, i), so results reproduce across runs, devices and dispatch shapes, and a prefix of a larger draw equals a
// smaller draw with the same seed. Seeds are non-negative integers up to 2^53 (split into Philox's two key words).
import type { Engine } from '../engine/engine.ts';
import { record } from '../engine/autograd.ts';
import { sizeOf, stridesOf, type Shape, type Tensor } from '../engine/tensor.ts';
import { shaderConstants } from '../shaders.gen.ts';
import { expectF32 } from './elementwise.ts';

/** WORDS: elements per invocation (one Philox call). */
const { UNIFORM, NORMAL, BERNOULLI, WORDS, WORKGROUP_SIZE, MAX_DIMS } = shaderConstants.random;
const DIST = { uniform: UNIFORM, normal: NORMAL, bernoulli: BERNOULLI } as const;

function key(op: string, seed: number): { key0: number; key1: number } {
  if (!Number.isSafeInteger(seed) || seed < 0) throw new Error(`${op}: seed must be a non-negative integer below 2^53, got ${seed}`);
  return { key0: seed % 2 ** 32, key1: Math.floor(seed / 2 ** 32) };
}

function draw(e: Engine, shape: Shape, seed: number, dist: keyof typeof DIST, a: number, b: number, op: string): Tensor {
  const out = e.empty(shape);
  e.dispatch({
    shader: 'random', entry: 'random_f32', constants: { DIST: DIST[dist] }, label: op,
    bindings: { values: out, params: { n: out.size, ...key(op, seed), a, b } }, workgroups: e.groups1D(Math.ceil(out.size / WORDS), WORKGROUP_SIZE),
  });
  return out;
}

/** Raw Philox words: element i is word i % 4 of philox(counter (i / 4, 0, 0, 0), key (seed mod 2^32, seed / 2^32)). */
export function randomBits(e: Engine, shape: Shape, seed: number): Tensor {
  const out = e.empty(shape, 'u32');
  e.dispatch({
    shader: 'random', entry: 'random_bits', label: 'randomBits',
    bindings: { bits: out, params: { n: out.size, ...key('randomBits', seed), a: 0, b: 0 } }, workgroups: e.groups1D(Math.ceil(out.size / WORDS), WORKGROUP_SIZE),
  });
  return out;
}

/** Uniform in [lo, hi): lo + (hi − lo)·u with u the top 24 bits of a word over 2^24. */
export function randomUniform(e: Engine, shape: Shape, seed: number, lo = 0, hi = 1): Tensor {
  return draw(e, shape, seed, 'uniform', lo, hi, 'randomUniform');
}

/** Normal with `mean` and `std` (Box-Muller: each pair of words gives two values). */
export function randomNormal(e: Engine, shape: Shape, seed: number, mean = 0, std = 1): Tensor {
  return draw(e, shape, seed, 'normal', mean, std, 'randomNormal');
}

/** `value` with probability p, else 0 (f32). */
export function bernoulli(e: Engine, shape: Shape, seed: number, p = 0.5, value = 1): Tensor {
  if (!(p >= 0 && p <= 1)) throw new Error(`bernoulli: p must be in [0, 1], got ${p}`);
  return draw(e, shape, seed, 'bernoulli', p, value, 'bernoulli');
}

export interface DropoutOptions {
  /** Dropout acts only while training; otherwise x is returned as is. */
  training: boolean;
  /**
   * Shape of the mask, broadcast over x (same rank, each dimension 1 or x's): [N, C, 1, 1] drops whole channels
   * (spatial dropout, as RDCNet uses). Default: x's shape.
   */
  noiseShape?: Shape;
}

/**
 * Inverted dropout: each mask element is kept with probability 1 − p and scales what it covers by 1/(1 − p), so the
 * expectation is unchanged and inference needs no rescaling. Mask element m is kept iff the uniform draw m of `seed`
 * is below 1 − p (what bernoulli(noiseShape, seed, 1 − p) gives); it is recomputed in the backward, never stored.
 * The gradient is gy times the same mask and scale.
 */
export function dropout(x: Tensor, p: number, seed: number, options: DropoutOptions): Tensor {
  expectF32('dropout', 'input', x);
  if (!(p >= 0 && p < 1)) throw new Error(`dropout: p must be in [0, 1), got ${p}`);
  const noiseShape = options.noiseShape ?? x.shape;
  if (noiseShape.length !== x.rank || noiseShape.some((d, k) => d !== 1 && d !== x.shape[k])) {
    throw new Error(`dropout: noiseShape [${noiseShape.join(', ')}] does not broadcast to the input [${x.shape.join(', ')}]`);
  }
  if (x.rank > MAX_DIMS) throw new Error(`dropout: at most ${MAX_DIMS} dimensions, got [${x.shape.join(', ')}]`);
  if (!options.training || p === 0) return x;
  const broadcast = noiseShape.some((d, k) => d !== x.shape[k]);
  const noiseStrides = stridesOf(noiseShape).map((s, k) => (noiseShape[k] === 1 ? 0 : s));
  // Spatial dropout's mask, [N, C, 1, 1]: each mask element covers one contiguous row of `inner` elements, so a
  // workgroup row per mask element needs no index arithmetic per element.
  let lead = noiseShape.length;
  while (lead > 0 && noiseShape[lead - 1] === 1) lead--;
  const rows = sizeOf(noiseShape);
  const inner = x.size / rows;
  const e = x.engine;
  const maxGroups = e.device.limits.maxComputeWorkgroupsPerDimension;
  const byRows = broadcast && noiseShape.every((d, k) => k >= lead || d === x.shape[k]) && rows <= maxGroups && Math.ceil(inner / (WORDS * WORKGROUP_SIZE)) <= maxGroups;
  const params = { ...key('dropout', seed), keep: 1 - p, scale: 1 / (1 - p), rank: x.rank, inner, shape: x.shape, noiseStrides };
  const apply = (input: Tensor, label: string) => {
    const out = e.empty(input.shape);
    const bindings = { x: input, y: out, dropoutParams: { n: out.size, ...params } };
    if (byRows) {
      e.dispatch({ shader: 'random', entry: 'dropout_rows', label, bindings, workgroups: [Math.ceil(inner / (WORDS * WORKGROUP_SIZE)), rows] });
    } else {
      e.dispatch({
        shader: 'random', entry: 'dropout_apply', constants: { BROADCAST: broadcast ? 1 : 0 }, label,
        bindings, workgroups: e.groups1D(Math.ceil(out.size / WORDS), WORKGROUP_SIZE),
      });
    }
    return out;
  };
  return record('dropout', [x], apply(x, 'dropout'), (gy) => [apply(gy, 'dropout.backward')]);
}
