// EmbedSeg's inference clustering (SPEC.md "Clustering"; the reference is EmbedSeg's Cluster.cluster), on the GPU
// (shaders/cluster.wgsl). Greedy: among the unclustered foreground pixels take the one with the highest seed; stop
// when it is below seedThreshold; its embedding is a centre and exp(10·σ) at it the bandwidth; the proposal is every
// foreground pixel whose embedding lies within exp(−Σ_d (e_d − c_d)²·s_d) > 0.5; it becomes the next instance when it
// is large enough and mostly unclustered; either way all of it is clustered from then on.
//
// The foreground is compacted once (pixel order, so ties between equal seeds go to the earlier pixel as with
// torch.argmax); each iteration is four dispatches over the compacted list (select_seed, build_proposal, decide,
// assign) whose scalars stay on the GPU, so iterations are encoded in batches and only a done flag is read back per
// batch. Nothing here is differentiable, so nothing is recorded.
import type { Tensor } from '../engine/tensor.ts';
import { shaderConstants } from '../shaders.gen.ts';

export interface ClusterSeedsOptions {
  /** Foreground: seed > fgThreshold (default 0.5; EmbedSeg's fg_thresh). */
  fgThreshold?: number;
  /** Seeds below this end the clustering (default 0.9; EmbedSeg's seed_thresh). */
  seedThreshold?: number;
  /**
   * A proposal becomes an instance only with more than this many pixels (default 0: any size). This is the check
   * EmbedSeg's code calls min_object_size (36 in its Cluster class, so objects of at least 37 px as in the paper's
   * evaluation); EmbedSeg's own min_mask_sum is `minForegroundSum` here.
   */
  minMaskSum?: number;
  /** A proposal becomes an instance only when more than this fraction of it was unclustered (default 0.5). */
  minUnclusteredRatio?: number;
  /** Cluster only when the foreground has more than this many pixels (default 0; EmbedSeg's min_mask_sum). */
  minForegroundSum?: number;
  /** Stop once at most this many foreground pixels are unclustered (default 0; EmbedSeg's min_unclustered_sum). */
  minUnclusteredSum?: number;
}

/** CHUNK: pixels (or list entries) per workgroup of the chunk kernels; DONE, COUNT: slots of the STATE_SLOTS-long state. */
const { CHUNK, DONE, COUNT, STATE_SLOTS } = shaderConstants.cluster;
/** Iterations encoded before the first done-flag readback; each later batch doubles, up to MAX_BATCH. */
const FIRST_BATCH = 8;
const MAX_BATCH = 64;

const fmt = (shape: readonly number[]) => `[${shape.join(', ')}]`;

/** The smallest f32 >= x: for an f32 value v, v < x (in f64, as the reference compares a seed's .item()) iff v < f32AtLeast(x). */
function f32AtLeast(x: number): number {
  const f = new Float32Array([x]);
  if (f[0] < x) new Int32Array(f.buffer)[0] += f[0] < 0 ? -1 : 1;
  return f[0];
}

function checkInputs(embedding: Tensor, sigma: Tensor, seed: Tensor): number[] {
  const op = 'clusterSeeds';
  const ndim = embedding.shape[0];
  if ((ndim !== 2 && ndim !== 3) || embedding.rank !== ndim + 1) {
    throw new Error(`${op}: embedding must be [D, ...spatial] with D = 2 or 3 spatial axes, got ${fmt(embedding.shape)}`);
  }
  for (const [name, t] of [['embedding', embedding], ['sigma', sigma], ['seed', seed]] as const) {
    if (t.dtype !== 'f32') throw new Error(`${op}: ${name} must be f32, got ${t.dtype}`);
  }
  if (sigma.rank !== embedding.rank || sigma.shape.some((d, k) => d !== embedding.shape[k])) {
    throw new Error(`${op}: sigma ${fmt(sigma.shape)} must have the embedding's shape ${fmt(embedding.shape)}`);
  }
  const spatial = embedding.shape.slice(1);
  if (seed.rank !== embedding.rank || seed.shape[0] !== 1 || spatial.some((d, k) => d !== seed.shape[k + 1])) {
    throw new Error(`${op}: seed ${fmt(seed.shape)} must be [1, ${spatial.join(', ')}]`);
  }
  return spatial;
}

function checkOptions(options: ClusterSeedsOptions) {
  const op = 'clusterSeeds';
  const {
    fgThreshold = 0.5, seedThreshold = 0.9, minMaskSum = 0, minUnclusteredRatio = 0.5, minForegroundSum = 0, minUnclusteredSum = 0,
  } = options;
  for (const [name, v] of [['fgThreshold', fgThreshold], ['seedThreshold', seedThreshold], ['minUnclusteredRatio', minUnclusteredRatio]] as const) {
    if (!Number.isFinite(v)) throw new Error(`${op}: ${name} must be a finite number, got ${v}`);
  }
  for (const [name, v] of [['minMaskSum', minMaskSum], ['minForegroundSum', minForegroundSum], ['minUnclusteredSum', minUnclusteredSum]] as const) {
    if (!Number.isInteger(v) || v < 0 || v >= 2 ** 32) throw new Error(`${op}: ${name} must be a non-negative integer, got ${v}`);
  }
  return { fgThreshold, seedThreshold, minMaskSum, minUnclusteredRatio, minForegroundSum, minUnclusteredSum };
}

/**
 * EmbedSeg's instance labels from its embedding [D, ...spatial] (f32, D = 2 or 3 spatial axes: tanh(offset) + grid, in
 * any channel order), raw σ [D, ...spatial] (the bandwidth of channel d is exp(10·σ_d), matched to embedding channel d)
 * and seed [1, ...spatial] (sigmoid probabilities). Returns an i32 tensor of the spatial shape: 0 background and
 * unclustered pixels, 1..K instances in the order they were accepted; a later accepted proposal overwrites the labels
 * of earlier ones where they overlap, as in the reference. Asynchronous: the foreground's size and, per batch of
 * iterations, the done flag are read back (a few bytes each); the labels stay on the GPU.
 */
export async function clusterSeedsTensor(embedding: Tensor, sigma: Tensor, seed: Tensor, options: ClusterSeedsOptions = {}): Promise<Tensor> {
  const spatial = checkInputs(embedding, sigma, seed);
  const o = checkOptions(options);
  const e = embedding.engine;
  const scope = e.beginScope();
  let labels: Tensor | undefined;
  try {
    labels = await cluster(embedding, sigma, seed, spatial, o);
    return labels;
  } finally {
    scope.end(labels);
  }
}

/** clusterSeedsTensor read back: the instance labels as an Int32Array (row-major, the spatial shape). */
export async function clusterSeeds(embedding: Tensor, sigma: Tensor, seed: Tensor, options: ClusterSeedsOptions = {}): Promise<Int32Array> {
  const labels = await clusterSeedsTensor(embedding, sigma, seed, options);
  try {
    return (await labels.data()) as Int32Array;
  } finally {
    labels.dispose();
  }
}

/** The clustering inside the caller's scope, which disposes every tensor made here but the returned labels. */
async function cluster(embedding: Tensor, sigma: Tensor, seed: Tensor, spatial: number[], o: ReturnType<typeof checkOptions>): Promise<Tensor> {
  const e = embedding.engine;
  const n = seed.size;
  const ndim = embedding.shape[0];
  if (n === 0) return e.zeros(spatial, 'i32');
  const params = (count: number, items: number) => ({
    n, count, ndim, chunks: Math.ceil(items / CHUNK),
    fgThreshold: o.fgThreshold, seedThreshold: f32AtLeast(o.seedThreshold), minMaskSum: o.minMaskSum,
    minUnclusteredSum: o.minUnclusteredSum, minUnclusteredRatio: o.minUnclusteredRatio,
  });
  const workgroupsOver = (items: number) => e.groups1D(Math.ceil(items / CHUNK), 1);

  // Compaction, first half: count the foreground per chunk and scan the counts; the total comes back once.
  const state = e.zeros([STATE_SLOTS], 'u32');
  const chunkOffsets = e.empty([Math.ceil(n / CHUNK)], 'u32');
  const pixelParams = params(0, n);
  e.dispatch({ shader: 'cluster', entry: 'count_foreground', bindings: { params: pixelParams, seed, chunkOffsets }, workgroups: workgroupsOver(n) });
  e.dispatch({ shader: 'cluster', entry: 'scan_foreground', bindings: { params: pixelParams, chunkOffsets, state }, workgroups: [1] });
  const count = (await state.data())[COUNT];
  if (count === 0 || count <= o.minForegroundSum) return e.zeros(spatial, 'i32');

  const fgPixel = e.empty([count], 'u32');
  const fgSeed = e.empty([count], 'f32');
  const fgEmbedding = e.empty([ndim, count], 'f32');
  const unclustered = e.empty([count], 'u32');
  const inProposal = e.empty([count], 'u32');
  const fgLabel = e.empty([count], 'i32');
  const partialValue = e.empty([Math.ceil(count / CHUNK)], 'f32');
  const partialIndex = e.empty([Math.ceil(count / CHUNK)], 'u32');
  const centre = e.empty([2 * ndim], 'f32');
  const list = { fgPixel, fgSeed, fgEmbedding, unclustered, inProposal, fgLabel };
  e.dispatch({
    shader: 'cluster', entry: 'compact_foreground', workgroups: workgroupsOver(n),
    bindings: { params: { ...pixelParams, count }, seed, embedding, chunkOffsets, ...list },
  });

  const listParams = params(count, count);
  const assign = () => e.dispatch({
    shader: 'cluster', entry: 'assign', workgroups: workgroupsOver(count),
    bindings: { params: listParams, state, inProposal, unclustered, fgLabel, fgSeed, partialValue, partialIndex },
  });
  const iterate = () => {
    e.dispatch({
      shader: 'cluster', entry: 'select_seed', workgroups: [1],
      bindings: { params: listParams, state, partialValue, partialIndex, unclustered, fgPixel, fgEmbedding, sigma, centre },
    });
    e.dispatch({
      shader: 'cluster', entry: 'build_proposal', workgroups: workgroupsOver(count),
      bindings: { params: listParams, state, fgEmbedding, centre, inProposal, unclustered },
    });
    e.dispatch({ shader: 'cluster', entry: 'decide', bindings: { params: listParams, state }, workgroups: [1] });
    assign();
  };
  // The first assign only finds each chunk's best candidate (no entry is in a proposal yet). Every iteration
  // clusters at least its seed, so the loop ends after at most `count` iterations.
  assign();
  let done = false;
  for (let iterations = 0, batch = FIRST_BATCH; !done && iterations < count; iterations += batch, batch = Math.min(2 * batch, MAX_BATCH)) {
    for (let i = 0; i < batch; i++) iterate();
    done = (await state.data())[DONE] !== 0;
  }

  const labels = e.zeros(spatial, 'i32');
  e.dispatch({ shader: 'cluster', entry: 'scatter_labels', workgroups: workgroupsOver(count), bindings: { params: listParams, fgPixel, fgLabel, labels } });
  return labels;
}
