// PatchPerPix's assembly kernels (consensus, patchScores, patchAffinities) against the plain TypeScript assembly of
// bench/ppp-assembly-cpu.ts, which scatters the consensus patch by patch where the GPU gathers it: a hand case, random
// samples in 2D and 3D (anisotropic reach, h = 0 on an axis, values exactly at TH and 1 − TH, sparse and dense
// sites), an edge without pixel pairs, no sites and no edges, poisoned outputs (every element is compared), leaks and
// errors.
import { consensusCpu, patchAffinitiesCpu, patchScoresCpu, type SampledPatchesCpu } from '../../bench/ppp-assembly-cpu.ts';
import type { Engine, Tensor } from '../../src/index.ts';
import { consensus, patchAffinities, patchScores, storedOffsets, type SampledPatches } from '../../src/kernels/consensus.ts';
import { rng, sizeOf } from '../support/check.ts';
import { expect } from '../support/expect.ts';
import { checkList } from '../support/suite.ts';

const { checks, describe, it } = checkList();
export { checks };

interface Outputs {
  consensus: Float32Array;
  scores: Float32Array;
  cover: Uint32Array;
  affinities: Float32Array;
  pairs: Uint32Array;
}

/** The three kernels on the GPU (scores and affinities from the GPU's consensus), read back; nothing leaked. */
async function runGpu(e: Engine, p: SampledPatchesCpu, edges: Uint32Array): Promise<Outputs> {
  const before = e.stats().liveTensors;
  const tensors: SampledPatches = {
    samples: e.tensor(p.samples, [p.samples.length / sizeOf(p.grid), ...p.grid]),
    sites: e.tensor(p.sites, [p.sites.length], 'u32'),
    siteIndex: e.tensor(p.siteIndex, p.grid, 'i32'),
    reach: p.reach,
    threshold: p.threshold,
  };
  const cons = consensus(tensors);
  expect(cons.shape).toEqual([p.sites.length, storedOffsets(p.reach)]);
  const { scores, cover } = patchScores(tensors, cons);
  expect(cover.shape).toEqual([p.sites.length, Math.ceil(p.samples.length / sizeOf(p.grid) / 32)]);
  const edgeTensor = e.tensor(edges, [edges.length / 2, 2], 'u32');
  const { affinities, pairs } = patchAffinities(tensors, cons, edgeTensor);
  const made: Tensor[] = [tensors.samples, tensors.sites, tensors.siteIndex, cons, scores, cover, edgeTensor, affinities, pairs];
  const out: Outputs = {
    consensus: (await cons.data()) as Float32Array, scores: (await scores.data()) as Float32Array, cover: (await cover.data()) as Uint32Array,
    affinities: (await affinities.data()) as Float32Array, pairs: (await pairs.data()) as Uint32Array,
  };
  for (const t of made) t.dispose();
  expect(e.stats().liveTensors, 'tensors leaked').toBe(before);
  return out;
}

/** Equal within `tolerance` element by element; a NaN (an unwritten, poisoned element) never passes. */
function expectClose(what: string, out: ArrayLike<number>, ref: ArrayLike<number>, tolerance: number): void {
  expect(out.length, `${what} length`).toBe(ref.length);
  for (let i = 0; i < ref.length; i++) {
    if (!(Math.abs(out[i] - ref[i]) <= tolerance)) expect(out[i], `${what}[${i}]`).toBe(ref[i]);
  }
}

/** The GPU against the reference: consensus, and scores and affinities computed from the same (GPU) consensus. */
async function expectMatches(e: Engine, p: SampledPatchesCpu, edges: Uint32Array): Promise<Outputs> {
  const out = await runGpu(e, p, edges);
  expectClose('consensus', out.consensus, consensusCpu(p), 2e-6);
  const ref = patchScoresCpu(p, out.consensus);
  expectClose('scores', out.scores, ref.scores, 2e-6);
  expectClose('cover', out.cover, ref.cover, 0);
  const graph = patchAffinitiesCpu(p, out.consensus, edges);
  expectClose('pairs', out.pairs, graph.pairs, 0);
  expectClose('affinities', out.affinities, graph.affinities, 2e-6);
  return out;
}

/**
 * Random sampled patches on `grid` with reach `reach`: sites where a draw is below `density`; values drawn from 0,
 * 1 − TH, TH, 1 and uniform (TH = 0.75: every boundary is exact in f32), so that every branch of the vote is taken.
 */
function randomPatches(seed: number, grid: number[], reach: number[], density: number): SampledPatchesCpu {
  const rand = rng(seed);
  const threshold = 0.75;
  const volume = sizeOf(grid);
  const k = sizeOf(reach.map((h) => 2 * h + 1));
  const siteIndex = new Int32Array(volume).fill(-1);
  const list: number[] = [];
  for (let g = 0; g < volume; g++) {
    if (rand() < density) {
      siteIndex[g] = list.length;
      list.push(g);
    }
  }
  const pick = [0, 1 - threshold, threshold, 1];
  const samples = Float32Array.from({ length: k * volume }, () => {
    const r = rand();
    return r < 0.4 ? pick[Math.floor(rand() * 4)] : r < 0.75 ? 0.8 + 0.2 * rand() : rand();
  });
  // Most centres > TH, so that most sites centre a patch.
  const centre = (k - 1) / 2;
  for (let g = 0; g < volume; g++) if (rand() < 0.85) samples[centre * volume + g] = 0.9;
  return { samples, grid, sites: Uint32Array.from(list), siteIndex, reach, threshold };
}

/** `count` random edges between sites, near ones and any. */
function randomEdges(seed: number, sites: number, count: number): Uint32Array {
  const rand = rng(seed);
  const edges = new Uint32Array(2 * count);
  for (let i = 0; i < count; i++) {
    const a = Math.floor(rand() * sites);
    edges[2 * i] = a;
    edges[2 * i + 1] = i % 3 === 0 ? Math.floor(rand() * sites) : Math.min(sites - 1, a + Math.floor(rand() * 4));
  }
  return edges;
}

describe('PatchPerPix assembly kernels', () => {
  it('a hand-checked row of three sites', async (e) => {
    // Grid [1, 3], h = [0, 1], TH = 0.75. The patch at 0 says (·, 1, 1): its pixels 0 and 1 agree, +1. The patch at 1
    // says (1, 1, 0): pixels 0, 1 agree (+1), 2 disagrees with both (−1 each). The patch at 2 has centre 0: no patch.
    const p: SampledPatchesCpu = {
      samples: Float32Array.from([0.5, 1, 0.3, 1, 1, 0, 1, 0, 0.2]), grid: [1, 3],
      sites: Uint32Array.from([0, 1, 2]), siteIndex: Int32Array.from([0, 1, 2]), reach: [0, 1], threshold: 0.75,
    };
    const out = await expectMatches(e, p, Uint32Array.from([0, 1, 0, 2]));
    // Per site its stored offsets +1 and +2.
    expect(Array.from(out.consensus)).toEqual([1, -1, -1, 0, 0, 0]);
    expect(Array.from(out.scores)).toEqual([1, 1, 0]);
    expect(Array.from(out.cover)).toEqual([0b110, 0b011, 0]);
    // Edge 0–1: pairs (0, 1) and (1, 0) both agree; edge 0–2: patch 2 has no pixel > TH.
    expect(Array.from(out.affinities)).toEqual([1, 0]);
    expect(Array.from(out.pairs)).toEqual([2, 0]);
  });

  const cases: { name: string; grid: number[]; reach: number[]; density: number }[] = [
    { name: '2D, h = [1, 2]', grid: [7, 9], reach: [1, 2], density: 0.7 },
    { name: '2D, h = [2, 2], all sites', grid: [6, 6], reach: [2, 2], density: 1 },
    { name: '2D, h = [3, 1], sparse sites', grid: [11, 5], reach: [3, 1], density: 0.35 },
    { name: '3D, h = [1, 1, 1]', grid: [4, 5, 6], reach: [1, 1, 1], density: 0.75 },
    { name: '3D anisotropic, h = [0, 1, 2]', grid: [3, 6, 5], reach: [0, 1, 2], density: 0.8 },
    { name: '3D, h = [1, 2, 2] (K = 75: three cover words)', grid: [3, 5, 5], reach: [1, 2, 2], density: 0.9 },
  ];
  cases.forEach((c, i) => {
    it(`matches the plain TypeScript assembly on random patches (${c.name})`, async (e) => {
      const p = randomPatches(31 * i + 5, c.grid, c.reach, c.density);
      expect(p.sites.length).toBeGreaterThan(3);
      const out = await expectMatches(e, p, randomEdges(7 * i + 1, p.sites.length, 40));
      // Both kinds of vote were cast, and edges found pixel pairs.
      expect(out.consensus.some((v) => v > 0) && out.consensus.some((v) => v < 0)).toBe(true);
      expect(out.pairs.some((n) => n > 0)).toBe(true);
    });
  });

  it('no sites, no edges: empty outputs, no dispatch', async (e) => {
    const p: SampledPatchesCpu = {
      samples: new Float32Array(9 * 12), grid: [3, 4], sites: new Uint32Array(0), siteIndex: new Int32Array(12).fill(-1),
      reach: [1, 1], threshold: 0.9,
    };
    const out = await runGpu(e, p, new Uint32Array(0));
    expect([out.consensus.length, out.scores.length, out.cover.length, out.affinities.length, out.pairs.length]).toEqual([0, 0, 0, 0, 0]);
  });

  it('names what is wrong with its inputs', async (e) => {
    const p: SampledPatches = {
      samples: e.zeros([9, 3, 4]), sites: e.zeros([2], 'u32'), siteIndex: e.zeros([3, 4], 'i32'), reach: [1, 1], threshold: 0.8,
    };
    const cons = consensus(p);
    const edges = e.zeros([1, 2], 'u32');
    expect(() => consensus({ ...p, reach: [1, 2] })).toThrow('consensus: samples must be f32 [15, 3, 4] (K = Π(2h + 1) for reach [1, 2]), got f32 [9, 3, 4]');
    expect(() => consensus({ ...p, reach: [14, 14] })).toThrow('consensus: reach [14, 14] gives K = 841 samples per patch; at most 768 fit in workgroup memory');
    expect(() => consensus({ ...p, reach: [1] })).toThrow('consensus: reach must be 2 integers ≥ 0 (h per axis), got [1]');
    expect(() => consensus({ ...p, threshold: 0.5 })).toThrow('consensus: threshold must be in (0.5, 1), got 0.5');
    expect(() => consensus({ ...p, siteIndex: p.sites })).toThrow('consensus: siteIndex must be [H, W] or [D, H, W], got [2]');
    expect(() => consensus({ ...p, sites: p.siteIndex })).toThrow('consensus: sites must be u32 [F], got i32 [3, 4]');
    expect(() => patchScores(p, p.samples)).toThrow('patchScores: consensus must be f32 [2, 12] (sites, stored offsets), got f32 [9, 3, 4]');
    expect(() => patchAffinities(p, cons, p.sites)).toThrow('patchAffinities: edges must be u32 [E, 2] (site indices), got u32 [2]');
    const graph = patchAffinities(p, cons, edges);
    expect(graph.pairs.shape).toEqual([1]);
    for (const t of [p.samples, p.sites, p.siteIndex, cons, edges, graph.affinities, graph.pairs]) t.dispose();
  });
});
