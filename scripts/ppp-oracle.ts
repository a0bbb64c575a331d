// `npx tsx scripts/ppp-oracle.ts [--stride S] [--threshold TH] [--partition components|mutex] [--limit N]`: PatchPerPix's
// assembly (src/models/ppp-assembly.ts) on the oracle's evidence (patches computed from the ground truth) of the 50
// BBBC010 training images (Ljosa et al., Nature Methods 2012) with 41×41 patches: the best AP_dsb a model with these
// patches and this assembly config can reach. Prints AP_dsb at IoU 0.5 … 0.9 averaged over the images, and the
// assembly time per image. Reads WGSEG_SHARED's (default ../shared) data/bbbc010/train/instances/NAME_K.png.
import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { createNodeEngine, readInstanceMasks } from '../src/node.ts';
import { assemblePatches, defaultSampleStride, type AssemblyConfig } from '../src/models/ppp-assembly.ts';
import { oracleEvidence } from '../src/models/ppp-oracle.ts';
import { labelsOf } from '../src/train/layers.ts';
import { aggregateMetrics, evaluateImage, type ImageMetrics } from '../src/train/metrics.ts';

const { values: args } = parseArgs({
  options: {
    stride: { type: 'string' },
    threshold: { type: 'string', default: '0.9' },
    partition: { type: 'string', default: 'components' },
    limit: { type: 'string' },
  },
});

const shared = process.env.WGSEG_SHARED ?? join(import.meta.dirname, '..', '..', 'shared');
const dir = join(shared, 'data', 'bbbc010', 'train', 'instances');
if (!existsSync(dir)) {
  console.error(`ppp-oracle: no BBBC010 instance masks at ${dir} (set WGSEG_SHARED to the shared folder)`);
  process.exit(1);
}
const files = readdirSync(dir).filter((f) => f.endsWith('.png')).sort();
const names = [...new Set(files.map((f) => f.split('_')[0]))].slice(0, args.limit ? Number(args.limit) : undefined);
const patchSize = [41, 41];
const config: AssemblyConfig = {
  patchSize,
  sampleStride: args.stride ? [Number(args.stride), Number(args.stride)] : defaultSampleStride(patchSize),
  threshold: Number(args.threshold),
  partition: args.partition as AssemblyConfig['partition'],
  affinityThreshold: 0,
  minSize: 0,
};

const e = await createNodeEngine();
console.log(`adapter: ${e.adapterName}; ${names.length} images; ${JSON.stringify(config)}`);
const images: ImageMetrics[] = [];
const times: number[] = [];
for (const name of names) {
  const gt = await readInstanceMasks(files.filter((f) => f.startsWith(`${name}_`)).map((f) => join(dir, f)), name);
  const labels = labelsOf(gt);
  const evidence = oracleEvidence(e, labels, gt.shape, config);
  await e.sync();
  const t0 = performance.now();
  const pred = await assemblePatches(evidence, config);
  times.push(performance.now() - t0);
  evidence.dispose();
  const m = evaluateImage(labels, pred);
  images.push(m);
  console.log(`${name}: ${m.nTrue} worms, ${m.nPred} found, AP_dsb@0.5 ${m.apDsb[0].toFixed(3)}, @0.9 ${m.apDsb[8].toFixed(3)}, ${times.at(-1)!.toFixed(0)} ms`);
}
const result = aggregateMetrics(images);
const at = (t: number) => result.perImage.apDsb[result.thresholds.indexOf(t)].toFixed(3);
const sorted = [...times].sort((a, b) => a - b);
console.log(`\nAP_dsb (mean over ${images.length} images): ${[0.5, 0.6, 0.7, 0.8, 0.9].map((t) => `@${t} ${at(t)}`).join(', ')}`);
console.log(`assembly per image: median ${sorted[sorted.length >> 1].toFixed(0)} ms, max ${sorted.at(-1)!.toFixed(0)} ms (first ${times[0].toFixed(0)} ms, pipelines compiled)`);
e.destroy();
process.exit(0);
