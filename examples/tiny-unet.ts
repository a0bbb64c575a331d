// A two-level U-Net small enough to train in seconds on a software GPU: the demo's and the conv-net test's model.
// conv3x3 → BN → ReLU → maxpool → conv3x3 → BN → ReLU → upsample ×2 → concat skip → conv3x3 → ReLU → conv1x1 → 2 logits.
import {
  batchNorm, concat, conv, heNormal, logSoftmax, maxPool, mean, mul, neg, relu, sum, upsample, zerosInit,
  type BatchNormState, type Engine, type Tensor,
} from '../src/index.ts';

interface ConvBN {
  w: Tensor;
  gamma: Tensor;
  beta: Tensor;
  state: BatchNormState;
}

export class TinyUNet {
  private readonly enc1: ConvBN;
  private readonly enc2: ConvBN;
  private readonly dec: { w: Tensor; b: Tensor };
  private readonly head: { w: Tensor; b: Tensor };

  constructor(e: Engine, width = 16, seed = 1) {
    const convBN = (cin: number, cout: number, s: number): ConvBN => ({
      w: heNormal(e, [cout, cin, 3, 3], s),
      gamma: e.param(e.fill([cout], 1)),
      beta: zerosInit(e, [cout]),
      state: { runningMean: e.keep(e.zeros([cout])), runningVar: e.keep(e.fill([cout], 1)) },
    });
    this.enc1 = convBN(1, width, seed);
    this.enc2 = convBN(width, 2 * width, seed + 1);
    this.dec = { w: heNormal(e, [width, 3 * width, 3, 3], seed + 2), b: zerosInit(e, [width]) };
    this.head = { w: heNormal(e, [2, width, 1, 1], seed + 3), b: zerosInit(e, [2]) };
  }

  get parameters(): Tensor[] {
    return [this.enc1, this.enc2].flatMap((l) => [l.w, l.gamma, l.beta]).concat([this.dec.w, this.dec.b, this.head.w, this.head.b]);
  }

  /** x [N, 1, H, W] (H, W even) → log-probabilities [N, 2, H, W] of background / foreground. */
  forward(x: Tensor, training: boolean): Tensor {
    const block = (t: Tensor, l: ConvBN) => relu(batchNorm(conv(t, l.w, null, { pads: [1, 1, 1, 1] }), l.gamma, l.beta, l.state, { training }));
    const skip = block(x, this.enc1);
    const deep = block(maxPool(skip, { kernel: [2, 2], strides: [2, 2] }), this.enc2);
    const up = upsample(deep, { scale: [2, 2], mode: 'nearest' });
    const d = relu(conv(concat([skip, up], 1), this.dec.w, this.dec.b, { pads: [1, 1, 1, 1] }));
    return logSoftmax(conv(d, this.head.w, this.head.b), 1);
  }

  dispose(): void {
    for (const p of this.parameters) p.dispose();
    for (const l of [this.enc1, this.enc2]) {
      l.state.runningMean.dispose();
      l.state.runningVar.dispose();
    }
  }
}

/** Mean negative log-likelihood of the true class; `target` is the one-hot [N, 2, H, W]. */
export function nllLoss(logProbs: Tensor, target: Tensor): Tensor {
  return neg(mean(sum(mul(logProbs, target), 1)));
}
