// The engine: one GPUDevice with its buffer pool, dispatcher, scopes, gradient mode and statistics.
// Runtime-agnostic: it is handed a GPUDevice (or a `GPU` to get one from) and never touches Node built-ins.
import { reverseTopological } from './autograd.ts';
import { BYTES_PER_ELEMENT, dtypeOf, typedArray, type AnyTypedArray, type DType } from './dtype.ts';
import { Dispatcher, type DispatchSpec, type KernelTiming } from './dispatch.ts';
import { BufferPool } from './pool.ts';
import { checkShape, sizeOf, Storage, Tensor, type Shape } from './tensor.ts';
import { checkTuning, checkTuningFits, DEFAULT_TUNING, type Tuning } from './tuning.ts';
import { shaderConstants, shaderSources } from '../shaders.gen.ts';

const { WORKGROUP_SIZE } = shaderConstants.core;

export interface EngineOptions {
  /** Where to get an adapter: `navigator.gpu` in Deno and browsers, the `webgpu` package's `create()` in Node. */
  gpu?: GPU;
  /** Use this device instead of requesting one (the engine then does not destroy it). */
  device?: GPUDevice;
  powerPreference?: GPUPowerPreference;
  /** Request timestamp-query when the adapter has it (default true): needed for kernel profiling. */
  timestamps?: boolean;
  /** Kernel shapes other than DEFAULT_TUNING's (src/engine/tuning.ts), as setTuning takes them; for benchmarks. */
  tuning?: Partial<Tuning>;
}

export interface EngineStats {
  liveTensors: number;
  /** Bytes of tensor data alive now (views share their storage's bytes). */
  liveBytes: number;
  peakLiveBytes: number;
  /** Bytes of all storage buffers the pool holds on the GPU, in use or free. */
  allocatedBytes: number;
  pooledBytes: number;
  buffers: number;
  pipelines: number;
  dispatches: number;
  submits: number;
}

export interface AdapterDescription {
  vendor: string;
  architecture: string;
  description: string;
}

type Scope = Set<Tensor>;

/** A tensor larger than one buffer binding of the adapter may be: smaller work (tiles, batches) may fit. */
export class BufferLimitError extends Error {
  constructor(
    message: string,
    readonly bytes: number,
    readonly limit: number,
  ) {
    super(message);
    this.name = 'BufferLimitError';
  }
}

/** Why a GPU device was lost: GPUDevice.lost's reason and message. */
export interface DeviceLoss {
  reason: string;
  message: string;
}

/** The GPU device is gone (a driver reset, a crash, destroy()): nothing more runs on it, and what it held is lost. */
export class DeviceLostError extends Error {
  override name = 'DeviceLostError';
  constructor(readonly loss: DeviceLoss) {
    super(`the GPU device was lost (${loss.reason}${loss.message ? `: ${loss.message}` : ''})`);
  }
}

export class Engine {
  readonly pool: BufferPool;
  readonly dispatcher: Dispatcher;
  /** False inside noGrad(): ops then record nothing. */
  gradEnabled = true;
  /** Debugging and tests: every new tensor starts NaN-filled (0xffffffff for integers), so unwritten elements show. */
  poison = false;
  private scopes: Scope[] = [];
  private liveTensors = 0;
  private liveBytes = 0;
  private peakLiveBytes = 0;
  /** Set once the device is lost: every later allocation, dispatch, readback or sync throws a DeviceLostError. */
  lost: DeviceLoss | null = null;
  private uncaptured: string[] = [];

  constructor(
    readonly device: GPUDevice,
    readonly adapter: AdapterDescription,
    private readonly ownsDevice: boolean,
    /**
     * The GPU object the device came from. Held for the engine's lifetime: Dawn's Node binding keeps polling its
     * instance, and crashes (freed mutex in ProcessEvents) once JavaScript has garbage-collected it.
     */
    readonly gpu: GPU | null = null,
  ) {
    this.dispatcher = new Dispatcher(device, shaderSources, () => this.pool.afterSubmit(), device.features.has('timestamp-query'));
    this.pool = new BufferPool(device, () => {});
    device.lost.then(({ reason, message }) => {
      this.lost ??= { reason, message };
    });
    device.addEventListener('uncapturederror', (e) => {
      this.uncaptured.push((e as GPUUncapturedErrorEvent).error.message);
    });
  }

  get adapterName(): string {
    return [this.adapter.vendor, this.adapter.architecture, this.adapter.description].filter(Boolean).join(' / ');
  }

  /**
   * Whether the adapter runs kernels on the CPU (lavapipe/llvmpipe, SwiftShader, WARP): there a workgroup is one
   * thread and its invocations SIMD lanes, so kernels that pick a layout per adapter (conv, reduce, softmax) take
   * the CPU's.
   */
  get cpuAdapter(): boolean {
    // Asked at every convolution, reduction and softmax dispatch: the adapter does not change, so it is worked out once.
    this.isCpuAdapter ??= this.adapter.architecture === 'software' || /llvmpipe|lavapipe|swiftshader|\bwarp\b/i.test(this.adapterName);
    return this.isCpuAdapter;
  }

  private isCpuAdapter: boolean | undefined;

  /** The kernel shapes dispatches use (frozen): DEFAULT_TUNING (src/engine/tuning.ts) unless setTuning changed them. */
  get tuning(): Readonly<Tuning> {
    return this.currentTuning;
  }

  /**
   * Changes some of the kernel shapes; returns the tuning it replaced. A bad key or value, or workgroups larger than
   * the device allows, throw and change nothing.
   */
  setTuning(changes: Partial<Tuning>): Readonly<Tuning> {
    const before = this.currentTuning;
    const next = { ...before, ...checkTuning(changes) };
    checkTuningFits(next, this.device.limits);
    this.currentTuning = Object.freeze(next);
    return before;
  }

  private currentTuning: Readonly<Tuning> = DEFAULT_TUNING;

  // ---- tensors -------------------------------------------------------------------------------------------------

  /**
   * A tensor holding `data`. Float32Array, Int32Array and Uint32Array keep their type (`dtype`, if given, must
   * agree); any other numbers (plain arrays, Float64Array, Uint8Array...) are converted to `dtype`, f32 by default.
   */
  tensor(data: ArrayLike<number>, shape: Shape, dtype?: DType): Tensor {
    checkShape(shape, 'tensor');
    const native = isNativeArray(data) ? data : null;
    if (native && dtype && dtypeOf(native) !== dtype) {
      throw new Error(`tensor: data is ${dtypeOf(native)} but dtype ${dtype} was asked for`);
    }
    const array = native ?? typedArray(dtype ?? 'f32', data);
    const kind = dtypeOf(array);
    if (array.length !== sizeOf(shape)) {
      throw new Error(`tensor: ${array.length} values do not fill shape [${shape.join(', ')}] (${sizeOf(shape)} elements)`);
    }
    const t = this.allocate(shape, kind, true);
    if (array.length > 0) this.device.queue.writeBuffer(t.storageFor('tensor').buffer, 0, array.buffer, array.byteOffset, array.byteLength);
    return t;
  }

  /** An uninitialized tensor (contents are whatever the pooled buffer held). */
  empty(shape: Shape, dtype: DType = 'f32'): Tensor {
    const t = this.allocate(shape, dtype, false);
    if (this.poison) this.fillBits(t, dtype === 'f32' ? 0x7fc00000 : 0x7fffffff);
    return t;
  }

  // Uploads (queue.writeBuffer) run before commands still being encoded, so uploaded tensors are never poisoned.
  private allocate(shape: Shape, dtype: DType, forUpload: boolean): Tensor {
    checkShape(shape, 'empty');
    const bytes = sizeOf(shape) * BYTES_PER_ELEMENT;
    const maxBinding = this.device.limits.maxStorageBufferBindingSize;
    if (bytes > maxBinding) {
      throw new BufferLimitError(`tensor [${shape.join(', ')}] ${dtype} needs ${bytes} bytes; the adapter binds at most ${maxBinding} bytes per buffer`, bytes, maxBinding);
    }
    this.checkAlive();
    const buffer = this.dispatcher.guarded(`allocating ${bytes} bytes for tensor [${shape.join(', ')}]`, () =>
      this.pool.acquire(Math.max(bytes, BYTES_PER_ELEMENT), `[${shape.join(',')}] ${dtype}`, forUpload),
    );
    const storage = new Storage(buffer, bytes);
    this.liveBytes += bytes;
    this.peakLiveBytes = Math.max(this.peakLiveBytes, this.liveBytes);
    return new Tensor(this, storage, [...shape], dtype);
  }

  /** A zero-filled tensor (cleared on the GPU). */
  zeros(shape: Shape, dtype: DType = 'f32'): Tensor {
    const t = this.empty(shape, dtype);
    if (t.size > 0) this.dispatcher.commandEncoder().clearBuffer(t.storageFor('zeros').buffer, 0, t.byteLength);
    return t;
  }

  /** A tensor filled with `value`. */
  fill(shape: Shape, value: number, dtype: DType = 'f32'): Tensor {
    const t = this.empty(shape, dtype);
    this.fillBits(t, new Uint32Array(typedArray(dtype, [value]).buffer)[0]);
    return t;
  }

  private fillBits(t: Tensor, bits: number): void {
    this.dispatch({ shader: 'core', entry: `fill_${t.dtype}`, bindings: { [`out_${t.dtype}`]: t, fillParams: { n: t.size, bits } }, workgroups: this.groups1D(t.size, WORKGROUP_SIZE) });
  }

  /**
   * A view of `t`'s storage with another shape, starting `elementOffset` elements in; no copy. The offset in bytes must
   * be a multiple of the adapter's storage-offset alignment (callers fall back to a copy otherwise). `dtype` reads the
   * same 32-bit words as another element type: kernels that only move bits bind every dtype as u32.
   */
  view(t: Tensor, shape: Shape, elementOffset = 0, dtype: DType = t.dtype): Tensor {
    checkShape(shape, 'view');
    const storage = t.storageFor('view');
    const byteOffset = t.byteOffset + elementOffset * BYTES_PER_ELEMENT;
    if (byteOffset % this.device.limits.minStorageBufferOffsetAlignment !== 0) {
      throw new Error(`view: byte offset ${byteOffset} is not a multiple of ${this.device.limits.minStorageBufferOffsetAlignment}`);
    }
    if (byteOffset + sizeOf(shape) * BYTES_PER_ELEMENT > storage.byteLength) {
      throw new Error(`view: [${shape.join(', ')}] at element ${elementOffset} does not fit in tensor [${t.shape.join(', ')}]`);
    }
    storage.refs++;
    return new Tensor(this, storage, [...shape], dtype, byteOffset);
  }

  /** Whether a view at this element offset is possible (else the caller copies). */
  canView(t: Tensor, elementOffset: number): boolean {
    return (t.byteOffset + elementOffset * BYTES_PER_ELEMENT) % this.device.limits.minStorageBufferOffsetAlignment === 0;
  }

  /** A copy of `t` into a fresh buffer (same shape and dtype). */
  copy(t: Tensor): Tensor {
    const out = this.empty(t.shape, t.dtype);
    if (t.size > 0) {
      const src = t.storageFor('copy');
      this.dispatcher.commandEncoder().copyBufferToBuffer(src.buffer, t.byteOffset, out.storageFor('copy').buffer, 0, t.byteLength);
    }
    return out;
  }

  /** Called by every Tensor constructor. */
  track(t: Tensor): void {
    this.liveTensors++;
    const scope = this.scopes[this.scopes.length - 1];
    if (scope) scope.add(t);
  }

  /** Called by Tensor.dispose(). */
  release(t: Tensor, storage: Storage): void {
    this.liveTensors--;
    if (t.grad) t.grad.dispose();
    if (--storage.refs === 0) {
      this.liveBytes -= storage.byteLength;
      this.pool.release(storage.buffer, this.dispatcher.hasPendingWork);
    }
  }

  async read(t: Tensor): Promise<AnyTypedArray> {
    this.checkAlive();
    const src = t.storageFor('read');
    const bytes = t.byteLength;
    if (bytes === 0) return typedArray(t.dtype, 0);
    const staging = this.device.createBuffer({ size: Math.ceil(bytes / 4) * 4, usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST });
    this.dispatcher.commandEncoder().copyBufferToBuffer(src.buffer, t.byteOffset, staging, 0, bytes);
    this.dispatcher.flush();
    try {
      await staging.mapAsync(GPUMapMode.READ);
    } catch (e) {
      this.checkAlive();
      throw e;
    }
    const out = typedArray(t.dtype, staging.getMappedRange().slice(0, bytes));
    staging.destroy();
    await this.checkErrors();
    return out;
  }

  // ---- dispatch --------------------------------------------------------------------------------------------------

  dispatch(spec: DispatchSpec): void {
    this.checkAlive();
    this.dispatcher.dispatch(spec);
  }

  /**
   * Workgroup counts covering `n` invocations of a 1D kernel with `size` threads per group. Beyond the 65535 groups a
   * dimension allows, the count folds into y: kernels compute their index as gid.x + gid.y * num_workgroups.x * size
   * (flat_index in shaders/common/index.wgsl, for size WORKGROUP_SIZE), and with size 1, one workgroup per row, the
   * workgroup's as wid.x + wid.y * num_workgroups.x (workgroup_index).
   */
  groups1D(n: number, size: number): [number, number] {
    const groups = Math.ceil(n / size);
    const max = this.device.limits.maxComputeWorkgroupsPerDimension;
    if (groups <= max) return [groups, 1];
    const y = Math.ceil(groups / max);
    return [Math.ceil(groups / y), y];
  }

  /** Submits recorded work. */
  flush(): void {
    this.dispatcher.flush();
  }

  /** Submits recorded work, waits for the GPU and throws any error it reported. */
  async sync(): Promise<void> {
    this.checkAlive();
    this.flush();
    await this.device.queue.onSubmittedWorkDone();
    await this.checkErrors();
  }

  /** Records GPU timestamps around every dispatch until stopped; returns per-dispatch times. */
  async profile(fn: () => void | Promise<void>): Promise<KernelTiming[]> {
    this.dispatcher.setProfiling(true);
    try {
      await fn();
      return await this.dispatcher.takeTimings();
    } finally {
      this.dispatcher.setProfiling(false);
    }
  }

  // ---- scopes and gradients ----------------------------------------------------------------------------------------

  /**
   * Runs `fn` and disposes every tensor it created except the ones it returns (found in arrays and plain objects)
   * and those passed to keep(). Returned tensors belong to the enclosing scope.
   */
  tidy<T>(fn: () => T): T {
    const scope = this.beginScope();
    let result: T;
    try {
      result = fn();
    } catch (e) {
      scope.end();
      throw e;
    }
    if (result instanceof Promise) {
      scope.end();
      throw new Error('tidy: the function returned a Promise; tidy only tracks synchronous work (use beginScope)');
    }
    scope.end(result);
    return result;
  }

  /**
   * A scope for code that awaits, where tidy cannot follow: every tensor created until `end(keep)` is disposed then,
   * except the tensors found in `keep` (arrays and plain objects are searched), which move to the enclosing scope.
   */
  beginScope(): { end: (keep?: unknown) => void } {
    const scope: Scope = new Set();
    this.scopes.push(scope);
    return {
      end: (keep?: unknown) => {
        const at = this.scopes.lastIndexOf(scope);
        if (at < 0) throw new Error('scope: end() was called twice');
        this.scopes.splice(at, 1);
        const survivors = new Set<Tensor>();
        collectTensors(keep, survivors);
        const parent = this.scopes[at - 1];
        for (const t of scope) {
          if (survivors.has(t)) parent?.add(t);
          else t.dispose();
        }
      },
    };
  }

  /** Exempts `t` from every open tidy scope (parameters, optimizer state, anything that must outlive a step). */
  keep<T extends Tensor>(t: T): T {
    for (const s of this.scopes) s.delete(t);
    return t;
  }

  /** Runs `fn` without recording gradients (inference). */
  noGrad<T>(fn: () => T): T {
    const before = this.gradEnabled;
    this.gradEnabled = false;
    try {
      return fn();
    } finally {
      this.gradEnabled = before;
    }
  }

  /** A trainable leaf: kept out of tidy scopes, requires grad. */
  param(t: Tensor): Tensor {
    t.requiresGrad = true;
    return this.keep(t);
  }

  /**
   * Backpropagates from the scalar `root`: every leaf with requiresGrad gets d(root)/d(leaf) added to its `.grad`.
   * Intermediate gradients are freed as soon as every consumer has been processed.
   */
  backward(root: Tensor): void {
    if (root.size !== 1) throw new Error(`backward: needs a scalar, got shape [${root.shape.join(', ')}]`);
    if (!root.requiresGrad) throw new Error('backward: the tensor does not depend on anything that requires grad');
    const order = reverseTopological(root);
    // Gradient of each non-leaf tensor not yet propagated, and how many entries hold each gradient tensor (a
    // backward may pass its gy straight through, as add does). Leaf gradients leave this bookkeeping: they are kept.
    const grads = new Map<Tensor, Tensor>();
    const holders = new Map<Tensor, number>();
    const leafGrads = new Set<Tensor>();
    const hold = (g: Tensor) => holders.set(g, (holders.get(g) ?? 0) + 1);
    const drop = (g: Tensor) => {
      const n = (holders.get(g) ?? 0) - 1;
      if (n > 0) holders.set(g, n);
      else {
        holders.delete(g);
        if (!leafGrads.has(g)) g.dispose();
      }
    };
    const accumulate = (target: Tensor, g: Tensor, op: string) => {
      if (g.shape.length !== target.shape.length || g.shape.some((d, i) => d !== target.shape[i])) {
        throw new Error(`backward of ${op}: gradient of shape [${g.shape.join(', ')}] for an input of shape [${target.shape.join(', ')}]`);
      }
      if (!target.node) {
        let next: Tensor;
        if (target.grad) {
          next = this.add(target.grad, g);
          leafGrads.delete(target.grad);
          target.grad.dispose();
        } else {
          next = holders.has(g) || leafGrads.has(g) ? this.copy(g) : g;
        }
        target.grad = this.keep(next);
        leafGrads.add(next);
        return;
      }
      const prev = grads.get(target);
      const next = prev ? this.add(prev, g) : g;
      if (prev) drop(prev);
      grads.set(target, next);
      hold(next);
    };
    // Everything made here that is not a leaf gradient is freed when the tidy ends, at the latest.
    this.noGrad(() =>
      this.tidy(() => {
        accumulate(root, this.fill(root.shape, 1), 'backward');
        for (const t of order) {
          const node = t.node;
          const gy = grads.get(t);
          if (!node || !gy) continue;
          grads.delete(t);
          const inputGrads = this.tidy(() => node.backward(gy));
          if (inputGrads.length !== node.inputs.length) {
            throw new Error(`backward of ${node.op}: returned ${inputGrads.length} gradients for ${node.inputs.length} inputs`);
          }
          node.inputs.forEach((input, i) => {
            const g = inputGrads[i];
            if (g && input.requiresGrad) accumulate(input, g, node.op);
          });
          drop(gy);
        }
      }),
    );
  }

  /** Elementwise a + b of two same-shape f32 tensors; the engine's own, for gradient accumulation. */
  add(a: Tensor, b: Tensor): Tensor {
    const out = this.empty(a.shape, 'f32');
    this.dispatch({ shader: 'core', entry: 'add', bindings: { a, b, sum: out, addParams: { n: out.size } }, workgroups: this.groups1D(out.size, WORKGROUP_SIZE) });
    return out;
  }

  // ---- lifecycle ------------------------------------------------------------------------------------------------------

  stats(): EngineStats {
    const pool = this.pool.stats();
    return {
      liveTensors: this.liveTensors,
      liveBytes: this.liveBytes,
      peakLiveBytes: this.peakLiveBytes,
      allocatedBytes: pool.allocatedBytes,
      pooledBytes: pool.pooledBytes,
      buffers: pool.buffers,
      pipelines: this.dispatcher.pipelineCount,
      dispatches: this.dispatcher.totalDispatches,
      submits: this.dispatcher.submits,
    };
  }

  resetPeak(): void {
    this.peakLiveBytes = this.liveBytes;
  }

  /** Destroys the device (when the engine created it): Dawn's Node binding keeps the process alive until then. */
  destroy(): void {
    this.flush();
    this.pool.trim();
    if (this.ownsDevice) this.device.destroy();
    this.lost ??= { reason: 'destroyed', message: 'engine.destroy() was called' };
  }

  private checkAlive(): void {
    if (this.lost) throw new DeviceLostError(this.lost);
  }

  private async checkErrors(): Promise<void> {
    await this.dispatcher.check();
    const first = this.uncaptured.shift();
    if (first) throw new Error(`GPU error: ${first}`);
  }
}

function isNativeArray(data: ArrayLike<number>): data is AnyTypedArray {
  return data instanceof Float32Array || data instanceof Int32Array || data instanceof Uint32Array;
}

function collectTensors(value: unknown, into: Set<Tensor>): void {
  if (value instanceof Tensor) into.add(value);
  else if (Array.isArray(value)) for (const v of value) collectTensors(v, into);
  else if (value && typeof value === 'object' && Object.getPrototypeOf(value) === Object.prototype) {
    for (const v of Object.values(value)) collectTensors(v, into);
  }
}

/** Gets a device from `options.device`, `options.gpu` or the runtime's `navigator.gpu`, and wraps it in an engine. */
export async function createEngine(options: EngineOptions = {}): Promise<Engine> {
  const engine = await engineFor(options);
  try {
    if (options.tuning) engine.setTuning(options.tuning);
  } catch (error) {
    engine.destroy(); // a bad tuning leaves no device behind
    throw error;
  }
  return engine;
}

async function engineFor(options: EngineOptions): Promise<Engine> {
  if (options.device) return new Engine(options.device, { vendor: '', architecture: '', description: options.device.label }, false);
  const gpu = options.gpu ?? (globalThis.navigator as Navigator | undefined)?.gpu;
  if (!gpu) {
    throw new Error("no WebGPU in this runtime: in Node use createNodeEngine() from 'wgseg/node'; in a browser enable WebGPU");
  }
  const adapter = await gpu.requestAdapter({ powerPreference: options.powerPreference ?? 'high-performance' });
  if (!adapter) throw new Error('no WebGPU adapter found: on a machine without a GPU run `npm run setup` to install a software Vulkan driver');
  const features: GPUFeatureName[] = [];
  if (options.timestamps !== false && adapter.features.has('timestamp-query')) features.push('timestamp-query');
  const l = adapter.limits;
  const device = await adapter.requestDevice({
    requiredFeatures: features,
    requiredLimits: {
      maxStorageBufferBindingSize: l.maxStorageBufferBindingSize,
      maxBufferSize: l.maxBufferSize,
      maxStorageBuffersPerShaderStage: l.maxStorageBuffersPerShaderStage,
      maxComputeWorkgroupStorageSize: l.maxComputeWorkgroupStorageSize,
      maxComputeInvocationsPerWorkgroup: l.maxComputeInvocationsPerWorkgroup,
      maxComputeWorkgroupSizeX: l.maxComputeWorkgroupSizeX,
      maxComputeWorkgroupSizeY: l.maxComputeWorkgroupSizeY,
    },
  });
  const info = adapter.info;
  return new Engine(device, { vendor: info.vendor, architecture: info.architecture, description: info.description }, true, gpu);
}
