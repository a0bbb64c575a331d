// Reading a ZIP archive (PKWARE APPNOTE) in memory, pure TypeScript for every runtime: the end-of-central-directory
// record (ZIP64 too) locates the central directory, which lists each entry's name, sizes, CRC-32 and local header.
// Only stored (uncompressed) entries are read, which is how torch.save writes its archives; their CRC-32 is checked,
// so a damaged file is an error rather than wrong values.

export interface ZipEntry {
  name: string;
  /** 0: stored; 8: deflated (not read). */
  method: number;
  compressedSize: number;
  size: number;
  crc32: number;
  /** Offset of the entry's local header in the archive. */
  localHeader: number;
}

const EOCD = 0x06054b50;
const ZIP64_LOCATOR = 0x07064b50;
const ZIP64_EOCD = 0x06064b50;
const CENTRAL_HEADER = 0x02014b50;
const LOCAL_HEADER = 0x04034b50;
const MAX_COMMENT = 0xffff;

/** Whether `bytes` begins like a ZIP archive (a local file header, or the record of an empty archive). */
export const looksLikeZip = (bytes: Uint8Array): boolean =>
  bytes.length >= 4 && bytes[0] === 0x50 && bytes[1] === 0x4b && ((bytes[2] === 3 && bytes[3] === 4) || (bytes[2] === 5 && bytes[3] === 6));

/** The entries of an archive, by name; `what` names the file in errors. */
export class ZipArchive {
  readonly entries = new Map<string, ZipEntry>();
  private readonly view: DataView;

  constructor(
    readonly bytes: Uint8Array,
    readonly what: string,
  ) {
    this.view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    const { count, offset, size } = this.centralDirectory();
    let at = offset;
    for (let i = 0; i < count; i++) {
      if (at + 46 > offset + size || this.u32(at) !== CENTRAL_HEADER) throw this.error(`central directory entry ${i} of ${count} is damaged`);
      const nameLength = this.u16(at + 28);
      const extraLength = this.u16(at + 30);
      const commentLength = this.u16(at + 32);
      const name = new TextDecoder().decode(bytes.subarray(at + 46, at + 46 + nameLength));
      const entry: ZipEntry = {
        name, method: this.u16(at + 10), crc32: this.u32(at + 16), compressedSize: this.u32(at + 20), size: this.u32(at + 24),
        localHeader: this.u32(at + 42),
      };
      this.zip64Extra(entry, at + 46 + nameLength, extraLength);
      this.entries.set(name, entry);
      at += 46 + nameLength + extraLength + commentLength;
    }
  }

  /** The entry's contents (a view into the archive), checked against its CRC-32. */
  read(name: string): Uint8Array {
    const entry = this.entries.get(name);
    if (!entry) throw this.error(`has no entry ${name}`);
    if (entry.method !== 0) {
      throw this.error(`entry ${name} is compressed (method ${entry.method}); only stored entries are read, as torch.save writes them`);
    }
    const at = entry.localHeader;
    if (at + 30 > this.bytes.length || this.u32(at) !== LOCAL_HEADER) throw this.error(`the local header of ${name} is missing or damaged`);
    // The local header's extra field can differ from the central one (torch.save pads it to align the data).
    const start = at + 30 + this.u16(at + 26) + this.u16(at + 28);
    if (start + entry.compressedSize > this.bytes.length) throw this.error(`entry ${name} runs past the end of the file (truncated?)`);
    const data = this.bytes.subarray(start, start + entry.compressedSize);
    if (crc32(data) !== entry.crc32) throw this.error(`entry ${name} fails its CRC-32 check (the file is damaged)`);
    return data;
  }

  private error(message: string): Error {
    return new Error(`${this.what}: ZIP archive ${message}`);
  }

  private u16(at: number): number {
    return this.view.getUint16(at, true);
  }

  private u32(at: number): number {
    return this.view.getUint32(at, true);
  }

  private u64(at: number): number {
    const v = this.view.getBigUint64(at, true);
    if (v > BigInt(Number.MAX_SAFE_INTEGER)) throw this.error(`has a size or offset beyond 2^53 (${v})`);
    return Number(v);
  }

  /** The central directory's place and entry count, from the end records (searched for backwards past a comment). */
  private centralDirectory(): { count: number; offset: number; size: number } {
    const n = this.bytes.length;
    let eocd = -1;
    for (let at = n - 22; at >= Math.max(0, n - 22 - MAX_COMMENT); at--) {
      if (this.u32(at) === EOCD) {
        eocd = at;
        break;
      }
    }
    if (eocd < 0) throw this.error('has no end-of-central-directory record (the file is truncated or not a ZIP archive)');
    let count = this.u16(eocd + 10);
    let size = this.u32(eocd + 12);
    let offset = this.u32(eocd + 16);
    if (eocd >= 20 && this.u32(eocd - 20) === ZIP64_LOCATOR) {
      const record = this.u64(eocd - 12);
      if (record + 56 > n || this.u32(record) !== ZIP64_EOCD) throw this.error('has a damaged ZIP64 end-of-central-directory record');
      count = this.u64(record + 32);
      size = this.u64(record + 40);
      offset = this.u64(record + 48);
    }
    if (offset + size > n) throw this.error(`central directory (${size} bytes at ${offset}) runs past the end of the file (truncated?)`);
    return { count, offset, size };
  }

  /** Sizes and offsets of 0xFFFFFFFF are in the ZIP64 extra field (id 1), in this order, each 8 bytes. */
  private zip64Extra(entry: ZipEntry, from: number, length: number): void {
    const fields = (['size', 'compressedSize', 'localHeader'] as const).filter((f) => entry[f] === 0xffffffff);
    if (fields.length === 0) return;
    for (let at = from; at + 4 <= from + length; at += 4 + this.u16(at + 2)) {
      if (this.u16(at) !== 1) continue;
      fields.forEach((f, i) => (entry[f] = this.u64(at + 4 + 8 * i)));
      return;
    }
    throw this.error(`entry ${entry.name} lacks the ZIP64 extra field its sizes need`);
  }
}

let table: Uint32Array | null = null;

/** CRC-32 (ISO-HDLC, the ZIP and PNG one) of `data`. */
export function crc32(data: Uint8Array): number {
  if (!table) {
    table = new Uint32Array(256);
    for (let i = 0; i < 256; i++) {
      let c = i;
      for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
      table[i] = c >>> 0;
    }
  }
  let crc = 0xffffffff;
  for (let i = 0; i < data.length; i++) crc = table[(crc ^ data[i]) & 0xff] ^ (crc >>> 8);
  return (crc ^ 0xffffffff) >>> 0;
}
