// Shape ops against plain-JS references, with gradient checks; views versus copies; integer dtypes; error messages.
import { cast, concat, pad, reshape, slice, sum, transpose } from '../../src/index.ts';
import { checkOp, sizeOf, coordsOf, indexOf } from '../support/check.ts';
import { expect } from '../support/expect.ts';
import { checkList } from '../support/suite.ts';

const { checks, describe, it } = checkList();
export { checks };

/** out[c] = x[map(c)] over every coordinate c of outShape (map returns null for a constant `fill`). */
function gatherRef(x: Float64Array, xShape: number[], outShape: number[], map: (c: number[]) => number[] | null, fill = 0): Float64Array {
  const out = new Float64Array(sizeOf(outShape));
  for (let i = 0; i < out.length; i++) {
    const src = map(coordsOf(i, outShape));
    out[i] = src ? x[indexOf(src, xShape)] : fill;
  }
  return out;
}

const transposeRef = (x: Float64Array, shape: number[], perm: number[]) =>
  gatherRef(x, shape, perm.map((p) => shape[p]), (c) => {
    const src = new Array<number>(shape.length);
    perm.forEach((p, k) => (src[p] = c[k]));
    return src;
  });

const sliceRef = (x: Float64Array, shape: number[], begin: number[], size: number[]) =>
  gatherRef(x, shape, size, (c) => c.map((v, k) => v + begin[k]));

function padRef(x: Float64Array, shape: number[], pads: [number, number][], mode: 'constant' | 'reflect', value = 0): Float64Array {
  const lead = shape.length - pads.length;
  const before = shape.map((_, k) => (k < lead ? 0 : pads[k - lead][0]));
  const outShape = shape.map((d, k) => (k < lead ? d : d + pads[k - lead][0] + pads[k - lead][1]));
  return gatherRef(x, shape, outShape, (c) => {
    const src = c.map((v, k) => v - before[k]);
    if (mode === 'constant') return src.every((v, k) => v >= 0 && v < shape[k]) ? src : null;
    return src.map((v, k) => (v < 0 ? -v : v >= shape[k] ? 2 * (shape[k] - 1) - v : v));
  }, value);
}

describe('reshape', () => {
  it('is a view with the gradient reshaped back', async (e) => {
    await checkOp(e, { inputs: [{ shape: [2, 3, 4] }], run: ([x]) => reshape(x, [4, -1]), ref: ([x]) => x });
  });

  it('shares storage: no new bytes, and outlives its source', async (e) => {
    const x = e.tensor(Float32Array.from({ length: 24 }, (_, i) => i), [2, 3, 4]);
    const bytes = e.stats().liveBytes;
    const y = reshape(x, [6, 4]);
    expect(e.stats().liveBytes).toBe(bytes);
    x.dispose();
    expect(y.shape).toEqual([6, 4]);
    expect(Array.from(await y.data())).toEqual(Array.from({ length: 24 }, (_, i) => i));
    y.dispose();
  });

  it('names the shapes it cannot reshape between', async (e) => {
    const x = e.zeros([2, 3]);
    expect(() => reshape(x, [4, -1])).toThrow('reshape: cannot reshape [2, 3] (6 elements) to [4, -1]');
    expect(() => reshape(x, [-1, -1])).toThrow(/cannot reshape/);
    expect(() => reshape(x, [7])).toThrow(/cannot reshape/);
    x.dispose();
  });
});

describe('transpose', () => {
  const cases: [number[], number[] | undefined][] = [
    [[5, 7], [1, 0]],
    [[2, 3, 4, 5], [0, 2, 3, 1]],
    [[2, 3, 4, 5], [3, 1, 0, 2]],
    [[3, 4, 5], undefined],
    [[3, 4, 5], [1, 0, 2]], // the last axis stays: an elementwise strided copy
    [[2, 37, 45], [0, 2, 1]], // tiles with ragged edges
    [[2, 1, 2, 3, 1, 2, 2, 3], [7, 0, 6, 1, 5, 2, 4, 3]],
  ];
  for (const [shape, perm] of cases) {
    it(`${JSON.stringify(shape)} by ${perm ? JSON.stringify(perm) : 'reversed axes'}`, async (e) => {
      const p = perm ?? [...shape.keys()].reverse();
      await checkOp(e, { inputs: [{ shape }], run: ([x]) => transpose(x, perm), ref: ([x]) => transposeRef(x, shape, p) });
    });
  }

  it('moves integer labels bit for bit', async (e) => {
    const data = Int32Array.from({ length: 12 }, (_, i) => (i % 2 ? -i : i * 1000003));
    const x = e.tensor(data, [3, 4]);
    const y = transpose(x);
    expect(y.dtype).toBe('i32');
    expect(Array.from(await y.data())).toEqual(Array.from(transposeRef(Float64Array.from(data), [3, 4], [1, 0])));
    x.dispose();
    y.dispose();
  });

  it('rejects a bad permutation by naming it', async (e) => {
    const x = e.zeros([2, 3, 4]);
    expect(() => transpose(x, [0, 0, 1])).toThrow('transpose: perm [0, 0, 1] is not a permutation of the 3 axes of [2, 3, 4]');
    expect(() => transpose(x, [1, 0])).toThrow(/not a permutation/);
    x.dispose();
  });
});

describe('slice', () => {
  const cases: [number[], number[], number[]][] = [
    [[4, 6, 5], [1, 2, 1], [2, 3, 3]],
    [[4, 6, 5], [0, 0, 4], [-1, -1, -1]],
    [[3, 10], [1, 0], [2, -1]], // contiguous rows at an unaligned offset: a copy
    [[2, 3, 4, 5], [1, 1, 0, 0], [1, 2, -1, -1]],
  ];
  for (const [shape, begin, size] of cases) {
    it(`${JSON.stringify(shape)} from ${JSON.stringify(begin)} size ${JSON.stringify(size)}`, async (e) => {
      const extent = size.map((s, k) => (s === -1 ? shape[k] - begin[k] : s));
      await checkOp(e, { inputs: [{ shape }], run: ([x]) => slice(x, begin, size), ref: ([x]) => sliceRef(x, shape, begin, extent) });
    });
  }

  it('is a view for an aligned contiguous block (gradient included) and a copy otherwise', async (e) => {
    const rowLength = e.device.limits.minStorageBufferOffsetAlignment / 4;
    const shape = [4, 2, rowLength / 2];
    await checkOp(e, { inputs: [{ shape }], run: ([x]) => slice(x, [1, 0, 0], [2, -1, -1]), ref: ([x]) => x.slice(rowLength, 3 * rowLength) });

    const data = Float32Array.from({ length: 4 * rowLength }, (_, i) => i);
    const x = e.tensor(data, [4, rowLength]);
    const bytes = e.stats().liveBytes;
    const view = slice(x, [2, 0], [2, -1]);
    expect(e.stats().liveBytes).toBe(bytes);
    const copy = slice(x, [2, 1], [1, 3]);
    expect(e.stats().liveBytes).toBe(bytes + 3 * 4);
    x.dispose();
    expect(Array.from(await view.data())).toEqual(Array.from(data.slice(2 * rowLength)));
    expect(Array.from(await copy.data())).toEqual([2 * rowLength + 1, 2 * rowLength + 2, 2 * rowLength + 3]);
    // A block copy out of a view starts at the view's offset in the shared buffer.
    const ofView = slice(view, [1, 1], [1, 2]);
    expect(Array.from(await ofView.data())).toEqual([3 * rowLength + 1, 3 * rowLength + 2]);
    ofView.dispose();
    view.dispose();
    copy.dispose();
  });

  it('names the slice that is out of range', async (e) => {
    const x = e.zeros([2, 5]);
    expect(() => slice(x, [0, 3], [2, 4])).toThrow('slice: begin [0, 3] size [2, 4] is out of range for [2, 5] (axis 1)');
    expect(() => slice(x, [0], [1])).toThrow(/one entry per axis of \[2, 5\]/);
    expect(() => slice(x, [0, -1], [1, 1])).toThrow(/out of range/);
    x.dispose();
  });
});

describe('concat', () => {
  function concatRef(xs: Float64Array[], shapes: number[][], axis: number): Float64Array {
    const outShape = shapes[0].map((d, k) => (k === axis ? shapes.reduce((n, s) => n + s[axis], 0) : d));
    const out = new Float64Array(sizeOf(outShape));
    for (let i = 0; i < out.length; i++) {
      const c = coordsOf(i, outShape);
      let j = 0;
      while (c[axis] >= shapes[j][axis]) c[axis] -= shapes[j++][axis];
      out[i] = xs[j][indexOf(c, shapes[j])];
    }
    return out;
  }
  const cases: [number[][], number][] = [
    [[[2, 3, 4], [2, 5, 4], [2, 1, 4]], 1],
    [[[3, 4], [2, 4]], 0],
    [[[2, 3, 2], [2, 3, 3]], -1],
    [[[70, 3], [70, 2]], 1], // more blocks than buffer copies are used for: the copy kernel
    [[[2, 3, 1, 4, 10], [2, 3, 1, 4, 10], [2, 3, 1, 4, 10]], 2], // RDCNet's interleave: 6 blocks of 40 per input
  ];
  for (const [shapes, axis] of cases) {
    it(`${JSON.stringify(shapes)} along axis ${axis}`, async (e) => {
      const k = axis < 0 ? axis + shapes[0].length : axis;
      await checkOp(e, { inputs: shapes.map((shape) => ({ shape })), run: (xs) => concat(xs, axis), ref: (xs) => concatRef(xs, shapes, k) });
    });
  }

  it('sends gradients only to inputs that want them', async (e) => {
    const shapes = [[2, 2], [2, 3]];
    await checkOp(e, {
      inputs: [{ shape: shapes[0], grad: false }, { shape: shapes[1] }],
      run: (xs) => concat(xs, 1), ref: (xs) => concatRef(xs, shapes, 1),
    });
  });

  it('names mismatched shapes', async (e) => {
    const a = e.zeros([2, 3, 5]);
    const b = e.zeros([2, 4, 6]);
    const c = e.zeros([2, 3], 'i32');
    expect(() => concat([a, b], 1)).toThrow('concat: input 1 has shape [2, 4, 6], expected [2, *, 5] like input 0 (axis 1)');
    expect(() => concat([a, b], 3)).toThrow('concat: axis 3 is out of range for [2, 3, 5]');
    expect(() => concat([c, a], 0)).toThrow('concat: input 1 is f32, input 0 is i32');
    for (const t of [a, b, c]) t.dispose();
  });
});

describe('pad', () => {
  const cases: [number[], [number, number][], 'constant' | 'reflect', number][] = [
    [[2, 3, 4, 5], [[1, 2], [3, 0]], 'constant', 0],
    [[3, 4], [[2, 1], [0, 3]], 'constant', -1.5],
    [[2, 3, 4, 5], [[2, 1], [3, 4]], 'reflect', 0],
    [[4, 3, 3], [[3, 2], [1, 2], [2, 1]], 'reflect', 0],
    [[1, 2, 6], [[0, 0], [5, 5]], 'reflect', 0],
  ];
  for (const [shape, pads, mode, value] of cases) {
    it(`${mode} ${JSON.stringify(pads)} of ${JSON.stringify(shape)}`, async (e) => {
      await checkOp(e, { inputs: [{ shape }], run: ([x]) => pad(x, pads, mode, value), ref: ([x]) => padRef(x, shape, pads, mode, value) });
    });
  }

  it('reflects a hand-checkable row and accumulates mirrored gradients', async (e) => {
    const x = e.param(e.tensor([1, 2, 3, 4], [4]));
    const y = pad(x, [[2, 3]], 'reflect');
    expect(Array.from(await y.data())).toEqual([3, 2, 1, 2, 3, 4, 3, 2, 1]);
    const loss = sum(y);
    loss.backward();
    // Values 2 and 3 appear three times, 1 twice (both mirrored ends), the edge value 4 once.
    expect(Array.from(await x.grad!.data())).toEqual([2, 3, 3, 1]);
    for (const t of [x, y, loss]) t.dispose();
  });

  it('pads integer labels with an integer constant', async (e) => {
    const x = e.tensor(new Int32Array([7, -8]), [1, 2]);
    const y = pad(x, [[1, 0], [0, 1]], 'constant', -1);
    expect(Array.from(await y.data())).toEqual([-1, -1, -1, 7, -8, -1]);
    x.dispose();
    y.dispose();
  });

  it('names padding that reflect cannot do', async (e) => {
    const x = e.zeros([1, 3, 5]);
    expect(() => pad(x, [[3, 0], [0, 0]], 'reflect')).toThrow('pad: reflect padding [3, 0] on axis 1 must be smaller than the dimension 3 of [1, 3, 5]');
    expect(() => pad(x, [[0, 0], [0, 0], [0, 0], [1, 1]])).toThrow(/4 \[before, after\] pairs for the 3 axes/);
    expect(() => pad(x, [[-1, 0]])).toThrow(/non-negative/);
    x.dispose();
  });
});

describe('cast', () => {
  it('converts between f32, i32 and u32 as WGSL does', async (e) => {
    const f = e.tensor([-2.7, -0.5, 0, 1.9, 3e9, -3e9, 65536.75], [7]);
    const i = cast(f, 'i32');
    const u = cast(f, 'u32');
    expect(i.dtype).toBe('i32');
    // Saturation stops at the largest f32 inside the i32 range, 2^31 − 128.
    expect(Array.from(await i.data())).toEqual([-2, 0, 0, 1, 2147483520, -2147483648, 65536]);
    expect(Array.from(await u.data())).toEqual([0, 0, 0, 1, 3000000000, 0, 65536]);
    const labels = e.tensor(new Int32Array([-1, 0, 5, 16777217]), [4]);
    const asFloat = cast(labels, 'f32');
    const asU32 = cast(labels, 'u32');
    expect(Array.from(await asFloat.data())).toEqual([-1, 0, 5, 16777216]);
    expect(Array.from(await asU32.data())).toEqual([4294967295, 0, 5, 16777217]);
    const back = cast(asU32, 'f32');
    expect(Array.from(await back.data())).toEqual([4294967296, 0, 5, 16777216]);
    const same = cast(labels, 'i32');
    expect(Array.from(await same.data())).toEqual([-1, 0, 5, 16777217]);
    for (const t of [f, i, u, labels, asFloat, asU32, back, same]) t.dispose();
  });
});
