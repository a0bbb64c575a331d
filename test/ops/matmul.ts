// Matrix multiplication against a float64 reference: tile edges, broadcast batches, transposes, gradients.
import { matmul, type Engine } from '../../src/index.ts';
import { checkOp } from '../support/check.ts';
import { expect } from '../support/expect.ts';
import { checkList } from '../support/suite.ts';

const { checks, describe, it } = checkList();
export { checks };

interface Case {
  a: number[];
  b: number[];
  transposeA?: boolean;
  transposeB?: boolean;
}

/** Reference op(a)·op(b) with NumPy batch broadcasting, in float64. */
function matmulRef(x: Float64Array, y: Float64Array, c: Case): Float64Array {
  const [ra, rb] = [c.a.length, c.b.length];
  const [M, K] = c.transposeA ? [c.a[ra - 1], c.a[ra - 2]] : [c.a[ra - 2], c.a[ra - 1]];
  const N = c.transposeB ? c.b[rb - 2] : c.b[rb - 1];
  const aBatch = c.a.slice(0, -2);
  const bBatch = c.b.slice(0, -2);
  const rank = Math.max(aBatch.length, bBatch.length);
  const batch = [...Array(rank).keys()].map((i) => Math.max(aBatch[i - rank + aBatch.length] ?? 1, bBatch[i - rank + bBatch.length] ?? 1));
  const count = batch.reduce((p, q) => p * q, 1);
  const out = new Float64Array(count * M * N);
  // Flat index of output batch `t` in an operand's own (right-aligned, possibly broadcast) batch shape.
  const operandBatch = (t: number, own: number[]) => {
    let rest = t;
    let index = 0;
    let stride = 1;
    for (let d = rank - 1; d >= 0; d--) {
      const c = rest % batch[d];
      rest = Math.floor(rest / batch[d]);
      const i = d - (rank - own.length);
      if (i >= 0) {
        index += (own[i] === 1 ? 0 : c) * stride;
        stride *= own[i];
      }
    }
    return index;
  };
  for (let t = 0; t < count; t++) {
    const ao = operandBatch(t, aBatch) * M * K;
    const bo = operandBatch(t, bBatch) * K * N;
    for (let m = 0; m < M; m++) {
      for (let n = 0; n < N; n++) {
        let s = 0;
        for (let k = 0; k < K; k++) {
          const av = x[ao + (c.transposeA ? k * M + m : m * K + k)];
          const bv = y[bo + (c.transposeB ? n * K + k : k * N + n)];
          s += av * bv;
        }
        out[t * M * N + m * N + n] = s;
      }
    }
  }
  return out;
}

const cases: Case[] = [
  { a: [1, 1], b: [1, 1] },
  { a: [17, 9], b: [9, 33] },
  { a: [5, 1], b: [1, 7] }, // K = 1
  { a: [3, 4], b: [4, 70] }, // N spans two 64-wide tiles
  { a: [2, 6, 5], b: [5, 3] }, // batch broadcast: [B,M,K] x [K,N]
  { a: [4, 3], b: [2, 3, 3, 2] }, // [M,K] x [B1,B2,K,N]
  { a: [2, 1, 3, 4], b: [3, 4, 5] }, // both broadcast: [2,1] x [3] -> [2,3]
  { a: [9, 17], b: [9, 33], transposeA: true },
  { a: [17, 9], b: [33, 9], transposeB: true },
  { a: [2, 9, 17], b: [33, 9], transposeA: true, transposeB: true },
  { a: [3, 5, 4], b: [1, 6, 5], transposeA: true, transposeB: true },
];

const describeCase = (c: Case) =>
  `[${c.a}]${c.transposeA ? 'ᵀ' : ''} x [${c.b}]${c.transposeB ? 'ᵀ' : ''}`;

describe('matmul', () => {
  for (const c of cases) {
    it(`${describeCase(c)} forward and gradients`, async (e) => {
      await checkOp(e, {
        inputs: [{ shape: c.a }, { shape: c.b }],
        run: ([a, b]) => matmul(a, b, { transposeA: c.transposeA, transposeB: c.transposeB }),
        ref: ([a, b]) => matmulRef(a, b, c),
      });
    });
  }

  it('output shape follows the broadcast batch', async (e) => {
    e.tidy(() => {
      expect(matmul(e.zeros([2, 1, 3, 4]), e.zeros([5, 4, 6])).shape).toEqual([2, 5, 3, 6]);
      expect(matmul(e.zeros([4, 3]), e.zeros([6, 4]), { transposeA: true, transposeB: true }).shape).toEqual([3, 6]);
    });
  });

  it('hand-checked 2x2 product', async (e) => {
    const a = e.tensor([1, 2, 3, 4], [2, 2]);
    const b = e.tensor([5, 6, 7, 8], [2, 2]);
    expect(Array.from(await matmul(a, b).data())).toEqual([19, 22, 43, 50]);
    expect(Array.from(await matmul(a, b, { transposeA: true }).data())).toEqual([26, 30, 38, 44]);
    expect(Array.from(await matmul(a, b, { transposeB: true }).data())).toEqual([17, 23, 39, 53]);
  });

  for (const c of [
    { a: [130, 70], b: [70, 260] },
    { a: [70, 130], b: [260, 70], transposeA: true, transposeB: true },
    { a: [3, 65, 129], b: [129, 63] },
  ] as Case[]) {
    it(`${describeCase(c)} forward across many tiles`, async (e) => {
      await checkOp(e, {
        inputs: [{ shape: c.a, grad: false }, { shape: c.b, grad: false }],
        run: ([a, b]) => matmul(a, b, { transposeA: c.transposeA, transposeB: c.transposeB }),
        ref: ([a, b]) => matmulRef(a, b, c),
      });
    });
  }

  // Every shape a tuning may choose (src/engine/tuning.ts: 4x4 or 8x8 per invocation, 32- to 128-wide tiles), on
  // products spanning several tiles of each, edges and transposes included: forward and both gradients.
  for (const block of [4, 8] as const) {
    for (const tile of [32, 64, 128] as const) {
      const side = tile / block;
      const tooLarge = (e: Engine) => {
        const most = e.device.limits.maxComputeInvocationsPerWorkgroup;
        return side * side > most ? `${side}×${side} invocations per workgroup; the device allows ${most}` : null;
      };
      it(`tuning matmulBlock ${block}, matmulTile ${tile}: forward and gradients across tiles`, async (e) => {
        const before = e.setTuning({ matmulBlock: block, matmulTile: tile });
        // The shapes the matmul dispatches: its block and workgroup sides, recorded on the way through.
        const seen: Record<string, number>[] = [];
        const dispatch = e.dispatch;
        e.dispatch = (spec) => {
          if (spec.shader === 'matmul') seen.push(spec.constants ?? {});
          dispatch.call(e, spec);
        };
        try {
          for (const [c, grad] of [
            [{ a: [130, 70], b: [70, 260] }, false],
            [{ a: [3, 65, 129], b: [129, 63] }, false],
            [{ a: [2, 9, 37], b: [70, 9], transposeA: true, transposeB: true }, true],
            [{ a: [3, 17], b: [17, 5] }, true],
          ] as [Case, boolean][]) {
            await checkOp(e, {
              inputs: [{ shape: c.a, grad }, { shape: c.b, grad }],
              run: ([a, b]) => matmul(a, b, { transposeA: c.transposeA, transposeB: c.transposeB }),
              ref: ([a, b]) => matmulRef(a, b, c),
            });
          }
        } finally {
          e.dispatch = dispatch;
          e.setTuning(before);
        }
        expect(seen.length > 0 && seen.every((c) => c.ROWS === block && c.COLS === block)).toBe(true);
        // 130 x 260 fills whole tiles of the tuning's side; 3 x 5 takes half ones.
        expect(seen.some((c) => c.WG_X * block === tile && c.WG_Y * block === tile)).toBe(true);
        expect(seen.some((c) => c.WG_X * block === tile / 2 && c.WG_Y * block === tile / 2)).toBe(true);
      }, { skip: tooLarge });
    }
  }

  it('a tuning whose matmul workgroup exceeds the device is refused, and changes nothing', async (e) => {
    const before = e.tuning;
    expect(() => e.setTuning({ matmulBlock: 4, matmulTile: 128 })).toThrow('needs 32×32 invocations per workgroup; this device allows');
    expect(e.tuning).toEqual(before);
  }, { skip: (e) => (e.device.limits.maxComputeInvocationsPerWorkgroup >= 1024 ? 'this device allows 32×32 workgroups' : null) });

  it('K = 0 gives zeros', async (e) => {
    const y = matmul(e.zeros([3, 0]), e.zeros([0, 2]));
    expect(Array.from(await y.data())).toEqual([0, 0, 0, 0, 0, 0]);
  });

  it('errors name both shapes', async (e) => {
    const a = e.zeros([3, 4]);
    const b = e.zeros([5, 2]);
    expect(() => matmul(a, b)).toThrow('matmul: inner dimensions differ: a [3, 4] has K=4, b [5, 2] has K=5');
    expect(() => matmul(a, b, { transposeA: true })).toThrow('a [3, 4]ᵀ has K=3, b [5, 2] has K=5');
    expect(() => matmul(e.zeros([4]), b)).toThrow('matmul: operands must have at least 2 dimensions, got a [4] and b [5, 2]');
    expect(() => matmul(e.zeros([2, 3, 4]), e.zeros([3, 4, 1]))).toThrow('matmul (batch dimensions): shapes [2] and [3] do not broadcast');
  });
});
