// Peaks of maps and what finds and uses them (src/kernels/peaks.ts): separable line filters along one axis of a
// volume (Gaussian blur, and the maximum of (value, index) pairs over a window), peak marking, an exclusive prefix sum
// of u32 flags, the compaction of peaks into per-map lists, the top of those lists, and the assignment of points to
// their nearest centre. A batch of M maps is the volume [M, D, H, W] (D = 1 in 2D), linear index
// i = ((m·D + z)·H + y)·W + x; a map's P = D·H·W pixels are contiguous.
// #include "common/index.wgsl"
// #include "common/workgroup.wgsl"

struct LineParams {
  // Length of the filtered axis, product of the axes after it (its stride), product of the axes before it.
  len: u32,
  inner: u32,
  outer: u32,
  tilesAxis: u32,
  tilesInner: u32,
}

struct MarkParams {
  n: u32,
  // A peak's value must exceed this.
  threshold: f32,
}

struct ScanParams {
  n: u32,
  blocks: u32,
}

struct ListParams {
  maps: u32,
  pixels: u32,
  // (D, H, W, number of spatial axes) of one map, D = 1 (and H = 1) for missing axes.
  shape: vec4<u32>,
  // List entries per map.
  capacity: u32,
  // The value of entries past a map's peaks: −∞ (WGSL cannot write it as a constant).
  empty: f32,
}

struct TopParams {
  maps: u32,
  // Entries per map of the full lists, and of the top lists.
  capacity: u32,
  top: u32,
  dims: u32,
  empty: f32,
}

struct AssignParams {
  // Points (pixels of the image) and their coordinates (1 to 3).
  n: u32,
  dims: u32,
  // Rows of the centre list.
  centres: u32,
}

@group(0) @binding(0) var<uniform> lineParams: LineParams;
@group(0) @binding(1) var<storage, read> lineIn: array<f32>;
@group(0) @binding(2) var<storage, read_write> lineOut: array<f32>;
@group(0) @binding(3) var<storage, read> taps: array<f32>;
@group(0) @binding(4) var<storage, read> pairValueIn: array<f32>;
@group(0) @binding(5) var<storage, read> pairIndexIn: array<u32>;
@group(0) @binding(6) var<storage, read_write> pairValueOut: array<f32>;
@group(0) @binding(7) var<storage, read_write> pairIndexOut: array<u32>;

@group(0) @binding(8) var<uniform> markParams: MarkParams;
@group(0) @binding(9) var<storage, read> map: array<f32>;
// Nonzero where a peak may be.
@group(0) @binding(10) var<storage, read> mask: array<u32>;
@group(0) @binding(11) var<storage, read_write> flags: array<u32>;

@group(0) @binding(12) var<uniform> scanParams: ScanParams;
@group(0) @binding(13) var<storage, read> scanIn: array<u32>;
@group(0) @binding(14) var<storage, read_write> scanOut: array<u32>;
@group(0) @binding(15) var<storage, read_write> blockSums: array<u32>;
@group(0) @binding(16) var<storage, read_write> scanTotal: array<u32>;

@group(0) @binding(17) var<uniform> listParams: ListParams;
// The exclusive prefix sum of the peak flags over the whole batch, and its total.
@group(0) @binding(18) var<storage, read> offsets: array<u32>;
@group(0) @binding(19) var<storage, read> total: array<u32>;
// Per map a list of peaks: flat index within the map (−1 past the map's peaks), value (−∞ past them), coordinates
// per spatial axis in layout order (−1 past them), and per map the number of peaks.
@group(0) @binding(20) var<storage, read_write> peakIndices: array<i32>;
@group(0) @binding(21) var<storage, read_write> peakValues: array<f32>;
@group(0) @binding(22) var<storage, read_write> peakCoords: array<i32>;
@group(0) @binding(23) var<storage, read_write> peakCounts: array<u32>;

@group(0) @binding(24) var<uniform> topParams: TopParams;
// The full lists, and per map the order of their entries by value, largest first (sortRows' column indices).
@group(0) @binding(25) var<storage, read> listIndices: array<i32>;
@group(0) @binding(26) var<storage, read> listValues: array<f32>;
@group(0) @binding(27) var<storage, read> listCoords: array<i32>;
@group(0) @binding(28) var<storage, read> listCounts: array<u32>;
@group(0) @binding(29) var<storage, read> order: array<i32>;

@group(0) @binding(30) var<uniform> assignParams: AssignParams;
// [dims, n]: coordinate c of point i at points[c·n + i].
@group(0) @binding(31) var<storage, read> points: array<f32>;
// [centres, dims] row-major.
@group(0) @binding(32) var<storage, read> centres: array<f32>;
// How many rows of `centres` are in use (at most assignParams.centres).
@group(0) @binding(33) var<storage, read> centreCount: array<u32>;
@group(0) @binding(34) var<storage, read_write> labelsOut: array<i32>;

const NONE = 0xffffffffu;

// ---- separable line filters -----------------------------------------------------------------------------------------

// Filter radius along the axis; changes the workgroup tile, so it is an override.
override RADIUS: u32 = 0u;
// Outputs per workgroup along the filtered axis and along the unit-stride axes after it.
override TILE_AXIS: u32 = 16u;
override TILE_INNER: u32 = 16u;
// Tile rows (outputs plus the halo on both sides) × TILE_INNER.
override TILE_SIZE: u32 = (TILE_AXIS + 2u * RADIUS) * TILE_INNER;

var<workgroup> tileValue: array<f32, TILE_SIZE>;
var<workgroup> tileIndex: array<u32, TILE_SIZE>;

// The line segment a workgroup filters: (outer index, first position along the axis, first inner index).
fn line_tile(wid: vec3<u32>, nwg: vec3<u32>) -> vec3<u32> {
  let w = workgroup_index(wid, nwg);
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

// Each invocation blurs one value along the axis (zeros outside the map, as TensorFlow's 'SAME' conv); the workgroup
// stages its segment plus halo in workgroup memory.
@compute @workgroup_size(TILE_INNER, TILE_AXIS)
fn blur_line(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
             @builtin(local_invocation_id) lid: vec3<u32>) {
  let t = line_tile(wid, nwg);
  if (t.x >= lineParams.outer) { return; }
  for (var k = lid.y; k < TILE_AXIS + 2u * RADIUS; k += TILE_AXIS) {
    let at = tile_element(t, k, lid.x);
    var v = 0.0;
    if (at != NONE) { v = lineIn[at]; }
    tileValue[k * TILE_INNER + lid.x] = v;
  }
  workgroupBarrier();
  let o = output_element(t, lid);
  if (o == NONE) { return; }
  var acc = 0.0;
  for (var k = 0u; k <= 2u * RADIUS; k++) {
    acc += taps[k] * tileValue[(lid.y + k) * TILE_INNER + lid.x];
  }
  lineOut[o] = acc;
}

// (value, index) pairs ordered by value, then by lower index, and any pair above the NONE index of slots outside the
// map: a total order, so the maximum over a box is separable and a plateau has exactly one maximum in any window.
fn beats(v: f32, i: u32, w: f32, j: u32) -> bool {
  if (i == NONE) { return false; }
  return j == NONE || v > w || (v == w && i < j);
}

// Writes the maximum pair of this invocation's window from the tile.
fn write_max(t: vec3<u32>, lid: vec3<u32>) {
  let o = output_element(t, lid);
  if (o == NONE) { return; }
  var best = 0.0;
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

// Each invocation finds the maximum (value, index) pair over its window along the axis (the first pass: every value
// starts as its own pair).
@compute @workgroup_size(TILE_INNER, TILE_AXIS)
fn max_values(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
              @builtin(local_invocation_id) lid: vec3<u32>) {
  let t = line_tile(wid, nwg);
  if (t.x >= lineParams.outer) { return; }
  for (var k = lid.y; k < TILE_AXIS + 2u * RADIUS; k += TILE_AXIS) {
    let at = tile_element(t, k, lid.x);
    var v = 0.0;
    if (at != NONE) { v = lineIn[at]; }
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
    var v = 0.0;
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

// ---- peaks ----------------------------------------------------------------------------------------------------------

// Whether pixel i is a peak: the maximum of its window (the window's best pair is its own) above the threshold.
fn is_peak(i: u32) -> bool {
  return pairIndexIn[i] == i && map[i] > markParams.threshold;
}

// Each invocation flags whether one pixel is a peak.
@compute @workgroup_size(WORKGROUP_SIZE)
fn mark_peaks(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = flat_index(gid, nwg);
  if (i < markParams.n) { flags[i] = select(0u, 1u, is_peak(i)); }
}

// Each invocation flags whether one pixel is a peak where the mask allows one.
@compute @workgroup_size(WORKGROUP_SIZE)
fn mark_masked_peaks(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = flat_index(gid, nwg);
  if (i < markParams.n) { flags[i] = select(0u, 1u, mask[i] != 0u && is_peak(i)); }
}

// ---- exclusive prefix sum of u32 values (a block of SCAN_BLOCK per workgroup, then the block sums, then the carry-in)

// Elements per workgroup: 4 per invocation (a vec4) × WORKGROUP_SIZE.
const SCAN_BLOCK = 1024u;

// Each invocation scans 4 consecutive elements; the workgroup writes the exclusive prefix sum within its block of
// SCAN_BLOCK and the block's total.
@compute @workgroup_size(WORKGROUP_SIZE)
fn scan_blocks(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
               @builtin(local_invocation_index) lid: u32) {
  let blockIndex = workgroup_index(wid, nwg);
  if (blockIndex >= scanParams.blocks) { return; }
  let base = blockIndex * SCAN_BLOCK + lid * 4u;
  var v = vec4<u32>();
  for (var j = 0u; j < 4u; j++) {
    if (base + j < scanParams.n) { v[j] = scanIn[base + j]; }
  }
  let scan = workgroup_exclusive_scan_u32(lid, v.x + v.y + v.z + v.w);
  var run = scan.x;
  for (var j = 0u; j < 4u; j++) {
    if (base + j < scanParams.n) { scanOut[base + j] = run; }
    run += v[j];
  }
  if (lid == 0u) { blockSums[blockIndex] = scan.y; }
}

// One workgroup: the exclusive prefix sum of the block totals in place, SCAN_BLOCK at a time with a carry, and the
// grand total.
@compute @workgroup_size(WORKGROUP_SIZE)
fn scan_block_sums(@builtin(local_invocation_index) lid: u32) {
  var carry = 0u;
  for (var start = 0u; start < scanParams.blocks; start += SCAN_BLOCK) {
    let base = start + lid * 4u;
    var v = vec4<u32>();
    for (var j = 0u; j < 4u; j++) {
      if (base + j < scanParams.blocks) { v[j] = blockSums[base + j]; }
    }
    let scan = workgroup_exclusive_scan_u32(lid, v.x + v.y + v.z + v.w);
    var run = carry + scan.x;
    for (var j = 0u; j < 4u; j++) {
      if (base + j < scanParams.blocks) { blockSums[base + j] = run; }
      run += v[j];
    }
    carry += scan.y;
  }
  if (lid == 0u) { scanTotal[0] = carry; }
}

// Each invocation adds its block's carry-in to one element.
@compute @workgroup_size(WORKGROUP_SIZE)
fn scan_add(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = flat_index(gid, nwg);
  if (i < scanParams.n) { scanOut[i] += blockSums[i / SCAN_BLOCK]; }
}

// ---- peak lists -----------------------------------------------------------------------------------------------------

// Each invocation fills entry k of map m's list: the map's k-th peak in index order, found by binary search for the
// first pixel whose prefix sum passes the map's first + k (the peak is the pixel before it); entries past the map's
// peaks get index −1, value −∞ and coordinates −1. Entry 0 also writes the map's number of peaks.
@compute @workgroup_size(WORKGROUP_SIZE)
fn list_peaks(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let e = flat_index(gid, nwg);
  let p = listParams;
  if (e >= p.maps * p.capacity) { return; }
  let m = e / p.capacity;
  let k = e % p.capacity;
  let start = m * p.pixels;
  let first = offsets[start];
  var end = total[0];
  if (m + 1u < p.maps) { end = offsets[start + p.pixels]; }
  let count = min(end - first, p.capacity);
  if (k == 0u) { peakCounts[m] = count; }
  var index = -1;
  var value = p.empty;
  var c = vec3<i32>(-1);
  if (k < count) {
    var lo = start;
    var hi = start + p.pixels;
    while (lo < hi) {
      let mid = (lo + hi) / 2u;
      if (offsets[mid] > first + k) { hi = mid; } else { lo = mid + 1u; }
    }
    let i = lo - 1u;
    let pixel = i - start;
    index = i32(pixel);
    // −0 is listed as 0, so that sorting by value (which orders −0 below 0) agrees with the peak test's ties.
    value = select(map[i], 0.0, map[i] == 0.0);
    c = vec3<i32>(coords3(pixel, p.shape.xyz));
  }
  peakIndices[e] = index;
  peakValues[e] = value;
  for (var d = 0u; d < p.shape.w; d++) { peakCoords[e * p.shape.w + d] = c[3u - p.shape.w + d]; }
}

// Each invocation fills entry k of map m's top list from the entry of the full list that `order` puts k-th; entries
// past the map's peaks as in list_peaks. Entry 0 also writes the number of peaks kept.
@compute @workgroup_size(WORKGROUP_SIZE)
fn top_peaks(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let e = flat_index(gid, nwg);
  let p = topParams;
  if (e >= p.maps * p.top) { return; }
  let m = e / p.top;
  let k = e % p.top;
  let count = min(listCounts[m], p.top);
  if (k == 0u) { peakCounts[m] = count; }
  if (k < count) {
    let source = m * p.capacity + u32(order[m * p.capacity + k]);
    peakIndices[e] = listIndices[source];
    peakValues[e] = listValues[source];
    for (var d = 0u; d < p.dims; d++) { peakCoords[e * p.dims + d] = listCoords[source * p.dims + d]; }
  } else {
    peakIndices[e] = -1;
    peakValues[e] = p.empty;
    for (var d = 0u; d < p.dims; d++) { peakCoords[e * p.dims + d] = -1; }
  }
}

// ---- nearest centre -------------------------------------------------------------------------------------------------

// Centres staged per step, one per invocation.
var<workgroup> centreTile: array<vec3<f32>, WORKGROUP_SIZE>;
var<workgroup> centreTotal: u32;

// Coordinates are right-aligned in a vec3 (missing leading ones 0), for points and centres alike.
fn point(i: u32) -> vec3<f32> {
  var v = vec3<f32>();
  let missing = 3u - assignParams.dims;
  for (var c = 0u; c < assignParams.dims; c++) { v[missing + c] = points[c * assignParams.n + i]; }
  return v;
}

fn centre(k: u32) -> vec3<f32> {
  var v = vec3<f32>();
  let missing = 3u - assignParams.dims;
  for (var c = 0u; c < assignParams.dims; c++) { v[missing + c] = centres[k * assignParams.dims + c]; }
  return v;
}

// Labels point i (when `inside`): 0 unless `selected`, else 1 + the index of its nearest centre (the lower index on
// ties; 0 without centres). The workgroup walks the centre list in tiles staged in workgroup memory, so call from
// uniform control flow.
fn assign_point(i: u32, lid: u32, inside: bool, selected: bool) {
  if (lid == 0u) { centreTotal = min(centreCount[0], assignParams.centres); }
  let k = workgroupUniformLoad(&centreTotal);
  var e = vec3<f32>();
  if (selected) { e = point(i); }
  var best = 3.402823e38;
  var label = 0;
  for (var start = 0u; start < k; start += WORKGROUP_SIZE) {
    let c = start + lid;
    if (c < k) { centreTile[lid] = centre(c); }
    workgroupBarrier();
    if (selected) {
      let count = min(WORKGROUP_SIZE, k - start);
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

// Each invocation labels one point with its nearest centre.
@compute @workgroup_size(WORKGROUP_SIZE)
fn assign_nearest(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                  @builtin(local_invocation_index) lid: u32) {
  let i = flat_index(gid, nwg);
  let inside = i < assignParams.n;
  assign_point(i, lid, inside, inside);
}

// Each invocation labels one point with its nearest centre where the mask is nonzero, else 0.
@compute @workgroup_size(WORKGROUP_SIZE)
fn assign_nearest_masked(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                         @builtin(local_invocation_index) lid: u32) {
  let i = flat_index(gid, nwg);
  let inside = i < assignParams.n;
  assign_point(i, lid, inside, inside && mask[i] != 0u);
}
