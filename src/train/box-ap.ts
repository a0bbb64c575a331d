// Rotated-box detection scores as the CenterUNet thesis reports them (Sec. 5.2, Table 3): the IoU of two rotated
// rectangles (their intersection polygon, by clipping one convex polygon with the other, as Shapely computes it
// numerically for the thesis), and COCO's average precision over IoU 0.5:0.05:0.95, with AP50 and AP75. Pure
// TypeScript, boxes in src/train/rotated-box.ts's form and coordinates.
import { COCO_THRESHOLDS } from './metrics.ts';
import type { Point, RotatedBox } from './rotated-box.ts';

/** The corners of `box`, counter-clockwise in x-right, y-up terms (clockwise on screen, y down). */
export function boxCorners(box: RotatedBox): Point[] {
  const u: Point = [Math.cos(box.angle) * box.width / 2, Math.sin(box.angle) * box.width / 2];
  const v: Point = [-Math.sin(box.angle) * box.height / 2, Math.cos(box.angle) * box.height / 2];
  return [
    [box.cx - u[0] - v[0], box.cy - u[1] - v[1]],
    [box.cx + u[0] - v[0], box.cy + u[1] - v[1]],
    [box.cx + u[0] + v[0], box.cy + u[1] + v[1]],
    [box.cx - u[0] + v[0], box.cy - u[1] + v[1]],
  ];
}

/** Signed area (shoelace): positive for counter-clockwise corners in x-right, y-up terms. */
function signedArea(polygon: readonly Point[]): number {
  let a = 0;
  for (let i = 0; i < polygon.length; i++) {
    const [x0, y0] = polygon[i];
    const [x1, y1] = polygon[(i + 1) % polygon.length];
    a += x0 * y1 - x1 * y0;
  }
  return a / 2;
}

/** `subject` clipped to the convex polygon `clip` (both counter-clockwise): Sutherland–Hodgman. */
function clipConvex(subject: readonly Point[], clip: readonly Point[]): Point[] {
  let out: Point[] = [...subject];
  for (let i = 0; i < clip.length && out.length > 0; i++) {
    const a = clip[i];
    const b = clip[(i + 1) % clip.length];
    // > 0 left of a→b (inside a counter-clockwise polygon).
    const side = (p: Point) => (b[0] - a[0]) * (p[1] - a[1]) - (b[1] - a[1]) * (p[0] - a[0]);
    const input = out;
    out = [];
    for (let k = 0; k < input.length; k++) {
      const p = input[k];
      const q = input[(k + 1) % input.length];
      const sp = side(p);
      const sq = side(q);
      if (sp >= 0) out.push(p);
      if ((sp >= 0) !== (sq >= 0)) {
        const t = sp / (sp - sq);
        out.push([p[0] + t * (q[0] - p[0]), p[1] + t * (q[1] - p[1])]);
      }
    }
  }
  return out;
}

/** Intersection over union of two rotated rectangles (0 when either has no area). */
export function rotatedIoU(a: RotatedBox, b: RotatedBox): number {
  const areaA = a.width * a.height;
  const areaB = b.width * b.height;
  if (!(areaA > 0) || !(areaB > 0)) return 0;
  const inter = clipConvex(boxCorners(a), boxCorners(b));
  const overlap = inter.length >= 3 ? Math.abs(signedArea(inter)) : 0;
  return overlap / (areaA + areaB - overlap);
}

/** One image's boxes: the ground truth's, and the detections with their scores. */
export interface BoxImage {
  truth: readonly RotatedBox[];
  detections: readonly (RotatedBox & { score: number })[];
}

export interface BoxAP {
  /** COCO AP: the mean of `perThreshold` over COCO_THRESHOLDS (0.5, 0.55, …, 0.95). */
  ap: number;
  ap50: number;
  ap75: number;
  perThreshold: number[];
  thresholds: number[];
  truths: number;
  detections: number;
}

/**
 * COCO's average precision of rotated boxes over a set of images, at each of COCO_THRESHOLDS: detections of all
 * images by descending score, each matched to the unmatched true box of its image with the highest IoU ≥ τ (a true
 * positive) or none (a false positive); precision made monotone from high recall down and read at recall 0, 0.01, …,
 * 1 (101 points, 0 beyond the highest recall reached), averaged. With no true box, AP is 1 without detections and 0
 * with any.
 */
export function rotatedBoxAP(images: readonly BoxImage[]): BoxAP {
  const truths = images.reduce((n, im) => n + im.truth.length, 0);
  const ranked = images.flatMap((im, i) => im.detections.map((d, k) => ({ image: i, index: k, score: d.score })));
  for (const r of ranked) if (!Number.isFinite(r.score)) throw new Error(`rotatedBoxAP: detection ${r.index} of image ${r.image} has score ${r.score}`);
  // Stable: equal scores keep image order, then detection order.
  ranked.sort((p, q) => q.score - p.score);
  // IoUs of every detection with the true boxes of its image, computed once for all thresholds.
  const ious = ranked.map((r) => images[r.image].truth.map((t) => rotatedIoU(images[r.image].detections[r.index], t)));
  const perThreshold = COCO_THRESHOLDS.map((threshold) => {
    if (truths === 0) return ranked.length === 0 ? 1 : 0;
    const taken = images.map((im) => new Uint8Array(im.truth.length));
    const precision: number[] = [];
    const recall: number[] = [];
    let tp = 0;
    ranked.forEach((r, k) => {
      let best = -1;
      ious[k].forEach((iou, t) => {
        if (iou >= threshold && !taken[r.image][t] && (best < 0 || iou > ious[k][best])) best = t;
      });
      if (best >= 0) {
        taken[r.image][best] = 1;
        tp++;
      }
      precision.push(tp / (k + 1));
      recall.push(tp / truths);
    });
    for (let k = precision.length - 2; k >= 0; k--) precision[k] = Math.max(precision[k], precision[k + 1]);
    let total = 0;
    let k = 0;
    for (let step = 0; step <= 100; step++) {
      const r = step / 100;
      while (k < recall.length && recall[k] < r) k++;
      total += k < recall.length ? precision[k] : 0;
    }
    return total / 101;
  });
  return {
    ap: perThreshold.reduce((a, b) => a + b, 0) / perThreshold.length,
    ap50: perThreshold[0],
    ap75: perThreshold[COCO_THRESHOLDS.indexOf(0.75)],
    perThreshold,
    thresholds: [...COCO_THRESHOLDS],
    truths,
    detections: ranked.length,
  };
}
