// The engine's own kernels: fill (zeros are a clearBuffer) and the same-shape sum used to accumulate gradients.
// #include "common/index.wgsl"

struct FillParams {
  n: u32,
  // The fill value's 32 bits, reinterpreted by each entry point as its element type.
  bits: u32,
}

struct AddParams {
  n: u32,
}

@group(0) @binding(0) var<storage, read_write> out_f32: array<f32>;
@group(0) @binding(1) var<storage, read_write> out_i32: array<i32>;
@group(0) @binding(2) var<storage, read_write> out_u32: array<u32>;
@group(0) @binding(3) var<uniform> fillParams: FillParams;

@group(0) @binding(4) var<storage, read> a: array<f32>;
@group(0) @binding(5) var<storage, read> b: array<f32>;
@group(0) @binding(6) var<storage, read_write> sum: array<f32>;
@group(0) @binding(7) var<uniform> addParams: AddParams;

// Each invocation writes one element.
@compute @workgroup_size(WORKGROUP_SIZE)
fn fill_f32(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = flat_index(gid, nwg);
  if (i < fillParams.n) { out_f32[i] = bitcast<f32>(fillParams.bits); }
}

@compute @workgroup_size(WORKGROUP_SIZE)
fn fill_i32(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = flat_index(gid, nwg);
  if (i < fillParams.n) { out_i32[i] = bitcast<i32>(fillParams.bits); }
}

@compute @workgroup_size(WORKGROUP_SIZE)
fn fill_u32(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = flat_index(gid, nwg);
  if (i < fillParams.n) { out_u32[i] = fillParams.bits; }
}

// Each invocation adds one pair of elements.
@compute @workgroup_size(WORKGROUP_SIZE)
fn add(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = flat_index(gid, nwg);
  if (i < addParams.n) { sum[i] = a[i] + b[i]; }
}
