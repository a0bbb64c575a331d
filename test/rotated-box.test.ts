// CenterUNet's ground truth (src/train/rotated-box.ts): the minimum-area rectangle against a brute-force search over
// angles on random point sets and masks, hand cases, CornerNet's radius at SPEC.md's examples, and the heatmap and
// regression targets against a float64 reference written from their definitions.
import { describe, expect, it } from 'vitest';
import {
  centerNetTargets, convexHull, gaussianRadius, instanceBoxes, minAreaRect, rotatedBox, type Point, type RotatedBox,
} from '../src/train/rotated-box.ts';
import { syntheticBlobs } from '../src/train/synthetic.ts';
import { rng } from './support/check.ts';

/** The smallest enclosing rectangle's area over 20000 angles in [0, π/2) (an upper bound within ~1e-4 relative). */
function bruteForceArea(points: readonly Point[]): number {
  let best = Infinity;
  const steps = 20000;
  for (let k = 0; k < steps; k++) {
    const t = (k / steps) * (Math.PI / 2);
    const [c, s] = [Math.cos(t), Math.sin(t)];
    let [uMin, uMax, vMin, vMax] = [Infinity, -Infinity, Infinity, -Infinity];
    for (const [x, y] of points) {
      const u = x * c + y * s;
      const v = -x * s + y * c;
      [uMin, uMax, vMin, vMax] = [Math.min(uMin, u), Math.max(uMax, u), Math.min(vMin, v), Math.max(vMax, v)];
    }
    best = Math.min(best, (uMax - uMin) * (vMax - vMin));
  }
  return best;
}

/** Every point lies inside the box (within `tol`), the sides are ordered and the angle in [0, π). */
function expectEncloses(box: RotatedBox, points: readonly Point[], tol = 1e-9): void {
  expect(box.width).toBeGreaterThanOrEqual(box.height);
  expect(box.angle).toBeGreaterThanOrEqual(0);
  expect(box.angle).toBeLessThan(Math.PI);
  const [c, s] = [Math.cos(box.angle), Math.sin(box.angle)];
  for (const [x, y] of points) {
    const [dx, dy] = [x - box.cx, y - box.cy];
    expect(Math.abs(dx * c + dy * s)).toBeLessThanOrEqual(box.width / 2 + tol);
    expect(Math.abs(-dx * s + dy * c)).toBeLessThanOrEqual(box.height / 2 + tol);
  }
}

describe('minAreaRect', () => {
  it('hand cases: an axis-aligned mask, a vertical bar, a single pixel, a 45° diamond', () => {
    const square = instanceBoxes(Int32Array.from({ length: 100 }, () => 1), 10, 10).get(1)!;
    expect(square).toMatchObject({ cx: 5, cy: 5, width: 10, height: 10 });
    // A bar 3 wide and 8 tall at x 2..4, y 1..8 of a 10×10 image: long side along y.
    const bar = new Int32Array(100);
    for (let y = 1; y <= 8; y++) for (let x = 2; x <= 4; x++) bar[y * 10 + x] = 7;
    const box = instanceBoxes(bar, 10, 10).get(7)!;
    expect(box.cx).toBeCloseTo(3.5, 12);
    expect(box.cy).toBeCloseTo(5, 12);
    expect(box.width).toBeCloseTo(8, 12);
    expect(box.height).toBeCloseTo(3, 12);
    expect(box.angle).toBeCloseTo(Math.PI / 2, 12);
    expect(instanceBoxes(Int32Array.of(0, 0, 0, 3), 2, 2).get(3)).toMatchObject({ cx: 1.5, cy: 1.5, width: 1, height: 1 });
    // A thin rectangle along the diagonal y = x (y down): angle π/4.
    const diamond: Point[] = [[0, 0], [10, 10], [9, 11], [-1, 1]];
    const d = minAreaRect(diamond);
    expect(d.angle).toBeCloseTo(Math.PI / 4, 12);
    expect(d.width).toBeCloseTo(Math.hypot(10, 10), 12);
    expect(d.height).toBeCloseTo(Math.hypot(1, 1), 12);
    expect(convexHull([[0, 0], [2, 0], [1, 0], [2, 2], [0, 2], [1, 1]])).toHaveLength(4);
  });

  it('equals a brute-force search over angles on random point sets', () => {
    const rand = rng(17);
    for (let trial = 0; trial < 40; trial++) {
      const n = 3 + Math.floor(rand() * 40);
      const points: Point[] = Array.from({ length: n }, () => [rand() * 50 - 10, rand() * 20 + 5] as Point);
      const box = minAreaRect(points);
      expectEncloses(box, points, 1e-9);
      const brute = bruteForceArea(points);
      expect(box.width * box.height).toBeLessThanOrEqual(brute * (1 + 1e-12));
      expect(box.width * box.height).toBeGreaterThan(brute * (1 - 1e-3));
    }
  });

  it('equals a brute-force search over angles on the masks of synthetic blobs', () => {
    const blobs = syntheticBlobs({ height: 96, width: 96, blobs: 12, radius: [4, 14], seed: 5 });
    const boxes = instanceBoxes(blobs.labels, 96, 96);
    expect(boxes.size).toBe(blobs.count);
    for (const [id, box] of boxes) {
      // Every pixel's four corners.
      const corners: Point[] = [];
      blobs.labels.forEach((l, i) => {
        if (l !== id) return;
        const [y, x] = [Math.floor(i / 96), i % 96];
        corners.push([x, y], [x + 1, y], [x, y + 1], [x + 1, y + 1]);
      });
      expectEncloses(box, corners, 1e-9);
      const brute = bruteForceArea(corners);
      expect(box.width * box.height).toBeLessThanOrEqual(brute * (1 + 1e-12));
      expect(box.width * box.height).toBeGreaterThan(brute * (1 - 1e-3));
    }
  });
});

/** The four corners of a rectangle of sides a (at `angle` to the x axis) and b centred at (cx, cy). */
function corners(cx: number, cy: number, a: number, b: number, angle: number): Point[] {
  const [c, s] = [Math.cos(angle), Math.sin(angle)];
  const out: Point[] = [];
  for (const i of [-0.5, 0.5]) for (const j of [-0.5, 0.5]) out.push([cx + i * a * c - j * b * s, cy + i * a * s + j * b * c]);
  return out;
}

describe('rotatedBox', () => {
  it('puts raw sides and angles of any order, sign and range into canonical form with the same corners', () => {
    expect(rotatedBox(1, 2, 8, 20, 0.3)).toEqual({ cx: 1, cy: 2, width: 20, height: 8, angle: expect.closeTo(0.3 + Math.PI / 2, 12) });
    expect(rotatedBox(0, 0, -5, 3, -0.5)).toEqual({ cx: 0, cy: 0, width: 5, height: 3, angle: expect.closeTo(Math.PI - 0.5, 12) });
    expect(rotatedBox(0, 0, 4, 4, 3 * Math.PI)).toMatchObject({ width: 4, height: 4, angle: expect.closeTo(0, 12) });
    const random = rng(7);
    for (let k = 0; k < 200; k++) {
      const [a, b, angle] = [(random() - 0.3) * 30, (random() - 0.3) * 30, (random() - 0.5) * 20];
      const box = rotatedBox(3, -4, a, b, angle);
      expectEncloses(box, corners(3, -4, a, b, angle), 1e-9);
      const given = corners(3, -4, a, b, angle);
      for (const p of corners(box.cx, box.cy, box.width, box.height, box.angle)) {
        expect(Math.min(...given.map((q) => Math.hypot(p[0] - q[0], p[1] - q[1])))).toBeLessThan(1e-9);
      }
    }
  });
});

describe('centerNetTargets', () => {
  it("CornerNet's radius at min_overlap 0.7: 10×10 → 2, 20×30 → 6", () => {
    expect(gaussianRadius(10, 10)).toBe(2);
    expect(gaussianRadius(20, 30)).toBe(6);
    expect(gaussianRadius(0.5, 0.5)).toBe(0);
  });

  it('heatmap, regression, centre and validity maps against a float64 reference', () => {
    const [H, W, s] = [70, 90, 4];
    const blobs = syntheticBlobs({ height: H, width: W, blobs: 14, radius: [3, 12], seed: 9 });
    const labels = Int32Array.from(blobs.labels);
    for (let x = 0; x < 10; x++) labels[65 * W + x] = -1;
    const t = centerNetTargets(labels, H, W, s);
    const [h, w] = [Math.ceil(H / s), Math.ceil(W / s)];
    const boxes = [...instanceBoxes(labels, H, W)].sort(([a], [b]) => a - b).map(([, b]) => b);
    const heat = new Float64Array(h * w);
    const reg = new Float64Array(5 * h * w);
    const centres = new Float64Array(h * w);
    for (const b of boxes) {
      const [cx, cy] = [Math.floor(b.cx / s), Math.floor(b.cy / s)];
      const r = gaussianRadius(b.height / s, b.width / s);
      const sigma = (2 * r + 1) / 6;
      for (let y = 0; y < h; y++) {
        for (let x = 0; x < w; x++) {
          if (Math.abs(x - cx) > r || Math.abs(y - cy) > r) continue;
          heat[y * w + x] = Math.max(heat[y * w + x], Math.exp(-((x - cx) ** 2 + (y - cy) ** 2) / (2 * sigma * sigma)));
        }
      }
      const cell = cy * w + cx;
      centres[cell] = 1;
      [b.width / s, b.height / s, b.cx / s - cx, b.cy / s - cy, b.angle].forEach((v, c) => (reg[c * h * w + cell] = v));
    }
    let worst = 0;
    heat.forEach((v, i) => (worst = Math.max(worst, Math.abs(v - t.heatmap[i]))));
    expect(worst).toBeLessThan(1e-7);
    reg.forEach((v, i) => expect(t.regression[i]).toBeCloseTo(v, 5));
    expect(Array.from(t.centres)).toEqual(Array.from(centres));
    expect(t.count).toBe(centres.reduce((a, b) => a + b, 0));
    expect(t.count).toBeGreaterThan(5);
    // Exactly 1 at the centres and below 1 elsewhere.
    t.heatmap.forEach((v, i) => expect(v === 1).toBe(t.centres[i] === 1));
    const invalid = [...t.valid.keys()].filter((i) => t.valid[i] === 0);
    expect(invalid).toEqual([16 * w, 16 * w + 1, 16 * w + 2]);
    for (let c = 2; c < 4; c++) for (let i = 0; i < h * w; i++) expect(t.regression[c * h * w + i]).toBeLessThanOrEqual(1);
  });
});
