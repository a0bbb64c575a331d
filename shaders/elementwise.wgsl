// Elementwise ops on f32. The op is an override constant, so each (entry, OP) pair compiles to a branch-free kernel;
// the op codes below are the ones src/kernels/elementwise.ts passes (it reads them from shaderConstants).
// #include "common/index.wgsl"
// #include "common/math.wgsl"

// Unary ops y = f(x; alpha) and their derivatives.
const NEG = 0u;
const RELU = 1u;
const LEAKY_RELU = 2u;  // alpha: slope for x < 0
const SIGMOID = 3u;
const TANH = 4u;
const EXP = 5u;
const LOG = 6u;
const SQRT = 7u;
const ABS = 8u;
const SQUARE = 9u;
const SCALE = 10u;      // alpha * x
const ADD_SCALAR = 11u; // x + alpha
const POW = 12u;        // x ^ alpha (x > 0, or integer alpha)
const RECIPROCAL = 13u;
const CLAMP = 14u;       // min(max(x, alpha), beta)
const SOFTPLUS = 15u;    // log(1 + exp(x))
const LOG_SIGMOID = 16u; // log(sigmoid(x)) = -softplus(-x)

// Binary ops with broadcasting.
const ADD = 0u;
const SUB = 1u;
const MUL = 2u;
const DIV = 3u;
const MAXIMUM = 4u;
const MINIMUM = 5u;
// Comparisons: 1.0 where a ~ b holds, else 0.0.
const EQUAL = 6u;
const NOT_EQUAL = 7u;
const LESS = 8u;
const LESS_EQUAL = 9u;
const GREATER = 10u;
const GREATER_EQUAL = 11u;

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

// log(1 + t) for t >= 0 without the built-in log's error near 1 (lavapipe's log(1 + t) is off by up to 100% for
// t < 1e-7, and the log(u) t / (u - 1) correction inherits that): for t <= 1, log(1 + t) = 2 atanh(s) with
// s = t / (2 + t) <= 1/3, whose series s + s^3/3 + ... to s^15 leaves under 2e-9 relative.
fn log1p(t: f32) -> f32 {
  if (t > 1.0) { return log(1.0 + t); }
  let s = t / (2.0 + t);
  let s2 = s * s;
  return 2.0 * s * (1.0 + s2 * (1.0 / 3.0 + s2 * (1.0 / 5.0 + s2 * (1.0 / 7.0 + s2 * (1.0 / 9.0 + s2 * (1.0 / 11.0 + s2 * (1.0 / 13.0 + s2 * (1.0 / 15.0))))))));
}

// log(1 + e^v) = max(v, 0) + log(1 + e^-|v|): no overflow for large v, no cancellation for large -v.
fn softplus(v: f32) -> f32 {
  return max(v, 0.0) + log1p(exp_accurate(-abs(v)));
}

// 1 / (1 + e^-v) from e^-|v| <= 1, so no intermediate overflows.
fn sigmoid(v: f32) -> f32 {
  let e = exp_accurate(-abs(v));
  return select(e, 1.0, v >= 0.0) / (1.0 + e);
}

fn apply_unary(v: f32, alpha: f32, beta: f32) -> f32 {
  switch OP {
    case NEG: { return -v; }
    case RELU: { return max(v, 0.0); }
    case LEAKY_RELU: { return select(alpha * v, v, v > 0.0); }
    case SIGMOID: { return sigmoid(v); }
    case TANH: { return tanh_accurate(v); }
    case EXP: { return exp_accurate(v); }
    case LOG: { return log(v); }
    case SQRT: { return sqrt(v); }
    case ABS: { return abs(v); }
    case SQUARE: { return v * v; }
    case SCALE: { return alpha * v; }
    case ADD_SCALAR: { return v + alpha; }
    case POW: { return pow(v, alpha); }
    case RECIPROCAL: { return 1.0 / v; }
    case CLAMP: { return min(max(v, alpha), beta); }
    case SOFTPLUS: { return softplus(v); }
    case LOG_SIGMOID: { return -softplus(-v); }
    default: { return 0.0; }
  }
}

// dy/dx at input v with output w = f(v).
fn unary_derivative(v: f32, w: f32, alpha: f32, beta: f32) -> f32 {
  switch OP {
    case NEG: { return -1.0; }
    case RELU: { return select(0.0, 1.0, v > 0.0); }
    case LEAKY_RELU: { return select(alpha, 1.0, v > 0.0); }
    case SIGMOID: { return w * (1.0 - w); }
    case TANH: { return 1.0 - w * w; }
    case EXP: { return w; }
    case LOG: { return 1.0 / v; }
    case SQRT: { return 0.5 / w; }
    case ABS: { return sign(v); }
    case SQUARE: { return 2.0 * v; }
    case SCALE: { return alpha; }
    case ADD_SCALAR: { return 1.0; }
    case POW: { return alpha * pow(v, alpha - 1.0); }
    case RECIPROCAL: { return -w * w; }
    case CLAMP: { return select(0.0, 1.0, v >= alpha && v <= beta); } // PyTorch's: the bounds pass the gradient
    case SOFTPLUS: { return sigmoid(v); }
    case LOG_SIGMOID: { return sigmoid(-v); }
    default: { return 0.0; }
  }
}

fn apply_binary(u: f32, v: f32) -> f32 {
  switch OP {
    case ADD: { return u + v; }
    case SUB: { return u - v; }
    case MUL: { return u * v; }
    case DIV: { return u / v; }
    case MAXIMUM: { return max(u, v); }
    case MINIMUM: { return min(u, v); }
    case EQUAL: { return select(0.0, 1.0, u == v); }
    case NOT_EQUAL: { return select(0.0, 1.0, u != v); }
    case LESS: { return select(0.0, 1.0, u < v); }
    case LESS_EQUAL: { return select(0.0, 1.0, u <= v); }
    case GREATER: { return select(0.0, 1.0, u > v); }
    case GREATER_EQUAL: { return select(0.0, 1.0, u >= v); }
    default: { return 0.0; }
  }
}

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
  for (var i = first; i < end; i++) {
    out[i] = apply_binary(a[c.ia], b[c.ib]);
    advance(&c);
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
  for (var i = first; i < end; i++) {
    let u = load_a4(c.ia);
    let v = load_b4(c.ib);
    out4[i] = vec4(apply_binary(u.x, v.x), apply_binary(u.y, v.y), apply_binary(u.z, v.z), apply_binary(u.w, v.w));
    advance(&c);
  }
}

// Output elements first..first+3 of a broadcast: out[i] = a[ia] (the binary indexing with a alone).
@compute @workgroup_size(WORKGROUP_SIZE)
fn broadcast_to(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let first = flat_index(gid, nwg) * PER_INVOCATION;
  let end = min(first + PER_INVOCATION, binary.n);
  if (first >= end) { return; }
  var c = cursor_at(first);
  for (var i = first; i < end; i++) {
    out[i] = a[c.ia];
    advance(&c);
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
  for (var i = first; i < end; i++) {
    out[i] = select(b[c.ib], a[c.ia], cond[c.ic] != 0.0);
    advance(&c);
  }
}
