// Optimizer updates, one fused kernel per parameter tensor: the parameter is updated in place (bound read_write as
// `param`), its optimizer state (Adam's moments, SGD's momentum buffer) too. The formulas follow torch.optim.
// #include "common/index.wgsl"

// True for Nesterov momentum: the step uses g + momentum·buf instead of buf.
override NESTEROV: bool = false;

// Adam and AdamW. The bias corrections depend on the parameter's step count t and are computed on the CPU in float64.
// 1 − β is passed rather than computed in f32, where 1 − 0.999 is off by 1.3e-5 relative.
struct AdamParams {
  n: u32,
  beta1: f32,
  beta2: f32,
  oneMinusBeta1: f32,
  oneMinusBeta2: f32,
  eps: f32,
  // lr / (1 − β1^t)
  stepSize: f32,
  // 1 / sqrt(1 − β2^t)
  invBiasCorrection2Sqrt: f32,
  // L2 weight decay added to the gradient (torch.optim.Adam); 0 for AdamW.
  l2: f32,
  // Decoupled weight decay factor 1 − lr·wd (torch.optim.AdamW); 1 for Adam.
  decay: f32,
}

struct SgdParams {
  n: u32,
  lr: f32,
  momentum: f32,
  weightDecay: f32,
}

@group(0) @binding(0) var<storage, read_write> param: array<f32>;
@group(0) @binding(1) var<storage, read> grad: array<f32>;
@group(0) @binding(2) var<storage, read_write> m: array<f32>;
@group(0) @binding(3) var<storage, read_write> v: array<f32>;
@group(0) @binding(4) var<uniform> adam: AdamParams;
@group(0) @binding(5) var<storage, read_write> buf: array<f32>;
@group(0) @binding(6) var<uniform> sgd: SgdParams;

// One parameter element: its moments m, v and its value after one Adam (or AdamW) step.
@compute @workgroup_size(WORKGROUP_SIZE)
fn adam_step(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = flat_index(gid, nwg);
  if (i >= adam.n) { return; }
  let p = param[i] * adam.decay;
  let g = grad[i] + adam.l2 * param[i];
  let mi = adam.beta1 * m[i] + adam.oneMinusBeta1 * g;
  let vi = adam.beta2 * v[i] + adam.oneMinusBeta2 * g * g;
  m[i] = mi;
  v[i] = vi;
  param[i] = p - adam.stepSize * mi / (sqrt(vi) * adam.invBiasCorrection2Sqrt + adam.eps);
}

// One parameter element after one plain SGD step.
@compute @workgroup_size(WORKGROUP_SIZE)
fn sgd_step(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = flat_index(gid, nwg);
  if (i >= sgd.n) { return; }
  param[i] -= sgd.lr * (grad[i] + sgd.weightDecay * param[i]);
}

// One parameter element and its momentum buffer after one SGD-with-momentum step. The buffer starts at zero, which
// makes the first step buf = g as in torch (dampening 0).
@compute @workgroup_size(WORKGROUP_SIZE)
fn sgd_momentum_step(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = flat_index(gid, nwg);
  if (i >= sgd.n) { return; }
  let g = grad[i] + sgd.weightDecay * param[i];
  let b = sgd.momentum * buf[i] + g;
  buf[i] = b;
  param[i] -= sgd.lr * select(b, g + sgd.momentum * b, NESTEROV);
}
