// PatchPerPix's training targets (src/kernels/patch-targets.ts) from the layered instance labels of a crop,
// [N, L, D, H, W] i32 (D = 1 in 2D) in canonical form: per pixel its instance ids in the non-zero layers, a negative
// id in any layer meaning unlabeled. Targets are computed on a centred window of the crop (the network's valid
// output), (D', H', W'); window pixel p sits at p + margin in the crop, and its patch offsets may reach into the
// margin. Channel c of a P_z×P_y×P_x patch is offset o = coords(c) − (P − 1)/2 per axis, row-major.
// #include "common/index.wgsl"

// A target that no loss may count: a labelled one is 0 or 1.
const IGNORE: f32 = -1.0;

struct PatchParams {
  items: u32,
  layers: u32,
  // Channels (P_z·P_y·P_x) and window pixels (D'·H'·W') per item.
  channels: u32,
  pixels: u32,
  // (D, H, W, -) of the crop, (D', H', W', -) of the window, the window's first pixel in the crop, and (P_z, P_y, P_x, -).
  crop: vec4<u32>,
  window: vec4<u32>,
  margin: vec4<u32>,
  patchShape: vec4<u32>,
}

@group(0) @binding(0) var<uniform> params: PatchParams;
@group(0) @binding(1) var<storage, read> labels: array<i32>;
// [N, channels, D', H', W']: 1, 0 or IGNORE.
@group(0) @binding(2) var<storage, read_write> targets: array<f32>;
// [N, 1, D', H', W']: 1 where the patch loss counts the pixel, else 0.
@group(0) @binding(3) var<storage, read_write> mask: array<f32>;
// [N, 1, D', H', W']: 0, 1, 2 for two or more instances, −1 unlabeled.
@group(0) @binding(4) var<storage, read_write> numInstances: array<i32>;

// The pixel at crop position `at` of item n: (its number of instances, or −1 where unlabeled; its largest id, 0 if none).
fn instances_at(n: u32, at: vec3<u32>) -> vec2<i32> {
  let volume = volume3(params.crop.xyz);
  let base = n * params.layers * volume + index3(at, params.crop.xyz);
  var count = 0;
  var id = 0;
  for (var k = 0u; k < params.layers; k++) {
    let label = labels[base + k * volume];
    if (label < 0) { return vec2<i32>(-1, 0); }
    if (label > 0) {
      count++;
      id = label;
    }
  }
  return vec2<i32>(count, id);
}

// Whether one of the layers at crop position `at` of item n holds `id`.
fn holds(n: u32, at: vec3<u32>, id: i32) -> bool {
  let volume = volume3(params.crop.xyz);
  let base = n * params.layers * volume + index3(at, params.crop.xyz);
  for (var k = 0u; k < params.layers; k++) {
    if (labels[base + k * volume] == id) { return true; }
  }
  return false;
}

// One invocation per target (n, c, p): 1 iff window pixel p belongs to exactly one instance and p + o (o: channel c's
// offset) belongs to that instance too, in any layer; 0 where p is background, or p + o is labelled and not in p's
// instance; IGNORE where p is unlabeled or overlapped (its patch is undefined), or p is foreground and p + o lies
// outside the crop or is unlabeled (unknown).
@compute @workgroup_size(WORKGROUP_SIZE)
fn patch_targets(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let idx = flat_index(gid, nwg);
  if (idx >= params.items * params.channels * params.pixels) { return; }
  let n = idx / (params.channels * params.pixels);
  let c = (idx / params.pixels) % params.channels;
  let p = coords3(idx % params.pixels, params.window.xyz) + params.margin.xyz;
  let own = instances_at(n, p);
  if (own.x != 1) {
    targets[idx] = select(IGNORE, 0.0, own.x == 0);
    return;
  }
  let q = vec3<i32>(p) + vec3<i32>(coords3(c, params.patchShape.xyz)) - vec3<i32>((params.patchShape.xyz - 1u) / 2u);
  if (any(q < vec3<i32>(0)) || any(q >= vec3<i32>(params.crop.xyz)) || instances_at(n, vec3<u32>(q)).x < 0) {
    targets[idx] = IGNORE;
    return;
  }
  targets[idx] = select(0.0, 1.0, holds(n, vec3<u32>(q), own.y));
}

// One invocation per window pixel (n, p): its number-of-instances class and whether the patch loss counts it.
@compute @workgroup_size(WORKGROUP_SIZE)
fn patch_pixels(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let idx = flat_index(gid, nwg);
  if (idx >= params.items * params.pixels) { return; }
  let n = idx / params.pixels;
  let count = instances_at(n, coords3(idx % params.pixels, params.window.xyz) + params.margin.xyz).x;
  numInstances[idx] = min(count, 2);
  mask[idx] = select(0.0, 1.0, count == 0 || count == 1);
}
