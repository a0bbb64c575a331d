// Pooling (shaders/pool.wgsl): max and average pooling over 2D or 3D windows of x [N, C, (D), H, W], with ONNX pads
// [begin..., end...], dilations and ceil_mode, and anisotropic windows such as (1, 2, 2). maxPool keeps the argmax of
// every output for its backward; both backward passes are gathers over the outputs covering each input element.
import { record } from '../engine/autograd.ts';
import type { Tensor } from '../engine/tensor.ts';
import { shaderConstants } from '../shaders.gen.ts';
import { expectF32 } from './elementwise.ts';
import { mean } from './reduce.ts';

const { WORKGROUP_SIZE } = shaderConstants.pool;

export interface PoolOptions {
  /** Window size per spatial axis (one number: the same on every axis). */
  kernel: number | readonly number[];
  /** Step per spatial axis (default: the kernel, as in PyTorch). */
  strides?: number | readonly number[];
  /**
   * ONNX pads [begin per axis..., end per axis...] (default 0). Every window must hold at least one input element, and
   * each is checked: "pads smaller than the kernel" ensures that only without dilation (dilated taps can step over a
   * thin image), and comparing with the dilated extent would let whole windows fall in the padding.
   */
  pads?: readonly number[];
  /** ONNX dilations: the step between a window's taps per spatial axis (default 1); a window spans (k − 1)·d + 1. */
  dilations?: number | readonly number[];
  /**
   * ONNX ceil_mode: round the output size up instead of down, so a last partial window is pooled too, except one that
   * would start in the end padding (PyTorch's rule, which ONNX follows) (default false).
   */
  ceilMode?: boolean;
}

export interface AvgPoolOptions extends PoolOptions {
  /**
   * Divide by the window's taps inside the padded input instead of those inside the image (default false). Taps that a
   * ceilMode window has beyond the end padding are never counted, as in PyTorch.
   */
  countIncludePad?: boolean;
}

interface PoolGeometry {
  /** Spatial shape of input and output as (D, H, W), D = 1 in 2D. */
  inShape: number[];
  outShape: number[];
  kernel: number[];
  strides: number[];
  dilations: number[];
  padBegin: number[];
  padEnd: number[];
  /** Full output shape [N, C, (Do), Ho, Wo]. */
  shape: number[];
}

/** A per-axis attribute given as one number or one per axis, checked. */
export function perAxis(op: string, name: string, value: number | readonly number[], dims: number, min: number): number[] {
  const list = typeof value === 'number' ? new Array<number>(dims).fill(value) : [...value];
  if (list.length !== dims || list.some((v) => !Number.isInteger(v) || v < min)) {
    throw new Error(`${op}: ${name} must be ${dims} integers ≥ ${min} (one per spatial axis), got [${list.join(', ')}]`);
  }
  return list;
}

function poolGeometry(op: string, x: Tensor, options: PoolOptions): PoolGeometry {
  expectF32(op, 'input', x);
  if (x.rank !== 4 && x.rank !== 5) throw new Error(`${op}: input must be [N, C, H, W] or [N, C, D, H, W], got [${x.shape.join(', ')}]`);
  const dims = x.rank - 2;
  const kernel = perAxis(op, 'kernel', options.kernel, dims, 1);
  const strides = perAxis(op, 'strides', options.strides ?? kernel, dims, 1);
  const dilations = perAxis(op, 'dilations', options.dilations ?? 1, dims, 1);
  const pads = perAxis(op, 'pads', options.pads ?? new Array<number>(2 * dims).fill(0), 2 * dims, 0);
  const spatial = x.shape.slice(2);
  const [kernelText, dilationsText, padsText] = [kernel, dilations, pads].map((v) => `[${v.join(', ')}]`);
  const outSpatial = spatial.map((s, a) => {
    const [k, d, stride, padBegin] = [kernel[a], dilations[a], strides[a], pads[a]];
    const span = s + padBegin + pads[dims + a] - ((k - 1) * d + 1);
    if (span < 0) {
      throw new Error(
        `${op}: kernel ${kernelText} (dilations ${dilationsText}) is larger than the input [${x.shape.join(', ')}] padded by ${padsText}`,
      );
    }
    let o = (options.ceilMode ? Math.ceil(span / stride) : Math.floor(span / stride)) + 1;
    if (options.ceilMode && (o - 1) * stride >= s + padBegin) o -= 1;
    for (let i = 0; i < o; i++) {
      // The window's first tap at or after the image start must also lie before its end.
      const start = i * stride - padBegin;
      const first = Math.max(0, Math.ceil(-start / d));
      if (first >= k || start + first * d >= s) {
        throw new Error(
          `${op}: pads ${padsText} leave output ${i} along spatial axis ${a} with only padding in its window ` +
            `(kernel ${kernelText}, dilations ${dilationsText})`,
        );
      }
    }
    return o;
  });
  const lift = (v: number[], fill: number) => (dims === 2 ? [fill, ...v] : v);
  return {
    inShape: lift(spatial, 1), outShape: lift(outSpatial, 1), kernel: lift(kernel, 1), strides: lift(strides, 1),
    dilations: lift(dilations, 1), padBegin: lift(pads.slice(0, dims), 0), padEnd: lift(pads.slice(dims), 0),
    shape: [x.shape[0], x.shape[1], ...outSpatial],
  };
}

function constants(g: PoolGeometry, countIncludePad = false): Record<string, number> {
  return { KD: g.kernel[0], KH: g.kernel[1], KW: g.kernel[2], COUNT_INCLUDE_PAD: countIncludePad ? 1 : 0 };
}

function params(g: PoolGeometry, n: number) {
  return {
    n, inShape: g.inShape, outShape: g.outShape, strides: g.strides, dilations: g.dilations, padBegin: g.padBegin,
    padEnd: g.padEnd,
  };
}

/** Maximum over each window; the gradient goes to the (first) maximal element of each window. */
export function maxPool(x: Tensor, options: PoolOptions): Tensor {
  const g = poolGeometry('maxPool', x, options);
  const e = x.engine;
  const out = e.empty(g.shape);
  const argmax = e.empty(g.shape, 'i32');
  e.dispatch({
    shader: 'pool', entry: 'max_pool_forward', constants: constants(g), label: 'maxPool',
    bindings: { x, out, argmax, params: params(g, out.size) }, workgroups: e.groups1D(out.size, WORKGROUP_SIZE),
  });
  const y = record('maxPool', [x], out, (gy) => {
    const gx = e.empty(x.shape);
    e.dispatch({
      shader: 'pool', entry: 'max_pool_backward', constants: constants(g), label: 'maxPool.backward',
      bindings: { gy, argmaxIn: argmax, gx, params: params(g, gx.size) }, workgroups: e.groups1D(gx.size, WORKGROUP_SIZE),
    });
    return [gx];
  });
  // Without a recorded backward nothing will read the argmax.
  if (!y.node) argmax.dispose();
  return y;
}

/** Mean over each window; the gradient spreads evenly over the elements each window averaged. */
export function avgPool(x: Tensor, options: AvgPoolOptions): Tensor {
  const g = poolGeometry('avgPool', x, options);
  const include = options.countIncludePad ?? false;
  const e = x.engine;
  const out = e.empty(g.shape);
  e.dispatch({
    shader: 'pool', entry: 'avg_pool_forward', constants: constants(g, include), label: 'avgPool',
    bindings: { x, out, params: params(g, out.size) }, workgroups: e.groups1D(out.size, WORKGROUP_SIZE),
  });
  return record('avgPool', [x], out, (gy) => {
    const gx = e.empty(x.shape);
    e.dispatch({
      shader: 'pool', entry: 'avg_pool_backward', constants: constants(g, include), label: 'avgPool.backward',
      bindings: { gy, gx, params: params(g, gx.size) }, workgroups: e.groups1D(gx.size, WORKGROUP_SIZE),
    });
    return [gx];
  });
}

/** Mean over all spatial axes, keeping them as size 1: [N, C, (D), H, W] → [N, C, (1), 1, 1]. */
export function globalAvgPool(x: Tensor): Tensor {
  if (x.rank < 3) throw new Error(`globalAvgPool: input must be [N, C, spatial...], got [${x.shape.join(', ')}]`);
  return mean(x, [...Array(x.rank - 2).keys()].map((k) => k + 2), true);
}
