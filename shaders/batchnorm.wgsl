// Batch normalization over x [N, C, S] (S = the product of the spatial dimensions, 1 for [N, C]): per channel c,
// y = (x − mean_c) · invstd_c · gamma_c + beta_c with invstd_c = 1/√(var_c + eps). Training uses the batch's
// statistics (biased variance) and moves the running statistics towards them (unbiased variance, like PyTorch);
// evaluation uses the running statistics. Per-channel statistics and gradient sums are workgroup reductions: one
// workgroup per channel, each invocation a strided share of the channel's N·S elements, then a tree.
// stats holds [mean_0..mean_{C−1}, invstd_0..invstd_{C−1}].
// #include "common/index.wgsl"
// #include "common/workgroup.wgsl"

struct BatchNormParams {
  channels: u32,
  batch: u32,
  // Elements per (sample, channel) plane.
  spatial: u32,
  // N·C·S, for the elementwise entries.
  n: u32,
  momentum: f32,
  eps: f32,
}

@group(0) @binding(0) var<storage, read> x: array<f32>;
@group(0) @binding(1) var<storage, read_write> stats: array<f32>;
@group(0) @binding(2) var<storage, read_write> runningMean: array<f32>;
@group(0) @binding(3) var<storage, read_write> runningVar: array<f32>;
@group(0) @binding(4) var<storage, read> statsIn: array<f32>;
@group(0) @binding(5) var<storage, read> gamma: array<f32>;
@group(0) @binding(6) var<storage, read> beta: array<f32>;
@group(0) @binding(7) var<storage, read_write> out: array<f32>;
@group(0) @binding(8) var<storage, read> gy: array<f32>;
@group(0) @binding(9) var<storage, read_write> gGamma: array<f32>;
@group(0) @binding(10) var<storage, read_write> gBeta: array<f32>;
@group(0) @binding(11) var<storage, read> gGammaIn: array<f32>;
@group(0) @binding(12) var<storage, read> gBetaIn: array<f32>;
@group(0) @binding(13) var<storage, read_write> gx: array<f32>;
@group(0) @binding(14) var<uniform> params: BatchNormParams;
// The same tensors as vec4s, for the *_vec4 entries (spatial a multiple of 4: each vec4 lies in one channel).
@group(0) @binding(15) var<storage, read> x4: array<vec4<f32>>;
@group(0) @binding(16) var<storage, read_write> out4: array<vec4<f32>>;
@group(0) @binding(17) var<storage, read> gy4: array<vec4<f32>>;
@group(0) @binding(18) var<storage, read_write> gx4: array<vec4<f32>>;

// vec4s per invocation of the *_vec4 entries (as the elementwise ones: lavapipe checks every storage access's
// bounds, so a vec4 costs what a scalar does, and the channel's division is made once per vec4).
const VEC4_PER_INVOCATION = 4u;

fn channel_of(i: u32) -> u32 {
  return (i / params.spatial) % params.channels;
}

// One workgroup per channel (workgroup index = c): the batch mean, then the biased variance around it (two passes:
// no cancellation), written to stats; the running statistics move by `momentum` towards mean and unbiased variance.
@compute @workgroup_size(WORKGROUP_SIZE)
fn bn_train_stats(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let c = wid.x;
  let count = f32(params.batch * params.spatial);
  var acc = 0.0;
  for (var n = 0u; n < params.batch; n++) {
    let base = (n * params.channels + c) * params.spatial;
    for (var s = lid; s < params.spatial; s += WORKGROUP_SIZE) { acc += x[base + s]; }
  }
  let mean = workgroup_sum(lid, vec4<f32>(acc, 0.0, 0.0, 0.0)).x / count;
  acc = 0.0;
  for (var n = 0u; n < params.batch; n++) {
    let base = (n * params.channels + c) * params.spatial;
    for (var s = lid; s < params.spatial; s += WORKGROUP_SIZE) {
      let d = x[base + s] - mean;
      acc += d * d;
    }
  }
  let variance = workgroup_sum(lid, vec4<f32>(acc, 0.0, 0.0, 0.0)).x / count;
  if (lid == 0u) {
    stats[c] = mean;
    stats[params.channels + c] = inverseSqrt(variance + params.eps);
    let m = params.momentum;
    runningMean[c] = (1.0 - m) * runningMean[c] + m * mean;
    runningVar[c] = (1.0 - m) * runningVar[c] + m * variance * count / (count - 1.0);
  }
}

// One channel: evaluation-mode stats from the running statistics.
@compute @workgroup_size(WORKGROUP_SIZE)
fn bn_eval_stats(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let c = flat_index(gid, nwg);
  if (c >= params.channels) { return; }
  stats[c] = runningMean[c];
  stats[params.channels + c] = inverseSqrt(runningVar[c] + params.eps);
}

// One element: the normalized, scaled and shifted value.
@compute @workgroup_size(WORKGROUP_SIZE)
fn bn_forward(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = flat_index(gid, nwg);
  if (i >= params.n) { return; }
  let c = channel_of(i);
  out[i] = (x[i] - statsIn[c]) * statsIn[params.channels + c] * gamma[c] + beta[c];
}

// vec4s first..first+3: bn_forward on four elements of one channel at a time, in the same order of operations.
@compute @workgroup_size(WORKGROUP_SIZE)
fn bn_forward_vec4(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let first = flat_index(gid, nwg) * VEC4_PER_INVOCATION;
  for (var i = first; i < min(first + VEC4_PER_INVOCATION, params.n / 4u); i++) {
    let c = channel_of(4u * i);
    out4[i] = (x4[i] - statsIn[c]) * statsIn[params.channels + c] * gamma[c] + beta[c];
  }
}

// One workgroup per channel: gBeta_c = Σ gy and gGamma_c = Σ gy · x̂ over the channel's N·S elements,
// x̂ = (x − mean) · invstd.
@compute @workgroup_size(WORKGROUP_SIZE)
fn bn_backward_reduce(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let c = wid.x;
  let mean = statsIn[c];
  let invstd = statsIn[params.channels + c];
  var acc = vec2<f32>(0.0);
  for (var n = 0u; n < params.batch; n++) {
    let base = (n * params.channels + c) * params.spatial;
    for (var s = lid; s < params.spatial; s += WORKGROUP_SIZE) {
      let g = gy[base + s];
      acc += vec2<f32>(g * (x[base + s] - mean) * invstd, g);
    }
  }
  let total = workgroup_sum(lid, vec4<f32>(acc, 0.0, 0.0));
  if (lid == 0u) {
    gGamma[c] = total.x;
    gBeta[c] = total.y;
  }
}

// One element of the training-mode input gradient (mean and variance depend on x):
// gx = gamma · invstd · (gy − gBeta/M − x̂ · gGamma/M), M = N·S.
@compute @workgroup_size(WORKGROUP_SIZE)
fn bn_backward_input_train(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = flat_index(gid, nwg);
  if (i >= params.n) { return; }
  let c = channel_of(i);
  let invstd = statsIn[params.channels + c];
  let xhat = (x[i] - statsIn[c]) * invstd;
  let count = f32(params.batch * params.spatial);
  gx[i] = gamma[c] * invstd * (gy[i] - (gBetaIn[c] + xhat * gGammaIn[c]) / count);
}

// vec4s first..first+3 of the training-mode input gradient, as bn_backward_input_train.
@compute @workgroup_size(WORKGROUP_SIZE)
fn bn_backward_input_train_vec4(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let first = flat_index(gid, nwg) * VEC4_PER_INVOCATION;
  let count = f32(params.batch * params.spatial);
  for (var i = first; i < min(first + VEC4_PER_INVOCATION, params.n / 4u); i++) {
    let c = channel_of(4u * i);
    let invstd = statsIn[params.channels + c];
    let xhat = (x4[i] - statsIn[c]) * invstd;
    gx4[i] = gamma[c] * invstd * (gy4[i] - (gBetaIn[c] + xhat * gGammaIn[c]) / count);
  }
}

// vec4s first..first+3 of the evaluation-mode input gradient, as bn_backward_input_eval.
@compute @workgroup_size(WORKGROUP_SIZE)
fn bn_backward_input_eval_vec4(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let first = flat_index(gid, nwg) * VEC4_PER_INVOCATION;
  for (var i = first; i < min(first + VEC4_PER_INVOCATION, params.n / 4u); i++) {
    let c = channel_of(4u * i);
    gx4[i] = gy4[i] * gamma[c] * statsIn[params.channels + c];
  }
}

// One element of the evaluation-mode input gradient (fixed statistics): gx = gy · gamma · invstd.
@compute @workgroup_size(WORKGROUP_SIZE)
fn bn_backward_input_eval(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = flat_index(gid, nwg);
  if (i >= params.n) { return; }
  let c = channel_of(i);
  gx[i] = gy[i] * gamma[c] * statsIn[params.channels + c];
}
