// Row-wise bitonic sort of [rows, cols] f32 keys, carrying each key's column index.
//
// Every row is sorted as if padded to a power of two (the padded row) with keys larger than any real key. First a
// workgroup sorts a segment in workgroup memory, with real PAD elements as padding (sort_tile): BLOCK elements of a
// row, or several whole rows each padded to `segment` when rows are shorter. Longer rows then run the stages
// k = 2·BLOCK … padded row of the network variant whose comparators all put the smaller element at the lower
// position: a flip (position i against its mirror i ^ (k − 1) in the block) and half-cleaners (i against i + j).
// Strides ≥ BLOCK are global passes (sort_global), the strides below go back to workgroup memory (sort_merge). In
// this variant the padding never moves, so comparators that reach a position ≥ cols are skipped and rows are never
// padded in memory.
//
// Keys are compared as sortable u32: the float bits mapped so that unsigned order is float order (inverted for a
// descending sort), with every NaN mapped to 0xffffffff so that NaNs come last in either order. Ties are broken by
// the column index, which makes the sort stable. The work arrays are the outputs: `workKeys` holds the sortable keys
// until the last pass turns them back into float bits.
// #include "common/index.wgsl"

// Elements a workgroup sorts in workgroup memory: 8 per invocation (the registers of tile_round) × WORKGROUP_SIZE.
const BLOCK = 2048u;
// Sortable key and index of the padding: larger than any real (key, index) pair.
const PAD = 0xffffffffu;

struct SortParams {
  rows: u32,
  cols: u32,
  // Elements per segment: min(padded row, BLOCK), a power of two, and its log2.
  segment: u32,
  segmentLog: u32,
  // Segments holding real elements per row: ceil(cols / segment).
  segmentsPerRow: u32,
  // Block size of the stage (global passes and merges); global passes: comparator stride, 1 for the flip step,
  // log2(padded row / 2).
  k: u32,
  j: u32,
  flip: u32,
  halfLog: u32,
  descending: u32,
  // 1 on the last pass: write float bits instead of sortable keys.
  finish: u32,
}

@group(0) @binding(0) var<storage, read> keys: array<f32>;
@group(0) @binding(1) var<storage, read_write> workKeys: array<u32>;
@group(0) @binding(2) var<storage, read_write> workIndices: array<u32>;
@group(0) @binding(3) var<uniform> sortParams: SortParams;

var<workgroup> tileKeys: array<u32, BLOCK>;
var<workgroup> tileIndices: array<u32, BLOCK>;

fn sortable(x: f32) -> u32 {
  let bits = bitcast<u32>(x);
  if ((bits & 0x7fffffffu) > 0x7f800000u) { return PAD; }
  let ascending = select(bits | 0x80000000u, ~bits, (bits & 0x80000000u) != 0u);
  return select(ascending, ~ascending, sortParams.descending != 0u);
}

// The float bits of a sortable key (a NaN comes back as the canonical quiet NaN).
fn float_bits(key: u32) -> u32 {
  if (key == PAD) { return 0x7fc00000u; }
  let ascending = select(key, ~key, sortParams.descending != 0u);
  return select(~ascending, ascending & 0x7fffffffu, (ascending & 0x80000000u) != 0u);
}

fn out_of_order(keyA: u32, indexA: u32, keyB: u32, indexB: u32) -> bool {
  return (keyA > keyB) | ((keyA == keyB) & (indexA > indexB));
}

// Lower position of comparator p (0 ≤ p < n/2) at stride j: p with a zero bit inserted at j.
fn lower_position(p: u32, j: u32) -> u32 {
  return ((p & ~(j - 1u)) << 1u) | (p & (j - 1u));
}

// Upper position of the comparator whose lower position is `lo`.
fn upper_position(lo: u32, k: u32, j: u32, flip: bool) -> u32 {
  return select(lo | j, lo ^ (k - 1u), flip);
}

// The current round's 8 elements (tile positions roundBase + a·roundStep) and the bit of the position that makes a
// comparator descending (0 where the round sorts ascending).
var<private> regKeys: array<u32, 8>;
var<private> regIndices: array<u32, 8>;
var<private> roundBase: u32;
var<private> roundStep: u32;
var<private> descendingBit: u32;

fn load_register(a: u32) {
  regKeys[a] = tileKeys[roundBase + a * roundStep];
  regIndices[a] = tileIndices[roundBase + a * roundStep];
}

fn store_register(a: u32) {
  tileKeys[roundBase + a * roundStep] = regKeys[a];
  tileIndices[roundBase + a * roundStep] = regIndices[a];
}

// The comparator between registers a < b.
fn exchange(a: u32, b: u32) {
  let descending = ((roundBase + a * roundStep) & descendingBit) != 0u;
  let keyA = regKeys[a];
  let indexA = regIndices[a];
  let keyB = regKeys[b];
  let indexB = regIndices[b];
  let swap = out_of_order(keyA, indexA, keyB, indexB) != descending;
  regKeys[a] = select(keyA, keyB, swap);
  regIndices[a] = select(indexA, indexB, swap);
  regKeys[b] = select(keyB, keyA, swap);
  regIndices[b] = select(indexB, indexA, swap);
}

// One round on the tile: the invocation loads the 8 elements whose positions differ only in the bits q, 2q, 4q
// (q = max(widest, 4) / 4) and runs the comparator steps of strides widest, widest/2, widest/4 (those ≥ 1) among them
// in registers, so one barrier serves up to three steps. Within the tile the network alternates direction (blocks
// whose position has bit k set sort descending), except in the last stage of a segment and in merges (k > segment),
// which sort ascending; padding is real PAD elements here, so it may move. The registers are named one by one, not
// looped over: a loop leaves them in (slow) indexed memory on CPU adapters.
fn tile_round(lid: u32, k: u32, widest: u32) {
  let q = max(widest, 4u) / 4u;
  let shift = countTrailingZeros(q);
  roundStep = q;
  roundBase = ((lid >> shift) << (shift + 3u)) | (lid & (q - 1u));
  descendingBit = select(0u, k, k < sortParams.segment);
  load_register(0u); load_register(1u); load_register(2u); load_register(3u);
  load_register(4u); load_register(5u); load_register(6u); load_register(7u);
  if (4u * q <= widest) { exchange(0u, 4u); exchange(1u, 5u); exchange(2u, 6u); exchange(3u, 7u); }
  if (2u * q <= widest) { exchange(0u, 2u); exchange(1u, 3u); exchange(4u, 6u); exchange(5u, 7u); }
  exchange(0u, 1u); exchange(2u, 3u); exchange(4u, 5u); exchange(6u, 7u);
  store_register(0u); store_register(1u); store_register(2u); store_register(3u);
  store_register(4u); store_register(5u); store_register(6u); store_register(7u);
  workgroupBarrier();
}

// The steps of a stage of block size k from stride `widest` down to 1, three per round.
fn tile_steps(lid: u32, k: u32, widest: u32) {
  for (var j = widest; j > 0u; j >>= 3u) { tile_round(lid, k, j); }
}

// Where the workgroup's tile starts: its first row, and the column of its first element in that row. A tile holds
// BLOCK / segment whole rows or one segment of a row, so element t lies in row tileRow + t / segment at column
// tileColumn + t % segment (shifts: segment is a power of two). The one integer division, slow on CPU adapters,
// happens here once per invocation.
var<private> tileRow: u32;
var<private> tileColumn: u32;

fn locate_tile(w: u32) {
  let first = w * (BLOCK >> sortParams.segmentLog);
  tileRow = first / sortParams.segmentsPerRow;
  tileColumn = (first % sortParams.segmentsPerRow) << sortParams.segmentLog;
}

fn tile_column(t: u32) -> u32 {
  return tileColumn + (t & (sortParams.segment - 1u));
}

// Offset in the [rows, cols] arrays of tile element t, or PAD when it is padding (or past the last row).
fn tile_offset(t: u32) -> u32 {
  let row = tileRow + (t >> sortParams.segmentLog);
  let col = tile_column(t);
  if (row >= sortParams.rows || col >= sortParams.cols) { return PAD; }
  return row * sortParams.cols + col;
}

fn store_tile(lid: u32) {
  for (var t = lid; t < BLOCK; t += WORKGROUP_SIZE) {
    let offset = tile_offset(t);
    if (offset != PAD) {
      workKeys[offset] = select(tileKeys[t], float_bits(tileKeys[t]), sortParams.finish != 0u);
      workIndices[offset] = tileIndices[t];
    }
  }
}

// One workgroup sorts BLOCK elements of `keys`: several whole rows (padded to `segment`) when rows are short, one
// BLOCK-long segment of a row otherwise.
@compute @workgroup_size(WORKGROUP_SIZE)
fn sort_tile(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
             @builtin(local_invocation_index) lid: u32) {
  locate_tile(workgroup_index(wid, nwg));
  for (var t = lid; t < BLOCK; t += WORKGROUP_SIZE) {
    let offset = tile_offset(t);
    if (offset == PAD) {
      tileKeys[t] = PAD;
      tileIndices[t] = PAD;
    } else {
      tileKeys[t] = sortable(keys[offset]);
      tileIndices[t] = tile_column(t);
    }
  }
  workgroupBarrier();
  for (var k = 2u; k <= sortParams.segment; k <<= 1u) { tile_steps(lid, k, k / 2u); }
  store_tile(lid);
}

// One workgroup finishes a stage of block size k > BLOCK on one BLOCK-long segment: the half-cleaners at strides
// below BLOCK.
@compute @workgroup_size(WORKGROUP_SIZE)
fn sort_merge(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
              @builtin(local_invocation_index) lid: u32) {
  locate_tile(workgroup_index(wid, nwg));
  for (var t = lid; t < BLOCK; t += WORKGROUP_SIZE) {
    let offset = tile_offset(t);
    if (offset == PAD) {
      tileKeys[t] = PAD;
      tileIndices[t] = PAD;
    } else {
      tileKeys[t] = workKeys[offset];
      tileIndices[t] = workIndices[offset];
    }
  }
  workgroupBarrier();
  tile_steps(lid, sortParams.k, BLOCK / 2u);
  store_tile(lid);
}

// One invocation runs one comparator of a stride ≥ BLOCK in global memory (rows × padded row / 2 comparators).
@compute @workgroup_size(WORKGROUP_SIZE)
fn sort_global(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = flat_index(gid, nwg);
  let row = i >> sortParams.halfLog;
  if (row >= sortParams.rows) { return; }
  let lo = lower_position(i & ((1u << sortParams.halfLog) - 1u), sortParams.j);
  let hi = upper_position(lo, sortParams.k, sortParams.j, sortParams.flip != 0u);
  if (hi >= sortParams.cols) { return; }
  let a = row * sortParams.cols + lo;
  let b = row * sortParams.cols + hi;
  let keyA = workKeys[a];
  let keyB = workKeys[b];
  let indexA = workIndices[a];
  let indexB = workIndices[b];
  if (out_of_order(keyA, indexA, keyB, indexB)) {
    workKeys[a] = keyB;
    workKeys[b] = keyA;
    workIndices[a] = indexB;
    workIndices[b] = indexA;
  }
}

// CPU adapters (lavapipe runs a workgroup's invocations in turn on one thread, so every barrier of the network above
// costs a pass over the workgroup): one invocation sorts one row with no barrier, by a bottom-up merge sort that
// ping-pongs between the two halves of the bank arrays ([2, rows, cols]: half 0 at offset 0, half 1 at rows·cols).
// Each merge step writes one output element from the heads of its two runs, taking the left one on equal keys, which
// keeps the sort stable (equal keys in column order, as the tie-break on the index does above); every read is
// clamped inside the row, so the loop has no data-dependent trip count.
@group(0) @binding(4) var<storage, read_write> bankKeys: array<u32>;
@group(0) @binding(5) var<storage, read_write> bankIndices: array<u32>;

override SERIAL_ROWS: u32 = 1u;

@compute @workgroup_size(SERIAL_ROWS)
fn sort_serial(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let row = gid.x + gid.y * nwg.x * SERIAL_ROWS;
  if (row >= sortParams.rows) { return; }
  let n = sortParams.cols;
  let half = sortParams.rows * n;
  let base = row * n;
  for (var c = 0u; c < n; c++) {
    bankKeys[base + c] = sortable(keys[base + c]);
    bankIndices[base + c] = c;
  }
  var src = 0u;
  for (var width = 1u; width < n; width <<= 1u) {
    let dst = half - src;
    for (var start = 0u; start < n; start += 2u * width) {
      let mid = min(start + width, n);
      let end = min(start + 2u * width, n);
      var i = start;
      var j = mid;
      for (var out = start; out < end; out++) {
        let a = src + base + min(i, mid - 1u);
        let b = src + base + min(j, end - 1u);
        let keyA = bankKeys[a];
        let keyB = bankKeys[b];
        let left = (i < mid) & ((j >= end) | (keyA <= keyB));
        bankKeys[dst + base + out] = select(keyB, keyA, left);
        bankIndices[dst + base + out] = select(bankIndices[b], bankIndices[a], left);
        i += select(0u, 1u, left);
        j += select(1u, 0u, left);
      }
    }
    src = dst;
  }
  for (var c = 0u; c < n; c++) {
    workKeys[base + c] = float_bits(bankKeys[src + base + c]);
    workIndices[base + c] = bankIndices[src + base + c];
  }
}
