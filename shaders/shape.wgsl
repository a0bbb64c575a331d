// Shape ops that move data: strided copies (transpose, slice, concat, and their gradients), padding (constant and
// reflect, and the reflect gradient) and casts. The copies only move 32-bit words, so every dtype binds as u32.
// Shapes and strides hold up to MAX_DIMS (8) dimensions.
// #include "common/index.wgsl"

const CONSTANT = 0u;
const REFLECT = 1u;

const F32 = 0u;
const I32 = 1u;
const U32 = 2u;

// pad_forward: how positions outside the input are filled.
override MODE: u32 = CONSTANT;
// cast: element types of src and dst.
override FROM: u32 = F32;
override TO: u32 = F32;

// dst[dstBase + Σ c_k·dstStrides_k] = src[srcBase + Σ c_k·srcStrides_k] for every coordinate c of `shape`.
struct CopyParams {
  n: u32,
  rank: u32,
  srcBase: u32,
  dstBase: u32,
  shape: Dims,
  srcStrides: Dims,
  dstStrides: Dims,
}

// Output coordinate c maps to input coordinate c − before (per axis); `n` counts the elements the entry point writes.
struct PadParams {
  n: u32,
  rank: u32,
  // The constant's 32 bits in the tensor's dtype.
  bits: u32,
  inShape: Dims,
  outShape: Dims,
  before: Dims,
}

struct CastParams {
  n: u32,
}

@group(0) @binding(0) var<storage, read> src: array<u32>;
@group(0) @binding(1) var<storage, read_write> dst: array<u32>;
@group(0) @binding(2) var<uniform> copyParams: CopyParams;
@group(0) @binding(3) var<uniform> padParams: PadParams;
@group(0) @binding(4) var<storage, read> gy: array<f32>;
@group(0) @binding(5) var<storage, read_write> gx: array<f32>;
@group(0) @binding(6) var<uniform> castParams: CastParams;

// One element of the iteration shape: copied from its source offset to its destination offset.
@compute @workgroup_size(WORKGROUP_SIZE)
fn strided_copy(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = flat_index(gid, nwg);
  if (i >= copyParams.n) { return; }
  let offsets = strided_offsets(i, copyParams.rank, copyParams.shape, copyParams.srcStrides, copyParams.dstStrides);
  dst[copyParams.dstBase + offsets.y] = src[copyParams.srcBase + offsets.x];
}

// Batched 2D transpose through workgroup memory, for copies whose source-contiguous axis `a` is not the destination's
// last axis: reads along `a` and writes along the last axis both touch consecutive addresses. shape and strides are
// copyParams' (destination order, destination contiguous); the other axes index batches (workgroup z).
struct TileParams {
  a: u32,
  batches: u32,
}

@group(0) @binding(7) var<uniform> tileParams: TileParams;

// TILE x TILE elements, padded by one column so that reading a column of the tile hits TILE different banks; the
// workgroup is TILE x TILE_ROWS invocations.
const TILE = 32u;
const TILE_ROWS = 8u;
var<workgroup> tile: array<array<u32, TILE + 1u>, TILE>;

// One TILE x TILE tile (rows along axis a, columns along the last axis) of one batch; each invocation moves
// TILE / TILE_ROWS elements in and as many out.
@compute @workgroup_size(TILE, TILE_ROWS)
fn transpose_tiled(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
  let last = copyParams.rank - 1u;
  let a = tileParams.a;
  let rows = dim(copyParams.shape, a);
  let cols = dim(copyParams.shape, last);
  var rest = wid.z;
  var srcBase = copyParams.srcBase;
  var dstBase = copyParams.dstBase;
  for (var k = i32(last) - 1; k >= 0; k--) {
    let axis = u32(k);
    if (axis == a) { continue; }
    let extent = dim(copyParams.shape, axis);
    srcBase += (rest % extent) * dim(copyParams.srcStrides, axis);
    dstBase += (rest % extent) * dim(copyParams.dstStrides, axis);
    rest /= extent;
  }
  let row0 = wid.y * TILE;
  let col0 = wid.x * TILE;
  // In: consecutive invocations read consecutive rows (the source's unit stride).
  for (var j = lid.y; j < TILE; j += TILE_ROWS) {
    let row = row0 + lid.x;
    let col = col0 + j;
    if (row < rows && col < cols) { tile[j][lid.x] = src[srcBase + row + col * dim(copyParams.srcStrides, last)]; }
  }
  workgroupBarrier();
  // Out: consecutive invocations write consecutive columns.
  for (var j = lid.y; j < TILE; j += TILE_ROWS) {
    let row = row0 + j;
    let col = col0 + lid.x;
    if (row < rows && col < cols) { dst[dstBase + row * dim(copyParams.dstStrides, a) + col] = tile[lid.x][j]; }
  }
}

// One output element of a padded tensor: the input element it maps to (mirrored at the edges for REFLECT, without
// repeating the edge), or the constant.
@compute @workgroup_size(WORKGROUP_SIZE)
fn pad_forward(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = flat_index(gid, nwg);
  if (i >= padParams.n) { return; }
  var rest = i;
  var s = 0u;
  var stride = 1u;
  var inside = true;
  for (var k = i32(padParams.rank) - 1; k >= 0; k--) {
    let axis = u32(k);
    let extent = dim(padParams.outShape, axis);
    let size = i32(dim(padParams.inShape, axis));
    var c = i32(rest % extent) - i32(dim(padParams.before, axis));
    rest /= extent;
    if (MODE == REFLECT) {
      c = abs(c);
      c = select(c, 2 * (size - 1) - c, c >= size);
    } else {
      inside = inside && c >= 0 && c < size;
    }
    s += u32(c) * stride;
    stride *= u32(size);
  }
  if (inside) {
    dst[i] = src[s];
  } else {
    dst[i] = padParams.bits;
  }
}

// One input-gradient element of a reflect pad: the sum of gy over every output position that mirrors to it. Along each
// axis an input coordinate c is read by output c + before, by before − c (mirrored at the start, 0 < c ≤ before) and by
// 2·(size − 1) − c + before (mirrored at the end, size − 1 − after ≤ c < size − 1): up to 3 per axis, 3^rank in all.
@compute @workgroup_size(WORKGROUP_SIZE)
fn pad_reflect_backward(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = flat_index(gid, nwg);
  if (i >= padParams.n) { return; }
  let rank = padParams.rank;
  // Per axis: the output offsets (coordinate × output stride) that read this element, and how many there are.
  var offsets: array<array<u32, 3>, MAX_DIMS>;
  var counts: array<u32, MAX_DIMS>;
  var combos = 1u;
  var rest = i;
  var stride = 1u;
  for (var k = i32(rank) - 1; k >= 0; k--) {
    let axis = u32(k);
    let size = dim(padParams.inShape, axis);
    let before = dim(padParams.before, axis);
    let after = dim(padParams.outShape, axis) - size - before;
    let c = rest % size;
    rest /= size;
    var m = 0u;
    offsets[axis][m] = (c + before) * stride;
    m++;
    if (c > 0u && c <= before) {
      offsets[axis][m] = (before - c) * stride;
      m++;
    }
    if (c < size - 1u && c + after >= size - 1u) {
      offsets[axis][m] = (2u * (size - 1u) - c + before) * stride;
      m++;
    }
    counts[axis] = m;
    combos *= m;
    stride *= dim(padParams.outShape, axis);
  }
  var total = 0.0;
  for (var combo = 0u; combo < combos; combo++) {
    var digits = combo;
    var o = 0u;
    for (var axis = 0u; axis < rank; axis++) {
      o += offsets[axis][digits % counts[axis]];
      digits /= counts[axis];
    }
    total += gy[o];
  }
  gx[i] = total;
}

fn load_as_f32(bits: u32) -> f32 {
  switch FROM {
    case I32: { return f32(bitcast<i32>(bits)); }
    case U32: { return f32(bits); }
    default: { return bitcast<f32>(bits); }
  }
}

// One element converted between dtypes as WGSL converts: floats truncate toward zero and saturate at the integer
// type's range; i32 and u32 keep their bits.
@compute @workgroup_size(WORKGROUP_SIZE)
fn convert(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = flat_index(gid, nwg);
  if (i >= castParams.n) { return; }
  let bits = src[i];
  if (FROM != F32 && TO != F32) {
    dst[i] = bits;
    return;
  }
  let v = load_as_f32(bits);
  switch TO {
    case I32: { dst[i] = bitcast<u32>(i32(v)); }
    case U32: { dst[i] = u32(v); }
    default: { dst[i] = bitcast<u32>(v); }
  }
}
