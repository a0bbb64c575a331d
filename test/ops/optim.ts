// Optimizers against float64 transcriptions of torch.optim.Adam, AdamW and SGD, over several steps with fresh gradients.
import { Adam, type AdamOptions, type Engine, SGD, type SGDOptions, type Tensor } from '../../src/index.ts';
import { rng, uniform } from '../support/check.ts';
import { expect } from '../support/expect.ts';
import { checkList } from '../support/suite.ts';

const { checks, describe, it } = checkList();
export { checks };

// Sizes below, at and above one 256-thread workgroup.
const SHAPES = [[3, 7, 5], [300], [17]];
const STEPS = 6;

// torch keeps parameters, gradients and state in float32 tensors: the references round to f32 wherever torch stores a
// tensor, and compute each stored value in float64.
const f32 = Math.fround;

/** torch.optim.Adam / AdamW (torch/optim/adam.py, single-tensor path) for one parameter. */
function adamRef(o: AdamOptions) {
  const { lr: lr0, beta1 = 0.9, beta2 = 0.999, eps = 1e-8, weightDecay = 0, decoupled = false } = o;
  let m: Float64Array | null = null;
  let v: Float64Array | null = null;
  let t = 0;
  return (p: Float64Array, grad: Float64Array, lr = lr0) => {
    m ??= new Float64Array(p.length);
    v ??= new Float64Array(p.length);
    t++;
    const bc1 = 1 - beta1 ** t;
    const bc2Sqrt = Math.sqrt(1 - beta2 ** t);
    for (let i = 0; i < p.length; i++) {
      let g = grad[i];
      if (decoupled) p[i] = f32(p[i] * (1 - lr * weightDecay));
      else g = f32(g + weightDecay * p[i]);
      m[i] = f32(beta1 * m[i] + (1 - beta1) * g);
      v[i] = f32(beta2 * v[i] + (1 - beta2) * g * g);
      p[i] = f32(p[i] - (lr / bc1) * (m[i] / (Math.sqrt(v[i]) / bc2Sqrt + eps)));
    }
  };
}

/** torch.optim.SGD (torch/optim/sgd.py, dampening 0) for one parameter. */
function sgdRef(o: SGDOptions) {
  const { lr: lr0, momentum = 0, nesterov = false, weightDecay = 0 } = o;
  let buf: Float64Array | null = null;
  return (p: Float64Array, grad: Float64Array, lr = lr0) => {
    const first = !buf;
    buf ??= new Float64Array(p.length);
    for (let i = 0; i < p.length; i++) {
      let g = f32(grad[i] + weightDecay * p[i]);
      if (momentum !== 0) {
        // torch: buf = clone(g) on the first step, then buf = momentum·buf + g.
        buf[i] = first ? g : f32(momentum * buf[i] + g);
        g = nesterov ? f32(g + momentum * buf[i]) : buf[i];
      }
      p[i] = f32(p[i] - lr * g);
    }
  };
}

/**
 * Largest elementwise error of the parameter's total change since `start`, relative to the largest change: rounding
 * of the stored f32 values is below 1e-7 of it, while one wrong term in an update shows up in full.
 */
function changeError(out: ArrayLike<number>, ref: ArrayLike<number>, start: ArrayLike<number>): number {
  let worst = 0;
  let scale = 0;
  for (let i = 0; i < ref.length; i++) {
    if (!Number.isFinite(out[i])) return Infinity;
    worst = Math.max(worst, Math.abs(out[i] - ref[i]));
    scale = Math.max(scale, Math.abs(ref[i] - start[i]));
  }
  return worst / scale;
}

interface Optimizer {
  step(lr?: number): void;
  zeroGrad(): void;
  dispose(): void;
}

/**
 * Runs STEPS optimizer steps on SHAPES-shaped parameters with fresh random gradients (learning rates from `lrs` when
 * given), the same in float64, and returns the worst changeError over all parameters and steps.
 */
async function compare(
  e: Engine,
  make: (params: Tensor[]) => Optimizer,
  ref: () => (p: Float64Array, g: Float64Array, lr?: number) => void,
  lrs?: number[],
): Promise<number> {
  const rand = rng(7);
  const before = e.stats().liveTensors;
  const values = SHAPES.map((s) => uniform(s.reduce((a, b) => a * b, 1), rand));
  const start = values.map((v) => v.slice());
  const params = SHAPES.map((s, i) => e.param(e.tensor(Float32Array.from(values[i]), s)));
  const refs = SHAPES.map(() => ref());
  const opt = make(params);
  let worst = 0;
  for (let step = 0; step < STEPS; step++) {
    params.forEach((p, i) => {
      const g = uniform(p.size, rand, -2, 2);
      p.grad = e.keep(e.tensor(Float32Array.from(g), p.shape));
      refs[i](values[i], g, lrs?.[step]);
    });
    opt.step(lrs?.[step]);
    opt.zeroGrad();
    for (let i = 0; i < params.length; i++) worst = Math.max(worst, changeError(await params[i].data(), values[i], start[i]));
  }
  opt.dispose();
  for (const p of params) p.dispose();
  expect(e.stats().liveTensors, 'tensors leaked').toBe(before);
  return worst;
}

// Adam moves each element by about lr per step; with parameters of order 1, one f32 rounding of a parameter is then
// 6e-8 / lr of the change, so learning rates stay at a few 1e-2 (the same ratio as lr 1e-3 on weights of order 0.1).
const adamCases: [string, AdamOptions][] = [
  ['Adam', { lr: 5e-2 }],
  ['Adam with L2 weight decay', { lr: 5e-2, weightDecay: 0.1 }],
  ['AdamW (decoupled weight decay)', { lr: 5e-2, weightDecay: 0.1, decoupled: true }],
  ['Adam with beta1 0.95, beta2 0.99, eps 1e-3', { lr: 5e-2, beta1: 0.95, beta2: 0.99, eps: 1e-3 }],
];

const sgdCases: [string, SGDOptions][] = [
  ['SGD', { lr: 0.1 }],
  ['SGD with weight decay', { lr: 0.1, weightDecay: 0.05 }],
  ['SGD with momentum', { lr: 0.05, momentum: 0.9 }],
  ['SGD with Nesterov momentum and weight decay', { lr: 0.05, momentum: 0.9, nesterov: true, weightDecay: 0.01 }],
];

describe('Adam', () => {
  for (const [name, o] of adamCases) {
    it(`${name} matches torch over ${STEPS} steps`, async (e) => {
      expect(await compare(e, (ps) => new Adam(ps, o), () => adamRef(o))).toBeLessThan(1e-5);
    });
  }

  it('step(lr) overrides the learning rate per step (schedules)', async (e) => {
    const o = { lr: 1, weightDecay: 0.1, decoupled: true };
    const lrs = [5e-2, 2e-2, 1e-1, 5e-3, 0, 5e-2];
    expect(await compare(e, (ps) => new Adam(ps, o), () => adamRef(o), lrs)).toBeLessThan(1e-5);
  });

  it('skips parameters without a gradient, and their step count with them', async (e) => {
    const a = e.param(e.tensor([0.5, -0.25], [2]));
    const b = e.param(e.tensor([1, 2, 3], [3]));
    const opt = new Adam([a, b], { lr: 0.1 });
    b.grad = e.keep(e.tensor([1, -1, 2], [3]));
    opt.step();
    opt.zeroGrad();
    expect(Array.from(await a.data())).toEqual([0.5, -0.25]);
    // A first Adam step moves every element by lr·sign(g) (up to eps): it is the first step for a, the second for b.
    a.grad = e.keep(e.tensor([3, -0.001], [2]));
    opt.step();
    const got = Array.from(await a.data());
    expect(got[0]).toBeCloseTo(0.4, 6);
    expect(got[1]).toBeCloseTo(-0.15, 5);
    opt.zeroGrad();
    expect(a.grad).toBeNull();
    opt.dispose();
    a.dispose();
    b.dispose();
  });

  it('keeps its memory constant across steps, inside tidy scopes', async (e) => {
    const p = e.param(e.tensor(new Float32Array(1000).fill(1), [10, 100]));
    const opt = new Adam([p], { lr: 1e-3 });
    const stepOnce = () => {
      p.grad = e.keep(e.fill(p.shape, 0.5));
      e.tidy(() => opt.step());
      opt.zeroGrad();
      // Buffers released before a submit are parked until it: without one per step the pool would grow by a gradient each step.
      e.flush();
    };
    stepOnce();
    await e.sync();
    const after1 = e.stats();
    for (let i = 0; i < 20; i++) stepOnce();
    await e.sync();
    const after21 = e.stats();
    expect([after21.liveTensors, after21.liveBytes, after21.allocatedBytes]).toEqual([after1.liveTensors, after1.liveBytes, after1.allocatedBytes]);
    // What stays is the parameter and its two moments.
    opt.dispose();
    expect(e.stats().liveBytes).toBe(after1.liveBytes - 2 * 4000);
    p.dispose();
  });

  it('rejects bad hyperparameters and mismatched gradients by name', async (e) => {
    const p = e.param(e.tensor([1, 2, 3, 4], [2, 2]));
    expect(() => new Adam([p], { lr: -1 })).toThrow('Adam: lr must be in [0, Infinity), got -1');
    expect(() => new Adam([p], { lr: 1e-3, beta2: 1 })).toThrow('Adam: beta2 must be in [0, 1), got 1');
    expect(() => new Adam([], { lr: 1e-3 })).toThrow('Adam: no parameters given');
    expect(() => new Adam([p, p], { lr: 1e-3 })).toThrow('Adam: a parameter is listed twice');
    const q = e.tensor(new Int32Array(2), [2]);
    expect(() => new Adam([p, q], { lr: 1e-3 })).toThrow('Adam: parameter 1 must be f32, got i32 [2]');
    const opt = new Adam([p], { lr: 1e-3 });
    p.grad = e.keep(e.tensor([1, 2, 3], [3]));
    expect(() => opt.step()).toThrow('Adam: parameter 0 [2, 2] has a gradient of shape [3] f32');
    opt.zeroGrad();
    // A gradient that aliases the parameter would be read while the kernel writes it.
    p.grad = e.view(p, [2, 2]);
    expect(() => opt.step()).toThrow("binding 'param' is written but shares memory with binding 'grad'");
    opt.zeroGrad();
    opt.dispose();
    p.dispose();
    q.dispose();
  });
});

describe('SGD', () => {
  for (const [name, o] of sgdCases) {
    it(`${name} matches torch over ${STEPS} steps`, async (e) => {
      expect(await compare(e, (ps) => new SGD(ps, o), () => sgdRef(o))).toBeLessThan(1e-5);
    });
  }

  it('step(lr) overrides the learning rate per step', async (e) => {
    const o = { lr: 1, momentum: 0.5 };
    const lrs = [0.1, 0.05, 0.2, 0, 0.01, 0.1];
    expect(await compare(e, (ps) => new SGD(ps, o), () => sgdRef(o), lrs)).toBeLessThan(1e-5);
  });

  it('takes hand-checked momentum steps and skips parameters without a gradient', async (e) => {
    const p = e.param(e.tensor([1, -1], [2]));
    const idle = e.param(e.tensor([7], [1]));
    const opt = new SGD([p, idle], { lr: 0.5, momentum: 0.5 });
    p.grad = e.keep(e.tensor([1, 2], [2]));
    opt.step(); // buf = g = [1, 2]; p = [1, -1] − 0.5·[1, 2]
    expect(Array.from(await p.data())).toEqual([0.5, -2]);
    opt.step(); // buf = 0.5·[1, 2] + [1, 2] = [1.5, 3]; p −= 0.5·buf
    expect(Array.from(await p.data())).toEqual([-0.25, -3.5]);
    expect(Array.from(await idle.data())).toEqual([7]);
    opt.zeroGrad();
    opt.dispose();
    p.dispose();
    idle.dispose();
  });

  it('rejects bad hyperparameters by name', async (e) => {
    const p = e.param(e.tensor([1], [1]));
    expect(() => new SGD([p], { lr: 0.1, nesterov: true })).toThrow('SGD: Nesterov momentum needs momentum > 0');
    expect(() => new SGD([p], { lr: 0.1, momentum: -0.5 })).toThrow('SGD: momentum must be in [0, Infinity), got -0.5');
    expect(() => new SGD([p], { lr: 0.1 }).step(NaN)).toThrow('SGD: lr must be in [0, Infinity), got NaN');
    p.dispose();
  });
});
