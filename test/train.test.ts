// End to end: an MLP learns two interleaved spirals with softmax cross-entropy and Adam, and a long training loop
// keeps the engine's memory exactly constant.
import { describe, expect, it } from 'vitest';
import {
  add, Adam, cosineDecay, logSoftmax, matmul, mul, scale, sum, tanh, xavierUniform, zerosInit, type Engine, type Tensor,
} from '../src/index.ts';
import { rng } from './support/check.ts';
import { testEngine } from './support/engine.ts';

/** `n` points on two interleaved spirals (half per class, winding out to 1.5 turns) with a little noise, as [n, 2] and one-hot [n, 2]. */
function spirals(n: number, seed: number): { points: Float32Array; onehot: Float32Array; labels: number[] } {
  const rand = rng(seed);
  const points = new Float32Array(n * 2);
  const onehot = new Float32Array(n * 2);
  const labels: number[] = [];
  for (let i = 0; i < n; i++) {
    const label = i % 2;
    const t = 0.25 + 2.75 * rand(); // radius and angle grow together
    const angle = t * Math.PI + label * Math.PI;
    points[2 * i] = (t * Math.cos(angle)) / 3 + 0.02 * (rand() - 0.5);
    points[2 * i + 1] = (t * Math.sin(angle)) / 3 + 0.02 * (rand() - 0.5);
    onehot[2 * i + label] = 1;
    labels.push(label);
  }
  return { points, onehot, labels };
}

interface Linear {
  /** [out, in], as torch.nn.Linear. */
  weight: Tensor;
  bias: Tensor;
}

/** Dense layers of the given widths: Xavier-uniform weights, zero biases. */
function mlp(e: Engine, widths: number[], seed: number): Linear[] {
  return widths.slice(1).map((out, k) => ({ weight: xavierUniform(e, [out, widths[k]], seed + k), bias: zerosInit(e, [out]) }));
}

/** Logits of the MLP: tanh after every layer but the last. */
function forward(layers: Linear[], x: Tensor): Tensor {
  return layers.reduce((h, { weight, bias }, k) => {
    const z = add(matmul(h, weight, { transposeB: true }), bias);
    return k < layers.length - 1 ? tanh(z) : z;
  }, x);
}

/** Mean softmax cross-entropy of logits [n, classes] against one-hot targets. */
function crossEntropy(logits: Tensor, onehot: Tensor): Tensor {
  return scale(sum(mul(onehot, logSoftmax(logits, 1))), -1 / logits.shape[0]);
}

const paramsOf = (layers: Linear[]) => layers.flatMap((l) => [l.weight, l.bias]);

describe('training', () => {
  it('an MLP learns two interleaved spirals', async () => {
    const e = await testEngine();
    const n = 256;
    const steps = 300;
    const data = spirals(n, 3);
    const x = e.keep(e.tensor(data.points, [n, 2]));
    const y = e.keep(e.tensor(data.onehot, [n, 2]));
    const layers = mlp(e, [2, 32, 32, 2], 5);
    const opt = new Adam(paramsOf(layers), { lr: 0.02 });
    const lr = cosineDecay({ lr0: 0.02, lrMin: 1e-3, steps });
    const started = performance.now();
    const losses: number[] = [];
    for (let step = 0; step < steps; step++) {
      const loss = e.tidy(() => {
        const l = crossEntropy(forward(layers, x), y);
        l.backward();
        opt.step(lr(step));
        opt.zeroGrad();
        return l;
      });
      if (step % 50 === 0 || step === steps - 1) losses.push(await loss.item());
      loss.dispose();
    }
    const logits = e.noGrad(() => e.tidy(() => forward(layers, x)));
    const predicted = await logits.data();
    logits.dispose();
    const correct = data.labels.filter((label, i) => predicted[2 * i + label] > predicted[2 * i + 1 - label]).length;
    const seconds = (performance.now() - started) / 1000;
    console.log(`spirals: loss ${losses.map((l) => l.toFixed(4)).join(' → ')}, accuracy ${correct}/${n}, ${seconds.toFixed(1)} s`);
    expect(losses[0]).toBeGreaterThan(0.6);
    expect(losses[losses.length - 1]).toBeLessThan(0.1);
    expect(correct / n).toBeGreaterThan(0.95);
    opt.dispose();
    for (const p of paramsOf(layers)) p.dispose();
    x.dispose();
    y.dispose();
  }, 60_000);

  it('1000 steps end with exactly the memory of step 10', async () => {
    const e = await testEngine();
    const n = 16;
    const data = spirals(n, 11);
    const x = e.keep(e.tensor(data.points, [n, 2]));
    const y = e.keep(e.tensor(data.onehot, [n, 2]));
    const layers = mlp(e, [2, 8, 2], 13);
    const opt = new Adam(paramsOf(layers), { lr: 0.01, weightDecay: 1e-4 });
    const memory = () => {
      const s = e.stats();
      return { liveTensors: s.liveTensors, liveBytes: s.liveBytes, allocatedBytes: s.allocatedBytes };
    };
    let atStep10 = memory();
    const losses: number[] = [];
    const started = performance.now();
    for (let step = 1; step <= 1000; step++) {
      const loss = e.tidy(() => {
        const l = crossEntropy(forward(layers, x), y);
        l.backward();
        opt.step();
        opt.zeroGrad();
        return step % 100 === 0 ? l : null;
      });
      // One submit per step, as a training loop does. Buffers freed while their commands are still being encoded are
      // parked until the submit, so with submits at arbitrary points (every 256 dispatches) the pool's size would
      // depend on where in a step they fell.
      e.flush();
      if (loss) {
        losses.push(await loss.item());
        loss.dispose();
      }
      if (step === 10) atStep10 = memory();
    }
    const atStep1000 = memory();
    console.log(`memory: step 10 ${JSON.stringify(atStep10)}, step 1000 ${JSON.stringify(atStep1000)}; loss ${losses[0].toFixed(4)} → ${losses[losses.length - 1].toFixed(4)}; ${((performance.now() - started) / 1000).toFixed(1)} s`);
    expect(atStep1000).toEqual(atStep10);
    expect(losses[losses.length - 1]).toBeLessThan(losses[0]);
    opt.dispose();
    for (const p of paramsOf(layers)) p.dispose();
    x.dispose();
    y.dispose();
  }, 60_000);
});
