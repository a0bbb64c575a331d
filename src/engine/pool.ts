// Storage buffers pooled by size class. A buffer released while commands that use it are still being encoded is
// parked until the encoder is submitted, for uploads only: queue.writeBuffer into it would run before those commands
// read it. GPU commands are ordered with the encoder, so kernel outputs may reuse a parked buffer at once.

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
  private parked = new Map<number, GPUBuffer[]>();
  private allocated = 0;
  private pooled = 0;
  private count = 0;

  constructor(
    private readonly device: GPUDevice,
    private readonly onAllocate: (bytes: number, label: string, buffer: GPUBuffer) => void,
  ) {}

  /** `forUpload`: the buffer will be filled by queue.writeBuffer, so it must not be one that pending commands use. */
  acquire(bytes: number, label: string, forUpload: boolean): GPUBuffer {
    const size = sizeClass(bytes);
    const list = (!forUpload && this.parked.get(size)?.length ? this.parked : this.free).get(size);
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
    push(inFlight ? this.parked : this.free, buffer);
  }

  /** Called right after a submit: parked buffers become reusable for uploads too. */
  afterSubmit(): void {
    for (const list of this.parked.values()) for (const b of list) push(this.free, b);
    this.parked.clear();
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
}

function push(lists: Map<number, GPUBuffer[]>, buffer: GPUBuffer): void {
  let list = lists.get(buffer.size);
  if (!list) lists.set(buffer.size, (list = []));
  list.push(buffer);
}
