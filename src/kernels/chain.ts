// Fused elementwise chains (shaders/chain.wgsl): chain(x, steps) computes what applying the steps one op at a time
// computes — unary ops, and add/sub/mul/div/maximum/minimum with an operand tensor broadcast to x's shape — in one
// pass that reads x and the operands once and writes the result once, and its backward pass in one more (plus a
// reduction per broadcast operand). Where the fused kernel does not apply (more than MAX_STEPS steps or two operand
// tensors, an operand that does not broadcast to x's shape, shapes that do not walk as vec4s) the steps run one by one:
// same values and gradients, one kernel each.
import { record } from '../engine/autograd.ts';
import type { Tensor } from '../engine/tensor.ts';
import { shaderConstants } from '../shaders.gen.ts';
import { broadcastParams, broadcastShapes, byVec4 } from './broadcast.ts';
import { add, div, expectF32, maximum, minimum, mul, sub, unary, UNARY, type UnaryOp } from './elementwise.ts';
import { sumTo } from './reduce.ts';

const C = shaderConstants.chain;

const OPERAND_OPS = { add, sub, mul, div, maximum, minimum } as const;
const OPERAND_CODES = { add: C.ADD, sub: C.SUB, mul: C.MUL, div: C.DIV, maximum: C.MAXIMUM, minimum: C.MINIMUM } as const;
export type OperandOp = keyof typeof OPERAND_OPS;

/**
 * One step of a chain: a unary op of elementwise.ts (alpha and beta as its arguments: leakyRelu's slope, scale's
 * factor, addScalar's term, pow's exponent, clamp's bounds), or a binary op with `operand`: value op operand, or
 * operand op value with `left`.
 */
export type ChainStep = { op: UnaryOp; alpha?: number; beta?: number } | { op: OperandOp; operand: Tensor; left?: boolean };

const isOperandStep = (s: ChainStep): s is { op: OperandOp; operand: Tensor; left?: boolean } => Object.hasOwn(OPERAND_OPS, s.op);

/** The steps applied one op at a time (the fallback, and the definition the fused kernel matches). */
function unfused(x: Tensor, steps: readonly ChainStep[]): Tensor {
  const e = x.engine;
  return steps.reduce((v, s, k) => {
    const next = isOperandStep(s) ? OPERAND_OPS[s.op](s.left ? s.operand : v, s.left ? v : s.operand) : unary(s.op, v, s.alpha ?? 0, s.beta ?? 0);
    if (k > 0 && !e.gradEnabled) v.dispose();
    return next;
  }, x);
}

export interface ChainOptions {
  /** false: run the steps one op at a time even where the fused kernel applies (to compare, or to debug). */
  fuse?: boolean;
}

/** The chain applied to x: y = f_m(... f_1(x) ...), fused into one kernel where it can be (see the file's comment). */
export function chain(x: Tensor, steps: readonly ChainStep[], options: ChainOptions = {}): Tensor {
  expectF32('chain', 'input', x);
  if (steps.length === 0) throw new Error('chain: needs at least one step');
  const operands: Tensor[] = [];
  steps.forEach((s, k) => {
    if (isOperandStep(s)) {
      expectF32('chain', `step ${k} (${s.op})'s operand`, s.operand);
      if (!operands.includes(s.operand)) operands.push(s.operand);
    } else if (!Object.hasOwn(UNARY, s.op)) {
      throw new Error(`chain: step ${k} has unknown op "${String(s.op)}" (unary ops: ${Object.keys(UNARY).join(', ')}; with an operand: ${Object.keys(OPERAND_OPS).join(', ')})`);
    } else if (s.op === 'clamp' && !((s.alpha ?? 0) <= (s.beta ?? 0))) {
      throw new Error(`chain: step ${k} (clamp) needs alpha (${s.alpha}) <= beta (${s.beta})`);
    }
  });
  const fits = options.fuse !== false && steps.length <= C.MAX_STEPS && operands.length <= 2 && x.rank <= C.MAX_DIMS &&
    operands.every((t) => t.rank <= x.rank && broadcastShapes('chain', t.shape, x.shape).every((d, i) => d === x.shape[i]));
  const walk = fits ? byVec4(broadcastParams('chain', x.shape, operands[0]?.shape ?? [], operands[1]?.shape ?? [])) : null;
  if (!walk) return unfused(x, steps);

  const e = x.engine;
  const [t0, t1] = [operands[0] ?? x, operands[1] ?? operands[0] ?? x];
  const constants: Record<string, number> = {
    STEPS: steps.length, T0_USED: operands.length > 0 ? 1 : 0, T1_USED: operands.length > 1 ? 1 : 0,
    // A missing operand walks as shape [] (stride 0 everywhere), so it never spans.
    T0_SPANS: walk.aVec, T1_SPANS: walk.bVec,
  };
  const alpha = new Array<number>(C.MAX_STEPS).fill(0);
  const beta = new Array<number>(C.MAX_STEPS).fill(0);
  steps.forEach((s, k) => {
    if (isOperandStep(s)) {
      constants[`KIND${k}`] = s.left ? C.OPERAND_LEFT : C.OPERAND_RIGHT;
      constants[`OP${k}`] = OPERAND_CODES[s.op];
      constants[`ARG${k}`] = operands.indexOf(s.operand);
    } else {
      constants[`KIND${k}`] = C.UNARY_STEP;
      constants[`OP${k}`] = UNARY[s.op];
      [alpha[k], beta[k]] = [s.alpha ?? 0, s.beta ?? 0];
    }
  });
  const params = {
    n4: x.size / 4, rank: walk.params.rank, shape: walk.params.shape, t0Strides: walk.params.aStrides, t1Strides: walk.params.bStrides, alpha, beta,
  };
  const workgroups = e.groups1D(Math.ceil(x.size / 4 / C.CHAIN_VEC4_PER_INVOCATION), C.WORKGROUP_SIZE);
  const label = `chain(${steps.map((s) => s.op).join(',')})`;
  const y = e.empty(x.shape);
  e.dispatch({ shader: 'chain', entry: 'chain_forward', constants, label, bindings: { x4: x, t0, t1, out4: y, chain: params }, workgroups });
  return record('chain', [x, ...operands], y, (gy) => {
    const wantsX = x.requiresGrad;
    const wants = operands.map((t) => t.requiresGrad);
    // A gradient that is not wanted is never written; its binding gets a 4-value placeholder.
    const gx = e.empty(wantsX ? x.shape : [4]);
    const grads = [0, 1].map((j) => e.empty(wants[j] ? x.shape : [4]));
    e.dispatch({
      shader: 'chain', entry: 'chain_backward', label: `${label}.backward`,
      constants: { ...constants, X_GRAD: wantsX ? 1 : 0, T0_GRAD: wants[0] ? 1 : 0, T1_GRAD: wants[1] ? 1 : 0 },
      bindings: { x4: x, t0, t1, gy4: gy, out4: gx, gt04: grads[0], gt14: grads[1], chain: params }, workgroups,
    });
    const out = operands.map((t, j) => (wants[j] ? sumTo(grads[j], t.shape) : null));
    grads.forEach((g, j) => { if (out[j] !== g) g.dispose(); });
    if (!wantsX) gx.dispose();
    return [wantsX ? gx : null, ...out];
  });
}
