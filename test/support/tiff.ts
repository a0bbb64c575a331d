// A second, independent TIFF encoder for test fixtures: any sample type, LZW or deflate strips, horizontal
// differencing, either byte order, any description and resolution tags. It is what files from other tools look like.
import { deflateSync } from 'node:zlib';

export type Samples = Uint8Array | Int8Array | Uint16Array | Int16Array | Uint32Array | Int32Array | Float32Array;

export interface FixtureOptions {
  width: number;
  height: number;
  /** Interleaved samples per pixel (3 for RGB). */
  samples?: number;
  compression?: 'none' | 'lzw' | 'deflate';
  /** Horizontal differencing (TIFF predictor 2) before compression; integer samples only. */
  predictor?: boolean;
  bigEndian?: boolean;
  description?: string;
  /** [XResolution, YResolution, ResolutionUnit] as pixels per unit. */
  resolution?: [number, number, number];
  /** NewSubfileType per page (1 = reduced-resolution copy). */
  subfileTypes?: number[];
}

/** TIFF's LZW (MSB-first codes, clear code first); enough for fixtures under ~250 bytes, which never widen codes. */
export function lzwEncode(input: Uint8Array): Uint8Array {
  const out: number[] = [];
  let bits = 0;
  let nbits = 0;
  const emit = (code: number) => {
    bits = (bits << 9) | code;
    nbits += 9;
    while (nbits >= 8) {
      out.push((bits >>> (nbits - 8)) & 0xff);
      nbits -= 8;
    }
    bits &= (1 << nbits) - 1;
  };
  const table = new Map<string, number>();
  let next = 258;
  emit(256);
  let word = '';
  for (const byte of input) {
    const extended = word + String.fromCharCode(byte);
    if (word === '' || table.has(extended)) {
      word = extended;
      continue;
    }
    emit(word.length === 1 ? word.charCodeAt(0) : table.get(word)!);
    table.set(extended, next++);
    if (next >= 511) throw new Error('lzwEncode: fixture too large for 9-bit codes');
    word = String.fromCharCode(byte);
  }
  if (word !== '') emit(word.length === 1 ? word.charCodeAt(0) : table.get(word)!);
  emit(257);
  if (nbits > 0) out.push((bits << (8 - nbits)) & 0xff);
  return new Uint8Array(out);
}

function sampleType(a: Samples): { bits: number; format: number } {
  const bits = 8 * a.BYTES_PER_ELEMENT;
  const format = a instanceof Float32Array ? 3 : a instanceof Int8Array || a instanceof Int16Array || a instanceof Int32Array ? 2 : 1;
  return { bits, format };
}

/** Page bytes in the file's byte order, after the predictor. */
function pageBytes(page: Samples, o: FixtureOptions): Uint8Array {
  const samples = o.samples ?? 1;
  const values = Array.from(page as ArrayLike<number>);
  if (o.predictor) {
    for (let y = 0; y < o.height; y++) {
      for (let x = o.width - 1; x > 0; x--) {
        for (let s = 0; s < samples; s++) {
          const i = (y * o.width + x) * samples + s;
          values[i] -= values[i - samples];
        }
      }
    }
  }
  const size = page.BYTES_PER_ELEMENT;
  const view = new DataView(new ArrayBuffer(values.length * size));
  const le = !o.bigEndian;
  const { format } = sampleType(page);
  values.forEach((v, i) => {
    if (format === 3) view.setFloat32(i * 4, v, le);
    else if (size === 1) view.setUint8(i, v & 0xff);
    else if (size === 2) view.setUint16(i * 2, v & 0xffff, le);
    else view.setUint32(i * 4, v >>> 0, le);
  });
  return new Uint8Array(view.buffer);
}

/** A TIFF holding `pages` (each height·width·samples values, interleaved), one strip per page. */
export function tiffFixture(pages: Samples[], o: FixtureOptions): Uint8Array {
  const le = !o.bigEndian;
  const samples = o.samples ?? 1;
  const { bits, format } = sampleType(pages[0]);
  const compressionCode = { none: 1, lzw: 5, deflate: 8 }[o.compression ?? 'none'];
  const strips = pages.map((p) => {
    const raw = pageBytes(p, o);
    return o.compression === 'lzw' ? lzwEncode(raw) : o.compression === 'deflate' ? new Uint8Array(deflateSync(raw)) : raw;
  });
  const chunks: Uint8Array[] = [];
  let size = 8;
  const append = (bytes: Uint8Array) => {
    const at = size;
    chunks.push(bytes);
    size += bytes.length;
    if (size & 1) {
      chunks.push(new Uint8Array(1));
      size += 1;
    }
    return at;
  };
  const short = (n: number) => {
    const b = new DataView(new ArrayBuffer(2 * samples));
    for (let s = 0; s < samples; s++) b.setUint16(2 * s, n, le);
    return new Uint8Array(b.buffer);
  };
  const stripAt = strips.map(append);
  const descriptionAt = o.description === undefined ? 0 : append(new TextEncoder().encode(`${o.description}\0`));
  const rational = (v: number) => {
    const b = new DataView(new ArrayBuffer(8));
    b.setUint32(0, Math.round(v * 1000), le);
    b.setUint32(4, 1000, le);
    return append(new Uint8Array(b.buffer));
  };
  const resolutionAt = o.resolution ? [rational(o.resolution[0]), rational(o.resolution[1])] : [];
  const bitsAt = samples > 2 ? append(short(bits)) : 0;
  const formatAt = samples > 2 ? append(short(format)) : 0;

  const ifdAt: number[] = [];
  const ifds = pages.map((_, p) => {
    const entries: [number, number, number, number][] = [
      [254, 4, 1, o.subfileTypes?.[p] ?? 0],
      [256, 4, 1, o.width],
      [257, 4, 1, o.height],
      samples > 2 ? [258, 3, samples, bitsAt] : [258, 3, 1, bits],
      [259, 3, 1, compressionCode],
      [262, 3, 1, samples >= 3 ? 2 : 1],
      ...(o.description !== undefined && p === 0 ? [[270, 2, o.description.length + 1, descriptionAt] as [number, number, number, number]] : []),
      [273, 4, 1, stripAt[p]],
      [277, 3, 1, samples],
      [278, 4, 1, o.height],
      [279, 4, 1, strips[p].length],
      ...(o.resolution ? ([[282, 5, 1, resolutionAt[0]], [283, 5, 1, resolutionAt[1]], [296, 3, 1, o.resolution[2]]] as [number, number, number, number][]) : []),
      ...(o.predictor ? [[317, 3, 1, 2] as [number, number, number, number]] : []),
      samples > 2 ? [339, 3, samples, formatAt] : [339, 3, 1, format],
    ];
    const view = new DataView(new ArrayBuffer(2 + 12 * entries.length + 4));
    view.setUint16(0, entries.length, le);
    entries.forEach(([tag, type, count, value], i) => {
      view.setUint16(2 + 12 * i, tag, le);
      view.setUint16(4 + 12 * i, type, le);
      view.setUint32(6 + 12 * i, count, le);
      if (type === 3 && count === 1) view.setUint16(10 + 12 * i, value, le);
      else view.setUint32(10 + 12 * i, value, le);
    });
    ifdAt.push(append(new Uint8Array(view.buffer)));
    return view;
  });
  ifds.forEach((view, p) => view.setUint32(view.byteLength - 4, p + 1 < pages.length ? ifdAt[p + 1] : 0, le));

  const out = new Uint8Array(size);
  const header = new DataView(out.buffer);
  out.set(o.bigEndian ? [0x4d, 0x4d] : [0x49, 0x49]);
  header.setUint16(2, 42, le);
  header.setUint32(4, ifdAt[0], le);
  let at = 8;
  for (const c of chunks) {
    out.set(c, at);
    at += c.length;
  }
  return out;
}
