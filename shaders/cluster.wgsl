// EmbedSeg's greedy clustering of seeds (SPEC.md "Clustering", src/kernels/cluster.ts) on the foreground pixels only.
// The foreground (seed > fgThreshold) is first compacted in pixel order into a list of `count` entries k; every
// iteration then picks the unclustered entry with the highest seed, builds its proposal and accepts or rejects it,
// without a readback: the loop's scalars live in `state`, and once `state[DONE]` is set every kernel is a no-op.
// Embedding channel d of pixel i is embedding[d * n + i]; of list entry k, fgEmbedding[d * count + k].
// #include "common/index.wgsl"
// #include "common/workgroup.wgsl"

// Pixels or list entries per workgroup of the chunk kernels, ITEMS per invocation; the chunk is the workgroup index.
const CHUNK = 1024u;
const ITEMS = CHUNK / WORKGROUP_SIZE;
const NONE = 0xffffffffu;

// Slots of `state`.
const DONE = 0u;
// Instances accepted so far: the id the last accepted proposal wrote.
const INSTANCES = 1u;
// List entry of the current seed.
const SEED = 2u;
// Pixels in the current proposal, and how many of them were still unclustered.
const PROPOSAL_SIZE = 3u;
const PROPOSAL_UNCLUSTERED = 4u;
// Whether the current proposal was accepted.
const ACCEPT = 5u;
// Unclustered foreground pixels left.
const LEFT = 6u;
// Foreground pixels (the list's length), written by scan_foreground.
const COUNT = 7u;
// The length of `state`.
const STATE_SLOTS = 8u;

struct ClusterParams {
  // Pixels of the image.
  n: u32,
  // Entries of the foreground list (0 before it is compacted).
  count: u32,
  // Embedding dimensions (2 or 3).
  ndim: u32,
  // Workgroups of the chunk kernel being dispatched (over pixels before compaction, over list entries after).
  chunks: u32,
  fgThreshold: f32,
  // The seed threshold as the smallest f32 >= the f64 option, so `seed < seedThreshold` is the f64 comparison.
  seedThreshold: f32,
  minMaskSum: u32,
  minUnclusteredSum: u32,
  minUnclusteredRatio: f32,
}

@group(0) @binding(0) var<uniform> params: ClusterParams;
@group(0) @binding(1) var<storage, read> embedding: array<f32>;
@group(0) @binding(2) var<storage, read> sigma: array<f32>;
@group(0) @binding(3) var<storage, read> seed: array<f32>;
@group(0) @binding(4) var<storage, read_write> chunkOffsets: array<u32>;
@group(0) @binding(5) var<storage, read_write> state: array<atomic<u32>, STATE_SLOTS>;
@group(0) @binding(6) var<storage, read_write> fgPixel: array<u32>;
@group(0) @binding(7) var<storage, read_write> fgSeed: array<f32>;
@group(0) @binding(8) var<storage, read_write> fgEmbedding: array<f32>;
@group(0) @binding(9) var<storage, read_write> unclustered: array<u32>;
@group(0) @binding(10) var<storage, read_write> inProposal: array<u32>;
@group(0) @binding(11) var<storage, read_write> fgLabel: array<i32>;
@group(0) @binding(12) var<storage, read_write> partialValue: array<f32>;
@group(0) @binding(13) var<storage, read_write> partialIndex: array<u32>;
// The current seed's embedding (entries 0..ndim-1) and bandwidth exp(10·σ) (entries ndim..2·ndim-1).
@group(0) @binding(14) var<storage, read_write> centre: array<f32>;
@group(0) @binding(15) var<storage, read_write> labels: array<i32>;

var<workgroup> wgDone: u32;
var<workgroup> wgValue: array<f32, WORKGROUP_SIZE>;
var<workgroup> wgIndex: array<u32, WORKGROUP_SIZE>;
var<workgroup> wgSize: atomic<u32>;
var<workgroup> wgUnclustered: atomic<u32>;

fn is_foreground(i: u32) -> bool {
  return seed[i] > params.fgThreshold;
}

// Whether the loop has ended, read once per workgroup so that every invocation sees the same value (uniform control
// flow for the barriers after it).
fn loop_done(lid: u32) -> bool {
  if (lid == 0u) { wgDone = atomicLoad(&state[DONE]); }
  return workgroupUniformLoad(&wgDone) != 0u;
}

struct Candidate {
  value: f32,
  index: u32,
}

// Whether candidate a beats b: a higher seed, and on a tie the earlier entry (torch.argmax returns the first maximum).
fn better(a: Candidate, b: Candidate) -> bool {
  if (a.index == NONE) { return false; }
  if (b.index == NONE) { return true; }
  return a.value > b.value || (a.value == b.value && a.index < b.index);
}

// The workgroup's best candidate (tree reduction in workgroup memory); every invocation gets it.
fn workgroup_best(lid: u32, own: Candidate) -> Candidate {
  wgValue[lid] = own.value;
  wgIndex[lid] = own.index;
  workgroupBarrier();
  for (var half = WORKGROUP_SIZE / 2u; half > 0u; half /= 2u) {
    if (lid < half) {
      let other = Candidate(wgValue[lid + half], wgIndex[lid + half]);
      if (better(other, Candidate(wgValue[lid], wgIndex[lid]))) {
        wgValue[lid] = other.value;
        wgIndex[lid] = other.index;
      }
    }
    workgroupBarrier();
  }
  let best = Candidate(wgValue[0], wgIndex[0]);
  workgroupBarrier();
  return best;
}

// ---- compaction of the foreground --------------------------------------------------------------------------------------

// Each invocation counts the foreground among ITEMS pixels; chunkOffsets[chunk] gets the chunk's count.
@compute @workgroup_size(WORKGROUP_SIZE)
fn count_foreground(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                    @builtin(local_invocation_index) lid: u32) {
  let chunk = workgroup_index(wid, nwg);
  if (chunk >= params.chunks) { return; }
  var own = 0u;
  for (var j = 0u; j < ITEMS; j++) {
    let i = chunk * CHUNK + j * WORKGROUP_SIZE + lid;
    if (i < params.n && is_foreground(i)) { own++; }
  }
  // wgSize starts at zero (workgroup memory is zero-initialized).
  atomicAdd(&wgSize, own);
  workgroupBarrier();
  if (lid == 0u) { chunkOffsets[chunk] = atomicLoad(&wgSize); }
}

// The single workgroup turns the chunk counts into exclusive offsets, WORKGROUP_SIZE at a time with a carry, and stores the
// total as the list's length and the number of unclustered pixels.
@compute @workgroup_size(WORKGROUP_SIZE)
fn scan_foreground(@builtin(local_invocation_index) lid: u32) {
  var carry = 0u;
  for (var first = 0u; first < params.chunks; first += WORKGROUP_SIZE) {
    let b = first + lid;
    var own = 0u;
    if (b < params.chunks) { own = chunkOffsets[b]; }
    let scan = workgroup_exclusive_scan_u32(lid, own);
    if (b < params.chunks) { chunkOffsets[b] = carry + scan.x; }
    carry += scan.y;
  }
  if (lid == 0u) {
    atomicStore(&state[COUNT], carry);
    atomicStore(&state[LEFT], carry);
  }
}

// Each invocation copies its ITEMS consecutive pixels that are foreground to the list, in pixel order: the pixel index,
// seed and embedding, with the entry unclustered, outside any proposal and unlabelled.
@compute @workgroup_size(WORKGROUP_SIZE)
fn compact_foreground(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                      @builtin(local_invocation_index) lid: u32) {
  let chunk = workgroup_index(wid, nwg);
  if (chunk >= params.chunks) { return; }
  let first = chunk * CHUNK + lid * ITEMS;
  var own = 0u;
  for (var j = 0u; j < ITEMS; j++) {
    let i = first + j;
    if (i < params.n && is_foreground(i)) { own++; }
  }
  var k = chunkOffsets[chunk] + workgroup_exclusive_scan_u32(lid, own).x;
  for (var j = 0u; j < ITEMS; j++) {
    let i = first + j;
    if (i >= params.n || !is_foreground(i)) { continue; }
    fgPixel[k] = i;
    fgSeed[k] = seed[i];
    for (var d = 0u; d < params.ndim; d++) { fgEmbedding[d * params.count + k] = embedding[d * params.n + i]; }
    unclustered[k] = 1u;
    inProposal[k] = 0u;
    fgLabel[k] = 0;
    k++;
  }
}

// ---- one iteration: select_seed, build_proposal, decide, assign ---------------------------------------------------------

// The single workgroup reduces the per-chunk best candidates. Its invocation 0 ends the loop when too few pixels are
// unclustered or the best seed is below the threshold; otherwise it makes that entry the seed, marks it clustered,
// resets the proposal's counters and stores the seed's embedding and bandwidth.
@compute @workgroup_size(WORKGROUP_SIZE)
fn select_seed(@builtin(local_invocation_index) lid: u32) {
  if (loop_done(lid)) { return; }
  var own = Candidate(0.0, NONE);
  for (var b = lid; b < params.chunks; b += WORKGROUP_SIZE) {
    let c = Candidate(partialValue[b], partialIndex[b]);
    if (better(c, own)) { own = c; }
  }
  let best = workgroup_best(lid, own);
  if (lid != 0u) { return; }
  let left = atomicLoad(&state[LEFT]);
  if (left <= params.minUnclusteredSum || best.index == NONE || best.value < params.seedThreshold) {
    atomicStore(&state[DONE], 1u);
    return;
  }
  atomicStore(&state[SEED], best.index);
  atomicStore(&state[LEFT], left - 1u);
  atomicStore(&state[PROPOSAL_SIZE], 0u);
  atomicStore(&state[PROPOSAL_UNCLUSTERED], 0u);
  unclustered[best.index] = 0u;
  let pixel = fgPixel[best.index];
  for (var d = 0u; d < params.ndim; d++) {
    centre[d] = fgEmbedding[d * params.count + best.index];
    centre[params.ndim + d] = exp(10.0 * sigma[d * params.n + pixel]);
  }
}

// Each invocation tests ITEMS list entries against the seed: in the proposal when exp(−Σ_d (e_d − c_d)²·s_d) > 0.5. The
// workgroup adds how many are in it, and how many of those are unclustered, to the proposal's counters.
@compute @workgroup_size(WORKGROUP_SIZE)
fn build_proposal(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                  @builtin(local_invocation_index) lid: u32) {
  if (loop_done(lid)) { return; }
  let chunk = workgroup_index(wid, nwg);
  if (chunk >= params.chunks) { return; }
  // wgSize and wgUnclustered start at zero (workgroup memory is zero-initialized).
  var size = 0u;
  var fresh = 0u;
  for (var j = 0u; j < ITEMS; j++) {
    let k = chunk * CHUNK + j * WORKGROUP_SIZE + lid;
    if (k >= params.count) { break; }
    var distance = 0.0;
    for (var d = 0u; d < params.ndim; d++) {
      let diff = fgEmbedding[d * params.count + k] - centre[d];
      distance += diff * diff * centre[params.ndim + d];
    }
    let inside = exp(-distance) > 0.5;
    inProposal[k] = select(0u, 1u, inside);
    if (inside) {
      size++;
      fresh += unclustered[k];
    }
  }
  atomicAdd(&wgSize, size);
  atomicAdd(&wgUnclustered, fresh);
  workgroupBarrier();
  if (lid == 0u) {
    atomicAdd(&state[PROPOSAL_SIZE], atomicLoad(&wgSize));
    atomicAdd(&state[PROPOSAL_UNCLUSTERED], atomicLoad(&wgUnclustered));
  }
}

// One invocation accepts the proposal when it has more than minMaskSum pixels and more than minUnclusteredRatio of
// them were unclustered (the ratio in f32, as the reference divides float tensors); an accepted proposal takes the
// next instance id. Every proposal pixel is clustered from now on.
@compute @workgroup_size(1)
fn decide() {
  if (atomicLoad(&state[DONE]) != 0u) { return; }
  let size = atomicLoad(&state[PROPOSAL_SIZE]);
  let fresh = atomicLoad(&state[PROPOSAL_UNCLUSTERED]);
  let accept = size > params.minMaskSum && f32(fresh) / f32(size) > params.minUnclusteredRatio;
  atomicStore(&state[ACCEPT], select(0u, 1u, accept));
  if (accept) { atomicAdd(&state[INSTANCES], 1u); }
  atomicSub(&state[LEFT], fresh);
}

// Each invocation applies the decision to ITEMS list entries (an accepted proposal overwrites earlier labels; every
// proposal entry becomes clustered), then the workgroup stores its best unclustered candidate for the next
// select_seed. Before the first iteration no entry is in a proposal, and this only finds the candidates.
@compute @workgroup_size(WORKGROUP_SIZE)
fn assign(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
          @builtin(local_invocation_index) lid: u32) {
  if (loop_done(lid)) { return; }
  let chunk = workgroup_index(wid, nwg);
  if (chunk >= params.chunks) { return; }
  let accept = atomicLoad(&state[ACCEPT]) != 0u;
  let id = i32(atomicLoad(&state[INSTANCES]));
  var own = Candidate(0.0, NONE);
  for (var j = 0u; j < ITEMS; j++) {
    let k = chunk * CHUNK + j * WORKGROUP_SIZE + lid;
    if (k >= params.count) { break; }
    if (inProposal[k] != 0u) {
      if (accept) { fgLabel[k] = id; }
      unclustered[k] = 0u;
    } else if (unclustered[k] != 0u) {
      let c = Candidate(fgSeed[k], k);
      if (better(c, own)) { own = c; }
    }
  }
  let best = workgroup_best(lid, own);
  if (lid == 0u) {
    partialValue[chunk] = best.value;
    partialIndex[chunk] = best.index;
  }
}

// ---- result ------------------------------------------------------------------------------------------------------------

// Each invocation writes the labels of ITEMS list entries to their pixels (the rest of `labels` is zero).
@compute @workgroup_size(WORKGROUP_SIZE)
fn scatter_labels(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                  @builtin(local_invocation_index) lid: u32) {
  let chunk = workgroup_index(wid, nwg);
  for (var j = 0u; j < ITEMS; j++) {
    let k = chunk * CHUNK + j * WORKGROUP_SIZE + lid;
    if (k < params.count) { labels[fgPixel[k]] = fgLabel[k]; }
  }
}
