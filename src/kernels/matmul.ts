// Batched matrix multiplication (shaders/matmul.wgsl): a tiled, register-blocked kernel with transposes as override
// constants, so backward needs no transpose copies; batch dimensions broadcast NumPy-style.
import { record } from '../engine/autograd.ts';
import type { Tensor } from '../engine/tensor.ts';
import { stridesOf } from '../engine/tensor.ts';
import { shaderConstants } from '../shaders.gen.ts';
import { broadcastShapes, expectF32 } from './elementwise.ts';
import { sumTo } from './reduce.ts';

const { MAX_DIMS } = shaderConstants.matmul;

/**
 * Invocations along one output dimension of the workgroup, each computing `block` outputs along it: a tile of the
 * tuning's side, or half of it when the dimension is no longer than half.
 */
const workgroupSide = (extent: number, block: number, tile: number) => (extent > tile / 2 ? tile : tile / 2) / block;

export interface MatmulOptions {
  /** Use aᵀ: a is [..., K, M]. */
  transposeA?: boolean;
  /** Use bᵀ: b is [..., N, K]. */
  transposeB?: boolean;
}

const describe = (t: Tensor, transposed: boolean) => `[${t.shape.join(', ')}]${transposed ? 'ᵀ' : ''}`;

/** Element strides of `t`'s batch dimensions right-aligned to `batch`, 0 where t is broadcast (or lacks the dimension). */
function batchStrides(t: Tensor, batch: readonly number[]): number[] {
  const own = t.shape.slice(0, -2);
  const matrix = t.shape[t.rank - 2] * t.shape[t.rank - 1];
  const strides = stridesOf(own);
  return batch.map((d, k) => {
    const i = k - (batch.length - own.length);
    return i < 0 || (own[i] === 1 && d !== 1) ? 0 : strides[i] * matrix;
  });
}

function matmulKernel(a: Tensor, b: Tensor, transposeA: boolean, transposeB: boolean): Tensor {
  expectF32('matmul', 'a', a);
  expectF32('matmul', 'b', b);
  if (a.rank < 2 || b.rank < 2) {
    throw new Error(`matmul: operands must have at least 2 dimensions, got a [${a.shape.join(', ')}] and b [${b.shape.join(', ')}]`);
  }
  const [M, Ka] = transposeA ? [a.shape[a.rank - 1], a.shape[a.rank - 2]] : [a.shape[a.rank - 2], a.shape[a.rank - 1]];
  const [Kb, N] = transposeB ? [b.shape[b.rank - 1], b.shape[b.rank - 2]] : [b.shape[b.rank - 2], b.shape[b.rank - 1]];
  if (Ka !== Kb) {
    throw new Error(`matmul: inner dimensions differ: a ${describe(a, transposeA)} has K=${Ka}, b ${describe(b, transposeB)} has K=${Kb}`);
  }
  const batch = broadcastShapes('matmul (batch dimensions)', a.shape.slice(0, -2), b.shape.slice(0, -2));
  if (batch.length > MAX_DIMS) throw new Error(`matmul: at most ${MAX_DIMS} batch dimensions, got ${batch.length}`);
  const e = a.engine;
  const batchCount = batch.reduce((p, q) => p * q, 1);
  const maxGroups = e.device.limits.maxComputeWorkgroupsPerDimension;
  if (batchCount > maxGroups) throw new Error(`matmul: ${batchCount} batches exceed the ${maxGroups} the adapter dispatches at once`);
  if (Ka === 0) return e.zeros([...batch, M, N]);
  const out = e.empty([...batch, M, N]);
  const { matmulBlock: block, matmulTile: tile } = e.tuning;
  const wgX = workgroupSide(N, block, tile);
  const wgY = workgroupSide(M, block, tile);
  e.dispatch({
    shader: 'matmul', entry: 'matmul', label: 'matmul', flops: 2 * batchCount * M * N * Ka,
    constants: { TRANSPOSE_A: transposeA ? 1 : 0, TRANSPOSE_B: transposeB ? 1 : 0, WG_X: wgX, WG_Y: wgY, ROWS: block, COLS: block },
    bindings: {
      a, b, out,
      params: {
        M, N, K: Ka, batchRank: batch.length, batchShape: batch,
        aBatchStrides: batchStrides(a, batch), bBatchStrides: batchStrides(b, batch),
      },
    },
    workgroups: [Math.ceil(N / (wgX * block)), Math.ceil(M / (wgY * block)), batchCount],
  });
  return out;
}

/**
 * op(a) · op(b) with op a transpose where the options say so: a [..., M, K] (or [..., K, M]), b [..., K, N]
 * (or [..., N, K]) give [..., M, N]; batch dimensions broadcast. Gradients reuse the kernel with transposes flipped
 * and are summed over the batch dimensions an operand was broadcast along.
 */
export function matmul(a: Tensor, b: Tensor, options: MatmulOptions = {}): Tensor {
  const tA = options.transposeA ?? false;
  const tB = options.transposeB ?? false;
  const y = matmulKernel(a, b, tA, tB);
  return record('matmul', [a, b], y, (gy) => {
    // With Y = op(A)·op(B): d op(A) = gY·op(B)ᵀ and d op(B) = op(A)ᵀ·gY, each transposed back when op is.
    const ga = !a.requiresGrad ? null : tA ? matmulKernel(b, gy, tB, true) : matmulKernel(gy, b, false, !tB);
    const gb = !b.requiresGrad ? null : tB ? matmulKernel(gy, a, true, tA) : matmulKernel(a, gy, !tA, false);
    return [ga && sumTo(ga, a.shape), gb && sumTo(gb, b.shape)];
  });
}
