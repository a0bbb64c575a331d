// Rotated-box IoU and COCO AP (src/train/box-ap.ts) on cases worked out by hand in the comments.
import { describe, expect, it } from 'vitest';
import { boxCorners, rotatedBoxAP, rotatedIoU } from '../src/train/box-ap.ts';
import type { RotatedBox } from '../src/train/rotated-box.ts';

const box = (cx: number, cy: number, width: number, height: number, angle = 0): RotatedBox => ({ cx, cy, width, height, angle });

describe('rotatedIoU', () => {
  it('hand cases: identical, shifted, rotated 45°, disjoint, contained', () => {
    expect(rotatedIoU(box(5, 5, 4, 2), box(5, 5, 4, 2))).toBeCloseTo(1, 12);
    // Unit squares half a side apart: intersection 0.5, union 1.5.
    expect(rotatedIoU(box(0, 0, 1, 1), box(0.5, 0, 1, 1))).toBeCloseTo(1 / 3, 12);
    // A 2×2 square and the same square turned 45° about its centre: the intersection is a regular octagon of area
    // 8(√2 − 1), the union 8 − 8(√2 − 1): IoU (√2 − 1)/(2 − √2) = √2/2.
    expect(rotatedIoU(box(3, 3, 2, 2), box(3, 3, 2, 2, Math.PI / 4))).toBeCloseTo(Math.SQRT1_2, 12);
    expect(rotatedIoU(box(0, 0, 2, 1), box(10, 0, 2, 1))).toBe(0);
    // A 2×1 box inside a 4×4 one, rotated: 2/16.
    expect(rotatedIoU(box(0, 0, 4, 4), box(0.3, -0.2, 2, 1, 1.1))).toBeCloseTo(2 / 16, 12);
    // A 4×2 box at angle θ and at θ + π is the same rectangle; at θ + π/2 with the sides swapped too.
    expect(rotatedIoU(box(1, 2, 4, 2, 0.3), box(1, 2, 4, 2, 0.3 + Math.PI))).toBeCloseTo(1, 12);
    expect(rotatedIoU(box(1, 2, 4, 2, 0.3), box(1, 2, 2, 4, 0.3 + Math.PI / 2))).toBeCloseTo(1, 12);
    expect(rotatedIoU(box(0, 0, 0, 1), box(0, 0, 1, 1))).toBe(0);
  });

  it('corners: the long side along the angle', () => {
    const c = boxCorners(box(0, 0, 4, 2, Math.PI / 2));
    const xs = c.map((p) => p[0]);
    const ys = c.map((p) => p[1]);
    expect(Math.max(...xs) - Math.min(...xs)).toBeCloseTo(2, 12);
    expect(Math.max(...ys) - Math.min(...ys)).toBeCloseTo(4, 12);
  });
});

describe('rotatedBoxAP', () => {
  const a = box(10, 10, 6, 4);
  const b = box(30, 10, 6, 4, 0.5);

  it('a hand case: a hit, a false positive, a hit', () => {
    // Scores 0.9 (hits a), 0.8 (far from both), 0.7 (hits b): precision 1, 1/2, 2/3 at recall 1/2, 1/2, 1. Made
    // monotone: 1 up to recall 1/2, 2/3 above. At the 101 recall points 0..0.5 (51 points) 1, 0.51..1 (50) 2/3:
    // AP (51 + 50·2/3)/101 at every threshold, as the hits are exact.
    const r = rotatedBoxAP([{
      truth: [a, b],
      detections: [{ ...a, score: 0.9 }, { ...box(60, 60, 3, 3), score: 0.8 }, { ...b, score: 0.7 }],
    }]);
    const expected = (51 + (50 * 2) / 3) / 101;
    expect(r.perThreshold.every((v) => Math.abs(v - expected) < 1e-12)).toBe(true);
    expect(r.ap).toBeCloseTo(expected, 12);
    expect([r.truths, r.detections]).toEqual([2, 3]);
  });

  it('IoU decides per threshold: a detection of IoU 0.6 counts at 0.5, 0.55 and 0.6 only', () => {
    // A 10×10 box shifted by 2.5 along x: intersection 75, union 125, IoU 0.6 (hits at 0.5, 0.55, 0.6).
    const t = box(0, 0, 10, 10);
    const r = rotatedBoxAP([{ truth: [t], detections: [{ ...box(2.5, 0, 10, 10), score: 0.5 }] }]);
    expect(r.perThreshold).toEqual([1, 1, 1, 0, 0, 0, 0, 0, 0, 0]);
    expect(r.ap50).toBe(1);
    expect(r.ap75).toBe(0);
    expect(r.ap).toBeCloseTo(0.3, 12);
  });

  it('detections match the truths of their own image only, each truth once, across images by score', () => {
    // Image 0 holds a, image 1 holds b. A duplicate of a (score 0.95) after the first hit is a false positive; the
    // detection of b placed in image 0 (score 0.9) is one too. Ranked: hit (p 1, r 1/2), FP (1/2), FP (1/3), hit in
    // image 1 (2/4 at r 1): monotone 1 to r 1/2, 1/2 above: AP (51 + 50/2)/101.
    const r = rotatedBoxAP([
      { truth: [a], detections: [{ ...a, score: 0.99 }, { ...a, score: 0.95 }, { ...b, score: 0.9 }] },
      { truth: [b], detections: [{ ...b, score: 0.5 }] },
    ]);
    expect(r.ap50).toBeCloseTo((51 + 25) / 101, 12);
  });

  it('no truths: 1 without detections, 0 with any; a NaN score is named', () => {
    expect(rotatedBoxAP([{ truth: [], detections: [] }]).ap).toBe(1);
    expect(rotatedBoxAP([{ truth: [], detections: [{ ...a, score: 0.3 }] }]).ap).toBe(0);
    expect(rotatedBoxAP([{ truth: [a], detections: [] }]).ap).toBe(0);
    expect(() => rotatedBoxAP([{ truth: [a], detections: [{ ...a, score: NaN }] }])).toThrow('rotatedBoxAP: detection 0 of image 0 has score NaN');
  });
});
