// Softmax and log-softmax along one axis, forward and backward. The input is viewed as [outer, len, inner]: a row is
// one (outer, inner) pair, its len elements `inner` apart. Short rows: one invocation per row (neighbouring
// invocations take neighbouring inner positions, so reads coalesce, e.g. the channel axis of N,C,H,W). Long rows: one
// workgroup per row, each invocation a strided share, combined through workgroup memory.
// Forward subtracts the row maximum before exp, so any finite input is safe.
// Backward, with y the forward output: softmax gx = y * (gy - Σ gy*y); log-softmax gx = gy - exp(y) * Σ gy.
// #include "common/index.wgsl"
// #include "common/workgroup.wgsl"

// True for log-softmax.
override LOG: bool = false;

struct SoftmaxParams {
  rows: u32,
  len: u32,
  inner: u32,
}

@group(0) @binding(0) var<storage, read> x: array<f32>;
@group(0) @binding(1) var<storage, read> y: array<f32>;
@group(0) @binding(2) var<storage, read> gy: array<f32>;
@group(0) @binding(3) var<storage, read_write> out: array<f32>;
@group(0) @binding(4) var<uniform> params: SoftmaxParams;

// Offset of element 0 of row r; element l is at row_start(r) + l * inner.
fn row_start(r: u32) -> u32 {
  return (r / params.inner) * params.len * params.inner + r % params.inner;
}

fn forward_value(v: f32, rowMax: f32, sumExp: f32) -> f32 {
  if (LOG) { return v - rowMax - log(sumExp); }
  return exp(v - rowMax) / sumExp;
}

// The term summed over the row in backward: gy for log-softmax, gy * y for softmax.
fn backward_term(g: f32, yv: f32) -> f32 {
  return select(g * yv, g, LOG);
}

fn backward_value(g: f32, yv: f32, dot: f32) -> f32 {
  if (LOG) { return g - exp(yv) * dot; }
  return yv * (g - dot);
}

// One invocation computes one row.
@compute @workgroup_size(WORKGROUP_SIZE)
fn forward_serial(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let r = flat_index(gid, nwg);
  if (r >= params.rows) { return; }
  let start = row_start(r);
  var rowMax = -3.402823e38;
  for (var l = 0u; l < params.len; l++) { rowMax = max(rowMax, x[start + l * params.inner]); }
  var sumExp = 0.0;
  for (var l = 0u; l < params.len; l++) { sumExp += exp(x[start + l * params.inner] - rowMax); }
  for (var l = 0u; l < params.len; l++) {
    let i = start + l * params.inner;
    out[i] = forward_value(x[i], rowMax, sumExp);
  }
}

// One invocation computes one row.
@compute @workgroup_size(WORKGROUP_SIZE)
fn backward_serial(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let r = flat_index(gid, nwg);
  if (r >= params.rows) { return; }
  let start = row_start(r);
  var dot = 0.0;
  for (var l = 0u; l < params.len; l++) {
    let i = start + l * params.inner;
    dot += backward_term(gy[i], y[i]);
  }
  for (var l = 0u; l < params.len; l++) {
    let i = start + l * params.inner;
    out[i] = backward_value(gy[i], y[i], dot);
  }
}

// One workgroup computes one row (workgroup index = row), each invocation every WORKGROUP_SIZE-th element.
@compute @workgroup_size(WORKGROUP_SIZE)
fn forward_workgroup(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                     @builtin(local_invocation_index) lid: u32) {
  let r = workgroup_index(wid, nwg);
  if (r >= params.rows) { return; } // uniform across the workgroup
  let start = row_start(r);
  var m = -3.402823e38;
  for (var l = lid; l < params.len; l += WORKGROUP_SIZE) { m = max(m, x[start + l * params.inner]); }
  let rowMax = workgroup_max(lid, m);
  var s = 0.0;
  for (var l = lid; l < params.len; l += WORKGROUP_SIZE) { s += exp(x[start + l * params.inner] - rowMax); }
  let sumExp = workgroup_sum(lid, vec4<f32>(s, 0.0, 0.0, 0.0)).x;
  for (var l = lid; l < params.len; l += WORKGROUP_SIZE) {
    let i = start + l * params.inner;
    out[i] = forward_value(x[i], rowMax, sumExp);
  }
}

// One workgroup computes one row (workgroup index = row), each invocation every WORKGROUP_SIZE-th element.
@compute @workgroup_size(WORKGROUP_SIZE)
fn backward_workgroup(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                      @builtin(local_invocation_index) lid: u32) {
  let r = workgroup_index(wid, nwg);
  if (r >= params.rows) { return; } // uniform across the workgroup
  let start = row_start(r);
  var d = 0.0;
  for (var l = lid; l < params.len; l += WORKGROUP_SIZE) {
    let i = start + l * params.inner;
    d += backward_term(gy[i], y[i]);
  }
  let dot = workgroup_sum(lid, vec4<f32>(d, 0.0, 0.0, 0.0)).x;
  for (var l = lid; l < params.len; l += WORKGROUP_SIZE) {
    let i = start + l * params.inner;
    out[i] = backward_value(gy[i], y[i], dot);
  }
}
