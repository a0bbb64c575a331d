// Optimizers (shaders/optim.wgsl) with torch.optim's semantics: Adam / AdamW and SGD with momentum, Nesterov and weight
// decay. Each step is one fused kernel per parameter that updates the parameter and its state in place; parameters
// without a gradient are skipped. State tensors are created on a parameter's first step and kept until dispose().
import type { Engine } from '../engine/engine.ts';
import type { Tensor } from '../engine/tensor.ts';
import { shaderConstants } from '../shaders.gen.ts';
import { expectF32 } from './elementwise.ts';

const { WORKGROUP_SIZE } = shaderConstants.optim;

function checkHyper(op: string, name: string, value: number, lo: number, hi = Infinity): void {
  if (!(value >= lo && value < hi)) throw new Error(`${op}: ${name} must be in [${lo}, ${hi}), got ${value}`);
}

/** The engine shared by `params`, after checking they are distinct f32 tensors. */
function engineOf(op: string, params: Tensor[]): Engine {
  if (params.length === 0) throw new Error(`${op}: no parameters given`);
  params.forEach((p, i) => expectF32(op, `parameter ${i}`, p));
  if (new Set(params).size !== params.length) throw new Error(`${op}: a parameter is listed twice`);
  return params[0].engine;
}

/** The gradient of `p` if it has one, checked against the parameter's shape. */
function gradOf(op: string, p: Tensor, i: number): Tensor | null {
  const g = p.grad;
  if (!g) return null;
  if (g.dtype !== 'f32' || g.size !== p.size) {
    throw new Error(`${op}: parameter ${i} [${p.shape.join(', ')}] has a gradient of shape [${g.shape.join(', ')}] ${g.dtype}`);
  }
  return g;
}

/** Disposes and clears every parameter's gradient. */
function clearGrads(params: Tensor[]): void {
  for (const p of params) {
    p.grad?.dispose();
    p.grad = null;
  }
}

export interface AdamOptions {
  lr: number;
  beta1?: number;
  beta2?: number;
  eps?: number;
  weightDecay?: number;
  /** Decoupled weight decay (AdamW: p ← p·(1 − lr·wd) before the step) instead of L2 added to the gradient. */
  decoupled?: boolean;
}

/** One parameter's Adam state: first and second moments (torch's exp_avg, exp_avg_sq) and its update count. */
export interface AdamState {
  m: Tensor;
  v: Tensor;
  step: number;
}

/** torch.optim.Adam, or torch.optim.AdamW with `decoupled`. */
export class Adam {
  lr: number;
  readonly beta1: number;
  readonly beta2: number;
  readonly eps: number;
  readonly weightDecay: number;
  readonly decoupled: boolean;
  private readonly engine: Engine;
  private readonly state = new Map<Tensor, AdamState>();

  constructor(
    readonly params: Tensor[],
    { lr, beta1 = 0.9, beta2 = 0.999, eps = 1e-8, weightDecay = 0, decoupled = false }: AdamOptions,
  ) {
    this.engine = engineOf('Adam', params);
    checkHyper('Adam', 'lr', lr, 0);
    checkHyper('Adam', 'beta1', beta1, 0, 1);
    checkHyper('Adam', 'beta2', beta2, 0, 1);
    checkHyper('Adam', 'eps', eps, 0);
    checkHyper('Adam', 'weightDecay', weightDecay, 0);
    this.lr = lr;
    this.beta1 = beta1;
    this.beta2 = beta2;
    this.eps = eps;
    this.weightDecay = weightDecay;
    this.decoupled = decoupled;
  }

  /** One update of every parameter that has a gradient, with learning rate `lr` (default: this.lr). */
  step(lr = this.lr): void {
    checkHyper('Adam', 'lr', lr, 0);
    const e = this.engine;
    this.params.forEach((param, i) => {
      const grad = gradOf('Adam', param, i);
      if (!grad) return;
      let s = this.state.get(param);
      if (!s) {
        s = { m: e.keep(e.zeros(param.shape)), v: e.keep(e.zeros(param.shape)), step: 0 };
        this.state.set(param, s);
      }
      s.step++;
      const decay = this.decoupled ? this.weightDecay : 0;
      e.dispatch({
        shader: 'optim', entry: 'adam_step', label: 'Adam',
        bindings: {
          param, grad, m: s.m, v: s.v,
          adam: {
            n: param.size, eps: this.eps,
            beta1: this.beta1, beta2: this.beta2, oneMinusBeta1: 1 - this.beta1, oneMinusBeta2: 1 - this.beta2,
            stepSize: lr / (1 - this.beta1 ** s.step),
            invBiasCorrection2Sqrt: 1 / Math.sqrt(1 - this.beta2 ** s.step),
            l2: this.decoupled ? 0 : this.weightDecay,
            decay: 1 - lr * decay,
          },
        },
        workgroups: e.groups1D(param.size, WORKGROUP_SIZE),
      });
    });
  }

  zeroGrad(): void {
    clearGrads(this.params);
  }

  /** Each parameter's state, in `params` order; null for a parameter that has not been updated yet. For checkpoints. */
  getState(): (AdamState | null)[] {
    return this.params.map((p) => this.state.get(p) ?? null);
  }

  /** Replaces the state (a checkpoint's, in `params` order); the optimizer owns the given tensors from now on. */
  setState(states: (AdamState | null)[]): void {
    if (states.length !== this.params.length) throw new Error(`Adam.setState: ${states.length} states for ${this.params.length} parameters`);
    states.forEach((s, i) => {
      const p = this.params[i];
      if (s && (s.m.size !== p.size || s.v.size !== p.size)) {
        throw new Error(`Adam.setState: parameter ${i} [${p.shape.join(', ')}] got moments of shape [${s.m.shape.join(', ')}]`);
      }
    });
    this.dispose();
    states.forEach((s, i) => {
      if (s) this.state.set(this.params[i], { m: this.engine.keep(s.m), v: this.engine.keep(s.v), step: s.step });
    });
  }

  /** Frees the moments (the parameters and their gradients stay). */
  dispose(): void {
    for (const s of this.state.values()) {
      s.m.dispose();
      s.v.dispose();
    }
    this.state.clear();
  }
}

export interface SGDOptions {
  lr: number;
  momentum?: number;
  nesterov?: boolean;
  weightDecay?: number;
}

/** torch.optim.SGD (dampening 0): buf ← momentum·buf + g; p ← p − lr·(Nesterov ? g + momentum·buf : buf). */
export class SGD {
  lr: number;
  readonly momentum: number;
  readonly nesterov: boolean;
  readonly weightDecay: number;
  private readonly engine: Engine;
  private readonly buffers = new Map<Tensor, Tensor>();

  constructor(readonly params: Tensor[], { lr, momentum = 0, nesterov = false, weightDecay = 0 }: SGDOptions) {
    this.engine = engineOf('SGD', params);
    checkHyper('SGD', 'lr', lr, 0);
    checkHyper('SGD', 'momentum', momentum, 0);
    checkHyper('SGD', 'weightDecay', weightDecay, 0);
    if (nesterov && momentum === 0) throw new Error('SGD: Nesterov momentum needs momentum > 0');
    this.lr = lr;
    this.momentum = momentum;
    this.nesterov = nesterov;
    this.weightDecay = weightDecay;
  }

  /** One update of every parameter that has a gradient, with learning rate `lr` (default: this.lr). */
  step(lr = this.lr): void {
    checkHyper('SGD', 'lr', lr, 0);
    const e = this.engine;
    this.params.forEach((param, i) => {
      const grad = gradOf('SGD', param, i);
      if (!grad) return;
      const sgd = { n: param.size, lr, momentum: this.momentum, weightDecay: this.weightDecay };
      const workgroups = e.groups1D(param.size, WORKGROUP_SIZE);
      if (this.momentum === 0) {
        e.dispatch({ shader: 'optim', entry: 'sgd_step', label: 'SGD', bindings: { param, grad, sgd }, workgroups });
        return;
      }
      let buf = this.buffers.get(param);
      if (!buf) {
        buf = e.keep(e.zeros(param.shape));
        this.buffers.set(param, buf);
      }
      e.dispatch({
        shader: 'optim', entry: 'sgd_momentum_step', label: 'SGD', constants: { NESTEROV: this.nesterov ? 1 : 0 },
        bindings: { param, grad, buf, sgd }, workgroups,
      });
    });
  }

  zeroGrad(): void {
    clearGrads(this.params);
  }

  /** Frees the momentum buffers (the parameters and their gradients stay). */
  dispose(): void {
    for (const b of this.buffers.values()) b.dispose();
    this.buffers.clear();
  }
}
