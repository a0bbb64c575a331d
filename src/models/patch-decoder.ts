// PatchPerPix's patch decoder (ppp+dec; papers/patchperpix.md, SPEC.md "PatchPerPix"): the decoding half of an
// autoencoder that turns a pixel's shape code into logits of its instance's P×P (P×P×P) patch. The code (256 values for
// DSB) is reshaped to c×s×s (16×4×4), a 1x1 conv + ReLU widens it (128), and each following stage repeats pixels ×2
// (nearest, no conv) and runs two 'same' 3x3 convs (64, 32, then 1 channel); the output is cropped to the patch at its
// first pixel. Trained end to end with the U-Net on codes sampled at foreground pixels, so the batch is [M, code].
//
// As in the authors' decoder, both convs of the last (1-channel) stage are linear and the crop starts at the origin
// (tf.slice with offset 0), not at the centre.
import type { Engine } from '../engine/engine.ts';
import type { Tensor } from '../engine/tensor.ts';
import { conv } from '../kernels/conv.ts';
import { relu } from '../kernels/elementwise.ts';
import { heNormal, zerosInit } from '../kernels/init.ts';
import { reshape, slice } from '../kernels/shape.ts';
import { upsample } from '../kernels/upsample.ts';
import type { NamedTensor } from './model.ts';

export interface PatchDecoderConfig {
  ndim: 2 | 3;
  /** The patch P per spatial axis (25×25 for DSB, 41×41 for BBBC010, 9×9×9 for nuclei3d). */
  patchSize: number[];
  /** [c, s per spatial axis]: the code of c·Π s values is read as c channels of an s×s(×s) image. */
  codeShape: number[];
  /**
   * Channels of the 1x1 conv from the code, then of each ×2 stage but the last, which makes 1 channel (the paper's
   * 128, 64, 32: three stages). The decoded size is s·2^widths.length per axis, at least P.
   */
  widths: number[];
  /** Seeds the initial weights. */
  seed: number;
}

const widths = [128, 64, 32];

/**
 * Named configs: `paper` is DSB2018's (code 256 = 16×4×4, 25×25 patches), `bbbc010` the worms' (code 252 = 7×6×6, 41×41).
 * `paper-3d` is ours for 9×9×9 patches (code 256 = 32×2×2×2): the paper ran plain ppp, without a decoder, in 3D.
 */
export const patchDecoderPresets: Readonly<Record<string, Readonly<PatchDecoderConfig>>> = {
  paper: { ndim: 2, patchSize: [25, 25], codeShape: [16, 4, 4], widths, seed: 0 },
  bbbc010: { ndim: 2, patchSize: [41, 41], codeShape: [7, 6, 6], widths, seed: 0 },
  'paper-3d': { ndim: 3, patchSize: [9, 9, 9], codeShape: [32, 2, 2, 2], widths, seed: 0 },
};

const isPositiveInt = (v: unknown): v is number => typeof v === 'number' && Number.isInteger(v) && v > 0;

/**
 * A full config from a partial one: missing fields come from the `paper` preset of the config's dimension (`paper-3d`
 * for ndim 3). Throws naming the first bad field.
 */
export function patchDecoderConfig(user: Record<string, unknown> = {}): PatchDecoderConfig {
  const base = patchDecoderPresets[user.ndim === 3 ? 'paper-3d' : 'paper'];
  const known = new Set(Object.keys(base));
  const unknown = Object.keys(user).filter((k) => !known.has(k));
  if (unknown.length) throw new Error(`patchDecoder: unknown config field ${unknown.map((k) => `"${k}"`).join(', ')}`);
  const c = { ...base, ...user } as PatchDecoderConfig;
  const bad = (field: string, want: string) => new Error(`patchDecoder: ${field} must be ${want}, got ${JSON.stringify(c[field as keyof PatchDecoderConfig])}`);
  if (c.ndim !== 2 && c.ndim !== 3) throw bad('ndim', '2 or 3');
  if (!Array.isArray(c.patchSize) || c.patchSize.length !== c.ndim || !c.patchSize.every(isPositiveInt)) {
    throw bad('patchSize', `${c.ndim} positive integers (one per spatial axis)`);
  }
  if (!Array.isArray(c.codeShape) || c.codeShape.length !== c.ndim + 1 || !c.codeShape.every(isPositiveInt)) {
    throw bad('codeShape', `${c.ndim + 1} positive integers ([channels, size per spatial axis])`);
  }
  if (!Array.isArray(c.widths) || c.widths.length === 0 || !c.widths.every(isPositiveInt)) throw bad('widths', 'a non-empty list of positive integers');
  const decoded = c.codeShape.slice(1).map((s) => s * 2 ** c.widths.length);
  if (c.patchSize.some((p, a) => p > decoded[a])) {
    throw bad('patchSize', `at most the decoded size [${decoded.join(', ')}] (codeShape sizes × 2^${c.widths.length} stages) on every axis`);
  }
  if (!(Number.isSafeInteger(c.seed) && c.seed >= 0 && c.seed < 2 ** 32)) throw bad('seed', 'an integer in [0, 2^32)');
  return { ...c, patchSize: [...c.patchSize], codeShape: [...c.codeShape], widths: [...c.widths] };
}

export class PatchDecoder {
  readonly config: Readonly<PatchDecoderConfig>;
  readonly ndim: 2 | 3;
  /** Values per code: Π codeShape. */
  readonly codeLength: number;
  private readonly tensors = new Map<string, NamedTensor>();
  /** Output channels of each stage's two convs: widths[1..], then 1. */
  private readonly stages: number[];

  constructor(
    readonly engine: Engine,
    config: Record<string, unknown> = {},
  ) {
    const c = patchDecoderConfig(config);
    this.config = c;
    this.ndim = c.ndim;
    this.codeLength = c.codeShape.reduce((a, b) => a * b, 1);
    this.stages = [...c.widths.slice(1), 1];
    // He init (ReLU gain) where a ReLU follows, gain 1 for the linear last stage; seeds as in the other models.
    let initSeed = c.seed * 2 ** 16;
    const create = (name: string, shape: number[], linear: boolean) => {
      this.tensors.set(`${name}.weight`, { tensor: heNormal(engine, shape, initSeed++, linear ? { gain: 1 } : {}), trainable: true });
      this.tensors.set(`${name}.bias`, { tensor: zerosInit(engine, [shape[0]]), trainable: true });
    };
    const ones = new Array<number>(c.ndim).fill(1);
    const threes = new Array<number>(c.ndim).fill(3);
    create('from_code', [c.widths[0], c.codeShape[0], ...ones], false);
    this.stages.forEach((width, i) => {
      const last = i === this.stages.length - 1;
      create(`layers.${i}.0`, [width, i ? this.stages[i - 1] : c.widths[0], ...threes], last);
      create(`layers.${i}.1`, [width, width, ...threes], last);
    });
  }

  /** Every tensor by a stable name: "from_code.weight", "layers.S.K.weight" (stage S, conv K); all trainable. */
  namedTensors(): Map<string, NamedTensor> {
    return new Map(this.tensors);
  }

  /** Patch logits [M, 1, ...patchSize] of codes [M, codeLength]; reshape to [M, P²] (a view) where a flat patch fits. */
  forward(codes: Tensor): Tensor {
    const c = this.config;
    if (codes.rank !== 2 || codes.shape[1] !== this.codeLength) {
      throw new Error(`patchDecoder: codes must be [M, ${this.codeLength}] (codeShape [${c.codeShape.join(', ')}]), got [${codes.shape.join(', ')}]`);
    }
    const e = this.engine;
    const grad = e.gradEnabled;
    const p = (name: string) => [this.tensors.get(`${name}.weight`)!.tensor, this.tensors.get(`${name}.bias`)!.tensor] as const;
    const same = { pads: new Array<number>(2 * c.ndim).fill(1) };
    // Without gradients each stage's temporaries go at once.
    const step = (fn: () => Tensor, consumed: Tensor | null) => {
      if (grad) return fn();
      const out = e.tidy(fn);
      consumed?.dispose();
      return out;
    };
    let h = step(() => relu(conv(reshape(codes, [codes.shape[0], ...c.codeShape]), ...p('from_code'))), null);
    this.stages.forEach((_, i) => {
      const input = h;
      const last = i === this.stages.length - 1;
      const act = (t: Tensor) => (last ? t : relu(t));
      h = step(() => act(conv(act(conv(upsample(input, { scale: 2 }), ...p(`layers.${i}.0`), same)), ...p(`layers.${i}.1`), same)), input);
    });
    if (h.shape.slice(2).every((s, a) => s === c.patchSize[a])) return h;
    const full = h;
    return step(() => slice(full, full.shape.map(() => 0), [full.shape[0], 1, ...c.patchSize]), full);
  }

  dispose(): void {
    for (const { tensor } of this.tensors.values()) tensor.dispose();
    this.tensors.clear();
  }
}
