// PatchPerPix's instance assembly in straightforward single-threaded TypeScript: steps 1, 2 and 4 (which
// src/kernels/consensus.ts runs on the GPU) as plain loops over patches and their pixel pairs, the consensus scattered
// patch by patch as the authors' CUDA kernel does it with atomics; steps 3, 5 and 6 are the GPU assembly's own
// (assembleWith). The benchmark's baseline (bench/assembly.ts) and the op checks' reference (test/ops/consensus.ts),
// so it uses no Node built-ins. Layouts and semantics are those of src/kernels/consensus.ts.
import { storedOffsets } from '../src/kernels/consensus.ts';
import { assembleWith, gridSites, samplingGeometry, type AssemblyConfig, type AssemblySteps, type PatchEvidence } from '../src/models/ppp-assembly.ts';
import type { Labels } from '../src/train/layers.ts';

/** SampledPatches (src/kernels/consensus.ts) as plain arrays. */
export interface SampledPatchesCpu {
  /** [K, ...grid]. */
  samples: Float32Array;
  grid: readonly number[];
  sites: Uint32Array;
  siteIndex: Int32Array;
  reach: readonly number[];
  threshold: number;
}

/** PatchEvidence with its images and samples as plain arrays. */
export interface PatchEvidenceCpu {
  size: number[];
  single: Float32Array;
  foreground: Float32Array;
  samples: Float32Array;
  patches: PatchEvidence['patches'];
}

type Vec3 = [number, number, number];

/** The grid and the patch offsets in (z, y, x) form (a 2D grid is one slice deep, h_z = 0), and lookups on them. */
function geometry3(p: SampledPatchesCpu) {
  const three = (xs: readonly number[], fill: number): Vec3 => (xs.length === 2 ? [fill, xs[0], xs[1]] : [xs[0], xs[1], xs[2]]);
  const grid = three(p.grid, 1);
  const h = three(p.reach, 0);
  const volume = grid[0] * grid[1] * grid[2];
  const k = (2 * h[0] + 1) * (2 * h[1] + 1) * (2 * h[2] + 1);
  const offsets: Vec3[] = [];
  for (let z = -h[0]; z <= h[0]; z++) for (let y = -h[1]; y <= h[1]; y++) for (let x = -h[2]; x <= h[2]; x++) offsets.push([z, y, x]);
  const coords = (g: number): Vec3 => [Math.floor(g / (grid[1] * grid[2])), Math.floor(g / grid[2]) % grid[1], g % grid[2]];
  const siteAt = (q: Vec3) =>
    q[0] < 0 || q[1] < 0 || q[2] < 0 || q[0] >= grid[0] || q[1] >= grid[1] || q[2] >= grid[2] ? -1 : p.siteIndex[(q[0] * grid[1] + q[1]) * grid[2] + q[2]];
  const stored = storedOffsets(p.reach);
  const sites = p.sites.length;
  // The consensus of the pair (q1 at site s1, q2 at site s2), stored at the site whose offset to the other is after 0.
  const consensusOf = (cons: Float32Array, s1: number, q1: Vec3, s2: number, q2: Vec3) => {
    const i = ((q2[0] - q1[0] + 2 * h[0]) * (4 * h[1] + 1) + (q2[1] - q1[1] + 2 * h[1])) * (4 * h[2] + 1) + (q2[2] - q1[2] + 2 * h[2]);
    return i > stored ? cons[s1 * stored + i - stored - 1] : cons[s2 * stored + stored - 1 - i];
  };
  // The thresholds as the GPU compares them, in f32.
  const th = Math.fround(p.threshold);
  const low = Math.fround(1 - th);
  return { grid, h, volume, k, offsets, coords, siteAt, stored, sites, consensusOf, th, low };
}

/** Step 1, scattered: every patch adds its vote on each of its pairs of sites to the pair's sum and count. */
export function consensusCpu(p: SampledPatchesCpu): Float32Array {
  const { h, volume, k, offsets, coords, siteAt, stored, sites, th, low } = geometry3(p);
  const sum = new Float64Array(stored * sites);
  const count = new Uint32Array(stored * sites);
  const centre = (k - 1) / 2;
  for (let f = 0; f < sites; f++) {
    const g = p.sites[f];
    if (p.samples[centre * volume + g] <= th) continue;
    const c = coords(g);
    for (let k1 = 0; k1 < k; k1++) {
      const q1: Vec3 = [c[0] + offsets[k1][0], c[1] + offsets[k1][1], c[2] + offsets[k1][2]];
      const s1 = siteAt(q1);
      if (s1 < 0) continue;
      const v1 = p.samples[k1 * volume + g];
      // k2 after k1 in row-major order: the offset from q1 to q2 comes after 0, so the pair is stored at q1.
      for (let k2 = k1 + 1; k2 < k; k2++) {
        const q2: Vec3 = [c[0] + offsets[k2][0], c[1] + offsets[k2][1], c[2] + offsets[k2][2]];
        if (siteAt(q2) < 0) continue;
        const v2 = p.samples[k2 * volume + g];
        const [high, lowest] = v1 > v2 ? [v1, v2] : [v2, v1];
        let vote: number;
        if (lowest > th) vote = (v1 * v2 - th * th) / (1 - th * th);
        else if (high > th && lowest < low) vote = -(high * (1 - lowest) - th * th) / (1 - th * th);
        else continue;
        const o = [q2[0] - q1[0], q2[1] - q1[1], q2[2] - q1[2]];
        const i = ((o[0] + 2 * h[0]) * (4 * h[1] + 1) + (o[1] + 2 * h[1])) * (4 * h[2] + 1) + (o[2] + 2 * h[2]);
        const at = s1 * stored + i - stored - 1;
        sum[at] += vote;
        count[at]++;
      }
    }
  }
  return Float32Array.from(sum, (s, i) => (count[i] > 0 ? s / count[i] : 0));
}

/** Step 2: per site its patch's score and cover bits, as patchScores defines them, over unordered pairs. */
export function patchScoresCpu(p: SampledPatchesCpu, cons: Float32Array): { scores: Float32Array; cover: Uint32Array } {
  const { volume, k, offsets, coords, siteAt, sites, consensusOf, th, low } = geometry3(p);
  const words = Math.ceil(k / 32);
  const scores = new Float32Array(sites);
  const cover = new Uint32Array(sites * words);
  const centre = (k - 1) / 2;
  for (let f = 0; f < sites; f++) {
    const g = p.sites[f];
    if (p.samples[centre * volume + g] <= th) continue;
    const c = coords(g);
    const q = offsets.map((o): Vec3 => [c[0] + o[0], c[1] + o[1], c[2] + o[2]]);
    const s = q.map(siteAt);
    const v = offsets.map((_, i) => p.samples[i * volume + g]);
    let total = 0;
    let pairs = 0;
    for (let k1 = 0; k1 < k; k1++) {
      if (s[k1] < 0) continue;
      if (v[k1] > th) cover[f * words + (k1 >> 5)] |= 1 << (k1 & 31);
      for (let k2 = k1 + 1; k2 < k; k2++) {
        if (s[k2] < 0 || Math.max(v[k1], v[k2]) <= th) continue;
        pairs++;
        if (Math.min(v[k1], v[k2]) > th) total += consensusOf(cons, s[k1], q[k1], s[k2], q[k2]);
        else if (Math.min(v[k1], v[k2]) < low) total -= consensusOf(cons, s[k1], q[k1], s[k2], q[k2]);
      }
    }
    scores[f] = pairs > 0 ? total / pairs : 0;
  }
  return { scores, cover };
}

/** Step 4: per edge (site indices [E · 2]) the mean consensus over all pixel pairs of the two patches within 2h. */
export function patchAffinitiesCpu(p: SampledPatchesCpu, cons: Float32Array, edges: Uint32Array): { affinities: Float32Array; pairs: Uint32Array } {
  const { h, volume, offsets, coords, siteAt, consensusOf, th } = geometry3(p);
  const count = edges.length / 2;
  const affinities = new Float32Array(count);
  const pairs = new Uint32Array(count);
  // The sampled pixels > TH of the patch at site f, on sites: (grid coordinates, site).
  const foregroundOf = (f: number) => {
    const g = p.sites[f];
    const c = coords(g);
    const out: { q: Vec3; s: number }[] = [];
    offsets.forEach((o, i) => {
      const q: Vec3 = [c[0] + o[0], c[1] + o[1], c[2] + o[2]];
      const s = siteAt(q);
      if (s >= 0 && p.samples[i * volume + g] > th) out.push({ q, s });
    });
    return out;
  };
  for (let e = 0; e < count; e++) {
    const a = foregroundOf(edges[2 * e]);
    const b = foregroundOf(edges[2 * e + 1]);
    let total = 0;
    for (const x of a) {
      for (const y of b) {
        const d = [y.q[0] - x.q[0], y.q[1] - x.q[1], y.q[2] - x.q[2]];
        if ((d[0] === 0 && d[1] === 0 && d[2] === 0) || d.some((di, axis) => Math.abs(di) > 2 * h[axis])) continue;
        total += consensusOf(cons, x.s, x.q, y.s, y.q);
        pairs[e]++;
      }
    }
    affinities[e] = pairs[e] > 0 ? total / pairs[e] : 0;
  }
  return { affinities, pairs };
}

/** assemblePatches with steps 1, 2 and 4 in plain TypeScript, on evidence held in arrays. */
export async function assemblePatchesCpu(evidence: PatchEvidenceCpu, config: AssemblyConfig): Promise<Labels> {
  const g = samplingGeometry(evidence.size, config, 'assemblePatchesCpu');
  const sites = gridSites(evidence.single, g);
  const p: SampledPatchesCpu = { samples: evidence.samples, grid: g.grid, sites: sites.list, siteIndex: sites.index, reach: g.reach, threshold: config.threshold };
  let cons: Float32Array = new Float32Array(0);
  const steps: AssemblySteps = {
    scores: async () => {
      cons = consensusCpu(p);
      return patchScoresCpu(p, cons);
    },
    affinities: async (edges) => patchAffinitiesCpu(p, cons, edges),
  };
  return assembleWith(g, sites, evidence.foreground, evidence.patches, steps, config);
}
