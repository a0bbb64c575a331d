// Fused elementwise chains (src/kernels/chain.ts): y = f_m(... f_2(f_1(x)) ...) in one pass over x, where step k is a
// unary op (with its alpha and beta) or a differentiable binary op (add, sub, mul, div, maximum, minimum) between the
// running value and operand tensor t0 or t1, broadcast to x's shape, on either side. Each step's kind, op and operand
// are override constants, so a chain compiles to straight-line code (the steps are written out and the switches fold)
// and reads x and the operands once and writes y once, where the one-op kernels write and read every intermediate.
// The backward pass recomputes the chain per element and runs it in reverse: x's gradient and each operand's,
// the latter at x's shape (chain.ts sums them back to the operand's).
//
// Tensors are walked as vec4s: x has 4k elements and the innermost dimension of the merged broadcast (the `binary`
// uniform of src/kernels/broadcast.ts, with that dimension divided by 4) has 4k too; an operand spanning it is read as four
// consecutive values, one broadcast along it as one value repeated.
// #include "common/index.wgsl"
// #include "common/elementwise-ops.wgsl"

const MAX_STEPS = 8u;
// The running values of a chain of MAX_STEPS steps: before each step, and the result.
const CHAIN_VALUES = 9u;
alias ChainValues = array<vec4<f32>, CHAIN_VALUES>;
// Step kinds: f(v; alpha, beta), v op t, t op v.
const UNARY_STEP = 0u;
const OPERAND_RIGHT = 1u;
const OPERAND_LEFT = 2u;
// vec4s per invocation (as elementwise.wgsl's VEC4_PER_INVOCATION: lavapipe's per-invocation cost).
const CHAIN_VEC4_PER_INVOCATION = 4u;

override STEPS: u32;
override KIND0: u32 = 0u;
override KIND1: u32 = 0u;
override KIND2: u32 = 0u;
override KIND3: u32 = 0u;
override KIND4: u32 = 0u;
override KIND5: u32 = 0u;
override KIND6: u32 = 0u;
override KIND7: u32 = 0u;
override OP0: u32 = 0u;
override OP1: u32 = 0u;
override OP2: u32 = 0u;
override OP3: u32 = 0u;
override OP4: u32 = 0u;
override OP5: u32 = 0u;
override OP6: u32 = 0u;
override OP7: u32 = 0u;
// Which operand (0: t0, 1: t1) a binary step takes.
override ARG0: u32 = 0u;
override ARG1: u32 = 0u;
override ARG2: u32 = 0u;
override ARG3: u32 = 0u;
override ARG4: u32 = 0u;
override ARG5: u32 = 0u;
override ARG6: u32 = 0u;
override ARG7: u32 = 0u;
// Whether a step takes t0 / t1 (a chain of unary steps reads neither and needs no cursor).
override T0_USED: bool = false;
override T1_USED: bool = false;
// Whether t0 / t1 span the innermost dimension (else they are broadcast along it).
override T0_SPANS: bool = false;
override T1_SPANS: bool = false;
// Whether the backward pass writes x's, t0's and t1's gradients (each only where it is wanted).
override X_GRAD: bool = true;
override T0_GRAD: bool = false;
override T1_GRAD: bool = false;

// n4: vec4s of x; shape: the merged broadcast with the innermost dimension in vec4s; t0Strides / t1Strides: the
// operands' strides into it (in vec4s where they span the innermost dimension, in values elsewhere, 0 where broadcast);
// alpha / beta: step k's at [k / 4][k % 4].
struct ChainParams {
  n4: u32,
  rank: u32,
  shape: Dims,
  t0Strides: Dims,
  t1Strides: Dims,
  alpha: array<vec4<f32>, 2>,
  beta: array<vec4<f32>, 2>,
}

@group(0) @binding(0) var<storage, read> x4: array<vec4<f32>>;
@group(0) @binding(1) var<storage, read> t0: array<f32>;
@group(0) @binding(2) var<storage, read> t1: array<f32>;
@group(0) @binding(3) var<storage, read_write> out4: array<vec4<f32>>;
@group(0) @binding(4) var<uniform> chain: ChainParams;
@group(0) @binding(5) var<storage, read> gy4: array<vec4<f32>>;
@group(0) @binding(6) var<storage, read_write> gt04: array<vec4<f32>>;
@group(0) @binding(7) var<storage, read_write> gt14: array<vec4<f32>>;

fn step_alpha(k: u32) -> f32 { return chain.alpha[k / 4u][k % 4u]; }
fn step_beta(k: u32) -> f32 { return chain.beta[k / 4u][k % 4u]; }

// Where vec4 i of x reads each operand: coordinates decomposed once per invocation, then carried.
struct ChainCursor {
  coord: array<u32, MAX_DIMS>,
  i0: u32,
  i1: u32,
}

// The cursor at vec4 i (all zeros where no step takes an operand).
fn chain_cursor_at(i: u32) -> ChainCursor {
  var c: ChainCursor;
  if (!(T0_USED || T1_USED)) { return c; }
  var rest = i;
  for (var d = i32(chain.rank) - 1; d >= 0; d--) {
    let k = u32(d);
    let extent = dim(chain.shape, k);
    c.coord[k] = rest % extent;
    rest = rest / extent;
    c.i0 += c.coord[k] * dim(chain.t0Strides, k);
    c.i1 += c.coord[k] * dim(chain.t1Strides, k);
  }
  return c;
}

fn chain_advance(c: ptr<function, ChainCursor>) {
  for (var d = i32(chain.rank) - 1; d >= 0; d--) {
    let k = u32(d);
    let s0 = dim(chain.t0Strides, k);
    let s1 = dim(chain.t1Strides, k);
    (*c).coord[k] += 1u;
    (*c).i0 += s0;
    (*c).i1 += s1;
    if ((*c).coord[k] < dim(chain.shape, k)) { return; }
    (*c).i0 -= (*c).coord[k] * s0;
    (*c).i1 -= (*c).coord[k] * s1;
    (*c).coord[k] = 0u;
  }
}

// Whether an invocation's `count` vec4s from the cursor stay within one run of the innermost dimension: then the
// cursor steps by the operands' innermost strides alone (walk_next), without the carry loop (as elementwise.wgsl's
// within_run). The cursor is passed by pointer itself, not as a member of a struct: Deno's naga 29 panics on a
// pointer to a member of a pointee (`&(*w).c`).
fn walk_within(c: ChainCursor, count: u32) -> bool {
  if (!(T0_USED || T1_USED)) { return false; }
  let last = chain.rank - 1u;
  return c.coord[last] + count <= dim(chain.shape, last);
}

fn walk_next(c: ptr<function, ChainCursor>, within: bool) {
  if (!(T0_USED || T1_USED)) { return; }
  if (within) {
    let last = chain.rank - 1u;
    (*c).i0 += dim(chain.t0Strides, last);
    (*c).i1 += dim(chain.t1Strides, last);
    return;
  }
  chain_advance(c);
}

fn load_t0(i: u32) -> vec4<f32> {
  if (!T0_USED) { return vec4(0.0); }
  if (T0_SPANS) { return vec4(t0[4u * i], t0[4u * i + 1u], t0[4u * i + 2u], t0[4u * i + 3u]); }
  return vec4(t0[i]);
}

fn load_t1(i: u32) -> vec4<f32> {
  if (!T1_USED) { return vec4(0.0); }
  if (T1_SPANS) { return vec4(t1[4u * i], t1[4u * i + 1u], t1[4u * i + 2u], t1[4u * i + 3u]); }
  return vec4(t1[i]);
}

fn unary4_op(op: u32, v: vec4<f32>, alpha: f32, beta: f32) -> vec4<f32> {
  return vec4(unary_op(op, v.x, alpha, beta), unary_op(op, v.y, alpha, beta), unary_op(op, v.z, alpha, beta), unary_op(op, v.w, alpha, beta));
}

fn binary4_op(op: u32, u: vec4<f32>, v: vec4<f32>) -> vec4<f32> {
  return vec4(binary_op(op, u.x, v.x), binary_op(op, u.y, v.y), binary_op(op, u.z, v.z), binary_op(op, u.w, v.w));
}

// Step k (kind, op and operand from its overrides) at running value v with the operands' values o0, o1.
fn apply_step(kind: u32, op: u32, arg: u32, k: u32, v: vec4<f32>, o0: vec4<f32>, o1: vec4<f32>) -> vec4<f32> {
  let t = select(o0, o1, arg == 1u);
  switch kind {
    case UNARY_STEP: { return unary4_op(op, v, step_alpha(k), step_beta(k)); }
    case OPERAND_RIGHT: { return binary4_op(op, v, t); }
    default: { return binary4_op(op, t, v); }
  }
}

// The chain at x with the operands' values o0, o1: values[k] is the running value before step k, values[STEPS] the
// result. The steps are written out, not looped over, so that every step's overrides reach it as constants.
fn chain_at(x: vec4<f32>, o0: vec4<f32>, o1: vec4<f32>) -> ChainValues {
  var values: ChainValues;
  values[0] = x;
  if (STEPS > 0u) { values[1] = apply_step(KIND0, OP0, ARG0, 0u, values[0], o0, o1); }
  if (STEPS > 1u) { values[2] = apply_step(KIND1, OP1, ARG1, 1u, values[1], o0, o1); }
  if (STEPS > 2u) { values[3] = apply_step(KIND2, OP2, ARG2, 2u, values[2], o0, o1); }
  if (STEPS > 3u) { values[4] = apply_step(KIND3, OP3, ARG3, 3u, values[3], o0, o1); }
  if (STEPS > 4u) { values[5] = apply_step(KIND4, OP4, ARG4, 4u, values[4], o0, o1); }
  if (STEPS > 5u) { values[6] = apply_step(KIND5, OP5, ARG5, 5u, values[5], o0, o1); }
  if (STEPS > 6u) { values[7] = apply_step(KIND6, OP6, ARG6, 6u, values[6], o0, o1); }
  if (STEPS > 7u) { values[8] = apply_step(KIND7, OP7, ARG7, 7u, values[7], o0, o1); }
  return values;
}

// Output vec4s first..first+3: out4[i] = the chain at x4[i].
@compute @workgroup_size(WORKGROUP_SIZE)
fn chain_forward(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let first = flat_index(gid, nwg) * CHAIN_VEC4_PER_INVOCATION;
  let end = min(first + CHAIN_VEC4_PER_INVOCATION, chain.n4);
  if (first >= end) { return; }
  var c = chain_cursor_at(first);
  let within = walk_within(c, end - first);
  for (var i = first; i < end; i++) {
    let o0 = load_t0(c.i0);
    let o1 = load_t1(c.i1);
    var values = chain_at(x4[i], o0, o1);
    out4[i] = values[STEPS];
    walk_next(&c, within);
  }
}

// The gradients carried back through the chain: to the running value, and summed over the steps that take each operand.
struct Gradients {
  x: vec4<f32>,
  t0: vec4<f32>,
  t1: vec4<f32>,
}

// Carries g back through step k, which took v to w.
fn back_step(kind: u32, op: u32, arg: u32, k: u32, v: vec4<f32>, w: vec4<f32>, o0: vec4<f32>, o1: vec4<f32>, g: ptr<function, Gradients>) {
  if (kind == UNARY_STEP) {
    let alpha = step_alpha(k);
    let beta = step_beta(k);
    (*g).x *= vec4(unary_op_derivative(op, v.x, w.x, alpha, beta), unary_op_derivative(op, v.y, w.y, alpha, beta),
                   unary_op_derivative(op, v.z, w.z, alpha, beta), unary_op_derivative(op, v.w, w.w, alpha, beta));
    return;
  }
  // p.du: ∂/∂(running value), p.dv: ∂/∂(operand).
  var p: Partials;
  if (kind == OPERAND_RIGHT) {
    p = binary_partials(op, v, select(o0, o1, arg == 1u));
  } else {
    let q = binary_partials(op, select(o0, o1, arg == 1u), v);
    p = Partials(q.dv, q.du);
  }
  if (arg == 1u) { (*g).t1 += (*g).x * p.dv; } else { (*g).t0 += (*g).x * p.dv; }
  (*g).x *= p.du;
}

// Gradient vec4s first..first+3: the chain recomputed at x4[i], then gy4[i] carried back through its steps into
// out4[i] (∂/∂x) and, where their gradients are wanted, gt04[i] and gt14[i] (∂/∂t0 and ∂/∂t1 at x's shape).
@compute @workgroup_size(WORKGROUP_SIZE)
fn chain_backward(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let first = flat_index(gid, nwg) * CHAIN_VEC4_PER_INVOCATION;
  let end = min(first + CHAIN_VEC4_PER_INVOCATION, chain.n4);
  if (first >= end) { return; }
  var c = chain_cursor_at(first);
  let within = walk_within(c, end - first);
  for (var i = first; i < end; i++) {
    let o0 = load_t0(c.i0);
    let o1 = load_t1(c.i1);
    var values = chain_at(x4[i], o0, o1);
    var g = Gradients(gy4[i], vec4(0.0), vec4(0.0));
    if (STEPS > 7u) { back_step(KIND7, OP7, ARG7, 7u, values[7], values[8], o0, o1, &g); }
    if (STEPS > 6u) { back_step(KIND6, OP6, ARG6, 6u, values[6], values[7], o0, o1, &g); }
    if (STEPS > 5u) { back_step(KIND5, OP5, ARG5, 5u, values[5], values[6], o0, o1, &g); }
    if (STEPS > 4u) { back_step(KIND4, OP4, ARG4, 4u, values[4], values[5], o0, o1, &g); }
    if (STEPS > 3u) { back_step(KIND3, OP3, ARG3, 3u, values[3], values[4], o0, o1, &g); }
    if (STEPS > 2u) { back_step(KIND2, OP2, ARG2, 2u, values[2], values[3], o0, o1, &g); }
    if (STEPS > 1u) { back_step(KIND1, OP1, ARG1, 1u, values[1], values[2], o0, o1, &g); }
    if (STEPS > 0u) { back_step(KIND0, OP0, ARG0, 0u, values[0], values[1], o0, o1, &g); }
    if (X_GRAD) { out4[i] = g.x; }
    if (T0_GRAD) { gt04[i] = g.t0; }
    if (T1_GRAD) { gt14[i] = g.t1; }
    walk_next(&c, within);
  }
}
