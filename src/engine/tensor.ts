// A tensor: an N-dimensional array in a GPU storage buffer (row-major, PyTorch/ONNX layout N,C,(D),H,W).
// Several tensors may share one storage (reshape and aligned leading-axis slices are views); the storage's buffer
// goes back to the pool when its last tensor is disposed.
import type { AnyTypedArray, DType } from './dtype.ts';
import { BYTES_PER_ELEMENT } from './dtype.ts';
import type { Engine } from './engine.ts';
import type { GradNode } from './autograd.ts';

export class Storage {
  refs = 1;
  constructor(
    readonly buffer: GPUBuffer,
    /** Bytes of the tensor data this storage was made for (the buffer may be larger: size classes). */
    readonly byteLength: number,
  ) {}
}

export type Shape = readonly number[];

export function sizeOf(shape: Shape): number {
  let n = 1;
  for (const d of shape) n *= d;
  return n;
}

export function stridesOf(shape: Shape): number[] {
  const s = new Array<number>(shape.length);
  let acc = 1;
  for (let i = shape.length - 1; i >= 0; i--) {
    s[i] = acc;
    acc *= shape[i];
  }
  return s;
}

export function checkShape(shape: Shape, what: string): void {
  for (const d of shape) {
    if (!Number.isInteger(d) || d < 0) throw new Error(`${what}: invalid shape [${shape.join(', ')}]`);
  }
}

let nextId = 1;

export class Tensor {
  readonly id = nextId++;
  readonly size: number;
  /** Set on leaves whose gradient is wanted (parameters), and on every tensor computed from one while recording. */
  requiresGrad = false;
  /** Accumulated gradient of a leaf after backward(). */
  grad: Tensor | null = null;
  /** The recorded op that produced this tensor (null for leaves and when nothing was recorded). */
  node: GradNode | null = null;
  private storage: Storage | null;

  constructor(
    readonly engine: Engine,
    storage: Storage,
    readonly shape: Shape,
    readonly dtype: DType,
    /** Offset of element 0 in the storage buffer, in bytes (non-zero only for slice views). */
    readonly byteOffset = 0,
  ) {
    this.storage = storage;
    this.size = sizeOf(shape);
    engine.track(this);
  }

  get rank(): number {
    return this.shape.length;
  }

  get strides(): number[] {
    return stridesOf(this.shape);
  }

  get byteLength(): number {
    return this.size * BYTES_PER_ELEMENT;
  }

  get isDisposed(): boolean {
    return this.storage === null;
  }

  /** The storage, for views and the engine; throws with `what` named if the tensor was disposed. */
  storageFor(what: string): Storage {
    if (!this.storage) throw new Error(`${what}: tensor #${this.id} [${this.shape.join(', ')}] ${this.dtype} was disposed`);
    return this.storage;
  }

  /** The buffer range a shader binds. */
  bufferBinding(what: string): GPUBufferBinding {
    const s = this.storageFor(what);
    return { buffer: s.buffer, offset: this.byteOffset, size: Math.max(BYTES_PER_ELEMENT, this.byteLength) };
  }

  /** Reads the tensor back to the CPU (submits pending work first). */
  async data(): Promise<AnyTypedArray> {
    return this.engine.read(this);
  }

  /** The value of a one-element tensor. */
  async item(): Promise<number> {
    if (this.size !== 1) throw new Error(`item: tensor has shape [${this.shape.join(', ')}], expected one element`);
    return (await this.data())[0];
  }

  /** Reverse-mode autodiff from this scalar: leaves with requiresGrad receive (accumulate) `.grad`. */
  backward(): void {
    this.engine.backward(this);
  }

  dispose(): void {
    if (!this.storage) return;
    this.engine.release(this, this.storage);
    this.storage = null;
    this.node = null;
  }

  toString(): string {
    return `Tensor#${this.id}[${this.shape.join(', ')}] ${this.dtype}${this.isDisposed ? ' (disposed)' : ''}`;
  }
}
