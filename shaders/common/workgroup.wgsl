// Reductions and prefix sums over a workgroup of WORKGROUP_SIZE invocations, lid = local_invocation_index. Each
// returns its result to every invocation and must be called from uniform control flow (it holds barriers); the
// workgroup memory it uses can be reused as soon as it returns.
// #include "common/index.wgsl"

var<workgroup> sumPartials: array<vec4<f32>, WORKGROUP_SIZE>;
var<workgroup> maxPartials: array<f32, WORKGROUP_SIZE>;
var<workgroup> scanU32: array<u32, WORKGROUP_SIZE>;
var<workgroup> scanF32: array<f32, WORKGROUP_SIZE>;

// The sum of v over the workgroup (a tree: the same order on every run). Pass fewer values as vec4(v, 0, 0, 0).
fn workgroup_sum(lid: u32, v: vec4<f32>) -> vec4<f32> {
  sumPartials[lid] = v;
  workgroupBarrier();
  for (var stride = WORKGROUP_SIZE / 2u; stride > 0u; stride >>= 1u) {
    if (lid < stride) { sumPartials[lid] += sumPartials[lid + stride]; }
    workgroupBarrier();
  }
  let total = sumPartials[0];
  workgroupBarrier();
  return total;
}

// The maximum of v over the workgroup.
fn workgroup_max(lid: u32, v: f32) -> f32 {
  maxPartials[lid] = v;
  workgroupBarrier();
  for (var stride = WORKGROUP_SIZE / 2u; stride > 0u; stride >>= 1u) {
    if (lid < stride) { maxPartials[lid] = max(maxPartials[lid], maxPartials[lid + stride]); }
    workgroupBarrier();
  }
  let result = maxPartials[0];
  workgroupBarrier();
  return result;
}

// Prefix sums (Hillis–Steele in workgroup memory): (the sum of v over the invocations before lid, the workgroup's
// total). WGSL has no generics, so u32 and f32 each have one; they differ only in the type.
fn workgroup_exclusive_scan_u32(lid: u32, v: u32) -> vec2<u32> {
  scanU32[lid] = v;
  workgroupBarrier();
  for (var offset = 1u; offset < WORKGROUP_SIZE; offset <<= 1u) {
    var add = 0u;
    if (lid >= offset) { add = scanU32[lid - offset]; }
    workgroupBarrier();
    scanU32[lid] += add;
    workgroupBarrier();
  }
  let result = vec2<u32>(select(0u, scanU32[max(lid, 1u) - 1u], lid > 0u), scanU32[WORKGROUP_SIZE - 1u]);
  workgroupBarrier();
  return result;
}

fn workgroup_exclusive_scan_f32(lid: u32, v: f32) -> vec2<f32> {
  scanF32[lid] = v;
  workgroupBarrier();
  for (var offset = 1u; offset < WORKGROUP_SIZE; offset <<= 1u) {
    var add = 0.0;
    if (lid >= offset) { add = scanF32[lid - offset]; }
    workgroupBarrier();
    scanF32[lid] += add;
    workgroupBarrier();
  }
  let result = vec2<f32>(select(0.0, scanF32[max(lid, 1u) - 1u], lid > 0u), scanF32[WORKGROUP_SIZE - 1u]);
  workgroupBarrier();
  return result;
}
