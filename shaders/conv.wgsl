// The convolution family as implicit matrix products (one tiling, three index maps). Everything is 3D: a 2D
// convolution is D = 1 with kernel, stride and dilation 1 along D. Tensors are row-major N,C,D,H,W; the weight is
// [Cout, Cin/group, kd, kh, kw]. In the conv's own terms, x is its input side [N, Cin, in], y its output side
// [N, Cout, out], and y[n, co, o] = Σ_{ci, k} w[co, ci, k] · x[n, g·Cin/G + ci, o·stride − pad + k·dilation].
//
//   conv_forward      y = conv(x, w) + bias               M = Cout/G, N = batch·out pixels,  K = taps × Cin/G
//   conv_transpose    x = convᵀ(y, w) + bias (input grad)  M = Cin/G,  N = batch·in pixels,   K = taps × Cout/G
//   conv_weight_grad  w' = Σ y ⊗ im2col(x)                 M = Cout/G, N = Cin/G·taps,       K = batch·out pixels
//
// Tiling: a workgroup computes a TILE_M x TILE_N block of one group's output. It walks K in steps of TILE_K, staging a
// weight (or gradient) tile and an im2col tile gathered on the fly (0 where a tap falls into padding) in workgroup
// memory, k-major; each invocation accumulates ROWS x COLS outputs in registers. K is ordered tap-major, so a tap's
// window offset and bounds are computed once per tap, not once per element.
// Workgroups: x = column tiles (folded into y beyond the adapter's limit), y = row tiles (params.mTiles of them) times
// the fold, z = group (times stride phases or K splits).
// #include "common/index.wgsl"

// The workgroup is WG_X x WG_Y invocations; each accumulates ROWS x COLS = 8 x 8 outputs, so the output tile is
// TILE_M = 8·WG_Y rows by TILE_N = 8·WG_X columns. WG_Y shrinks the tile for convolutions with few output channels per
// group, WG_X for weight gradients with few columns (cin/group × taps), and TILE_K is 8 where a tap has at most 8
// channels to sum over (src/kernels/conv.ts picks all three): on lavapipe 8x8 per invocation beats 4x8 by 1.5x and 8x4
// by 2x, and every row or K entry past the real ones costs as much as a real one.
// On CPU adapters a workgroup runs on one thread, and each barrier switches between all its invocations: there, up to
// 48 rows per group take WG_Y = 1 with PRIVATE_A, whose K steps need no barrier (lavapipe, 2026-12-04: 8-32 channel
// convs 16-23% faster than with the shared tile, 64 channels 5-7% slower, so those keep it).
// Each invocation gathers LOAD_COLS = TILE_N / THREADS = 8 / WG_Y im2col columns at every row of the K tile.
const ROWS = 8u;
const COLS = 8u;
const MAX_LOAD_COLS = 8u;
const MAX_TILE_K = 16u;
override WG_X: u32 = 32u;
override TILE_K: u32 = 16u;
override TILE_N = WG_X * COLS;
override WG_Y: u32 = 8u;
// With WG_Y = 1 only: each invocation reads the A tile (weights or gradients) itself instead of staging it in
// workgroup memory, so a K step needs no barrier; its indices depend on the workgroup and loop counters only.
override PRIVATE_A: bool = false;
override TILE_M = WG_Y * ROWS;
override THREADS = WG_X * WG_Y;
override LOAD_COLS = TILE_N / THREADS;

struct ConvParams {
  batch: i32,
  group: i32,
  // Channels of the input side x and of the output side y.
  cin: i32,
  cout: i32,
  // (D, H, W) of x and of y.
  inSize: vec3<i32>,
  outSize: vec3<i32>,
  kernel: vec3<i32>,
  strides: vec3<i32>,
  // Padding before each axis (the padding after only shapes the output size).
  pads: vec3<i32>,
  dilations: vec3<i32>,
  // 1 when `bias` holds a bias to add (otherwise some other tensor is bound there and never read).
  hasBias: i32,
  // Row tiles per group; the column-tile index folds over workgroup_id.y / mTiles.
  mTiles: u32,
  // conv_weight_grad: K splits (z = group · splits + split) and output rows (n, od, oh) per split.
  splits: i32,
  rowsPerSplit: i32,
}

@group(0) @binding(0) var<storage, read> x: array<f32>;
@group(0) @binding(1) var<storage, read> y: array<f32>;
@group(0) @binding(2) var<storage, read> w: array<f32>;
@group(0) @binding(3) var<storage, read> bias: array<f32>;
@group(0) @binding(4) var<storage, read_write> yOut: array<f32>;
@group(0) @binding(5) var<storage, read_write> xOut: array<f32>;
@group(0) @binding(6) var<storage, read_write> wOut: array<f32>;
@group(0) @binding(7) var<uniform> params: ConvParams;

// aTile[k][m] (weights or output gradients), bTile[k][n] (the gathered columns).
var<workgroup> aTile: array<f32, TILE_K * TILE_M>;
var<workgroup> bTile: array<f32, TILE_K * TILE_N>;

// The common (unsigned) volume index helpers in conv's signed coordinates, where window corners fall into the
// padding: conversions between i32 and u32 keep the bits, and the index arithmetic wraps alike in both.
fn volume(s: vec3<i32>) -> i32 {
  return i32(volume3(vec3<u32>(s)));
}

fn unflatten(i: i32, s: vec3<i32>) -> vec3<i32> {
  return vec3<i32>(coords3(u32(i), vec3<u32>(s)));
}

fn flatten(c: vec3<i32>, s: vec3<i32>) -> i32 {
  return i32(index3(vec3<u32>(c), vec3<u32>(s)));
}

// (batch, z, y, x) of position i in a batch of grids of `s`.
fn grid_position(i: i32, s: vec3<i32>) -> vec4<i32> {
  return vec4(i / volume(s), unflatten(i % volume(s), s));
}

// The position `step` further along x, carried into y, z and batch by subtraction: divisions are scalarized on CPU
// adapters (lavapipe) and cost more than a whole output's arithmetic.
fn advance(p: vec4<i32>, step: i32, s: vec3<i32>) -> vec4<i32> {
  var q = p + vec4(0, 0, 0, step);
  while (q.w >= s.z) { q.w -= s.z; q.z++; }
  while (q.z >= s.y) { q.z -= s.y; q.y++; }
  while (q.y >= s.x) { q.y -= s.x; q.x++; }
  return q;
}

fn contains(s: vec3<i32>, c: vec3<i32>) -> bool {
  return all(c >= vec3(0)) && all(c < s);
}

// buffer[index] where ok, else 0, without reading out of range.
fn load_x(index: i32, ok: bool) -> f32 {
  return select(0.0, x[select(0, index, ok)], ok);
}

fn load_y(index: i32, ok: bool) -> f32 {
  return select(0.0, y[select(0, index, ok)], ok);
}

fn load_w(index: i32, ok: bool) -> f32 {
  return select(0.0, w[select(0, index, ok)], ok);
}

// Row tile origin, column tile origin.
fn tile_origin(wid: vec3<u32>, nwg: vec3<u32>) -> vec2<i32> {
  return vec2(i32(wid.y % params.mTiles) * i32(TILE_M), i32(wid.x + (wid.y / params.mTiles) * nwg.x) * i32(TILE_N));
}

// The gathered columns of one K tile: bTile, or with WG_Y = 1 each invocation's own registers. A workgroup that is one
// row of invocations gathers exactly the columns each invocation accumulates (column lid.x + q·WG_X), so nothing needs
// sharing: on lavapipe that skips a scatter to workgroup memory and a gather back per value, which cost more than the
// multiply-adds the value feeds when a group has only 8 output channels.
alias Gathered = array<array<f32, MAX_LOAD_COLS>, MAX_TILE_K>;

fn stage(own: ptr<function, Gathered>, k: u32, q: u32, flat: u32, value: f32) {
  if (WG_Y == 1u) {
    (*own)[k][q] = value;
  } else {
    bTile[k * TILE_N + flat + q * THREADS] = value;
  }
}

// acc[i·COLS/4 + c][j] += Σ_k aTile[k][lid.y·ROWS + i] · bTile[k][lid.x + (4c + j)·WG_X] over the staged tiles:
// row i, column 4c + j of this invocation's block.
alias PrivateA = array<f32, MAX_TILE_K * ROWS>;

fn multiply_tiles(acc: ptr<function, array<vec4<f32>, 16>>, own: ptr<function, Gathered>, lid: vec3<u32>, ownA: ptr<function, PrivateA>) {
  for (var k = 0u; k < TILE_K; k++) {
    var bv: array<vec4<f32>, COLS / 4u>;
    for (var c = 0u; c < COLS / 4u; c++) {
      if (WG_Y == 1u) {
        bv[c] = vec4((*own)[k][4u * c], (*own)[k][4u * c + 1u], (*own)[k][4u * c + 2u], (*own)[k][4u * c + 3u]);
      } else {
        let bk = k * TILE_N + lid.x + 4u * c * WG_X;
        bv[c] = vec4(bTile[bk], bTile[bk + WG_X], bTile[bk + 2u * WG_X], bTile[bk + 3u * WG_X]);
      }
    }
    for (var i = 0u; i < ROWS; i++) {
      var av: f32;
      if (PRIVATE_A) { av = (*ownA)[k * ROWS + i]; } else { av = aTile[k * TILE_M + lid.y * ROWS + i]; }
      for (var c = 0u; c < COLS / 4u; c++) { (*acc)[i * COLS / 4u + c] += av * bv[c]; }
    }
  }
}

// The weight tile of one tap, K entries k0 + k by rows row0 + r: w[g·Cout/G + co, ci, tap], the rows being output
// channels co (conv_forward) or, with rowsAreInputs, input channels ci (conv_transpose). With PRIVATE_A every
// invocation reads the whole tile into ownA[k·ROWS + r] (the indices depend on the workgroup and loop counters only,
// so all read the same); otherwise the workgroup shares it out into aTile[k·TILE_M + row].
fn stage_weights(ownA: ptr<function, PrivateA>, flat: u32, g: i32, cog: i32, cig: i32, taps: i32, tapIndex: i32, row0: i32, k0: i32, rowsAreInputs: bool) {
  if (PRIVATE_A) {
    for (var k = 0u; k < TILE_K; k++) {
      for (var r = 0u; r < ROWS; r++) { (*ownA)[k * ROWS + r] = tap_weight(g, cog, cig, taps, tapIndex, row0 + i32(r), k0 + i32(k), rowsAreInputs); }
    }
  } else {
    for (var i = flat; i < TILE_K * TILE_M; i += THREADS) {
      aTile[i] = tap_weight(g, cog, cig, taps, tapIndex, row0 + i32(i % TILE_M), k0 + i32(i / TILE_M), rowsAreInputs);
    }
  }
}

// w[g·Cout/G + co, ci, tap] (0 past the channels) for a tile's row and K entry (see stage_weights).
fn tap_weight(g: i32, cog: i32, cig: i32, taps: i32, tapIndex: i32, row: i32, k: i32, rowsAreInputs: bool) -> f32 {
  let co = select(row, k, rowsAreInputs);
  let ci = select(k, row, rowsAreInputs);
  return load_w(((g * cog + co) * cig + ci) * taps + tapIndex, co < cog && ci < cig);
}

fn bias_of(channel: i32) -> f32 {
  return select(0.0, bias[select(0, channel, params.hasBias != 0)], params.hasBias != 0);
}

// One invocation computes ROWS output channels x COLS output pixels of group wid.z:
// yOut[n, g·Cout/G + co, o] for co = row0 + lid.y·ROWS + i and pixels col0 + lid.x + j·WG_X (n and o from the pixel).
@compute @workgroup_size(WG_X, WG_Y)
fn conv_forward(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                @builtin(local_invocation_id) lid: vec3<u32>, @builtin(local_invocation_index) flat: u32) {
  let g = i32(wid.z);
  let cig = params.cin / params.group;
  let cog = params.cout / params.group;
  let taps = volume(params.kernel);
  let origin = tile_origin(wid, nwg);
  let inVol = volume(params.inSize);
  let outVol = volume(params.outSize);
  let cols = params.batch * outVol;

  // The im2col columns this invocation gathers (flat + q·THREADS): each output pixel's window corner in the input,
  // and the offset of the pixel's batch item at the group's first input channel (-1 past the last column).
  var corner: array<vec3<i32>, MAX_LOAD_COLS>;
  var base: array<i32, MAX_LOAD_COLS>;
  for (var q = 0u; q < LOAD_COLS; q++) {
    let column = origin.y + i32(flat + q * THREADS);
    corner[q] = unflatten(column % outVol, params.outSize) * params.strides - params.pads;
    base[q] = select(-1, (column / outVol * params.cin + g * cig) * inVol, column < cols);
  }

  var acc: array<vec4<f32>, 16>;
  var own: Gathered;
  var ownA: PrivateA;
  for (var kz = 0; kz < params.kernel.x; kz++) {
    for (var ky = 0; ky < params.kernel.y; ky++) {
      for (var kx = 0; kx < params.kernel.z; kx++) {
        let tap = vec3(kz, ky, kx);
        let tapIndex = flatten(tap, params.kernel);
        // Input offset of channel 0 under this tap per gathered column; -1 in the padding.
        var offset: array<i32, MAX_LOAD_COLS>;
        for (var q = 0u; q < LOAD_COLS; q++) {
          let at = corner[q] + tap * params.dilations;
          offset[q] = select(-1, base[q] + flatten(at, params.inSize), base[q] >= 0 && contains(params.inSize, at));
        }
        for (var c0 = 0; c0 < cig; c0 += i32(TILE_K)) {
          stage_weights(&ownA, flat, g, cog, cig, taps, tapIndex, origin.x, c0, false);
          for (var q = 0u; q < LOAD_COLS; q++) {
            let o = offset[q];
            for (var k = 0u; k < TILE_K; k++) {
              let ci = c0 + i32(k);
              stage(&own, k, q, flat, load_x(o + ci * inVol, o >= 0 && ci < cig));
            }
          }
          if (!PRIVATE_A) { workgroupBarrier(); }
          multiply_tiles(&acc, &own, lid, &ownA);
          if (!PRIVATE_A) { workgroupBarrier(); }
        }
      }
    }
  }

  var at = grid_position(origin.y + i32(lid.x), params.outSize);
  for (var j = 0u; j < COLS; j++) {
    if (j > 0u) { at = advance(at, i32(WG_X), params.outSize); }
    let pixel = (at.x * params.cout + g * cog) * outVol + flatten(at.yzw, params.outSize);
    for (var i = 0u; i < ROWS; i++) {
      let co = origin.x + i32(lid.y * ROWS + i);
      if (co < cog && at.x < params.batch) {
        yOut[pixel + co * outVol] = acc[i * COLS / 4u + j / 4u][j % 4u] + bias_of(g * cog + co);
      }
    }
  }
}

// The taps of one axis that reach input positions i ≡ residue (mod stride) in a transposed convolution.
// Tap k reaches i = o·stride − pad + k·dilation, so it needs k·dilation ≡ residue + pad (mod stride); the solutions
// repeat every `period` taps starting at `first`, and then o = j + shift − t·delta for i = residue + j·stride and the
// t-th solution.
struct AxisTaps {
  first: i32,
  count: i32,
  period: i32,
  shift: i32,
  delta: i32,
}

fn axis_taps(residue: i32, stride: i32, dilation: i32, pad: i32, size: i32) -> AxisTaps {
  var period = stride;
  for (var s = 1; s < stride; s++) {
    if ((s * dilation) % stride == 0) { period = s; break; }
  }
  let wanted = (residue + pad) % stride;
  for (var k = 0; k < period; k++) {
    if ((k * dilation) % stride == wanted) {
      return AxisTaps(k, max(0, (size - k + period - 1) / period), period, (residue + pad - k * dilation) / stride, period * dilation / stride);
    }
  }
  return AxisTaps(0, 0, period, 0, 0);
}

// One invocation computes ROWS input channels x COLS input pixels of group g and stride phase `phase`
// (wid.z = g · phases + phase): xOut[n, g·Cin/G + ci, residue + j·stride]. Splitting the input pixels by their residue
// modulo the stride leaves only the taps that reach them, so no work is spent on the zeros a strided scatter skips.
@compute @workgroup_size(WG_X, WG_Y)
fn conv_transpose(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                  @builtin(local_invocation_id) lid: vec3<u32>, @builtin(local_invocation_index) flat: u32) {
  let phases = volume(params.strides);
  let g = i32(wid.z) / phases;
  let residue = unflatten(i32(wid.z) % phases, params.strides);
  let cig = params.cin / params.group;
  let cog = params.cout / params.group;
  let taps = volume(params.kernel);
  let origin = tile_origin(wid, nwg);
  let inVol = volume(params.inSize);
  let outVol = volume(params.outSize);
  // Input positions of this phase form a grid of `extent` (its last row along an axis may fall outside the input).
  let extent = (params.inSize + params.strides - 1) / params.strides;
  let cols = params.batch * volume(extent);

  let tz = axis_taps(residue.x, params.strides.x, params.dilations.x, params.pads.x, params.kernel.x);
  let ty = axis_taps(residue.y, params.strides.y, params.dilations.y, params.pads.y, params.kernel.y);
  let tx = axis_taps(residue.z, params.strides.z, params.dilations.z, params.pads.z, params.kernel.z);
  let first = vec3(tz.first, ty.first, tx.first);
  let count = vec3(tz.count, ty.count, tx.count);
  let period = vec3(tz.period, ty.period, tx.period);
  let delta = vec3(tz.delta, ty.delta, tx.delta);

  // The columns this invocation gathers: each one's output position for the phase's first tap, and the offset of
  // its batch item at the group's first output channel (-1 past the last column or outside the input).
  var corner: array<vec3<i32>, MAX_LOAD_COLS>;
  var base: array<i32, MAX_LOAD_COLS>;
  for (var q = 0u; q < LOAD_COLS; q++) {
    let column = origin.y + i32(flat + q * THREADS);
    let j = unflatten(column % volume(extent), extent);
    corner[q] = j + vec3(tz.shift, ty.shift, tx.shift);
    let inside = column < cols && all(residue + j * params.strides < params.inSize);
    base[q] = select(-1, (column / volume(extent) * params.cout + g * cog) * outVol, inside);
  }

  var acc: array<vec4<f32>, 16>;
  var own: Gathered;
  var ownA: PrivateA;
  for (var a = 0; a < count.x; a++) {
    for (var b = 0; b < count.y; b++) {
      for (var c = 0; c < count.z; c++) {
        let t = vec3(a, b, c);
        let tapIndex = flatten(first + t * period, params.kernel);
        var offset: array<i32, MAX_LOAD_COLS>;
        for (var q = 0u; q < LOAD_COLS; q++) {
          let o = corner[q] - t * delta;
          offset[q] = select(-1, base[q] + flatten(o, params.outSize), base[q] >= 0 && contains(params.outSize, o));
        }
        for (var c0 = 0; c0 < cog; c0 += i32(TILE_K)) {
          stage_weights(&ownA, flat, g, cog, cig, taps, tapIndex, origin.x, c0, true);
          for (var q = 0u; q < LOAD_COLS; q++) {
            let o = offset[q];
            for (var k = 0u; k < TILE_K; k++) {
              let co = c0 + i32(k);
              stage(&own, k, q, flat, load_y(o + co * outVol, o >= 0 && co < cog));
            }
          }
          if (!PRIVATE_A) { workgroupBarrier(); }
          multiply_tiles(&acc, &own, lid, &ownA);
          if (!PRIVATE_A) { workgroupBarrier(); }
        }
      }
    }
  }

  var grid = grid_position(origin.y + i32(lid.x), extent);
  for (var jj = 0u; jj < COLS; jj++) {
    if (jj > 0u) { grid = advance(grid, i32(WG_X), extent); }
    let at = residue + grid.yzw * params.strides;
    let pixel = (grid.x * params.cin + g * cig) * inVol + flatten(at, params.inSize);
    for (var i = 0u; i < ROWS; i++) {
      let ci = origin.x + i32(lid.y * ROWS + i);
      if (ci < cig && grid.x < params.batch && all(at < params.inSize)) {
        xOut[pixel + ci * inVol] = acc[i * COLS / 4u + jj / 4u][jj % 4u] + bias_of(g * cig + ci);
      }
    }
  }
}

// One invocation computes ROWS output channels x COLS weight columns (input channel, tap) of group g's weight
// gradient, summed over split `split`'s share of the output rows (n, od, oh) (wid.z = g · splits + split):
// wOut[split, g·Cout/G + co, ci, tap]. K runs over output rows, and along each row over its pixels in TILE_K steps.
@compute @workgroup_size(WG_X, WG_Y)
fn conv_weight_grad(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                    @builtin(local_invocation_id) lid: vec3<u32>, @builtin(local_invocation_index) flat: u32) {
  let g = i32(wid.z) / params.splits;
  let split = i32(wid.z) % params.splits;
  let cig = params.cin / params.group;
  let cog = params.cout / params.group;
  let origin = tile_origin(wid, nwg);
  let inVol = volume(params.inSize);
  let outVol = volume(params.outSize);
  let taps = volume(params.kernel);
  let cols = cig * taps;
  let outW = params.outSize.z;

  // The weight columns this invocation gathers for: where each one's tap sits relative to an output pixel's
  // position scaled by the stride, and the offset of its input channel (-1 past the last column).
  var shift: array<vec3<i32>, MAX_LOAD_COLS>;
  var base: array<i32, MAX_LOAD_COLS>;
  for (var q = 0u; q < LOAD_COLS; q++) {
    let column = origin.y + i32(flat + q * THREADS);
    shift[q] = unflatten(column % taps, params.kernel) * params.dilations - params.pads;
    base[q] = select(-1, (g * cig + column / taps) * inVol, column < cols);
  }

  let rows = params.batch * params.outSize.x * params.outSize.y;
  let rowStart = split * params.rowsPerSplit;
  let rowEnd = min(rowStart + params.rowsPerSplit, rows);
  var n = rowStart / (params.outSize.x * params.outSize.y);
  var od = rowStart / params.outSize.y % params.outSize.x;
  var oh = rowStart % params.outSize.y;
  var acc: array<vec4<f32>, 16>;
  var own: Gathered;
  var ownA: PrivateA;
  for (var row = rowStart; row < rowEnd; row++) {
    // Offset of the input row (n, channel, id, ih) each column reads; -1 where that row is padding.
    var offset: array<i32, MAX_LOAD_COLS>;
    for (var q = 0u; q < LOAD_COLS; q++) {
      let at = vec2(od, oh) * params.strides.xy + shift[q].xy;
      let inside = base[q] >= 0 && all(at >= vec2(0)) && all(at < params.inSize.xy);
      offset[q] = select(-1, base[q] + n * params.cin * inVol + (at.x * params.inSize.y + at.y) * params.inSize.z, inside);
    }
    let yRow = ((n * params.cout + g * cog) * params.outSize.x + od) * params.outSize.y + oh;
    for (var ow0 = 0; ow0 < outW; ow0 += i32(TILE_K)) {
      if (PRIVATE_A) {
        for (var k = 0u; k < TILE_K; k++) {
          for (var r = 0u; r < ROWS; r++) {
            let co = origin.x + i32(r);
            let ow = ow0 + i32(k);
            ownA[k * ROWS + r] = load_y((yRow + co * params.outSize.x * params.outSize.y) * outW + ow, co < cog && ow < outW);
          }
        }
      } else {
        for (var i = flat; i < TILE_K * TILE_M; i += THREADS) {
          let co = origin.x + i32(i % TILE_M);
          let ow = ow0 + i32(i / TILE_M);
          aTile[i] = load_y((yRow + co * params.outSize.x * params.outSize.y) * outW + ow, co < cog && ow < outW);
        }
      }
      for (var q = 0u; q < LOAD_COLS; q++) {
        let o = offset[q];
        for (var k = 0u; k < TILE_K; k++) {
          let ow = ow0 + i32(k);
          let iw = ow * params.strides.z + shift[q].z;
          stage(&own, k, q, flat, load_x(o + iw, o >= 0 && ow < outW && iw >= 0 && iw < params.inSize.z));
        }
      }
      if (!PRIVATE_A) { workgroupBarrier(); }
      multiply_tiles(&acc, &own, lid, &ownA);
      if (!PRIVATE_A) { workgroupBarrier(); }
    }
    oh++;
    if (oh == params.outSize.y) {
      oh = 0;
      od++;
      if (od == params.outSize.x) { od = 0; n++; }
    }
  }

  for (var i = 0u; i < ROWS; i++) {
    let co = origin.x + i32(lid.y * ROWS + i);
    for (var j = 0u; j < COLS; j++) {
      let c = origin.y + i32(lid.x + j * WG_X);
      if (co < cog && c < cols) { wOut[((split * params.cout) + g * cog + co) * cols + c] = acc[i * COLS / 4u + j / 4u][j % 4u]; }
    }
  }
}
