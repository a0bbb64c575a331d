// CenterUNet (src/models/centerunet.ts) beyond the model contract: decoding on hand-made heatmaps (NMS, threshold,
// top-K, offsets and sizes in pixels), the segmentation's space-to-depth round trip, and the oracle — the decoder and
// watershed fed the ground-truth targets of synthetic blobs give back the ground-truth instances.
import { describe, expect, it } from 'vitest';
import { CenterUNet, centerunetConfig, centerunetSpec } from '../src/models/centerunet.ts';
import { evaluateImage } from '../src/train/metrics.ts';
import { centerNetTargets } from '../src/train/rotated-box.ts';
import { syntheticBlobs } from '../src/train/synthetic.ts';
import { testEngine } from './support/engine.ts';

const logit = (p: number) => Math.log(p / (1 - p));

/**
 * Outputs [1, 22, h, w] as infer() lays them out, from a heatmap of probabilities and regression maps [5, h, w] on the
 * grid, and full-resolution segmentation logits [4h, 4w] (space-to-depth into channels 6..21).
 */
function outputs(h: number, w: number, heat: Float32Array, regression: Float32Array, seg: Float32Array): Float32Array {
  const cells = h * w;
  const out = new Float32Array(22 * cells);
  heat.forEach((p, i) => (out[i] = logit(Math.min(Math.max(p, 1e-6), 1 - 1e-6))));
  out.set(regression, cells);
  for (let y = 0; y < 4 * h; y++) {
    for (let x = 0; x < 4 * w; x++) out[(6 + 4 * (y % 4) + (x % 4)) * cells + Math.floor(y / 4) * w + Math.floor(x / 4)] = seg[y * 4 * w + x];
  }
  return out;
}

describe('CenterUNet decoding', () => {
  it('hand-made heatmap: 3x3 NMS, score threshold, top-K by score, offsets and sizes in pixels, boxes in canonical form', async () => {
    const e = await testEngine();
    const model = new CenterUNet(e, centerunetSpec.tiny(centerunetSpec.presets.small));
    const [h, w] = [6, 8];
    const heat = new Float32Array(h * w).fill(0.05);
    heat[1 * w + 1] = 0.9;
    heat[1 * w + 2] = 0.8; // a neighbour of a higher peak: suppressed
    heat[4 * w + 6] = 0.6;
    heat[4 * w + 2] = 0.2; // below the threshold (0.3)
    heat[0 * w + 6] = 0.7;
    const regression = new Float32Array(5 * h * w);
    const setAt = (cell: number, values: number[]) => values.forEach((v, c) => (regression[c * h * w + cell] = v));
    setAt(1 * w + 1, [5, 2, 0.25, 0.5, 0.3]);
    setAt(4 * w + 6, [3, 3, 0, 0.75, 2]);
    setAt(0 * w + 6, [1, -4, 0.5, 0.5, 1]); // sides in the wrong order, one negative: the same rectangle, long side first
    const seg = new Float32Array(16 * h * w).fill(-5);
    const t = e.tensor(outputs(h, w, heat, regression, seg), [1, 22, h, w]);
    const { boxes, probability, height, width } = await model.decode(t, {}, [22, 30]);
    expect([height, width]).toEqual([22, 30]);
    expect(probability).toHaveLength(22 * 30);
    expect(boxes.map((b) => b.score)).toEqual([expect.closeTo(0.9, 5), expect.closeTo(0.7, 5), expect.closeTo(0.6, 5)]);
    expect(boxes[0]).toMatchObject({ cx: 5, cy: 6, width: 20, height: 8 });
    expect(boxes[0].angle).toBeCloseTo(0.3, 6);
    expect(boxes[1]).toMatchObject({ cx: 26, cy: 2, width: 16, height: 4 });
    expect(boxes[1].angle).toBeCloseTo(1 + Math.PI / 2, 6);
    expect(boxes[2]).toMatchObject({ cx: 24, cy: 19, width: 12, height: 12 });
    const top2 = await model.decode(t, { maxObjects: 2 });
    expect(top2.boxes).toHaveLength(2);
    const strict = await model.decode(t, { scoreThreshold: 0.65 });
    expect(strict.boxes).toHaveLength(2);
    t.dispose();
    model.dispose();
  });

  it('segmentation logits come back at full resolution, pixel for pixel', async () => {
    const e = await testEngine();
    const model = new CenterUNet(e, centerunetSpec.tiny(centerunetSpec.presets.small));
    const [h, w] = [3, 5];
    const seg = Float32Array.from({ length: 16 * h * w }, (_, i) => ((i * 37) % 23) / 4 - 3);
    const t = e.tensor(outputs(h, w, new Float32Array(h * w), new Float32Array(5 * h * w), seg), [1, 22, h, w]);
    const { probability } = await model.decode(t);
    probability.forEach((p, i) => expect(p).toBeCloseTo(1 / (1 + Math.exp(-seg[i])), 6));
    t.dispose();
    model.dispose();
  });
});

describe('CenterUNet decoder skips', () => {
  it("neckSkips: the two added layers concatenate the stride-4 and stride-2 levels; 'all' also the stride-16 and stride-8 ones", async () => {
    const e = await testEngine();
    // ResNet18 at width 4: the encoder's levels (strides 2, 4, 8, 16, 32) have 4, 4, 8, 16 and 32 channels.
    const levels = [4, 4, 8, 16, 32];
    for (const [neckSkips, skips] of [['segmentation', [null, null, null, 1, 0]], ['all', [null, 3, 2, 1, 0]]] as const) {
      const config = { ...centerunetSpec.tiny(centerunetSpec.presets.small), neckSkips };
      const model = new CenterUNet(e, config);
      const tensors = model.namedTensors();
      const neck = centerunetConfig(config).neckChannels;
      for (let l = 0; l < 5; l++) {
        const want = (l === 0 ? levels[4] : neck[l - 1]) + (skips[l] === null ? 0 : levels[skips[l]!]);
        expect(tensors.get(`neck.${l}.dcn.weight`)!.tensor.shape, `${neckSkips}, layer ${l}`).toEqual([neck[l], want, 3, 3]);
        expect(tensors.get(`neck.${l}.offset.weight`)!.tensor.shape).toEqual([27, want, 3, 3]);
      }
      model.dispose();
    }
    expect(() => centerunetConfig({ neckSkips: 'some' })).toThrow('centerunet: neckSkips must be "segmentation" or "all", got "some"');
  });
});

describe('CenterUNet oracle', () => {
  it('decoder + watershed on ground-truth targets give back the instances of synthetic blobs (mean AP_dsb@0.5 ≥ 0.98)', async () => {
    const e = await testEngine();
    const model = new CenterUNet(e, centerunetSpec.tiny(centerunetSpec.presets.small));
    const [H, W] = [256, 256];
    const scores: number[] = [];
    for (let seed = 0; seed < 8; seed++) {
      const blobs = syntheticBlobs({ height: H, width: W, blobs: 40, radius: [6, 14], seed: 100 + seed });
      const t = centerNetTargets(blobs.labels, H, W, 4);
      const seg = Float32Array.from(blobs.labels, (l) => (l > 0 ? 20 : -20));
      const out = e.tensor(outputs(H / 4, W / 4, t.heatmap, t.regression, seg), [1, 22, H / 4, W / 4]);
      const labels = await model.postprocess(out, [1, 1], {}, [H, W]);
      out.dispose();
      const m = evaluateImage(blobs.labels, labels, { thresholds: [0.5] });
      scores.push(m.apDsb[0]);
    }
    // The ground-truth segmentation is flat (no dip where blobs touch), so the flood splits touching blobs at equal
    // geodesic distance from their centres, and a small blob beside a large one can fall below IoU 0.5: the mean
    // over images (AP_dsb's aggregation) must reach 0.98, every image 0.9.
    const mean = scores.reduce((a, b) => a + b, 0) / scores.length;
    expect(mean, `AP_dsb@0.5 per image: ${scores.join(', ')}`).toBeGreaterThanOrEqual(0.98);
    expect(Math.min(...scores), `AP_dsb@0.5 per image: ${scores.join(', ')}`).toBeGreaterThanOrEqual(0.9);
    model.dispose();
  });
});
