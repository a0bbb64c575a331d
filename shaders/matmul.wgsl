// Batched matrix product out[b] = op(a[b]) · op(b[b]), op = transpose where TRANSPOSE_A / TRANSPOSE_B say so:
// a is [M, K] (or [K, M]), b is [K, N] (or [N, K]), out is [M, N], per batch. Batch dimensions broadcast: each
// operand's batch offset comes from the output batch index through its own strides (0 along a broadcast dimension).
//
// Tiling: a workgroup computes a TILE_M x TILE_N block of out. It walks K in steps of TILE_K, staging an
// op(a) tile and an op(b) tile in workgroup memory (k-major, so the inner loop reads along m and n), and each
// invocation accumulates ROWS x COLS outputs in registers: ROWS + COLS tile reads per k for ROWS * COLS FMAs.
// The block (4x4 or 8x8) and the workgroup shape are the engine's tuning (src/engine/tuning.ts): on lavapipe 8x8
// per invocation beat 4x4 by 1.3-1.8x (tile reads dominate), and 128x128 tiles beat 64x64.
// Out-of-range rows, columns and k are loaded as 0 without branching, so any M, N, K works.
// #include "common/index.wgsl"

override TRANSPOSE_A: bool = false;
override TRANSPOSE_B: bool = false;

// Each invocation accumulates ROWS x COLS outputs (ROWS, COLS in {4, 8}); the workgroup is WG_X x WG_Y invocations,
// so its output tile is TILE_M = WG_Y * ROWS by TILE_N = WG_X * COLS (src/kernels/matmul.ts picks the shape).
// Registers are sized for the largest block; after override substitution the loops have constant bounds.
const MAX_BLOCK = 8u;
override ROWS: u32 = 8u;
override COLS: u32 = 8u;
const TILE_K = 16u;
override WG_X: u32 = 16u;
override WG_Y: u32 = 16u;
override TILE_M = WG_Y * ROWS;
override TILE_N = WG_X * COLS;
override THREADS = WG_X * WG_Y;

struct MatmulParams {
  M: u32,
  N: u32,
  K: u32,
  batchRank: u32,
  // Output batch shape and each operand's element stride per batch dimension (up to MAX_DIMS).
  batchShape: Dims,
  aBatchStrides: Dims,
  bBatchStrides: Dims,
}

@group(0) @binding(0) var<storage, read> a: array<f32>;
@group(0) @binding(1) var<storage, read> b: array<f32>;
@group(0) @binding(2) var<storage, read_write> out: array<f32>;
@group(0) @binding(3) var<uniform> params: MatmulParams;

// op(a) tile as [k][m], op(b) tile as [k][n].
var<workgroup> aTile: array<f32, TILE_K * TILE_M>;
var<workgroup> bTile: array<f32, TILE_K * TILE_N>;

// op(a)[m, k] of the batch at aBase, 0 outside the matrix.
fn load_a(aBase: u32, m: u32, k: u32) -> f32 {
  let inside = m < params.M && k < params.K;
  let offset = select(m * params.K + k, k * params.M + m, TRANSPOSE_A);
  return select(0.0, a[aBase + select(0u, offset, inside)], inside);
}

// op(b)[k, n] of the batch at bBase, 0 outside the matrix.
fn load_b(bBase: u32, k: u32, n: u32) -> f32 {
  let inside = k < params.K && n < params.N;
  let offset = select(k * params.N + n, n * params.K + k, TRANSPOSE_B);
  return select(0.0, b[bBase + select(0u, offset, inside)], inside);
}

// One invocation computes out rows row0 + lid.y * ROWS + i (i < ROWS) and columns col0 + lid.x + j * WG_X (j < COLS)
// of batch wid.z: columns interleave so that neighbouring invocations read neighbouring tile words.
@compute @workgroup_size(WG_X, WG_Y)
fn matmul(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>,
          @builtin(local_invocation_index) flat: u32) {
  let row0 = wid.y * TILE_M;
  let col0 = wid.x * TILE_N;
  let bases = strided_offsets(wid.z, params.batchRank, params.batchShape, params.aBatchStrides, params.bBatchStrides);
  let aBase = bases.x;
  let bBase = bases.y;

  // acc[i * COLS / 4 + c][j]: row i, column 4c + j of this invocation's block.
  var acc: array<vec4<f32>, MAX_BLOCK * MAX_BLOCK / 4u>;
  for (var k0 = 0u; k0 < params.K; k0 += TILE_K) {
    // Cooperative tile loads; the flat index runs along the operand's contiguous axis in global memory.
    for (var i = flat; i < TILE_K * TILE_M; i += THREADS) {
      let m = select(i / TILE_K, i % TILE_M, TRANSPOSE_A);
      let k = select(i % TILE_K, i / TILE_M, TRANSPOSE_A);
      aTile[k * TILE_M + m] = load_a(aBase, row0 + m, k0 + k);
    }
    for (var i = flat; i < TILE_K * TILE_N; i += THREADS) {
      let n = select(i % TILE_N, i / TILE_K, TRANSPOSE_B);
      let k = select(i / TILE_N, i % TILE_K, TRANSPOSE_B);
      bTile[k * TILE_N + n] = load_b(bBase, k0 + k, col0 + n);
    }
    workgroupBarrier();
    for (var k = 0u; k < TILE_K; k++) {
      var bv: array<vec4<f32>, MAX_BLOCK / 4u>;
      for (var c = 0u; c < COLS / 4u; c++) {
        let bk = k * TILE_N + lid.x + 4u * c * WG_X;
        bv[c] = vec4(bTile[bk], bTile[bk + WG_X], bTile[bk + 2u * WG_X], bTile[bk + 3u * WG_X]);
      }
      for (var i = 0u; i < ROWS; i++) {
        let av = aTile[k * TILE_M + lid.y * ROWS + i];
        for (var c = 0u; c < COLS / 4u; c++) { acc[i * COLS / 4u + c] += av * bv[c]; }
      }
    }
    workgroupBarrier();
  }

  let outBase = wid.z * params.M * params.N;
  for (var i = 0u; i < ROWS; i++) {
    let m = row0 + lid.y * ROWS + i;
    for (var j = 0u; j < COLS; j++) {
      let n = col0 + lid.x + j * WG_X;
      if (m < params.M && n < params.N) { out[outBase + m * params.N + n] = acc[i * COLS / 4u + j / 4u][j % 4u]; }
    }
  }
}
