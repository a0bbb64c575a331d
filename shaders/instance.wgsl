// Instances of i32 label maps [N, 1, ...spatial] (src/kernels/instance.ts): 0 background, > 0 instance labels, < 0
// ignored. Every item n numbers its instances 0..K_n−1 in ascending label order: a hash table per item collects the
// distinct labels (instance_insert), a prefix sum lists them in slot order (instance_compact), each is ranked among
// the item's labels into the sorted list (instance_rank), and every pixel finds its label in the sorted list by
// binary search (instance_assign). The ids therefore depend only on the labels, not on the order in which
// invocations ran. Per-instance statistics accumulate with integer atomics (exact, so equally order-independent)
// and are finished per instance row (instance_stats).
// Pixel p of item n is labels[n·P + p]; its coordinates are its indices (z, y, x) in the spatial shape (D, H, W),
// with D = 1 (and H = 1) where the labels have fewer spatial axes.
// #include "common/index.wgsl"
// #include "common/workgroup.wgsl"

// Ids of pixels that are no instance.
const BACKGROUND: i32 = -1;
const IGNORED: i32 = -2;
// Words per instance row of `sums`: the pixel count, then per axis (z, y, x) the low and high words of the sum of
// its coordinates, then per axis the largest coordinate + 1 (0: no pixel yet).
const SIZE = 0u;
const SUM_LO = 1u;
const SUM_HI = 4u;
const MAX = 7u;
const SUM_WORDS = 10u;

struct InstanceParams {
  items: u32,
  pixels: u32,
  // Hash slots per item: a power of two ≥ pixels, so an insertion always finds room.
  slots: u32,
  // Workgroups per item of instance_rank, each ranking WORKGROUP_SIZE entries of the item's list.
  blocks: u32,
}

struct StatsParams {
  items: u32,
  pixels: u32,
  // (D, H, W, number of spatial axes).
  shape: vec4<u32>,
  // Instance rows per item.
  rows: u32,
}

@group(0) @binding(0) var<storage, read> labels: array<i32>;
@group(0) @binding(1) var<uniform> instances: InstanceParams;
// Per item an open-addressing table of `slots` labels (0 = empty), filled by instance_insert...
@group(0) @binding(2) var<storage, read_write> keys: array<atomic<i32>>;
// ...and read by instance_compact.
@group(0) @binding(3) var<storage, read> table: array<i32>;
// [N, P]: the first K_n entries of row n hold item n's distinct labels, in slot order...
@group(0) @binding(4) var<storage, read_write> labelList: array<i32>;
// ...and in ascending order: the label of instance k is sortedLabels[n·P + k].
@group(0) @binding(5) var<storage, read_write> sortedLabels: array<i32>;
// [N]: K_n, written by instance_compact.
@group(0) @binding(6) var<storage, read_write> counts: array<u32>;
@group(0) @binding(7) var<storage, read_write> ids: array<i32>;

@group(0) @binding(8) var<uniform> stats: StatsParams;
@group(0) @binding(9) var<storage, read> instanceIds: array<i32>;
@group(0) @binding(10) var<storage, read> instanceCounts: array<u32>;
@group(0) @binding(11) var<storage, read> instanceLabels: array<i32>;
// [N·rows, SUM_WORDS] zero-filled, and [N·rows, 3] the smallest coordinate per axis (filled with 0xffffffff).
@group(0) @binding(12) var<storage, read_write> sums: array<atomic<u32>>;
@group(0) @binding(13) var<storage, read_write> lows: array<atomic<u32>>;
// The same two buffers once accumulated.
@group(0) @binding(14) var<storage, read> summed: array<u32>;
@group(0) @binding(15) var<storage, read> lowest: array<u32>;
// Per instance row: its label, its pixel count, its mean coordinate and its bounding box (inclusive) per spatial axis.
@group(0) @binding(16) var<storage, read_write> rowLabels: array<i32>;
@group(0) @binding(17) var<storage, read_write> sizes: array<u32>;
@group(0) @binding(18) var<storage, read_write> centroids: array<f32>;
@group(0) @binding(19) var<storage, read_write> boxMin: array<i32>;
@group(0) @binding(20) var<storage, read_write> boxMax: array<i32>;

var<workgroup> rankTile: array<i32, WORKGROUP_SIZE>;
var<workgroup> sharedCount: u32;

// ---- numbering ------------------------------------------------------------------------------------------------------

// One invocation per pixel: an instance pixel makes sure its label holds a slot of its item's hash table (linear
// probing; which label ends in which slot depends on timing, which nothing downstream sees).
@compute @workgroup_size(WORKGROUP_SIZE)
fn instance_insert(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let idx = flat_index(gid, nwg);
  if (idx >= instances.items * instances.pixels) { return; }
  let label = labels[idx];
  if (label <= 0) { return; }
  let base = (idx / instances.pixels) * instances.slots;
  let mask = instances.slots - 1u;
  // An odd multiplier permutes the low bits: consecutive labels land in distinct slots.
  var h = (u32(label) * 0x9e3779b1u) & mask;
  loop {
    let r = atomicCompareExchangeWeak(&keys[base + h], 0, label);
    if (r.exchanged || r.old_value == label) { break; }
    // Another label holds the slot: probe the next one (a spurious failure, old value 0, retries the same slot).
    if (r.old_value != 0) { h = (h + 1u) & mask; }
  }
}

// One workgroup per item: lists the labels of the occupied slots of the item's table in slot order (each invocation
// owns a contiguous chunk of slots; an exclusive prefix sum over the chunks' counts gives its first list entry) and
// writes their number K into counts.
@compute @workgroup_size(WORKGROUP_SIZE)
fn instance_compact(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let n = wid.x;
  let base = n * instances.slots;
  let chunk = (instances.slots + WORKGROUP_SIZE - 1u) / WORKGROUP_SIZE;
  let begin = min(lid * chunk, instances.slots);
  let end = min(begin + chunk, instances.slots);
  var occupied = 0u;
  for (var s = begin; s < end; s++) {
    if (table[base + s] != 0) { occupied++; }
  }
  let scan = workgroup_exclusive_scan_u32(lid, occupied);
  var next = n * instances.pixels + scan.x;
  for (var s = begin; s < end; s++) {
    let key = table[base + s];
    if (key != 0) {
      labelList[next] = key;
      next++;
    }
  }
  if (lid == 0u) { counts[n] = scan.y; }
}

// One workgroup per (block b, item n), folded into one workgroup index: list entries j = WORKGROUP_SIZE·b + lid of
// item n count the item's labels below their own (staged WORKGROUP_SIZE at a time in workgroup memory), and write
// their label at that rank into sortedLabels. Labels are distinct, so the ranks are 0..K−1. Quadratic in K: meant for
// the tens to thousands of instances of an image.
@compute @workgroup_size(WORKGROUP_SIZE)
fn instance_rank(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                 @builtin(local_invocation_index) lid: u32) {
  let w = workgroup_index(wid, nwg);
  let n = w / instances.blocks;
  if (n >= instances.items) { return; }
  if (lid == 0u) { sharedCount = counts[n]; }
  let count = workgroupUniformLoad(&sharedCount);
  let first = (w % instances.blocks) * WORKGROUP_SIZE;
  if (first >= count) { return; }
  let row = n * instances.pixels;
  let j = first + lid;
  var own = 0;
  if (j < count) { own = labelList[row + j]; }
  var rank = 0u;
  for (var t = 0u; t < count; t += WORKGROUP_SIZE) {
    if (t + lid < count) { rankTile[lid] = labelList[row + t + lid]; }
    workgroupBarrier();
    let m = min(WORKGROUP_SIZE, count - t);
    for (var k = 0u; k < m; k++) {
      if (rankTile[k] < own) { rank++; }
    }
    workgroupBarrier();
  }
  if (j < count) { sortedLabels[row + rank] = own; }
}

// One invocation per pixel: an instance pixel's id is the position of its label in its item's sorted list (binary
// search); background and ignored pixels get BACKGROUND / IGNORED.
@compute @workgroup_size(WORKGROUP_SIZE)
fn instance_assign(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let idx = flat_index(gid, nwg);
  if (idx >= instances.items * instances.pixels) { return; }
  let label = labels[idx];
  if (label <= 0) {
    ids[idx] = select(BACKGROUND, IGNORED, label < 0);
    return;
  }
  let n = idx / instances.pixels;
  let row = n * instances.pixels;
  var lo = 0u;
  var hi = counts[n];
  while (lo < hi) {
    let mid = (lo + hi) / 2u;
    if (sortedLabels[row + mid] < label) { lo = mid + 1u; } else { hi = mid; }
  }
  ids[idx] = i32(lo);
}

// ---- statistics -----------------------------------------------------------------------------------------------------

// One invocation per pixel: an instance pixel whose id has a row adds itself to the row's count, coordinate sums
// (64-bit: a carry out of the low word goes to the high word), maxima and minima.
@compute @workgroup_size(WORKGROUP_SIZE)
fn instance_accumulate(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let idx = flat_index(gid, nwg);
  if (idx >= stats.items * stats.pixels) { return; }
  let id = instanceIds[idx];
  if (id < 0 || u32(id) >= stats.rows) { return; }
  let row = (idx / stats.pixels) * stats.rows + u32(id);
  let c = coords3(idx % stats.pixels, stats.shape.xyz);
  let at = row * SUM_WORDS;
  atomicAdd(&sums[at + SIZE], 1u);
  for (var a = 0u; a < 3u; a++) {
    let old = atomicAdd(&sums[at + SUM_LO + a], c[a]);
    if (old > 0xffffffffu - c[a]) { atomicAdd(&sums[at + SUM_HI + a], 1u); }
    atomicMax(&sums[at + MAX + a], c[a] + 1u);
    atomicMin(&lows[row * 3u + a], c[a]);
  }
}

// (hi·2³² + lo) / count to f32, for a quotient below 2³²: the integer quotient and remainder by long division
// (hi < count), then one rounding for q + r/count.
fn mean64(lo: u32, hi: u32, count: u32) -> f32 {
  var r = hi;
  var q = 0u;
  for (var bit = 31; bit >= 0; bit--) {
    r = (r << 1u) | ((lo >> u32(bit)) & 1u);
    q <<= 1u;
    if (r >= count) {
      r -= count;
      q |= 1u;
    }
  }
  return f32(q) + f32(r) / f32(count);
}

// One invocation per instance row (n, k): for k < K_n, instance k's label, pixel count, mean coordinate and
// bounding box along the labels' spatial axes; rows past the item's instances are zero.
@compute @workgroup_size(WORKGROUP_SIZE)
fn instance_stats(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let row = flat_index(gid, nwg);
  if (row >= stats.items * stats.rows) { return; }
  let n = row / stats.rows;
  let k = row % stats.rows;
  let dims = stats.shape.w;
  let present = k < instanceCounts[n];
  var label = 0;
  var size = 0u;
  if (present) {
    label = instanceLabels[n * stats.pixels + k];
    size = summed[row * SUM_WORDS + SIZE];
  }
  rowLabels[row] = label;
  sizes[row] = size;
  for (var d = 0u; d < dims; d++) {
    // Axis d of the labels is axis a of (z, y, x).
    let a = 3u - dims + d;
    let at = row * SUM_WORDS;
    var centre = 0.0;
    var low = 0;
    var high = 0;
    if (present) {
      centre = mean64(summed[at + SUM_LO + a], summed[at + SUM_HI + a], size);
      low = i32(lowest[row * 3u + a]);
      high = i32(summed[at + MAX + a]) - 1;
    }
    centroids[row * dims + d] = centre;
    boxMin[row * dims + d] = low;
    boxMax[row * dims + d] = high;
  }
}
