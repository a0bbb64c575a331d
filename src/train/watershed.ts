// Marker-controlled watershed by priority flood (Meyer's algorithm, as scikit-image's `watershed`), pure TypeScript:
// every marker pixel seeds its label; the pixel of lowest elevation on the flooding front (first in, first out among
// equal ones) is taken next and gives its label to its unlabeled neighbours inside the mask. CenterUNet floods
// 1 − segmentation probability from its detected centres (papers/centerunet-thesis.txt Sec. 4.5).

/** A binary min-heap of pixels keyed by (elevation, push order). */
class FloodQueue {
  private keys: Float64Array;
  private order: Float64Array;
  private pixels: Int32Array;
  private size = 0;
  private pushes = 0;

  constructor(capacity: number) {
    this.keys = new Float64Array(Math.max(1, capacity));
    this.order = new Float64Array(Math.max(1, capacity));
    this.pixels = new Int32Array(Math.max(1, capacity));
  }

  get length(): number {
    return this.size;
  }

  private less(i: number, j: number): boolean {
    return this.keys[i] < this.keys[j] || (this.keys[i] === this.keys[j] && this.order[i] < this.order[j]);
  }

  private swap(i: number, j: number): void {
    [this.keys[i], this.keys[j]] = [this.keys[j], this.keys[i]];
    [this.order[i], this.order[j]] = [this.order[j], this.order[i]];
    [this.pixels[i], this.pixels[j]] = [this.pixels[j], this.pixels[i]];
  }

  push(pixel: number, key: number): void {
    let i = this.size++;
    this.keys[i] = key;
    this.order[i] = this.pushes++;
    this.pixels[i] = pixel;
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if (!this.less(i, parent)) break;
      this.swap(i, parent);
      i = parent;
    }
  }

  pop(): number {
    const top = this.pixels[0];
    this.size--;
    if (this.size > 0) {
      this.keys[0] = this.keys[this.size];
      this.order[0] = this.order[this.size];
      this.pixels[0] = this.pixels[this.size];
      let i = 0;
      for (;;) {
        const [l, r] = [2 * i + 1, 2 * i + 2];
        let m = i;
        if (l < this.size && this.less(l, m)) m = l;
        if (r < this.size && this.less(r, m)) m = r;
        if (m === i) break;
        this.swap(i, m);
        i = m;
      }
    }
    return top;
  }
}

/**
 * Labels [H, W] flooded from `markers` [H, W] (> 0: the label a pixel starts with; 0: unlabeled) over `elevation`
 * [H, W] (lower floods first), through 4-connected neighbours, only where `mask` [H, W] is nonzero (everywhere when
 * null). Markers outside the mask are dropped; masked pixels no marker reaches stay 0.
 */
export function markerWatershed(
  elevation: ArrayLike<number>, markers: ArrayLike<number>, mask: ArrayLike<number> | null, height: number, width: number,
): Int32Array {
  const n = height * width;
  for (const [name, a] of [['elevation', elevation], ['markers', markers], ['mask', mask]] as const) {
    if (a && a.length !== n) throw new Error(`markerWatershed: ${name} has ${a.length} pixels, the image ${height}×${width} has ${n}`);
  }
  const labels = new Int32Array(n);
  const queue = new FloodQueue(n);
  for (let i = 0; i < n; i++) {
    if (markers[i] > 0 && (!mask || mask[i])) {
      labels[i] = markers[i];
      queue.push(i, elevation[i]);
    }
  }
  const visit = (j: number, label: number) => {
    if (labels[j] !== 0 || (mask && !mask[j])) return;
    labels[j] = label;
    queue.push(j, elevation[j]);
  };
  while (queue.length > 0) {
    const i = queue.pop();
    const [y, x] = [Math.floor(i / width), i % width];
    const label = labels[i];
    if (y > 0) visit(i - width, label);
    if (y < height - 1) visit(i + width, label);
    if (x > 0) visit(i - 1, label);
    if (x < width - 1) visit(i + 1, label);
  }
  return labels;
}
