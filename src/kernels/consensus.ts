// PatchPerPix's instance assembly on the GPU (shaders/consensus.wgsl): the consensus of pixel pairs, patch scores with
// their covers, and patch-graph affinities (steps 1, 2 and 4 of the paper's Sec. 2.1, which the authors ran as CUDA
// kernels), on a sampling grid: grid pixel g stands for image pixel g·s, and a patch centred at a grid pixel is
// sampled at offsets k·s, k ∈ [−h, h] per axis, so that every sampled pixel is a grid pixel. Everything is gathered
// (each output summed by one invocation in a fixed order, no float atomics), so results are the same on every run. Nothing here is
// differentiable, so nothing is recorded. src/models/ppp-assembly.ts runs the whole assembly.
import type { Tensor } from '../engine/tensor.ts';
import { shaderConstants } from '../shaders.gen.ts';

/** MAX_SAMPLES: the most samples per patch (K) the consensus stages in workgroup memory. */
const { MAX_SAMPLES, WORKGROUP_SIZE } = shaderConstants.consensus;
const fmt = (shape: readonly number[]) => `[${shape.join(', ')}]`;
const product = (xs: readonly number[]) => xs.reduce((a, b) => a * b, 1);

/** The sampled patches of an image and where they may be used. */
export interface SampledPatches {
  /** [K, ...grid] f32, K = Π(2h + 1): the value at offset k·s (k row-major over [−h, h]) of the patch at each grid pixel. */
  samples: Tensor;
  /** [F] u32: the grid index (row-major) of each site, a grid pixel that is foreground with exactly one instance. */
  sites: Tensor;
  /** [...grid] i32: each grid pixel's site index, −1 where it is not a site. */
  siteIndex: Tensor;
  /** h per spatial axis. */
  reach: readonly number[];
  /** TH in (0.5, 1): a patch value above it says "same instance as the centre", below 1 − TH "not". */
  threshold: number;
}

/**
 * Consensus values stored per site: the pair offsets o ∈ [−2h, 2h] that come after 0 in row-major order,
 * (Π(4h + 1) − 1) / 2. The pair (q, q + o) with o before 0 is stored at q + o, offset −o.
 */
export function storedOffsets(reach: readonly number[]): number {
  return (product(reach.map((h) => 4 * h + 1)) - 1) / 2;
}

/** Checks `p` and returns the uniform every entry point reads. */
function assemblyParams(op: string, p: SampledPatches, edges = 0) {
  const { samples, sites, siteIndex, reach, threshold } = p;
  const dims = siteIndex.rank;
  if (dims !== 2 && dims !== 3) throw new Error(`${op}: siteIndex must be [H, W] or [D, H, W], got ${fmt(siteIndex.shape)}`);
  if (siteIndex.dtype !== 'i32') throw new Error(`${op}: siteIndex must be i32, got ${siteIndex.dtype}`);
  if (reach.length !== dims || reach.some((h) => !Number.isInteger(h) || h < 0)) {
    throw new Error(`${op}: reach must be ${dims} integers ≥ 0 (h per axis), got ${JSON.stringify(reach)}`);
  }
  const grid = siteIndex.shape;
  const k = product(reach.map((h) => 2 * h + 1));
  if (k > MAX_SAMPLES) throw new Error(`${op}: reach ${fmt(reach)} gives K = ${k} samples per patch; at most ${MAX_SAMPLES} fit in workgroup memory`);
  if (samples.dtype !== 'f32' || samples.rank !== dims + 1 || samples.shape[0] !== k || grid.some((d, a) => samples.shape[a + 1] !== d)) {
    throw new Error(`${op}: samples must be f32 ${fmt([k, ...grid])} (K = Π(2h + 1) for reach ${fmt(reach)}), got ${samples.dtype} ${fmt(samples.shape)}`);
  }
  if (sites.dtype !== 'u32' || sites.rank !== 1) throw new Error(`${op}: sites must be u32 [F], got ${sites.dtype} ${fmt(sites.shape)}`);
  if (!(threshold > 0.5 && threshold < 1)) throw new Error(`${op}: threshold must be in (0.5, 1), got ${threshold}`);
  const volume = (xs: readonly number[], fill: number) => [...(dims === 2 ? [fill] : []), ...xs, 0];
  return {
    grid: volume(grid, 1), reach: volume(reach, 0),
    sites: sites.size, samples: k, offsets: storedOffsets(reach), edges, words: Math.ceil(k / 32), threshold,
  };
}

function checkConsensus(op: string, p: SampledPatches, consensus: Tensor): void {
  const expected = [p.sites.size, storedOffsets(p.reach)];
  if (consensus.dtype !== 'f32' || consensus.rank !== 2 || consensus.shape.some((d, a) => d !== expected[a])) {
    throw new Error(`${op}: consensus must be f32 ${fmt(expected)} (sites, stored offsets), got ${consensus.dtype} ${fmt(consensus.shape)}`);
  }
}

/**
 * Step 1: the consensus of every pair of sites within 2h of each other, f32 [F, OFFSETS] (OFFSETS = storedOffsets):
 * over every patch centred at a site whose own centre value is > TH and whose sampled pixels hold both sites, the
 * mean of its votes, (v1·v2 − TH²)/(1 − TH²) where both values are > TH, −(v_high·(1 − v_low) − TH²)/(1 − TH²) where
 * one is > TH and the other < 1 − TH (the authors' normalised product, USE_INV_TH); 0 where no patch votes.
 */
export function consensus(p: SampledPatches): Tensor {
  const op = 'consensus';
  const params = assemblyParams(op, p);
  const e = p.samples.engine;
  const out = e.empty([params.sites, params.offsets]);
  if (out.size === 0) return out;
  e.dispatch({
    shader: 'consensus', entry: 'consensus_gather', label: `${op}.gather`,
    bindings: { params, samples: p.samples, sites: p.sites, siteIndex: p.siteIndex, consensusOut: out },
    workgroups: e.groups1D(params.sites, 1),
  });
  return out;
}

/**
 * Step 2: per site, the score of the patch it centres, f32 [F] (0 where it centres none: its centre value is ≤ TH),
 * and its cover, u32 [F, ⌈K/32⌉]: bit k (word k/32, bit k%32) set where sample k is > TH and lies on a site; all clear
 * where the site centres no patch, so a site centres a patch exactly where its own (centre) bit is set. The score is
 * the mean agreement with the consensus over the patch's pairs of sites with one value > TH: + consensus where the
 * other value is > TH too, − consensus where it is < 1 − TH, 0 in between (the authors' rankPatches).
 */
export function patchScores(p: SampledPatches, consensus: Tensor): { scores: Tensor; cover: Tensor } {
  const op = 'patchScores';
  const params = assemblyParams(op, p);
  checkConsensus(op, p, consensus);
  const e = p.samples.engine;
  const out = { scores: e.empty([params.sites]), cover: e.empty([params.sites, params.words], 'u32') };
  if (params.sites === 0) return out;
  e.dispatch({
    shader: 'consensus', entry: 'patch_scores', label: `${op}.scores`,
    bindings: { params, samples: p.samples, sites: p.sites, siteIndex: p.siteIndex, consensus, ...out },
    workgroups: e.groups1D(params.sites, WORKGROUP_SIZE),
  });
  return out;
}

/**
 * Step 4: per edge of the patch graph (`edges` u32 [E, 2], the site indices of two patch centres), its affinity,
 * f32 [E]: the mean consensus over the pairs (qA, qB) of sampled pixels > TH of patch A and of patch B, both sites,
 * qA ≠ qB within 2h of each other (the authors' computePatchGraph); and `pairs`, u32 [E], how many pairs that is
 * (affinity 0 where there are none).
 */
export function patchAffinities(p: SampledPatches, consensus: Tensor, edges: Tensor): { affinities: Tensor; pairs: Tensor } {
  const op = 'patchAffinities';
  if (edges.dtype !== 'u32' || edges.rank !== 2 || edges.shape[1] !== 2) {
    throw new Error(`${op}: edges must be u32 [E, 2] (site indices), got ${edges.dtype} ${fmt(edges.shape)}`);
  }
  const params = assemblyParams(op, p, edges.shape[0]);
  checkConsensus(op, p, consensus);
  const e = p.samples.engine;
  const out = { affinities: e.empty([params.edges]), pairs: e.empty([params.edges], 'u32') };
  if (params.edges === 0) return out;
  e.dispatch({
    shader: 'consensus', entry: 'patch_affinities', label: `${op}.affinities`,
    bindings: { params, samples: p.samples, sites: p.sites, siteIndex: p.siteIndex, consensus, edges, ...out },
    workgroups: e.groups1D(params.edges, WORKGROUP_SIZE),
  });
  return out;
}
