// Gathers by index (src/kernels/gather.ts). x is [N, C, S] (S = the spatial size, flattened), a "pixel" is one
// (n, s) pair with flat index n·S + s.
//   gather_pixels:   out [M, C], row m = the C channels of pixel index[m].
//   gather_backward: gx [N, C, S] from gy [M, C] through inverse[n·S + s] (the row that gathered the pixel, or −1):
//                    each pixel is gathered at most once, so the gradient is a gather too — no atomics.
//   select_channels: out [N, C', S], channel k = channel channels[k] of x.
// #include "common/index.wgsl"

struct GatherParams {
  // Output elements of the entry point.
  n: u32,
  // Channels of x (C) and spatial size (S).
  channels: u32,
  spatial: u32,
  // Channels of out (select_channels: C'; the gathers: C).
  outChannels: u32,
}

@group(0) @binding(0) var<uniform> params: GatherParams;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read> index: array<i32>;
@group(0) @binding(3) var<storage, read_write> out: array<f32>;

// One output element out[m, c] = x[n, c, s] for the pixel index[m] = n·S + s.
@compute @workgroup_size(WORKGROUP_SIZE)
fn gather_pixels(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = flat_index(gid, nwg);
  if (i >= params.n) { return; }
  let m = i / params.channels;
  let c = i % params.channels;
  let pixel = u32(index[m]);
  let n = pixel / params.spatial;
  let s = pixel % params.spatial;
  out[i] = x[(n * params.channels + c) * params.spatial + s];
}

// One gradient element gx[n, c, s]: gy[inverse[n·S + s], c], or 0 where no row gathered the pixel (here `x` is gy,
// [M, C], and `index` the inverse map).
@compute @workgroup_size(WORKGROUP_SIZE)
fn gather_backward(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = flat_index(gid, nwg);
  if (i >= params.n) { return; }
  let s = i % params.spatial;
  let c = (i / params.spatial) % params.channels;
  let n = i / (params.spatial * params.channels);
  let row = index[n * params.spatial + s];
  out[i] = select(0.0, x[u32(row) * params.channels + c], row >= 0);
}

// One output element out[n, k, s] = x[n, channels[k], s] (here `index` holds the channels).
@compute @workgroup_size(WORKGROUP_SIZE)
fn select_channels(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = flat_index(gid, nwg);
  if (i >= params.n) { return; }
  let s = i % params.spatial;
  let k = (i / params.spatial) % params.outChannels;
  let n = i / (params.spatial * params.outChannels);
  out[i] = x[(n * params.channels + u32(index[k])) * params.spatial + s];
}
