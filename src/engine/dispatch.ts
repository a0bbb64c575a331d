// Kernel dispatch: compiled pipelines cached by (shader, entry point, override constants); bind groups built from the
// reflected layout and checked by name against what the TypeScript side binds; every dispatch recorded into one open
// command encoder that is submitted only when work must reach the GPU (a readback, a full batch, an explicit flush).
import { packUniform, reflectShader, type EntryInfo, type UniformValues } from './reflect.ts';
import { Tensor } from './tensor.ts';

export type Workgroups = readonly [number, number?, number?];

/**
 * The device could not allocate what a creation asked for (WebGPU's out-of-memory error scope): the work may fit in
 * smaller pieces once what it held is freed. Reported when the engine next checks for errors.
 */
export class OutOfMemoryError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'OutOfMemoryError';
  }
}

export interface DispatchSpec {
  shader: string;
  entry?: string;
  /** WGSL `override` constants; part of the pipeline cache key, so keep them to what changes the code. */
  constants?: Record<string, number>;
  /** Storage arrays get tensors, uniform structs get `{member: value}` objects; matched by WGSL variable name. */
  bindings: Record<string, Tensor | UniformValues>;
  workgroups: Workgroups;
  /** Name shown in profiles; defaults to shader.entry. */
  label?: string;
  /**
   * The floating-point operations the dispatch does (2 per multiply-add, padding taps included), for profiles'
   * GFLOP/s; declared by the convolution family and matmul, which do nearly all of a step's arithmetic.
   */
  flops?: number;
}

interface Pipeline {
  pipeline: GPUComputePipeline;
  layout: GPUBindGroupLayout;
  info: EntryInfo;
}

export interface KernelTiming {
  label: string;
  ms: number;
  /** The dispatch's declared flops, 0 where it declares none. */
  flops: number;
}

/** Dispatches per command buffer before an automatic submit (bounds the uniform arena and the query set). */
const MAX_DISPATCHES_PER_SUBMIT = 256;

/**
 * The file and line that line `line` (1-based) of `shader`'s embedded source comes from: the shader's own file, or a
 * file of shaders/common/ that scripts/embed-shaders.ts appended behind a `// #included "common/NAME.wgsl"` marker.
 */
export function sourceLocation(shader: string, source: string, line: number): string {
  const lines = source.split('\n');
  for (let i = Math.min(line, lines.length) - 1; i >= 0; i--) {
    const included = /^\/\/ #included "(.+)"$/.exec(lines[i]);
    if (included) return `shaders/${included[1]}:${line - i - 1}`;
  }
  return `shaders/${shader}.wgsl:${line}`;
}

/** A compiler message with its `:line:column` positions (Tint's, and naga's `wgsl:line:column`) in source files. */
export function locateMessage(shader: string, source: string, message: string): string {
  return message.replace(/(^|\s|wgsl):(\d+):(\d+)\b/gm, (_, before: string, line: string, column: string) =>
    `${before === 'wgsl' ? '' : before}${sourceLocation(shader, source, Number(line))}:${column}`);
}

export class Dispatcher {
  private reflections = new Map<string, Map<string, EntryInfo>>();
  private modules = new Map<string, GPUShaderModule>();
  private pipelines = new Map<string, Pipeline>();
  private encoder: GPUCommandEncoder | null = null;
  private pass: GPUComputePassEncoder | null = null;
  private dispatches = 0;
  private readonly uniformAlign: number;
  private readonly arena: GPUBuffer;
  private readonly arenaData: ArrayBuffer;
  private readonly arenaView: DataView;
  private arenaUsed = 0;
  /** Set while profiling: one pass per dispatch with timestamps. */
  private profiling: { querySet: GPUQuerySet; labels: { label: string; flops: number }[] } | null = null;
  private pendingTimings: Promise<KernelTiming[]>[] = [];
  private readonly deferred: Promise<Error | null>[] = [];
  submits = 0;
  totalDispatches = 0;

  constructor(
    private readonly device: GPUDevice,
    private readonly sources: Readonly<Record<string, string>>,
    private readonly onSubmit: () => void,
    readonly canTimestamp: boolean,
  ) {
    this.uniformAlign = device.limits.minUniformBufferOffsetAlignment;
    const arenaBytes = MAX_DISPATCHES_PER_SUBMIT * 256;
    this.arena = device.createBuffer({ size: arenaBytes, usage: GPUBufferUsage.UNIFORM | GPUBufferUsage.COPY_DST, label: 'uniform arena' });
    this.arenaData = new ArrayBuffer(arenaBytes);
    this.arenaView = new DataView(this.arenaData);
  }

  get pipelineCount(): number {
    return this.pipelines.size;
  }

  get hasPendingWork(): boolean {
    return this.encoder !== null;
  }

  /** The reflected bindings of an entry point (for tests and error messages). */
  entryInfo(shader: string, entry = 'main'): EntryInfo {
    let entries = this.reflections.get(shader);
    if (!entries) {
      const source = this.sources[shader];
      if (source === undefined) throw new Error(`no shader named '${shader}' (is shaders/${shader}.wgsl embedded? run npm run shaders)`);
      entries = reflectShader(shader, source);
      this.reflections.set(shader, entries);
    }
    const info = entries.get(entry);
    if (!info) throw new Error(`shader ${shader} has no compute entry point '${entry}' (has: ${[...entries.keys()].join(', ')})`);
    return info;
  }

  dispatch(spec: DispatchSpec): void {
    const entry = spec.entry ?? 'main';
    const { pipeline, layout, info } = this.pipelineFor(spec.shader, entry, spec.constants ?? {});
    const where = `shader ${spec.shader}.${entry}`;
    const [x, y = 1, z = 1] = spec.workgroups;
    const maxGroups = this.device.limits.maxComputeWorkgroupsPerDimension;
    if (x > maxGroups || y > maxGroups || z > maxGroups) {
      throw new Error(`${where}: dispatch of ${x}x${y}x${z} workgroups exceeds the adapter's ${maxGroups} per dimension`);
    }

    if (this.dispatches >= MAX_DISPATCHES_PER_SUBMIT) this.flush();
    const entries: GPUBindGroupEntry[] = [];
    const writable: { name: string; buffer: GPUBuffer; start: number; end: number }[] = [];
    const bound: { name: string; buffer: GPUBuffer; start: number; end: number }[] = [];
    const unused = new Set(Object.keys(spec.bindings));
    for (const b of info.bindings) {
      const value = spec.bindings[b.name];
      unused.delete(b.name);
      if (value === undefined) throw new Error(`${where}: binding '${b.name}' (@binding(${b.binding})) was not given`);
      if (b.kind === 'storage') {
        if (!(value instanceof Tensor)) throw new Error(`${where}: binding '${b.name}' is a storage array and needs a tensor`);
        if (value.dtype !== b.element) {
          throw new Error(`${where}: binding '${b.name}' is array<${b.element}> but was given a ${value.dtype} tensor [${value.shape.join(', ')}]`);
        }
        if (value.size % b.lanes !== 0) {
          throw new Error(`${where}: binding '${b.name}' is array<vec4<${b.element}>> and needs a multiple of 4 elements, got [${value.shape.join(', ')}]`);
        }
        const resource = value.bufferBinding(`${where}: binding '${b.name}'`);
        const range = { name: b.name, buffer: resource.buffer, start: resource.offset ?? 0, end: (resource.offset ?? 0) + (resource.size ?? 0) };
        (b.writable ? writable : bound).push(range);
        entries.push({ binding: b.binding, resource });
      } else {
        if (value instanceof Tensor) throw new Error(`${where}: binding '${b.name}' is a uniform struct and needs {member: value}, not a tensor`);
        const slot = Math.ceil(b.size / this.uniformAlign) * this.uniformAlign;
        if (this.arenaUsed + slot > this.arenaData.byteLength) this.flush();
        packUniform(info, b, value, this.arenaView, this.arenaUsed);
        entries.push({ binding: b.binding, resource: { buffer: this.arena, offset: this.arenaUsed, size: b.size } });
        this.arenaUsed += slot;
      }
    }
    if (unused.size > 0) throw new Error(`${where}: has no binding named ${[...unused].map((n) => `'${n}'`).join(', ')}`);
    for (const w of writable) {
      for (const o of [...writable, ...bound]) {
        if (o !== w && o.buffer === w.buffer && o.start < w.end && w.start < o.end) {
          throw new Error(`${where}: binding '${w.name}' is written but shares memory with binding '${o.name}'`);
        }
      }
    }
    if (x === 0 || y === 0 || z === 0) return;

    const bindGroup = this.device.createBindGroup({ layout, entries });
    const label = spec.label ?? `${spec.shader}.${entry}`;
    const pass = this.beginPass(label, spec.flops ?? 0);
    pass.setPipeline(pipeline);
    pass.setBindGroup(0, bindGroup);
    pass.dispatchWorkgroups(x, y, z);
    if (this.profiling) this.endPass();
    this.dispatches++;
    this.totalDispatches++;
  }

  /** The open encoder outside any compute pass, for copies and clears. */
  commandEncoder(): GPUCommandEncoder {
    this.endPass();
    if (!this.encoder) this.encoder = this.device.createCommandEncoder();
    return this.encoder;
  }

  /** Submits everything recorded so far. */
  flush(): void {
    if (!this.encoder) return;
    this.endPass();
    const encoder = this.encoder;
    let readTimings: (() => Promise<KernelTiming[]>) | null = null;
    if (this.profiling && this.profiling.labels.length > 0) readTimings = this.resolveTimings(encoder);
    if (this.arenaUsed > 0) this.device.queue.writeBuffer(this.arena, 0, this.arenaData, 0, this.arenaUsed);
    this.device.queue.submit([encoder.finish()]);
    this.submits++;
    this.encoder = null;
    this.dispatches = 0;
    this.arenaUsed = 0;
    if (readTimings) this.pendingTimings.push(readTimings());
    this.onSubmit();
  }

  /** Starts (or stops) recording GPU timestamps around every dispatch; needs the timestamp-query feature. */
  setProfiling(on: boolean): void {
    this.flush();
    if (on && !this.canTimestamp) throw new Error('profiling: this device was created without the timestamp-query feature');
    if (this.profiling) this.profiling.querySet.destroy();
    this.profiling = on ? { querySet: this.device.createQuerySet({ type: 'timestamp', count: 2 * MAX_DISPATCHES_PER_SUBMIT }), labels: [] } : null;
  }

  /** GPU time of every dispatch since profiling started or since the last call. */
  async takeTimings(): Promise<KernelTiming[]> {
    this.flush();
    const all = (await Promise.all(this.pendingTimings.splice(0))).flat();
    return all;
  }

  /**
   * Runs `create` inside validation and out-of-memory error scopes; a failure surfaces at the next check(), its
   * validation message passed through `describe` first.
   */
  guarded<T>(what: string, create: () => T, describe: (message: string) => string = (m) => m): T {
    this.device.pushErrorScope('out-of-memory');
    this.device.pushErrorScope('validation');
    const result = create();
    const validation = this.device.popErrorScope();
    const oom = this.device.popErrorScope();
    this.deferred.push(
      Promise.all([validation, oom]).then(([v, o]) => (o ? new OutOfMemoryError(`${what}: out of GPU memory (${o.message})`) : v ? new Error(`${what}: ${describe(v.message)}`) : null)),
    );
    return result;
  }

  /** Throws the first error that a guarded creation reported (an OutOfMemoryError where the device ran out). */
  async check(): Promise<void> {
    const errors = await Promise.all(this.deferred.splice(0));
    const first = errors.find((m) => m !== null);
    if (first) throw first;
  }

  private pipelineFor(shader: string, entry: string, constants: Record<string, number>): Pipeline {
    const keys = Object.keys(constants).sort();
    const key = `${shader}|${entry}|${keys.map((k) => `${k}=${constants[k]}`).join(',')}`;
    let p = this.pipelines.get(key);
    if (p) return p;
    const info = this.entryInfo(shader, entry);
    let module = this.modules.get(shader);
    if (!module) {
      const code = this.sources[shader];
      module = this.guarded(`shader ${shader}`, () => this.device.createShaderModule({ code, label: shader }), (m) => locateMessage(shader, code, m));
      this.modules.set(shader, module);
    }
    const layout = this.device.createBindGroupLayout({
      label: `${shader}.${entry}`,
      entries: info.bindings.map((b) => ({
        binding: b.binding,
        visibility: GPUShaderStage.COMPUTE,
        buffer: { type: b.kind === 'uniform' ? 'uniform' : b.writable ? 'storage' : 'read-only-storage' },
      })),
    });
    const pipeline = this.guarded(`pipeline ${key}`, () =>
      this.device.createComputePipeline({
        label: key,
        layout: this.device.createPipelineLayout({ bindGroupLayouts: [layout] }),
        compute: { module: module!, entryPoint: entry, constants },
      }),
    );
    p = { pipeline, layout, info };
    this.pipelines.set(key, p);
    return p;
  }

  private beginPass(label: string, flops: number): GPUComputePassEncoder {
    if (this.pass) return this.pass;
    if (!this.encoder) this.encoder = this.device.createCommandEncoder();
    if (this.profiling) {
      const i = this.profiling.labels.length;
      this.profiling.labels.push({ label, flops });
      this.pass = this.encoder.beginComputePass({
        timestampWrites: { querySet: this.profiling.querySet, beginningOfPassWriteIndex: 2 * i, endOfPassWriteIndex: 2 * i + 1 },
      });
    } else {
      this.pass = this.encoder.beginComputePass();
    }
    return this.pass;
  }

  private endPass(): void {
    if (this.pass) {
      this.pass.end();
      this.pass = null;
    }
  }

  private resolveTimings(encoder: GPUCommandEncoder): () => Promise<KernelTiming[]> {
    const { querySet, labels } = this.profiling!;
    const count = labels.length * 2;
    const resolve = this.device.createBuffer({ size: count * 8, usage: GPUBufferUsage.QUERY_RESOLVE | GPUBufferUsage.COPY_SRC });
    const read = this.device.createBuffer({ size: count * 8, usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST });
    encoder.resolveQuerySet(querySet, 0, count, resolve, 0);
    encoder.copyBufferToBuffer(resolve, 0, read, 0, count * 8);
    const names = labels.splice(0);
    return async () => {
      await read.mapAsync(GPUMapMode.READ);
      const t = new BigInt64Array(read.getMappedRange().slice(0));
      read.destroy();
      resolve.destroy();
      return names.map(({ label, flops }, i) => ({ label, flops, ms: Number(t[2 * i + 1] - t[2 * i]) / 1e6 }));
    };
  }
}

