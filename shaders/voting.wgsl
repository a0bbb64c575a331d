// Hough voting, RDCNet's inference post-processing (papers/rdcnet.md "Post-processing", SPEC.md "Voting"), and the
// label clean-ups every model's post-processing shares; the blur, peaks and nearest-centre assignment are
// shaders/peaks.wgsl's. Volumes are [D, H, W] (D = 1 in 2D), linear index i = (z * H + y) * W + x; embeddings are
// [ndim, D, H, W] in physical units.
// #include "common/index.wgsl"

struct MaskParams {
  n: u32,
  threshold: f32,
}

struct VoteParams {
  // (D, H, W, D·H·W)
  shape: vec4<u32>,
  // Voxel size per axis (z, y, x); 1 for the missing z of 2D.
  spacing: vec4<f32>,
  ndim: u32,
}

struct CentreParams {
  n: u32,
  minCount: u32,
}

struct MorphParams {
  // (D, H, W, D·H·W)
  shape: vec4<u32>,
  offsets: u32,
}

struct SizeParams {
  n: u32,
  maxLabel: u32,
  minSize: u32,
}

@group(0) @binding(0) var<storage, read> probability: array<f32>;
@group(0) @binding(1) var<storage, read_write> fgMask: array<u32>;
@group(0) @binding(2) var<uniform> maskParams: MaskParams;

@group(0) @binding(3) var<storage, read> embeddings: array<f32>;
@group(0) @binding(4) var<storage, read> foreground: array<u32>;
@group(0) @binding(5) var<storage, read_write> votes: array<atomic<u32>>;
@group(0) @binding(6) var<uniform> voteParams: VoteParams;

@group(0) @binding(7) var<storage, read> counts: array<u32>;
@group(0) @binding(8) var<storage, read_write> flags: array<u32>;
@group(0) @binding(9) var<uniform> centreParams: CentreParams;

@group(0) @binding(10) var<storage, read> labelsIn: array<i32>;
@group(0) @binding(11) var<storage, read_write> labelsOut: array<i32>;
@group(0) @binding(12) var<storage, read> seOffsets: array<i32>;
@group(0) @binding(13) var<storage, read_write> eroded: array<i32>;
@group(0) @binding(14) var<uniform> morphParams: MorphParams;

@group(0) @binding(15) var<storage, read_write> sizes: array<atomic<u32>>;
@group(0) @binding(16) var<uniform> sizeParams: SizeParams;
// Per label value whether it is kept, and the exclusive prefix sum of those flags (exclusiveScan): its new label − 1.
@group(0) @binding(17) var<storage, read> kept: array<u32>;
@group(0) @binding(18) var<storage, read> keptOffsets: array<u32>;

// ---- foreground ------------------------------------------------------------------------------------------------------

// Each invocation thresholds one pixel's foreground probability into the mask the other kernels read.
@compute @workgroup_size(WORKGROUP_SIZE)
fn foreground_from_probability(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = flat_index(gid, nwg);
  if (i < maskParams.n) { fgMask[i] = select(0u, 1u, probability[i] > maskParams.threshold); }
}

// ---- votes -------------------------------------------------------------------------------------------------------------

// Embedding of pixel i along volume axis a (0 = z, 1 = y, 2 = x); 0 for the z of 2D.
fn embedding(i: u32, a: u32) -> f32 {
  let missing = 3u - voteParams.ndim;
  if (a < missing) { return 0.0; }
  return embeddings[(a - missing) * voteParams.shape.w + i];
}

// Each invocation casts one foreground pixel's vote: its embedding rounded (half up) to a voxel index, dropped when
// that voxel lies outside the image.
@compute @workgroup_size(WORKGROUP_SIZE)
fn cast_votes(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = flat_index(gid, nwg);
  if (i >= voteParams.shape.w || foreground[i] == 0u) { return; }
  var voxel = vec3<u32>();
  for (var a = 0u; a < 3u; a++) {
    let v = floor(embedding(i, a) / voteParams.spacing[a] + 0.5);
    // Written so that NaN fails too.
    if (!(v >= 0.0 && v < f32(voteParams.shape[a]))) { return; }
    voxel[a] = u32(v);
  }
  atomicAdd(&votes[index3(voxel, voteParams.shape.xyz)], 1u);
}

// ---- centres ---------------------------------------------------------------------------------------------------------

// Each invocation flags whether one bin has the minCount raw votes a centre needs (the mask of findPeaks).
@compute @workgroup_size(WORKGROUP_SIZE)
fn enough_votes(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = flat_index(gid, nwg);
  if (i < centreParams.n) { flags[i] = select(0u, 1u, counts[i] >= centreParams.minCount); }
}

// ---- label-wise morphological opening --------------------------------------------------------------------------------

const NONE = 0xffffffffu;

// Voxel index of pixel i moved by structuring-element offset o times `direction` (±1), or NONE outside the volume.
fn shifted(i: u32, o: u32, direction: i32) -> u32 {
  let s = morphParams.shape.xyz;
  let q = vec3<i32>(coords3(i, s)) + direction * vec3(seOffsets[3u * o], seOffsets[3u * o + 1u], seOffsets[3u * o + 2u]);
  if (any(q < vec3(0)) || any(q >= vec3<i32>(s))) { return NONE; }
  return index3(vec3<u32>(q), s);
}

// Each invocation erodes one pixel: it keeps its label when every neighbour under the structuring element (inside the
// image: the border does not erode) carries the same label.
@compute @workgroup_size(WORKGROUP_SIZE)
fn erode_labels(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = flat_index(gid, nwg);
  if (i >= morphParams.shape.w) { return; }
  let label = labelsIn[i];
  var survives = label > 0;
  for (var o = 0u; o < morphParams.offsets && survives; o++) {
    let q = shifted(i, o, 1);
    survives = q == NONE || labelsIn[q] == label;
  }
  eroded[i] = select(0, label, survives);
}

// Each invocation dilates into one pixel: it keeps its original label when a neighbour under the structuring element
// survived the erosion with that label; labels <= 0 pass through.
@compute @workgroup_size(WORKGROUP_SIZE)
fn dilate_labels(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = flat_index(gid, nwg);
  if (i >= morphParams.shape.w) { return; }
  let label = labelsIn[i];
  var restored = label <= 0;
  for (var o = 0u; o < morphParams.offsets && !restored; o++) {
    let q = shifted(i, o, -1);
    restored = q != NONE && eroded[q] == label;
  }
  labelsOut[i] = select(0, label, restored);
}

// ---- small-object removal -------------------------------------------------------------------------------------------

// Each invocation counts one pixel into its label's size.
@compute @workgroup_size(WORKGROUP_SIZE)
fn label_sizes(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = flat_index(gid, nwg);
  if (i >= sizeParams.n) { return; }
  let label = labelsIn[i];
  if (label > 0 && u32(label) <= sizeParams.maxLabel) { atomicAdd(&sizes[label], 1u); }
}

// Each invocation flags whether one label value is kept (present with at least minSize pixels).
@compute @workgroup_size(WORKGROUP_SIZE)
fn keep_labels(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let l = flat_index(gid, nwg);
  if (l > sizeParams.maxLabel) { return; }
  let size = atomicLoad(&sizes[l]);
  flags[l] = select(0u, 1u, l > 0u && size > 0u && size >= sizeParams.minSize);
}

// Each invocation relabels one pixel: kept labels become 1 + their rank among kept labels, removed ones 0, labels
// <= 0 pass through.
@compute @workgroup_size(WORKGROUP_SIZE)
fn relabel(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = flat_index(gid, nwg);
  if (i >= sizeParams.n) { return; }
  let label = labelsIn[i];
  if (label <= 0) {
    labelsOut[i] = label;
  } else if (u32(label) > sizeParams.maxLabel || kept[label] == 0u) {
    labelsOut[i] = 0;
  } else {
    labelsOut[i] = i32(keptOffsets[label]) + 1;
  }
}
