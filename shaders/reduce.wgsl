// Reductions (sum, max) over any set of axes. The input is addressed as kept coordinates × reduced coordinates, each
// with its own shape and input strides (up to 8 dimensions each), so no transpose is needed first.
// `scale` multiplies the result (1/count for a mean).

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
  keptShape: array<vec4<u32>, 2>,
  keptStrides: array<vec4<u32>, 2>,
  reducedShape: array<vec4<u32>, 2>,
  reducedStrides: array<vec4<u32>, 2>,
}

@group(0) @binding(0) var<storage, read> x: array<f32>;
@group(0) @binding(1) var<storage, read_write> out: array<f32>;
@group(0) @binding(2) var<uniform> params: ReduceParams;

fn at(v: array<vec4<u32>, 2>, k: u32) -> u32 {
  return v[k / 4u][k % 4u];
}

// Input offset of the first element reduced into output o.
fn base_offset(o: u32) -> u32 {
  var rest = o;
  var offset = 0u;
  for (var d = i32(params.keptRank) - 1; d >= 0; d--) {
    let k = u32(d);
    offset += (rest % at(params.keptShape, k)) * at(params.keptStrides, k);
    rest /= at(params.keptShape, k);
  }
  return offset;
}

// Input offset of the first element of reduced row `row`: the reduced axes but the innermost, which the kernels walk
// by adding its stride (integer division is scalarized on CPU adapters, so it happens per row, not per element).
fn row_offset(row: u32) -> u32 {
  var rest = row;
  var offset = 0u;
  for (var d = i32(params.reducedRank) - 2; d >= 0; d--) {
    let k = u32(d);
    offset += (rest % at(params.reducedShape, k)) * at(params.reducedStrides, k);
    rest /= at(params.reducedShape, k);
  }
  return offset;
}

fn inner_extent() -> u32 {
  return at(params.reducedShape, params.reducedRank - 1u);
}

fn inner_stride() -> u32 {
  return at(params.reducedStrides, params.reducedRank - 1u);
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
@compute @workgroup_size(256)
fn reduce_serial(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let o = gid.x + gid.y * nwg.x * 256u;
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

var<workgroup> partial: array<f32, 256>;

// Many elements per output: one workgroup of 256 reduces one output (workgroup index = output index), each invocation
// a strided share, then a tree in workgroup memory.
@compute @workgroup_size(256)
fn reduce_workgroup(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                    @builtin(local_invocation_index) lid: u32) {
  let o = wid.x + wid.y * nwg.x;
  // Uniform control flow for the barriers below: every invocation of the group takes the same path.
  let inRange = o < params.outputs;
  var acc = identity();
  if (inRange) {
    let base = base_offset(o);
    let inner = inner_extent();
    let stride = inner_stride();
    // Element r = lid + 256·t is (row, j) of the reduced rows; stepping by 256 divides only when it leaves the row.
    var row = lid / inner;
    var j = lid % inner;
    var rowBase = base + row_offset(row);
    for (var r = lid; r < params.count; r += 256u) {
      acc = combine(acc, x[rowBase + j * stride]);
      j += 256u;
      if (j >= inner) {
        row += j / inner;
        j %= inner;
        rowBase = base + row_offset(row);
      }
    }
  }
  partial[lid] = acc;
  workgroupBarrier();
  for (var stride = 128u; stride > 0u; stride >>= 1u) {
    if (lid < stride) { partial[lid] = combine(partial[lid], partial[lid + stride]); }
    workgroupBarrier();
  }
  if (inRange && lid == 0u) { out[o] = partial[0] * select(1.0, params.scale, OP == SUM); }
}
