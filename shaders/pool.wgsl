// Max and average pooling over (D, H, W) windows of x [N, C, D, H, W]; a 2D input is pooled as D = 1 with a depth
// window of 1. The window size is an override (its loops unroll); shapes, strides, dilations and pads travel in the
// uniform. A window's taps sit at start + k·dilation; ceil_mode only changes the output shape (computed on the host).
// Backward passes are gathers: one invocation per input element sums over the few outputs whose windows cover it,
// so no atomics are needed and results are deterministic.
// #include "common/index.wgsl"

override KD: u32 = 1u;
override KH: u32 = 1u;
override KW: u32 = 1u;
// avgPool: divide by the window's taps inside the padded input (padding counted) instead of those inside the image.
override COUNT_INCLUDE_PAD: bool = false;

struct PoolParams {
  // N·C·Do·Ho·Wo for forward entries, N·C·D·H·W for backward ones.
  n: u32,
  // (D, H, W, unused) of the input and of the output.
  inShape: vec4<u32>,
  outShape: vec4<u32>,
  strides: vec4<u32>,
  dilations: vec4<u32>,
  padBegin: vec4<u32>,
  padEnd: vec4<u32>,
}

@group(0) @binding(0) var<storage, read> x: array<f32>;
@group(0) @binding(1) var<storage, read_write> out: array<f32>;
// Flat (d·H + h)·W + w index of each output's maximum within its (D, H, W) volume.
@group(0) @binding(2) var<storage, read_write> argmax: array<i32>;
@group(0) @binding(3) var<storage, read> gy: array<f32>;
@group(0) @binding(4) var<storage, read> argmaxIn: array<i32>;
@group(0) @binding(5) var<storage, read_write> gx: array<f32>;
@group(0) @binding(6) var<uniform> params: PoolParams;

// First input coordinate of output o's window on each axis (negative inside the leading padding).
fn window_start(o: vec3<i32>) -> vec3<i32> {
  return o * vec3<i32>(params.strides.xyz) - vec3<i32>(params.padBegin.xyz);
}

fn kernel_size() -> vec3<i32> {
  return vec3<i32>(i32(KD), i32(KH), i32(KW));
}

// Input coordinate of tap k of the window starting at `start`.
fn tap(start: vec3<i32>, k: vec3<u32>) -> vec3<i32> {
  return start + vec3<i32>(k) * vec3<i32>(params.dilations.xyz);
}

fn inside(p: vec3<i32>, s: vec4<u32>) -> bool {
  return all(p >= vec3<i32>(0)) && all(p < vec3<i32>(s.xyz));
}

// Outputs whose windows span input coordinate i, per axis: [first, last] (empty when first > last). With dilation a
// window can span i and step over it: `on_tap` tells.
fn covering_outputs(i: vec3<i32>) -> array<vec3<i32>, 2> {
  let reach = (kernel_size() - 1) * vec3<i32>(params.dilations.xyz);
  let s = vec3<i32>(params.strides.xyz);
  // o·s − pad ≤ i ≤ o·s − pad + reach  ⇔  ⌈(i + pad − reach)/s⌉ ≤ o ≤ ⌊(i + pad)/s⌋
  let t = i + vec3<i32>(params.padBegin.xyz);
  let first = max((t - reach + s - 1) / s, vec3<i32>(0));
  let last = min(t / s, vec3<i32>(params.outShape.xyz) - 1);
  return array<vec3<i32>, 2>(first, last);
}

// Whether one of output o's taps lands on input coordinate i (o from covering_outputs(i)).
fn on_tap(i: vec3<i32>, o: vec3<i32>) -> bool {
  return all((i - window_start(o)) % vec3<i32>(params.dilations.xyz) == vec3<i32>(0));
}

// Number of elements output o's average divides by: its taps inside the image, or with COUNT_INCLUDE_PAD inside the
// padded input. A ceil_mode window can run past the end padding; those taps never count (PyTorch's divisor).
fn window_count(o: vec3<i32>) -> f32 {
  let start = window_start(o);
  let d = vec3<i32>(params.dilations.xyz);
  var lo = vec3<i32>(0);
  var hi = vec3<i32>(params.inShape.xyz);
  if (COUNT_INCLUDE_PAD) {
    lo -= vec3<i32>(params.padBegin.xyz);
    hi += vec3<i32>(params.padEnd.xyz);
  }
  // Taps k with lo ≤ start + k·d < hi: ⌈(lo − start)/d⌉ ≤ k ≤ ⌊(hi − 1 − start)/d⌋ (start < hi), within [0, K − 1].
  let first = max((lo - start + d - 1) / d, vec3<i32>(0));
  let last = min((hi - 1 - start) / d, kernel_size() - 1);
  let n = max(last - first + 1, vec3<i32>(0));
  return f32(n.x * n.y * n.z);
}

// One output element: the maximum over its window's in-image elements, and where it was (first one on ties).
@compute @workgroup_size(WORKGROUP_SIZE)
fn max_pool_forward(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = flat_index(gid, nwg);
  if (i >= params.n) { return; }
  let outVolume = volume3(params.outShape.xyz);
  let plane = (i / outVolume) * volume3(params.inShape.xyz);
  let start = window_start(vec3<i32>(coords3(i % outVolume, params.outShape.xyz)));
  var best = -3.402823e38;
  var bestAt = -1;
  for (var kd = 0u; kd < KD; kd++) {
    for (var kh = 0u; kh < KH; kh++) {
      for (var kw = 0u; kw < KW; kw++) {
        let p = tap(start, vec3<u32>(kd, kh, kw));
        if (!inside(p, params.inShape)) { continue; }
        let at = i32(index3(vec3<u32>(p), params.inShape.xyz));
        let v = x[plane + u32(at)];
        if (bestAt < 0 || v > best) {
          best = v;
          bestAt = at;
        }
      }
    }
  }
  out[i] = best;
  argmax[i] = bestAt;
}

// One input element: the sum of gy over the outputs whose window covers it and chose it as their maximum (which
// implies a tap on it, so no on_tap test is needed).
@compute @workgroup_size(WORKGROUP_SIZE)
fn max_pool_backward(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = flat_index(gid, nwg);
  if (i >= params.n) { return; }
  let inVolume = volume3(params.inShape.xyz);
  let at = i32(i % inVolume);
  let plane = (i / inVolume) * volume3(params.outShape.xyz);
  let range = covering_outputs(vec3<i32>(coords3(i % inVolume, params.inShape.xyz)));
  var acc = 0.0;
  for (var od = range[0].x; od <= range[1].x; od++) {
    for (var oh = range[0].y; oh <= range[1].y; oh++) {
      for (var ow = range[0].z; ow <= range[1].z; ow++) {
        let o = plane + index3(vec3<u32>(vec3<i32>(od, oh, ow)), params.outShape.xyz);
        if (argmaxIn[o] == at) { acc += gy[o]; }
      }
    }
  }
  gx[i] = acc;
}

// One output element: the mean over its window (see COUNT_INCLUDE_PAD for the divisor).
@compute @workgroup_size(WORKGROUP_SIZE)
fn avg_pool_forward(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = flat_index(gid, nwg);
  if (i >= params.n) { return; }
  let outVolume = volume3(params.outShape.xyz);
  let plane = (i / outVolume) * volume3(params.inShape.xyz);
  let o = vec3<i32>(coords3(i % outVolume, params.outShape.xyz));
  let start = window_start(o);
  var acc = 0.0;
  for (var kd = 0u; kd < KD; kd++) {
    for (var kh = 0u; kh < KH; kh++) {
      for (var kw = 0u; kw < KW; kw++) {
        let p = tap(start, vec3<u32>(kd, kh, kw));
        if (!inside(p, params.inShape)) { continue; }
        acc += x[plane + index3(vec3<u32>(p), params.inShape.xyz)];
      }
    }
  }
  out[i] = acc / window_count(o);
}

// One input element: the sum of gy / count over the outputs with a tap on it.
@compute @workgroup_size(WORKGROUP_SIZE)
fn avg_pool_backward(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = flat_index(gid, nwg);
  if (i >= params.n) { return; }
  let inVolume = volume3(params.inShape.xyz);
  let plane = (i / inVolume) * volume3(params.outShape.xyz);
  let p = vec3<i32>(coords3(i % inVolume, params.inShape.xyz));
  let range = covering_outputs(p);
  var acc = 0.0;
  for (var od = range[0].x; od <= range[1].x; od++) {
    for (var oh = range[0].y; oh <= range[1].y; oh++) {
      for (var ow = range[0].z; ow <= range[1].z; ow++) {
        let oc = vec3<i32>(od, oh, ow);
        if (!on_tap(p, oc)) { continue; }
        acc += gy[plane + index3(vec3<u32>(oc), params.outShape.xyz)] / window_count(oc);
      }
    }
  }
  gx[i] = acc;
}
