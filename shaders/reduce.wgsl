// Reductions (sum, max) over any set of axes. The input is addressed as kept coordinates × reduced coordinates, each
// with its own shape and input strides (up to MAX_DIMS = 8 dimensions each), so no transpose is needed first.
// `scale` multiplies the result (1/count for a mean).
// #include "common/index.wgsl"
// #include "common/workgroup.wgsl"

const SUM = 0u;
const MAX = 1u;

override OP: u32;

struct ReduceParams {
  outputs: u32,
  // Number of input elements reduced into each output.
  count: u32,
  keptRank: u32,
  reducedRank: u32,
  scale: f32,
  keptShape: Dims,
  keptStrides: Dims,
  reducedShape: Dims,
  reducedStrides: Dims,
}

@group(0) @binding(0) var<storage, read> x: array<f32>;
@group(0) @binding(1) var<storage, read_write> out: array<f32>;
@group(0) @binding(2) var<uniform> params: ReduceParams;
// x four values at a time, for reduce_workgroup_vec4.
@group(0) @binding(3) var<storage, read> x4: array<vec4<f32>>;

// Input offset of the first element reduced into output o.
fn base_offset(o: u32) -> u32 {
  return strided_offset(o, params.keptRank, params.keptShape, params.keptStrides);
}

// Input offset of the first element of reduced row `row`: the reduced axes but the innermost, which the kernels walk
// by adding its stride (integer division is scalarized on CPU adapters, so it happens per row, not per element).
fn row_offset(row: u32) -> u32 {
  return strided_offset(row, params.reducedRank - 1u, params.reducedShape, params.reducedStrides);
}

fn inner_extent() -> u32 {
  return dim(params.reducedShape, params.reducedRank - 1u);
}

fn inner_stride() -> u32 {
  return dim(params.reducedStrides, params.reducedRank - 1u);
}

fn identity() -> f32 {
  if (OP == MAX) { return -3.402823e38; }
  return 0.0;
}

fn combine(u: f32, v: f32) -> f32 {
  if (OP == MAX) { return max(u, v); }
  return u + v;
}

// Few elements per output: one invocation reduces one output serially, row by row of the reduced axes.
@compute @workgroup_size(WORKGROUP_SIZE)
fn reduce_serial(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let o = flat_index(gid, nwg);
  if (o >= params.outputs) { return; }
  let base = base_offset(o);
  let inner = inner_extent();
  let stride = inner_stride();
  var acc = identity();
  for (var row = 0u; row < params.count / inner; row++) {
    let rowBase = base + row_offset(row);
    for (var j = 0u; j < inner; j++) { acc = combine(acc, x[rowBase + j * stride]); }
  }
  out[o] = acc * select(1.0, params.scale, OP == SUM);
}

// reduce_serial where the innermost reduced axis is contiguous with 4k elements: one invocation per output, its rows
// read as vec4s. For many outputs with rows of hundreds of values, where a workgroup per output would spend more on
// its tree than on reading.
@compute @workgroup_size(WORKGROUP_SIZE)
fn reduce_serial_vec4(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let o = flat_index(gid, nwg);
  if (o >= params.outputs) { return; }
  let base = base_offset(o);
  let inner = inner_extent() / 4u;
  var acc = vec4(identity());
  for (var row = 0u; row < params.count / 4u / inner; row++) {
    let rowBase = (base + row_offset(row)) / 4u;
    for (var j = 0u; j < inner; j++) {
      let v = x4[rowBase + j];
      if (OP == MAX) { acc = max(acc, v); } else { acc += v; }
    }
  }
  var total: f32;
  if (OP == MAX) { total = max(max(acc.x, acc.y), max(acc.z, acc.w)); } else { total = (acc.x + acc.y) + (acc.z + acc.w); }
  out[o] = total * select(1.0, params.scale, OP == SUM);
}

// Many elements per output: one workgroup reduces one output (workgroup index = output index), each invocation a
// strided share, then a tree in workgroup memory.
@compute @workgroup_size(WORKGROUP_SIZE)
fn reduce_workgroup(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                    @builtin(local_invocation_index) lid: u32) {
  let o = workgroup_index(wid, nwg);
  // Uniform control flow for the barriers below: every invocation of the group takes the same path.
  let inRange = o < params.outputs;
  var acc = identity();
  if (inRange) {
    let base = base_offset(o);
    let inner = inner_extent();
    let stride = inner_stride();
    // Element r = lid + WORKGROUP_SIZE·t is (row, j) of the reduced rows; stepping by WORKGROUP_SIZE divides only when
    // it leaves the row.
    var row = lid / inner;
    var j = lid % inner;
    var rowBase = base + row_offset(row);
    for (var r = lid; r < params.count; r += WORKGROUP_SIZE) {
      acc = combine(acc, x[rowBase + j * stride]);
      j += WORKGROUP_SIZE;
      if (j >= inner) {
        row += j / inner;
        j %= inner;
        rowBase = base + row_offset(row);
      }
    }
  }
  var total: f32;
  if (OP == MAX) {
    total = workgroup_max(lid, acc);
  } else {
    total = workgroup_sum(lid, vec4<f32>(acc, 0.0, 0.0, 0.0)).x;
  }
  if (inRange && lid == 0u) { out[o] = total * select(1.0, params.scale, OP == SUM); }
}

// reduce_workgroup where the innermost reduced axis is contiguous (stride 1) with 4k elements, so that every row
// starts on a vec4: each invocation combines vec4s (lavapipe checks bounds per access, so a vec4 costs what one value
// does), then its four components, then the workgroup's tree. The rows are walked in vec4s: `inner` / 4 per row.
@compute @workgroup_size(WORKGROUP_SIZE)
fn reduce_workgroup_vec4(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                         @builtin(local_invocation_index) lid: u32) {
  let o = workgroup_index(wid, nwg);
  let inRange = o < params.outputs;
  var acc = vec4(identity());
  if (inRange) {
    let base = base_offset(o);
    let inner = inner_extent() / 4u;
    var row = lid / inner;
    var j = lid % inner;
    var rowBase = (base + row_offset(row)) / 4u;
    for (var r = lid; r < params.count / 4u; r += WORKGROUP_SIZE) {
      let v = x4[rowBase + j];
      if (OP == MAX) { acc = max(acc, v); } else { acc += v; }
      j += WORKGROUP_SIZE;
      if (j >= inner) {
        row += j / inner;
        j %= inner;
        rowBase = (base + row_offset(row)) / 4u;
      }
    }
  }
  var total: f32;
  if (OP == MAX) {
    total = workgroup_max(lid, max(max(acc.x, acc.y), max(acc.z, acc.w)));
  } else {
    total = workgroup_sum(lid, vec4<f32>((acc.x + acc.y) + (acc.z + acc.w), 0.0, 0.0, 0.0)).x;
  }
  if (inRange && lid == 0u) { out[o] = total * select(1.0, params.scale, OP == SUM); }
}
