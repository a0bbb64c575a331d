// The engine core: tensors, pool, scopes, autograd bookkeeping, dispatch checks and errors.
import { describe, expect, it } from 'vitest';
import { record } from '../src/index.ts';
import { Dispatcher } from '../src/engine/dispatch.ts';
import { sizeClass } from '../src/engine/pool.ts';
import { testEngine } from './support/engine.ts';

describe('tensors', () => {
  it('round-trips f32, i32 and u32 data', async () => {
    const e = await testEngine();
    const f = e.tensor(new Float32Array([1.5, -2, 3e-8, 4e30]), [2, 2]);
    const i = e.tensor(new Int32Array([-7, 0, 2147483647]), [3]);
    const u = e.tensor([4294967295, 1], [2], 'u32');
    expect(Array.from(await f.data())).toEqual(Array.from(new Float32Array([1.5, -2, 3e-8, 4e30])));
    expect(Array.from(await i.data())).toEqual([-7, 0, 2147483647]);
    expect(Array.from(await u.data())).toEqual([4294967295, 1]);
    expect(f.strides).toEqual([2, 1]);
    for (const t of [f, i, u]) t.dispose();
  });

  it('fills and zeros on the GPU, poisoned buffers notwithstanding', async () => {
    const e = await testEngine();
    const z = e.zeros([3, 5]);
    const f = e.fill([1000], -2.25);
    const k = e.fill([3], -5, 'i32');
    expect(Array.from(await z.data())).toEqual(new Array(15).fill(0));
    expect(Array.from(await f.data()).every((v) => v === -2.25)).toBe(true);
    expect(Array.from(await k.data())).toEqual([-5, -5, -5]);
    const p = e.empty([4]);
    expect(Array.from(await p.data()).every(Number.isNaN)).toBe(true);
    for (const t of [z, f, k, p]) t.dispose();
  });

  it('shares storage between views and copies on request', async () => {
    const e = await testEngine();
    const data = Float32Array.from({ length: 128 }, (_, i) => i);
    const t = e.tensor(data, [2, 64]);
    const row1 = e.view(t, [64], 64); // 64 f32 = 256 bytes: aligned
    expect(e.canView(t, 64)).toBe(true);
    expect(e.canView(t, 3)).toBe(false);
    expect(() => e.view(t, [4], 3)).toThrow(/multiple of/);
    expect(() => e.view(t, [128], 64)).toThrow(/does not fit/);
    const c = e.copy(row1);
    t.dispose();
    expect(Array.from(await row1.data())).toEqual(Array.from(data.slice(64)));
    row1.dispose();
    expect(Array.from(await c.data())).toEqual(Array.from(data.slice(64)));
    c.dispose();
  });

  it('rejects bad shapes and data with messages that name the problem', async () => {
    const e = await testEngine();
    expect(() => e.tensor([1, 2, 3], [2, 2])).toThrow(/3 values do not fill shape \[2, 2\]/);
    expect(() => e.tensor(new Int32Array(2), [2], 'f32')).toThrow(/data is i32 but dtype f32/);
    // Other number arrays are converted, to f32 unless a dtype is named.
    const d = e.tensor(new Float64Array([0.1, 2]), [2]);
    const u = e.tensor(new Uint8Array([7, 255]), [2], 'i32');
    expect(d.dtype).toBe('f32');
    expect(Array.from(await d.data())).toEqual([Math.fround(0.1), 2]);
    expect(Array.from(await u.data())).toEqual([7, 255]);
    d.dispose();
    u.dispose();
    expect(() => e.empty([2, -1])).toThrow(/invalid shape \[2, -1\]/);
    const t = e.tensor([1], [1]);
    t.dispose();
    await expect(t.data()).rejects.toThrow(/was disposed/);
  });
});

describe('buffer pool', () => {
  it('uses size classes at most 25% above the request', () => {
    for (const n of [1, 255, 256, 257, 1000, 4096, 5000, 123457, 1 << 20]) {
      const c = sizeClass(n);
      expect(c).toBeGreaterThanOrEqual(n);
      expect(c).toBeLessThanOrEqual(Math.max(256, n * 1.25));
      expect(c % 4).toBe(0);
    }
  });

  it('reuses freed buffers instead of allocating', async () => {
    const e = await testEngine();
    await e.sync();
    const a = e.zeros([1000]);
    a.dispose();
    await e.sync();
    const before = e.stats();
    const b = e.zeros([990]);
    expect(e.stats().buffers).toBe(before.buffers);
    expect(e.stats().pooledBytes).toBe(before.pooledBytes - sizeClass(4000));
    b.dispose();
  });
});

describe('buffer reuse within one submit', () => {
  it('lets kernel outputs reuse a buffer freed mid-encoding, but never an upload', async () => {
    const e = await testEngine();
    await e.sync();
    const a = e.fill([1000], 3); // written by a kernel: pending in the encoder
    const b = e.add(a, a);
    a.dispose(); // parked: commands that read it are not submitted yet
    const buffersBefore = e.stats().buffers;
    const c = e.add(b, b); // a kernel output: may take the parked buffer
    expect(e.stats().buffers).toBe(buffersBefore);
    b.dispose();
    // An upload must not land in b's parked buffer: writeBuffer would run before the encoded add that reads b.
    const d = e.tensor(new Float32Array(1000).fill(7), [1000]);
    expect(e.stats().buffers).toBe(buffersBefore + 1);
    expect(Array.from(await c.data()).every((v) => v === 12)).toBe(true);
    expect(Array.from(await d.data()).every((v) => v === 7)).toBe(true);
    c.dispose();
    d.dispose();
  });
});

describe('dispatch checks the WGSL bindings by name', () => {
  it('names the shader and binding on a dtype mismatch', async () => {
    const e = await testEngine();
    const a = e.tensor(new Int32Array(4), [4]);
    const b = e.zeros([4]);
    const out = e.empty([4]);
    expect(() => e.dispatch({ shader: 'core', entry: 'add', bindings: { a, b, sum: out, addParams: { n: 4 } }, workgroups: [1] })).toThrow(
      "shader core.add: binding 'a' is array<f32> but was given a i32 tensor [4]",
    );
    for (const t of [a, b, out]) t.dispose();
  });

  it('reflects array<vec4<f32>> bindings as f32 four at a time and refuses a tensor of another length', async () => {
    const e = await testEngine();
    expect(e.dispatcher.entryInfo('elementwise', 'unary_forward_vec4').bindings.filter((b) => b.kind === 'storage'))
      .toEqual([{ kind: 'storage', name: 'x4', binding: 9, writable: false, element: 'f32', lanes: 4 }, { kind: 'storage', name: 'out4', binding: 12, writable: true, element: 'f32', lanes: 4 }]);
    const x = e.zeros([6]);
    const out = e.empty([6]);
    expect(() => e.dispatch({ shader: 'elementwise', entry: 'unary_forward_vec4', constants: { OP: 1 }, bindings: { x4: x, out4: out, unary: { n: 6, alpha: 0, beta: 0 } }, workgroups: [1] }))
      .toThrow("shader elementwise.unary_forward_vec4: binding 'x4' is array<vec4<f32>> and needs a multiple of 4 elements, got [6]");
    for (const t of [x, out]) t.dispose();
  });

  it('rejects missing, unknown and aliased bindings and wrong uniform members', async () => {
    const e = await testEngine();
    const a = e.zeros([4]);
    const b = e.zeros([4]);
    const out = e.empty([4]);
    const run = (bindings: Record<string, unknown>) => () =>
      e.dispatch({ shader: 'core', entry: 'add', bindings: bindings as never, workgroups: [1] });
    expect(run({ a, sum: out, addParams: { n: 4 } })).toThrow("binding 'b' (@binding(5)) was not given");
    expect(run({ a, b, sum: out, addParams: { n: 4 }, c: a })).toThrow("has no binding named 'c'");
    expect(run({ a, b, sum: a, addParams: { n: 4 } })).toThrow("binding 'sum' is written but shares memory with binding 'a'");
    expect(run({ a, b, sum: out, addParams: {} })).toThrow('uniform addParams.n was not given a value');
    expect(run({ a, b, sum: out, addParams: { n: 4, m: 1 } })).toThrow('uniform addParams has no member m');
    expect(run({ a, b, sum: out, addParams: { n: -1 } })).toThrow('uniform addParams.n is u32, got -1');
    expect(() => e.dispatch({ shader: 'nope', bindings: {}, workgroups: [1] })).toThrow("no shader named 'nope'");
    expect(() => e.dispatch({ shader: 'core', entry: 'nope', bindings: {}, workgroups: [1] })).toThrow("shader core has no compute entry point 'nope'");
    for (const t of [a, b, out]) t.dispose();
  });

  it('names the file and line of a WGSL error, in the shader or in the shaders/common/ file it includes', async () => {
    const e = await testEngine();
    // As scripts/embed-shaders.ts expands a shader with `// #include "common/demo.wgsl"`.
    const shader = [
      '@group(0) @binding(0) var<storage, read_write> out: array<u32>;',
      '@compute @workgroup_size(1)',
      'fn main() { out[0] = helper() + OWN; }',
      '// #included "common/demo.wgsl"',
      '// A helper with a mistake.',
      'fn helper() -> u32 {',
      '  return nope;',
      '}',
    ].join('\n');
    const compile = async (source: string) => {
      const d = new Dispatcher(e.device, { demo: source }, () => {}, false);
      const out = e.empty([1], 'u32');
      // No workgroups: the module and pipeline are created, nothing is encoded.
      d.dispatch({ shader: 'demo', bindings: { out }, workgroups: [0] });
      out.dispose();
      return d.check().then(() => '', (err: Error) => err.message);
    };
    expect(await compile(shader.replace(' + OWN', ''))).toMatch(/^shader demo: .*shaders\/common\/demo\.wgsl:3:10 error: unresolved value 'nope'/s);
    expect(await compile(shader.replace('nope', '1u'))).toMatch(/^shader demo: .*shaders\/demo\.wgsl:3:33 error: unresolved value 'OWN'/s);
  });

  it('records many dispatches per submit and caches pipelines', async () => {
    const e = await testEngine();
    await e.sync();
    const s0 = e.stats();
    let acc = e.zeros([64]);
    const one = e.fill([64], 1);
    for (let i = 0; i < 100; i++) {
      const next = e.add(acc, one);
      acc.dispose();
      acc = next;
    }
    const values = await acc.data();
    expect(values.every((v) => v === 100)).toBe(true);
    const s1 = e.stats();
    expect(s1.submits - s0.submits).toBeLessThanOrEqual(2);
    expect(s1.pipelines - s0.pipelines).toBeLessThanOrEqual(2);
    acc.dispose();
    one.dispose();
  });
});

describe('scopes and autograd bookkeeping', () => {
  it('tidy frees intermediates and keeps what is returned', async () => {
    const e = await testEngine();
    const before = e.stats().liveTensors;
    const kept = e.tidy(() => {
      const a = e.fill([8], 2);
      const b = e.add(a, a);
      e.add(b, b);
      return { result: e.add(b, a) };
    });
    expect(e.stats().liveTensors).toBe(before + 1);
    expect(Array.from(await kept.result.data())).toEqual(new Array(8).fill(6));
    kept.result.dispose();
    expect(e.stats().liveTensors).toBe(before);
  });

  it('beginScope frees what async code created, except what end() keeps', async () => {
    const e = await testEngine();
    const before = e.stats().liveTensors;
    const scope = e.beginScope();
    const a = e.fill([4], 1);
    await a.data();
    const b = e.add(a, a);
    const param = e.param(e.fill([2], 0));
    scope.end({ b });
    expect(a.isDisposed).toBe(true);
    expect(b.isDisposed).toBe(false);
    expect(e.stats().liveTensors).toBe(before + 2);
    expect(() => scope.end()).toThrow('end() was called twice');
    b.dispose();
    param.dispose();
  });

  it('accumulates leaf gradients through shared inputs and across backward calls', async () => {
    const e = await testEngine();
    const x = e.param(e.tensor([1, 2, 3], [3]));
    // y = x + x (two uses of x), loss = Σ y with a probe that sends gy = 1 to y.
    const step = () =>
      e.tidy(() => {
        const y = record('twice', [x, x], e.add(x, x), (gy) => [gy, gy]);
        const loss = record('sum', [y], e.zeros([1]), () => [e.fill(y.shape, 1)]);
        loss.backward();
      });
    step();
    expect(Array.from(await x.grad!.data())).toEqual([2, 2, 2]);
    const before = e.stats().liveTensors; // x and x.grad
    step();
    expect(Array.from(await x.grad!.data())).toEqual([4, 4, 4]);
    expect(e.stats().liveTensors).toBe(before);
    x.dispose();
  });

  it('records nothing under noGrad or when no input requires grad', async () => {
    const e = await testEngine();
    const x = e.param(e.tensor([1], [1]));
    const c = e.tensor([1], [1]);
    const y = e.noGrad(() => record('id', [x], e.copy(x), (gy) => [gy]));
    const z = record('id', [c], e.copy(c), (gy) => [gy]);
    expect(y.node).toBeNull();
    expect(y.requiresGrad).toBe(false);
    expect(z.node).toBeNull();
    expect(() => z.backward()).toThrow(/does not depend on anything that requires grad/);
    for (const t of [x, c, y, z]) t.dispose();
  });

  it('rejects a backward that returns a wrongly shaped gradient', async () => {
    const e = await testEngine();
    const x = e.param(e.tensor([1, 2], [2]));
    const bad = record('bad', [x], e.zeros([1]), () => [e.zeros([3])]);
    expect(() => bad.backward()).toThrow('backward of bad: gradient of shape [3] for an input of shape [2]');
    bad.dispose();
    x.dispose();
  });
});

describe('device errors', () => {
  it('reports out-of-range allocations by shape before touching the GPU', async () => {
    const e = await testEngine();
    expect(() => e.empty([1 << 20, 1 << 10])).toThrow(/tensor \[1048576, 1024\] f32 needs 4294967296 bytes; the adapter binds at most/);
  });
});
