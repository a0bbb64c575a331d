// Resampling (shaders/upsample.wgsl): nearest and bilinear (2D) / trilinear (3D) upsample of x [N, C, (D), H, W] by
// a scale or to a size, with the coordinate rules of PyTorch's F.interpolate (recompute_scale_factor off) and its
// alignCorners option. Integer, fractional and anisotropic scales; downsampling works too. The backward is a gather.
import { record } from '../engine/autograd.ts';
import type { Tensor } from '../engine/tensor.ts';
import { shaderConstants } from '../shaders.gen.ts';
import { expectF32 } from './elementwise.ts';

const { WORKGROUP_SIZE } = shaderConstants.upsample;

export interface UpsampleOptions {
  /** Output/input size ratio per spatial axis (one number: every axis); output size = ⌊in · scale⌋. */
  scale?: number | readonly number[];
  /** Output spatial size (instead of scale). */
  size?: readonly number[];
  /** 'nearest' (default): PyTorch's 'nearest' (source = ⌊o · in/out⌋); 'linear': bilinear in 2D, trilinear in 3D. */
  mode?: 'nearest' | 'linear';
  /** linear only: map corner pixel centres onto corner pixel centres (PyTorch's align_corners=True). Default false. */
  alignCorners?: boolean;
}

export function upsample(x: Tensor, options: UpsampleOptions): Tensor {
  expectF32('upsample', 'input', x);
  if (x.rank !== 4 && x.rank !== 5) throw new Error(`upsample: input must be [N, C, H, W] or [N, C, D, H, W], got [${x.shape.join(', ')}]`);
  const dims = x.rank - 2;
  const mode = options.mode ?? 'nearest';
  const alignCorners = options.alignCorners ?? false;
  if (mode !== 'nearest' && mode !== 'linear') throw new Error(`upsample: mode must be 'nearest' or 'linear', got '${mode}'`);
  if (alignCorners && mode !== 'linear') throw new Error("upsample: alignCorners needs mode 'linear'");
  if ((options.scale === undefined) === (options.size === undefined)) throw new Error('upsample: give exactly one of scale and size');
  const spatial = x.shape.slice(2);
  let outSpatial: number[];
  let ratio: number[];
  if (options.size !== undefined) {
    outSpatial = [...options.size];
    if (outSpatial.length !== dims || outSpatial.some((s) => !Number.isInteger(s) || s < 1)) {
      throw new Error(`upsample: size must be ${dims} positive integers, got [${outSpatial.join(', ')}]`);
    }
    ratio = spatial.map((s, a) => s / outSpatial[a]);
  } else {
    const scale = typeof options.scale === 'number' ? new Array<number>(dims).fill(options.scale) : [...options.scale!];
    if (scale.length !== dims || scale.some((s) => !(s > 0))) {
      throw new Error(`upsample: scale must be ${dims} positive numbers, got [${scale.join(', ')}]`);
    }
    outSpatial = spatial.map((s, a) => Math.floor(s * scale[a]));
    if (outSpatial.some((s) => s < 1)) throw new Error(`upsample: scale [${scale.join(', ')}] leaves an empty output from [${x.shape.join(', ')}]`);
    ratio = scale.map((s) => 1 / s);
  }
  if (alignCorners) ratio = spatial.map((s, a) => (outSpatial[a] > 1 ? (s - 1) / (outSpatial[a] - 1) : 0));

  const lift = (v: number[], fill: number) => (dims === 2 ? [fill, ...v] : v);
  const geometry = { inShape: lift(spatial, 1), outShape: lift(outSpatial, 1), ratio: lift(ratio, 1) };
  const constants = { LINEAR: mode === 'linear' ? 1 : 0, ALIGN_CORNERS: alignCorners ? 1 : 0 };
  const e = x.engine;
  const out = e.empty([x.shape[0], x.shape[1], ...outSpatial]);
  e.dispatch({
    shader: 'upsample', entry: 'upsample_forward', constants, label: 'upsample',
    bindings: { x, out, params: { n: out.size, ...geometry } }, workgroups: e.groups1D(out.size, WORKGROUP_SIZE),
  });
  return record('upsample', [x], out, (gy) => {
    const gx = e.empty(x.shape);
    e.dispatch({
      shader: 'upsample', entry: 'upsample_backward', constants, label: 'upsample.backward',
      bindings: { gy, gx, params: { n: gx.size, ...geometry } }, workgroups: e.groups1D(gx.size, WORKGROUP_SIZE),
    });
    return [gx];
  });
}
