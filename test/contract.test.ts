// The model contract (src/models/model.ts), checked the same way for every registered model and preset, 2D and 3D,
// at the spec's tiny size: loss terms finite and falling on a toy batch, infer's shape and output stride, tiled
// prediction equal to one untiled pass, a checkpoint round trip, postprocess's result, and memory back where it
// started. A new model is covered by adding its spec to the registry.
import { describe, expect, it } from 'vitest';
import type { Engine, Tensor } from '../src/index.ts';
import { Adam } from '../src/kernels/optim.ts';
import type { InstanceModel, ModelSpec } from '../src/models/model.ts';
import { modelSpecs } from '../src/models/registry.ts';
import { decodeModel, encodeSafetensors, modelMetadata, modelTensors, readTensors } from '../src/train/checkpoint.ts';
import { asLayers, layerSize } from '../src/train/layers.ts';
import { postprocessOutputs, predictOutputs } from '../src/train/predict.ts';
import { defaultTrainOptions, sumTerms } from '../src/train/trainer.ts';
import { rng } from './support/check.ts';
import { testEngine } from './support/engine.ts';

const roundUp = (v: number, m: number) => Math.ceil(v / m) * m;
const size = (shape: readonly number[]) => shape.reduce((a, b) => a * b, 1);

/** A toy crop [spatial]: boxes of instances 1..3 on a dim background, the image their mask plus a little noise. */
function toyCrop(spatial: number[], seed: number): { image: Float32Array; labels: Int32Array } {
  const rand = rng(seed);
  const labels = new Int32Array(size(spatial));
  const boxes = [1, 2, 3].map(() => spatial.map((s) => {
    const extent = Math.max(2, Math.floor(s / 3));
    const start = Math.floor(rand() * (s - extent));
    return [start, start + extent];
  }));
  const coord = new Array<number>(spatial.length).fill(0);
  for (let i = 0; i < labels.length; i++) {
    boxes.forEach((box, k) => {
      if (box.every(([lo, hi], a) => coord[a] >= lo && coord[a] < hi)) labels[i] = k + 1;
    });
    for (let a = spatial.length - 1; a >= 0 && ++coord[a] === spatial[a]; a--) coord[a] = 0;
  }
  const image = Float32Array.from(labels, (l) => (l > 0 ? 0.8 : 0.1) + 0.05 * rand());
  return { image, labels };
}

/** Every (spec, preset) pair of the registry, with the preset's tiny config. */
const cases: [ModelSpec, string, Record<string, unknown>][] = modelSpecs.flatMap((spec) =>
  Object.entries(spec.presets).map(([preset, config]) => [spec, preset, spec.tiny(config)] as [ModelSpec, string, Record<string, unknown>]));

describe('model contract', () => {
  it('every registered model has presets for 2D (and for 3D unless it is a 2D model, as CenterUNet), each a tiny config its factory accepts', () => {
    expect(modelSpecs.length).toBeGreaterThanOrEqual(2);
    for (const spec of modelSpecs) {
      expect(spec.presetsByNdim[2].length, `${spec.kind} 2D presets`).toBeGreaterThan(0);
      for (const ndim of [2, 3] as const) {
        for (const p of spec.presetsByNdim[ndim]) expect(spec.presets[p], `${spec.kind} preset ${p}`).toBeDefined();
      }
    }
    expect(modelSpecs.filter((s) => s.presetsByNdim[3].length > 0).length, 'models with 3D presets').toBeGreaterThanOrEqual(2);
    expect(new Set(modelSpecs.map((s) => s.kind)).size).toBe(modelSpecs.length);
  });

  for (const [spec, preset, config] of cases) {
    it(`${spec.kind} ${preset} (tiny)`, async () => {
      const e = await testEngine();
      const before = e.stats().liveTensors;
      const model = spec.factory(e, config);
      try {
        expect(model.kind).toBe(spec.kind);
        await checkLoss(e, spec, model);
        await checkInferAndTiles(e, model);
        await checkCheckpoint(e, spec, config, model);
      } finally {
        model.dispose();
      }
      expect(e.stats().liveTensors).toBe(before);
    });
  }
});

/** A toy batch of 2 crops, about 32 pixels per axis (8 in z) in the model's size multiples. */
function toyBatch(e: Engine, model: InstanceModel) {
  const spatial = (model.ndim === 2 ? [32, 32] : [8, 32, 32]).map((s, k) => roundUp(s, model.sizeMultiple[k]));
  const crops = [toyCrop(spatial, 1), toyCrop(spatial, 2)];
  const images = new Float32Array(2 * model.inChannels * size(spatial));
  crops.forEach((c, n) => {
    for (let ch = 0; ch < model.inChannels; ch++) images.set(c.image, (n * model.inChannels + ch) * size(spatial));
  });
  const labels = new Int32Array(2 * size(spatial));
  crops.forEach((c, n) => labels.set(c.labels, n * size(spatial)));
  return {
    images: e.keep(e.tensor(images, [2, model.inChannels, ...spatial])),
    labels: e.keep(e.tensor(labels, [2, 1, ...spatial], 'i32')),
    spacing: spatial.map(() => 1),
  };
}

/**
 * Ten Adam steps on one toy batch at the learning rate of the model's recipe: every term finite every step, and the
 * total lower at the end than at the start.
 */
async function checkLoss(e: Engine, spec: ModelSpec, model: InstanceModel): Promise<void> {
  const batch = toyBatch(e, model);
  const params = [...model.namedTensors().values()].filter((t) => t.trainable).map((t) => t.tensor);
  const adam = new Adam(params, { lr: spec.recipe.train?.lr ?? defaultTrainOptions.lr });
  const totals: number[] = [];
  try {
    for (let step = 0; step < 10; step++) {
      const scope = e.beginScope();
      try {
        const { total, named } = sumTerms(await model.loss(batch, step), model.kind);
        total.backward();
        adam.step();
        adam.zeroGrad();
        totals.push(await total.item());
        for (const [name, t] of named ?? []) expect(Number.isFinite(await t.item()), `${model.kind} loss term ${name}`).toBe(true);
      } finally {
        scope.end();
      }
    }
  } finally {
    adam.dispose();
    batch.images.dispose();
    batch.labels.dispose();
  }
  expect(totals.every(Number.isFinite), `${model.kind} losses ${totals}`).toBe(true);
  expect(Math.min(...totals.slice(-3)), `${model.kind} losses ${totals}`).toBeLessThan(totals[0]);
}

/**
 * infer's shape (the output stride applied), and whole-image prediction: an image cut into 3 tiles along its last axis
 * (not a multiple of the tile) stitched equals one untiled pass exactly (the tiny config's receptive field fits in
 * tileMargin), and postprocess gives labels of the image's size. Only the last axis is tiled, to keep 3D volumes small.
 */
async function checkInferAndTiles(e: Engine, model: InstanceModel): Promise<void> {
  const stride = model.outputStride ?? model.sizeMultiple.map(() => 1);
  const small = model.sizeMultiple.map((m) => roundUp(16, m));
  const inferred = e.tidy(() => model.infer(e.zeros([1, model.inChannels, ...small])));
  expect(inferred.shape.slice(2)).toEqual(small.map((t, k) => t / stride[k]));
  const channels = inferred.shape[1];
  inferred.dispose();

  const last = model.ndim - 1;
  const multiple = model.sizeMultiple[last];
  const tile = (Math.ceil((2 * (model.tileMargin[last] + stride[last])) / multiple) + 1) * multiple;
  const shape = small.map((s, k) => (k === last ? 2 * tile + 3 : s));
  const { image: plane } = toyCrop(shape, 3);
  const data = new Float32Array(model.inChannels * plane.length);
  for (let ch = 0; ch < model.inChannels; ch++) data.set(plane, ch * plane.length);
  const image = { data, shape: [model.inChannels, ...shape], spacing: shape.map(() => 1) };
  const whole = await predictOutputs(e, model, image, { tileSize: shape.map((s) => s + 64) });
  const tiled = await predictOutputs(e, model, image, { tileSize: shape.map((s, k) => (k === last ? tile : s + 64)) });
  try {
    expect(tiled.shape).toEqual([1, model.reduceTile ? tiled.shape[1] : channels, ...shape.map((s, k) => Math.ceil(s / stride[k]))]);
    const [a, b] = [await whole.data(), await tiled.data()];
    expect(a.every(Number.isFinite)).toBe(true);
    let worst = 0;
    for (let i = 0; i < a.length; i++) worst = Math.max(worst, Math.abs(a[i] - b[i]));
    expect(worst, `${model.kind}: largest difference between tiled and untiled outputs`).toBe(0);
    const labels = asLayers(await postprocessOutputs(e, model, tiled, image));
    expect(labels.data).toBeInstanceOf(Int32Array);
    expect(layerSize(labels)).toBe(size(shape));
    expect(labels.data.every((v) => v >= 0)).toBe(true);
  } finally {
    whole.dispose();
    tiled.dispose();
  }
}

/** The weights saved and loaded into a fresh model from the same config give the same outputs. */
async function checkCheckpoint(e: Engine, spec: ModelSpec, config: Record<string, unknown>, model: InstanceModel): Promise<void> {
  const bytes = encodeSafetensors(await readTensors(modelTensors(model)), modelMetadata(model, { step: '10' }));
  const copy = spec.factory(e, { ...config, seed: 7 });
  try {
    decodeModel(copy, bytes, 'contract checkpoint');
    const spatial = model.sizeMultiple.map((m) => roundUp(16, m));
    const input = e.keep(e.tensor(toyCrop(spatial, 4).image, [1, 1, ...spatial]));
    const run = (m: InstanceModel) => e.tidy((): Tensor => m.infer(model.inChannels === 1 ? input : e.zeros([1, m.inChannels, ...spatial])));
    const [a, b] = [run(model), run(copy)];
    expect(Array.from(await b.data())).toEqual(Array.from(await a.data()));
    for (const t of [a, b, input]) t.dispose();
  } finally {
    copy.dispose();
  }
}
