// Index helpers shared by the kernels (included with `// #include "common/index.wgsl"`, see scripts/embed-shaders.ts).
//
// 1D kernels run WORKGROUP_SIZE invocations per workgroup, one element (or one small group of elements) each. Beyond
// the 65535 workgroups a dimension allows, the workgroup count folds over y (Engine.groups1D), and so does the
// workgroup index of kernels that run one workgroup per row or tile.

// Invocations per workgroup of the 1D kernels and of the workgroup reductions (common/workgroup.wgsl).
const WORKGROUP_SIZE = 256u;

// Index of this invocation in a 1D dispatch of WORKGROUP_SIZE-invocation workgroups.
fn flat_index(gid: vec3<u32>, nwg: vec3<u32>) -> u32 {
  return gid.x + gid.y * nwg.x * WORKGROUP_SIZE;
}

// Index of this workgroup in a 1D dispatch of workgroups (one per row, tile or chunk).
fn workgroup_index(wid: vec3<u32>, nwg: vec3<u32>) -> u32 {
  return wid.x + wid.y * nwg.x;
}

// Shapes and strides of up to MAX_DIMS dimensions, as uniforms carry them: in vec4s (a uniform array's elements are
// 16 bytes apart), dimension k at [k / 4][k % 4].
const MAX_DIMS = 8u;
alias Dims = array<vec4<u32>, MAX_DIMS / 4u>;

fn dim(v: Dims, k: u32) -> u32 {
  return v[k / 4u][k % 4u];
}

// Σ_k c_k · strides_k over the row-major coordinates c of element i of a `rank`-dimensional `shape`: where element i
// of an iteration shape lives in a strided (transposed, sliced, broadcast) tensor.
fn strided_offset(i: u32, rank: u32, shape: Dims, strides: Dims) -> u32 {
  var rest = i;
  var offset = 0u;
  for (var k = i32(rank) - 1; k >= 0; k--) {
    let extent = dim(shape, u32(k));
    offset += (rest % extent) * dim(strides, u32(k));
    rest /= extent;
  }
  return offset;
}

// strided_offset for two stride sets at once (source and destination, or two operands), dividing only once.
fn strided_offsets(i: u32, rank: u32, shape: Dims, a: Dims, b: Dims) -> vec2<u32> {
  var rest = i;
  var offsets = vec2<u32>(0u);
  for (var k = i32(rank) - 1; k >= 0; k--) {
    let extent = dim(shape, u32(k));
    offsets += (rest % extent) * vec2<u32>(dim(a, u32(k)), dim(b, u32(k)));
    rest /= extent;
  }
  return offsets;
}

// Volumes [D, H, W] (a 2D image has D = 1): coordinates are (z, y, x), index (z·H + y)·W + x.
fn volume3(s: vec3<u32>) -> u32 {
  return s.x * s.y * s.z;
}

// (z, y, x) of index i in a volume of shape s.
fn coords3(i: u32, s: vec3<u32>) -> vec3<u32> {
  return vec3<u32>(i / (s.y * s.z), (i / s.z) % s.y, i % s.z);
}

// Index of (z, y, x) in a volume of shape s; wrapping arithmetic, so signed coordinates converted with
// vec3<u32>(c) give the signed index's bits.
fn index3(c: vec3<u32>, s: vec3<u32>) -> u32 {
  return (c.x * s.y + c.y) * s.z + c.z;
}
