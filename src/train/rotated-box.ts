// CenterUNet's ground truth (papers/centerunet-thesis.txt Sec. 4.3.2–4.4, SPEC.md "CenterUNet"), pure TypeScript: the
// minimum-area rotated rectangle of each instance mask, and CenterNet's training targets on the output grid (stride s):
// a heatmap of Gaussians at the truncated centres with CornerNet's radius, and at each centre the rectangle's long and
// short side, the centre's sub-cell offset and the long side's angle.
//
// Coordinates are continuous image coordinates: pixel (y, x) covers [x, x + 1) × [y, y + 1), so a mask's outline is
// made of pixel corners, a 10×10 square gives a 10×10 rectangle, and an output cell k covers input [s·k, s·(k + 1)).
// Angles are measured in these coordinates (y down): from the x axis towards the y axis, in [0, π).

export type Point = readonly [number, number];

export interface RotatedBox {
  /** Centre (x, y) in continuous image coordinates. */
  cx: number;
  cy: number;
  /** The long side (width) and the short side (height). */
  width: number;
  height: number;
  /** Angle of the long side to the x axis, in [0, π). */
  angle: number;
}

const cross = (o: Point, a: Point, b: Point) => (a[0] - o[0]) * (b[1] - o[1]) - (a[1] - o[1]) * (b[0] - o[0]);

/** The convex hull of `points` counter-clockwise (in x-right, y-up terms), without collinear points (Andrew's monotone chain). */
export function convexHull(points: readonly Point[]): Point[] {
  const sorted = [...points].sort((p, q) => p[0] - q[0] || p[1] - q[1]);
  if (sorted.length < 3) return sorted;
  const half = (list: Point[]) => {
    const out: Point[] = [];
    for (const p of list) {
      while (out.length >= 2 && cross(out[out.length - 2], out[out.length - 1], p) <= 0) out.pop();
      out.push(p);
    }
    out.pop();
    return out;
  };
  return [...half(sorted), ...half(sorted.reverse())];
}

/**
 * The minimum-area rectangle enclosing `points` (at least one). One side of it lies on an edge of the convex hull
 * (Freeman & Shapira), so each hull edge is tried as a caliper: the points are projected onto the edge direction and
 * its normal, and the extents give that rectangle. O(h²) for a hull of h vertices, a few hundred at most for a mask.
 */
export function minAreaRect(points: readonly Point[]): RotatedBox {
  if (points.length === 0) throw new Error('minAreaRect: no points');
  const hull = convexHull(points);
  if (hull.length === 1) return { cx: hull[0][0], cy: hull[0][1], width: 0, height: 0, angle: 0 };
  let best: { area: number; box: RotatedBox } | null = null;
  for (let i = 0; i < hull.length; i++) {
    const a = hull[i];
    const b = hull[(i + 1) % hull.length];
    const length = Math.hypot(b[0] - a[0], b[1] - a[1]);
    const u = [(b[0] - a[0]) / length, (b[1] - a[1]) / length];
    let [uMin, uMax, vMin, vMax] = [Infinity, -Infinity, Infinity, -Infinity];
    for (const p of hull) {
      const pu = p[0] * u[0] + p[1] * u[1];
      const pv = -p[0] * u[1] + p[1] * u[0];
      uMin = Math.min(uMin, pu);
      uMax = Math.max(uMax, pu);
      vMin = Math.min(vMin, pv);
      vMax = Math.max(vMax, pv);
    }
    const [du, dv] = [uMax - uMin, vMax - vMin];
    const area = du * dv;
    if (best && area >= best.area) continue;
    const [mu, mv] = [(uMin + uMax) / 2, (vMin + vMax) / 2];
    // The long side runs along u when du ≥ dv, else along the normal v = (−u_y, u_x).
    const long = du >= dv ? u : [-u[1], u[0]];
    best = {
      area,
      box: {
        cx: mu * u[0] - mv * u[1], cy: mu * u[1] + mv * u[0], width: Math.max(du, dv), height: Math.min(du, dv),
        angle: foldAngle(Math.atan2(long[1], long[0])),
      },
    };
  }
  return best!.box;
}

/** An undirected line's angle, any real number of radians, as RotatedBox has it: in [0, π). */
function foldAngle(angle: number): number {
  const folded = angle - Math.PI * Math.floor(angle / Math.PI);
  return folded >= Math.PI ? 0 : folded;
}

/**
 * The rectangle centred at (cx, cy) with a side of length |a| at `angle` (radians, any value) to the x axis and the
 * other of length |b|, in RotatedBox's form: the long side first, its angle in [0, π). A regression head's raw
 * sides and angle come in any order and sign; a side's sign does not move the corners (c ± a/2·u ± b/2·v).
 */
export function rotatedBox(cx: number, cy: number, a: number, b: number, angle: number): RotatedBox {
  const [u, v] = [Math.abs(a), Math.abs(b)];
  return { cx, cy, width: Math.max(u, v), height: Math.min(u, v), angle: foldAngle(u >= v ? angle : angle + Math.PI / 2) };
}

/** The outline points of each instance of `labels` [H, W] (ids > 0): the outer corners of each row's first and last pixel. */
function instanceOutlines(labels: Int32Array, height: number, width: number): Map<number, Point[]> {
  const outlines = new Map<number, Point[]>();
  for (let y = 0; y < height; y++) {
    const row = y * width;
    // Per id the first and last x of this row.
    const spans = new Map<number, [number, number]>();
    for (let x = 0; x < width; x++) {
      const id = labels[row + x];
      if (id <= 0) continue;
      const span = spans.get(id);
      if (span) span[1] = x;
      else spans.set(id, [x, x]);
    }
    for (const [id, [x0, x1]] of spans) {
      let list = outlines.get(id);
      if (!list) outlines.set(id, (list = []));
      list.push([x0, y], [x0, y + 1], [x1 + 1, y], [x1 + 1, y + 1]);
    }
  }
  return outlines;
}

/** The minimum-area rotated rectangle of every instance of `labels` [H, W] (0 background, < 0 unlabeled), by id. */
export function instanceBoxes(labels: Int32Array, height: number, width: number): Map<number, RotatedBox> {
  if (labels.length !== height * width) throw new Error(`instanceBoxes: ${labels.length} labels for a ${height}×${width} image`);
  const boxes = new Map<number, RotatedBox>();
  for (const [id, points] of instanceOutlines(labels, height, width)) boxes.set(id, minAreaRect(points));
  return boxes;
}

/**
 * CornerNet's Gaussian radius for a box of `height` × `width` as CenterNet computes it (min_overlap 0.7): the
 * smallest of the three radii at which a corner-shifted box still overlaps the true one by min_overlap, each as
 * CenterNet's code has it (without its quadratic formulas' 2a), truncated to an integer ≥ 0.
 */
export function gaussianRadius(height: number, width: number, minOverlap = 0.7): number {
  const b1 = height + width;
  const c1 = (width * height * (1 - minOverlap)) / (1 + minOverlap);
  const r1 = (b1 + Math.sqrt(b1 * b1 - 4 * c1)) / 2;
  const b2 = 2 * (height + width);
  const c2 = (1 - minOverlap) * width * height;
  const r2 = (b2 + Math.sqrt(b2 * b2 - 16 * c2)) / 2;
  const a3 = 4 * minOverlap;
  const b3 = -2 * minOverlap * (height + width);
  const c3 = (minOverlap - 1) * width * height;
  const r3 = (b3 + Math.sqrt(b3 * b3 - 4 * a3 * c3)) / 2;
  return Math.max(0, Math.trunc(Math.min(r1, r2, r3)));
}

/**
 * Draws CenterNet's Gaussian of radius r (σ = (2r + 1)/6, window ±r cells, clipped to the map) centred on cell
 * (cy, cx) into `heatmap` [h, w] by elementwise max: CenterNet's draw_umich_gaussian.
 */
export function drawGaussian(heatmap: Float32Array, h: number, w: number, cy: number, cx: number, radius: number): void {
  const sigma = (2 * radius + 1) / 6;
  for (let dy = Math.max(-radius, -cy); dy <= Math.min(radius, h - 1 - cy); dy++) {
    for (let dx = Math.max(-radius, -cx); dx <= Math.min(radius, w - 1 - cx); dx++) {
      const v = Math.exp(-(dx * dx + dy * dy) / (2 * sigma * sigma));
      const i = (cy + dy) * w + cx + dx;
      if (v > heatmap[i]) heatmap[i] = v;
    }
  }
}

/** CenterNet's targets of one crop on its output grid of ⌈H/s⌉ × ⌈W/s⌉ cells. */
export interface CenterNetTargets {
  /** [h, w]: Gaussians at the centres, 1 exactly at each centre cell. */
  heatmap: Float32Array;
  /**
   * [5, h, w] at the centre cells (0 elsewhere): the rectangle's long and short side in cells (pixels / s), the
   * centre's offset within its cell in [0, 1) (x, y), the angle in radians.
   */
  regression: Float32Array;
  /** [h, w]: 1 at the centre cells. */
  centres: Float32Array;
  /** [h, w]: 0 where a cell holds an unlabeled pixel (label < 0), else 1. */
  valid: Float32Array;
  /** Centre cells (instances whose centres share a cell count once; the later id's regression wins there). */
  count: number;
}

/**
 * CenterNet's targets of instance labels [H, W] at output stride `stride`: per instance the minimum-area rotated
 * rectangle of its mask, its centre c = (cx, cy)/s truncated to the cell ⌊c⌋, a Gaussian there of CornerNet's radius
 * for the rectangle's sides in cells, and the regression targets at ⌊c⌋.
 */
export function centerNetTargets(labels: Int32Array, height: number, width: number, stride: number, minOverlap = 0.7): CenterNetTargets {
  const [h, w] = [Math.ceil(height / stride), Math.ceil(width / stride)];
  const cells = h * w;
  const t: CenterNetTargets = {
    heatmap: new Float32Array(cells), regression: new Float32Array(5 * cells), centres: new Float32Array(cells),
    valid: new Float32Array(cells).fill(1), count: 0,
  };
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) if (labels[y * width + x] < 0) t.valid[Math.floor(y / stride) * w + Math.floor(x / stride)] = 0;
  }
  const boxes = [...instanceBoxes(labels, height, width)].sort(([a], [b]) => a - b);
  for (const [, box] of boxes) {
    const [gx, gy] = [box.cx / stride, box.cy / stride];
    const [ix, iy] = [Math.min(w - 1, Math.max(0, Math.floor(gx))), Math.min(h - 1, Math.max(0, Math.floor(gy)))];
    const [bw, bh] = [box.width / stride, box.height / stride];
    drawGaussian(t.heatmap, h, w, iy, ix, gaussianRadius(bh, bw, minOverlap));
    const cell = iy * w + ix;
    [bw, bh, gx - ix, gy - iy, box.angle].forEach((v, c) => (t.regression[c * cells + cell] = v));
    t.centres[cell] = 1;
  }
  t.count = t.centres.reduce((a, b) => a + b, 0);
  return t;
}
