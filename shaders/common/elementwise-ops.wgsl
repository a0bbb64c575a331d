// Elementwise op codes and their math, shared by the one-op kernels (elementwise.wgsl, where the op is the override
// OP) and the fused chains (chain.wgsl, where each step's op is an override): with the op an override constant the
// switches below fold away, so every (entry, op) compiles branch-free. src/kernels/elementwise.ts reads the codes from
// shaderConstants.
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

// Unary op `op` at v: y = f(v; alpha, beta).
fn unary_op(op: u32, v: f32, alpha: f32, beta: f32) -> f32 {
  switch op {
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

// dy/dx of unary op `op` at input v with output w = f(v).
fn unary_op_derivative(op: u32, v: f32, w: f32, alpha: f32, beta: f32) -> f32 {
  switch op {
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

// Binary op `op`: u op v.
fn binary_op(op: u32, u: f32, v: f32) -> f32 {
  switch op {
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

// ∂(u op v)/∂u and ∂(u op v)/∂v for the differentiable binary ops; maximum's ties go to u, minimum's to v (as the
// one-op kernels' gradients do).
struct Partials {
  du: vec4<f32>,
  dv: vec4<f32>,
}

fn binary_partials(op: u32, u: vec4<f32>, v: vec4<f32>) -> Partials {
  let one = vec4(1.0);
  let zero = vec4(0.0);
  switch op {
    case ADD: { return Partials(one, one); }
    case SUB: { return Partials(one, -one); }
    case MUL: { return Partials(v, u); }
    case DIV: { return Partials(one / v, -(u / v) / v); }
    case MAXIMUM: { let a = select(zero, one, u >= v); return Partials(a, one - a); }
    default: { let b = select(zero, one, u >= v); return Partials(one - b, b); } // MINIMUM
  }
}
