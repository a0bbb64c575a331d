// The Lovasz hinge per row of [rows, cols] logits (Berman et al., lovasz_hinge_flat), and the row-wise inclusive
// prefix sum it needs. With the hinge errors sorted descending and gt the labels in that order, the Jaccard loss
// gradient at rank i is jaccard_i − jaccard_{i−1}, where jaccard_i = 1 − I_i/U_i, I_i = gts − cumsum(gt)_i and
// U_i = gts + cumsum(1 − gt)_i. Since U_i − I_i = i + 1, the difference is written without cancellation:
// (I_{i−1}·(1 − gt_i) + gt_i·U_{i−1}) / (U_{i−1}·U_i), and 1/U_0 at rank 0. U_i ≥ 1 for 0/1 labels: with gts = 0
// every label is 0 and U_i = i + 1.
// #include "common/index.wgsl"
// #include "common/workgroup.wgsl"

// Elements per workgroup of the block passes (scan_rows, lovasz_rank): WORKGROUP_SIZE invocations, 8 elements each.
const BLOCK = 2048u;

struct RowsParams {
  rows: u32,
  cols: u32,
  // Blocks of BLOCK elements per row: ceil(cols / BLOCK).
  blocks: u32,
}

@group(0) @binding(0) var<uniform> rowsParams: RowsParams;

@group(0) @binding(1) var<storage, read> logits: array<f32>;
@group(0) @binding(2) var<storage, read> labels: array<f32>;
@group(0) @binding(3) var<storage, read_write> errors: array<f32>;

@group(0) @binding(4) var<storage, read> order: array<i32>;
@group(0) @binding(5) var<storage, read_write> gtSorted: array<f32>;

@group(0) @binding(6) var<storage, read> scanIn: array<f32>;
@group(0) @binding(7) var<storage, read_write> scanOut: array<f32>;
@group(0) @binding(8) var<storage, read_write> scanTotals: array<f32>;
@group(0) @binding(9) var<storage, read> scanOffsets: array<f32>;

@group(0) @binding(10) var<storage, read> errorsSorted: array<f32>;
@group(0) @binding(11) var<storage, read> gtSortedIn: array<f32>;
@group(0) @binding(12) var<storage, read> cumulative: array<f32>;
@group(0) @binding(13) var<storage, read_write> weight: array<f32>;
@group(0) @binding(14) var<storage, read_write> partial: array<f32>;

@group(0) @binding(15) var<storage, read> gy: array<f32>;
@group(0) @binding(16) var<storage, read> weightIn: array<f32>;
@group(0) @binding(17) var<storage, read_write> gLogits: array<f32>;

var<workgroup> tile: array<f32, BLOCK>;

// One invocation computes the hinge error 1 − z·(2y − 1) of one element.
@compute @workgroup_size(WORKGROUP_SIZE)
fn hinge_errors(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = flat_index(gid, nwg);
  if (i >= rowsParams.rows * rowsParams.cols) { return; }
  errors[i] = 1.0 - logits[i] * (2.0 * labels[i] - 1.0);
}

// One invocation gathers the label of one rank: gtSorted[r, i] = labels[r, order[r, i]].
@compute @workgroup_size(WORKGROUP_SIZE)
fn gather_labels(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = flat_index(gid, nwg);
  if (i >= rowsParams.rows * rowsParams.cols) { return; }
  let row = i / rowsParams.cols;
  gtSorted[i] = labels[row * rowsParams.cols + u32(order[i])];
}

// One workgroup scans one block of BLOCK elements of a row (workgroup index = row · blocks + block): each invocation
// scans 8 consecutive elements serially, a prefix sum over the invocation totals adds what precedes them. Writes the
// block-local inclusive scan and the block's total.
@compute @workgroup_size(WORKGROUP_SIZE)
fn scan_rows(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
             @builtin(local_invocation_index) lid: u32) {
  let w = workgroup_index(wid, nwg);
  let row = w / rowsParams.blocks;
  let start = (w % rowsParams.blocks) * BLOCK;
  // Uniform control flow for the barriers: a workgroup past the last row scans zeros and writes nothing.
  let inRange = row < rowsParams.rows;
  for (var t = lid; t < BLOCK; t += WORKGROUP_SIZE) {
    var v = 0.0;
    if (inRange && start + t < rowsParams.cols) { v = scanIn[row * rowsParams.cols + start + t]; }
    tile[t] = v;
  }
  workgroupBarrier();
  var running = 0.0;
  for (var m = 0u; m < 8u; m++) {
    running += tile[lid * 8u + m];
    tile[lid * 8u + m] = running;
  }
  let scan = workgroup_exclusive_scan_f32(lid, running);
  for (var m = 0u; m < 8u; m++) { tile[lid * 8u + m] += scan.x; }
  workgroupBarrier();
  if (inRange) {
    for (var t = lid; t < BLOCK; t += WORKGROUP_SIZE) {
      if (start + t < rowsParams.cols) { scanOut[row * rowsParams.cols + start + t] = tile[t]; }
    }
    if (lid == 0u) { scanTotals[w] = scan.y; }
  }
}

// One invocation adds to one element the inclusive scan of the blocks before its own (scanOffsets [rows, blocks]).
@compute @workgroup_size(WORKGROUP_SIZE)
fn scan_add(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = flat_index(gid, nwg);
  if (i >= rowsParams.rows * rowsParams.cols) { return; }
  let row = i / rowsParams.cols;
  let blockIndex = (i % rowsParams.cols) / BLOCK;
  if (blockIndex > 0u) { scanOut[i] += scanOffsets[row * rowsParams.blocks + blockIndex - 1u]; }
}

// One workgroup handles one block of BLOCK ranks of a row (workgroup index = row · blocks + block): per rank the
// Jaccard gradient g, the loss weight d loss / d logit = g·[error > 0]·(1 − 2·gt) for the backward, and the block's
// sum of relu(error)·g.
@compute @workgroup_size(WORKGROUP_SIZE)
fn lovasz_rank(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
               @builtin(local_invocation_index) lid: u32) {
  let w = workgroup_index(wid, nwg);
  let row = w / rowsParams.blocks;
  let start = (w % rowsParams.blocks) * BLOCK;
  let inRange = row < rowsParams.rows;
  var acc = 0.0;
  if (inRange) {
    let rowStart = row * rowsParams.cols;
    let gts = cumulative[rowStart + rowsParams.cols - 1u];
    for (var col = start + lid; col < min(start + BLOCK, rowsParams.cols); col += WORKGROUP_SIZE) {
      let i = rowStart + col;
      let gt = gtSortedIn[i];
      let c = cumulative[i];
      let unionHere = gts + f32(col + 1u) - c;
      var g = 1.0 / unionHere;
      if (col > 0u) {
        let cPrev = c - gt;
        let intersectionPrev = gts - cPrev;
        let unionPrev = gts + f32(col) - cPrev;
        g = (intersectionPrev * (1.0 - gt) + gt * unionPrev) / (unionPrev * unionHere);
      }
      let e = errorsSorted[i];
      weight[i] = select(0.0, g * (1.0 - 2.0 * gt), e > 0.0);
      acc += max(e, 0.0) * g;
    }
  }
  let total = workgroup_sum(lid, vec4<f32>(acc, 0.0, 0.0, 0.0)).x;
  if (inRange && lid == 0u) { partial[w] = total; }
}

// One invocation sends the gradient of one rank back to its element: gLogits[r, order[r, i]] = gy[r]·weight[r, i].
@compute @workgroup_size(WORKGROUP_SIZE)
fn lovasz_backward(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = flat_index(gid, nwg);
  if (i >= rowsParams.rows * rowsParams.cols) { return; }
  let row = i / rowsParams.cols;
  gLogits[row * rowsParams.cols + u32(order[i])] = gy[row] * weightIn[i];
}
