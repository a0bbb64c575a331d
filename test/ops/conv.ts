// conv and convTranspose (2D and 3D) against float64 references, with finite-difference gradients for input, weight
// and bias. The references are the textbook loops: conv gathers, convTranspose scatters, so neither borrows the
// other's index algebra (or the shader's).
import { conv, convTranspose, type ConvTransposeOptions, type Engine } from '../../src/index.ts';
import { checkOp, rng, uniform } from '../support/check.ts';
import { expect } from '../support/expect.ts';
import { checkList } from '../support/suite.ts';

const { checks, describe, it } = checkList();
export { checks };

type Opts = ConvTransposeOptions;

const prod = (v: number[]) => v.reduce((a, b) => a * b, 1);
/** Spatial attributes lifted to 3D (D first), so one reference serves 2D and 3D. */
const lift = (v: number[]) => (v.length === 2 ? [1, ...v] : v);

function resolved(spatial: number, o: Opts) {
  const pads = o.pads ?? new Array(2 * spatial).fill(0);
  const lifted = (v: number[] | undefined, fill: number, liftFill: number) => {
    const full = v ?? new Array(spatial).fill(fill);
    return full.length === 2 ? [liftFill, ...full] : full;
  };
  return {
    s: lifted(o.strides as number[] | undefined, 1, 1),
    pb: lifted(pads.slice(0, spatial), 0, 0),
    pe: lifted(pads.slice(spatial), 0, 0),
    d: lifted(o.dilations as number[] | undefined, 1, 1),
    op: lifted(o.outputPadding as number[] | undefined, 0, 0),
    g: o.group ?? 1,
  };
}

export function convOutSize(inSize: number[], kernel: number[], o: Opts): number[] {
  const a = resolved(inSize.length, o);
  const off = 3 - inSize.length;
  return inSize.map((n, i) => Math.floor((n + a.pb[i + off] + a.pe[i + off] - (kernel[i] - 1) * a.d[i + off] - 1) / a.s[i + off]) + 1);
}

export function convTransposeOutSize(inSize: number[], kernel: number[], o: Opts): number[] {
  const a = resolved(inSize.length, o);
  const off = 3 - inSize.length;
  return inSize.map((n, i) => a.s[i + off] * (n - 1) + a.op[i + off] + (kernel[i] - 1) * a.d[i + off] + 1 - a.pb[i + off] - a.pe[i + off]);
}

/** y[n, co, o] = b[co] + Σ w[co, ci, k] · x[n, g·Cin/G + ci, o·s − p + k·d]. */
function convRef(x: Float64Array, xShape: number[], w: Float64Array, wShape: number[], b: Float64Array | null, o: Opts): Float64Array {
  const a = resolved(xShape.length - 2, o);
  const [N, C] = xShape;
  const [Co, Cg] = wShape;
  const I = lift(xShape.slice(2));
  const K = lift(wShape.slice(2));
  const O = lift(convOutSize(xShape.slice(2), wShape.slice(2), o));
  const cog = Co / a.g;
  const out = new Float64Array(N * Co * prod(O));
  let at = 0;
  for (let n = 0; n < N; n++) for (let co = 0; co < Co; co++) {
    const g = Math.floor(co / cog);
    for (let oz = 0; oz < O[0]; oz++) for (let oy = 0; oy < O[1]; oy++) for (let ox = 0; ox < O[2]; ox++) {
      let acc = b ? b[co] : 0;
      for (let ci = 0; ci < Cg; ci++) for (let kz = 0; kz < K[0]; kz++) for (let ky = 0; ky < K[1]; ky++) for (let kx = 0; kx < K[2]; kx++) {
        const iz = oz * a.s[0] - a.pb[0] + kz * a.d[0];
        const iy = oy * a.s[1] - a.pb[1] + ky * a.d[1];
        const ix = ox * a.s[2] - a.pb[2] + kx * a.d[2];
        if (iz < 0 || iy < 0 || ix < 0 || iz >= I[0] || iy >= I[1] || ix >= I[2]) continue;
        acc += w[(((co * Cg + ci) * K[0] + kz) * K[1] + ky) * K[2] + kx] * x[(((n * C + g * Cg + ci) * I[0] + iz) * I[1] + iy) * I[2] + ix];
      }
      out[at++] = acc;
    }
  }
  return out;
}

/** Scatter: every x[n, ci, i] adds x · w[ci, co, k] to y[n, g·Cout/G + co, i·s − p + k·d]. */
function convTransposeRef(x: Float64Array, xShape: number[], w: Float64Array, wShape: number[], b: Float64Array | null, o: Opts): Float64Array {
  const a = resolved(xShape.length - 2, o);
  const [N, C] = xShape;
  const [, Cg] = wShape;
  const Co = Cg * a.g;
  const I = lift(xShape.slice(2));
  const K = lift(wShape.slice(2));
  const O = lift(convTransposeOutSize(xShape.slice(2), wShape.slice(2), o));
  const cig = C / a.g;
  const out = new Float64Array(N * Co * prod(O));
  for (let n = 0; n < N; n++) for (let co = 0; co < Co; co++) if (b) out.fill(b[co], (n * Co + co) * prod(O), (n * Co + co + 1) * prod(O));
  for (let n = 0; n < N; n++) for (let ci = 0; ci < C; ci++) {
    const g = Math.floor(ci / cig);
    for (let iz = 0; iz < I[0]; iz++) for (let iy = 0; iy < I[1]; iy++) for (let ix = 0; ix < I[2]; ix++) {
      const v = x[(((n * C + ci) * I[0] + iz) * I[1] + iy) * I[2] + ix];
      for (let co = 0; co < Cg; co++) for (let kz = 0; kz < K[0]; kz++) for (let ky = 0; ky < K[1]; ky++) for (let kx = 0; kx < K[2]; kx++) {
        const oz = iz * a.s[0] - a.pb[0] + kz * a.d[0];
        const oy = iy * a.s[1] - a.pb[1] + ky * a.d[1];
        const ox = ix * a.s[2] - a.pb[2] + kx * a.d[2];
        if (oz < 0 || oy < 0 || ox < 0 || oz >= O[0] || oy >= O[1] || ox >= O[2]) continue;
        out[(((n * Co + g * Cg + co) * O[0] + oz) * O[1] + oy) * O[2] + ox] += v * w[(((ci * Cg + co) * K[0] + kz) * K[1] + ky) * K[2] + kx];
      }
    }
  }
  return out;
}

interface Case {
  x: number[];
  w: number[];
  o?: Opts;
  bias?: boolean;
  /** Check gradients of x, w, b (default all). */
  grads?: [boolean, boolean, boolean];
}

const describeCase = (c: Case) =>
  `x [${c.x}] w [${c.w}]${Object.entries(c.o ?? {}).map(([k, v]) => ` ${k}=${Array.isArray(v) ? `[${v}]` : v}`).join('')}${c.bias === false ? ' no bias' : ''}`;

async function checkConv(e: Engine, c: Case, transposed: boolean): Promise<void> {
  const bias = c.bias ?? true;
  const o = c.o ?? {};
  const cout = transposed ? c.w[1] * (o.group ?? 1) : c.w[0];
  const [gx, gw, gb] = c.grads ?? [true, true, true];
  const inputs = [{ shape: c.x, grad: gx }, { shape: c.w, grad: gw }, ...(bias ? [{ shape: [cout], grad: gb }] : [])];
  const op = transposed ? convTranspose : conv;
  const ref = transposed ? convTransposeRef : convRef;
  await checkOp(e, {
    inputs,
    run: ([x, w, b]) => {
      const y = op(x, w, b ?? null, o);
      const size = (transposed ? convTransposeOutSize : convOutSize)(c.x.slice(2), c.w.slice(2), o);
      expect(y.shape).toEqual([c.x[0], cout, ...size]);
      return y;
    },
    ref: ([x, w, b]) => ref(x, c.x, w, c.w, b ?? null, o),
  });
}

const conv2d: Case[] = [
  { x: [2, 3, 6, 7], w: [4, 3, 3, 3], o: { pads: [1, 1, 1, 1] } },
  { x: [2, 4, 7, 8], w: [6, 4, 3, 3], o: { strides: [2, 2], pads: [1, 0, 2, 1] } },
  { x: [1, 4, 9, 8], w: [5, 4, 3, 3], o: { dilations: [2, 2], pads: [2, 2, 2, 2] }, bias: false },
  { x: [2, 3, 11, 9], w: [4, 3, 3, 2], o: { strides: [2, 3], dilations: [3, 2], pads: [3, 1, 0, 2] } },
  { x: [2, 4, 6, 6], w: [6, 2, 3, 3], o: { pads: [1, 1, 1, 1], group: 2 } },
  { x: [1, 4, 7, 7], w: [8, 1, 3, 3], o: { strides: [2, 2], pads: [1, 1, 1, 1], group: 4 } },
  { x: [2, 16, 5, 5], w: [16, 2, 3, 3], o: { dilations: [2, 1], pads: [2, 1, 2, 1], group: 8 } },
  { x: [2, 5, 4, 6], w: [7, 5, 1, 1] },
  { x: [2, 3, 1, 1], w: [4, 3, 1, 1] },
  { x: [3, 2, 1, 1], w: [3, 2, 3, 3], o: { pads: [1, 1, 1, 1] } },
  { x: [1, 3, 5, 6], w: [2, 3, 1, 3], o: { pads: [0, 4, 0, 4], dilations: [1, 4] } },
  // More channels than one K tile (16) and output channels than one row tile (8).
  { x: [1, 18, 3, 4], w: [10, 18, 3, 3], o: { pads: [1, 1, 1, 1] } },
  // Row tiles of 64 (two of them) and of 32 output channels.
  { x: [1, 2, 3, 3], w: [70, 2, 3, 3], o: { pads: [1, 1, 1, 1] } },
  { x: [2, 3, 4, 5], w: [24, 3, 3, 3], o: { strides: [2, 1] } },
  // More output pixels than one column tile (256).
  { x: [2, 2, 18, 17], w: [3, 2, 3, 3], o: { pads: [1, 1, 1, 1] } },
  // RDCNet small's sSDC (8 channels per group: K steps of 8, a 128-column weight-gradient tile) and grouped 1x1
  // reduce (a 64-column weight-gradient tile over 16 of them; 16 channels per group: K steps of 16).
  { x: [1, 16, 3, 4], w: [16, 8, 3, 3], o: { dilations: [2, 2], pads: [2, 2, 2, 2], group: 2 } },
  { x: [2, 32, 2, 3], w: [8, 16, 1, 1], o: { group: 2 } },
  // The weight gradient's K split in two, the second split starting inside batch item 1.
  { x: [3, 1, 40, 40], w: [2, 1, 3, 3], o: { pads: [1, 1, 1, 1] }, grads: [false, true, true] },
];

const conv3d: Case[] = [
  { x: [1, 2, 4, 5, 6], w: [3, 2, 2, 3, 3], o: { strides: [1, 2, 2], pads: [0, 1, 1, 1, 0, 1] } },
  { x: [2, 4, 3, 6, 6], w: [4, 2, 1, 3, 3], o: { dilations: [1, 2, 2], pads: [0, 2, 2, 0, 2, 2], group: 2 } },
  { x: [1, 3, 6, 5, 6], w: [2, 3, 2, 2, 3], o: { strides: [2, 1, 2], dilations: [2, 1, 1], pads: [1, 0, 1, 0, 1, 1] } },
  { x: [1, 2, 2, 5, 5], w: [2, 2, 1, 3, 3], o: { dilations: [1, 8, 8], pads: [0, 8, 8, 0, 8, 8] }, bias: false },
  { x: [2, 3, 1, 1, 1], w: [2, 3, 1, 1, 1] },
];

const transposed2d: Case[] = [
  { x: [2, 4, 3, 4], w: [4, 3, 3, 3], o: { strides: [2, 2], pads: [1, 1, 1, 1], outputPadding: [1, 1] } },
  { x: [1, 3, 4, 4], w: [3, 2, 2, 2], o: { strides: [2, 2] } },
  { x: [1, 4, 3, 3], w: [4, 3, 4, 4], o: { strides: [2, 2], pads: [1, 1, 1, 1] }, bias: false },
  { x: [2, 4, 3, 3], w: [4, 3, 3, 3], o: { strides: [3, 2], dilations: [2, 1], pads: [1, 0, 2, 1], outputPadding: [2, 1], group: 2 } },
  { x: [1, 2, 3, 4], w: [2, 2, 3, 3], o: { dilations: [2, 2], outputPadding: [1, 0] } },
  { x: [1, 2, 3, 3], w: [2, 3, 3, 3], o: { strides: [2, 4], dilations: [2, 2], pads: [2, 1, 0, 3] } },
  { x: [2, 3, 1, 1], w: [3, 2, 1, 1] },
  { x: [1, 18, 2, 3], w: [18, 10, 3, 3], o: { strides: [2, 2], pads: [1, 1, 1, 1] } },
  { x: [1, 40, 2, 2], w: [40, 34, 1, 1], o: { strides: [2, 2] } },
];

const transposed3d: Case[] = [
  { x: [1, 3, 2, 3, 3], w: [3, 2, 1, 4, 4], o: { strides: [1, 2, 2], pads: [0, 1, 1, 0, 1, 1] } },
  { x: [1, 2, 3, 3, 3], w: [2, 3, 2, 2, 2], o: { strides: [2, 3, 1], dilations: [2, 1, 3], pads: [0, 1, 0, 1, 0, 2] } },
  { x: [2, 4, 2, 2, 3], w: [4, 1, 2, 3, 2], o: { strides: [2, 2, 2], outputPadding: [1, 0, 1], group: 4 } },
];

describe('conv 2D', () => {
  for (const c of conv2d) it(describeCase(c), (e) => checkConv(e, c, false));

  // The weight gradient's K split as the engine's tuning sets it: none, and 5 splits of 39 of the 192 output rows (the
  // last one short); the dispatch's z counts the splits.
  for (const n of [1, 5]) {
    it(`weight gradient with tuning convWeightGradWorkgroups ${n}`, async (e) => {
      const before = e.setTuning({ convWeightGradWorkgroups: n });
      const splits: number[] = [];
      const dispatch = e.dispatch;
      e.dispatch = (spec) => {
        if (spec.entry === 'conv_weight_grad') splits.push(spec.workgroups[2] ?? 1);
        dispatch.call(e, spec);
      };
      try {
        await checkConv(e, { x: [2, 1, 96, 96], w: [2, 1, 3, 3], o: { pads: [1, 1, 1, 1] }, grads: [false, true, true] }, false);
      } finally {
        e.dispatch = dispatch;
        e.setTuning(before);
      }
      expect(splits).toEqual([n]);
    });
  }
});

describe('conv 3D', () => {
  for (const c of conv3d) it(describeCase(c), (e) => checkConv(e, c, false));
});

describe('convTranspose 2D', () => {
  for (const c of transposed2d) it(describeCase(c), (e) => checkConv(e, c, true));
});

describe('convTranspose 3D', () => {
  for (const c of transposed3d) it(describeCase(c), (e) => checkConv(e, c, true));
});

describe('hand-checkable convolutions', () => {
  it('an identity kernel returns the input', async (e) => {
    const C = 5;
    const data = uniform(2 * C * 6 * 7, rng(9));
    const weight = new Float32Array(C * C * 9);
    for (let c = 0; c < C; c++) weight[(c * C + c) * 9 + 4] = 1;
    const y = e.tidy(() => conv(e.tensor(Float32Array.from(data), [2, C, 6, 7]), e.tensor(weight, [C, C, 3, 3]), null, { pads: [1, 1, 1, 1] }));
    expect(Array.from(await y.data())).toEqual(Array.from(data));
    y.dispose();
  });

  it('a delta image through a dilated 3x3 kernel lands at the expected offsets', async (e) => {
    const image = new Float32Array(11 * 12);
    image[5 * 12 + 6] = 1;
    const taps = Float32Array.from({ length: 9 }, (_, i) => i + 1);
    const y = e.tidy(() => conv(e.tensor(image, [1, 1, 11, 12]), e.tensor(taps, [1, 1, 3, 3]), null, { dilations: [3, 3], pads: [3, 3, 3, 3] }));
    const out = await y.data();
    // Tap (ky, kx) reads the input at o − 3 + 3k, so it sees the delta from output (5 + 3 − 3ky, 6 + 3 − 3kx).
    const expected = new Float32Array(11 * 12);
    for (let ky = 0; ky < 3; ky++) for (let kx = 0; kx < 3; kx++) expected[(8 - 3 * ky) * 12 + (9 - 3 * kx)] = taps[ky * 3 + kx];
    expect(Array.from(out)).toEqual(Array.from(expected));
    y.dispose();
  });

  it('a transposed conv exactly inverts a strided conv’s shape (2D stride 4 kernel 8, as RDCNet)', async (e) => {
    await checkConv(e, { x: [1, 3, 16, 20], w: [2, 3, 8, 8], o: { strides: [4, 4], pads: [2, 2, 2, 2] }, grads: [false, true, true] }, false);
    await checkConv(e, { x: [1, 2, 4, 5], w: [2, 3, 8, 8], o: { strides: [4, 4], pads: [2, 2, 2, 2] } }, true);
    expect(convTransposeOutSize([4, 5], [8, 8], { strides: [4, 4], pads: [2, 2, 2, 2] })).toEqual([16, 20]);
  });

  it('a transposed conv exactly inverts a strided conv’s shape (3D stride (1,8,8) kernel (2,16,16), as RDCNet)', async (e) => {
    const o = { strides: [1, 8, 8], pads: [0, 4, 4, 1, 4, 4] };
    expect(convOutSize([2, 16, 24], [2, 16, 16], o)).toEqual([2, 2, 3]);
    await checkConv(e, { x: [1, 2, 2, 2, 3], w: [2, 1, 2, 16, 16], o }, true);
    expect(convTransposeOutSize([2, 2, 3], [2, 16, 16], o)).toEqual([2, 16, 24]);
  });
});

describe('conv errors', () => {
  it('name the mismatched numbers', async (e) => {
    e.tidy(() => {
      const x = e.zeros([1, 3, 5, 5]);
      expect(() => conv(x, e.zeros([2, 4, 3, 3]), null)).toThrow('conv: input has 3 channels, weight expects 4 (group=1)');
      expect(() => conv(x, e.zeros([4, 1, 3, 3]), null, { group: 2 })).toThrow('conv: input has 3 channels, weight expects 2 (group=2)');
      expect(() => conv(e.zeros([1, 4, 5, 5]), e.zeros([3, 2, 3, 3]), null, { group: 2 })).toThrow('conv: weight has 3 output channels, not divisible by group=2');
      expect(() => conv(x, e.zeros([2, 3, 3, 3]), e.zeros([3]))).toThrow('conv: bias [3] must be [2]');
      expect(() => conv(x, e.zeros([2, 3, 3, 3]), null, { dilations: [3, 1] })).toThrow('conv: kernel extent 7 (size 3, dilation 3) exceeds the padded input 5 along spatial axis 0');
      expect(() => conv(x, e.zeros([2, 3, 3, 3]), null, { strides: [1, 1, 1] })).toThrow('conv: strides has 3 values, expected 2 for 2 spatial axes');
      expect(() => conv(x, e.zeros([2, 3, 3, 3, 3]), null)).toThrow('conv: weight [2, 3, 3, 3, 3] must have rank 4 like the input [1, 3, 5, 5]');
      expect(() => convTranspose(x, e.zeros([4, 2, 3, 3]), null)).toThrow('convTranspose: input has 3 channels, weight expects 4 (group=1)');
      expect(() => convTranspose(x, e.zeros([3, 2, 3, 3]), null, { strides: [2, 2], outputPadding: [2, 0] }))
        .toThrow('convTranspose: outputPadding 2 along spatial axis 0 must be smaller than the stride 2 or the dilation 1');
    });
  });
});
