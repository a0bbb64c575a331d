// Checks that run unchanged in every runtime (Node through Dawn, Deno through wgpu, Chromium through Dawn): they
// import only the runtime-agnostic entry and report plain objects, so each runner decides how to print them.
// The centrepiece is a real training step: a linear model fitted by SGD, its gradient compared with the analytic one.
import { Adam, add, mean, mul, scale, square, sub, sum, type Engine, type Tensor } from '../../src/index.ts';
import { locateMessage, sourceLocation } from '../../src/engine/dispatch.ts';
import { shaderSources } from '../../src/shaders.gen.ts';

export interface CheckResult {
  /** The op family (test/ops/NAME.ts) of an op check; none for the checks of this file. */
  family?: string;
  name: string;
  ok: boolean;
  detail: string;
  ms?: number;
  /** Why an op check was not run on this adapter (it then counts as neither passed nor failed). */
  skipped?: string;
  /** Numbers a runner may want to print (losses, errors). */
  values?: Record<string, number | number[]>;
}

/** Runs every check on `engine`; a check that throws is reported as failed with its message. */
export async function runPortableChecks(engine: Engine): Promise<CheckResult[]> {
  const results: CheckResult[] = [];
  for (const [name, check] of checks) {
    const before = engine.stats().liveTensors;
    try {
      const result = await check(engine);
      const leaked = engine.stats().liveTensors - before;
      results.push(leaked === 0 ? { name, ...result } : { name, ...result, ok: false, detail: `${result.detail}; ${leaked} tensors leaked` });
    } catch (e) {
      results.push({ name, ok: false, detail: e instanceof Error ? (e.stack ?? e.message) : String(e) });
    }
  }
  return results;
}

type Check = (e: Engine) => Promise<Omit<CheckResult, 'name'>>;

// Linear regression y = x·W + b with x [N, IN], W [IN, OUT], b [OUT]; the target comes from a known W*, b*.
const N = 32;
const IN = 8;
const OUT = 4;
const STEPS = 30;
const LR = 1;

const checks: [string, Check][] = [
  ['every shader in shaders/ compiles', shadersCompile],
  ['forward of elementwise and reduce ops matches a float64 reference', forwardMatchesReference],
  ['gradient of the linear-model loss matches the analytic gradient', gradientMatchesAnalytic],
  ['SGD training step lowers the loss of a linear model', trainingLowersLoss],
  ['Adam (fused optimizer kernel) lowers the loss of a linear model', adamLowersLoss],
];

// WebGPU implementations differ in WGSL strictness (wgpu's naga vs Dawn's Tint): this names the module, and the entry
// point, that fails, with each error's file and line (the shader's own, or a file of shaders/common/ it includes).
// Some rules are only checked once overrides are known, so every entry point becomes a pipeline (overrides without a
// default get 0, which every shader here accepts as a valid choice).
async function shadersCompile(e: Engine): Promise<Omit<CheckResult, 'name'>> {
  const failures: string[] = [];
  let pipelines = 0;
  for (const [name, code] of Object.entries(shaderSources)) {
    e.device.pushErrorScope('validation');
    const module = e.device.createShaderModule({ label: name, code });
    const info = await module.getCompilationInfo();
    const error = await e.device.popErrorScope();
    const messages = info.messages
      .filter((m) => m.type === 'error')
      .map((m) => `${sourceLocation(name, code, m.lineNum)}:${m.linePos} ${m.message}`);
    if (error && messages.length === 0) messages.push(error.message);
    if (messages.length > 0) {
      failures.push(`shader ${name}: ${messages.join('; ')}`);
      continue;
    }
    const constants = Object.fromEntries([...code.matchAll(/^override\s+(\w+)\s*:\s*\w+\s*;/gm)].map((m) => [m[1], 0]));
    for (const [, entryPoint] of code.matchAll(/@compute\b[^;{]*?\bfn\s+(\w+)/g)) {
      e.device.pushErrorScope('validation');
      e.device.createComputePipeline({ label: `${name}.${entryPoint}`, layout: 'auto', compute: { module, entryPoint, constants } });
      const pipelineError = await e.device.popErrorScope();
      if (pipelineError) failures.push(`shader ${name}, entry point ${entryPoint}: ${locateMessage(name, code, pipelineError.message)}`);
      pipelines++;
    }
  }
  const names = Object.keys(shaderSources);
  return {
    ok: failures.length === 0,
    detail: failures.length ? failures.join('\n') : `${names.length} modules (${names.join(', ')}), ${pipelines} compute pipelines`,
  };
}

async function forwardMatchesReference(e: Engine): Promise<Omit<CheckResult, 'name'>> {
  const rand = rng(1);
  const a = uniform(N * IN, rand);
  const b = uniform(IN, rand);
  // mean((a − b)² · a) over rows with b broadcast along them, then summed: exercises broadcasting and both reductions.
  const out = e.tidy(() => {
    const ta = e.tensor(a, [N, IN]);
    const tb = e.tensor(b, [IN]);
    return sum(mean(mul(square(sub(ta, tb)), ta), 0));
  });
  const value = await out.item();
  out.dispose();
  let ref = 0;
  for (let i = 0; i < N; i++) for (let j = 0; j < IN; j++) ref += (a[i * IN + j] - b[j]) ** 2 * a[i * IN + j] / N;
  const err = Math.abs(value - ref) / Math.abs(ref);
  return { ok: err < 1e-5, detail: `got ${value}, float64 reference ${ref}, relative error ${err.toExponential(2)}`, values: { value, ref, err } };
}

async function gradientMatchesAnalytic(e: Engine): Promise<Omit<CheckResult, 'name'>> {
  const data = problem();
  const w = uniform(IN * OUT, rng(3), -0.5, 0.5);
  const bias = new Float32Array(OUT);
  const W = e.param(e.tensor(w, [IN, OUT]));
  const B = e.param(e.tensor(bias, [OUT]));
  e.tidy(() => loss(e, data, W, B).backward());
  const [gW, gB] = [await W.grad!.data(), await B.grad!.data()];
  W.dispose();
  B.dispose();
  // dL/dW[k,o] = 2/(N·OUT) Σ_n r[n,o] x[n,k], dL/db[o] = 2/(N·OUT) Σ_n r[n,o], with r = xW + b − y.
  const refW = new Float64Array(IN * OUT);
  const refB = new Float64Array(OUT);
  for (let n = 0; n < N; n++) {
    for (let o = 0; o < OUT; o++) {
      let r = bias[o] - data.y[n * OUT + o];
      for (let k = 0; k < IN; k++) r += data.x[n * IN + k] * w[k * OUT + o];
      const g = (2 * r) / (N * OUT);
      refB[o] += g;
      for (let k = 0; k < IN; k++) refW[k * OUT + o] += g * data.x[n * IN + k];
    }
  }
  const errW = relError(gW, refW);
  const errB = relError(gB, refB);
  return {
    ok: errW < 1e-5 && errB < 1e-5,
    detail: `relative error of dL/dW ${errW.toExponential(2)}, of dL/db ${errB.toExponential(2)}`,
    values: { errW, errB },
  };
}

async function trainingLowersLoss(e: Engine): Promise<Omit<CheckResult, 'name'>> {
  const data = problem();
  let W = e.param(e.tensor(uniform(IN * OUT, rng(3), -0.5, 0.5), [IN, OUT]));
  let B = e.param(e.zeros([OUT]));
  const losses: number[] = [];
  for (let step = 0; step < STEPS; step++) {
    const value = e.tidy(() => {
      const l = loss(e, data, W, B);
      l.backward();
      return l;
    });
    losses.push(await value.item());
    value.dispose();
    // Plain SGD: the updated parameters are new tensors; the old ones (and their gradients) are freed.
    const [nextW, nextB] = e.noGrad(() => e.tidy(() => [sub(W, scale(W.grad!, LR)), sub(B, scale(B.grad!, LR))]));
    W.dispose();
    B.dispose();
    W = e.param(nextW);
    B = e.param(nextB);
  }
  W.dispose();
  B.dispose();
  const [first, last] = [losses[0], losses[losses.length - 1]];
  const decreasing = losses.every((l, i) => i === 0 || l <= losses[i - 1] * (1 + 1e-6));
  return {
    ok: Number.isFinite(last) && decreasing && last < first / 100,
    detail: `loss ${first.toPrecision(4)} → ${last.toPrecision(4)} in ${STEPS} steps${decreasing ? '' : ' (not monotone)'}`,
    values: { first, last, losses },
  };
}

async function adamLowersLoss(e: Engine): Promise<Omit<CheckResult, 'name'>> {
  const data = problem();
  const W = e.param(e.tensor(uniform(IN * OUT, rng(3), -0.5, 0.5), [IN, OUT]));
  const B = e.param(e.zeros([OUT]));
  const adam = new Adam([W, B], { lr: 0.1 });
  const losses: number[] = [];
  for (let step = 0; step < STEPS; step++) {
    const value = e.tidy(() => {
      const l = loss(e, data, W, B);
      l.backward();
      return l;
    });
    losses.push(await value.item());
    value.dispose();
    adam.step();
    adam.zeroGrad();
  }
  adam.dispose();
  W.dispose();
  B.dispose();
  const [first, last] = [losses[0], losses[losses.length - 1]];
  return {
    ok: Number.isFinite(last) && last < first / 20,
    detail: `loss ${first.toPrecision(4)} → ${last.toPrecision(4)} in ${STEPS} steps`,
    values: { first, last, losses },
  };
}

/** mean((x·W + b − y)²), with x·W as a broadcast multiply [N, IN, 1] × [IN, OUT] summed over IN. */
function loss(e: Engine, data: { x: Float32Array; y: Float32Array }, W: Tensor, B: Tensor): Tensor {
  const x = e.tensor(data.x, [N, IN, 1]);
  const y = e.tensor(data.y, [N, OUT]);
  const prediction = add(sum(mul(x, W), 1), B);
  return mean(square(sub(prediction, y)));
}

/** Inputs and targets of a noiseless linear problem, so the loss can approach zero. */
function problem(): { x: Float32Array; y: Float32Array } {
  const rand = rng(2);
  const x = uniform(N * IN, rand);
  const wTrue = uniform(IN * OUT, rand);
  const bTrue = uniform(OUT, rand);
  const y = new Float32Array(N * OUT);
  for (let n = 0; n < N; n++) {
    for (let o = 0; o < OUT; o++) {
      let v = bTrue[o];
      for (let k = 0; k < IN; k++) v += x[n * IN + k] * wTrue[k * OUT + o];
      y[n * OUT + o] = v;
    }
  }
  return { x, y };
}

/** A seeded uniform generator in [0, 1) (mulberry32). */
function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** n values uniform in [lo, hi) as f32: the GPU and the float64 references see the same numbers. */
function uniform(n: number, rand: () => number, lo = -1, hi = 1): Float32Array {
  return Float32Array.from({ length: n }, () => lo + (hi - lo) * rand());
}

function relError(out: ArrayLike<number>, ref: ArrayLike<number>): number {
  let num = 0;
  let den = 0;
  for (let i = 0; i < ref.length; i++) {
    num += (out[i] - ref[i]) ** 2;
    den += ref[i] ** 2;
  }
  return Number.isFinite(num) ? Math.sqrt(num / den) : Infinity;
}
