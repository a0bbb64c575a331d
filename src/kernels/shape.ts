// Shape ops (shaders/shape.wgsl). reshape, and slices that are one aligned contiguous block, are views of the input's
// storage; transpose, other slices, concat and pad copy; cast converts between dtypes. The copies move 32-bit words,
// so they work on f32, i32 and u32 alike; gradients (f32) flow through all but cast.
import { record } from '../engine/autograd.ts';
import { BYTES_PER_ELEMENT, typedArray, type DType } from '../engine/dtype.ts';
import { sizeOf, stridesOf, type Shape, type Tensor } from '../engine/tensor.ts';
import { shaderConstants } from '../shaders.gen.ts';

const { CONSTANT, REFLECT, F32, I32, U32, TILE, WORKGROUP_SIZE, MAX_DIMS } = shaderConstants.shape;

const fmt = (shape: Shape) => `[${shape.join(', ')}]`;

function checkRank(op: string, x: Tensor): void {
  if (x.rank > MAX_DIMS) throw new Error(`${op}: at most ${MAX_DIMS} dimensions, got ${fmt(x.shape)}`);
}

/**
 * Merges neighbouring axes that are contiguous in both stride sets and drops size-1 axes, so the kernel walks as few
 * dimensions as possible (a slice of whole rows becomes a 2D copy whatever the rank).
 */
function collapse(shape: Shape, a: Shape, b: Shape): [number[], number[], number[]] {
  const s: number[] = [];
  const sa: number[] = [];
  const sb: number[] = [];
  for (let k = 0; k < shape.length; k++) {
    if (shape[k] === 1) continue;
    const last = s.length - 1;
    if (last >= 0 && sa[last] === a[k] * shape[k] && sb[last] === b[k] * shape[k]) {
      s[last] *= shape[k];
      sa[last] = a[k];
      sb[last] = b[k];
    } else {
      s.push(shape[k]);
      sa.push(a[k]);
      sb.push(b[k]);
    }
  }
  return [s, sa, sb];
}

interface Region {
  base: number;
  strides: Shape;
}

/** For every coordinate c of `shape`: dst[dst.base + c·dst.strides] = src[src.base + c·src.strides]. */
function stridedCopy(label: string, from: Tensor, to: Tensor, shape: Shape, src: Region, dst: Region): void {
  const e = from.engine;
  const [s, srcStrides, dstStrides] = collapse(shape, src.strides, dst.strides);
  if (s.length > MAX_DIMS) throw new Error(`${label}: the copy needs ${s.length} dimensions, at most ${MAX_DIMS} are supported`);
  if (copyBlocks(from, to, s, src.base, srcStrides, dst.base, dstStrides)) return;
  const fromBits = e.view(from, from.shape, 0, 'u32');
  const toBits = e.view(to, to.shape, 0, 'u32');
  const n = sizeOf(shape);
  const copyParams = { n, rank: s.length, srcBase: src.base, dstBase: dst.base, shape: s, srcStrides, dstStrides };
  // A transpose in the narrow sense (the source's unit-stride axis is not the destination's): tiles through workgroup memory.
  const last = s.length - 1;
  const a = srcStrides.indexOf(1);
  const tiles = [Math.ceil(s[last] / TILE), Math.ceil(s[a] / TILE), n / (s[a] * s[last])] as const;
  if (a >= 0 && a < last && dstStrides[last] === 1 && tiles.every((t) => t <= e.device.limits.maxComputeWorkgroupsPerDimension)) {
    e.dispatch({
      shader: 'shape', entry: 'transpose_tiled', label,
      bindings: { src: fromBits, dst: toBits, copyParams, tileParams: { a, batches: tiles[2] } }, workgroups: tiles,
    });
  } else {
    e.dispatch({ shader: 'shape', entry: 'strided_copy', label, bindings: { src: fromBits, dst: toBits, copyParams }, workgroups: e.groups1D(n, WORKGROUP_SIZE) });
  }
  fromBits.dispose();
  toBits.dispose();
}

/** Copies of at most this many contiguous blocks go to the command encoder instead of a kernel. */
const MAX_BLOCK_COPIES = 64;

/**
 * A (collapsed) copy whose last axis is contiguous on both sides, in few blocks, as buffer-to-buffer copies of whole
 * rows: concat and slice along an outer axis are a handful of memcpys, no per-element index arithmetic. Returns false
 * (nothing done) when the copy does not have that form.
 */
function copyBlocks(from: Tensor, to: Tensor, s: Shape, srcBase: number, srcStrides: Shape, dstBase: number, dstStrides: Shape): boolean {
  const last = s.length - 1;
  if (last < 0 || srcStrides[last] !== 1 || dstStrides[last] !== 1) return false;
  const blocks = sizeOf(s) / s[last];
  const source = from.storageFor('copy').buffer;
  const destination = to.storageFor('copy').buffer;
  if (blocks > MAX_BLOCK_COPIES || source === destination) return false;
  const encoder = from.engine.dispatcher.commandEncoder();
  const bytes = s[last] * BYTES_PER_ELEMENT;
  for (let b = 0; b < blocks; b++) {
    let rest = b;
    let srcAt = srcBase;
    let dstAt = dstBase;
    for (let k = last - 1; k >= 0; k--) {
      srcAt += (rest % s[k]) * srcStrides[k];
      dstAt += (rest % s[k]) * dstStrides[k];
      rest = Math.floor(rest / s[k]);
    }
    encoder.copyBufferToBuffer(source, from.byteOffset + srcAt * BYTES_PER_ELEMENT, destination, to.byteOffset + dstAt * BYTES_PER_ELEMENT, bytes);
  }
  return true;
}

const contiguous = (shape: Shape): Region => ({ base: 0, strides: stridesOf(shape) });

/** `x` with another shape of the same size (one dimension may be -1: inferred); a view, no copy. */
export function reshape(x: Tensor, shape: Shape): Tensor {
  const inferred = shape.filter((d) => d === -1).length;
  const known = sizeOf(shape.filter((d) => d !== -1));
  const bad = () => new Error(`reshape: cannot reshape ${fmt(x.shape)} (${x.size} elements) to ${fmt(shape)}`);
  if (inferred > 1 || shape.some((d) => !Number.isInteger(d) || d < -1)) throw bad();
  const resolved = shape.map((d) => (d === -1 ? (known === 0 ? 0 : x.size / known) : d));
  if (!resolved.every(Number.isInteger) || sizeOf(resolved) !== x.size) throw bad();
  const e = x.engine;
  return record('reshape', [x], e.view(x, resolved), (gy) => [e.view(gy, x.shape)]);
}

/** Axes permuted: output axis k is input axis perm[k] (default: all axes reversed). Up to MAX_DIMS (8) dimensions. */
export function transpose(x: Tensor, perm?: readonly number[]): Tensor {
  const order = perm ? [...perm] : [...x.shape.keys()].reverse();
  if (order.length !== x.rank || [...order].sort((p, q) => p - q).some((p, k) => p !== k)) {
    throw new Error(`transpose: perm ${fmt(order)} is not a permutation of the ${x.rank} axes of ${fmt(x.shape)}`);
  }
  checkRank('transpose', x);
  const e = x.engine;
  const shape = order.map((p) => x.shape[p]);
  const xStrides = x.strides;
  const out = e.empty(shape, x.dtype);
  stridedCopy('transpose', x, out, shape, { base: 0, strides: order.map((p) => xStrides[p]) }, contiguous(shape));
  const inverse = order.map((_, k) => order.indexOf(k));
  return record('transpose', [x], out, (gy) => [transpose(gy, inverse)]);
}

/**
 * The block starting at `begin` with extent `size` per axis (-1: to the end of the axis). A view when the block is
 * one contiguous run of the input at an aligned offset, else a copy; the gradient is gy placed in zeros.
 */
export function slice(x: Tensor, begin: readonly number[], size: readonly number[]): Tensor {
  if (begin.length !== x.rank || size.length !== x.rank) {
    throw new Error(`slice: begin ${fmt(begin)} and size ${fmt(size)} need one entry per axis of ${fmt(x.shape)}`);
  }
  const extent = size.map((s, k) => (s === -1 ? x.shape[k] - begin[k] : s));
  for (let k = 0; k < x.rank; k++) {
    if (!Number.isInteger(begin[k]) || !Number.isInteger(extent[k]) || begin[k] < 0 || extent[k] < 0 || begin[k] + extent[k] > x.shape[k]) {
      throw new Error(`slice: begin ${fmt(begin)} size ${fmt(size)} is out of range for ${fmt(x.shape)} (axis ${k})`);
    }
  }
  const e = x.engine;
  const xStrides = x.strides;
  const offset = begin.reduce((acc, b, k) => acc + b * xStrides[k], 0);
  // One contiguous run: every axis after the last partial one is whole, every axis before it has extent 1.
  let lastPartial = x.rank - 1;
  while (lastPartial >= 0 && extent[lastPartial] === x.shape[lastPartial]) lastPartial--;
  const isRun = extent.every((d, k) => k >= lastPartial || d === 1);
  let out: Tensor;
  if (sizeOf(extent) === 0) out = e.empty(extent, x.dtype);
  else if (isRun && e.canView(x, offset)) out = e.view(x, extent, offset);
  else {
    checkRank('slice', x);
    out = e.empty(extent, x.dtype);
    stridedCopy('slice', x, out, extent, { base: offset, strides: xStrides }, contiguous(extent));
  }
  return record('slice', [x], out, (gy) => {
    const gx = e.zeros(x.shape);
    stridedCopy('slice.backward', gy, gx, extent, contiguous(extent), { base: offset, strides: xStrides });
    return [gx];
  });
}

/** Tensors joined along `axis` (negative counts from the end); all other dimensions must match. */
export function concat(tensors: readonly Tensor[], axis: number): Tensor {
  if (tensors.length === 0) throw new Error('concat: needs at least one tensor');
  const first = tensors[0];
  const k = axis < 0 ? axis + first.rank : axis;
  if (!Number.isInteger(k) || k < 0 || k >= first.rank) throw new Error(`concat: axis ${axis} is out of range for ${fmt(first.shape)}`);
  const pattern = `[${first.shape.map((d, j) => (j === k ? '*' : d)).join(', ')}]`;
  tensors.forEach((t, i) => {
    if (t.dtype !== first.dtype) throw new Error(`concat: input ${i} is ${t.dtype}, input 0 is ${first.dtype}`);
    if (t.rank !== first.rank || t.shape.some((d, j) => j !== k && d !== first.shape[j])) {
      throw new Error(`concat: input ${i} has shape ${fmt(t.shape)}, expected ${pattern} like input 0 (axis ${k})`);
    }
  });
  checkRank('concat', first);
  const e = first.engine;
  const shape = first.shape.map((d, j) => (j === k ? tensors.reduce((n, t) => n + t.shape[k], 0) : d));
  const out = e.empty(shape, first.dtype);
  const outStrides = stridesOf(shape);
  const starts: number[] = [];
  let at = 0;
  for (const t of tensors) {
    starts.push(at);
    stridedCopy('concat', t, out, t.shape, contiguous(t.shape), { base: at * outStrides[k], strides: outStrides });
    at += t.shape[k];
  }
  return record('concat', [...tensors], out, (gy) =>
    tensors.map((t, i) => (t.requiresGrad ? slice(gy, shape.map((_, j) => (j === k ? starts[i] : 0)), t.shape) : null)),
  );
}

export type PadMode = 'constant' | 'reflect';

/**
 * Pads the trailing axes: `pads` holds one [before, after] pair per axis, aligned to the last axes (so [[1, 1], [2, 2]]
 * pads H by 1 and W by 2 of an N,C,H,W tensor). 'constant' fills with `value`; 'reflect' mirrors without repeating the
 * edge (NumPy's and PyTorch's 'reflect'; each pad must be smaller than its dimension).
 */
export function pad(x: Tensor, pads: readonly (readonly [number, number])[], mode: PadMode = 'constant', value = 0): Tensor {
  if (pads.length > x.rank) throw new Error(`pad: ${pads.length} [before, after] pairs for the ${x.rank} axes of ${fmt(x.shape)}`);
  checkRank('pad', x);
  const lead = x.rank - pads.length;
  const before = x.shape.map((_, k) => (k < lead ? 0 : pads[k - lead][0]));
  const after = x.shape.map((_, k) => (k < lead ? 0 : pads[k - lead][1]));
  for (let k = 0; k < x.rank; k++) {
    const pair = `[${before[k]}, ${after[k]}]`;
    if (![before[k], after[k]].every((p) => Number.isInteger(p) && p >= 0)) throw new Error(`pad: padding ${pair} on axis ${k} must be non-negative integers`);
    if (mode === 'reflect' && (before[k] >= x.shape[k] || after[k] >= x.shape[k]) && before[k] + after[k] > 0) {
      throw new Error(`pad: reflect padding ${pair} on axis ${k} must be smaller than the dimension ${x.shape[k]} of ${fmt(x.shape)}`);
    }
  }
  const e = x.engine;
  const shape = x.shape.map((d, k) => d + before[k] + after[k]);
  const out = e.empty(shape, x.dtype);
  const bits = new Uint32Array(typedArray(x.dtype, [value]).buffer)[0];
  const params = { n: out.size, rank: x.rank, bits, inShape: x.shape, outShape: shape, before };
  const src = e.view(x, x.shape, 0, 'u32');
  const dst = e.view(out, shape, 0, 'u32');
  e.dispatch({
    shader: 'shape', entry: 'pad_forward', constants: { MODE: mode === 'reflect' ? REFLECT : CONSTANT }, label: `pad.${mode}`,
    bindings: { src, dst, padParams: params }, workgroups: e.groups1D(out.size, WORKGROUP_SIZE),
  });
  src.dispose();
  dst.dispose();
  return record('pad', [x], out, (gy) => {
    if (mode === 'constant') return [slice(gy, before, x.shape)];
    const gx = e.empty(x.shape);
    e.dispatch({
      shader: 'shape', entry: 'pad_reflect_backward', label: 'pad.reflect.backward',
      bindings: { gy, gx, padParams: { ...params, n: x.size } }, workgroups: e.groups1D(x.size, WORKGROUP_SIZE),
    });
    return [gx];
  });
}

const DTYPE_CODE: Record<DType, number> = { f32: F32, i32: I32, u32: U32 };

/**
 * `x` converted to `dtype` as WGSL converts: floats truncate toward zero and saturate (at the largest float inside the
 * integer range: 2^31 − 128 for i32), i32 and u32 keep their bits. No gradient (for labels and indices).
 */
export function cast(x: Tensor, dtype: DType): Tensor {
  const e = x.engine;
  if (dtype === x.dtype) return e.copy(x);
  const out = e.empty(x.shape, dtype);
  const src = e.view(x, x.shape, 0, 'u32');
  const dst = e.view(out, out.shape, 0, 'u32');
  e.dispatch({
    shader: 'shape', entry: 'convert', constants: { FROM: DTYPE_CODE[x.dtype], TO: DTYPE_CODE[dtype] }, label: `cast.${x.dtype}.${dtype}`,
    bindings: { src, dst, castParams: { n: x.size } }, workgroups: e.groups1D(x.size, WORKGROUP_SIZE),
  });
  src.dispose();
  dst.dispose();
  return out;
}
