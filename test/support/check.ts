// Checks an op against a float64 reference: the forward on poisoned outputs, and the backward against central finite
// differences of the float64 reference (so the numeric gradient is exact to ~1e-10 and the test measures only the
// GPU's error). Failures throw plain Errors (no test framework), so the checks run under vitest, in Deno and in a browser.
import { record, type DType, type Engine, type Tensor } from '../../src/index.ts';

/** A seeded uniform generator in [0, 1) (mulberry32), so failures reproduce. */
export function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** n values uniform in [lo, hi), rounded to f32 so that the GPU and the reference see the same numbers. */
export function uniform(n: number, rand: () => number, lo = -1, hi = 1): Float64Array {
  const out = new Float64Array(n);
  for (let i = 0; i < n; i++) out[i] = Math.fround(lo + (hi - lo) * rand());
  return out;
}

export function sizeOf(shape: readonly number[]): number {
  return shape.reduce((a, b) => a * b, 1);
}

/** The coordinates of row-major flat index `i` in `shape`, one per axis. */
export function coordsOf(i: number, shape: readonly number[]): number[] {
  const c = new Array<number>(shape.length);
  for (let a = shape.length - 1; a >= 0; a--) {
    c[a] = i % shape[a];
    i = Math.floor(i / shape[a]);
  }
  return c;
}

/** The row-major flat index of coordinates `c` in `shape`. */
export const indexOf = (c: readonly number[], shape: readonly number[]): number => c.reduce((i, x, a) => i * shape[a] + x, 0);

/** ‖out − ref‖ / ‖ref‖ (absolute when ref is all zeros); Infinity when out has a NaN or shapes differ. */
export function relError(out: ArrayLike<number>, ref: ArrayLike<number>): number {
  if (out.length !== ref.length) return Infinity;
  let num = 0;
  let den = 0;
  for (let i = 0; i < ref.length; i++) {
    if (!Number.isFinite(out[i]) && out[i] !== ref[i]) return Infinity;
    const d = out[i] - ref[i];
    num += d * d;
    den += ref[i] * ref[i];
  }
  return den === 0 ? Math.sqrt(num) : Math.sqrt(num / den);
}

export interface OpInput {
  shape: number[];
  /** Values (default: uniform in [-1, 1)). */
  data?: Float64Array | number[];
  dtype?: DType;
  /** Whether to check the gradient for this input (default: true for f32). */
  grad?: boolean;
}

export interface OpCase {
  inputs: OpInput[];
  run: (xs: Tensor[]) => Tensor;
  /** The op in float64 on the inputs' values; returns the output's values in row-major order. */
  ref: (xs: Float64Array[]) => Float64Array | number[];
  /** Forward tolerance on relative L2 error (default 1e-5). */
  tol?: number;
  /** Gradient tolerance on relative L2 error (default 1e-4). */
  gradTol?: number;
  /** Finite-difference step (default 1e-5). */
  h?: number;
  seed?: number;
}

function dot(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let s = 0;
  for (let i = 0; i < a.length; i++) s += a[i] * b[i];
  return s;
}

/** Forward against the reference, then every f32 input's gradient against finite differences of the reference. */
export async function checkOp(engine: Engine, c: OpCase): Promise<void> {
  const rand = rng(c.seed ?? 1234);
  const values = c.inputs.map((inp) => {
    if (inp.data) return Float64Array.from(inp.data, (v) => (inp.dtype && inp.dtype !== 'f32' ? v : Math.fround(v)));
    return uniform(sizeOf(inp.shape), rand);
  });
  const wantGrad = c.inputs.map((inp) => (inp.grad ?? true) && (inp.dtype ?? 'f32') === 'f32');
  const before = engine.stats().liveTensors;
  // Tensors an op saves for its backward (maxPool's argmax) live until the caller's scope ends, like in training.
  const scope = engine.beginScope();

  const xs = c.inputs.map((inp, i) => {
    const t = engine.tensor(Array.from(values[i]), inp.shape, inp.dtype ?? 'f32');
    return wantGrad[i] ? engine.param(t) : t;
  });
  const y = c.run(xs);
  const expected = Float64Array.from(c.ref(values));
  const out = await y.data();
  // The op as the tape knows it (forward-only cases have no tape), and the case by its inputs.
  const what = `${y.node ? `${y.node.op} ` : ''}on ${c.inputs.map((inp) => `${inp.dtype ?? 'f32'} [${inp.shape}]`).join(', ')}`;
  if (out.length !== expected.length) throw new Error(`checkOp ${what}: the output has ${out.length} values, the reference ${expected.length}`);
  within(relError(out, expected), c.tol ?? 1e-5, `checkOp ${what}: forward`);

  if (wantGrad.some(Boolean)) {
    const r = uniform(expected.length, rand);
    // A probe: loss = Σ r·y, so the op's backward receives gy = r.
    const loss = record('probe', [y], engine.zeros([1]), () => [engine.tensor(Float32Array.from(r), y.shape)]);
    loss.backward();
    const h = c.h ?? 1e-5;
    for (let i = 0; i < xs.length; i++) {
      if (!wantGrad[i]) continue;
      const analytic = await xs[i].grad!.data();
      const numeric = new Float64Array(values[i].length);
      for (let j = 0; j < numeric.length; j++) {
        const orig = values[i][j];
        values[i][j] = orig + h;
        const plus = dot(c.ref(values), r);
        values[i][j] = orig - h;
        const minus = dot(c.ref(values), r);
        values[i][j] = orig;
        numeric[j] = (plus - minus) / (2 * h);
      }
      within(relError(analytic, numeric), c.gradTol ?? 1e-4, `checkOp ${what}: gradient of input ${i}`);
    }
    loss.dispose();
  }
  for (const x of xs) x.dispose(); // parameters are kept out of scopes
  scope.end();
  const leaked = engine.stats().liveTensors - before;
  if (leaked !== 0) throw new Error(`checkOp ${what}: ${leaked} tensors leaked by the op or its backward`);
}

/** Throws unless `err` (a relative L2 error; NaN or Infinity when the output has a NaN) is below `tol`. */
function within(err: number, tol: number, what: string): void {
  if (!(err < tol)) throw new Error(`${what}: relative error ${err.toExponential(3)} is not below the tolerance ${tol}`);
}
