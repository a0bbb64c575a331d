// The flops the convolution family and matmul declare to profiles (KernelTiming.flops, what `wgseg train --profile`
// turns into GFLOP/s), against hand counts of 2 per multiply-add: a grouped, strided, dilated conv whose input needs a
// gradient (forward, input gradient and weight gradient each do the conv's count), a strided transposed conv, a
// batched matmul, and ops that declare nothing.
import { describe, expect, it } from 'vitest';
import { conv, convTranspose, type Engine, matmul, relu, sum, type Tensor } from '../src/index.ts';
import { rng, uniform } from './support/check.ts';
import { testEngine } from './support/engine.ts';

const random = (e: Engine, shape: number[], seed: number): Tensor =>
  e.param(e.tensor(Float32Array.from(uniform(shape.reduce((a, b) => a * b, 1), rng(seed), -1, 1)), shape));

/** Flops declared per label over a forward and backward of `f`, and the tensors left live afterwards. */
async function declared(e: Engine, f: () => Tensor, params: Tensor[]): Promise<Record<string, number>> {
  const timings = await e.profile(async () => {
    e.tidy(() => e.backward(sum(f())));
    await e.sync();
  });
  for (const p of params) p.dispose();
  const flops: Record<string, number> = {};
  for (const t of timings) flops[t.label] = (flops[t.label] ?? 0) + t.flops;
  return flops;
}

describe('declared flops', () => {
  it('conv: forward, input gradient and weight gradient each declare 2·N·Cout·outVolume·(Cin/group)·kernelVolume', async () => {
    const e = await testEngine();
    const before = e.stats().liveTensors;
    // x [2, 6, 11, 13], w [4, 3, 3, 3], group 2, strides [2, 1], pads 1, dilations [1, 2]: output 6 × 11.
    const x = random(e, [2, 6, 11, 13], 1);
    const w = random(e, [4, 3, 3, 3], 2);
    const flops = await declared(e, () => conv(x, w, null, { group: 2, strides: [2, 1], pads: [1, 1, 1, 1], dilations: [1, 2] }), [x, w]);
    const count = 2 * 2 * 4 * (6 * 11) * 3 * 9;
    expect(count).toBe(28512);
    expect(flops.conv).toBe(count);
    expect(flops['conv.inputGrad']).toBe(count);
    expect(flops['conv.weightGrad']).toBe(count);
    expect(e.stats().liveTensors).toBe(before);
  });

  it('convTranspose: 2·N·Cin·inVolume·(Cout/group)·kernelVolume for its forward and both gradients', async () => {
    const e = await testEngine();
    // x [1, 4, 5, 6], w [4, 2, 3, 3], stride 2: output [1, 2, 11, 13].
    const x = random(e, [1, 4, 5, 6], 3);
    const w = random(e, [4, 2, 3, 3], 4);
    const flops = await declared(e, () => convTranspose(x, w, null, { strides: [2, 2] }), [x, w]);
    const count = 2 * 1 * 4 * (5 * 6) * 2 * 9;
    expect(flops.convTranspose).toBe(count);
    expect(flops['convTranspose.inputGrad']).toBe(count);
    expect(flops['convTranspose.weightGrad']).toBe(count);
  });

  it('matmul: 2·batch·M·N·K; elementwise ops and sums declare none', async () => {
    const e = await testEngine();
    const a = random(e, [3, 5, 7], 5);
    const b = random(e, [7, 4], 6);
    const flops = await declared(e, () => relu(matmul(a, b)), [a, b]);
    // The forward [3,5,7]·[7,4] and the two gradient products, each the same count.
    expect(flops.matmul).toBe(3 * (2 * 3 * 5 * 4 * 7));
    for (const [label, n] of Object.entries(flops)) if (label !== 'matmul') expect([label, n]).toEqual([label, 0]);
  });
});
