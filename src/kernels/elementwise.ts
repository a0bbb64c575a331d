// Elementwise ops (shaders/elementwise.wgsl): unary activations and math with their derivatives, and broadcasting
// binary arithmetic (NumPy rules) whose gradients are summed back to each input's shape.
import { record } from '../engine/autograd.ts';
import type { Tensor, Shape } from '../engine/tensor.ts';
import { sumTo } from './reduce.ts';

/** Elements per invocation in shaders/elementwise.wgsl (its PER_INVOCATION). */
const PER_INVOCATION = 4;

const UNARY = {
  neg: 0, relu: 1, leakyRelu: 2, sigmoid: 3, tanh: 4, exp: 5, log: 6, sqrt: 7, abs: 8, square: 9,
  scale: 10, addScalar: 11, pow: 12, reciprocal: 13,
} as const;
type UnaryOp = keyof typeof UNARY;

const BINARY = { add: 0, sub: 1, mul: 2, div: 3, maximum: 4, minimum: 5, greaterEqual: 6 } as const;
type BinaryOp = keyof typeof BINARY;

export function expectF32(op: string, name: string, t: Tensor): void {
  if (t.dtype !== 'f32') throw new Error(`${op}: ${name} must be f32, got ${t.dtype} [${t.shape.join(', ')}]`);
}

function unaryKernel(op: UnaryOp, entry: 'unary_forward' | 'unary_backward', bindings: Record<string, Tensor>, like: Tensor, alpha: number): Tensor {
  const e = like.engine;
  const out = e.empty(like.shape);
  e.dispatch({
    shader: 'elementwise', entry, constants: { OP: UNARY[op] }, label: `${op}${entry === 'unary_backward' ? '.backward' : ''}`,
    bindings: { ...bindings, out, unary: { n: out.size, alpha } }, workgroups: e.groups1D(Math.ceil(out.size / PER_INVOCATION), 256),
  });
  return out;
}

function unary(op: UnaryOp, x: Tensor, alpha = 0): Tensor {
  expectF32(op, 'input', x);
  const y = unaryKernel(op, 'unary_forward', { x }, x, alpha);
  return record(op, [x], y, (gy) => [unaryKernel(op, 'unary_backward', { x, y, gy }, x, alpha)]);
}

export const neg = (x: Tensor) => unary('neg', x);
export const relu = (x: Tensor) => unary('relu', x);
/** max(x, 0) + slope·min(x, 0); Keras' default slope is 0.3 (RDCNet), PyTorch's 0.01. */
export const leakyRelu = (x: Tensor, slope = 0.01) => unary('leakyRelu', x, slope);
export const sigmoid = (x: Tensor) => unary('sigmoid', x);
export const tanh = (x: Tensor) => unary('tanh', x);
export const exp = (x: Tensor) => unary('exp', x);
export const log = (x: Tensor) => unary('log', x);
export const sqrt = (x: Tensor) => unary('sqrt', x);
export const abs = (x: Tensor) => unary('abs', x);
export const square = (x: Tensor) => unary('square', x);
export const reciprocal = (x: Tensor) => unary('reciprocal', x);
export const scale = (x: Tensor, s: number) => unary('scale', x, s);
export const addScalar = (x: Tensor, s: number) => unary('addScalar', x, s);
/** x^p elementwise (x > 0 unless p is an integer). */
export const pow = (x: Tensor, p: number) => unary('pow', x, p);

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

const sameShape = (a: Shape, b: Shape) => a.length === b.length && a.every((d, i) => d === b[i]);

function binaryKernel(op: BinaryOp, a: Tensor, b: Tensor): Tensor {
  expectF32(op, 'a', a);
  expectF32(op, 'b', b);
  const shape = broadcastShapes(op, a.shape, b.shape);
  if (shape.length > 8) throw new Error(`${op}: at most 8 dimensions, got ${shape.length}`);
  const e = a.engine;
  const out = e.empty(shape);
  const broadcast = !sameShape(a.shape, shape) || !sameShape(b.shape, shape);
  e.dispatch({
    shader: 'elementwise', entry: 'binary_forward', constants: { OP: BINARY[op], BROADCAST: broadcast ? 1 : 0 }, label: op,
    bindings: {
      a, b, out,
      binary: { n: out.size, rank: shape.length, shape, aStrides: broadcastStrides(a.shape, shape), bStrides: broadcastStrides(b.shape, shape) },
    },
    workgroups: e.groups1D(Math.ceil(out.size / PER_INVOCATION), 256),
  });
  return out;
}

export function add(a: Tensor, b: Tensor): Tensor {
  return record('add', [a, b], binaryKernel('add', a, b), (gy) => [
    a.requiresGrad ? sumTo(gy, a.shape) : null,
    b.requiresGrad ? sumTo(gy, b.shape) : null,
  ]);
}

export function sub(a: Tensor, b: Tensor): Tensor {
  return record('sub', [a, b], binaryKernel('sub', a, b), (gy) => [
    a.requiresGrad ? sumTo(gy, a.shape) : null,
    b.requiresGrad ? sumTo(neg(gy), b.shape) : null,
  ]);
}

export function mul(a: Tensor, b: Tensor): Tensor {
  return record('mul', [a, b], binaryKernel('mul', a, b), (gy) => [
    a.requiresGrad ? sumTo(binaryKernel('mul', gy, b), a.shape) : null,
    b.requiresGrad ? sumTo(binaryKernel('mul', gy, a), b.shape) : null,
  ]);
}

export function div(a: Tensor, b: Tensor): Tensor {
  const y = binaryKernel('div', a, b);
  return record('div', [a, b], y, (gy) => [
    a.requiresGrad ? sumTo(binaryKernel('div', gy, b), a.shape) : null,
    // d(a/b)/db = −y/b
    b.requiresGrad ? sumTo(neg(binaryKernel('mul', gy, binaryKernel('div', y, b))), b.shape) : null,
  ]);
}

/** Elementwise max; ties send the gradient to a. */
export function maximum(a: Tensor, b: Tensor): Tensor {
  return record('maximum', [a, b], binaryKernel('maximum', a, b), (gy) => {
    const toA = binaryKernel('greaterEqual', a, b);
    return [
      a.requiresGrad ? sumTo(binaryKernel('mul', gy, toA), a.shape) : null,
      b.requiresGrad ? sumTo(binaryKernel('mul', gy, addScalar(neg(toA), 1)), b.shape) : null,
    ];
  });
}

/** Elementwise min; ties send the gradient to b. */
export function minimum(a: Tensor, b: Tensor): Tensor {
  return record('minimum', [a, b], binaryKernel('minimum', a, b), (gy) => {
    const toB = binaryKernel('greaterEqual', a, b);
    return [
      a.requiresGrad ? sumTo(binaryKernel('mul', gy, addScalar(neg(toB), 1)), a.shape) : null,
      b.requiresGrad ? sumTo(binaryKernel('mul', gy, toB), b.shape) : null,
    ];
  });
}

/** `x` repeated along its size-1 (or missing leading) dimensions to `shape`; the gradient sums back. */
export function broadcastTo(x: Tensor, shape: Shape): Tensor {
  expectF32('broadcastTo', 'input', x);
  const target = broadcastShapes('broadcastTo', x.shape, shape);
  if (!sameShape(target, shape)) throw new Error(`broadcastTo: [${x.shape.join(', ')}] does not broadcast to [${shape.join(', ')}]`);
  const e = x.engine;
  const out = e.empty(shape);
  e.dispatch({
    shader: 'elementwise', entry: 'broadcast_to', label: 'broadcastTo',
    bindings: { a: x, out, binary: { n: out.size, rank: shape.length, shape, aStrides: broadcastStrides(x.shape, shape), bStrides: [] } },
    workgroups: e.groups1D(Math.ceil(out.size / PER_INVOCATION), 256),
  });
  return record('broadcastTo', [x], out, (gy) => [sumTo(gy, x.shape)]);
}

/** 1 where a >= b, else 0 (no gradient): masks for max and min. */
export function binaryMask(a: Tensor, b: Tensor): Tensor {
  return binaryKernel('greaterEqual', a, b);
}
