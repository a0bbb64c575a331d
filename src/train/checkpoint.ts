// Checkpoints in the safetensors format (huggingface/safetensors), pure TypeScript for every runtime: an 8-byte
// little-endian header length, a JSON header {name: {dtype, shape, data_offsets: [begin, end]}, __metadata__: {string:
// string}} padded with spaces to a multiple of 8 bytes, then the raw little-endian tensor data. Every WebGPU platform
// is little-endian, so typed arrays are copied as they are. Model files load when they hold F32/I32/U32 tensors;
// readSafetensors reads every dtype, for files from PyTorch's `safetensors.torch.save_file` (see pytorch.ts).
import type { Tensor } from '../engine/tensor.ts';
import type { Adam } from '../kernels/optim.ts';
import type { InstanceModel } from '../models/model.ts';

/** A tensor's values on the CPU; its safetensors dtype follows from the array type. */
export interface HostTensor {
  shape: number[];
  data: Float32Array | Int32Array | Uint32Array;
}

export interface Safetensors {
  tensors: Map<string, HostTensor>;
  metadata: Record<string, string>;
}

const DTYPES = { F32: Float32Array, I32: Int32Array, U32: Uint32Array } as const;
type SafetensorsDType = keyof typeof DTYPES;

function dtypeName(data: HostTensor['data']): SafetensorsDType {
  if (data instanceof Float32Array) return 'F32';
  if (data instanceof Int32Array) return 'I32';
  return 'U32';
}

const product = (shape: readonly number[]) => shape.reduce((a, b) => a * b, 1);

/** Tensors in name order (a stable file for the same content), data packed without gaps. */
export function encodeSafetensors(tensors: ReadonlyMap<string, HostTensor>, metadata: Record<string, string> = {}): Uint8Array {
  const names = [...tensors.keys()].sort();
  const header: Record<string, unknown> = {};
  if (Object.keys(metadata).length > 0) header.__metadata__ = metadata;
  let offset = 0;
  for (const name of names) {
    const { shape, data } = tensors.get(name)!;
    if (data.length !== product(shape)) {
      throw new Error(`safetensors: tensor "${name}" has ${data.length} values for shape [${shape.join(', ')}]`);
    }
    header[name] = { dtype: dtypeName(data), shape, data_offsets: [offset, offset + data.byteLength] };
    offset += data.byteLength;
  }
  const json = new TextEncoder().encode(JSON.stringify(header));
  const headerLength = Math.ceil(json.length / 8) * 8;
  const bytes = new Uint8Array(8 + headerLength + offset);
  new DataView(bytes.buffer).setBigUint64(0, BigInt(headerLength), true);
  bytes.set(json, 8);
  bytes.fill(0x20, 8 + json.length, 8 + headerLength);
  let at = 8 + headerLength;
  for (const name of names) {
    const { data } = tensors.get(name)!;
    bytes.set(new Uint8Array(data.buffer, data.byteOffset, data.byteLength), at);
    at += data.byteLength;
  }
  return bytes;
}

/** A tensor of a safetensors file as stored: its dtype name, shape and little-endian bytes. */
export interface SafetensorsEntry {
  dtype: string;
  shape: number[];
  bytes: Uint8Array<ArrayBuffer>;
}

/** Bytes per value of the safetensors dtypes. */
export const safetensorsItemSizes: Readonly<Record<string, number>> = {
  F64: 8, F32: 4, F16: 2, BF16: 2, I64: 8, I32: 4, I16: 2, I8: 1, U64: 8, U32: 4, U16: 2, U8: 1, BOOL: 1,
};

const list = (names: string[]) => (names.length > 1 ? `${names.slice(0, -1).join(', ')} and ${names.at(-1)}` : names.join(''));

/**
 * Parses a safetensors file whose tensors have the dtypes of `itemSizes` (name → bytes per value), checking what the
 * reference implementation checks: sizes, offsets, full coverage. Each entry's bytes are a fresh, aligned copy.
 */
export function readSafetensors(
  file: Uint8Array, itemSizes: Readonly<Record<string, number>> = safetensorsItemSizes,
): { entries: Map<string, SafetensorsEntry>; metadata: Record<string, string> } {
  // A plain view: a Node Buffer's slice() would share memory where a copy is needed below.
  const bytes = new Uint8Array(file.buffer, file.byteOffset, file.byteLength);
  if (bytes.length < 8) throw new Error(`safetensors: ${bytes.length} bytes is too short for a header`);
  const headerLength = Number(new DataView(bytes.buffer, bytes.byteOffset, 8).getBigUint64(0, true));
  if (headerLength > bytes.length - 8) {
    throw new Error(`safetensors: the header claims ${headerLength} bytes but the file has ${bytes.length - 8} after the length`);
  }
  let header: Record<string, unknown>;
  try {
    header = JSON.parse(new TextDecoder().decode(bytes.subarray(8, 8 + headerLength)));
  } catch (e) {
    throw new Error(`safetensors: the header is not JSON (${(e as Error).message})`);
  }
  if (!header || typeof header !== 'object' || Array.isArray(header)) throw new Error('safetensors: the header is not a JSON object');
  const data = bytes.subarray(8 + headerLength);
  const { __metadata__: rawMetadata = {}, ...fields } = header;
  const metadata = rawMetadata as Record<string, unknown>;
  for (const [key, value] of Object.entries(metadata)) {
    if (typeof value !== 'string') throw new Error(`safetensors: metadata "${key}" is not a string`);
  }
  const entries = new Map<string, SafetensorsEntry>();
  const spans: [number, number][] = [];
  for (const [name, entry] of Object.entries(fields)) {
    const { dtype, shape, data_offsets: offsets } = entry as { dtype: string; shape: number[]; data_offsets: [number, number] };
    if (!Object.hasOwn(itemSizes, dtype)) throw new Error(`safetensors: tensor "${name}" has dtype ${dtype}; only ${list(Object.keys(itemSizes))} are read`);
    if (!Array.isArray(shape) || !shape.every((d) => Number.isInteger(d) && d >= 0)) {
      throw new Error(`safetensors: tensor "${name}" has an invalid shape ${JSON.stringify(shape)}`);
    }
    const size = product(shape) * itemSizes[dtype];
    const [begin, end] = Array.isArray(offsets) ? offsets : [NaN, NaN];
    if (!(Number.isInteger(begin) && Number.isInteger(end) && begin >= 0 && end <= data.length && end - begin === size)) {
      throw new Error(
        `safetensors: tensor "${name}" [${shape.join(', ')}] ${dtype} has data_offsets ${JSON.stringify(offsets)} ` +
          `(needs ${size} bytes within the ${data.length} data bytes)`,
      );
    }
    spans.push([begin, end]);
    // slice() copies into a fresh, aligned buffer: the data section of a file need not start 4-byte aligned.
    entries.set(name, { dtype, shape, bytes: data.slice(begin, end) });
  }
  spans.sort((a, b) => a[0] - b[0]);
  let covered = 0;
  for (const [begin, end] of spans) {
    if (begin !== covered) throw new Error(`safetensors: tensor data overlaps or leaves a gap at byte ${covered}`);
    covered = end;
  }
  if (covered !== data.length) throw new Error(`safetensors: ${data.length - covered} bytes after the last tensor`);
  return { entries, metadata: metadata as Record<string, string> };
}

/** Parses a safetensors file of F32, I32 and U32 tensors (what wgseg writes), checked as readSafetensors does. */
export function decodeSafetensors(file: Uint8Array): Safetensors {
  const { entries, metadata } = readSafetensors(file, { F32: 4, I32: 4, U32: 4 });
  const tensors = new Map<string, HostTensor>();
  for (const [name, { dtype, shape, bytes }] of entries) tensors.set(name, { shape, data: new DTYPES[dtype as SafetensorsDType](bytes.buffer) });
  return { tensors, metadata };
}

/** Every tensor's values, read back from the GPU. */
export async function readTensors(tensors: ReadonlyMap<string, Tensor>): Promise<Map<string, HostTensor>> {
  const out = new Map<string, HostTensor>();
  for (const [name, t] of tensors) out.set(name, { shape: [...t.shape], data: await t.data() });
  return out;
}

/**
 * Overwrites each tensor of `targets` with the saved values of the same name, after checking that both hold exactly
 * the same names, shapes and dtypes; `what` names the source in errors ("run/last.safetensors").
 */
export function writeTensors(targets: ReadonlyMap<string, Tensor>, saved: ReadonlyMap<string, HostTensor>, what: string): void {
  const problems: string[] = [];
  const missing = [...targets.keys()].filter((n) => !saved.has(n));
  const unexpected = [...saved.keys()].filter((n) => !targets.has(n));
  if (missing.length) problems.push(`missing ${missing.join(', ')}`);
  if (unexpected.length) problems.push(`unexpected ${unexpected.join(', ')}`);
  for (const [name, t] of targets) {
    const s = saved.get(name);
    if (!s) continue;
    const dtype = dtypeName(s.data).toLowerCase();
    if (s.shape.length !== t.shape.length || s.shape.some((d, i) => d !== t.shape[i]) || dtype !== t.dtype) {
      problems.push(`${name} is [${s.shape.join(', ')}] ${dtype}, the model has [${t.shape.join(', ')}] ${t.dtype}`);
    }
  }
  if (problems.length) throw new Error(`${what} does not fit the model: ${problems.join('; ')}`);
  const e = [...targets.values()][0]?.engine;
  if (!e) return;
  // Commands already recorded must see the old values: submit them, then queue the writes behind them.
  e.flush();
  for (const [name, t] of targets) {
    const { data } = saved.get(name)!;
    if (data.byteLength > 0) e.device.queue.writeBuffer(t.storageFor('load checkpoint').buffer, t.byteOffset, data.buffer, data.byteOffset, data.byteLength);
  }
}

/** The model's tensors by checkpoint name. */
export const modelTensors = (model: InstanceModel): Map<string, Tensor> =>
  new Map([...model.namedTensors()].map(([name, { tensor }]) => [name, tensor]));

/** Metadata of a weights file: the model's kind and config, so the file alone can rebuild the model. */
export const modelMetadata = (model: InstanceModel, extra: Record<string, string> = {}): Record<string, string> => ({
  kind: model.kind, config: JSON.stringify(model.config), ...extra,
});

/** The model's weights file, read back from the GPU. */
export async function encodeModel(model: InstanceModel, extra: Record<string, string> = {}): Promise<Uint8Array> {
  return encodeSafetensors(await readTensors(modelTensors(model)), modelMetadata(model, extra));
}

/** Loads a weights file into the model (names and shapes must match exactly); returns the file's metadata. */
export function decodeModel(model: InstanceModel, bytes: Uint8Array, what: string): Record<string, string> {
  let file: Safetensors;
  try {
    file = decodeSafetensors(bytes);
  } catch (e) {
    throw new Error(`${what}: ${(e as Error).message}`);
  }
  if (file.metadata.kind !== undefined && file.metadata.kind !== model.kind) {
    throw new Error(`${what} holds a ${file.metadata.kind} model, not ${model.kind}`);
  }
  writeTensors(modelTensors(model), file.tensors, what);
  return file.metadata;
}

/**
 * Adam's state for the named parameters (`names[i]` is `optimizer.params[i]`), under PyTorch's names:
 * `NAME.exp_avg`, `NAME.exp_avg_sq` and the update count `NAME.step` (I32 scalar); parameters not updated yet are absent.
 */
export async function encodeAdam(optimizer: Adam, names: readonly string[], metadata: Record<string, string> = {}): Promise<Uint8Array> {
  const tensors = new Map<string, HostTensor>();
  const states = optimizer.getState();
  for (let i = 0; i < names.length; i++) {
    const s = states[i];
    if (!s) continue;
    tensors.set(`${names[i]}.exp_avg`, { shape: [...s.m.shape], data: await s.m.data() });
    tensors.set(`${names[i]}.exp_avg_sq`, { shape: [...s.v.shape], data: await s.v.data() });
    tensors.set(`${names[i]}.step`, { shape: [], data: new Int32Array([s.step]) });
  }
  return encodeSafetensors(tensors, metadata);
}

/** Restores what encodeAdam saved, checking every name and shape against the optimizer's parameters. */
export function decodeAdam(optimizer: Adam, names: readonly string[], bytes: Uint8Array, what: string): Record<string, string> {
  let file: Safetensors;
  try {
    file = decodeSafetensors(bytes);
  } catch (e) {
    throw new Error(`${what}: ${(e as Error).message}`);
  }
  // A parameter's state is in the file when its step count is; its two moments must then be there too.
  const expected = new Map<string, Tensor | null>();
  names.forEach((name, i) => {
    if (!file.tensors.has(`${name}.step`)) return;
    expected.set(`${name}.step`, null);
    expected.set(`${name}.exp_avg`, optimizer.params[i]);
    expected.set(`${name}.exp_avg_sq`, optimizer.params[i]);
  });
  const unexpected = [...file.tensors.keys()].filter((n) => !expected.has(n));
  const problems = unexpected.length ? [`unexpected ${unexpected.join(', ')}`] : [];
  for (const [name, p] of expected) {
    const s = file.tensors.get(name);
    const [shape, dtype] = p ? [p.shape, 'F32'] : [[], 'I32'];
    if (!s) problems.push(`missing ${name}`);
    else if (dtypeName(s.data) !== dtype || s.shape.length !== shape.length || s.shape.some((d, i) => d !== shape[i])) {
      problems.push(`${name} is [${s.shape.join(', ')}] ${dtypeName(s.data)}, expected [${shape.join(', ')}] ${dtype}`);
    }
  }
  if (problems.length) throw new Error(`${what} does not fit the model's parameters: ${problems.join('; ')}`);
  const e = optimizer.params[0].engine;
  optimizer.setState(
    names.map((name) => {
      const step = file.tensors.get(`${name}.step`);
      if (!step) return null;
      const upload = (n: string) => e.tensor(file.tensors.get(n)!.data, file.tensors.get(n)!.shape);
      return { m: upload(`${name}.exp_avg`), v: upload(`${name}.exp_avg_sq`), step: step.data[0] };
    }),
  );
  return file.metadata;
}
