// Instance-segmentation metrics on hand-made label images whose answers are worked out in the comments, the optimal
// assignment against brute force, and the timing on image sizes the models produce. Most cases are 1D strips: the
// metrics only look at which pixels share labels, so a strip is as good as an image and its arithmetic is readable.
import { describe, expect, it } from 'vitest';
import {
  DSB_THRESHOLDS,
  evaluate,
  evaluateImage,
  linearSumAssignment,
  matchInstances,
  overlaps,
} from '../src/train/metrics.ts';
import { seededRandom, syntheticBlobs } from '../src/train/synthetic.ts';

/** A strip of `length` pixels, `fill` everywhere, then `[start, end, id]` segments painted in order. */
function strip(length: number, segments: [number, number, number][], fill = 0): Int32Array {
  const labels = new Int32Array(length).fill(fill);
  for (const [start, end, id] of segments) labels.fill(id, start, end);
  return labels;
}

/** A height x width image, 0 everywhere, then `[y0, y1, x0, x1, id]` rectangles painted in order. */
function image(height: number, width: number, rects: [number, number, number, number, number][]): Int32Array {
  const labels = new Int32Array(height * width);
  for (const [y0, y1, x0, x1, id] of rects) {
    for (let y = y0; y < y1; y++) labels.fill(id, y * width + x0, y * width + x1);
  }
  return labels;
}

const nine = (value: number) => Array<number>(9).fill(value);

describe('evaluateImage', () => {
  it('identical images with non-contiguous ids score 1 everywhere', () => {
    const labels = image(8, 8, [
      [0, 3, 0, 3, 7],
      [4, 8, 1, 5, 1000],
      [0, 2, 5, 8, 3],
    ]);
    const m = evaluateImage(labels, labels);
    expect(m.nTrue).toBe(3);
    expect(m.nPred).toBe(3);
    expect(m.tp).toEqual(nine(3));
    expect(m.fp).toEqual(nine(0));
    expect(m.fn).toEqual(nine(0));
    for (const scores of [m.precision, m.recall, m.f1, m.apDsb, m.meanMatchedIoU]) expect(scores).toEqual(nine(1));
    expect([m.meanApDsb, m.sbd, m.aji]).toEqual([1, 1, 1]);
  });

  it('ids are matched by overlap, not by value', () => {
    const gt = strip(10, [
      [0, 4, 1],
      [5, 9, 2],
    ]);
    const pred = strip(10, [
      [0, 4, 2],
      [5, 9, 1],
    ]);
    const m = evaluateImage(gt, pred);
    expect(m.tp).toEqual(nine(2));
    expect([m.sbd, m.aji]).toEqual([1, 1]);
  });

  it('a split object: one true instance of 16 pixels, two predicted halves of 8', () => {
    // IoU of each half = 8/16 = 0.5, so at τ = 0.5 one half matches (IoU ≥ τ; the two tie, either is right) and the
    // other is a false positive; above 0.5 nothing matches: 0 TP, 2 FP, 1 FN.
    const gt = image(4, 4, [[0, 4, 0, 4, 1]]);
    const pred = image(4, 4, [
      [0, 4, 0, 2, 1],
      [0, 4, 2, 4, 2],
    ]);
    const m = evaluateImage(gt, pred);
    expect([m.tp[0], m.fp[0], m.fn[0]]).toEqual([1, 1, 0]);
    expect([m.precision[0], m.recall[0], m.f1[0], m.apDsb[0], m.meanMatchedIoU[0]]).toEqual([0.5, 1, 2 / 3, 0.5, 0.5]);
    expect([m.tp[1], m.fp[1], m.fn[1]]).toEqual([0, 2, 1]);
    expect(m.apDsb.slice(1)).toEqual(nine(0).slice(1));
    expect(m.meanApDsb).toBeCloseTo(0.5 / 9, 15);
    // Dice of each half with the whole = 2·8/(8 + 16) = 2/3, on both sides: SBD = 2/3.
    expect(m.sbd).toBeCloseTo(2 / 3, 15);
    // AJI: the true instance takes half 1 (tie, lower id): C = 8, U = 16; half 2 is never taken: U += 8. 8/24.
    expect(m.aji).toBeCloseTo(1 / 3, 15);
  });

  it('a merge: two true instances of 8 pixels, one prediction covering both', () => {
    const gt = image(4, 4, [
      [0, 4, 0, 2, 1],
      [0, 4, 2, 4, 2],
    ]);
    const pred = image(4, 4, [[0, 4, 0, 4, 5]]);
    const m = evaluateImage(gt, pred);
    expect([m.tp[0], m.fp[0], m.fn[0]]).toEqual([1, 0, 1]);
    expect([m.precision[0], m.recall[0], m.f1[0], m.apDsb[0]]).toEqual([1, 0.5, 2 / 3, 0.5]);
    expect([m.tp[1], m.fp[1], m.fn[1]]).toEqual([0, 1, 2]);
    expect(m.sbd).toBeCloseTo(2 / 3, 15);
    // AJI: both true instances take the one prediction: C = 8 + 8, U = 16 + 16 (its area counted twice). 16/32.
    expect(m.aji).toBe(0.5);
  });

  it('a 4x4 square shifted by one column: IoU 12/20 = 0.6 matches at τ ≤ 0.6 (IoU ≥ τ), not above', () => {
    const gt = image(6, 6, [[1, 5, 1, 5, 1]]);
    const pred = image(6, 6, [[1, 5, 2, 6, 1]]);
    const m = evaluateImage(gt, pred);
    expect(m.tp).toEqual([1, 1, 1, 0, 0, 0, 0, 0, 0]);
    expect(m.fp).toEqual([0, 0, 0, 1, 1, 1, 1, 1, 1]);
    expect(m.fn).toEqual([0, 0, 0, 1, 1, 1, 1, 1, 1]);
    expect(m.apDsb).toEqual([1, 1, 1, 0, 0, 0, 0, 0, 0]);
    expect(m.meanApDsb).toBeCloseTo(3 / 9, 15);
    expect(m.meanMatchedIoU.slice(0, 3)).toEqual([0.6, 0.6, 0.6]);
    // Dice = 2·12/(16 + 16) = 0.75; AJI = 12/20.
    expect(m.sbd).toBe(0.75);
    expect(m.aji).toBe(0.6);
  });

  it("the thesis's pixel-wise and object-wise IoU and F1 on the shifted square", () => {
    // Foreground: 12 pixels in both, 4 only predicted, 4 only true: PW IoU 12/20, PW F1 24/32. The one pair's IoU 0.6
    // matches at 0.5, 0.55 and 0.6 of the ten COCO thresholds: OW IoU = OW F1 = 3/10.
    const m = evaluateImage(image(6, 6, [[1, 5, 1, 5, 1]]), image(6, 6, [[1, 5, 2, 6, 1]]));
    expect(m.pixels).toEqual({ tp: 12, fp: 4, fn: 4 });
    expect(m.objectWise.tp).toEqual([1, 1, 1, 0, 0, 0, 0, 0, 0, 0]);
    expect(m.objectWise.iou).toBeCloseTo(0.3, 15);
    expect(m.objectWise.f1).toBeCloseTo(0.3, 15);
    const r = evaluate([{ gt: image(6, 6, [[1, 5, 1, 5, 1]]), pred: image(6, 6, [[1, 5, 2, 6, 1]]) }]);
    expect(r.perImage.pwIoU).toBe(0.6);
    expect(r.perImage.pwF1).toBe(0.75);
    expect(r.dataset.pwIoU).toBe(0.6);
  });

  it('pixel-wise scores pool pixels over images in the dataset view and average per image in the other', () => {
    // Image 1: 2 of 2 foreground pixels found (IoU 1). Image 2: 1 true pixel, 3 predicted elsewhere (IoU 0).
    // Per image: PW IoU (1 + 0)/2; pooled: TP 2, FP 3, FN 1: 2/6, PW F1 4/8.
    const r = evaluate([
      { gt: strip(8, [[0, 2, 1]]), pred: strip(8, [[0, 2, 5]]) },
      { gt: strip(8, [[0, 1, 1]]), pred: strip(8, [[4, 7, 1]]) },
    ]);
    expect(r.perImage.pwIoU).toBe(0.5);
    expect(r.dataset.pwIoU).toBeCloseTo(2 / 6, 15);
    expect(r.dataset.pwF1).toBe(0.5);
    // Object-wise: image 1 matches at every threshold, image 2 at none (1 FN, 1 FP): per image (1 + 0)/2; pooled
    // TP 1, FP 1, FN 1 at every threshold: 1/3 and F1 2/4.
    expect(r.perImage.owIoU).toBe(0.5);
    expect(r.dataset.owIoU).toBeCloseTo(1 / 3, 15);
    expect(r.dataset.owF1).toBe(0.5);
  });

  it('IoU exactly at a threshold counts, just below does not', () => {
    // [0, 16) against [5, 20): intersection 11, union 20, IoU 0.55.
    const gt = strip(24, [[0, 16, 1]]);
    expect(evaluateImage(gt, strip(24, [[5, 20, 1]])).tp).toEqual([1, 1, 0, 0, 0, 0, 0, 0, 0]);
    // [0, 16) against [5, 21): intersection 11, union 21, IoU 0.5238.
    expect(evaluateImage(gt, strip(24, [[5, 21, 1]])).tp).toEqual([1, 0, 0, 0, 0, 0, 0, 0, 0]);
  });

  it('an empty prediction: nothing found, every ratio 0', () => {
    const gt = strip(10, [
      [0, 3, 1],
      [5, 9, 2],
    ]);
    const m = evaluateImage(gt, new Int32Array(10));
    expect([m.nTrue, m.nPred, m.tp[0], m.fp[0], m.fn[0]]).toEqual([2, 0, 0, 0, 2]);
    for (const scores of [m.precision, m.recall, m.f1, m.apDsb, m.meanMatchedIoU]) expect(scores).toEqual(nine(0));
    // AJI: C = 0, U = 3 + 4.
    expect([m.meanApDsb, m.sbd, m.aji]).toEqual([0, 0, 0]);
  });

  it('an empty ground truth: every prediction is a false positive, every ratio 0', () => {
    const m = evaluateImage(new Int32Array(10), strip(10, [[2, 6, 4]]));
    expect([m.nTrue, m.nPred, m.tp[0], m.fp[0], m.fn[0]]).toEqual([0, 1, 0, 1, 0]);
    for (const scores of [m.precision, m.recall, m.f1, m.apDsb, m.meanMatchedIoU]) expect(scores).toEqual(nine(0));
    expect([m.meanApDsb, m.sbd, m.aji]).toEqual([0, 0, 0]);
  });

  it('both images empty: nothing to find and nothing found scores 1', () => {
    const m = evaluateImage(new Int32Array(10), new Int32Array(10));
    expect([m.nTrue, m.nPred, m.tp[0], m.fp[0], m.fn[0]]).toEqual([0, 0, 0, 0, 0]);
    for (const scores of [m.precision, m.recall, m.f1, m.apDsb, m.meanMatchedIoU]) expect(scores).toEqual(nine(1));
    expect([m.meanApDsb, m.sbd, m.aji]).toEqual([1, 1, 1]);
  });

  it('unlabeled ground-truth pixels (-1) are dropped from both images', () => {
    // Labeled: true instance 1 on [0, 8); [8, 12) unlabeled. Prediction 3 covers [0, 12): only its 8 labeled pixels
    // count, IoU 1. Prediction 4 lies wholly in the unlabeled part and does not exist. Prediction 5 on [14, 16) is a
    // false positive on labeled background.
    const gt = strip(16, [
      [0, 8, 1],
      [8, 12, -1],
    ]);
    const pred = strip(16, [
      [0, 12, 3],
      [12, 13, 0],
      [13, 14, 4],
      [14, 16, 5],
    ]);
    gt[13] = -1;
    const ov = overlaps(gt, pred);
    expect([...ov.predIds]).toEqual([3, 5]);
    expect([...ov.predAreas]).toEqual([8, 2]);
    const m = evaluateImage(gt, pred);
    expect([m.nTrue, m.nPred, m.tp[8], m.fp[8], m.fn[8]]).toEqual([1, 2, 1, 1, 0]);
    expect(m.meanMatchedIoU[8]).toBe(1);
    // Without the -1 pixels prediction 3 would have IoU 8/12 and miss τ = 0.7; prediction 4 would be a second FP.
    expect(evaluateImage(strip(16, [[0, 8, 1]]), pred).tp[4]).toBe(0);
    expect(evaluateImage(strip(16, [[0, 8, 1]]), pred).nPred).toBe(3);
    // A ground truth that is all unlabeled holds no instance and no prediction.
    expect(evaluateImage(new Int32Array(16).fill(-1), pred).apDsb).toEqual(nine(1));
  });

  it('AJI and SBD on a small case by hand', () => {
    // True: A = [0, 10) id 1, B = [10, 14) id 2, C = [20, 26) id 3.
    // Predicted: P = [0, 12) id 5, Q = [12, 16) id 9, R = [20, 23) id 4, S = [40, 42) id 7.
    // Overlaps: A∩P = 10, B∩P = 2, B∩Q = 2, C∩R = 3; areas A 10, B 4, C 6, P 12, Q 4, R 3, S 2.
    // IoU: A-P 10/12, B-P 2/14, B-Q 2/6, C-R 3/6.   Dice: A-P 20/22, B-P 4/16, B-Q 4/8, C-R 6/9.
    // BestDice(gt, pred) = (10/11 + 1/2 + 2/3)/3 = 137/198; BestDice(pred, gt) = (10/11 + 1/2 + 2/3 + 0)/4 = 137/264.
    // SBD = min = 137/264.
    // AJI: A takes P (C 10, U 12), B takes Q (IoU 1/3 > 1/7: C 2, U 6), C takes R (C 3, U 6); S never taken (U 2).
    // C = 15, U = 26.
    // At τ = 0.5: A-P and C-R (IoU 0.5 ≥ τ) match: TP 2, FP 2 (Q, S), FN 1 (B); F1 = 4/7, AP = 2/5.
    const gt = strip(44, [
      [0, 10, 1],
      [10, 14, 2],
      [20, 26, 3],
    ]);
    const pred = strip(44, [
      [0, 12, 5],
      [12, 16, 9],
      [20, 23, 4],
      [40, 42, 7],
    ]);
    const m = evaluateImage(gt, pred, { thresholds: [0.5, 0.3, 0.1] });
    expect(m.sbd).toBeCloseTo(137 / 264, 15);
    expect(m.aji).toBeCloseTo(15 / 26, 15);
    expect([m.tp[0], m.fp[0], m.fn[0]]).toEqual([2, 2, 1]);
    expect(m.precision[0]).toBe(0.5);
    expect(m.recall[0]).toBeCloseTo(2 / 3, 15);
    expect(m.f1[0]).toBeCloseTo(4 / 7, 15);
    expect(m.apDsb[0]).toBeCloseTo(2 / 5, 15);
    expect(m.meanMatchedIoU[0]).toBeCloseTo((5 / 6 + 1 / 2) / 2, 15);
    // τ = 0.3 adds B-Q (1/3); τ = 0.1 makes B-P a candidate too, but B-Q keeps A-P: still 3 TP, 1 FP (S), AP 3/4.
    expect(m.tp.slice(1)).toEqual([3, 3]);
    expect(m.apDsb.slice(1)).toEqual([0.75, 0.75]);
    expect(m.meanApDsb).toBeCloseTo((2 / 5 + 3 / 4 + 3 / 4) / 3, 15);
  });

  it('below τ = 0.5 the matching is optimal where greedy by IoU is not', () => {
    // True X = [0, 10), Y = [10, 14); predicted V = [0, 4), U = [4, 13).
    // IoU: X-U 6/13 = 0.46, X-V 4/10 = 0.4, Y-U 3/10 = 0.3. Greedy takes X-U first and leaves Y unmatched; the best
    // matching is X-V, Y-U: 2 TP at τ = 0.3.
    const gt = strip(16, [
      [0, 10, 1],
      [10, 14, 2],
    ]);
    const pred = strip(16, [
      [0, 4, 1],
      [4, 13, 2],
    ]);
    const m = evaluateImage(gt, pred, { thresholds: [0.3, 0.45] });
    expect(m.tp).toEqual([2, 1]);
    expect(m.meanMatchedIoU[0]).toBeCloseTo((0.4 + 0.3) / 2, 15);
    expect(m.meanMatchedIoU[1]).toBeCloseTo(6 / 13, 15);
  });

  it('3D volumes are the same computation on flat arrays', () => {
    // 3x4x4 volume, a 2x2x2 cube against the same cube shifted by one slice: intersection 4, union 12, IoU 1/3.
    const cube = (z0: number) => {
      const v = new Int32Array(3 * 4 * 4);
      for (let z = z0; z < z0 + 2; z++) for (let y = 1; y < 3; y++) v.fill(9, z * 16 + y * 4 + 1, z * 16 + y * 4 + 3);
      return v;
    };
    const m = evaluateImage(cube(0), cube(1), { thresholds: [1 / 3, 0.34] });
    expect(m.tp).toEqual([1, 0]);
    expect(m.aji).toBeCloseTo(1 / 3, 15);
    expect(m.sbd).toBe(0.5);
  });

  it('swapping ground truth and prediction swaps precision and recall and keeps the rest', () => {
    const a = syntheticBlobs({ height: 64, width: 64, blobs: 12, radius: [4, 9], seed: 3 }).labels;
    const b = syntheticBlobs({ height: 64, width: 64, blobs: 12, radius: [4, 9], seed: 4 }).labels;
    const ab = evaluateImage(a, b, { thresholds: [0.1, 0.3, 0.5, 0.7] });
    const ba = evaluateImage(b, a, { thresholds: [0.1, 0.3, 0.5, 0.7] });
    expect(ab.tp).toEqual(ba.tp);
    expect(ab.precision).toEqual(ba.recall);
    expect(ab.f1).toEqual(ba.f1);
    expect(ab.sbd).toBe(ba.sbd);
    expect(ab.tp[0]).toBeGreaterThan(0);
  });

  it('names bad input', () => {
    expect(() => evaluateImage(new Int32Array(4), new Int32Array(5))).toThrow(
      'metrics: ground truth has 4 pixels, prediction has 5',
    );
    expect(() => evaluateImage(new Int32Array(4), Int32Array.of(0, 0, -1, 0))).toThrow(
      'metrics: predicted label -1 at pixel 2 (predictions are ≥ 0)',
    );
    expect(() => evaluateImage(Int32Array.of(0, -2, 0), new Int32Array(3))).toThrow(
      'metrics: ground truth label -2 at pixel 1',
    );
    expect(() => evaluateImage(new Int32Array(1), new Int32Array(1), { thresholds: [0] })).toThrow(
      'metrics: IoU threshold 0 is outside (0, 1]',
    );
  });
});

describe('matchInstances', () => {
  it('at τ ≥ 0.5 every match is one pair, found without the assignment', () => {
    const { labels } = syntheticBlobs({ height: 96, width: 96, blobs: 30, radius: [4, 10], seed: 11 });
    const shifted = new Int32Array(labels.length);
    shifted.set(labels.subarray(1), 0); // one pixel to the left
    const ov = overlaps(labels, shifted);
    const matched = matchInstances(ov, 0.5);
    expect(matched.length).toBe(ov.trueIds.length);
    for (const k of matched) expect(ov.trueIds[ov.pairTrue[k]]).toBe(ov.predIds[ov.pairPred[k]]);
  });
});

describe('linearSumAssignment', () => {
  /** The least total cost over every way of pairing min(rows, cols) rows with distinct columns. */
  function bruteForce(cost: Float64Array, rows: number, cols: number): number {
    let best = Infinity;
    const usedCol = new Uint8Array(cols);
    const usedRow = new Uint8Array(rows);
    const pairs = Math.min(rows, cols);
    // Pair rows in order, each with a free column, or skip it while enough rows remain to fill the pairs.
    const visit = (row: number, made: number, total: number): void => {
      if (made === pairs) {
        best = Math.min(best, total);
        return;
      }
      if (row === rows) return;
      for (let j = 0; j < cols; j++) {
        if (usedCol[j]) continue;
        usedCol[j] = usedRow[row] = 1;
        visit(row + 1, made + 1, total + cost[row * cols + j]);
        usedCol[j] = usedRow[row] = 0;
      }
      if (rows - row - 1 >= pairs - made) visit(row + 1, made, total);
    };
    visit(0, 0, 0);
    return best;
  }

  it('matches brute force on random small matrices (square, wide, tall, ties)', () => {
    const random = seededRandom(7);
    for (let trial = 0; trial < 300; trial++) {
      const rows = 1 + Math.floor(random() * 6);
      const cols = 1 + Math.floor(random() * 6);
      const integer = trial % 2 === 0; // small integers make many ties
      const cost = Float64Array.from({ length: rows * cols }, () =>
        integer ? Math.floor(random() * 4) - 2 : random() * 10 - 5,
      );
      const assignment = linearSumAssignment(cost, rows, cols);
      const cols_ = [...assignment].filter((j) => j >= 0);
      expect(cols_.length).toBe(Math.min(rows, cols));
      expect(new Set(cols_).size).toBe(cols_.length);
      let total = 0;
      assignment.forEach((j, i) => (total += j >= 0 ? cost[i * cols + j] : 0));
      expect(total).toBeCloseTo(bruteForce(cost, rows, cols), 9);
    }
  });

  it('a hand case: the greedy choice of the cheapest cell is wrong', () => {
    // Taking cell (0,0) = 1 forces (1,1) = 10: total 11. The optimum is (0,1) + (1,0) = 2 + 3 = 5.
    expect([...linearSumAssignment([1, 2, 3, 10], 2, 2)]).toEqual([1, 0]);
    // 3 rows, 1 column: the cheapest row takes it.
    expect([...linearSumAssignment([4, -1, 2], 3, 1)]).toEqual([-1, 0, -1]);
  });

  it('names bad input', () => {
    expect(() => linearSumAssignment([1, 2, 3], 2, 2)).toThrow('linearSumAssignment: cost has 3 entries, expected 2x2 = 4');
    expect(() => linearSumAssignment([1, NaN], 1, 2)).toThrow('linearSumAssignment: cost[1] is NaN, must be finite');
  });
});

describe('evaluate', () => {
  it('averages per image and, as a second view, sums the counts over the dataset', () => {
    // Image a: one object found exactly (F1 1). Image b: three objects, nothing predicted (F1 0).
    // Per image: F1 (1 + 0)/2 = 0.5. Dataset: TP 1, FP 0, FN 3, F1 = 2/(2 + 3) = 0.4, AP = 1/4, recall 1/4.
    const a = strip(8, [[0, 4, 1]]);
    const b = strip(12, [
      [0, 2, 1],
      [4, 6, 2],
      [8, 10, 3],
    ]);
    const result = evaluate([
      { name: 'a', gt: a, pred: a },
      { name: 'b', gt: b, pred: new Int32Array(12) },
    ]);
    expect(result.images).toBe(2);
    expect(result.thresholds).toEqual([...DSB_THRESHOLDS]);
    expect(result.perImage.f1).toEqual(nine(0.5));
    expect(result.perImage.precision).toEqual(nine(0.5));
    expect([result.perImage.meanApDsb, result.perImage.sbd, result.perImage.aji]).toEqual([0.5, 0.5, 0.5]);
    expect(result.dataset.tp).toEqual(nine(1));
    expect(result.dataset.fn).toEqual(nine(3));
    expect(result.dataset.f1).toEqual(nine(0.4));
    expect(result.dataset.apDsb).toEqual(nine(0.25));
    expect(result.dataset.recall).toEqual(nine(0.25));
    expect(result.dataset.precision).toEqual(nine(1));
    expect(result.dataset.meanMatchedIoU).toEqual(nine(1));
    expect(JSON.parse(JSON.stringify(result))).toEqual(result);
  });

  it('takes a generator and names the image that fails', () => {
    function* pairs() {
      yield { name: 'good', gt: new Int32Array(3), pred: new Int32Array(3) };
      yield { name: 'cells_07', gt: new Int32Array(3), pred: new Int32Array(2) };
    }
    expect(() => evaluate(pairs())).toThrow('metrics: cells_07: ground truth has 3 pixels, prediction has 2');
    expect(() => evaluate([])).toThrow('metrics: no image pairs to evaluate');
    expect(evaluate([{ gt: new Int32Array(2), pred: new Int32Array(2) }]).dataset.apDsb).toEqual(nine(1));
  });
});

describe('timing', () => {
  it('696x520 with 100 instances in a few ms; 64x256x256 in 3D', () => {
    const { labels, count } = syntheticBlobs({ height: 520, width: 696, blobs: 120, radius: [8, 20], seed: 5 });
    expect(count).toBeGreaterThanOrEqual(100);
    const pred = new Int32Array(labels.length);
    pred.set(labels.subarray(2 * 696 + 1)); // shifted up 2 rows and left 1 column
    evaluateImage(labels, pred); // warm up the JIT
    // Min and median of 20 runs: the min is the cost, the median what a loaded machine gives.
    const times = Array.from({ length: 20 }, () => {
      const t0 = performance.now();
      evaluateImage(labels, pred);
      return performance.now() - t0;
    }).sort((x, y) => x - y);

    // 64x256x256: a grid of 8x32x32 boxes, 8·8·8 = 512 instances, against the same grid shifted by one voxel in x.
    const [d, h, w] = [64, 256, 256];
    const gt = new Int32Array(d * h * w);
    const shifted = new Int32Array(d * h * w);
    for (let z = 0; z < d; z++) {
      for (let y = 0; y < h; y++) {
        for (let x = 0; x < w; x++) {
          const i = (z * h + y) * w + x;
          gt[i] = 1 + ((z >> 3) * 8 + (y >> 5)) * 8 + (x >> 5);
          shifted[i] = 1 + ((z >> 3) * 8 + (y >> 5)) * 8 + (Math.min(w - 1, x + 1) >> 5);
        }
      }
    }
    const start = performance.now();
    const m = evaluateImage(gt, shifted);
    const ms3d = performance.now() - start;
    const [min, median] = [times[0].toFixed(2), times[10].toFixed(2)];
    console.log(`evaluateImage: 696x520 min ${min} ms, median ${median} ms; 64x256x256 ${ms3d.toFixed(1)} ms`);
    expect(m.tp[0]).toBe(512);
    expect(times[0]).toBeLessThan(20); // a few ms on an idle machine; generous for a shared one
    expect(ms3d).toBeLessThan(2000);
  });
});
