// Storage buffers pooled by size class. A buffer released while commands that use it are still being encoded is
// parked until the encoder is submitted: queue.writeBuffer into a reused buffer would otherwise run before those
// commands read it.

const MIN_BYTES = 256;
export const STORAGE_USAGE = () => GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC | GPUBufferUsage.COPY_DST;

/** Size classes 2^k·{1, 1.25, 1.5, 1.75}: at most 25% over-allocation, few distinct sizes to reuse. */
export function sizeClass(bytes: number): number {
  if (bytes <= MIN_BYTES) return MIN_BYTES;
  const pow = 2 ** Math.floor(Math.log2(bytes));
  const step = pow / 4;
  return Math.ceil(bytes / step) * step;
}

export interface PoolStats {
  /** Bytes of all GPU buffers this pool created and has not destroyed. */
  allocatedBytes: number;
  /** Bytes of buffers sitting in the pool (free, or parked until the next submit). */
  pooledBytes: number;
  buffers: number;
}

export class BufferPool {
  private free = new Map<number, GPUBuffer[]>();
  private parked: GPUBuffer[] = [];
  private allocated = 0;
  private pooled = 0;
  private count = 0;

  constructor(
    private readonly device: GPUDevice,
    private readonly onAllocate: (bytes: number, label: string, buffer: GPUBuffer) => void,
  ) {}

  acquire(bytes: number, label: string): GPUBuffer {
    const size = sizeClass(bytes);
    const list = this.free.get(size);
    if (list && list.length > 0) {
      this.pooled -= size;
      return list.pop()!;
    }
    const buffer = this.device.createBuffer({ size, usage: STORAGE_USAGE(), label });
    this.onAllocate(size, label, buffer);
    this.allocated += size;
    this.count++;
    return buffer;
  }

  /** `inFlight`: the buffer may be referenced by commands not yet submitted. */
  release(buffer: GPUBuffer, inFlight: boolean): void {
    this.pooled += buffer.size;
    if (inFlight) this.parked.push(buffer);
    else this.pushFree(buffer);
  }

  /** Called right after a submit: parked buffers become reusable. */
  afterSubmit(): void {
    for (const b of this.parked) this.pushFree(b);
    this.parked.length = 0;
  }

  /** Destroys every free buffer (not parked ones, which commands may still read). */
  trim(): void {
    for (const list of this.free.values()) {
      for (const b of list) {
        this.allocated -= b.size;
        this.pooled -= b.size;
        this.count--;
        b.destroy();
      }
    }
    this.free.clear();
  }

  stats(): PoolStats {
    return { allocatedBytes: this.allocated, pooledBytes: this.pooled, buffers: this.count };
  }

  private pushFree(buffer: GPUBuffer): void {
    let list = this.free.get(buffer.size);
    if (!list) this.free.set(buffer.size, (list = []));
    list.push(buffer);
  }
}
