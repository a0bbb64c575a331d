// Elementwise ops on f32. The op is an override constant, so each (entry, OP) pair compiles to a branch-free kernel;
// the op codes (common/elementwise-ops.wgsl) are the ones src/kernels/elementwise.ts passes (it reads them from
// shaderConstants).
// #include "common/index.wgsl"
// #include "common/elementwise-ops.wgsl"

override OP: u32;
// True when a or b is broadcast: indices are then decomposed per dimension.
override BROADCAST: bool = false;

struct UnaryParams {
  n: u32,
  alpha: f32,
  beta: f32,
}

// Up to MAX_DIMS dimensions; strides of a broadcast dimension are 0. condStrides index where_forward's condition.
struct BinaryParams {
  n: u32,
  rank: u32,
  shape: Dims,
  aStrides: Dims,
  bStrides: Dims,
  condStrides: Dims,
}

@group(0) @binding(0) var<storage, read> x: array<f32>;
@group(0) @binding(1) var<storage, read> y: array<f32>;
@group(0) @binding(2) var<storage, read> gy: array<f32>;
@group(0) @binding(3) var<storage, read_write> out: array<f32>;
@group(0) @binding(4) var<uniform> unary: UnaryParams;
@group(0) @binding(5) var<storage, read> a: array<f32>;
@group(0) @binding(6) var<storage, read> b: array<f32>;
@group(0) @binding(7) var<uniform> binary: BinaryParams;
@group(0) @binding(8) var<storage, read> cond: array<f32>;
// The same operands four values at a time, for the flat entry points over tensors of 4k elements.
@group(0) @binding(9) var<storage, read> x4: array<vec4<f32>>;
@group(0) @binding(10) var<storage, read> y4: array<vec4<f32>>;
@group(0) @binding(11) var<storage, read> gy4: array<vec4<f32>>;
@group(0) @binding(12) var<storage, read_write> out4: array<vec4<f32>>;
@group(0) @binding(13) var<storage, read> a4: array<vec4<f32>>;
@group(0) @binding(14) var<storage, read> b4: array<vec4<f32>>;
@group(0) @binding(15) var<storage, read> cond4: array<vec4<f32>>;

// The one-op kernels' op: OP from the override.
fn apply_unary(v: f32, alpha: f32, beta: f32) -> f32 { return unary_op(OP, v, alpha, beta); }
fn unary_derivative(v: f32, w: f32, alpha: f32, beta: f32) -> f32 { return unary_op_derivative(OP, v, w, alpha, beta); }
fn apply_binary(u: f32, v: f32) -> f32 { return binary_op(OP, u, v); }

// Each invocation handles PER_INVOCATION consecutive elements: on a CPU-backed adapter (lavapipe) an invocation is a
// SIMD lane and its fixed cost dominates a one-element body; on GPUs it costs nothing.
const PER_INVOCATION = 4u;

// Elements first..first+3: out[i] = f(x[i]).
@compute @workgroup_size(WORKGROUP_SIZE)
fn unary_forward(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let first = flat_index(gid, nwg) * PER_INVOCATION;
  for (var i = first; i < min(first + PER_INVOCATION, unary.n); i++) {
    out[i] = apply_unary(x[i], unary.alpha, unary.beta);
  }
}

// Input-gradient elements first..first+3: out[i] = gy[i] * f'(x[i]) (using the saved output y where cheaper).
@compute @workgroup_size(WORKGROUP_SIZE)
fn unary_backward(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let first = flat_index(gid, nwg) * PER_INVOCATION;
  for (var i = first; i < min(first + PER_INVOCATION, unary.n); i++) {
    out[i] = gy[i] * unary_derivative(x[i], y[i], unary.alpha, unary.beta);
  }
}

// The *_vec4 entry points serve operands of one shape with 4k elements. Each invocation handles VEC4_PER_INVOCATION
// consecutive vec4s: lavapipe checks the bounds of every storage access, so a vec4 load costs what a scalar one does,
// and it runs a relu over 4M floats about 3x faster this way than with 4 scalars per invocation
// (bench/probe-memory.ts: 3.7 ms against 12-16 ms).
const VEC4_PER_INVOCATION = 4u;

fn unary4(v: vec4<f32>, alpha: f32, beta: f32) -> vec4<f32> {
  return vec4(apply_unary(v.x, alpha, beta), apply_unary(v.y, alpha, beta), apply_unary(v.z, alpha, beta), apply_unary(v.w, alpha, beta));
}

// vec4s first..first+3: out4[i] = f(x4[i]), each component.
@compute @workgroup_size(WORKGROUP_SIZE)
fn unary_forward_vec4(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let first = flat_index(gid, nwg) * VEC4_PER_INVOCATION;
  for (var i = first; i < min(first + VEC4_PER_INVOCATION, unary.n / 4u); i++) {
    out4[i] = unary4(x4[i], unary.alpha, unary.beta);
  }
}

// Input-gradient vec4s first..first+3: out4[i] = gy4[i] * f'(x4[i]), each component.
@compute @workgroup_size(WORKGROUP_SIZE)
fn unary_backward_vec4(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let first = flat_index(gid, nwg) * VEC4_PER_INVOCATION;
  let alpha = unary.alpha;
  let beta = unary.beta;
  for (var i = first; i < min(first + VEC4_PER_INVOCATION, unary.n / 4u); i++) {
    let v = x4[i];
    let w = y4[i];
    let d = vec4(unary_derivative(v.x, w.x, alpha, beta), unary_derivative(v.y, w.y, alpha, beta),
                 unary_derivative(v.z, w.z, alpha, beta), unary_derivative(v.w, w.w, alpha, beta));
    out4[i] = gy4[i] * d;
  }
}

// Output vec4s first..first+3 of operands of one shape: out4[i] = a4[i] op b4[i], each component.
@compute @workgroup_size(WORKGROUP_SIZE)
fn binary_forward_vec4(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let first = flat_index(gid, nwg) * VEC4_PER_INVOCATION;
  for (var i = first; i < min(first + VEC4_PER_INVOCATION, binary.n / 4u); i++) {
    let u = a4[i];
    let v = b4[i];
    out4[i] = vec4(apply_binary(u.x, v.x), apply_binary(u.y, v.y), apply_binary(u.z, v.z), apply_binary(u.w, v.w));
  }
}

// Output vec4s first..first+3 of operands of one shape: out4[i] = select(b4[i], a4[i], cond4[i] != 0), each component.
@compute @workgroup_size(WORKGROUP_SIZE)
fn where_forward_vec4(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let first = flat_index(gid, nwg) * VEC4_PER_INVOCATION;
  for (var i = first; i < min(first + VEC4_PER_INVOCATION, binary.n / 4u); i++) {
    out4[i] = select(b4[i], a4[i], cond4[i] != vec4(0.0));
  }
}

// Broadcast coordinates of output element i: decomposed once per invocation, then carried from element to element.
struct Cursor {
  coord: array<u32, MAX_DIMS>,
  ia: u32,
  ib: u32,
  ic: u32,
}

fn cursor_at(i: u32) -> Cursor {
  var c: Cursor;
  var rest = i;
  for (var d = i32(binary.rank) - 1; d >= 0; d--) {
    let k = u32(d);
    let extent = dim(binary.shape, k);
    c.coord[k] = rest % extent;
    rest = rest / extent;
    c.ia += c.coord[k] * dim(binary.aStrides, k);
    c.ib += c.coord[k] * dim(binary.bStrides, k);
    c.ic += c.coord[k] * dim(binary.condStrides, k);
  }
  return c;
}

// Moves the cursor to the next output element: increments the innermost coordinate, carrying into outer ones.
fn advance(c: ptr<function, Cursor>) {
  for (var d = i32(binary.rank) - 1; d >= 0; d--) {
    let k = u32(d);
    let sa = dim(binary.aStrides, k);
    let sb = dim(binary.bStrides, k);
    let sc = dim(binary.condStrides, k);
    (*c).coord[k] += 1u;
    (*c).ia += sa;
    (*c).ib += sb;
    (*c).ic += sc;
    if ((*c).coord[k] < dim(binary.shape, k)) { return; }
    (*c).ia -= (*c).coord[k] * sa;
    (*c).ib -= (*c).coord[k] * sb;
    (*c).ic -= (*c).coord[k] * sc;
    (*c).coord[k] = 0u;
  }
}

// Whether `count` elements from the cursor stay within one run of the innermost dimension: then next() steps by the
// innermost strides alone, without advance()'s carry loop (a loop whose trip count differs between the SIMD lanes
// lavapipe runs invocations on).
fn within_run(c: Cursor, count: u32) -> bool {
  let last = binary.rank - 1u;
  return c.coord[last] + count <= dim(binary.shape, last);
}

fn next(c: ptr<function, Cursor>, within: bool) {
  if (within) {
    let last = binary.rank - 1u;
    (*c).ia += dim(binary.aStrides, last);
    (*c).ib += dim(binary.bStrides, last);
    (*c).ic += dim(binary.condStrides, last);
    return;
  }
  advance(c);
}

// Output elements first..first+3: out[i] = a[ia] op b[ib], with ia, ib following broadcast strides.
@compute @workgroup_size(WORKGROUP_SIZE)
fn binary_forward(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let first = flat_index(gid, nwg) * PER_INVOCATION;
  let end = min(first + PER_INVOCATION, binary.n);
  if (!BROADCAST) {
    for (var i = first; i < end; i++) { out[i] = apply_binary(a[i], b[i]); }
    return;
  }
  if (first >= end) { return; }
  var c = cursor_at(first);
  let within = within_run(c, end - first);
  for (var i = first; i < end; i++) {
    out[i] = apply_binary(a[c.ia], b[c.ib]);
    next(&c, within);
  }
}

// binary_broadcast_vec4 walks a broadcast four outputs at a time where the innermost dimension has 4k elements: the
// cursor runs over the shape with that dimension divided by 4, and each operand is read as a vec4 where it spans the
// innermost dimension (A_VEC / B_VEC, strides in vec4s) or as one value repeated where it is broadcast along it
// (strides in values). Both names of an operand are bound to the same tensor.
override A_VEC: bool = true;
override B_VEC: bool = true;

fn load_a4(i: u32) -> vec4<f32> {
  if (A_VEC) { return a4[i]; }
  return vec4(a[i]);
}

fn load_b4(i: u32) -> vec4<f32> {
  if (B_VEC) { return b4[i]; }
  return vec4(b[i]);
}

// Output vec4s first..first+3 of a broadcast: out4[i] = a op b over the four outputs, each component.
@compute @workgroup_size(WORKGROUP_SIZE)
fn binary_broadcast_vec4(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let first = flat_index(gid, nwg) * VEC4_PER_INVOCATION;
  let end = min(first + VEC4_PER_INVOCATION, binary.n / 4u);
  if (first >= end) { return; }
  var c = cursor_at(first);
  let within = within_run(c, end - first);
  for (var i = first; i < end; i++) {
    let u = load_a4(c.ia);
    let v = load_b4(c.ib);
    out4[i] = vec4(apply_binary(u.x, v.x), apply_binary(u.y, v.y), apply_binary(u.z, v.z), apply_binary(u.w, v.w));
    next(&c, within);
  }
}

// Output elements first..first+3 of a broadcast: out[i] = a[ia] (the binary indexing with a alone).
@compute @workgroup_size(WORKGROUP_SIZE)
fn broadcast_to(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let first = flat_index(gid, nwg) * PER_INVOCATION;
  let end = min(first + PER_INVOCATION, binary.n);
  if (first >= end) { return; }
  var c = cursor_at(first);
  let within = within_run(c, end - first);
  for (var i = first; i < end; i++) {
    out[i] = a[c.ia];
    next(&c, within);
  }
}

// Output elements first..first+3: out[i] = a[ia] where cond[ic] != 0, else b[ib] (the binary indexing plus cond).
@compute @workgroup_size(WORKGROUP_SIZE)
fn where_forward(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let first = flat_index(gid, nwg) * PER_INVOCATION;
  let end = min(first + PER_INVOCATION, binary.n);
  if (!BROADCAST) {
    for (var i = first; i < end; i++) { out[i] = select(b[i], a[i], cond[i] != 0.0); }
    return;
  }
  if (first >= end) { return; }
  var c = cursor_at(first);
  let within = within_run(c, end - first);
  for (var i = first; i < end; i++) {
    out[i] = select(b[c.ib], a[c.ia], cond[c.ic] != 0.0);
    next(&c, within);
  }
}
