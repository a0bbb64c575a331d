// Deformable convolution v2 (torchvision.ops.deform_conv2d, ONNX DeformConv), 2D, in two steps:
//   1. deformable im2col: col[n, c·K + k, p] = mask · bilinear(x[n, c], sampling point of tap k at output pixel p),
//      K = kh·kw taps, P = Ho·Wo output pixels; the sampling point is the regular conv tap shifted by the learned
//      offset (dy, dx) of the tap's offset group; bilinear sampling reads zero outside the image;
//   2. a grouped, batched matmul (shaders/matmul.wgsl) with the weights [Cout, Cin/group · K].
// The backward's matmuls give gCol = wᵀ·gy and gW = gy·colᵀ; the entries here turn gCol into gradients for x (a
// scatter through the bilinear weights: float atomics by compare-exchange on the bits) and offsets and mask (gathers).
// Offsets are [N, 2·offsetGroups·K, Ho, Wo] ordered (dy, dx) per tap, mask [N, offsetGroups·K, Ho, Wo].
// #include "common/index.wgsl"

// Whether a modulation mask is bound (deformable conv v1 when false: every tap weighs 1).
override HAS_MASK: bool = true;

struct DeformParams {
  // N·offsetGroups·K·P: one invocation per (sample, offset group, tap, output pixel).
  n: u32,
  channels: u32,
  height: u32,
  width: u32,
  outWidth: u32,
  // Output pixels P = Ho·Wo.
  pixels: u32,
  kernelWidth: u32,
  // Taps K = kh·kw.
  taps: u32,
  offsetGroups: u32,
  // Input channels per offset group.
  groupChannels: u32,
  // (y, x) pairs: stride, padding before, dilation.
  strides: vec2<i32>,
  pads: vec2<i32>,
  dilations: vec2<i32>,
}

@group(0) @binding(0) var<storage, read> x: array<f32>;
@group(0) @binding(1) var<storage, read> offset: array<f32>;
@group(0) @binding(2) var<storage, read> mask: array<f32>;
@group(0) @binding(3) var<storage, read_write> col: array<f32>;
@group(0) @binding(4) var<storage, read> gCol: array<f32>;
// The input gradient's f32 bits, accumulated with compare-exchange.
@group(0) @binding(5) var<storage, read_write> gxBits: array<atomic<u32>>;
@group(0) @binding(6) var<storage, read_write> gOffset: array<f32>;
@group(0) @binding(7) var<storage, read_write> gMask: array<f32>;
@group(0) @binding(8) var<uniform> geom: DeformParams;

// Where one invocation samples: the bilinear corners and weights of one (sample, offset group, tap, pixel).
struct Site {
  // First channel of the offset group in x: (n·C + g·Cg)·H·W.
  xBase: u32,
  // Plane offsets y·W + x of the corners (y0,x0), (y0,x1), (y1,x0), (y1,x1); clamped to the image so that they
  // can always be read (outside corners have weight 0).
  at: vec4<u32>,
  // Bilinear weights of the corners, 0 for corners outside the image.
  w: vec4<f32>,
  // d(w)/dy and d(w)/dx of the corners (0 outside the image).
  wy: vec4<f32>,
  wx: vec4<f32>,
  // Modulation of the tap at this pixel.
  m: f32,
  // Channel row c·K + k of column (and gCol) entries is (n·C + g·Cg + c)·K + k: base without c, in units of P.
  colBase: u32,
  // Index of dy in offset (dx is P further) and of the mask value.
  offsetAt: u32,
  maskAt: u32,
}

fn site(i: u32) -> Site {
  let p = i % geom.pixels;
  var rest = i / geom.pixels;
  let k = rest % geom.taps;
  rest /= geom.taps;
  let g = rest % geom.offsetGroups;
  let n = rest / geom.offsetGroups;
  var s: Site;
  let gk = (n * geom.offsetGroups + g) * geom.taps + k;
  s.offsetAt = (2u * gk) * geom.pixels + p;
  s.maskAt = gk * geom.pixels + p;
  s.m = 1.0;
  if (HAS_MASK) { s.m = mask[s.maskAt]; }
  let tap = vec2<i32>(vec2<u32>(k / geom.kernelWidth, k % geom.kernelWidth));
  let pixel = vec2<i32>(vec2<u32>(p / geom.outWidth, p % geom.outWidth));
  let base = pixel * geom.strides - geom.pads + tap * geom.dilations;
  // The integer part of the offset joins the integer base and the weights come from the offset's fraction alone, so
  // that they do not depend on where the pixel lies: f32 (base + offset) would keep fewer fraction bits far from the
  // origin, and a tile would then sample differently from the whole image.
  let o = vec2<f32>(offset[s.offsetAt], offset[s.offsetAt + geom.pixels]);
  let lo = floor(o);
  let l = o - lo;
  let y0 = base.x + i32(lo.x);
  let x0 = base.y + i32(lo.y);
  let h = i32(geom.height);
  let wd = i32(geom.width);
  // Corner order: (y0,x0), (y0,x1), (y1,x0), (y1,x1).
  let cy = vec4<i32>(y0, y0, y0 + 1, y0 + 1);
  let cx = vec4<i32>(x0, x0 + 1, x0, x0 + 1);
  let inside = vec4<f32>((cy >= vec4<i32>(0)) & (cy < vec4<i32>(h)) & (cx >= vec4<i32>(0)) & (cx < vec4<i32>(wd)));
  let ay = vec4<f32>(1.0 - l.x, 1.0 - l.x, l.x, l.x);
  let ax = vec4<f32>(1.0 - l.y, l.y, 1.0 - l.y, l.y);
  s.w = ay * ax * inside;
  s.wy = vec4<f32>(-1.0, -1.0, 1.0, 1.0) * ax * inside;
  s.wx = vec4<f32>(-1.0, 1.0, -1.0, 1.0) * ay * inside;
  s.at = vec4<u32>(clamp(cy, vec4<i32>(0), vec4<i32>(h - 1)) * wd + clamp(cx, vec4<i32>(0), vec4<i32>(wd - 1)));
  s.xBase = (n * geom.channels + g * geom.groupChannels) * geom.height * geom.width;
  s.colBase = (n * geom.channels + g * geom.groupChannels) * geom.taps + k;
  return s;
}

// The four corner values of channel c (relative to the offset group) at a site.
fn corners(s: Site, c: u32) -> vec4<f32> {
  let plane = s.xBase + c * geom.height * geom.width;
  return vec4<f32>(x[plane + s.at.x], x[plane + s.at.y], x[plane + s.at.z], x[plane + s.at.w]);
}

// One (sample, offset group, tap, output pixel): the sampling point and its weights once, then the modulated sample of
// every channel of the offset group into the columns (consecutive invocations write consecutive pixels).
@compute @workgroup_size(WORKGROUP_SIZE)
fn deform_im2col(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = flat_index(gid, nwg);
  if (i >= geom.n) { return; }
  let s = site(i);
  let p = i % geom.pixels;
  for (var ch = 0u; ch < geom.groupChannels; ch++) {
    col[(s.colBase + ch * geom.taps) * geom.pixels + p] = s.m * dot(s.w, corners(s, ch));
  }
}

// Adds v to the f32 stored as bits in gxBits[at] (compare-exchange until no other invocation intervened).
fn atomic_add_gx(at: u32, v: f32) {
  var old = atomicLoad(&gxBits[at]);
  loop {
    let r = atomicCompareExchangeWeak(&gxBits[at], old, bitcast<u32>(bitcast<f32>(old) + v));
    if (r.exchanged) { break; }
    old = r.old_value;
  }
}

// One (sample, offset group, tap, output pixel): scatters gCol · mask through the bilinear weights into the input
// gradient of every channel of the offset group.
@compute @workgroup_size(WORKGROUP_SIZE)
fn deform_grad_input(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = flat_index(gid, nwg);
  if (i >= geom.n) { return; }
  let s = site(i);
  let p = i % geom.pixels;
  for (var ch = 0u; ch < geom.groupChannels; ch++) {
    let g = s.m * gCol[(s.colBase + ch * geom.taps) * geom.pixels + p];
    if (g == 0.0) { continue; }
    let plane = s.xBase + ch * geom.height * geom.width;
    for (var q = 0u; q < 4u; q++) {
      if (s.w[q] != 0.0) { atomic_add_gx(plane + s.at[q], g * s.w[q]); }
    }
  }
}

// One (sample, offset group, tap, output pixel): the gradients of its offset (dy, dx) and mask value, summed over the
// channels of the offset group: gMask = Σ_c gCol·sample, gOffset = Σ_c gCol·mask·d(sample)/d(y, x).
@compute @workgroup_size(WORKGROUP_SIZE)
fn deform_grad_offset_mask(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = flat_index(gid, nwg);
  if (i >= geom.n) { return; }
  let s = site(i);
  let p = i % geom.pixels;
  var gm = 0.0;
  var gDy = 0.0;
  var gDx = 0.0;
  for (var ch = 0u; ch < geom.groupChannels; ch++) {
    let g = gCol[(s.colBase + ch * geom.taps) * geom.pixels + p];
    let v = corners(s, ch);
    gm += g * dot(s.w, v);
    gDy += g * dot(s.wy, v);
    gDx += g * dot(s.wx, v);
  }
  gOffset[s.offsetAt] = s.m * gDy;
  gOffset[s.offsetAt + geom.pixels] = s.m * gDx;
  if (HAS_MASK) { gMask[s.maskAt] = gm; }
}
