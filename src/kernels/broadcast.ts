// Broadcasting (NumPy rules) as the elementwise kernels index it: the broadcast shape of two shapes, and the `binary`
// uniform that walks an output shape with each operand's strides into it (size-1 dimensions dropped, neighbours that
// every operand walks as one merged), also in vec4 steps.
import { sizeOf, type Shape } from '../engine/tensor.ts';
import { shaderConstants } from '../shaders.gen.ts';

const { MAX_DIMS } = shaderConstants.elementwise;

/** The NumPy broadcast of two shapes, or an error naming both. */
export function broadcastShapes(op: string, a: Shape, b: Shape): number[] {
  const rank = Math.max(a.length, b.length);
  const out = new Array<number>(rank);
  for (let i = 0; i < rank; i++) {
    const da = a[a.length - rank + i] ?? 1;
    const db = b[b.length - rank + i] ?? 1;
    if (da !== db && da !== 1 && db !== 1) {
      throw new Error(`${op}: shapes [${a.join(', ')}] and [${b.join(', ')}] do not broadcast (dimension ${i}: ${da} vs ${db})`);
    }
    out[i] = da === 1 ? db : da;
  }
  return out;
}

/** Row-major strides of `shape` right-aligned to `rank` dims, 0 where the dimension is broadcast. */
function broadcastStrides(shape: Shape, out: Shape): number[] {
  const strides = new Array<number>(out.length).fill(0);
  let acc = 1;
  for (let i = shape.length - 1; i >= 0; i--) {
    const k = out.length - shape.length + i;
    strides[k] = shape[i] === 1 && out[k] !== 1 ? 0 : acc;
    acc *= shape[i];
  }
  return strides;
}

export const sameShape = (a: Shape, b: Shape) => a.length === b.length && a.every((d, i) => d === b[i]);

/**
 * The `binary` uniform: the output shape and each operand's strides into it (cond only for where), with size-1
 * dimensions dropped and neighbours merged where every operand walks them as one (contiguous in both, or broadcast in
 * both): [16, 64, 64, 64] times [64, 1, 1] is indexed as [16, 64, 4096], so the kernel's cursor carries over fewer
 * dimensions per element.
 */
export function broadcastParams(op: string, shape: Shape, a: Shape, b: Shape = [], cond: Shape = []) {
  if (shape.length > MAX_DIMS) throw new Error(`${op}: at most ${MAX_DIMS} dimensions, got ${shape.length}`);
  const operands = [a, b, cond].map((s) => broadcastStrides(s, shape));
  const dims: { size: number; strides: number[] }[] = [];
  shape.forEach((size, k) => {
    if (size === 1) return;
    const strides = operands.map((o) => o[k]);
    const last = dims[dims.length - 1];
    if (last && strides.every((st, i) => (st === 0 && last.strides[i] === 0) || (st !== 0 && last.strides[i] === st * size))) {
      last.size *= size;
      last.strides = strides;
    } else {
      dims.push({ size, strides });
    }
  });
  if (dims.length === 0) dims.push({ size: 1, strides: [0, 0, 0] });
  return {
    n: sizeOf(shape), rank: dims.length, shape: dims.map((d) => d.size),
    aStrides: dims.map((d) => d.strides[0]), bStrides: dims.map((d) => d.strides[1]), condStrides: dims.map((d) => d.strides[2]),
  };
}

/**
 * A broadcast's `binary` uniform in vec4 steps, for binary_broadcast_vec4: where the innermost merged dimension has 4k
 * elements, it shrinks by 4; an operand that spans it (stride 1) is read as vec4s, its outer strides divided by 4, and one
 * broadcast along it (stride 0) keeps its strides in values. Null where the innermost dimension does not divide.
 */
export function byVec4(p: ReturnType<typeof broadcastParams>) {
  const last = p.rank - 1;
  if (p.shape[last] % 4 !== 0) return null;
  const spans = (strides: number[]) => strides[last] === 1;
  const inVec4 = (strides: number[]) => (spans(strides) ? strides.map((st, k) => (k === last ? 1 : st / 4)) : strides);
  return {
    aVec: spans(p.aStrides) ? 1 : 0, bVec: spans(p.bStrides) ? 1 : 0,
    params: { ...p, shape: p.shape.map((d, k) => (k === last ? d / 4 : d)), aStrides: inVec4(p.aStrides), bStrides: inVec4(p.bStrides) },
  };
}
