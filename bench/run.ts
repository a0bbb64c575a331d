// `npm run bench -- [--out FILE] [--filter REGEX] [--quick] [--large] [--repeats N]`: our kernels next to TensorFlow.js's
// WebGPU backend on the same adapter, in one process. Prints a markdown table; --out writes the JSON array. --large
// adds 2048³ and 4096³ matmuls (a discrete GPU's ceiling). WGSEG_TUNING changes our kernel shapes (src/engine/tuning.ts).
import { writeFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { createNodeEngine } from '../src/node.ts';
import { formatTable, gpuTime, timeRunner, type BenchCase, type BenchResult } from './harness.ts';
import { coreCases, largeCases } from './cases-core.ts';
import { convFamilyCases } from './cases-conv.ts';
import { loadPeer } from './peer.ts';

const { values: args } = parseArgs({
  options: {
    out: { type: 'string' },
    filter: { type: 'string' },
    quick: { type: 'boolean', default: false },
    large: { type: 'boolean', default: false },
    repeats: { type: 'string', default: '5' },
    'no-peer': { type: 'boolean', default: false },
  },
});

const caseModules: ((quick: boolean) => BenchCase[])[] = [coreCases, convFamilyCases];

const engine = await createNodeEngine();
const tf = args['no-peer'] ? null : await loadPeer(engine.gpu!);
const timing = { repeats: Number(args.repeats), minRepeatMs: args.quick ? 20 : 100, warmup: 2 };
const pattern = args.filter ? new RegExp(args.filter, 'i') : null;
const cases = [...caseModules.flatMap((m) => m(args.quick)), ...(args.large ? largeCases() : [])].filter((c) => !pattern || pattern.test(c.name));

console.log(`adapter: ${engine.adapterName}; ${new Date().toISOString().slice(0, 10)}; repeats ${timing.repeats}${args.quick ? ' (quick)' : ''}; tuning ${JSON.stringify(engine.tuning)}`);
const results: BenchResult[] = [];
for (const c of cases) {
  const ours = c.ours(engine);
  const t = await timeRunner(ours, timing);
  const gpu = await gpuTime(engine, ours, timing.repeats);
  ours.dispose();
  let peer: { cold: number; steady: number } | null = null;
  if (c.peer && tf) {
    const p = c.peer(tf);
    peer = await timeRunner(p, timing);
    p.dispose();
  }
  const r: BenchResult = {
    name: c.name, op: c.op, shape: c.shape, flops: c.flops,
    ours_ms: t.steady, peer_ms: peer?.steady ?? null, ours_cold_ms: t.cold, peer_cold_ms: peer?.cold ?? null, ours_gpu_ms: gpu,
    ours_gflops: c.flops / t.steady / 1e6, peer_gflops: peer ? c.flops / peer.steady / 1e6 : null,
    ...(c.peerNote ? { peer_note: c.peerNote } : {}),
  };
  results.push(r);
  console.log(`${c.name}: ours ${r.ours_ms.toFixed(3)} ms (gpu ${gpu?.toFixed(3) ?? '—'}), tfjs ${r.peer_ms?.toFixed(3) ?? '—'} ms`);
}
// The adapter's practical ceiling: our best matmul in this run; every other case is reported as a fraction of it.
const ceiling = Math.max(0, ...results.filter((r) => r.op === 'matmul').map((r) => r.ours_gflops));
if (ceiling > 0) for (const r of results) r.fraction_of_ceiling = r.ours_gflops / ceiling;
console.log(`\n${formatTable(results)}`);
if (ceiling > 0) console.log(`ceiling: best matmul in this run, ${ceiling.toFixed(2)} GFLOP/s`);
for (const r of results) if (r.peer_note) console.log(`- ${r.name}: ${r.peer_note}`);
if (args.out) {
  writeFileSync(args.out, `${JSON.stringify(results.map((r) => ({ ...r, adapter: engine.adapterName, tuning: engine.tuning })), null, 2)}\n`);
  console.log(`wrote ${args.out}`);
}
engine.destroy();
process.exit(0);
