// A profile of whole training steps (pure TypeScript, every runtime): a few steps of a real run's trainer — batch
// sampling, loss, backward and optimizer, as training runs them — with GPU timestamps around every dispatch. Per step:
// wall time, GPU time (the sum of the kernels' timestamps), the share of the wall time the GPU is idle, dispatches and
// submits, GPU time by op family and by kernel, and the effective GFLOP/s of the step from the flops that the
// convolution family and matmul declare, next to the adapter's matmul ceiling measured in the same run. The first
// step (pipeline compilation) is left out. Nothing is saved and the model's tensors are restored afterwards.
import type { Engine } from '../engine/engine.ts';
import { matmul } from '../kernels/matmul.ts';
import type { InstanceModel } from '../models/model.ts';
import { sampleBatch } from './augment.ts';
import { modelTensors, readTensors, writeTensors } from './checkpoint.ts';
import type { RunConfig } from './run.ts';
import { Trainer } from './trainer.ts';
import type { Sample } from './volume.ts';

export interface KernelProfile {
  /** The dispatch label ("conv.weightGrad", "patchTargets.targets"); the family is what comes before the first dot. */
  label: string;
  family: string;
  /** GPU milliseconds, dispatches and declared flops per step. */
  ms: number;
  calls: number;
  flops: number;
}

export interface StepProfile {
  steps: number;
  /** Per step. */
  wallMs: number;
  gpuMs: number;
  dispatches: number;
  submits: number;
  /** 1 − GPU time / wall time: the share of a step in which no kernel runs (encoding, uploads, waits). */
  idleShare: number;
  /** Flops per step that the kernels declare (convolutions and matmuls; other ops count none). */
  flops: number;
  /** By kernel and by family, most GPU time first. */
  kernels: KernelProfile[];
  families: { family: string; ms: number; calls: number }[];
}

/** `steps` profiled training steps of `model` under `run` (after one unprofiled step), on the training samples. */
export async function profileSteps(e: Engine, model: InstanceModel, run: RunConfig, train: readonly Sample[], steps = 5): Promise<StepProfile> {
  if (!Number.isInteger(steps) || steps < 1) throw new Error(`profileSteps: steps must be a positive integer, got ${steps}`);
  const saved = await readTensors(modelTensors(model));
  const total = steps + 1;
  const trainer = new Trainer(model, { ...run.train, steps: total, logEvery: total, validateEvery: total + 1, saveEvery: total + 1 });
  let start = 0;
  let end = 0;
  let before = e.stats();
  let after = before;
  const timings = await e.profile(async () => {
    await trainer.run({
      batch: async (step) => {
        if (step === 1) {
          // Step 0 compiled the pipelines: its kernels and time are left out.
          await e.sync();
          await e.dispatcher.takeTimings();
          before = e.stats();
          start = performance.now();
        }
        return sampleBatch(e, train, {
          batchSize: run.train.batchSize, patchSize: run.data.patchSize, seed: run.train.seed * 2 ** 32 + step, augment: run.data.augment,
          crops: run.data.crops, layers: model.overlapping ?? false,
        });
      },
      save: async () => {},
      progress: (event) => {
        // The counts stop here too: the trainer's end-of-run save (reading back every weight and optimizer state)
        // is no part of a step.
        if (event.type === 'step' && event.step === total) {
          end = performance.now();
          after = e.stats();
        }
      },
    });
  });
  writeTensors(modelTensors(model), saved, 'the weights before profiling');
  const byLabel = new Map<string, { ms: number; calls: number; flops: number }>();
  for (const t of timings) {
    const k = byLabel.get(t.label) ?? { ms: 0, calls: 0, flops: 0 };
    k.ms += t.ms;
    k.calls++;
    k.flops += t.flops;
    byLabel.set(t.label, k);
  }
  const kernels = [...byLabel]
    .map(([label, k]) => ({ label, family: label.split('.')[0], ms: k.ms / steps, calls: k.calls / steps, flops: k.flops / steps }))
    .sort((a, b) => b.ms - a.ms);
  const byFamily = new Map<string, { ms: number; calls: number }>();
  for (const k of kernels) {
    const f = byFamily.get(k.family) ?? { ms: 0, calls: 0 };
    f.ms += k.ms;
    f.calls += k.calls;
    byFamily.set(k.family, f);
  }
  const wallMs = (end - start) / steps;
  const gpuMs = kernels.reduce((a, k) => a + k.ms, 0);
  return {
    steps, wallMs, gpuMs, dispatches: (after.dispatches - before.dispatches) / steps, submits: (after.submits - before.submits) / steps,
    idleShare: Math.max(0, 1 - gpuMs / wallMs), flops: kernels.reduce((a, k) => a + k.flops, 0), kernels,
    families: [...byFamily].map(([family, f]) => ({ family, ...f })).sort((a, b) => b.ms - a.ms),
  };
}

/**
 * The GFLOP/s of an n×n×n matmul on the engine's adapter, the median of 3 timed products after a warm-up (wall time
 * to GPU idle): the ceiling `npm run bench` reports, measured in the same process as a profile.
 */
export async function matmulCeiling(e: Engine, n = 1024): Promise<number> {
  const values = Float32Array.from({ length: n * n }, (_, i) => ((i * 7919) % 1000) / 1000 - 0.5);
  const a = e.tensor(values, [n, n]);
  const times: number[] = [];
  for (let r = 0; r < 4; r++) {
    const start = performance.now();
    const product = e.noGrad(() => matmul(a, a));
    await e.sync();
    if (r > 0) times.push(performance.now() - start);
    product.dispose();
  }
  a.dispose();
  times.sort((x, y) => x - y);
  return (2 * n ** 3) / (times[1] * 1e6);
}

/**
 * The profile as text: the per-step summary and its effective GFLOP/s (against `ceiling`, GFLOP/s, when given), then
 * families and the `top` kernels by GPU time.
 */
export function formatProfile(p: StepProfile, top = 15, ceiling?: number): string {
  const pct = (ms: number) => `${((100 * ms) / Math.max(p.gpuMs, 1e-9)).toFixed(1)}%`;
  const rate = (ms: number) => p.flops / (ms * 1e6);
  const ofCeiling = (ms: number) => (ceiling ? ` (${((100 * rate(ms)) / ceiling).toFixed(0)}% of the matmul ceiling, ${ceiling.toFixed(2)} GFLOP/s)` : '');
  const lines = [
    `per step (mean of ${p.steps} after a first one): wall ${p.wallMs.toFixed(1)} ms, GPU ${p.gpuMs.toFixed(1)} ms, GPU idle ${(100 * p.idleShare).toFixed(0)}% of the wall time, ${p.dispatches.toFixed(0)} dispatches, ${p.submits.toFixed(1)} submits`,
    `flops per step (convolutions and matmuls, 2 per multiply-add): ${(p.flops / 1e9).toPrecision(3)} GFLOP; over the wall time ${rate(p.wallMs).toFixed(2)} GFLOP/s${ofCeiling(p.wallMs)}, over the GPU time ${rate(p.gpuMs).toFixed(2)} GFLOP/s`,
    '',
    '| op family | GPU ms per step | share | dispatches per step |',
    '|---|---|---|---|',
    ...p.families.map((f) => `| ${f.family} | ${f.ms.toFixed(2)} | ${pct(f.ms)} | ${f.calls.toFixed(0)} |`),
    '',
    '| kernel | GPU ms per step | share | dispatches per step |',
    '|---|---|---|---|',
    ...p.kernels.slice(0, top).map((k) => `| ${k.label} | ${k.ms.toFixed(2)} | ${pct(k.ms)} | ${k.calls.toFixed(0)} |`),
  ];
  return `${lines.join('\n')}\n`;
}
