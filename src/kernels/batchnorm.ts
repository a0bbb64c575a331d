// Batch normalization (shaders/batchnorm.wgsl) over x [N, C, (D), (H), (W)] with PyTorch's semantics: training
// normalizes with the batch statistics (biased variance) and updates the running statistics in place on the GPU
// (unbiased variance, exponential moving average with `momentum`); evaluation normalizes with the running statistics.
import { record } from '../engine/autograd.ts';
import type { Tensor } from '../engine/tensor.ts';
import { shaderConstants } from '../shaders.gen.ts';
import { expectF32 } from './elementwise.ts';

const { WORKGROUP_SIZE, VEC4_PER_INVOCATION } = shaderConstants.batchnorm;

export interface BatchNormState {
  /** [C], updated in place by training-mode calls (PyTorch initializes it to 0). */
  runningMean: Tensor;
  /** [C], updated in place by training-mode calls (PyTorch initializes it to 1). */
  runningVar: Tensor;
}

export interface BatchNormOptions {
  training: boolean;
  /** Weight of the new batch statistics in the running averages (default 0.1, PyTorch's; Keras' 0.99 is 0.01 here). */
  momentum?: number;
  /** Added to the variance (default 1e-5; EmbedSeg uses 1e-3). */
  eps?: number;
}

/** y = (x − mean) / √(var + eps) · gamma + beta per channel; gradients for x, gamma and beta. */
export function batchNorm(x: Tensor, gamma: Tensor, beta: Tensor, state: BatchNormState, options: BatchNormOptions): Tensor {
  expectF32('batchNorm', 'input', x);
  if (x.rank < 2) throw new Error(`batchNorm: input must be [N, C, ...], got [${x.shape.join(', ')}]`);
  const [batch, channels] = x.shape;
  const spatial = x.shape.slice(2).reduce((p, q) => p * q, 1);
  for (const [name, t] of [['gamma', gamma], ['beta', beta], ['runningMean', state.runningMean], ['runningVar', state.runningVar]] as const) {
    expectF32('batchNorm', name, t);
    if (t.rank !== 1 || t.shape[0] !== channels) {
      throw new Error(`batchNorm: ${name} must be [${channels}] (the input's channels), got [${t.shape.join(', ')}]`);
    }
  }
  const { training } = options;
  const momentum = options.momentum ?? 0.1;
  const eps = options.eps ?? 1e-5;
  if (training && batch * spatial < 2) {
    throw new Error(`batchNorm: training needs more than one value per channel, got input [${x.shape.join(', ')}]`);
  }
  const e = x.engine;
  const params = { channels, batch, spatial, n: x.size, momentum, eps };
  const { runningMean, runningVar } = state;

  const stats = e.empty([2, channels]);
  if (training) {
    e.dispatch({
      shader: 'batchnorm', entry: 'bn_train_stats', label: 'batchNorm.stats',
      bindings: { x, stats, runningMean, runningVar, params }, workgroups: [channels],
    });
  } else {
    e.dispatch({
      shader: 'batchnorm', entry: 'bn_eval_stats', label: 'batchNorm.evalStats',
      bindings: { stats, runningMean, runningVar, params }, workgroups: e.groups1D(channels, WORKGROUP_SIZE),
    });
  }
  // Planes of 4k elements go four at a time (vec4 entries), VEC4_PER_INVOCATION vec4s per invocation.
  const vec4 = spatial % 4 === 0;
  const elementwise = e.groups1D(vec4 ? Math.ceil(x.size / (4 * VEC4_PER_INVOCATION)) : x.size, WORKGROUP_SIZE);
  const out = e.empty(x.shape);
  e.dispatch({
    shader: 'batchnorm', entry: vec4 ? 'bn_forward_vec4' : 'bn_forward', label: 'batchNorm',
    bindings: vec4 ? { x4: x, statsIn: stats, gamma, beta, out4: out, params } : { x, statsIn: stats, gamma, beta, out, params }, workgroups: elementwise,
  });

  const y = record('batchNorm', [x, gamma, beta], out, (gy) => {
    // The per-channel sums are the gamma and beta gradients, and the training-mode input gradient needs them too.
    const needSums = training ? x.requiresGrad || gamma.requiresGrad || beta.requiresGrad : gamma.requiresGrad || beta.requiresGrad;
    let gGamma: Tensor | null = null;
    let gBeta: Tensor | null = null;
    if (needSums) {
      gGamma = e.empty([channels]);
      gBeta = e.empty([channels]);
      e.dispatch({
        shader: 'batchnorm', entry: 'bn_backward_reduce', label: 'batchNorm.backward.sums',
        bindings: { x, gy, statsIn: stats, gGamma, gBeta, params }, workgroups: [channels],
      });
    }
    let gx: Tensor | null = null;
    if (x.requiresGrad) {
      gx = e.empty(x.shape);
      const entry = `${training ? 'bn_backward_input_train' : 'bn_backward_input_eval'}${vec4 ? '_vec4' : ''}`;
      const io: Record<string, Tensor> = vec4 ? { gy4: gy, gx4: gx } : { gy, gx };
      e.dispatch({
        shader: 'batchnorm', entry, label: 'batchNorm.backward.input',
        bindings: training
          ? { ...io, [vec4 ? 'x4' : 'x']: x, statsIn: stats, gamma, gGammaIn: gGamma!, gBetaIn: gBeta!, params }
          : { ...io, statsIn: stats, gamma, params },
        workgroups: elementwise,
      });
    }
    return [gx, gamma.requiresGrad ? gGamma : null, beta.requiresGrad ? gBeta : null];
  });
  // Without a recorded backward nothing will read the statistics again.
  if (!y.node) stats.dispose();
  return y;
}
