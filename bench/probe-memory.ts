// `npx tsx bench/probe-memory.ts [--n N]`: what a memory-bound kernel's access pattern costs on this adapter. Each
// variant computes out = max(x, 0) over N floats (N·8 bytes moved) and is timed by wall clock over repeated
// submissions (the median of 7 after 2 warm-up runs). The variants differ only in how invocations map to elements:
//   scalar-1        one f32 per invocation
//   scalar-4-run    4 consecutive f32 per invocation (elementwise.wgsl's layout before vec4 paths)
//   scalar-4-strided  4 f32 per invocation, WORKGROUP_SIZE apart (neighbouring invocations read neighbouring words)
//   vec4-1          one vec4<f32> per invocation (array<vec4<f32>> bindings)
//   vec4-2          two consecutive vec4<f32> per invocation
//   vec4-4          four consecutive vec4<f32> per invocation
//   vec4-8          eight consecutive vec4<f32> per invocation
//   vec4-4-strided  four vec4<f32> per invocation, WORKGROUP_SIZE apart
import { parseArgs } from 'node:util';
import { create, globals } from 'webgpu';

Object.assign(globalThis, globals);
const { values } = parseArgs({ options: { n: { type: 'string', default: String(1 << 22) } } });
const N = Number(values.n);
const WG = 256;

interface Variant { name: string; body: string; perInvocation: number; vec4: boolean }
const variants: Variant[] = [
  { name: 'scalar-1', perInvocation: 1, vec4: false, body: 'let i = g; if (i < n) { out[i] = max(x[i], 0.0); }' },
  { name: 'scalar-4-run', perInvocation: 4, vec4: false, body: 'let f = g * 4u; for (var i = f; i < min(f + 4u, n); i++) { out[i] = max(x[i], 0.0); }' },
  { name: 'scalar-4-strided', perInvocation: 4, vec4: false, body: 'let f = wid * 1024u + lid; for (var k = 0u; k < 4u; k++) { let i = f + k * 256u; if (i < n) { out[i] = max(x[i], 0.0); } }' },
  { name: 'vec4-1', perInvocation: 4, vec4: true, body: 'let i = g; if (i < n / 4u) { out[i] = max(x[i], vec4(0.0)); }' },
  { name: 'vec4-2', perInvocation: 8, vec4: true, body: 'let f = g * 2u; for (var i = f; i < min(f + 2u, n / 4u); i++) { out[i] = max(x[i], vec4(0.0)); }' },
  { name: 'vec4-4', perInvocation: 16, vec4: true, body: 'let f = g * 4u; for (var i = f; i < min(f + 4u, n / 4u); i++) { out[i] = max(x[i], vec4(0.0)); }' },
  { name: 'vec4-8', perInvocation: 32, vec4: true, body: 'let f = g * 8u; for (var i = f; i < min(f + 8u, n / 4u); i++) { out[i] = max(x[i], vec4(0.0)); }' },
  { name: 'vec4-4-strided', perInvocation: 16, vec4: true, body: 'let f = wid * 1024u + lid; for (var k = 0u; k < 4u; k++) { let i = f + k * 256u; if (i < n / 4u) { out[i] = max(x[i], vec4(0.0)); } }' },
];

const gpu = create([]);
const adapter = await gpu.requestAdapter();
if (!adapter) throw new Error('probe-memory: no WebGPU adapter');
const device = await adapter.requestDevice();
const info = adapter.info;
const bytes = N * 4;
const usage = GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_DST | GPUBufferUsage.COPY_SRC;
const xBuf = device.createBuffer({ size: bytes, usage });
const outBuf = device.createBuffer({ size: bytes, usage });
device.queue.writeBuffer(xBuf, 0, Float32Array.from({ length: N }, (_, i) => (i % 7) - 3));
const nBuf = device.createBuffer({ size: 16, usage: GPUBufferUsage.UNIFORM | GPUBufferUsage.COPY_DST });
device.queue.writeBuffer(nBuf, 0, Uint32Array.of(N, 0, 0, 0));

console.log(`adapter: ${info.vendor} / ${info.architecture} / ${info.description}; N = ${N} floats`);
console.log('| variant | ms | GB/s (read + write) |');
console.log('|---|---|---|');
for (const v of variants) {
  const type = v.vec4 ? 'vec4<f32>' : 'f32';
  const code = `
@group(0) @binding(0) var<storage, read> x: array<${type}>;
@group(0) @binding(1) var<storage, read_write> out: array<${type}>;
@group(0) @binding(2) var<uniform> nParam: vec4<u32>;
@compute @workgroup_size(${WG})
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let n = nParam.x;
  let g = gid.x + gid.y * nwg.x * ${WG}u;
  let wid = wg.x + wg.y * nwg.x;
  ${v.body}
}`;
  const pipeline = device.createComputePipeline({ layout: 'auto', compute: { module: device.createShaderModule({ code }), entryPoint: 'main' } });
  const bind = device.createBindGroup({ layout: pipeline.getBindGroupLayout(0), entries: [xBuf, outBuf, nBuf].map((buffer, binding) => ({ binding, resource: { buffer } })) });
  const groups = Math.ceil(N / v.perInvocation / WG);
  const gx = Math.min(groups, 65535);
  const gy = Math.ceil(groups / gx);
  const run = async () => {
    const enc = device.createCommandEncoder();
    const pass = enc.beginComputePass();
    pass.setPipeline(pipeline);
    pass.setBindGroup(0, bind);
    pass.dispatchWorkgroups(gx, gy);
    pass.end();
    device.queue.submit([enc.finish()]);
    await device.queue.onSubmittedWorkDone();
  };
  for (let i = 0; i < 2; i++) await run();
  const times: number[] = [];
  for (let i = 0; i < 7; i++) {
    const t0 = performance.now();
    await run();
    times.push(performance.now() - t0);
  }
  const ms = times.sort((a, b) => a - b)[3];
  console.log(`| ${v.name} | ${ms.toFixed(2)} | ${((2 * bytes) / ms / 1e6).toFixed(2)} |`);
}
device.destroy();
