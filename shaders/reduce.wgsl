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

// Input offset of the r-th reduced element, relative to its output's base.
fn reduced_offset(r: u32) -> u32 {
  var rest = r;
  var offset = 0u;
  for (var d = i32(params.reducedRank) - 1; d >= 0; d--) {
    let k = u32(d);
    offset += (rest % at(params.reducedShape, k)) * at(params.reducedStrides, k);
    rest /= at(params.reducedShape, k);
  }
  return offset;
}

fn identity() -> f32 {
  if (OP == MAX) { return -3.402823e38; }
  return 0.0;
}

fn combine(u: f32, v: f32) -> f32 {
  if (OP == MAX) { return max(u, v); }
  return u + v;
}

// Few elements per output: one invocation reduces one output serially.
@compute @workgroup_size(256)
fn reduce_serial(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let o = gid.x + gid.y * nwg.x * 256u;
  if (o >= params.outputs) { return; }
  let base = base_offset(o);
  var acc = identity();
  for (var r = 0u; r < params.count; r++) {
    acc = combine(acc, x[base + reduced_offset(r)]);
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
    for (var r = lid; r < params.count; r += 256u) {
      acc = combine(acc, x[base + reduced_offset(r)]);
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
