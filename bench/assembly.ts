// `npx tsx bench/assembly.ts [--out FILE] [--filter REGEX] [--repeats N] [--cpu-repeats N]`: PatchPerPix's instance
// assembly on the GPU (src/models/ppp-assembly.ts) next to the same steps in straightforward single-threaded
// TypeScript (bench/ppp-assembly-cpu.ts), on the oracle's evidence (src/models/ppp-oracle.ts) of synthetic images: a
// BBBC010-sized 2D image of crossing worms with 41×41 patches, and 64×128×128 volumes of nuclei with 9×9×9 and
// 15×15×15 patches, each at the default sample stride. Times the whole assemblePatches call (readbacks and the
// TypeScript steps included; uploading the evidence is not): cold (first call, pipelines compiled) and the median of
// the repeats; the GPU's kernel times from timestamp queries where the adapter has them. Prints a markdown table;
// --out writes the JSON array.
import { writeFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { createNodeEngine } from '../src/node.ts';
import { assemblePatches, defaultSampleStride, type AssemblyConfig } from '../src/models/ppp-assembly.ts';
import { oracleArrays, oracleEvidence } from '../src/models/ppp-oracle.ts';
import type { Labels } from '../src/train/layers.ts';
import { evaluateImage } from '../src/train/metrics.ts';
import { syntheticEllipsoids } from '../src/train/synthetic.ts';
import { syntheticWorms } from '../src/train/synthetic-worms.ts';
import { assemblePatchesCpu } from './ppp-assembly-cpu.ts';

const { values: args } = parseArgs({
  options: {
    out: { type: 'string' },
    filter: { type: 'string' },
    repeats: { type: 'string', default: '3' },
    'cpu-repeats': { type: 'string', default: '1' },
  },
});

interface AssemblyCase {
  name: string;
  size: number[];
  labels: () => Labels;
  patchSize: number[];
}

const cases: AssemblyCase[] = [
  {
    name: '2D worms, 41×41', size: [520, 696], patchSize: [41, 41],
    labels: () => syntheticWorms({ height: 520, width: 696, worms: 16, length: [120, 200], radius: [4, 6], seed: 1 }).labels,
  },
  ...[9, 15].map((p) => ({
    name: `3D nuclei, ${p}×${p}×${p}`, size: [64, 128, 128], patchSize: [p, p, p],
    labels: () => syntheticEllipsoids({ shape: [64, 128, 128], spacing: [1, 1, 1], blobs: 420, radius: [3, 7], seed: 1 }).labels,
  })),
];

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[xs.length >> 1];
const pattern = args.filter ? new RegExp(args.filter, 'i') : null;
const e = await createNodeEngine();
console.log(`adapter: ${e.adapterName}; ${new Date().toISOString().slice(0, 10)}; repeats ${args.repeats} (GPU), ${args['cpu-repeats']} (CPU)`);

const results = [];
for (const c of cases.filter((c) => !pattern || pattern.test(c.name))) {
  const labels = c.labels();
  const config: AssemblyConfig = {
    patchSize: c.patchSize, sampleStride: defaultSampleStride(c.patchSize), threshold: 0.9, partition: 'components', affinityThreshold: 0, minSize: 0,
  };
  const evidence = oracleEvidence(e, labels, c.size, config);
  await e.sync();
  const timeGpu = async () => {
    const t0 = performance.now();
    const pred = await assemblePatches(evidence, config);
    return { ms: performance.now() - t0, pred };
  };
  const cold = await timeGpu();
  const gpu: number[] = [];
  for (let i = 0; i < Number(args.repeats); i++) gpu.push((await timeGpu()).ms);
  const kernels: Record<string, number> = {};
  for (const t of await e.profile(async () => void (await assemblePatches(evidence, config)))) kernels[t.label] = (kernels[t.label] ?? 0) + t.ms;
  evidence.dispose();
  const arrays = oracleArrays(labels, c.size, config);
  const cpu: number[] = [];
  let cpuPred: Labels = new Int32Array(0);
  for (let i = 0; i < Number(args['cpu-repeats']); i++) {
    const t0 = performance.now();
    cpuPred = await assemblePatchesCpu(arrays, config);
    cpu.push(performance.now() - t0);
  }
  const gpuMetrics = evaluateImage(labels, cold.pred);
  const r = {
    case: c.name, size: c.size, patchSize: c.patchSize, sampleStride: config.sampleStride,
    instances: gpuMetrics.nTrue, found: gpuMetrics.nPred, apDsb50: gpuMetrics.apDsb[0], apDsb90: gpuMetrics.apDsb[8],
    cpuApDsb50: evaluateImage(labels, cpuPred).apDsb[0],
    gpu_ms: median(gpu), gpu_cold_ms: cold.ms, cpu_ms: median(cpu), speedup: median(cpu) / median(gpu), kernel_ms: kernels,
    adapter: e.adapterName,
  };
  results.push(r);
  console.log(`${c.name}: GPU ${r.gpu_ms.toFixed(0)} ms (cold ${r.gpu_cold_ms.toFixed(0)}; kernels ${Object.entries(kernels).map(([k, ms]) => `${k} ${ms.toFixed(0)}`).join(', ')}), CPU ${r.cpu_ms.toFixed(0)} ms`);
}

const rows = [
  ['case', 'size', 'stride', 'instances (found)', 'AP_dsb@0.5 / 0.9', 'GPU ms', 'GPU cold ms', 'CPU ms', 'speedup'],
  ...results.map((r) => [
    r.case, r.size.join('×'), r.sampleStride.join('×'), `${r.instances} (${r.found})`, `${r.apDsb50.toFixed(3)} / ${r.apDsb90.toFixed(3)}`,
    r.gpu_ms.toFixed(0), r.gpu_cold_ms.toFixed(0), r.cpu_ms.toFixed(0), `${r.speedup.toFixed(1)}x`,
  ]),
];
const widths = rows[0].map((_, k) => Math.max(...rows.map((row) => row[k].length)));
const line = (row: string[]) => `| ${row.map((cell, k) => cell.padEnd(widths[k])).join(' | ')} |`;
console.log(`\n${[line(rows[0]), `|${widths.map((w) => '-'.repeat(w + 2)).join('|')}|`, ...rows.slice(1).map(line)].join('\n')}`);
if (args.out) {
  writeFileSync(args.out, `${JSON.stringify(results, null, 2)}\n`);
  console.log(`wrote ${args.out}`);
}
e.destroy();
process.exit(0);
