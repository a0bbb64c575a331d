// `wgseg train --profile N` (src/train/profile.ts): a profile of whole training steps of the tiny model, printed as
// tables, with nothing written and the model untouched; the flags that make no sense with it are named.
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { dataset, runMain, tinyRegistry } from './support/cli.ts';

const made: string[] = [];
afterAll(() => made.forEach((dir) => rmSync(dir, { recursive: true, force: true })));

describe('wgseg train --profile', () => {
  it('profiles steps of the run as configured and writes nothing', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'wgseg-profile-'));
    made.push(dir);
    const data = await dataset(join(dir, 'data'), { train: 2, val: 1 });
    const before = readdirSync(dir);
    const r = await runMain(['train', '--model', 'tiny', '--data', data, '--batch', '2', '--profile', '2'], tinyRegistry);
    expect(r.code).toBe(0);
    expect(r.stderr).toContain('profiling 2 step(s) of tiny (default): batch 2 of [128, 128]');
    const [summary] = r.stdout.split('\n');
    expect(summary).toMatch(/^per step \(mean of 2 after a first one\): wall [\d.]+ ms, GPU [\d.]+ ms, GPU idle \d+% of the wall time, \d+ dispatches, [\d.]+ submits$/);
    // Two steps read back one loss (the last step's, for the progress line): 0.5 submits per step. The trainer's
    // end-of-run save (a readback per weight and Adam moment) is no part of a step and not counted (4.0 when it was).
    expect(Number(/([\d.]+) submits$/.exec(summary)![1])).toBeLessThanOrEqual(1);
    // Its flops, by hand: a 1×1 conv of 1 to 1 channel on 2 × 128² pixels is 2 · 2 · 128² = 65 536 flops, done by the
    // forward and the weight gradient (the images need no gradient): 131 072 per step. Then the rate against the
    // 1024³ matmul measured in the same run.
    expect(r.stdout).toMatch(/\nflops per step \(convolutions and matmuls, 2 per multiply-add\): 0\.000131 GFLOP; over the wall time [\d.]+ GFLOP\/s \(\d+% of the matmul ceiling, [\d.]+ GFLOP\/s\), over the GPU time [\d.]+ GFLOP\/s\n/);
    // The tiny model's step: its 1x1 conv, forward and both gradients, among the kernels.
    expect(r.stdout).toContain('| op family | GPU ms per step | share | dispatches per step |');
    expect(r.stdout).toMatch(/\n\| conv \| [\d.]+ \| [\d.]+% \| 1 \|/);
    expect(r.stdout).toMatch(/\n\| conv\.weightGrad \| [\d.]+ \| [\d.]+% \| 1 \|/);
    expect(readdirSync(dir)).toEqual(before);
    const resumed = await runMain(['train', '--model', 'tiny', '--data', data, '--out', join(dir, 'run'), '--resume', '--profile', '2'], tinyRegistry);
    expect(resumed).toMatchObject({ code: 2, stderr: 'wgseg train: --profile runs a few steps of a new run; drop --resume\n' });
  });
});
