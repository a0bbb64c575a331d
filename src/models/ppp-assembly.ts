// PatchPerPix's instance assembly (the paper's Sec. 2.1): from a predicted shape patch per pixel to instances, in six
// steps. 1. consensus: for every pair of pixels within the patch reach, the mean vote of the patches holding both;
// 2. score each patch by its agreement with the consensus and rank; 3. cover: walk the ranking keeping the patches
// that cover foreground nobody covered yet, then thin them by greedy set cover; 4. a graph between the kept patches,
// each edge weighted by the mean consensus of their pixel pairs; 5. partition it (connected components of the edges
// above a threshold, or the mutex watershed); 6. paint each part's patches, where they are > TH and foreground.
//
// Every pixel's full patch is too big to keep (41×41 = 1681 values per pixel on BBBC010), so the assembly works on a
// sampling grid with stride s per axis: patches centre on grid pixels and are sampled at offsets k·s, k ∈ [−h, h],
// h = ⌊((P − 1)/2) / s⌋, so that every sampled pixel is itself a grid pixel and the consensus lives on the grid:
// (4h + 1)^d pair offsets per grid pixel, half of them stored (src/kernels/consensus.ts). Steps 1, 2 and 4 run on
// the GPU; 3, 5 and 6 here, in O(patches × K) and O(kept patches × P^d), never O(pixels × P^d). Only painting
// (6) reads full-resolution patches, of the kept patches only.
import type { Tensor } from '../engine/tensor.ts';
import { consensus, patchAffinities, patchScores, type SampledPatches } from '../kernels/consensus.ts';
import type { Labels } from '../train/layers.ts';
import { connectedComponents, mutexWatershed } from './graph-partition.ts';

export interface AssemblyConfig {
  /** P per spatial axis, odd ([y, x] or [z, y, x]). */
  patchSize: number[];
  /** s per axis, ≥ 1 (defaultSampleStride gives one that assembles a BBBC010 image in seconds). */
  sampleStride: number[];
  /** TH in (0.5, 1): a patch value above it means "in the centre's instance", below 1 − TH "not" (paper: 0.6 DSB, 0.9 worms). */
  threshold: number;
  partition: 'components' | 'mutex';
  /** components: merge along the edges with affinity > this. */
  affinityThreshold: number;
  /** Instances smaller than this many pixels are dropped. */
  minSize: number;
}

export interface PatchEvidence {
  /** The image's spatial size. */
  size: number[];
  /** [(D), H, W] f32 on the GPU: 1 where the pixel is foreground with exactly one instance (patch centres, pairs), else 0. */
  single: Tensor;
  /** [(D), H, W] f32: 1 where the pixel is foreground (one or more instances): the mask painting keeps to. */
  foreground: Tensor;
  /**
   * [K, ...grid] f32 probabilities, grid = ⌈size / s⌉ per axis: at grid pixel g (pixel g·s) the patch values at
   * offsets k·s, k row-major over [−h, h]^d; only read where single is 1.
   */
  samples: Tensor;
  /**
   * Full-resolution patch probabilities [n · Π P] (row-major, centre = (P−1)/2) for the n patch centres given as pixel
   * coordinates [n · ndim]; called once, with the kept patches (not at all when no patch is kept).
   */
  patches(centres: Int32Array): Promise<Float32Array>;
}

/** The sampling grid of an image: sizes per spatial axis, outermost first. */
export interface SamplingGeometry {
  size: number[];
  patchSize: number[];
  stride: number[];
  /** h = ⌊((P − 1)/2) / s⌋: a patch is sampled at offsets k·s, k ∈ [−h, h]. */
  reach: number[];
  /** ⌈size / s⌉: grid pixel g is image pixel g·s. */
  grid: number[];
  /** K = Π(2h + 1) samples per patch. */
  samples: number;
}

/**
 * A stride per axis that keeps the assembly fast: about 6 samples either side of the centre in 2D (41×41 → s = 3,
 * K = 169, a BBBC010 image in about a second on lavapipe; 25×25 → s = 2), about 2 in 3D (9×9×9 → s = 2, K = 125;
 * 15×15×15 → s = 3). The consensus costs O(sites · K²) and keeps (4h + 1)^d / 2 values per site. A stride much
 * above the thinnest parts of the objects leaves parts without sites, which no patch then needs to cover.
 */
export function defaultSampleStride(patchSize: readonly number[]): number[] {
  const samplesEachSide = patchSize.length === 3 ? 2 : 6;
  return patchSize.map((p) => Math.max(1, Math.floor((p - 1) / 2 / samplesEachSide)));
}

const fmt = (xs: readonly number[]) => `[${xs.join(', ')}]`;
const product = (xs: readonly number[]) => xs.reduce((a, b) => a * b, 1);
const rowMajorStrides = (shape: readonly number[]) => shape.map((_, a) => product(shape.slice(a + 1)));

/** The sampling grid of an image of `size` under `config`, checking the config; errors name the field. */
export function samplingGeometry(size: readonly number[], config: AssemblyConfig, op = 'assemblePatches'): SamplingGeometry {
  const dims = size.length;
  if ((dims !== 2 && dims !== 3) || size.some((d) => !Number.isInteger(d) || d < 1)) {
    throw new Error(`${op}: size must be 2 or 3 positive integers ([(D,) H, W]), got ${JSON.stringify(size)}`);
  }
  const perAxis = (name: keyof AssemblyConfig, ok: (v: number) => boolean, what: string) => {
    const v = config[name];
    if (!Array.isArray(v) || v.length !== dims || !v.every((x) => Number.isInteger(x) && ok(x))) {
      throw new Error(`${op}: config.${name} must be ${dims} ${what} (one per spatial axis of the ${fmt(size)} image), got ${JSON.stringify(v)}`);
    }
    return [...v];
  };
  const patchSize = perAxis('patchSize', (p) => p >= 1 && p % 2 === 1, 'odd integers ≥ 1');
  const stride = perAxis('sampleStride', (s) => s >= 1, 'integers ≥ 1');
  if (!(config.threshold > 0.5 && config.threshold < 1)) throw new Error(`${op}: config.threshold must be in (0.5, 1), got ${config.threshold}`);
  if (config.partition !== 'components' && config.partition !== 'mutex') {
    throw new Error(`${op}: config.partition must be 'components' or 'mutex', got ${JSON.stringify(config.partition)}`);
  }
  if (!Number.isFinite(config.affinityThreshold)) throw new Error(`${op}: config.affinityThreshold must be a finite number, got ${config.affinityThreshold}`);
  if (!Number.isInteger(config.minSize) || config.minSize < 0) throw new Error(`${op}: config.minSize must be an integer ≥ 0, got ${config.minSize}`);
  const reach = patchSize.map((p, a) => Math.floor((p - 1) / 2 / stride[a]));
  const grid = size.map((d, a) => Math.ceil(d / stride[a]));
  return { size: [...size], patchSize, stride, reach, grid, samples: product(reach.map((h) => 2 * h + 1)) };
}

/** The sites of the grid: its pixels that are single foreground (`single` > ½ at pixel g·s). */
export interface Sites {
  /** Grid index (row-major) of each site, ascending. */
  list: Uint32Array;
  /** Per grid pixel its site index, −1 where it is not a site. */
  index: Int32Array;
}

export function gridSites(single: ArrayLike<number>, g: SamplingGeometry): Sites {
  const count = product(g.grid);
  const index = new Int32Array(count).fill(-1);
  const list: number[] = [];
  const imageStrides = rowMajorStrides(g.size);
  const coords = new Array<number>(g.grid.length).fill(0);
  for (let i = 0; i < count; i++) {
    let pixel = 0;
    for (let a = 0; a < coords.length; a++) pixel += coords[a] * g.stride[a] * imageStrides[a];
    if (single[pixel] > 0.5) {
      index[i] = list.length;
      list.push(i);
    }
    for (let a = coords.length - 1; a >= 0 && ++coords[a] === g.grid[a]; a--) coords[a] = 0;
  }
  return { list: Uint32Array.from(list), index };
}

/** Steps 1, 2 and 4 as the assembly calls them: on the GPU (assemblePatches) or in plain TypeScript (bench/ppp-assembly-cpu.ts). */
export interface AssemblySteps {
  /** Steps 1 and 2: per site the score of its patch and its cover bits [F, ⌈K/32⌉] (as patchScores returns them). */
  scores(): Promise<{ scores: Float32Array; cover: Uint32Array }>;
  /** Step 4: per edge (site indices [E · 2]) its affinity and how many pixel pairs that averages (as patchAffinities). */
  affinities(edges: Uint32Array): Promise<{ affinities: Float32Array; pairs: Uint32Array }>;
}

/**
 * PatchPerPix's instance assembly of `evidence`: instance labels of the image, plain where no two instances overlap,
 * else canonical layers (src/train/layers.ts). Ids 1..n follow each instance's first pixel (row-major), ties in the
 * order of the patch ranking. The evidence's tensors stay the caller's; everything created here is freed.
 */
export async function assemblePatches(evidence: PatchEvidence, config: AssemblyConfig): Promise<Labels> {
  const op = 'assemblePatches';
  const g = samplingGeometry(evidence.size, config);
  for (const name of ['single', 'foreground'] as const) {
    const t = evidence[name];
    if (t.dtype !== 'f32' || t.rank !== g.size.length || t.shape.some((d, a) => d !== g.size[a])) {
      throw new Error(`${op}: evidence.${name} must be f32 ${fmt(g.size)} (the image's size), got ${t.dtype} ${fmt(t.shape)}`);
    }
  }
  const samplesShape = [g.samples, ...g.grid];
  if (evidence.samples.dtype !== 'f32' || evidence.samples.shape.join() !== samplesShape.join()) {
    throw new Error(`${op}: evidence.samples must be f32 ${fmt(samplesShape)} (K = Π(2h + 1) for h = ${fmt(g.reach)}, then the grid ⌈size / s⌉), got ${evidence.samples.dtype} ${fmt(evidence.samples.shape)}`);
  }
  const e = evidence.samples.engine;
  const [single, foreground] = await Promise.all([e.read(evidence.single), e.read(evidence.foreground)]);
  const sites = gridSites(single, g);
  const scope = e.beginScope();
  try {
    const p: SampledPatches = {
      samples: evidence.samples, sites: e.tensor(sites.list, [sites.list.length], 'u32'),
      siteIndex: e.tensor(sites.index, g.grid, 'i32'), reach: g.reach, threshold: config.threshold,
    };
    let agreement: Tensor | null = null;
    const steps: AssemblySteps = {
      scores: async () => {
        agreement = consensus(p);
        const out = patchScores(p, agreement);
        return { scores: (await out.scores.data()) as Float32Array, cover: (await out.cover.data()) as Uint32Array };
      },
      affinities: async (edges) => {
        const out = patchAffinities(p, agreement!, e.tensor(edges, [edges.length / 2, 2], 'u32'));
        return { affinities: (await out.affinities.data()) as Float32Array, pairs: (await out.pairs.data()) as Uint32Array };
      },
    };
    return await assembleWith(g, sites, foreground, evidence.patches, steps, config);
  } finally {
    scope.end();
  }
}

/** Steps 3 to 6 around the given steps 1, 2 and 4 (shared by the GPU assembly and the plain TypeScript one). */
export async function assembleWith(
  g: SamplingGeometry, sites: Sites, foreground: ArrayLike<number>, patches: PatchEvidence['patches'], steps: AssemblySteps,
  config: AssemblyConfig,
): Promise<Labels> {
  const pixels = product(g.size);
  if (sites.list.length === 0) return new Int32Array(pixels);
  const { scores, cover } = await steps.scores();
  const kept = selectPatches(g, sites, scores, cover);
  if (kept.length === 0) return new Int32Array(pixels);
  const candidates = candidateEdges(g, sites, kept, cover);
  const edges = Uint32Array.from(candidates, (i) => kept[i]);
  const { affinities, pairs } = candidates.length > 0 ? await steps.affinities(edges) : { affinities: new Float32Array(0), pairs: new Uint32Array(0) };
  const graph = { a: [] as number[], b: [] as number[], weight: [] as number[] };
  for (let i = 0; i < pairs.length; i++) {
    if (pairs[i] === 0) continue;
    graph.a.push(candidates[2 * i]);
    graph.b.push(candidates[2 * i + 1]);
    graph.weight.push(affinities[i]);
  }
  const parts = config.partition === 'mutex' ? mutexWatershed(kept.length, graph) : connectedComponents(kept.length, graph, config.affinityThreshold);
  const centres = new Int32Array(kept.length * g.size.length);
  const gridStrides = rowMajorStrides(g.grid);
  kept.forEach((f, i) => g.grid.forEach((_, a) => (centres[i * g.size.length + a] = (Math.floor(sites.list[f] / gridStrides[a]) % g.grid[a]) * g.stride[a])));
  const values = await patches(centres);
  if (values.length !== kept.length * product(g.patchSize)) {
    throw new Error(`assemblePatches: evidence.patches returned ${values.length} values for ${kept.length} patches of ${fmt(g.patchSize)} (expected ${kept.length * product(g.patchSize)})`);
  }
  return paint(g, centres, parts, values, foreground, config);
}

/** Per sample k, the grid-index step from a patch centre to its sample k (valid where the sample lies in the grid). */
function sampleSteps(g: SamplingGeometry): Int32Array {
  const gridStrides = rowMajorStrides(g.grid);
  const widths = g.reach.map((h) => 2 * h + 1);
  return Int32Array.from({ length: g.samples }, (_, k) => {
    let step = 0;
    for (let a = g.reach.length - 1, rest = k; a >= 0; a--) {
      step += ((rest % widths[a]) - g.reach[a]) * gridStrides[a];
      rest = Math.floor(rest / widths[a]);
    }
    return step;
  });
}

/**
 * The samples that count towards a patch's cover, as bit masks like the cover's: those whose pixel has the patch's
 * full-resolution box reach s − 1 pixels beyond it per axis (|k|·s + s − 1 ≤ (P − 1)/2), so that painting a cover
 * reaches every pixel within s − 1 of a covered site, not only the sites.
 */
function innerSamples(g: SamplingGeometry): Uint32Array {
  const mask = new Uint32Array(Math.ceil(g.samples / 32));
  const widths = g.reach.map((h) => 2 * h + 1);
  for (let k = 0; k < g.samples; k++) {
    let inside = true;
    for (let a = g.reach.length - 1, rest = k; a >= 0; a--) {
      const r = (g.patchSize[a] - 1) / 2;
      inside &&= Math.abs((rest % widths[a]) - g.reach[a]) * g.stride[a] + Math.min(g.stride[a] - 1, r) <= r;
      rest = Math.floor(rest / widths[a]);
    }
    if (inside) mask[k >> 5] |= 1 << (k & 31);
  }
  return mask;
}

/**
 * Step 3: the patches kept (site indices, in ranking order). A patch covers the sites among its samples > TH that
 * innerSamples admits. Walking the ranking (score descending, ties by site), a patch is kept where it covers a site
 * no kept patch covers yet; then greedy set cover thins them: repeatedly the kept patch covering most still-uncovered
 * sites (lazily re-evaluated from a heap; ties by rank) until all are covered.
 */
function selectPatches(g: SamplingGeometry, sites: Sites, scores: Float32Array, cover: Uint32Array): number[] {
  const count = sites.list.length;
  const words = Math.ceil(g.samples / 32);
  const steps = sampleSteps(g);
  const centreBit = (g.samples - 1) / 2;
  const inner = innerSamples(g);
  const members = (f: number): number[] => {
    const out: number[] = [];
    for (let w = 0; w < words; w++) {
      for (let bits = cover[f * words + w] & inner[w]; bits !== 0; bits &= bits - 1) {
        const k = w * 32 + 31 - Math.clz32(bits & -bits);
        out.push(sites.index[sites.list[f] + steps[k]]);
      }
    }
    return out;
  };
  const ranking: number[] = [];
  for (let f = 0; f < count; f++) if ((cover[f * words + (centreBit >> 5)] >>> (centreBit & 31)) & 1) ranking.push(f);
  ranking.sort((a, b) => scores[b] - scores[a] || a - b);
  const covered = new Uint8Array(count);
  const walked: { f: number; members: number[] }[] = [];
  for (const f of ranking) {
    const m = members(f);
    if (!m.some((s) => covered[s] === 0)) continue;
    for (const s of m) covered[s] = 1;
    walked.push({ f, members: m });
  }
  // Lazy greedy: a patch's gain only shrinks, so a re-evaluated gain still at the top of the heap is the largest.
  const heap = new GainHeap();
  walked.forEach((w, rank) => heap.push(w.members.length, rank));
  const uncovered = covered;
  const chosen: number[] = [];
  while (heap.size > 0) {
    const { gain, rank } = heap.pop();
    const m = walked[rank].members;
    let now = 0;
    for (const s of m) now += uncovered[s];
    if (now === 0) continue;
    if (now < gain && heap.size > 0 && heap.beats(heap.top(), { gain: now, rank })) {
      heap.push(now, rank);
      continue;
    }
    for (const s of m) uncovered[s] = 0;
    chosen.push(rank);
  }
  return chosen.sort((a, b) => a - b).map((rank) => walked[rank].f);
}

/** A max-heap of (gain, rank): larger gain first, then smaller rank. */
class GainHeap {
  private items: { gain: number; rank: number }[] = [];

  get size(): number {
    return this.items.length;
  }

  beats(x: { gain: number; rank: number }, y: { gain: number; rank: number }): boolean {
    return x.gain > y.gain || (x.gain === y.gain && x.rank < y.rank);
  }

  top(): { gain: number; rank: number } {
    return this.items[0];
  }

  push(gain: number, rank: number): void {
    const items = this.items;
    items.push({ gain, rank });
    for (let i = items.length - 1; i > 0; ) {
      const parent = (i - 1) >> 1;
      if (!this.beats(items[i], items[parent])) break;
      [items[i], items[parent]] = [items[parent], items[i]];
      i = parent;
    }
  }

  pop(): { gain: number; rank: number } {
    const items = this.items;
    const top = items[0];
    const last = items.pop()!;
    if (items.length > 0) {
      items[0] = last;
      for (let i = 0; ; ) {
        const l = 2 * i + 1;
        const r = l + 1;
        let best = i;
        if (l < items.length && this.beats(items[l], items[best])) best = l;
        if (r < items.length && this.beats(items[r], items[best])) best = r;
        if (best === i) break;
        [items[i], items[best]] = [items[best], items[i]];
        i = best;
      }
    }
    return top;
  }
}

/**
 * Step 4's candidates: the pairs (i, j), i < j, of kept patches (indices into `kept`) whose sampled pixels > TH (their
 * cover bits) can pair within the consensus reach: bounding boxes at most 2h grid pixels apart per axis, which needs
 * centres at most 4h apart. [E · 2], ordered. Kept patches are bucketed in cells of 4h + 1 grid pixels, so only
 * neighbouring cells are compared. Pairs dropped here would have had no pixel pairs, hence no edge.
 */
function candidateEdges(g: SamplingGeometry, sites: Sites, kept: readonly number[], cover: Uint32Array): Int32Array {
  const dims = g.grid.length;
  const words = Math.ceil(g.samples / 32);
  const widths = g.reach.map((h) => 2 * h + 1);
  const gridStrides = rowMajorStrides(g.grid);
  const coords = kept.map((f) => g.grid.map((d, a) => Math.floor(sites.list[f] / gridStrides[a]) % d));
  // Per kept patch, per axis, the lowest and highest sample offset with its bit set (the centre's is always set).
  const boxes = kept.map((f) => {
    const lo = new Array<number>(dims).fill(Infinity);
    const hi = new Array<number>(dims).fill(-Infinity);
    for (let w = 0; w < words; w++) {
      for (let bits = cover[f * words + w]; bits !== 0; bits &= bits - 1) {
        for (let a = dims - 1, rest = w * 32 + 31 - Math.clz32(bits & -bits); a >= 0; a--) {
          const k = (rest % widths[a]) - g.reach[a];
          lo[a] = Math.min(lo[a], k);
          hi[a] = Math.max(hi[a], k);
          rest = Math.floor(rest / widths[a]);
        }
      }
    }
    return { lo, hi };
  });
  const cellSize = g.reach.map((h) => 4 * h + 1);
  const cellsPerAxis = g.grid.map((d, a) => Math.ceil(d / cellSize[a]));
  const cellOf = (c: readonly number[]) => c.reduce((i, x, a) => i * cellsPerAxis[a] + x, 0);
  const cells = new Map<number, number[]>();
  coords.forEach((c, i) => {
    const key = cellOf(c.map((x, a) => Math.floor(x / cellSize[a])));
    let list = cells.get(key);
    if (!list) cells.set(key, (list = []));
    list.push(i);
  });
  const canPair = (i: number, j: number) => coords[i].every((x, a) => {
    const gap = Math.max(coords[j][a] + boxes[j].lo[a] - (x + boxes[i].hi[a]), x + boxes[i].lo[a] - (coords[j][a] + boxes[j].hi[a]));
    return gap <= 2 * g.reach[a];
  });
  const neighbourhood = Array.from({ length: 3 ** dims }, (_, n) => Array.from({ length: dims }, (_, a) => (Math.floor(n / 3 ** (dims - 1 - a)) % 3) - 1));
  const out: number[] = [];
  const near: number[] = [];
  coords.forEach((c, i) => {
    near.length = 0;
    const cell = c.map((x, a) => Math.floor(x / cellSize[a]));
    for (const d of neighbourhood) {
      const n = cell.map((x, a) => x + d[a]);
      if (n.some((x, a) => x < 0 || x >= cellsPerAxis[a])) continue;
      for (const j of cells.get(cellOf(n)) ?? []) if (j > i && canPair(i, j)) near.push(j);
    }
    near.sort((a, b) => a - b);
    for (const j of near) out.push(i, j);
  });
  return Int32Array.from(out);
}

/**
 * Step 6: each part's instance is the pixels where one of its patches is > TH and the image is foreground (patches
 * of different parts may claim a pixel: overlaps). Instances under minSize pixels are dropped; ids 1..n follow each
 * instance's first pixel, ties in part order. Plain labels where nothing overlaps, else canonical layers.
 */
function paint(g: SamplingGeometry, centres: Int32Array, parts: Int32Array, values: Float32Array, foreground: ArrayLike<number>, config: AssemblyConfig): Labels {
  const dims = g.size.length;
  const size3 = [...(dims === 2 ? [1] : []), ...g.size];
  const patch3 = [...(dims === 2 ? [1] : []), ...g.patchSize];
  const patchVolume = product(g.patchSize);
  const pixels = product(g.size);
  const partCount = parts.reduce((m, p) => Math.max(m, p + 1), 0);
  const patchesOf: number[][] = Array.from({ length: partCount }, () => []);
  parts.forEach((p, i) => patchesOf[p].push(i));
  const stamp = new Int32Array(pixels).fill(-1);
  const instances: { first: number; part: number; pixels: number[] }[] = [];
  patchesOf.forEach((members, part) => {
    const claimed: number[] = [];
    for (const i of members) {
      const c = [...(dims === 2 ? [0] : []), ...centres.subarray(i * dims, (i + 1) * dims)];
      let v = i * patchVolume;
      for (let z = 0; z < patch3[0]; z++) {
        const pz = c[0] + z - (patch3[0] - 1) / 2;
        for (let y = 0; y < patch3[1]; y++) {
          const py = c[1] + y - (patch3[1] - 1) / 2;
          for (let x = 0; x < patch3[2]; x++, v++) {
            const px = c[2] + x - (patch3[2] - 1) / 2;
            if (values[v] <= config.threshold || pz < 0 || py < 0 || px < 0 || pz >= size3[0] || py >= size3[1] || px >= size3[2]) continue;
            const at = (pz * size3[1] + py) * size3[2] + px;
            if (foreground[at] <= 0.5 || stamp[at] === part) continue;
            stamp[at] = part;
            claimed.push(at);
          }
        }
      }
    }
    if (claimed.length === 0 || claimed.length < config.minSize) return;
    instances.push({ first: claimed.reduce((m, at) => Math.min(m, at), pixels), part, pixels: claimed });
  });
  instances.sort((a, b) => a.first - b.first || a.part - b.part);
  const depth = new Uint16Array(pixels);
  let layers = 1;
  for (const inst of instances) for (const at of inst.pixels) layers = Math.max(layers, ++depth[at]);
  const data = new Int32Array(layers * pixels);
  depth.fill(0);
  // Ids ascend with the instance order, so appending each to the next free layer keeps every pixel's ids sorted.
  instances.forEach((inst, k) => {
    for (const at of inst.pixels) data[depth[at]++ * pixels + at] = k + 1;
  });
  return layers === 1 ? data : { data, layers };
}
