// Patch sampling for data preparation and tiled prediction: one resampling kernel that maps every output voxel to a
// source coordinate through an affine transform (+ an optional displacement field) and samples the image with linear
// interpolation and the labels with nearest neighbour; a separable Gaussian blur with one σ per batch item; per-item
// intensity changes; and a box copy that stitches tiles. Spatial shapes are lifted to 3D (a 2D image has D = 1).
// #include "common/index.wgsl"

// 2 or 3: in 2D the z coordinate is never read, so a 2D sample costs 4 taps, not 8.
override SPATIAL: u32 = 2u;
// Whether labels are resampled too (training crops) or only the image (prediction tiles).
override LABELS: bool = false;
// Whether a per-pixel displacement (elastic warp, 2D only) is added to the output coordinate first.
override ELASTIC: bool = false;

struct WarpParams {
  channels: u32,
  // Element offsets of batch item n in the outputs: n·C·|patch| for images, n·|patch| for labels and n·2·|patch| for
  // the displacement field.
  imageBase: u32,
  labelBase: u32,
  displacementBase: u32,
  // (D, H, W, -) of the source and of the output patch.
  srcShape: vec4<u32>,
  outShape: vec4<u32>,
  // Source coordinate (z, y, x) = rows · (z', y', x', 1), where (z', y', x') is the output voxel's index plus its
  // displacement. Row k holds the coefficients of source axis k.
  rows: array<vec4<f32>, 3>,
}

@group(0) @binding(0) var<storage, read> src: array<f32>;
@group(0) @binding(1) var<storage, read> srcLabels: array<i32>;
@group(0) @binding(2) var<storage, read> displacement: array<f32>;
@group(0) @binding(3) var<storage, read_write> images: array<f32>;
@group(0) @binding(4) var<storage, read_write> labels: array<i32>;
@group(0) @binding(5) var<uniform> warp: WarpParams;

// Index i mirrored into [0, n) without repeating the edge (NumPy's 'reflect'), for any distance outside.
fn reflect_index(i: i32, n: i32) -> i32 {
  if (n == 1) { return 0; }
  let period = 2 * (n - 1);
  var m = i % period;
  if (m < 0) { m += period; }
  return select(m, period - m, m >= n);
}

// One invocation computes one output voxel of batch item n: every image channel by (bi/tri)linear interpolation with
// reflected borders, and the label of the nearest source voxel (-1 = unlabeled where that voxel is outside the image).
@compute @workgroup_size(WORKGROUP_SIZE)
fn warp_patch(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = flat_index(gid, nwg);
  let outShape = warp.outShape.xyz;
  let patchSize = volume3(outShape);
  if (i >= patchSize) { return; }
  let at = coords3(i, outShape);
  var o = vec4<f32>(vec3<f32>(at), 1.0);
  if (ELASTIC) {
    let d = warp.displacementBase + at.y * outShape.z + at.z;
    o.y += displacement[d];
    o.z += displacement[d + patchSize];
  }
  let s = vec3<f32>(dot(warp.rows[0], o), dot(warp.rows[1], o), dot(warp.rows[2], o));
  let size = vec3<i32>(warp.srcShape.xyz);

  let lo = vec3<i32>(floor(s));
  let f = s - floor(s);
  let y0 = reflect_index(lo.y, size.y) * size.z;
  let y1 = reflect_index(lo.y + 1, size.y) * size.z;
  let x0 = reflect_index(lo.z, size.z);
  let x1 = reflect_index(lo.z + 1, size.z);
  var z0 = 0;
  var z1 = 0;
  if (SPATIAL == 3u) {
    z0 = reflect_index(lo.x, size.x) * size.y * size.z;
    z1 = reflect_index(lo.x + 1, size.x) * size.y * size.z;
  }
  let volume = volume3(warp.srcShape.xyz);
  for (var c = 0u; c < warp.channels; c++) {
    let base = i32(c * volume);
    let plane0 = mix(mix(src[base + z0 + y0 + x0], src[base + z0 + y0 + x1], f.z), mix(src[base + z0 + y1 + x0], src[base + z0 + y1 + x1], f.z), f.y);
    var v = plane0;
    if (SPATIAL == 3u) {
      let plane1 = mix(mix(src[base + z1 + y0 + x0], src[base + z1 + y0 + x1], f.z), mix(src[base + z1 + y1 + x0], src[base + z1 + y1 + x1], f.z), f.y);
      v = mix(plane0, plane1, f.x);
    }
    images[warp.imageBase + c * patchSize + i] = v;
  }

  if (LABELS) {
    var near = vec3<i32>(floor(s + 0.5));
    if (SPATIAL == 2u) { near.x = 0; }
    let inside = all(near >= vec3<i32>(0)) && all(near < size);
    var label = -1;
    if (inside) { label = srcLabels[(near.x * size.y + near.y) * size.z + near.z]; }
    labels[warp.labelBase + i] = label;
  }
}

struct BlurParams {
  n: u32,
  // Elements per batch item (selects the item's σ), and the blurred axis's extent and stride.
  itemSize: u32,
  axisLength: u32,
  axisStride: u32,
}

@group(0) @binding(6) var<storage, read> blurIn: array<f32>;
@group(0) @binding(7) var<storage, read> sigmas: array<f32>;
@group(0) @binding(8) var<storage, read_write> blurOut: array<f32>;
@group(0) @binding(9) var<uniform> blur: BlurParams;

// One invocation computes one output element: the normalized Gaussian (σ of its batch item, taps out to ⌈3σ⌉) along
// one axis, with reflected borders; σ ≤ 0 copies.
@compute @workgroup_size(WORKGROUP_SIZE)
fn gaussian_pass(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = flat_index(gid, nwg);
  if (i >= blur.n) { return; }
  let sigma = sigmas[i / blur.itemSize];
  if (sigma <= 0.0) {
    blurOut[i] = blurIn[i];
    return;
  }
  let p = i32((i / blur.axisStride) % blur.axisLength);
  let base = i - u32(p) * blur.axisStride;
  let radius = i32(ceil(3.0 * sigma));
  let k = -0.5 / (sigma * sigma);
  var acc = 0.0;
  var weights = 0.0;
  for (var t = -radius; t <= radius; t++) {
    let w = exp(k * f32(t * t));
    acc += w * blurIn[base + u32(reflect_index(p + t, i32(blur.axisLength))) * blur.axisStride];
    weights += w;
  }
  blurOut[i] = acc / weights;
}

// Whether a standard-normal noise tensor is added (scaled per item).
override NOISE: bool = false;

struct IntensityParams {
  n: u32,
  itemSize: u32,
}

@group(0) @binding(10) var<storage, read> intensityIn: array<f32>;
@group(0) @binding(11) var<storage, read> noise: array<f32>;
// Per batch item: gain, offset, noise std, clip low, clip high (5 values).
@group(0) @binding(12) var<storage, read> itemParams: array<f32>;
@group(0) @binding(13) var<storage, read_write> intensityOut: array<f32>;
@group(0) @binding(14) var<uniform> intensity: IntensityParams;

// One invocation computes one element: clamp(x·gain + offset + noise·std, low, high) with its batch item's values.
@compute @workgroup_size(WORKGROUP_SIZE)
fn intensity_apply(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = flat_index(gid, nwg);
  if (i >= intensity.n) { return; }
  let p = (i / intensity.itemSize) * 5u;
  var v = intensityIn[i] * itemParams[p] + itemParams[p + 1u];
  if (NOISE) { v += noise[i] * itemParams[p + 2u]; }
  intensityOut[i] = clamp(v, itemParams[p + 3u], itemParams[p + 4u]);
}

struct PasteParams {
  n: u32,
  // Element offset of the source's batch item.
  srcBase: u32,
  // (D, H, W, -) of the copied box, of the source and destination volumes, and the box's origin in each.
  extent: vec4<u32>,
  srcShape: vec4<u32>,
  srcOrigin: vec4<u32>,
  dstShape: vec4<u32>,
  dstOrigin: vec4<u32>,
}

@group(0) @binding(15) var<storage, read> pasteSrc: array<f32>;
@group(0) @binding(16) var<storage, read_write> pasteDst: array<f32>;
@group(0) @binding(17) var<uniform> paste: PasteParams;

// One invocation copies one element of the box (channel-major, then z, y, x) from the source item into the destination.
@compute @workgroup_size(WORKGROUP_SIZE)
fn paste_box(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = flat_index(gid, nwg);
  if (i >= paste.n) { return; }
  let extent = paste.extent.xyz;
  let c = i / volume3(extent);
  let at = coords3(i % volume3(extent), extent);
  let ss = paste.srcShape.xyz;
  let ds = paste.dstShape.xyz;
  pasteDst[c * volume3(ds) + index3(paste.dstOrigin.xyz + at, ds)] = pasteSrc[paste.srcBase + c * volume3(ss) + index3(paste.srcOrigin.xyz + at, ss)];
}
