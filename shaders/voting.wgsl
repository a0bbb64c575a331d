// Hough voting, RDCNet's inference post-processing (papers/rdcnet.md "Post-processing", SPEC.md "Voting"), and the
// label clean-ups every model's post-processing shares. Volumes are [D, H, W] (D = 1 in 2D), linear index
// i = (z * H + y) * W + x; embeddings are [ndim, D, H, W] in physical units, centres are stored as (z, y, x) triples
// in physical units (z = 0 in 2D, where embeddings have no z channel).
// 1D kernels fold their index over y when more than 65535 workgroups are needed: i = gid.x + gid.y * nwg.x * 256.

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
  // Centres the list has room for (an upper bound on how many there can be).
  capacity: u32,
}

struct LineParams {
  // Length of the filtered axis, product of the axes after it (its stride), product of the axes before it.
  len: u32,
  inner: u32,
  outer: u32,
  tilesAxis: u32,
  tilesInner: u32,
}

struct CentreParams {
  n: u32,
  minCount: u32,
}

struct ScanParams {
  n: u32,
  blocks: u32,
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
@group(0) @binding(8) var<storage, read> blurIn: array<f32>;
@group(0) @binding(9) var<storage, read_write> blurOut: array<f32>;
@group(0) @binding(10) var<storage, read> taps: array<f32>;
@group(0) @binding(11) var<storage, read> pairValueIn: array<f32>;
@group(0) @binding(12) var<storage, read> pairIndexIn: array<u32>;
@group(0) @binding(13) var<storage, read_write> pairValueOut: array<f32>;
@group(0) @binding(14) var<storage, read_write> pairIndexOut: array<u32>;
@group(0) @binding(15) var<uniform> lineParams: LineParams;

@group(0) @binding(16) var<storage, read_write> flags: array<u32>;
@group(0) @binding(17) var<uniform> centreParams: CentreParams;

@group(0) @binding(18) var<storage, read> scanIn: array<u32>;
@group(0) @binding(19) var<storage, read_write> scanOut: array<u32>;
@group(0) @binding(20) var<storage, read_write> blockSums: array<u32>;
@group(0) @binding(21) var<storage, read_write> scanTotal: array<u32>;
@group(0) @binding(22) var<uniform> scanParams: ScanParams;

@group(0) @binding(23) var<storage, read_write> centres: array<f32>;
@group(0) @binding(24) var<storage, read_write> labelsOut: array<i32>;

@group(0) @binding(25) var<storage, read> labelsIn: array<i32>;
@group(0) @binding(26) var<storage, read> seOffsets: array<i32>;
@group(0) @binding(27) var<storage, read_write> eroded: array<i32>;
@group(0) @binding(28) var<uniform> morphParams: MorphParams;

@group(0) @binding(29) var<storage, read_write> sizes: array<atomic<u32>>;
@group(0) @binding(30) var<uniform> sizeParams: SizeParams;

fn linear_id(gid: vec3<u32>, nwg: vec3<u32>) -> u32 {
  return gid.x + gid.y * nwg.x * 256u;
}

// ---- foreground ------------------------------------------------------------------------------------------------------

// Each invocation thresholds one pixel's foreground probability into the mask the other kernels read.
@compute @workgroup_size(256)
fn foreground_from_probability(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = linear_id(gid, nwg);
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
@compute @workgroup_size(256)
fn cast_votes(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = linear_id(gid, nwg);
  if (i >= voteParams.shape.w || foreground[i] == 0u) { return; }
  var bin = 0u;
  for (var a = 0u; a < 3u; a++) {
    let v = floor(embedding(i, a) / voteParams.spacing[a] + 0.5);
    // Written so that NaN fails too.
    if (!(v >= 0.0 && v < f32(voteParams.shape[a]))) { return; }
    bin = bin * voteParams.shape[a] + u32(v);
  }
  atomicAdd(&votes[bin], 1u);
}

// ---- separable line filters: Gaussian blur and (value, index) maximum --------------------------------------------------

// Filter radius along the axis; changes the workgroup tile, so it is an override.
override RADIUS: u32 = 0u;
// Outputs per workgroup along the filtered axis and along the unit-stride axes after it.
override TILE_AXIS: u32 = 16u;
override TILE_INNER: u32 = 16u;
// Tile rows (outputs plus the halo on both sides) × TILE_INNER.
override TILE_SIZE: u32 = (TILE_AXIS + 2u * RADIUS) * TILE_INNER;

const NONE = 0xffffffffu;

var<workgroup> tileValue: array<f32, TILE_SIZE>;
var<workgroup> tileIndex: array<u32, TILE_SIZE>;

// The line segment a workgroup filters: (outer index, first position along the axis, first inner index).
fn line_tile(wid: vec3<u32>, nwg: vec3<u32>) -> vec3<u32> {
  let w = wid.x + wid.y * nwg.x;
  let ti = w % lineParams.tilesInner;
  let ta = (w / lineParams.tilesInner) % lineParams.tilesAxis;
  return vec3(w / (lineParams.tilesInner * lineParams.tilesAxis), ta * TILE_AXIS, ti * TILE_INNER);
}

// Element index of tile row k (RADIUS rows before the tile's first output) at inner lane `lane`, or NONE outside.
fn tile_element(t: vec3<u32>, k: u32, lane: u32) -> u32 {
  let a = i32(t.y + k) - i32(RADIUS);
  let i = t.z + lane;
  if (a < 0 || a >= i32(lineParams.len) || i >= lineParams.inner) { return NONE; }
  return (t.x * lineParams.len + u32(a)) * lineParams.inner + i;
}

// Element index of this invocation's output, or NONE outside.
fn output_element(t: vec3<u32>, lid: vec3<u32>) -> u32 {
  let a = t.y + lid.y;
  let i = t.z + lid.x;
  if (a >= lineParams.len || i >= lineParams.inner) { return NONE; }
  return (t.x * lineParams.len + a) * lineParams.inner + i;
}

// Blurs this invocation's output from the tile of values (zeros outside the image, as TensorFlow's 'SAME' conv).
fn write_blur(t: vec3<u32>, lid: vec3<u32>) {
  let o = output_element(t, lid);
  if (o == NONE) { return; }
  var acc = 0.0;
  for (var k = 0u; k <= 2u * RADIUS; k++) {
    acc += taps[k] * tileValue[(lid.y + k) * TILE_INNER + lid.x];
  }
  blurOut[o] = acc;
}

// Each invocation blurs one vote count along the axis; the workgroup stages its segment plus halo in workgroup memory.
@compute @workgroup_size(TILE_INNER, TILE_AXIS)
fn blur_votes(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
              @builtin(local_invocation_id) lid: vec3<u32>) {
  let t = line_tile(wid, nwg);
  if (t.x >= lineParams.outer) { return; }
  for (var k = lid.y; k < TILE_AXIS + 2u * RADIUS; k += TILE_AXIS) {
    let at = tile_element(t, k, lid.x);
    var v = 0.0;
    if (at != NONE) { v = f32(counts[at]); }
    tileValue[k * TILE_INNER + lid.x] = v;
  }
  workgroupBarrier();
  write_blur(t, lid);
}

// Each invocation blurs one value along the axis (the passes after the first).
@compute @workgroup_size(TILE_INNER, TILE_AXIS)
fn blur_line(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
             @builtin(local_invocation_id) lid: vec3<u32>) {
  let t = line_tile(wid, nwg);
  if (t.x >= lineParams.outer) { return; }
  for (var k = lid.y; k < TILE_AXIS + 2u * RADIUS; k += TILE_AXIS) {
    let at = tile_element(t, k, lid.x);
    var v = 0.0;
    if (at != NONE) { v = blurIn[at]; }
    tileValue[k * TILE_INNER + lid.x] = v;
  }
  workgroupBarrier();
  write_blur(t, lid);
}

// (value, index) pairs ordered by value, then by lower index: a total order, so the maximum over a box is separable
// and a plateau has exactly one maximum in any window.
fn beats(v: f32, i: u32, w: f32, j: u32) -> bool {
  return v > w || (v == w && i < j);
}

// Writes the maximum pair of this invocation's window from the tile (slots outside the image hold index NONE, value -1,
// below every blurred value).
fn write_max(t: vec3<u32>, lid: vec3<u32>) {
  let o = output_element(t, lid);
  if (o == NONE) { return; }
  var best = -1.0;
  var bestIndex = NONE;
  for (var k = 0u; k <= 2u * RADIUS; k++) {
    let s = (lid.y + k) * TILE_INNER + lid.x;
    if (beats(tileValue[s], tileIndex[s], best, bestIndex)) {
      best = tileValue[s];
      bestIndex = tileIndex[s];
    }
  }
  pairValueOut[o] = best;
  pairIndexOut[o] = bestIndex;
}

// Each invocation finds the maximum (blurred value, index) pair over its window along the axis (the first pass: every
// bin starts as its own pair).
@compute @workgroup_size(TILE_INNER, TILE_AXIS)
fn max_blurred(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
               @builtin(local_invocation_id) lid: vec3<u32>) {
  let t = line_tile(wid, nwg);
  if (t.x >= lineParams.outer) { return; }
  for (var k = lid.y; k < TILE_AXIS + 2u * RADIUS; k += TILE_AXIS) {
    let at = tile_element(t, k, lid.x);
    var v = -1.0;
    if (at != NONE) { v = blurIn[at]; }
    tileValue[k * TILE_INNER + lid.x] = v;
    tileIndex[k * TILE_INNER + lid.x] = at;
  }
  workgroupBarrier();
  write_max(t, lid);
}

// Each invocation finds the maximum pair over its window along the axis (the passes after the first).
@compute @workgroup_size(TILE_INNER, TILE_AXIS)
fn max_pairs(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
             @builtin(local_invocation_id) lid: vec3<u32>) {
  let t = line_tile(wid, nwg);
  if (t.x >= lineParams.outer) { return; }
  for (var k = lid.y; k < TILE_AXIS + 2u * RADIUS; k += TILE_AXIS) {
    let at = tile_element(t, k, lid.x);
    var v = -1.0;
    var j = NONE;
    if (at != NONE) {
      v = pairValueIn[at];
      j = pairIndexIn[at];
    }
    tileValue[k * TILE_INNER + lid.x] = v;
    tileIndex[k * TILE_INNER + lid.x] = j;
  }
  workgroupBarrier();
  write_max(t, lid);
}

// ---- centres ---------------------------------------------------------------------------------------------------------

// Each invocation decides whether one bin is a centre: the maximum of its window (the window's best pair is its own),
// with a positive blurred value and at least minCount raw votes.
@compute @workgroup_size(256)
fn mark_centres(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = linear_id(gid, nwg);
  if (i >= centreParams.n) { return; }
  flags[i] = select(0u, 1u, pairIndexIn[i] == i && blurIn[i] > 0.0 && counts[i] >= centreParams.minCount);
}

// ---- exclusive prefix sum of u32 flags (a block of 1024 per workgroup, then the block sums, then the carry-in) ----------

const SCAN_BLOCK = 1024u;

var<workgroup> scanShared: array<u32, 256>;

// Exclusive prefix sum of x over the workgroup's 256 invocations (Hillis–Steele); scanShared[255] then holds the total.
fn workgroup_exclusive_scan(lid: u32, x: u32) -> u32 {
  scanShared[lid] = x;
  workgroupBarrier();
  for (var offset = 1u; offset < 256u; offset <<= 1u) {
    var y = 0u;
    if (lid >= offset) { y = scanShared[lid - offset]; }
    workgroupBarrier();
    scanShared[lid] += y;
    workgroupBarrier();
  }
  return scanShared[lid] - x;
}

// Each invocation scans 4 consecutive elements; the workgroup writes the exclusive prefix sum within its block of 1024
// and the block's total.
@compute @workgroup_size(256)
fn scan_blocks(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
               @builtin(local_invocation_index) lid: u32) {
  let blockIndex = wid.x + wid.y * nwg.x;
  if (blockIndex >= scanParams.blocks) { return; }
  let base = blockIndex * SCAN_BLOCK + lid * 4u;
  var v = vec4<u32>();
  for (var j = 0u; j < 4u; j++) {
    if (base + j < scanParams.n) { v[j] = scanIn[base + j]; }
  }
  let own = v.x + v.y + v.z + v.w;
  var run = workgroup_exclusive_scan(lid, own);
  for (var j = 0u; j < 4u; j++) {
    if (base + j < scanParams.n) { scanOut[base + j] = run; }
    run += v[j];
  }
  if (lid == 255u) { blockSums[blockIndex] = run; }
}

// One workgroup: the exclusive prefix sum of the block totals in place, 1024 at a time with a carry, and the grand total.
@compute @workgroup_size(256)
fn scan_block_sums(@builtin(local_invocation_index) lid: u32) {
  var carry = 0u;
  for (var start = 0u; start < scanParams.blocks; start += SCAN_BLOCK) {
    let base = start + lid * 4u;
    var v = vec4<u32>();
    for (var j = 0u; j < 4u; j++) {
      if (base + j < scanParams.blocks) { v[j] = blockSums[base + j]; }
    }
    var run = carry + workgroup_exclusive_scan(lid, v.x + v.y + v.z + v.w);
    for (var j = 0u; j < 4u; j++) {
      if (base + j < scanParams.blocks) { blockSums[base + j] = run; }
      run += v[j];
    }
    carry += scanShared[255];
    workgroupBarrier();
  }
  if (lid == 0u) { scanTotal[0] = carry; }
}

// Each invocation adds its block's carry-in to one element.
@compute @workgroup_size(256)
fn scan_add(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = linear_id(gid, nwg);
  if (i < scanParams.n) { scanOut[i] += blockSums[i / SCAN_BLOCK]; }
}

// ---- centre list and assignment -------------------------------------------------------------------------------------

// Each invocation writes one centre bin's physical coordinates at its rank among the centres (labels follow bin order).
@compute @workgroup_size(256)
fn compact_centres(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = linear_id(gid, nwg);
  let s = voteParams.shape;
  if (i >= s.w || scanIn[i] == 0u) { return; }
  let c = scanOut[i];
  if (c >= voteParams.capacity) { return; }
  let index = vec3(i / (s.y * s.z), (i / s.z) % s.y, i % s.z);
  let p = vec3<f32>(index) * voteParams.spacing.xyz;
  centres[3u * c] = p.x;
  centres[3u * c + 1u] = p.y;
  centres[3u * c + 2u] = p.z;
}

const CENTRE_TILE = 256u;

var<workgroup> centreTile: array<vec3<f32>, CENTRE_TILE>;
var<workgroup> centreTotal: u32;

// Each invocation labels one pixel: background 0, foreground 1 + the index of the nearest centre in embedding space
// (the lower index on ties). The workgroup walks the centre list in tiles staged in workgroup memory.
@compute @workgroup_size(256)
fn assign_labels(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                 @builtin(local_invocation_index) lid: u32) {
  let i = linear_id(gid, nwg);
  if (lid == 0u) { centreTotal = min(scanTotal[0], voteParams.capacity); }
  let k = workgroupUniformLoad(&centreTotal);
  let inside = i < voteParams.shape.w;
  let isForeground = inside && foreground[i] != 0u;
  var e = vec3<f32>();
  if (isForeground) { e = vec3(embedding(i, 0u), embedding(i, 1u), embedding(i, 2u)); }
  var best = 3.402823e38;
  var label = 0;
  for (var start = 0u; start < k; start += CENTRE_TILE) {
    let c = start + lid;
    if (c < k) { centreTile[lid] = vec3(centres[3u * c], centres[3u * c + 1u], centres[3u * c + 2u]); }
    workgroupBarrier();
    if (isForeground) {
      let count = min(CENTRE_TILE, k - start);
      for (var j = 0u; j < count; j++) {
        let d = e - centreTile[j];
        let d2 = dot(d, d);
        if (d2 < best) {
          best = d2;
          label = i32(start + j) + 1;
        }
      }
    }
    workgroupBarrier();
  }
  if (inside) { labelsOut[i] = label; }
}

// ---- label-wise morphological opening --------------------------------------------------------------------------------

// Voxel index of pixel i moved by structuring-element offset o times `direction` (±1), or NONE outside the volume.
fn shifted(i: u32, o: u32, direction: i32) -> u32 {
  let s = morphParams.shape;
  let p = vec3<i32>(vec3(i / (s.y * s.z), (i / s.z) % s.y, i % s.z));
  let q = p + direction * vec3(seOffsets[3u * o], seOffsets[3u * o + 1u], seOffsets[3u * o + 2u]);
  if (any(q < vec3(0)) || any(q >= vec3<i32>(s.xyz))) { return NONE; }
  return u32((q.x * i32(s.y) + q.y) * i32(s.z) + q.z);
}

// Each invocation erodes one pixel: it keeps its label when every neighbour under the structuring element (inside the
// image: the border does not erode) carries the same label.
@compute @workgroup_size(256)
fn erode_labels(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = linear_id(gid, nwg);
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
@compute @workgroup_size(256)
fn dilate_labels(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = linear_id(gid, nwg);
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
@compute @workgroup_size(256)
fn label_sizes(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = linear_id(gid, nwg);
  if (i >= sizeParams.n) { return; }
  let label = labelsIn[i];
  if (label > 0 && u32(label) <= sizeParams.maxLabel) { atomicAdd(&sizes[label], 1u); }
}

// Each invocation flags whether one label value is kept (present with at least minSize pixels).
@compute @workgroup_size(256)
fn keep_labels(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let l = linear_id(gid, nwg);
  if (l > sizeParams.maxLabel) { return; }
  let size = atomicLoad(&sizes[l]);
  flags[l] = select(0u, 1u, l > 0u && size > 0u && size >= sizeParams.minSize);
}

// Each invocation relabels one pixel: kept labels become 1 + their rank among kept labels, removed ones 0, labels
// <= 0 pass through.
@compute @workgroup_size(256)
fn relabel(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = linear_id(gid, nwg);
  if (i >= sizeParams.n) { return; }
  let label = labelsIn[i];
  if (label <= 0) {
    labelsOut[i] = label;
  } else if (u32(label) > sizeParams.maxLabel || scanIn[label] == 0u) {
    labelsOut[i] = 0;
  } else {
    labelsOut[i] = i32(scanOut[label]) + 1;
  }
}
