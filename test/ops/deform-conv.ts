// Deformable convolution v2 against float64 references (torchvision.ops.deform_conv2d semantics): equal to an
// ordinary convolution with zero offsets and mask 1, random offsets and masks, finite-difference gradients of every input.
import { deformConv, type DeformConvOptions, record } from '../../src/index.ts';
import { checkOp, relError, rng, sizeOf, uniform, type OpInput } from '../support/check.ts';
import { expect } from '../support/expect.ts';
import { checkList } from '../support/suite.ts';

const { checks, describe, it } = checkList();
export { checks };

interface Setup {
  x: number[];
  w: number[];
  options: DeformConvOptions & { offsetGroup: number };
  mask: boolean;
  bias: boolean;
}

interface Geometry {
  n: number; cin: number; h: number; wd: number; cout: number; cg: number; kh: number; kw: number;
  ho: number; wo: number; sh: number; sw: number; pt: number; pl: number; dh: number; dw: number; group: number; og: number;
}

function geometryOf(s: Setup): Geometry {
  const [n, cin, h, wd] = s.x;
  const [cout, cg, kh, kw] = s.w;
  const [sh, sw] = s.options.strides ?? [1, 1];
  const [dh, dw] = s.options.dilations ?? [1, 1];
  const pads = s.options.pads ?? [0, 0, 0, 0];
  const ho = Math.floor((h + pads[0] + pads[2] - dh * (kh - 1) - 1) / sh) + 1;
  const wo = Math.floor((wd + pads[1] + pads[3] - dw * (kw - 1) - 1) / sw) + 1;
  return { n, cin, h, wd, cout, cg, kh, kw, ho, wo, sh, sw, pt: pads[0], pl: pads[1], dh, dw, group: s.options.group ?? 1, og: s.options.offsetGroup };
}

/** Bilinear sample of plane `base` of x at (y, x), zero outside the image (per corner). */
function bilinear(x: Float64Array, base: number, h: number, wd: number, y: number, xx: number): number {
  const y0 = Math.floor(y);
  const x0 = Math.floor(xx);
  const ly = y - y0;
  const lx = xx - x0;
  let v = 0;
  for (const [cy, wy] of [[y0, 1 - ly], [y0 + 1, ly]]) {
    for (const [cx, wx] of [[x0, 1 - lx], [x0 + 1, lx]]) {
      if (cy >= 0 && cy < h && cx >= 0 && cx < wd) v += wy * wx * x[base + cy * wd + cx];
    }
  }
  return v;
}

/** The deformable convolution in float64; offset/mask null mean zero offsets / mask 1. */
function deformRef(s: Setup, x: Float64Array, off: Float64Array | null, mask: Float64Array | null, w: Float64Array, b: Float64Array | null): Float64Array {
  const g = geometryOf(s);
  const K = g.kh * g.kw;
  const P = g.ho * g.wo;
  const M = g.cout / g.group;
  const perOffsetGroup = g.cin / g.og;
  const out = new Float64Array(g.n * g.cout * P);
  for (let n = 0; n < g.n; n++) {
    for (let co = 0; co < g.cout; co++) {
      const grp = Math.floor(co / M);
      for (let p = 0; p < P; p++) {
        const ho = Math.floor(p / g.wo);
        const wo = p % g.wo;
        let acc = b ? b[co] : 0;
        for (let ci = 0; ci < g.cg; ci++) {
          const c = grp * g.cg + ci;
          const og = Math.floor(c / perOffsetGroup);
          for (let k = 0; k < K; k++) {
            const ki = Math.floor(k / g.kw);
            const kj = k % g.kw;
            const dy = off ? off[((n * 2 * g.og * K) + 2 * (og * K + k)) * P + p] : 0;
            const dx = off ? off[((n * 2 * g.og * K) + 2 * (og * K + k) + 1) * P + p] : 0;
            const m = mask ? mask[(n * g.og * K + og * K + k) * P + p] : 1;
            const y = ho * g.sh - g.pt + ki * g.dh + dy;
            const xx = wo * g.sw - g.pl + kj * g.dw + dx;
            acc += w[(co * g.cg + ci) * K + k] * m * bilinear(x, (n * g.cin + c) * g.h * g.wd, g.h, g.wd, y, xx);
          }
        }
        out[(n * g.cout + co) * P + p] = acc;
      }
    }
  }
  return out;
}

/** An ordinary (grouped, strided, dilated, zero-padded) convolution in float64, written independently of the above. */
function convRef(s: Setup, x: Float64Array, w: Float64Array, b: Float64Array | null): Float64Array {
  const g = geometryOf(s);
  const M = g.cout / g.group;
  const out = new Float64Array(g.n * g.cout * g.ho * g.wo);
  for (let n = 0; n < g.n; n++) for (let co = 0; co < g.cout; co++) for (let ho = 0; ho < g.ho; ho++) for (let wo = 0; wo < g.wo; wo++) {
    let acc = b ? b[co] : 0;
    for (let ci = 0; ci < g.cg; ci++) for (let ki = 0; ki < g.kh; ki++) for (let kj = 0; kj < g.kw; kj++) {
      const iy = ho * g.sh - g.pt + ki * g.dh;
      const ix = wo * g.sw - g.pl + kj * g.dw;
      if (iy < 0 || iy >= g.h || ix < 0 || ix >= g.wd) continue;
      const c = Math.floor(co / M) * g.cg + ci;
      acc += w[((co * g.cg + ci) * g.kh + ki) * g.kw + kj] * x[((n * g.cin + c) * g.h + iy) * g.wd + ix];
    }
    out[((n * g.cout + co) * g.ho + ho) * g.wo + wo] = acc;
  }
  return out;
}

/** Offsets whose fractional parts stay in [0.2, 0.8], so no sampling point sits on the grid (bilinear is smooth there). */
function offGrid(n: number, seed: number, reach: number): Float64Array {
  const rand = rng(seed);
  return Float64Array.from({ length: n }, () => {
    const whole = Math.floor(rand() * (2 * reach + 1)) - reach;
    return Math.fround(whole + 0.2 + 0.6 * rand());
  });
}

const setups: Setup[] = [
  { x: [1, 2, 5, 6], w: [3, 2, 3, 3], options: { pads: [1, 1, 1, 1], offsetGroup: 1 }, mask: true, bias: true },
  { x: [2, 4, 5, 4], w: [4, 2, 3, 3], options: { pads: [1, 0, 2, 1], strides: [2, 1], group: 2, offsetGroup: 2 }, mask: true, bias: false },
  { x: [1, 3, 6, 5], w: [2, 3, 3, 2], options: { pads: [2, 2, 2, 2], dilations: [2, 2], offsetGroup: 3 }, mask: false, bias: true },
  { x: [2, 2, 1, 1], w: [3, 2, 3, 3], options: { pads: [1, 1, 1, 1], offsetGroup: 1 }, mask: true, bias: true },
  { x: [1, 4, 4, 4], w: [4, 1, 1, 1], options: { group: 4, offsetGroup: 2 }, mask: true, bias: false },
];

const title = (s: Setup) => `x [${s.x}] w [${s.w}] ${JSON.stringify(s.options)}${s.mask ? ' mask' : ''}${s.bias ? ' bias' : ''}`;

function inputsFor(s: Setup, seed: number): OpInput[] {
  const g = geometryOf(s);
  const K = g.kh * g.kw;
  const offShape = [g.n, 2 * g.og * K, g.ho, g.wo];
  const inputs: OpInput[] = [
    { shape: s.x },
    { shape: offShape, data: offGrid(sizeOf(offShape), seed, 1) },
  ];
  const maskShape = [g.n, g.og * K, g.ho, g.wo];
  if (s.mask) inputs.push({ shape: maskShape, data: uniform(sizeOf(maskShape), rng(seed + 1), 0, 1) });
  inputs.push({ shape: s.w });
  if (s.bias) inputs.push({ shape: [g.cout] });
  return inputs;
}

/** Splits checkOp's input list back into (x, offset, mask, w, b). */
function unpack<T>(s: Setup, xs: T[]): [T, T, T | null, T, T | null] {
  const [x, off, ...rest] = xs;
  const mask = s.mask ? rest.shift()! : null;
  const w = rest.shift()!;
  const b = s.bias ? rest.shift()! : null;
  return [x, off, mask, w, b];
}

describe('deformConv', () => {
  for (const [i, s] of setups.entries()) {
    it(`zero offsets and mask 1 equal a convolution: ${title(s)}`, async (e) => {
      const g = geometryOf(s);
      const K = g.kh * g.kw;
      const off = e.zeros([g.n, 2 * g.og * K, g.ho, g.wo]);
      const mask = s.mask ? e.fill([g.n, g.og * K, g.ho, g.wo], 1) : null;
      await checkOp(e, {
        inputs: [{ shape: s.x }, { shape: s.w }, ...(s.bias ? [{ shape: [g.cout] }] : [])],
        run: ([x, w, b]) => deformConv(x, off, mask, w, b ?? null, s.options),
        ref: ([x, w, b]) => convRef(s, x, w, b ?? null),
      });
      off.dispose();
      mask?.dispose();
    });

    it(`random offsets and mask, gradients of every input: ${title(s)}`, async (e) => {
      await checkOp(e, {
        inputs: inputsFor(s, 10 + i),
        run: (xs) => {
          const [x, off, mask, w, b] = unpack(s, xs);
          return deformConv(x, off, mask, w, b, s.options);
        },
        ref: (xs) => {
          const [x, off, mask, w, b] = unpack(s, xs);
          return deformRef(s, x, off, mask, w, b);
        },
      });
    });
  }

  it('spans several matmul tiles: forward, and every gradient along a random direction', async (e) => {
    // Cout 70 and Ho·Wo 90 exceed one 64 x 64 tile, Cin/group·K 90 is not a multiple of the depth tile; too large for
    // element-wise finite differences, so each gradient g is checked through ⟨g, v⟩ = d/dt loss(input + t·v).
    const s: Setup = { x: [2, 20, 9, 10], w: [70, 10, 3, 3], options: { pads: [1, 1, 1, 1], group: 2, offsetGroup: 2 }, mask: true, bias: true };
    const specs = inputsFor(s, 99);
    const rand = rng(100);
    const values = specs.map((sp) => (sp.data ? Float64Array.from(sp.data) : uniform(sizeOf(sp.shape), rand)));
    const xs = specs.map((sp, i) => e.param(e.tensor(Float32Array.from(values[i]), sp.shape)));
    const [x, off, mask, w, b] = unpack(s, xs);
    const y = deformConv(x, off, mask, w, b, s.options);
    const ref = (vs: Float64Array[]) => {
      const [rx, roff, rmask, rw, rb] = unpack(s, vs);
      return deformRef(s, rx, roff, rmask, rw, rb);
    };
    const expected = ref(values);
    expect(relError(await y.data(), expected)).toBeLessThan(1e-5);
    const r = uniform(expected.length, rand);
    const loss = record('probe', [y], e.zeros([1]), () => [e.tensor(Float32Array.from(r), y.shape)]);
    loss.backward();
    const h = 1e-5;
    for (let i = 0; i < xs.length; i++) {
      const g = await xs[i].grad!.data();
      const v = uniform(values[i].length, rand);
      const at = (t: number) => ref(values.map((vals, j) => (j === i ? vals.map((q, k) => q + t * v[k]) : vals))).reduce((acc, q, k) => acc + q * r[k], 0);
      const numeric = (at(h) - at(-h)) / (2 * h);
      const analytic = Array.from(g).reduce((acc, q, k) => acc + q * v[k], 0);
      expect(Math.abs(analytic - numeric) / Math.abs(numeric), `directional derivative of input ${i}`).toBeLessThan(1e-4);
    }
    for (const t of [...xs, y, loss]) t.dispose();
  });

  it('a whole-pixel offset shifts the image (hand-checked)', async (e) => {
    // 1x1 kernel, weight 1, every offset (dy, dx) = (0, 1): out[y, x] = in[y, x + 1], zero past the right edge.
    const x = e.tensor([1, 2, 3, 4, 5, 6], [1, 1, 2, 3]);
    const off = e.tensor([0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1], [1, 2, 2, 3]);
    const w = e.fill([1, 1, 1, 1], 1);
    const y = deformConv(x, off, null, w, null);
    expect(Array.from(await y.data())).toEqual([2, 3, 0, 5, 6, 0]);
    for (const t of [x, off, w, y]) t.dispose();
  });

  it('infers offsetGroup and names bad shapes', async (e) => {
    const x = e.zeros([1, 4, 5, 5]);
    const w = e.zeros([2, 4, 3, 3]);
    const off = e.zeros([1, 36, 5, 5]);
    const badMask = e.zeros([1, 9, 5, 5]);
    expect(() => deformConv(x, off, badMask, w, null, { pads: [1, 1, 1, 1] })).toThrow(
      'deformConv: mask must be [1, 18, 5, 5] (offsetGroup=2, 3x3 taps), got [1, 9, 5, 5]',
    );
    const w3 = e.zeros([2, 3, 3, 3]);
    expect(() => deformConv(x, off, null, w3, null)).toThrow('deformConv: input has 4 channels, weight [2, 3, 3, 3] expects 3 (group=1)');
    expect(() => deformConv(x, off, null, w, null)).toThrow('deformConv: offset must be [1, 36, 3, 3] (offsetGroup=2, 3x3 taps), got [1, 36, 5, 5]');
    for (const t of [x, w, w3, off, badMask]) t.dispose();
  });
});
