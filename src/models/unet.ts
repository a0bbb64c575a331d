// PatchPerPix's backbone (papers/patchperpix.md, SPEC.md "PatchPerPix"): a U-Net of valid convolutions, 2D or 3D. Each
// resolution level runs two convs + ReLU; the down path max-pools by the level's factor, the up path repeats pixels
// (nearest, no conv), crops the skip connection to the upsampled size around its centre and concatenates [skip, up]
// before the level's two convs. Kernel sizes and pooling factors are per level and per axis, so anisotropic 3D can use
// (1, 3, 3) kernels and (1, 2, 2) pooling near the top. Network only: PatchPerPix adds its own 1x1 head.
//
// Tensor names follow funlib.learn.torch's UNet (one head): "l_conv.L.conv_pass.0.weight" is the first conv of level
// L on the way down, "r_conv.0.L.conv_pass.2.weight" the second on the way up (indices 1 and 3 are its ReLUs).
//
// Valid convolutions make sizes matter: an input size is valid when every pooling divides its level's size evenly and
// every level keeps at least one pixel. Along one axis the valid sizes are minInput + k·step (step = the product of the
// pooling factors), and each gives output = input − 2·context, context being the same for all of them. Shifting a valid
// input by a multiple of `step` shifts the output by as much (the pooling grid moves along), which is what exact tiled
// prediction relies on: tiles of a valid size, tileMargin = context, tile origins on multiples of step.
import type { Engine } from '../engine/engine.ts';
import type { Tensor } from '../engine/tensor.ts';
import { conv } from '../kernels/conv.ts';
import { relu } from '../kernels/elementwise.ts';
import { heNormal, zerosInit } from '../kernels/init.ts';
import { maxPool } from '../kernels/pool.ts';
import { concat, slice } from '../kernels/shape.ts';
import { upsample } from '../kernels/upsample.ts';
import type { NamedTensor } from './model.ts';

export interface UNetConfig {
  ndim: 2 | 3;
  /** Image channels. */
  inChannels: number;
  /** Number of poolings (the paper's "4-level U-Net" pools 4 times: 5 resolutions). */
  levels: number;
  /** Feature maps of the top level on the way down (the paper's 40). */
  baseWidth: number;
  /** Per pooling: down-path width of level l + 1 = ⌊width of level l · fmapIncFactors[l]⌋ (the paper's 2). */
  fmapIncFactors: number[];
  /**
   * Per pooling: how the up path narrows again. Up-path width of level l = ⌊f_l · Π_{j≥l} inc_j / Π_{j≥l} dec_j⌋ =
   * ⌊f_bottom / Π_{j≥l} dec_j⌋ (funlib's fmap_dec_factors; f_l is the down-path width of level l). dec = inc gives a
   * standard U-Net (up width = down width); PatchPerPix keeps the up path wide so that hundreds of outputs per pixel
   * come from hundreds of feature maps: 40·2⁴ = 640 over 1.1, 1.1², 1.1³, 1.1⁴ gives 581, 528, 480, 437 (DSB).
   */
  fmapDecFactors: number[];
  /** Per pooling, per spatial axis: the max-pool window and stride, and the nearest upsampling factor back. */
  downsampleFactors: number[][];
  /** Per resolution level (levels + 1), per spatial axis: the kernel of both convs there, down and up; odd sizes. */
  kernelSizes: number[][];
  /** Seeds the initial weights. */
  seed: number;
}

const uniform = (levels: number, value: number) => new Array<number>(levels).fill(value);
const uniformAxes = (levels: number, ndim: number, value: number) => Array.from({ length: levels }, () => new Array<number>(ndim).fill(value));

function preset(ndim: 2 | 3, levels: number, baseWidth: number, inc: number, dec: number): UNetConfig {
  return {
    ndim, inChannels: 1, levels, baseWidth, fmapIncFactors: uniform(levels, inc), fmapDecFactors: uniform(levels, dec),
    downsampleFactors: uniformAxes(levels, ndim, 2), kernelSizes: uniformAxes(levels + 1, ndim, 3), seed: 0,
  };
}

/**
 * Named configs. `paper`: the DSB2018 setup (4 poolings, 40 maps doubling, dec 1.1). `paper-3d`: nuclei3d (3 poolings,
 * 20 maps tripling; the authors' config keeps the up path at the bottom's 540 maps, dec 1). `small` and `small-3d`
 * (2 poolings, 8 maps) are sized for a software GPU.
 */
export const unetPresets: Readonly<Record<string, Readonly<UNetConfig>>> = {
  paper: preset(2, 4, 40, 2, 1.1),
  'paper-3d': preset(3, 3, 20, 3, 1),
  small: preset(2, 2, 8, 2, 1.1),
  'small-3d': preset(3, 2, 8, 2, 1.1),
};

const isPositiveInt = (v: unknown): v is number => typeof v === 'number' && Number.isInteger(v) && v > 0;
const isPositive = (v: unknown): v is number => typeof v === 'number' && v > 0 && Number.isFinite(v);
const perLevelField = ['fmapIncFactors', 'fmapDecFactors', 'downsampleFactors', 'kernelSizes'] as const;

/**
 * A full config from a partial one: missing fields come from the `paper` preset of the config's dimension (`paper-3d`
 * for ndim 3). Where `levels` differs from that preset's, missing per-level lists repeat the preset's (uniform) value
 * for every level and axis. Throws naming the first bad field.
 */
export function unetConfig(user: Record<string, unknown> = {}): UNetConfig {
  const base = unetPresets[user.ndim === 3 ? 'paper-3d' : 'paper'];
  const known = new Set(Object.keys(base));
  const unknown = Object.keys(user).filter((k) => !known.has(k));
  if (unknown.length) throw new Error(`unet: unknown config field ${unknown.map((k) => `"${k}"`).join(', ')}`);
  const c = { ...base, ...user } as UNetConfig;
  const bad = (field: string, want: string) => new Error(`unet: ${field} must be ${want}, got ${JSON.stringify(c[field as keyof UNetConfig])}`);
  if (c.ndim !== 2 && c.ndim !== 3) throw bad('ndim', '2 or 3');
  for (const f of ['inChannels', 'levels', 'baseWidth'] as const) if (!isPositiveInt(c[f])) throw bad(f, 'a positive integer');
  const L = c.levels;
  if (L !== base.levels) {
    for (const f of perLevelField) {
      if (user[f] !== undefined) continue;
      if (f === 'fmapIncFactors' || f === 'fmapDecFactors') c[f] = uniform(L, base[f][0]);
      else c[f] = uniformAxes(f === 'kernelSizes' ? L + 1 : L, c.ndim, base[f][0][0]);
    }
  }
  for (const f of ['fmapIncFactors', 'fmapDecFactors'] as const) {
    if (!Array.isArray(c[f]) || c[f].length !== L || !c[f].every(isPositive)) throw bad(f, `${L} positive numbers (one per pooling; levels is ${L})`);
  }
  const perAxis = (f: 'downsampleFactors' | 'kernelSizes', count: number, what: string, ok: (v: number) => boolean) => {
    const v = c[f];
    if (!Array.isArray(v) || v.length !== count || !v.every((l) => Array.isArray(l) && l.length === c.ndim && l.every((k) => isPositiveInt(k) && ok(k)))) {
      throw bad(f, `${count} lists of ${c.ndim} ${what} (${count === L ? 'one per pooling' : 'one per resolution level'}, one per spatial axis; levels is ${L})`);
    }
  };
  perAxis('downsampleFactors', L, 'positive integers', () => true);
  // Odd kernels shrink by an even amount, so skip crops and the context are whole pixels on both sides.
  perAxis('kernelSizes', L + 1, 'odd positive integers', (k) => k % 2 === 1);
  if (!(Number.isSafeInteger(c.seed) && c.seed >= 0 && c.seed < 2 ** 32)) throw bad('seed', 'an integer in [0, 2^32)');
  const config: UNetConfig = {
    ...c, fmapIncFactors: [...c.fmapIncFactors], fmapDecFactors: [...c.fmapDecFactors],
    downsampleFactors: c.downsampleFactors.map((l) => [...l]), kernelSizes: c.kernelSizes.map((l) => [...l]),
  };
  const { down, up } = unetWidths(config);
  if (down.some((w) => w < 1)) throw bad('fmapIncFactors', `factors that leave every level a feature map (down-path widths [${down.join(', ')}])`);
  if (up.some((w) => w < 1)) throw bad('fmapDecFactors', `factors that leave every level a feature map (up-path widths [${up.join(', ')}])`);
  return config;
}

/**
 * Feature maps per level: `down[l]` for l = 0..levels (down[levels] is the bottom), `up[l]` for l = 0..levels − 1
 * (up[0] is the output's). As funlib computes them: down[l + 1] = ⌊down[l]·inc[l]⌋ and
 * up[l] = ⌊down[l]·Π_{j≥l} inc[j] / Π_{j≥l} dec[j]⌋, in that order of float operations.
 */
export function unetWidths(c: Pick<UNetConfig, 'levels' | 'baseWidth' | 'fmapIncFactors' | 'fmapDecFactors'>): { down: number[]; up: number[] } {
  const down = [c.baseWidth];
  for (let l = 0; l < c.levels; l++) down.push(Math.floor(down[l] * c.fmapIncFactors[l]));
  const product = (v: number[]) => v.reduce((a, b) => a * b, 1);
  const up = Array.from({ length: c.levels }, (_, l) => Math.floor((down[l] * product(c.fmapIncFactors.slice(l))) / product(c.fmapDecFactors.slice(l))));
  return { down, up };
}

/** The size rules of one config, per spatial axis. */
export interface UNetGeometry {
  /** The smallest valid input size. */
  minInput: number[];
  /** Valid input sizes are minInput + k·step: the product of the pooling factors. */
  step: number[];
  /** (input − output) / 2 for every valid input. */
  context: number[];
}

/**
 * Per axis, with s_l the level's size on the way down and u_l on the way up: s_{l+1} = (s_l − shrink_l) / p_l, the
 * bottom b = s_L − shrink_L, u_l = p_l·u_{l+1} − shrink_l (u_L = b), output u_0; shrink_l = 2·(k_l − 1) for two
 * convs. The smallest bottom size keeps every u_l ≥ 1; the smallest input is the down path run backwards from it.
 */
export function unetGeometry(c: Pick<UNetConfig, 'ndim' | 'levels' | 'downsampleFactors' | 'kernelSizes'>): UNetGeometry {
  const geometry: UNetGeometry = { minInput: [], step: [], context: [] };
  for (let a = 0; a < c.ndim; a++) {
    const shrink = c.kernelSizes.map((k) => 2 * (k[a] - 1));
    const pool = c.downsampleFactors.map((p) => p[a]);
    // need: the smallest u_l (from level 0 downwards) that keeps every u above it at ≥ 1.
    let need = 1;
    for (let l = 0; l < c.levels; l++) need = Math.max(1, Math.ceil((need + shrink[l]) / pool[l]));
    let input = need + shrink[c.levels];
    let output = need;
    for (let l = c.levels - 1; l >= 0; l--) {
      input = input * pool[l] + shrink[l];
      output = output * pool[l] - shrink[l];
    }
    geometry.minInput.push(input);
    geometry.step.push(pool.reduce((p, q) => p * q, 1));
    geometry.context.push((input - output) / 2);
  }
  return geometry;
}

/** The output's spatial size for a valid input size; throws naming the axis and the nearest valid sizes otherwise. */
export function unetOutputSize(c: Pick<UNetConfig, 'ndim' | 'levels' | 'downsampleFactors' | 'kernelSizes'>, input: readonly number[]): number[] {
  const g = unetGeometry(c);
  if (input.length !== c.ndim) throw new Error(`unet: an input size needs ${c.ndim} spatial axes, got [${input.join(', ')}]`);
  return input.map((size, a) => {
    const k = (size - g.minInput[a]) / g.step[a];
    if (!Number.isInteger(size) || !Number.isInteger(k) || k < 0) {
      const above = g.minInput[a] + Math.max(0, Math.ceil(k)) * g.step[a];
      const below = above - g.step[a] >= g.minInput[a] ? `${above - g.step[a]} or ` : '';
      throw new Error(
        `unet: input size ${size} along spatial axis ${a} is not valid (valid sizes are ${g.minInput[a]} + k·${g.step[a]}: ` +
          `every pooling must divide evenly and every level keep a pixel); nearest: ${below}${above}`,
      );
    }
    return size - 2 * g.context[a];
  });
}

/** The smallest valid input size ≥ `atLeast`, per axis (pad an image up to it). */
export function unetValidInputSize(c: Pick<UNetConfig, 'ndim' | 'levels' | 'downsampleFactors' | 'kernelSizes'>, atLeast: readonly number[]): number[] {
  const g = unetGeometry(c);
  if (atLeast.length !== c.ndim) throw new Error(`unet: a size needs ${c.ndim} spatial axes, got [${atLeast.join(', ')}]`);
  return atLeast.map((s, a) => g.minInput[a] + Math.max(0, Math.ceil((s - g.minInput[a]) / g.step[a])) * g.step[a]);
}

/** The smallest valid input size whose output is at least `output`, per axis (a tile for `output` kept pixels). */
export function unetInputSizeFor(c: Pick<UNetConfig, 'ndim' | 'levels' | 'downsampleFactors' | 'kernelSizes'>, output: readonly number[]): number[] {
  const g = unetGeometry(c);
  if (output.length !== c.ndim) throw new Error(`unet: an output size needs ${c.ndim} spatial axes, got [${output.join(', ')}]`);
  return unetValidInputSize(c, output.map((o, a) => o + 2 * g.context[a]));
}

export class UNet {
  readonly config: Readonly<UNetConfig>;
  readonly ndim: 2 | 3;
  /** Feature maps of the output (the up path's top level). */
  readonly outChannels: number;
  readonly widths: { readonly down: readonly number[]; readonly up: readonly number[] };
  readonly geometry: Readonly<UNetGeometry>;
  private readonly tensors = new Map<string, NamedTensor>();

  constructor(
    readonly engine: Engine,
    config: Record<string, unknown> = {},
  ) {
    const c = unetConfig(config);
    this.config = c;
    this.ndim = c.ndim;
    this.widths = unetWidths(c);
    this.geometry = unetGeometry(c);
    const { down, up } = this.widths;
    this.outChannels = up[0];
    // He init for the ReLUs that follow every conv; seeds seed·2^16 + the tensor's index, as in the other models.
    let initSeed = c.seed * 2 ** 16;
    const convPass = (name: string, inChannels: number, outChannels: number, kernel: number[]) => {
      for (const [i, cin] of [[0, inChannels], [2, outChannels]]) {
        this.tensors.set(`${name}.conv_pass.${i}.weight`, { tensor: heNormal(engine, [outChannels, cin, ...kernel], initSeed++), trainable: true });
        this.tensors.set(`${name}.conv_pass.${i}.bias`, { tensor: zerosInit(engine, [outChannels]), trainable: true });
      }
    };
    for (let l = 0; l <= c.levels; l++) convPass(`l_conv.${l}`, l ? down[l - 1] : c.inChannels, down[l], c.kernelSizes[l]);
    for (let l = c.levels - 1; l >= 0; l--) convPass(`r_conv.0.${l}`, down[l] + (l + 1 < c.levels ? up[l + 1] : down[c.levels]), up[l], c.kernelSizes[l]);
  }

  /** Context per axis: the pixels an output loses on each side; a tile's margin. */
  get context(): readonly number[] {
    return this.geometry.context;
  }

  outputSize(input: readonly number[]): number[] {
    return unetOutputSize(this.config, input);
  }

  validInputSize(atLeast: readonly number[]): number[] {
    return unetValidInputSize(this.config, atLeast);
  }

  inputSizeFor(output: readonly number[]): number[] {
    return unetInputSizeFor(this.config, output);
  }

  /** Every tensor by its funlib.learn.torch name; all trainable. */
  namedTensors(): Map<string, NamedTensor> {
    return new Map(this.tensors);
  }

  /**
   * Features [N, outChannels, ...outputSize(input)] of images [N, inChannels, ...input] of a valid size. Without
   * gradients each step's temporaries, and each skip connection once used, are freed at once.
   */
  forward(x: Tensor): Tensor {
    const c = this.config;
    const e = this.engine;
    if (x.rank !== c.ndim + 2 || x.shape[1] !== c.inChannels) {
      throw new Error(`unet: input must be [N, ${c.inChannels}, ${c.ndim === 3 ? 'D, ' : ''}H, W], got [${x.shape.join(', ')}]`);
    }
    this.outputSize(x.shape.slice(2));
    const grad = e.gradEnabled;
    // Runs one step; without gradients its temporaries go at once, and so do the inputs it consumed (never x).
    const step = (fn: () => Tensor, ...consumed: Tensor[]) => {
      if (grad) return fn();
      const out = e.tidy(fn);
      for (const t of consumed) if (t !== x) t.dispose();
      return out;
    };
    const skips: Tensor[] = [];
    let h = x;
    for (let l = 0; l <= c.levels; l++) {
      const pooled = h;
      h = step(() => this.convPass(`l_conv.${l}`, pooled), pooled);
      if (l < c.levels) {
        const skip = h;
        skips.push(skip);
        h = step(() => maxPool(skip, { kernel: c.downsampleFactors[l] }));
      }
    }
    for (let l = c.levels - 1; l >= 0; l--) {
      const below = h;
      const skip = skips[l];
      h = step(() => {
        const up = upsample(below, { scale: c.downsampleFactors[l] });
        const size = up.shape.slice(2);
        const begin = skip.shape.slice(2).map((s, a) => (s - size[a]) / 2);
        const cropped = slice(skip, [0, 0, ...begin], [skip.shape[0], skip.shape[1], ...size]);
        return this.convPass(`r_conv.0.${l}`, concat([cropped, up], 1));
      }, below, skip);
    }
    return h;
  }

  dispose(): void {
    for (const { tensor } of this.tensors.values()) tensor.dispose();
    this.tensors.clear();
  }

  private convPass(name: string, x: Tensor): Tensor {
    const p = (i: number, kind: string) => this.tensors.get(`${name}.conv_pass.${i}.${kind}`)!.tensor;
    return relu(conv(relu(conv(x, p(0, 'weight'), p(0, 'bias'))), p(2, 'weight'), p(2, 'bias')));
  }
}
