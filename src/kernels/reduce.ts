// Reductions over axes (shaders/reduce.wgsl): sum, mean, max, and sumTo, which undoes a broadcast.
import { record } from '../engine/autograd.ts';
import type { Shape, Tensor } from '../engine/tensor.ts';
import { stridesOf } from '../engine/tensor.ts';
import { shaderConstants } from '../shaders.gen.ts';
import { broadcastTo, expectF32, mul, scale, binaryMask } from './elementwise.ts';

const { SUM, MAX, WORKGROUP_SIZE, MAX_DIMS } = shaderConstants.reduce;

/** Axes as non-negative, sorted, unique indices (negative axes count from the end); all axes when omitted. */
export function normalizeAxes(op: string, rank: number, axes?: number | readonly number[]): number[] {
  const list = axes === undefined ? [...Array(rank).keys()] : typeof axes === 'number' ? [axes] : [...axes];
  const out = list.map((a) => {
    const k = a < 0 ? a + rank : a;
    if (!Number.isInteger(k) || k < 0 || k >= rank) throw new Error(`${op}: axis ${a} is out of range for rank ${rank}`);
    return k;
  });
  return [...new Set(out)].sort((p, q) => p - q);
}

/**
 * The reduction as kept axes × reduced axes of x: neighbouring axes of the same kind merge (x is contiguous, so they
 * stay one strided axis) and size-1 axes drop, so the bias-gradient pattern [N, C, H, W] over (0, 2, 3) becomes kept
 * [C] × reduced [N, H·W] and the kernel's innermost reduced axis is long.
 */
function reductionAxes(shape: Shape, axes: number[]) {
  const strides = stridesOf(shape);
  const kept = { shape: [] as number[], strides: [] as number[] };
  const reduced = { shape: [] as number[], strides: [] as number[] };
  let previous: typeof kept | null = null;
  for (let k = 0; k < shape.length; k++) {
    if (shape[k] === 1) continue;
    const into = axes.includes(k) ? reduced : kept;
    const last = into.shape.length - 1;
    if (previous === into) {
      into.shape[last] *= shape[k];
      into.strides[last] = strides[k];
    } else {
      into.shape.push(shape[k]);
      into.strides.push(strides[k]);
    }
    previous = into;
  }
  // An empty reduction (all reduced axes of size 1) still reads one element per output.
  if (reduced.shape.length === 0) {
    reduced.shape.push(1);
    reduced.strides.push(1);
  }
  return { kept, reduced };
}

/**
 * On a CPU adapter, from this many outputs on (two workgroups: both cores of lavapipe's two), contiguous vec4 rows are
 * reduced one output per invocation: lavapipe summed 2048 rows of 2048 in 2.8-3.5 ms this way against 56-70 ms with
 * a workgroup (and its tree) per row; a workgroup runs on one thread there. A GPU keeps the workgroup per row, whose
 * invocations read neighbouring values.
 */
const SERIAL_VEC4_OUTPUTS = 512;

function reduceKernel(op: 'sum' | 'max', x: Tensor, axes: number[], outShape: Shape, scaleBy: number): Tensor {
  expectF32(op, 'input', x);
  if (x.rank > MAX_DIMS) throw new Error(`${op}: at most ${MAX_DIMS} dimensions, got ${x.rank}`);
  const e = x.engine;
  const out = e.empty(outShape);
  const count = axes.reduce((n, k) => n * x.shape[k], 1);
  if (count === 0) throw new Error(`${op}: cannot reduce over an empty axis of [${x.shape.join(', ')}]`);
  const { kept, reduced } = reductionAxes(x.shape, axes);
  const params = {
    outputs: out.size, count, keptRank: kept.shape.length, reducedRank: reduced.shape.length, scale: scaleBy,
    keptShape: kept.shape, keptStrides: kept.strides, reducedShape: reduced.shape, reducedStrides: reduced.strides,
  };
  // A workgroup per output pays off once there is enough to reduce per output and too few outputs to fill the GPU.
  const perWorkgroup = count >= WORKGROUP_SIZE || (count >= 32 && out.size < 4096);
  // Rows of the innermost reduced axis that are contiguous with 4k elements all start on a vec4 (x is contiguous, so
  // every other stride is a multiple of that axis's extent): they are read as vec4s.
  const last = reduced.shape.length - 1;
  const vec4 = reduced.strides[last] === 1 && reduced.shape[last] % 4 === 0;
  const serialVec4 = vec4 && e.cpuAdapter && out.size >= SERIAL_VEC4_OUTPUTS;
  const entry = serialVec4 ? 'reduce_serial_vec4' : perWorkgroup ? (vec4 ? 'reduce_workgroup_vec4' : 'reduce_workgroup') : 'reduce_serial';
  e.dispatch({
    shader: 'reduce', entry, constants: { OP: op === 'sum' ? SUM : MAX },
    label: op, bindings: vec4 && entry !== 'reduce_serial' ? { x4: x, out, params } : { x, out, params },
    workgroups: perWorkgroup && !serialVec4 ? e.groups1D(out.size, 1) : e.groups1D(out.size, WORKGROUP_SIZE),
  });
  return out;
}

function reducedShape(x: Tensor, axes: number[], keepDims: boolean): number[] {
  return keepDims ? x.shape.map((d, k) => (axes.includes(k) ? 1 : d)) : x.shape.filter((_, k) => !axes.includes(k));
}

/** Shape of the result with the reduced axes kept as 1, for broadcasting a gradient back. */
function keptDims(x: Tensor, axes: number[]): number[] {
  return x.shape.map((d, k) => (axes.includes(k) ? 1 : d));
}

export function sum(x: Tensor, axes?: number | readonly number[], keepDims = false): Tensor {
  const ax = normalizeAxes('sum', x.rank, axes);
  const y = reduceKernel('sum', x, ax, reducedShape(x, ax, keepDims), 1);
  return record('sum', [x], y, (gy) => [broadcastTo(x.engine.view(gy, keptDims(x, ax)), x.shape)]);
}

export function mean(x: Tensor, axes?: number | readonly number[], keepDims = false): Tensor {
  const ax = normalizeAxes('mean', x.rank, axes);
  const count = ax.reduce((n, k) => n * x.shape[k], 1);
  const y = reduceKernel('sum', x, ax, reducedShape(x, ax, keepDims), 1 / count);
  return record('mean', [x], y, (gy) => [scale(broadcastTo(x.engine.view(gy, keptDims(x, ax)), x.shape), 1 / count)]);
}

/** Maximum over axes; the gradient goes to every element equal to the maximum. */
export function max(x: Tensor, axes?: number | readonly number[], keepDims = false): Tensor {
  const ax = normalizeAxes('max', x.rank, axes);
  const y = reduceKernel('max', x, ax, reducedShape(x, ax, keepDims), 1);
  return record('max', [x], y, (gy) => {
    const e = x.engine;
    const isMax = binaryMask(x, broadcastTo(e.view(y, keptDims(x, ax)), x.shape));
    return [mul(isMax, broadcastTo(e.view(gy, keptDims(x, ax)), x.shape))];
  });
}

/** Sums `x` down to `shape` (which broadcasts to x's shape): the gradient of a broadcast. Returns x itself when the shapes match. */
export function sumTo(x: Tensor, shape: Shape): Tensor {
  if (x.rank === shape.length && x.shape.every((d, i) => d === shape[i])) return x;
  const lead = x.rank - shape.length;
  if (lead < 0) throw new Error(`sumTo: [${x.shape.join(', ')}] has fewer dimensions than [${shape.join(', ')}]`);
  const axes: number[] = [];
  for (let k = 0; k < x.rank; k++) {
    const target = k < lead ? 1 : shape[k - lead];
    if (k < lead || (target === 1 && x.shape[k] !== 1)) axes.push(k);
    else if (target !== x.shape[k]) throw new Error(`sumTo: [${x.shape.join(', ')}] does not reduce to [${shape.join(', ')}]`);
  }
  const y = reduceKernel('sum', x, axes, shape, 1);
  return record('sumTo', [x], y, (gy) => [broadcastTo(gy, x.shape)]);
}
