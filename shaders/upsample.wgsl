// Nearest and (bi/tri)linear resampling of x [N, C, D, H, W] (2D inputs as D = 1), with PyTorch's interpolate
// coordinate rules. Every axis maps an output index o to at most two input taps i0 ≤ i1 with weights (1 − w1, w1);
// nearest is the case w1 = 0. The gradient is a gather: one invocation per input element walks the few outputs whose
// taps include it (found with the forward's own taps(), so both passes agree exactly) — no atomics.
// #include "common/index.wgsl"

override LINEAR: bool = false;
// linear only: output corners map onto input corners (source = o · ratio, ratio = (in − 1)/(out − 1)).
override ALIGN_CORNERS: bool = false;

struct UpsampleParams {
  // N·C·Do·Ho·Wo for the forward, N·C·D·H·W for the backward.
  n: u32,
  // (D, H, W, unused) of the input and of the output.
  inShape: vec4<u32>,
  outShape: vec4<u32>,
  // Input coordinate step per output step, per axis: in/out (size given), 1/scale (scale given), or the
  // align-corners ratio.
  ratio: vec4<f32>,
}

@group(0) @binding(0) var<storage, read> x: array<f32>;
@group(0) @binding(1) var<storage, read_write> out: array<f32>;
@group(0) @binding(2) var<storage, read> gy: array<f32>;
@group(0) @binding(3) var<storage, read_write> gx: array<f32>;
@group(0) @binding(4) var<uniform> params: UpsampleParams;

struct Taps {
  i0: i32,
  i1: i32,
  // Weight of i1; i0 gets 1 − w1.
  w1: f32,
}

// The input taps of output index o on `axis` (0 = D, 1 = H, 2 = W).
fn taps(o: i32, axis: u32) -> Taps {
  let size = i32(params.inShape[axis]);
  let ratio = params.ratio[axis];
  if (!LINEAR) {
    let i = min(i32(floor(f32(o) * ratio)), size - 1);
    return Taps(i, i, 0.0);
  }
  var src = f32(o) * ratio;
  if (!ALIGN_CORNERS) { src = max((f32(o) + 0.5) * ratio - 0.5, 0.0); }
  let i0 = min(i32(floor(src)), size - 1);
  let i1 = min(i0 + 1, size - 1);
  return Taps(i0, i1, select(src - f32(i0), 0.0, i1 == i0));
}

// Weight of input index i in output o's interpolation along `axis`.
fn weight(o: i32, i: i32, axis: u32) -> f32 {
  let t = taps(o, axis);
  return select(0.0, 1.0 - t.w1, t.i0 == i) + select(0.0, t.w1, t.i1 == i);
}

// The outputs [first, last] along `axis` whose taps include input index i (taps are non-decreasing in o).
fn covering(i: i32, axis: u32) -> vec2<i32> {
  let outSize = i32(params.outShape[axis]);
  let ratio = params.ratio[axis];
  var first = select(0, clamp(i32(f32(i) / ratio), 0, outSize - 1), ratio > 0.0);
  while (first > 0 && taps(first - 1, axis).i1 >= i) { first--; }
  while (first < outSize && taps(first, axis).i1 < i) { first++; }
  var last = first - 1;
  while (last + 1 < outSize && taps(last + 1, axis).i0 <= i) { last++; }
  return vec2<i32>(first, last);
}

// One output element: the weighted sum of its (up to 2 × 2 × 2) input taps; zero-weight taps are skipped, so
// nearest reads one element and 2D bilinear four.
@compute @workgroup_size(WORKGROUP_SIZE)
fn upsample_forward(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = flat_index(gid, nwg);
  if (i >= params.n) { return; }
  let outVolume = volume3(params.outShape.xyz);
  let plane = (i / outVolume) * volume3(params.inShape.xyz);
  let o = vec3<i32>(coords3(i % outVolume, params.outShape.xyz));
  var t = array<Taps, 3>(taps(o.x, 0u), taps(o.y, 1u), taps(o.z, 2u));
  var acc = 0.0;
  for (var a = 0u; a < 8u; a++) {
    // Corner a picks i1 on axis k when bit (2 − k) of a is set.
    var w = 1.0;
    var at = 0;
    for (var k = 0u; k < 3u; k++) {
      let high = ((a >> (2u - k)) & 1u) == 1u;
      w *= select(1.0 - t[k].w1, t[k].w1, high);
      at = at * i32(params.inShape[k]) + select(t[k].i0, t[k].i1, high);
    }
    if (w != 0.0) { acc += w * x[plane + u32(at)]; }
  }
  out[i] = acc;
}

// One input element: the sum of gy · weight over the outputs whose taps include it.
@compute @workgroup_size(WORKGROUP_SIZE)
fn upsample_backward(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = flat_index(gid, nwg);
  if (i >= params.n) { return; }
  let inVolume = volume3(params.inShape.xyz);
  let plane = (i / inVolume) * volume3(params.outShape.xyz);
  let p = vec3<i32>(coords3(i % inVolume, params.inShape.xyz));
  let rd = covering(p.x, 0u);
  let rh = covering(p.y, 1u);
  let rw = covering(p.z, 2u);
  var acc = 0.0;
  for (var od = rd.x; od <= rd.y; od++) {
    let wd = weight(od, p.x, 0u);
    for (var oh = rh.x; oh <= rh.y; oh++) {
      let wdh = wd * weight(oh, p.y, 1u);
      let row = plane + u32((od * i32(params.outShape.y) + oh) * i32(params.outShape.z));
      for (var ow = rw.x; ow <= rw.y; ow++) {
        acc += wdh * weight(ow, p.z, 2u) * gy[row + u32(ow)];
      }
    }
  }
  gx[i] = acc;
}
