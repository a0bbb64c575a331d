// Elementwise ops (shaders/elementwise.wgsl): unary activations and math with their derivatives, broadcasting
// binary arithmetic (NumPy rules) whose gradients are summed back to each input's shape, comparisons, and where.
import { record } from '../engine/autograd.ts';
import type { Engine } from '../engine/engine.ts';
import type { Tensor, Shape } from '../engine/tensor.ts';
import { shaderConstants } from '../shaders.gen.ts';
import { broadcastParams, broadcastShapes, byVec4, sameShape } from './broadcast.ts';
import { sumTo } from './reduce.ts';

export { broadcastShapes };

/**
 * PER_INVOCATION: elements per invocation of the scalar entry points; VEC4_PER_INVOCATION: vec4s per invocation of the
 * *_vec4 ones, which serve operands of one shape with 4k elements; the rest are the op codes the OP override takes.
 */
const { PER_INVOCATION, VEC4_PER_INVOCATION, WORKGROUP_SIZE, MAX_DIMS, ...OP } = shaderConstants.elementwise;

/** Whether the flat vec4 entry points serve a tensor of `size` elements (operands of the output's shape). */
const vec4Path = (size: number) => size % 4 === 0;

/** Workgroups for `size` output elements: 4·VEC4_PER_INVOCATION per invocation on the vec4 path, else PER_INVOCATION. */
function workgroupsFor(e: Engine, size: number, vec4: boolean): [number, number] {
  return e.groups1D(Math.ceil(size / (vec4 ? 4 * VEC4_PER_INVOCATION : PER_INVOCATION)), WORKGROUP_SIZE);
}

export const UNARY = {
  neg: OP.NEG, relu: OP.RELU, leakyRelu: OP.LEAKY_RELU, sigmoid: OP.SIGMOID, tanh: OP.TANH, exp: OP.EXP, log: OP.LOG,
  sqrt: OP.SQRT, abs: OP.ABS, square: OP.SQUARE, scale: OP.SCALE, addScalar: OP.ADD_SCALAR, pow: OP.POW,
  reciprocal: OP.RECIPROCAL, clamp: OP.CLAMP, softplus: OP.SOFTPLUS, logSigmoid: OP.LOG_SIGMOID,
} as const;
export type UnaryOp = keyof typeof UNARY;

const BINARY = {
  add: OP.ADD, sub: OP.SUB, mul: OP.MUL, div: OP.DIV, maximum: OP.MAXIMUM, minimum: OP.MINIMUM,
  equal: OP.EQUAL, notEqual: OP.NOT_EQUAL, less: OP.LESS, lessEqual: OP.LESS_EQUAL, greater: OP.GREATER, greaterEqual: OP.GREATER_EQUAL,
} as const;
type BinaryOp = keyof typeof BINARY;

export function expectF32(op: string, name: string, t: Tensor): void {
  if (t.dtype !== 'f32') throw new Error(`${op}: ${name} must be f32, got ${t.dtype} [${t.shape.join(', ')}]`);
}

function unaryKernel(op: UnaryOp, entry: 'unary_forward' | 'unary_backward', bindings: Record<string, Tensor>, like: Tensor, alpha: number, beta: number): Tensor {
  const e = like.engine;
  const out = e.empty(like.shape);
  const vec4 = vec4Path(out.size);
  e.dispatch({
    shader: 'elementwise', entry: vec4 ? `${entry}_vec4` : entry, constants: { OP: UNARY[op] }, label: `${op}${entry === 'unary_backward' ? '.backward' : ''}`,
    bindings: { ...(vec4 ? suffixed(bindings) : bindings), [vec4 ? 'out4' : 'out']: out, unary: { n: out.size, alpha, beta } },
    workgroups: workgroupsFor(e, out.size, vec4),
  });
  return out;
}

/** The bindings under the vec4 entry points' names (x → x4). */
function suffixed(bindings: Record<string, Tensor>): Record<string, Tensor> {
  return Object.fromEntries(Object.entries(bindings).map(([name, t]) => [`${name}4`, t]));
}

/** Unary op `op` (with its alpha and beta) on x, recorded for autograd: what each named op below calls. */
export function unary(op: UnaryOp, x: Tensor, alpha = 0, beta = 0): Tensor {
  expectF32(op, 'input', x);
  const y = unaryKernel(op, 'unary_forward', { x }, x, alpha, beta);
  return record(op, [x], y, (gy) => [unaryKernel(op, 'unary_backward', { x, y, gy }, x, alpha, beta)]);
}

export const neg = (x: Tensor) => unary('neg', x);
export const relu = (x: Tensor) => unary('relu', x);
/** max(x, 0) + slope·min(x, 0); Keras' default slope is 0.3 (RDCNet), PyTorch's 0.01. */
export const leakyRelu = (x: Tensor, slope = 0.01) => unary('leakyRelu', x, slope);
export const sigmoid = (x: Tensor) => unary('sigmoid', x);
/** Accurate to about 1 ulp on every adapter (not WGSL's built-in tanh, which lavapipe gets wrong near 0). */
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
/** log(1 + eˣ), without overflow or cancellation for any x; the gradient is sigmoid(x). */
export const softplus = (x: Tensor) => unary('softplus', x);
/** log(sigmoid(x)) = −softplus(−x), stable for any x (BCE with logits: −(y·logSigmoid(x) + (1−y)·logSigmoid(−x))). */
export const logSigmoid = (x: Tensor) => unary('logSigmoid', x);

/** min(max(x, lo), hi); the gradient passes where lo <= x <= hi, bounds included (PyTorch's convention). */
export function clamp(x: Tensor, lo: number, hi: number): Tensor {
  if (!(lo <= hi)) throw new Error(`clamp: lo (${lo}) must not exceed hi (${hi})`);
  return unary('clamp', x, lo, hi);
}

function binaryKernel(op: BinaryOp, a: Tensor, b: Tensor): Tensor {
  expectF32(op, 'a', a);
  expectF32(op, 'b', b);
  const shape = broadcastShapes(op, a.shape, b.shape);
  const e = a.engine;
  const binary = broadcastParams(op, shape, a.shape, b.shape);
  const out = e.empty(shape);
  const broadcast = !sameShape(a.shape, shape) || !sameShape(b.shape, shape);
  if (!broadcast && vec4Path(out.size)) {
    e.dispatch({
      shader: 'elementwise', entry: 'binary_forward_vec4', constants: { OP: BINARY[op] }, label: op,
      bindings: { a4: a, b4: b, out4: out, binary }, workgroups: workgroupsFor(e, out.size, true),
    });
    return out;
  }
  const inVec4 = broadcast && vec4Path(a.size) && vec4Path(b.size) ? byVec4(binary) : null;
  if (inVec4) {
    e.dispatch({
      shader: 'elementwise', entry: 'binary_broadcast_vec4', constants: { OP: BINARY[op], A_VEC: inVec4.aVec, B_VEC: inVec4.bVec }, label: op,
      bindings: { a, a4: a, b, b4: b, out4: out, binary: inVec4.params }, workgroups: workgroupsFor(e, out.size, true),
    });
    return out;
  }
  e.dispatch({
    shader: 'elementwise', entry: 'binary_forward', constants: { OP: BINARY[op], BROADCAST: broadcast ? 1 : 0 }, label: op,
    bindings: { a, b, out, binary }, workgroups: workgroupsFor(e, out.size, false),
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
  const binary = broadcastParams('broadcastTo', shape, x.shape);
  const out = e.empty(shape);
  e.dispatch({
    shader: 'elementwise', entry: 'broadcast_to', label: 'broadcastTo',
    bindings: { a: x, out, binary }, workgroups: workgroupsFor(e, out.size, false),
  });
  return record('broadcastTo', [x], out, (gy) => [sumTo(gy, x.shape)]);
}

// Comparisons, broadcasting: 1 where the relation holds, else 0. The output is f32 so that it composes without a
// cast: a mask to multiply by, to sum (a count), to subtract from 1, or a where condition. Comparisons are not
// differentiable and are not recorded on the tape: their output never requires grad, like cast's.
export const equal = (a: Tensor, b: Tensor) => binaryKernel('equal', a, b);
export const notEqual = (a: Tensor, b: Tensor) => binaryKernel('notEqual', a, b);
export const less = (a: Tensor, b: Tensor) => binaryKernel('less', a, b);
export const lessEqual = (a: Tensor, b: Tensor) => binaryKernel('lessEqual', a, b);
export const greater = (a: Tensor, b: Tensor) => binaryKernel('greater', a, b);
export const greaterEqual = (a: Tensor, b: Tensor) => binaryKernel('greaterEqual', a, b);
/** greaterEqual under the name reduce.ts's max backward imports. */
export const binaryMask = greaterEqual;

function whereKernel(cond: Tensor, a: Tensor, b: Tensor): Tensor {
  const shape = broadcastShapes('where', broadcastShapes('where', cond.shape, a.shape), b.shape);
  const e = a.engine;
  const binary = broadcastParams('where', shape, a.shape, b.shape, cond.shape);
  const out = e.empty(shape);
  const broadcast = ![cond, a, b].every((t) => sameShape(t.shape, shape));
  if (!broadcast && vec4Path(out.size)) {
    e.dispatch({
      shader: 'elementwise', entry: 'where_forward_vec4', label: 'where',
      bindings: { cond4: cond, a4: a, b4: b, out4: out, binary }, workgroups: workgroupsFor(e, out.size, true),
    });
    return out;
  }
  e.dispatch({
    shader: 'elementwise', entry: 'where_forward', constants: { BROADCAST: broadcast ? 1 : 0 }, label: 'where',
    bindings: { cond, a, b, out, binary }, workgroups: workgroupsFor(e, out.size, false),
  });
  return out;
}

/**
 * a where cond is nonzero, else b, all three broadcasting. cond is an f32 mask (what the comparisons return; cast
 * integer masks first). The gradient goes to a where cond is nonzero and to b elsewhere, none to cond. Unlike
 * cond·a + (1−cond)·b, the unselected side's inf or NaN does not leak into the output.
 */
export function where(cond: Tensor, a: Tensor, b: Tensor): Tensor {
  if (cond.dtype !== 'f32') {
    throw new Error(`where: cond must be an f32 mask, got ${cond.dtype} [${cond.shape.join(', ')}] (cast it with cast(cond, 'f32'))`);
  }
  expectF32('where', 'a', a);
  expectF32('where', 'b', b);
  return record('where', [cond, a, b], whereKernel(cond, a, b), (gy) => {
    const zero = a.engine.zeros([1]);
    const grads = [
      null,
      a.requiresGrad ? sumTo(whereKernel(cond, gy, zero), a.shape) : null,
      b.requiresGrad ? sumTo(whereKernel(cond, zero, gy), b.shape) : null,
    ];
    zero.dispose();
    return grads;
  });
}
