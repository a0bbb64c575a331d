// A program that uses the installed wgseg package in plain JavaScript, as a user's would: on Node through 'wgseg/node'
// (Dawn), in Deno through 'wgseg' (its navigator.gpu). It trains a tiny RDCNet for a few steps on synthetic blobs,
// labels an image with the run's best checkpoint and frees everything, then prints one JSON line of what it did; with
// a folder argument it also writes the run's files there, for `wgseg predict`. test/package/run.ts runs it.
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';

const deno = 'Deno' in globalThis;
const wgseg = await import(deno ? 'wgseg' : 'wgseg/node');
const engine = deno ? await wgseg.createEngine() : await wgseg.createNodeEngine();
const [runDir] = deno ? globalThis.Deno.args : process.argv.slice(2);

/** 32x32 images of blobs with their labels, as a program holds them. */
function samples(n, seed) {
  return Array.from({ length: n }, (_, i) => {
    const s = wgseg.syntheticBlobs({ height: 32, width: 32, blobs: 3, radius: [3, 6], seed: seed + i });
    return {
      name: `blobs${seed + i}`,
      image: { data: Float32Array.from(s.image, (v) => 255 * v), shape: [1, 32, 32], spacing: [1, 1] },
      labels: { data: s.labels, shape: [32, 32], spacing: [1, 1] },
    };
  });
}

const data = { train: samples(2, 1), val: samples(1, 10) };
const rdcnet = wgseg.modelSpecs.find((spec) => spec.kind === 'rdcnet');
const run = wgseg.newRunConfig(wgseg.registry, {
  model: { kind: 'rdcnet', preset: 'small', config: rdcnet.tiny(wgseg.modelPresets.rdcnet.small) },
  file: { train: { logEvery: 1, validateEvery: 3 }, data: { patchSize: [32, 32] } },
  train: { steps: 3, batchSize: 2, seed: 1 },
  data: { dir: 'synthetic blobs' },
});
const store = new wgseg.MemoryStore('run');
const model = wgseg.buildModel(engine, wgseg.registry, 'rdcnet', run.model.config);
const { result } = await wgseg.trainRun(engine, model, run, store, data, { tune: false });
model.dispose();
const afterTraining = engine.stats().liveTensors;

const saved = await wgseg.readRun(store);
const trained = wgseg.loadModel(engine, wgseg.registry, saved.run, await store.read(saved.weights), saved.weights);
const [image] = wgseg.prepareSamples(data.val, saved.run);
const labels = await wgseg.predictImage(engine, trained, image.image);
trained.dispose();
const predictLeft = engine.stats().liveTensors - afterTraining;
const adapter = engine.adapterName;
engine.destroy();

if (runDir) for (const [file, bytes] of store.files) writeFileSync(join(runDir, file), bytes);
console.log(JSON.stringify({
  runtime: deno ? `deno ${globalThis.Deno.version.deno}` : `node ${process.version}`,
  adapter, reason: result.reason, steps: result.state.step, loss: result.state.loss, pixels: labels.length,
  trainRunLeft: afterTraining, predictLeft,
}));
