// Per-image intensity normalization as StarDist and EmbedSeg do it (csbdeep's normalize): per channel,
// (x − p_low) / (p_high − p_low) with the channel's p_low-th and p_high-th percentiles. Pure TypeScript.
import type { ImageVolume } from './volume.ts';

/**
 * The q-th percentile (0..100) of `values`, exact, with NumPy's default 'linear' interpolation between the two
 * neighbouring order statistics: rank r = q/100·(n − 1), value = v⌊r⌋ + (r − ⌊r⌋)·(v⌊r⌋+1 − v⌊r⌋). `values` is
 * reordered in place (quickselect, O(n) expected). Several percentiles in increasing order reuse the partitions.
 */
export function percentiles(values: Float32Array, qs: readonly number[]): number[] {
  const n = values.length;
  if (n === 0) throw new Error('percentiles: no values');
  let from = 0;
  return qs.map((q, i) => {
    if (!(q >= 0 && q <= 100)) throw new Error(`percentiles: q must be in [0, 100], got ${q}`);
    if (i > 0 && q < qs[i - 1]) throw new Error(`percentiles: qs must be increasing, got [${qs.join(', ')}]`);
    const rank = (q / 100) * (n - 1);
    const k = Math.floor(rank);
    // Everything left of a selected index is ≤ it, so the next (larger) rank only searches to the right.
    select(values, k, from, n - 1);
    from = k;
    const low = values[k];
    if (k + 1 >= n || rank === k) return low;
    let next = Infinity;
    for (let j = k + 1; j < n; j++) if (values[j] < next) next = values[j];
    return low + (rank - k) * (next - low);
  });
}

/** Reorders a[left..right] so that a[k] is the value sorted order puts there, smaller ones before it, larger after. */
function select(a: Float32Array, k: number, left: number, right: number): void {
  // A fixed-seed LCG picks pivots: expected linear time on any input, and reproducible.
  let state = 0x9e3779b9;
  while (right > left) {
    state = (Math.imul(state, 1664525) + 1013904223) >>> 0;
    const pivot = a[left + (state % (right - left + 1))];
    // Three-way partition: [left, lt) < pivot, [lt, gt] = pivot, (gt, right] > pivot.
    let lt = left;
    let gt = right;
    let i = left;
    while (i <= gt) {
      const v = a[i];
      if (v < pivot) {
        a[i++] = a[lt];
        a[lt++] = v;
      } else if (v > pivot) {
        a[i] = a[gt];
        a[gt--] = v;
      } else i++;
    }
    if (k < lt) right = lt - 1;
    else if (k > gt) left = gt + 1;
    else return;
  }
}

export interface NormalizeOptions {
  /** Clamp the result to [0, 1] (default false, as StarDist and EmbedSeg). */
  clip?: boolean;
}

/**
 * Per channel: (x − p_low) / (p_high − p_low) with the exact percentiles of that channel (see percentiles). NaN and
 * infinite values are first replaced by the channel's lowest finite value (so they count as its darkest pixels in the
 * percentiles); a channel with no finite value is an error. A constant channel (p_high = p_low) becomes x − p_low.
 * Returns a new volume with the same shape and spacing.
 */
export function normalizePercentile(image: ImageVolume, pLow = 1, pHigh = 99.8, options: NormalizeOptions = {}): ImageVolume {
  if (!(pLow >= 0 && pLow < pHigh && pHigh <= 100)) throw new Error(`normalizePercentile: need 0 ≤ pLow < pHigh ≤ 100, got ${pLow} and ${pHigh}`);
  const channels = image.shape[0];
  const size = image.data.length / channels;
  if (!Number.isInteger(size) || image.shape.reduce((a, b) => a * b, 1) !== image.data.length) {
    throw new Error(`normalizePercentile: ${image.data.length} values do not fill shape [${image.shape.join(', ')}]`);
  }
  const out = new Float32Array(image.data.length);
  const scratch = new Float32Array(size);
  for (let c = 0; c < channels; c++) {
    const channel = image.data.subarray(c * size, (c + 1) * size);
    let lowest = Infinity;
    for (let i = 0; i < size; i++) if (Number.isFinite(channel[i]) && channel[i] < lowest) lowest = channel[i];
    if (lowest === Infinity) throw new Error(`normalizePercentile: channel ${c} has no finite values`);
    const finite = (v: number) => (Number.isFinite(v) ? v : lowest);
    for (let i = 0; i < size; i++) scratch[i] = finite(channel[i]);
    const [lo, hi] = percentiles(scratch, [pLow, pHigh]);
    const scale = hi > lo ? 1 / (hi - lo) : 1;
    const target = out.subarray(c * size, (c + 1) * size);
    for (let i = 0; i < size; i++) {
      const v = (finite(channel[i]) - lo) * scale;
      target[i] = options.clip ? Math.min(1, Math.max(0, v)) : v;
    }
  }
  return { data: out, shape: [...image.shape], spacing: [...image.spacing] };
}
