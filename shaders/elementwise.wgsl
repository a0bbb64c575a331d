// Elementwise ops on f32. The op is an override constant, so each (entry, OP) pair compiles to a branch-free kernel.
// 1D dispatches fold over y beyond 65535 workgroups: i = gid.x + gid.y * num_workgroups.x * 256.

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

// Binary ops with broadcasting.
const ADD = 0u;
const SUB = 1u;
const MUL = 2u;
const DIV = 3u;
const MAXIMUM = 4u;
const MINIMUM = 5u;
const GREATER_EQUAL = 6u; // 1 where a >= b else 0 (masks for max/min backward)

override OP: u32;
// True when a or b is broadcast: indices are then decomposed per dimension.
override BROADCAST: bool = false;

struct UnaryParams {
  n: u32,
  alpha: f32,
}

// Up to 8 dimensions; strides of a broadcast dimension are 0.
struct BinaryParams {
  n: u32,
  rank: u32,
  shape: array<vec4<u32>, 2>,
  aStrides: array<vec4<u32>, 2>,
  bStrides: array<vec4<u32>, 2>,
}

@group(0) @binding(0) var<storage, read> x: array<f32>;
@group(0) @binding(1) var<storage, read> y: array<f32>;
@group(0) @binding(2) var<storage, read> gy: array<f32>;
@group(0) @binding(3) var<storage, read_write> out: array<f32>;
@group(0) @binding(4) var<uniform> unary: UnaryParams;
@group(0) @binding(5) var<storage, read> a: array<f32>;
@group(0) @binding(6) var<storage, read> b: array<f32>;
@group(0) @binding(7) var<uniform> binary: BinaryParams;

fn apply_unary(v: f32, alpha: f32) -> f32 {
  switch OP {
    case NEG: { return -v; }
    case RELU: { return max(v, 0.0); }
    case LEAKY_RELU: { return select(alpha * v, v, v > 0.0); }
    case SIGMOID: { return 1.0 / (1.0 + exp(-v)); }
    case TANH: { return tanh(v); }
    case EXP: { return exp(v); }
    case LOG: { return log(v); }
    case SQRT: { return sqrt(v); }
    case ABS: { return abs(v); }
    case SQUARE: { return v * v; }
    case SCALE: { return alpha * v; }
    case ADD_SCALAR: { return v + alpha; }
    case POW: { return pow(v, alpha); }
    case RECIPROCAL: { return 1.0 / v; }
    default: { return 0.0; }
  }
}

// dy/dx at input v with output w = f(v).
fn unary_derivative(v: f32, w: f32, alpha: f32) -> f32 {
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
    case GREATER_EQUAL: { return select(0.0, 1.0, u >= v); }
    default: { return 0.0; }
  }
}

// Each invocation handles PER_INVOCATION consecutive elements: on a CPU-backed adapter (lavapipe) an invocation is a
// SIMD lane and its fixed cost dominates a one-element body; on GPUs it costs nothing.
const PER_INVOCATION = 4u;

// The first of the invocation's elements (the 1D index folds over y beyond 65535 workgroups).
fn first_element(gid: vec3<u32>, nwg: vec3<u32>) -> u32 {
  return (gid.x + gid.y * nwg.x * 256u) * PER_INVOCATION;
}

// Elements first..first+3: out[i] = f(x[i]).
@compute @workgroup_size(256)
fn unary_forward(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let first = first_element(gid, nwg);
  for (var i = first; i < min(first + PER_INVOCATION, unary.n); i++) {
    out[i] = apply_unary(x[i], unary.alpha);
  }
}

// Input-gradient elements first..first+3: out[i] = gy[i] * f'(x[i]) (using the saved output y where cheaper).
@compute @workgroup_size(256)
fn unary_backward(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let first = first_element(gid, nwg);
  for (var i = first; i < min(first + PER_INVOCATION, unary.n); i++) {
    out[i] = gy[i] * unary_derivative(x[i], y[i], unary.alpha);
  }
}

// Broadcast coordinates of output element i: decomposed once per invocation, then carried from element to element.
struct Cursor {
  coord: array<u32, 8>,
  ia: u32,
  ib: u32,
}

fn cursor_at(i: u32) -> Cursor {
  var c: Cursor;
  var rest = i;
  for (var d = i32(binary.rank) - 1; d >= 0; d--) {
    let k = u32(d);
    let extent = binary.shape[k / 4u][k % 4u];
    c.coord[k] = rest % extent;
    rest = rest / extent;
    c.ia += c.coord[k] * binary.aStrides[k / 4u][k % 4u];
    c.ib += c.coord[k] * binary.bStrides[k / 4u][k % 4u];
  }
  return c;
}

// Moves the cursor to the next output element: increments the innermost coordinate, carrying into outer ones.
fn advance(c: ptr<function, Cursor>) {
  for (var d = i32(binary.rank) - 1; d >= 0; d--) {
    let k = u32(d);
    let sa = binary.aStrides[k / 4u][k % 4u];
    let sb = binary.bStrides[k / 4u][k % 4u];
    (*c).coord[k] += 1u;
    (*c).ia += sa;
    (*c).ib += sb;
    if ((*c).coord[k] < binary.shape[k / 4u][k % 4u]) { return; }
    (*c).ia -= (*c).coord[k] * sa;
    (*c).ib -= (*c).coord[k] * sb;
    (*c).coord[k] = 0u;
  }
}

// Output elements first..first+3: out[i] = a[ia] op b[ib], with ia, ib following broadcast strides.
@compute @workgroup_size(256)
fn binary_forward(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let first = first_element(gid, nwg);
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

// Output elements first..first+3 of a broadcast: out[i] = a[ia] (the binary indexing with a alone).
@compute @workgroup_size(256)
fn broadcast_to(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let first = first_element(gid, nwg);
  let end = min(first + PER_INVOCATION, binary.n);
  if (first >= end) { return; }
  var c = cursor_at(first);
  for (var i = first; i < end; i++) {
    out[i] = a[c.ia];
    advance(&c);
  }
}
