// Instance-segmentation metrics shared by every model: true and predicted instances matched by IoU, and the scores the
// papers report: precision, recall, F1 and AP_dsb = TP/(TP+FP+FN) at IoU thresholds (StarDist's `matching`, the Data
// Science Bowl 2018), symmetric best Dice (CVPPP), the aggregated Jaccard index (MoNuSeg), and the CenterUNet thesis's
// pixel-wise and object-wise IoU and F1 (Sec. 5.3; its rotated-box AP is src/train/box-ap.ts). Pure TypeScript; a label
// image is a flat Int32Array, so 2D and 3D are the same computation; overlapping instances come as layers of them
// (src/train/layers.ts) and are matched on their whole masks.
//
// Conventions:
// - 0 is background. -1 in the ground truth marks unlabeled pixels: they are dropped from every count in both images
//   (a predicted instance lying wholly inside them does not exist). Predicted labels must be ≥ 0. Ids need not be
//   contiguous.
// - A true and a predicted instance match at threshold τ when IoU ≥ τ (as StarDist's `matching`), one to one. The
//   matching has the most pairs and, among those, the largest IoU sum.
// - A ratio with nothing to count (0/0) is 1 when neither image has an instance (nothing to find, nothing found) and
//   0 otherwise: precision with no prediction, recall with no true instance, the mean matched IoU with no match.
//   The same rule gives AP_dsb, F1, SBD and AJI their empty-image values. Dataset-level ratios follow it over the set.

import { asLayers, layerSize, type Labels } from './layers.ts';

/** Instances of one image pair and their overlaps, unlabeled pixels dropped. Instance indices follow sorted ids. */
export interface Overlaps {
  trueIds: Int32Array;
  predIds: Int32Array;
  trueAreas: Float64Array;
  predAreas: Float64Array;
  /** One entry per (true, predicted) pair with a non-empty intersection. */
  pairTrue: Int32Array;
  pairPred: Int32Array;
  pairIntersection: Float64Array;
  pairIoU: Float64Array;
}

/**
 * One pass over the pixels. Plain label images merge runs of equal (true, predicted) labels so maps are touched once
 * per run; layered ones (overlapping instances) count every instance covering a pixel in its area and every (true,
 * predicted) pair covering it in their intersection, so an overlapping pair scores on its whole masks.
 */
export function overlaps(gtLabels: Labels, predLabels: Labels): Overlaps {
  const gt = asLayers(gtLabels);
  const pred = asLayers(predLabels);
  const size = layerSize(gt, 'metrics: ground truth');
  if (layerSize(pred, 'metrics: prediction') !== size) {
    throw new Error(`metrics: ground truth has ${size} pixels, prediction has ${pred.data.length / pred.layers}`);
  }
  const trueIndex = new Map<number, number>();
  const predIndex = new Map<number, number>();
  const trueAreas: number[] = [];
  const predAreas: number[] = [];
  const intersections: Map<number, number>[] = []; // per true instance: predicted instance → pixels in common
  const indexOf = (index: Map<number, number>, areas: number[], id: number): number => {
    let k = index.get(id);
    if (k === undefined) {
      k = areas.length;
      index.set(id, k);
      areas.push(0);
      if (index === trueIndex) intersections.push(new Map());
    }
    return k;
  };
  const addPair = (ti: number, pi: number, n: number) => intersections[ti].set(pi, (intersections[ti].get(pi) ?? 0) + n);
  const checkTrue = (t: number, i: number, layer: number) => {
    if (t < -1 || (t === -1 && layer > 0)) {
      throw new Error(`metrics: ground truth label ${t} at pixel ${i}${layer > 0 ? ` of layer ${layer}` : ''} (labels are ≥ 0, or -1 = unlabeled in layer 0)`);
    }
  };
  const checkPred = (p: number, i: number, layer: number) => {
    if (p < 0) throw new Error(`metrics: predicted label ${p} at pixel ${i}${layer > 0 ? ` of layer ${layer}` : ''} (predictions are ≥ 0)`);
  };
  if (gt.layers === 1 && pred.layers === 1) {
    // A run of `run` pixels labeled (t, p); kept out of the pixel loop so its variables stay local to the loop.
    const count = (t: number, p: number, run: number): void => {
      if (run === 0 || t === -1) return;
      const ti = t > 0 ? indexOf(trueIndex, trueAreas, t) : -1;
      const pi = p > 0 ? indexOf(predIndex, predAreas, p) : -1;
      if (ti >= 0) trueAreas[ti] += run;
      if (pi >= 0) predAreas[pi] += run;
      if (ti >= 0 && pi >= 0) addPair(ti, pi, run);
    };
    let runTrue = -1;
    let runPred = 0;
    let run = 0;
    for (let i = 0; i < size; i++) {
      const t = gt.data[i];
      const p = pred.data[i];
      if (t === runTrue && p === runPred) {
        run++;
        continue;
      }
      checkTrue(t, i, 0);
      checkPred(p, i, 0);
      count(runTrue, runPred, run);
      runTrue = t;
      runPred = p;
      run = 1;
    }
    count(runTrue, runPred, run);
  } else {
    const covering: number[] = [];
    for (let i = 0; i < size; i++) {
      for (let k = 0; k < gt.layers; k++) checkTrue(gt.data[k * size + i], i, k);
      for (let k = 0; k < pred.layers; k++) checkPred(pred.data[k * size + i], i, k);
      if (gt.data[i] === -1) continue;
      covering.length = 0;
      for (let k = 0; k < gt.layers; k++) {
        const t = gt.data[k * size + i];
        if (t === 0) continue;
        const ti = indexOf(trueIndex, trueAreas, t);
        trueAreas[ti]++;
        covering.push(ti);
      }
      for (let k = 0; k < pred.layers; k++) {
        const p = pred.data[k * size + i];
        if (p === 0) continue;
        const pi = indexOf(predIndex, predAreas, p);
        predAreas[pi]++;
        for (const ti of covering) addPair(ti, pi, 1);
      }
    }
  }

  const sorted = (index: Map<number, number>, areas: number[]) => {
    const ids = Int32Array.from(index.keys()).sort();
    const rank = new Int32Array(ids.length);
    ids.forEach((id, r) => (rank[index.get(id)!] = r));
    return { ids, rank, areas: Float64Array.from(ids, (id) => areas[index.get(id)!]) };
  };
  const tru = sorted(trueIndex, trueAreas);
  const prd = sorted(predIndex, predAreas);
  const pairTrue: number[] = [];
  const pairPred: number[] = [];
  const pairIntersection: number[] = [];
  tru.ids.forEach((id) => {
    const t = trueIndex.get(id)!;
    for (const [p, n] of intersections[t]) {
      pairTrue.push(tru.rank[t]);
      pairPred.push(prd.rank[p]);
      pairIntersection.push(n);
    }
  });
  const pairIoU = Float64Array.from(
    pairIntersection,
    (n, k) => n / (tru.areas[pairTrue[k]] + prd.areas[pairPred[k]] - n),
  );
  return {
    trueIds: tru.ids,
    predIds: prd.ids,
    trueAreas: tru.areas,
    predAreas: prd.areas,
    pairTrue: Int32Array.from(pairTrue),
    pairPred: Int32Array.from(pairPred),
    pairIntersection: Float64Array.from(pairIntersection),
    pairIoU,
  };
}

/**
 * Minimum-cost assignment on a dense rows x cols cost matrix (row-major), as scipy's linear_sum_assignment: min(rows,
 * cols) pairs, each row and column used at most once. Returns the column of each row, -1 for a row left out.
 * Shortest augmenting paths with row/column potentials (the Hungarian method in Jonker–Volgenant form), O(rows²·cols).
 */
export function linearSumAssignment(cost: ArrayLike<number>, rows: number, cols: number): Int32Array {
  if (cost.length !== rows * cols) {
    throw new Error(`linearSumAssignment: cost has ${cost.length} entries, expected ${rows}x${cols} = ${rows * cols}`);
  }
  for (let k = 0; k < cost.length; k++) {
    if (!Number.isFinite(cost[k])) throw new Error(`linearSumAssignment: cost[${k}] is ${cost[k]}, must be finite`);
  }
  if (rows > cols) {
    const transposed = new Float64Array(rows * cols);
    for (let i = 0; i < rows; i++) for (let j = 0; j < cols; j++) transposed[j * rows + i] = cost[i * cols + j];
    const rowOfCol = linearSumAssignment(transposed, cols, rows);
    const colOfRow = new Int32Array(rows).fill(-1);
    rowOfCol.forEach((i, j) => (colOfRow[i] = j));
    return colOfRow;
  }
  // 1-based rows and columns; column 0 is a virtual column that holds the row being inserted.
  const u = new Float64Array(rows + 1);
  const v = new Float64Array(cols + 1);
  const minReduced = new Float64Array(cols + 1);
  const rowOf = new Int32Array(cols + 1); // the row assigned to each column, 0 = free
  const previous = new Int32Array(cols + 1); // the column before each one on the shortest path
  const visited = new Uint8Array(cols + 1);
  for (let row = 1; row <= rows; row++) {
    rowOf[0] = row;
    let j0 = 0;
    minReduced.fill(Infinity);
    visited.fill(0);
    do {
      visited[j0] = 1;
      const i0 = rowOf[j0];
      let delta = Infinity;
      let j1 = 0;
      for (let j = 1; j <= cols; j++) {
        if (visited[j]) continue;
        const reduced = cost[(i0 - 1) * cols + j - 1] - u[i0] - v[j];
        if (reduced < minReduced[j]) {
          minReduced[j] = reduced;
          previous[j] = j0;
        }
        if (minReduced[j] < delta) {
          delta = minReduced[j];
          j1 = j;
        }
      }
      for (let j = 0; j <= cols; j++) {
        if (visited[j]) {
          u[rowOf[j]] += delta;
          v[j] -= delta;
        } else {
          minReduced[j] -= delta;
        }
      }
      j0 = j1;
    } while (rowOf[j0] !== 0);
    do {
      const j1 = previous[j0];
      rowOf[j0] = rowOf[j1];
      j0 = j1;
    } while (j0 !== 0);
  }
  const colOfRow = new Int32Array(rows).fill(-1);
  for (let j = 1; j <= cols; j++) if (rowOf[j] !== 0) colOfRow[rowOf[j] - 1] = j - 1;
  return colOfRow;
}

/**
 * The matched pairs at threshold τ, as indices into the pair arrays of `ov`. The candidate pairs (IoU ≥ τ) split into
 * connected components, each matched on its own. For τ > 0.5 every component is a single pair (IoU > 0.5 makes a
 * partner unique), and at τ = 0.5 a star of ties, so the assignment only runs below 0.5.
 */
export function matchInstances(ov: Overlaps, threshold: number): Int32Array {
  const nTrue = ov.trueIds.length;
  const candidates: number[] = [];
  for (let k = 0; k < ov.pairIoU.length; k++) if (ov.pairIoU[k] >= threshold) candidates.push(k);
  // Union-find over true instances (0..nTrue-1) and predictions (nTrue + index).
  const parent = Int32Array.from({ length: nTrue + ov.predIds.length }, (_, i) => i);
  const find = (x: number): number => {
    while (parent[x] !== x) x = parent[x] = parent[parent[x]];
    return x;
  };
  for (const k of candidates) parent[find(ov.pairTrue[k])] = find(nTrue + ov.pairPred[k]);
  const components = new Map<number, number[]>();
  for (const k of candidates) {
    const root = find(ov.pairTrue[k]);
    const component = components.get(root);
    if (component) component.push(k);
    else components.set(root, [k]);
  }
  const matched: number[] = [];
  for (const component of components.values()) {
    if (component.length === 1) {
      matched.push(component[0]);
      continue;
    }
    const rowOf = new Map<number, number>();
    const colOf = new Map<number, number>();
    for (const k of component) {
      if (!rowOf.has(ov.pairTrue[k])) rowOf.set(ov.pairTrue[k], rowOf.size);
      if (!colOf.has(ov.pairPred[k])) colOf.set(ov.pairPred[k], colOf.size);
    }
    const rows = rowOf.size;
    const cols = colOf.size;
    // StarDist's cost: a match is worth 1 plus at most 1/(2·min(rows, cols)), so the most matches win first, then the
    // largest IoU sum. Non-candidate cells cost 0 and are dropped if assigned.
    const tieBreak = 1 / (2 * Math.min(rows, cols));
    const cost = new Float64Array(rows * cols);
    const pairAt = new Int32Array(rows * cols).fill(-1);
    for (const k of component) {
      const cell = rowOf.get(ov.pairTrue[k])! * cols + colOf.get(ov.pairPred[k])!;
      cost[cell] = -1 - ov.pairIoU[k] * tieBreak;
      pairAt[cell] = k;
    }
    linearSumAssignment(cost, rows, cols).forEach((col, row) => {
      if (col >= 0 && pairAt[row * cols + col] >= 0) matched.push(pairAt[row * cols + col]);
    });
  }
  return Int32Array.from(matched).sort();
}

/** 0.5, 0.55, …, 0.9: the Data Science Bowl / StarDist thresholds (each the double nearest to k/100). */
export const DSB_THRESHOLDS: readonly number[] = Array.from({ length: 9 }, (_, k) => (50 + 5 * k) / 100);

/** 0.5, 0.55, …, 0.95: COCO's thresholds, over which the CenterUNet thesis averages its object-wise IoU and F1. */
export const COCO_THRESHOLDS: readonly number[] = Array.from({ length: 10 }, (_, k) => (50 + 5 * k) / 100);

/** TP, FP and FN at each of COCO_THRESHOLDS, and the thesis's OW IoU and OW F1: their ratios averaged over them. */
export interface ObjectWise {
  tp: number[];
  fp: number[];
  fn: number[];
  /** Mean of TP/(TP+FP+FN) (AP_dsb) over COCO_THRESHOLDS. */
  iou: number;
  /** Mean of 2TP/(2TP+FP+FN) over COCO_THRESHOLDS. */
  f1: number;
}

export interface MetricsOptions {
  /** IoU thresholds τ (each in (0, 1]); default DSB_THRESHOLDS. Every per-threshold array follows this order. */
  thresholds?: readonly number[];
}

/** Scores of one image pair. Arrays hold one value per threshold, in the order of `thresholds`. */
export interface ImageMetrics {
  /** Instances in the ground truth and in the prediction (outside unlabeled pixels). */
  nTrue: number;
  nPred: number;
  thresholds: number[];
  tp: number[];
  fp: number[];
  fn: number[];
  /** TP/(TP+FP). */
  precision: number[];
  /** TP/(TP+FN). */
  recall: number[];
  /** 2TP/(2TP+FP+FN). */
  f1: number[];
  /** TP/(TP+FP+FN): the Data Science Bowl's "average precision" at τ. */
  apDsb: number[];
  /** Mean IoU of the matched pairs. */
  meanMatchedIoU: number[];
  /** apDsb averaged over the thresholds. */
  meanApDsb: number;
  /** Symmetric best Dice: min(BestDice(pred, gt), BestDice(gt, pred)). */
  sbd: number;
  /** Aggregated Jaccard index. */
  aji: number;
  /** Foreground pixels (id > 0) in both images, only in the prediction, only in the ground truth (unlabeled dropped). */
  pixels: { tp: number; fp: number; fn: number };
  /** The thesis's object-wise scores (Sec. 5.3). */
  objectWise: ObjectWise;
}

/** x/y, with 0/0 read as 1 when there is nothing to find and nothing found, else 0 (see the conventions above). */
const ratio = (x: number, y: number, empty: boolean): number => (y > 0 ? x / y : empty ? 1 : 0);

const sum = (values: ArrayLike<number>): number => {
  let s = 0;
  for (let i = 0; i < values.length; i++) s += values[i];
  return s;
};
const mean = (values: ArrayLike<number>): number => sum(values) / values.length;

function checkThresholds(thresholds: readonly number[]): number[] {
  if (thresholds.length === 0) throw new Error('metrics: thresholds is empty');
  for (const t of thresholds) {
    if (!(t > 0 && t <= 1)) throw new Error(`metrics: IoU threshold ${t} is outside (0, 1]`);
  }
  return [...thresholds];
}

/**
 * Scores of one image pair: `gt` and `pred` are instance label images of the same size (see the conventions), plain
 * or layered where instances overlap (src/train/layers.ts).
 */
export function evaluateImage(gt: Labels, pred: Labels, options: MetricsOptions = {}): ImageMetrics {
  const thresholds = checkThresholds(options.thresholds ?? DSB_THRESHOLDS);
  const ov = overlaps(gt, pred);
  const nTrue = ov.trueIds.length;
  const nPred = ov.predIds.length;
  const empty = nTrue === 0 && nPred === 0;
  const m: ImageMetrics = {
    nTrue,
    nPred,
    thresholds,
    tp: [],
    fp: [],
    fn: [],
    precision: [],
    recall: [],
    f1: [],
    apDsb: [],
    meanMatchedIoU: [],
    meanApDsb: 0,
    sbd: 0,
    aji: 0,
    pixels: pixelCounts(gt, pred),
    objectWise: { tp: [], fp: [], fn: [], iou: 0, f1: 0 },
  };
  for (const threshold of COCO_THRESHOLDS) {
    const tp = matchInstances(ov, threshold).length;
    m.objectWise.tp.push(tp);
    m.objectWise.fp.push(nPred - tp);
    m.objectWise.fn.push(nTrue - tp);
  }
  Object.assign(m.objectWise, objectWiseMeans(m.objectWise, empty));
  for (const threshold of thresholds) {
    const matched = matchInstances(ov, threshold);
    const tp = matched.length;
    const fp = nPred - tp;
    const fn = nTrue - tp;
    let iouSum = 0;
    for (const k of matched) iouSum += ov.pairIoU[k];
    m.tp.push(tp);
    m.fp.push(fp);
    m.fn.push(fn);
    m.precision.push(ratio(tp, tp + fp, empty));
    m.recall.push(ratio(tp, tp + fn, empty));
    m.f1.push(ratio(2 * tp, 2 * tp + fp + fn, empty));
    m.apDsb.push(ratio(tp, tp + fp + fn, empty));
    m.meanMatchedIoU.push(ratio(iouSum, tp, empty));
  }
  m.meanApDsb = mean(m.apDsb);

  // Best Dice of each instance with any instance of the other image (0 when it overlaps none).
  const bestDiceTrue = new Float64Array(nTrue);
  const bestDicePred = new Float64Array(nPred);
  // AJI: each true instance takes the prediction of highest IoU (the lowest id on ties); a prediction may be taken
  // by several. C sums their intersections, U their unions plus the areas of true instances overlapping nothing and
  // of predictions never taken.
  const bestPair = new Int32Array(nTrue).fill(-1);
  for (let k = 0; k < ov.pairIoU.length; k++) {
    const t = ov.pairTrue[k];
    const p = ov.pairPred[k];
    const dice = (2 * ov.pairIntersection[k]) / (ov.trueAreas[t] + ov.predAreas[p]);
    bestDiceTrue[t] = Math.max(bestDiceTrue[t], dice);
    bestDicePred[p] = Math.max(bestDicePred[p], dice);
    const best = bestPair[t];
    if (best < 0 || ov.pairIoU[k] > ov.pairIoU[best] || (ov.pairIoU[k] === ov.pairIoU[best] && p < ov.pairPred[best])) {
      bestPair[t] = k;
    }
  }
  m.sbd = Math.min(ratio(sum(bestDicePred), nPred, empty), ratio(sum(bestDiceTrue), nTrue, empty));
  let c = 0;
  let u = 0;
  const taken = new Uint8Array(nPred);
  bestPair.forEach((k, t) => {
    if (k < 0) {
      u += ov.trueAreas[t];
      return;
    }
    const p = ov.pairPred[k];
    c += ov.pairIntersection[k];
    u += ov.trueAreas[t] + ov.predAreas[p] - ov.pairIntersection[k];
    taken[p] = 1;
  });
  ov.predAreas.forEach((area, p) => (u += taken[p] ? 0 : area));
  m.aji = ratio(c, u, empty);
  return m;
}

/** Foreground pixel counts of layer 0 (the flat image: the union of the instances), unlabeled ground truth dropped. */
function pixelCounts(gt: Labels, pred: Labels): { tp: number; fp: number; fn: number } {
  const g = asLayers(gt);
  const p = asLayers(pred);
  const size = layerSize(g, 'ground truth');
  if (layerSize(p, 'prediction') !== size) throw new Error(`metrics: ground truth has ${size} pixels per layer, prediction ${layerSize(p, 'prediction')}`);
  let tp = 0;
  let fp = 0;
  let fn = 0;
  for (let i = 0; i < size; i++) {
    const t = g.data[i];
    if (t < 0) continue;
    const q = p.data[i] > 0;
    if (t > 0 && q) tp++;
    else if (q) fp++;
    else if (t > 0) fn++;
  }
  return { tp, fp, fn };
}

/** The thesis's OW IoU and OW F1 from counts at each of COCO_THRESHOLDS. */
function objectWiseMeans(c: { tp: number[]; fp: number[]; fn: number[] }, empty: boolean): { iou: number; f1: number } {
  return {
    iou: mean(c.tp.map((tp, k) => ratio(tp, tp + c.fp[k] + c.fn[k], empty))),
    f1: mean(c.tp.map((tp, k) => ratio(2 * tp, 2 * tp + c.fp[k] + c.fn[k], empty))),
  };
}

/** Scores over a set of images, two views. Arrays hold one value per threshold, in the order of `thresholds`. */
export interface EvaluationResult {
  images: number;
  thresholds: number[];
  /** Each score computed per image, then averaged over the images (as the papers report). */
  perImage: {
    precision: number[];
    recall: number[];
    f1: number[];
    apDsb: number[];
    meanMatchedIoU: number[];
    meanApDsb: number;
    sbd: number;
    aji: number;
    /** The thesis's pixel-wise IoU TP/(TP+FP+FN) and F1 2TP/(2TP+FP+FN) of the foreground (Sec. 5.3, Eqs. 11-12). */
    pwIoU: number;
    pwF1: number;
    /** The thesis's object-wise IoU and F1 (ObjectWise). */
    owIoU: number;
    owF1: number;
  };
  /** TP, FP and FN summed over the images, then the ratios taken once. */
  dataset: {
    tp: number[];
    fp: number[];
    fn: number[];
    precision: number[];
    recall: number[];
    f1: number[];
    apDsb: number[];
    meanMatchedIoU: number[];
    meanApDsb: number;
    pwIoU: number;
    pwF1: number;
    owIoU: number;
    owF1: number;
  };
}

/** Combines per-image scores (all computed with the same thresholds) into the two views of EvaluationResult. */
export function aggregateMetrics(images: readonly ImageMetrics[]): EvaluationResult {
  if (images.length === 0) throw new Error('metrics: no images to aggregate');
  const thresholds = images[0].thresholds;
  images.forEach((m, i) => {
    if (m.thresholds.length !== thresholds.length || m.thresholds.some((t, k) => t !== thresholds[k])) {
      throw new Error(`metrics: image ${i} was scored at thresholds [${m.thresholds}], image 0 at [${thresholds}]`);
    }
  });
  const perThreshold = (value: (m: ImageMetrics, k: number) => number, reduce: (xs: number[]) => number) =>
    thresholds.map((_, k) => reduce(images.map((m) => value(m, k))));
  const average = (pick: (m: ImageMetrics) => number[]) => perThreshold((m, k) => pick(m)[k], mean);

  const tp = perThreshold((m, k) => m.tp[k], sum);
  const fp = perThreshold((m, k) => m.fp[k], sum);
  const fn = perThreshold((m, k) => m.fn[k], sum);
  const iouSum = perThreshold((m, k) => m.tp[k] * m.meanMatchedIoU[k], sum);
  const empty = images.every((m) => m.nTrue === 0 && m.nPred === 0);
  const apDsb = thresholds.map((_, k) => ratio(tp[k], tp[k] + fp[k] + fn[k], empty));
  const px = { tp: sum(images.map((m) => m.pixels.tp)), fp: sum(images.map((m) => m.pixels.fp)), fn: sum(images.map((m) => m.pixels.fn)) };
  const noPixels = px.tp + px.fp + px.fn === 0;
  const pooled = (pick: (o: ObjectWise) => number[]) => COCO_THRESHOLDS.map((_, k) => sum(images.map((m) => pick(m.objectWise)[k])));
  const ow = objectWiseMeans({ tp: pooled((o) => o.tp), fp: pooled((o) => o.fp), fn: pooled((o) => o.fn) }, empty);
  return {
    images: images.length,
    thresholds: [...thresholds],
    perImage: {
      precision: average((m) => m.precision),
      recall: average((m) => m.recall),
      f1: average((m) => m.f1),
      apDsb: average((m) => m.apDsb),
      meanMatchedIoU: average((m) => m.meanMatchedIoU),
      meanApDsb: mean(images.map((m) => m.meanApDsb)),
      sbd: mean(images.map((m) => m.sbd)),
      aji: mean(images.map((m) => m.aji)),
      pwIoU: mean(images.map(({ pixels: p }) => ratio(p.tp, p.tp + p.fp + p.fn, p.tp + p.fp + p.fn === 0))),
      pwF1: mean(images.map(({ pixels: p }) => ratio(2 * p.tp, 2 * p.tp + p.fp + p.fn, p.tp + p.fp + p.fn === 0))),
      owIoU: mean(images.map((m) => m.objectWise.iou)),
      owF1: mean(images.map((m) => m.objectWise.f1)),
    },
    dataset: {
      tp,
      fp,
      fn,
      precision: thresholds.map((_, k) => ratio(tp[k], tp[k] + fp[k], empty)),
      recall: thresholds.map((_, k) => ratio(tp[k], tp[k] + fn[k], empty)),
      f1: thresholds.map((_, k) => ratio(2 * tp[k], 2 * tp[k] + fp[k] + fn[k], empty)),
      apDsb,
      meanMatchedIoU: thresholds.map((_, k) => ratio(iouSum[k], tp[k], empty)),
      meanApDsb: mean(apDsb),
      pwIoU: ratio(px.tp, px.tp + px.fp + px.fn, noPixels),
      pwF1: ratio(2 * px.tp, 2 * px.tp + px.fp + px.fn, noPixels),
      owIoU: ow.iou,
      owF1: ow.f1,
    },
  };
}

export interface ImagePair {
  /** Named in error messages. */
  name?: string;
  gt: Labels;
  pred: Labels;
}

/** evaluateImage of one named pair; an error names the image. */
export function evaluatePair({ name = 'image', gt, pred }: ImagePair, options: MetricsOptions = {}): ImageMetrics {
  try {
    return evaluateImage(gt, pred, options);
  } catch (error) {
    throw new Error((error as Error).message.replace(/^metrics: /, `metrics: ${name}: `));
  }
}

/**
 * Scores a set of (ground truth, prediction) label images: evaluatePair on each, then aggregateMetrics. The result
 * is plain JSON. `pairs` may be a generator, so images need not all be in memory at once.
 */
export function evaluate(pairs: Iterable<ImagePair>, options: MetricsOptions = {}): EvaluationResult {
  checkThresholds(options.thresholds ?? DSB_THRESHOLDS);
  const images: ImageMetrics[] = [];
  for (const { name, gt, pred } of pairs) images.push(evaluatePair({ name: name ?? `image ${images.length}`, gt, pred }, options));
  if (images.length === 0) throw new Error('metrics: no image pairs to evaluate');
  return aggregateMetrics(images);
}
