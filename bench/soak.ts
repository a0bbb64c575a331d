// `npx tsx bench/soak.ts [--steps N] [--model rdcnet|tiny] [--out FILE]`: a long training run through trainRun (with
// validation and checkpoints in a run folder), sampling the engine's stats and the process's open file descriptors
// every 100 steps, after that step's validation and checkpoint (so the first sample has compiled every pipeline). Prints a table and a verdict: flat from step 100 to the end (live tensors, pipelines and file
// descriptors exactly; live bytes exactly; allocated and pooled bytes no higher after the first half than in it, since
// the pool keeps buffers by size class); --out writes the curve as JSON. Not part of the test suite.
import { mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { syntheticBlobs, type Sample } from '../src/index.ts';
import type { ModelRegistry } from '../src/models/model.ts';
import { registry } from '../src/models/registry.ts';
import { createNodeEngine, RunFolder } from '../src/node.ts';
import { buildModel, newRunConfig, trainRun } from '../src/train/run.ts';
import { tinyFactory } from '../test/support/fake-model.ts';

const { values: args } = parseArgs({
  options: { steps: { type: 'string', default: '10000' }, model: { type: 'string', default: 'rdcnet' }, out: { type: 'string' } },
});
const steps = Number(args.steps);
const EVERY = 100;
if (!Number.isInteger(steps) || steps < 2 * EVERY) throw new Error(`--steps must be an integer of at least ${2 * EVERY}, got ${args.steps}`);

const models: Record<string, { registry: ModelRegistry; preset: string }> = {
  rdcnet: { registry, preset: 'small' },
  tiny: { registry: { factories: { tiny: tinyFactory }, presets: { tiny: { default: { channels: 1, seed: 1, dropout: 0.1 } } } }, preset: 'default' },
};
const chosen = models[args.model!];
if (!chosen) throw new Error(`--model must be one of ${Object.keys(models).join(', ')}, got ${args.model}`);

/** 32×32 blob images with their labels. */
const samples = (n: number, seed: number): Sample[] =>
  Array.from({ length: n }, (_, i) => {
    const s = syntheticBlobs({ height: 32, width: 32, blobs: 4, radius: [3, 6], seed: seed + i });
    return {
      name: `blobs${seed + i}`,
      image: { data: Float32Array.from(s.image, (v) => 255 * v), shape: [1, 32, 32], spacing: [1, 1] },
      labels: { data: s.labels, shape: [32, 32], spacing: [1, 1] },
    };
  });

interface Sample100 {
  step: number;
  seconds: number;
  liveTensors: number;
  liveBytes: number;
  allocatedBytes: number;
  pooledBytes: number;
  buffers: number;
  pipelines: number;
  fds: number;
}

const e = await createNodeEngine();
const dir = mkdtempSync(join(tmpdir(), 'wgseg-soak-'));
const curve: Sample100[] = [];
const started = performance.now();
try {
  const run = newRunConfig(chosen.registry, {
    model: { kind: args.model!, preset: chosen.preset },
    file: { train: { logEvery: EVERY, saveEvery: EVERY, validateEvery: EVERY, lr: 1e-3 }, data: { patchSize: [16, 16] } },
    train: { steps, batchSize: 2, seed: 1 },
    data: { dir: 'synthetic blobs' },
  });
  const model = buildModel(e, chosen.registry, run.model.kind, run.model.config);
  console.log(`adapter: ${e.adapterName}; ${args.model} (${chosen.preset}), ${steps} steps, run folder ${dir}`);
  console.log('  step  seconds  tensors  live MB  alloc MB  pooled MB  buffers  pipelines  fds');
  await trainRun(e, model, run, new RunFolder(dir), { train: samples(4, 1), val: samples(1, 100) }, {
    tune: false,
    progress: (ev) => {
      if (ev.type !== 'checkpoint' || ev.which !== 'last' || ev.step % EVERY !== 0) return;
      const s = e.stats();
      const row: Sample100 = {
        step: ev.step, seconds: (performance.now() - started) / 1000, liveTensors: s.liveTensors, liveBytes: s.liveBytes,
        allocatedBytes: s.allocatedBytes, pooledBytes: s.pooledBytes, buffers: s.buffers, pipelines: s.pipelines, fds: readdirSync('/proc/self/fd').length,
      };
      curve.push(row);
      const mb = (b: number) => (b / 2 ** 20).toFixed(3).padStart(8);
      console.log(
        `${String(row.step).padStart(6)} ${row.seconds.toFixed(0).padStart(8)} ${String(row.liveTensors).padStart(8)} ${mb(row.liveBytes)} ${mb(row.allocatedBytes).padStart(9)} ` +
          `${mb(row.pooledBytes).padStart(10)} ${String(row.buffers).padStart(8)} ${String(row.pipelines).padStart(10)} ${String(row.fds).padStart(4)}`,
      );
    },
  });
  model.dispose();
} finally {
  rmSync(dir, { recursive: true, force: true });
}

const [first] = curve;
const half = curve.slice(0, Math.ceil(curve.length / 2));
const rest = curve.slice(half.length);
const max = (rows: Sample100[], key: keyof Sample100) => Math.max(...rows.map((r) => r[key]));
const growth: string[] = [];
for (const key of ['liveTensors', 'liveBytes', 'pipelines', 'fds'] as const) {
  const changed = curve.find((r) => r[key] !== first[key]);
  if (changed) growth.push(`${key} ${first[key]} at step ${first.step}, ${changed[key]} at step ${changed.step}`);
}
for (const key of ['allocatedBytes', 'pooledBytes', 'buffers'] as const) {
  if (max(rest, key) > max(half, key)) growth.push(`${key} up to ${max(half, key)} by step ${half.at(-1)!.step}, ${max(rest, key)} after`);
}
const seconds = (performance.now() - started) / 1000;
console.log(
  growth.length === 0
    ? `verdict: flat from step ${first.step} to ${curve.at(-1)!.step} (${(steps / seconds).toFixed(1)} steps/s over ${seconds.toFixed(0)} s)`
    : `verdict: NOT flat: ${growth.join('; ')}`,
);
if (args.out) writeFileSync(args.out, `${JSON.stringify({ date: new Date().toISOString(), adapter: e.adapterName, model: args.model, steps, seconds, flat: growth.length === 0, growth, curve }, null, 2)}\n`);
e.destroy();
