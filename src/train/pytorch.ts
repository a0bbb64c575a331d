// PyTorch checkpoint files read without Python, pure TypeScript for every runtime. torch.save (PyTorch ≥ 1.6) writes
// a ZIP archive: PREFIX/data.pkl pickles the saved object, whose tensors are calls of torch._utils._rebuild_tensor_v2
// (storage, storage offset, shape, strides) and whose storages are persistent ids ('storage', torch.FloatStorage, KEY,
// location, numel) with their little-endian bytes in the entry PREFIX/data/KEY. The legacy format (before 1.6) is a
// sequence of pickles: a magic number, a protocol version, system info, the object, its storage keys, then each
// storage as an 8-byte count and its bytes. Both are read; safetensors files are accepted as state dicts too.
// Training checkpoints hold the model's state dict beside other things (the optimizer's state, an epoch count):
// stateDictOf finds it.
import { readSafetensors } from './checkpoint.ts';
import { pythonType, unpickle } from './pickle.ts';
import { looksLikeZip, ZipArchive } from './zip.ts';

export type TorchDType = 'float64' | 'float32' | 'float16' | 'bfloat16' | 'int64' | 'int32' | 'int16' | 'int8' | 'uint8' | 'bool';

const itemSizes: Record<TorchDType, number> = {
  float64: 8, float32: 4, float16: 2, bfloat16: 2, int64: 8, int32: 4, int16: 2, int8: 1, uint8: 1, bool: 1,
};

/** torch's typed storage classes, as pickles name them (torch.FloatStorage). */
const storageDTypes: Record<string, TorchDType> = {
  DoubleStorage: 'float64', FloatStorage: 'float32', HalfStorage: 'float16', BFloat16Storage: 'bfloat16', LongStorage: 'int64',
  IntStorage: 'int32', ShortStorage: 'int16', CharStorage: 'int8', ByteStorage: 'uint8', BoolStorage: 'bool',
};

const safetensorsDTypes: Record<string, TorchDType> = {
  F64: 'float64', F32: 'float32', F16: 'float16', BF16: 'bfloat16', I64: 'int64', I32: 'int32', I16: 'int16', I8: 'int8', U8: 'uint8', BOOL: 'bool',
};

/** A storage class named by a pickle, standing for its dtype. */
class StorageType {
  constructor(readonly dtype: TorchDType) {}
}

/** The values of a typed storage: `numel` values of `dtype`, little-endian (`bytes` is null until a legacy file's data is read). */
export class TorchStorage {
  constructor(
    readonly dtype: TorchDType,
    readonly key: string,
    readonly numel: number,
    public bytes: Uint8Array | null,
  ) {}
}

/** A tensor as saved: a strided view into a storage. */
export class TorchTensor {
  constructor(
    readonly dtype: TorchDType,
    readonly shape: number[],
    readonly stride: number[],
    readonly storageOffset: number,
    readonly storage: TorchStorage,
  ) {}

  get size(): number {
    return this.shape.reduce((a, b) => a * b, 1);
  }

  /** The values in row-major order (the strides undone), converted to float32; `name` names the tensor in errors. */
  float32(name: string): Float32Array {
    const { shape, stride, storageOffset, storage } = this;
    const n = this.size;
    const out = new Float32Array(n);
    if (n === 0) return out;
    let last = storageOffset;
    for (let d = 0; d < shape.length; d++) {
      if (stride[d] < 0) throw new Error(`${name}: negative stride ${stride[d]}`);
      last += (shape[d] - 1) * stride[d];
    }
    if (!storage.bytes) throw new Error(`${name}: its storage ${storage.key} was never read`);
    if (last >= storage.numel) {
      throw new Error(
        `${name}: [${shape.join(', ')}] with strides [${stride.join(', ')}] from offset ${storageOffset} reaches past its storage of ${storage.numel} values`,
      );
    }
    const read = valueReader(this.dtype, storage.bytes);
    const index = new Array<number>(shape.length).fill(0);
    let at = storageOffset;
    for (let i = 0; i < n; i++) {
      out[i] = read(at);
      for (let d = shape.length - 1; d >= 0; d--) {
        at += stride[d];
        if (++index[d] < shape[d]) break;
        at -= stride[d] * shape[d];
        index[d] = 0;
      }
    }
    return out;
  }
}

/** Value i of a storage's bytes, as a number. */
function valueReader(dtype: TorchDType, bytes: Uint8Array): (i: number) => number {
  const v = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  switch (dtype) {
    case 'float64': return (i) => v.getFloat64(8 * i, true);
    case 'float32': return (i) => v.getFloat32(4 * i, true);
    case 'float16': return (i) => halfToFloat(v.getUint16(2 * i, true));
    case 'bfloat16': {
      const word = new Uint32Array(1);
      const float = new Float32Array(word.buffer);
      return (i) => ((word[0] = v.getUint16(2 * i, true) << 16), float[0]);
    }
    case 'int64': return (i) => Number(v.getBigInt64(8 * i, true));
    case 'int32': return (i) => v.getInt32(4 * i, true);
    case 'int16': return (i) => v.getInt16(2 * i, true);
    case 'int8': return (i) => v.getInt8(i);
    case 'uint8': return (i) => v.getUint8(i);
    case 'bool': return (i) => (v.getUint8(i) ? 1 : 0);
  }
}

function halfToFloat(h: number): number {
  const sign = h & 0x8000 ? -1 : 1;
  const exponent = (h >> 10) & 0x1f;
  const fraction = h & 0x3ff;
  if (exponent === 0) return sign * fraction * 2 ** -24;
  if (exponent === 31) return fraction ? NaN : sign * Infinity;
  return sign * (1 + fraction / 1024) * 2 ** (exponent - 15);
}

const isInts = (v: unknown): v is number[] => Array.isArray(v) && v.every((d) => Number.isInteger(d) && d >= 0);

/** The globals a checkpoint's pickle calls to rebuild tensors, and the storage classes it names. */
function torchGlobal(what: string) {
  const rebuildTensor = (storage: unknown, offset: unknown, shape: unknown, stride: unknown) => {
    if (!(storage instanceof TorchStorage) || !Number.isInteger(offset) || !isInts(shape) || !isInts(stride) || shape.length !== stride.length) {
      const got = [storage, offset, shape, stride].map(pythonType).join(', ');
      throw new Error(`${what}: a tensor is rebuilt from (${got}), not (storage, offset, shape, strides)`);
    }
    return new TorchTensor(storage.dtype, shape, stride, offset as number, storage);
  };
  const globals: Record<string, unknown> = {
    'torch._utils._rebuild_tensor': rebuildTensor,
    'torch._utils._rebuild_tensor_v2': rebuildTensor,
    // A Parameter saved as itself (a whole model pickled): its data.
    'torch._utils._rebuild_parameter': (data: unknown) => data,
    'torch._utils._rebuild_parameter_with_state': (data: unknown) => data,
    // A tensor with Python attributes: the plain tensor.
    'torch._tensor._rebuild_from_type_v2': (f: unknown, _type: unknown, args: unknown) => {
      if (typeof f !== 'function' || !Array.isArray(args)) throw new Error(`${what}: a tensor is rebuilt by ${pythonType(f)}, which is not read`);
      return f(...args);
    },
  };
  return (module: string, name: string): unknown => {
    if (module === 'torch' && storageDTypes[name]) return new StorageType(storageDTypes[name]);
    return globals[`${module}.${name}`];
  };
}

/** The storage a persistent id names: ('storage', storage class, key, location, numel[, view]). */
function storageId(pid: unknown, what: string): { dtype: TorchDType; key: string; numel: number } {
  const [kind, type, key, , numel, view] = Array.isArray(pid) ? pid : [];
  if (kind !== 'storage' || !(type instanceof StorageType) || typeof key !== 'string' || !Number.isSafeInteger(numel)) {
    const id = Array.isArray(pid) ? `(${pid.map(pythonType).join(', ')})` : pythonType(pid);
    throw new Error(`${what}: persistent id ${id} is not a torch storage of a known dtype`);
  }
  if (view != null) throw new Error(`${what}: storage ${key} is a view into another storage (a pre-1.0 checkpoint), which is not read`);
  return { dtype: type.dtype, key, numel: numel as number };
}

/** The object a torch.save file holds (either format): dicts are Maps, tensors TorchTensors. `what` names the file. */
export function readPyTorch(bytes: Uint8Array, what: string): unknown {
  if (looksLikeZip(bytes)) return readZipCheckpoint(bytes, what);
  // The legacy format starts with a pickle: PROTO 2 (torch.save's default) or a later protocol.
  if (bytes[0] === 0x80 && bytes[1] >= 2 && bytes[1] <= 5) return readLegacyCheckpoint(bytes, what);
  throw new Error(`${what}: not a PyTorch checkpoint (neither the ZIP archive torch.save writes nor its legacy format) nor a safetensors file`);
}

function readZipCheckpoint(bytes: Uint8Array, what: string): unknown {
  const zip = new ZipArchive(bytes, what);
  const pickle = [...zip.entries.keys()].find((name) => /^([^/]+\/)?data\.pkl$/.test(name));
  if (!pickle) throw new Error(`${what}: a ZIP archive without a data.pkl, so not a file torch.save wrote`);
  const prefix = pickle.slice(0, -'data.pkl'.length);
  if (zip.entries.has(`${prefix}byteorder`)) {
    const order = new TextDecoder().decode(zip.read(`${prefix}byteorder`)).trim();
    if (order !== 'little') throw new Error(`${what}: saved ${order}-endian; only little-endian checkpoints are read`);
  }
  const storages = new Map<string, TorchStorage>();
  const persistentLoad = (pid: unknown) => {
    const { dtype, key, numel } = storageId(pid, what);
    let storage = storages.get(key);
    if (!storage) {
      const data = zip.read(`${prefix}data/${key}`);
      if (data.length !== numel * itemSizes[dtype]) {
        throw new Error(`${what}: storage ${key} has ${data.length} bytes, not the ${numel * itemSizes[dtype]} of ${numel} ${dtype} values`);
      }
      storage = new TorchStorage(dtype, key, numel, data);
      storages.set(key, storage);
    }
    return storage;
  };
  return unpickle(zip.read(pickle), { find: torchGlobal(what), persistentLoad, what }).value;
}

const LEGACY_MAGIC = 0x1950a86a20f9469cfc6cn;
const LEGACY_PROTOCOL = 1001;

function readLegacyCheckpoint(bytes: Uint8Array, what: string): unknown {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  let at = 0;
  const next = (options: Parameters<typeof unpickle>[1] = {}) => {
    const { value, end } = unpickle(bytes, { ...options, what }, at);
    at = end;
    return value;
  };
  if (next() !== LEGACY_MAGIC) throw new Error(`${what}: a pickle, but not a PyTorch checkpoint (no torch.save magic number)`);
  const protocol = next();
  if (protocol !== LEGACY_PROTOCOL) throw new Error(`${what}: legacy torch.save protocol ${String(protocol)}; only ${LEGACY_PROTOCOL} is read`);
  const system = next();
  if (system instanceof Map && system.get('little_endian') === false) throw new Error(`${what}: saved big-endian; only little-endian checkpoints are read`);
  const storages = new Map<string, TorchStorage>();
  const value = next({
    find: torchGlobal(what),
    persistentLoad: (pid) => {
      const { dtype, key, numel } = storageId(pid, what);
      if (!storages.has(key)) storages.set(key, new TorchStorage(dtype, key, numel, null));
      return storages.get(key);
    },
  });
  const keys = next();
  if (!Array.isArray(keys)) throw new Error(`${what}: the storage key list is a ${pythonType(keys)}`);
  for (const key of keys) {
    const storage = storages.get(String(key));
    if (!storage) throw new Error(`${what}: lists storage ${key}, which no tensor uses`);
    if (at + 8 > bytes.length) throw new Error(`${what}: ends before storage ${key} (truncated?)`);
    const numel = Number(view.getBigInt64(at, true));
    const size = numel * itemSizes[storage.dtype];
    if (numel !== storage.numel) throw new Error(`${what}: storage ${key} holds ${numel} values, its tensors say ${storage.numel}`);
    if (at + 8 + size > bytes.length) throw new Error(`${what}: ends inside storage ${key} (truncated?)`);
    storage.bytes = bytes.subarray(at + 8, at + 8 + size);
    at += 8 + size;
  }
  return value;
}

const isStateDict = (v: unknown): v is Map<string, TorchTensor> =>
  v instanceof Map && v.size > 0 && [...v].every(([k, t]) => typeof k === 'string' && t instanceof TorchTensor);

/** Where training scripts keep the model's state dict in a checkpoint dict (EmbedSeg's: model_state_dict). */
const STATE_DICT_KEYS = ['model_state_dict', 'state_dict', 'model'];

/**
 * The model's tensors by name in a checkpoint's object: the object itself when it is a state dict (names → tensors),
 * else the state dict under one of STATE_DICT_KEYS; the `module.` prefix of torch.nn.DataParallel is removed.
 */
export function stateDictOf(checkpoint: unknown, what: string): Map<string, TorchTensor> {
  const dict = isStateDict(checkpoint)
    ? checkpoint
    : checkpoint instanceof Map
      ? STATE_DICT_KEYS.map((k) => checkpoint.get(k)).find(isStateDict)
      : undefined;
  if (!dict) {
    const keys = checkpoint instanceof Map ? ` (its keys: ${[...checkpoint.keys()].slice(0, 8).map(String).join(', ')})` : '';
    throw new Error(
      `${what}: holds a ${pythonType(checkpoint)}${keys}, neither a state dict of tensors nor a dict with one under ${STATE_DICT_KEYS.join(', ')}`,
    );
  }
  const names = [...dict.keys()];
  if (!names.every((n) => n.startsWith('module.'))) return dict;
  return new Map([...dict].map(([name, t]) => [name.slice('module.'.length), t]));
}

/** Whether `bytes` begins like a safetensors file: a little-endian header length, then a JSON object. */
const looksLikeSafetensors = (bytes: Uint8Array): boolean =>
  bytes.length > 9 && bytes[8] === 0x7b && new DataView(bytes.buffer, bytes.byteOffset, 8).getBigUint64(0, true) <= BigInt(bytes.length - 8);

/** The state dict of a torch.save checkpoint (either format) or of a safetensors file. */
export function readStateDict(bytes: Uint8Array, what: string): Map<string, TorchTensor> {
  if (!looksLikeSafetensors(bytes)) return stateDictOf(readPyTorch(bytes, what), what);
  let entries;
  try {
    ({ entries } = readSafetensors(bytes, Object.fromEntries(Object.entries(safetensorsDTypes).map(([name, d]) => [name, itemSizes[d]]))));
  } catch (e) {
    throw new Error(`${what}: ${(e as Error).message}`);
  }
  const tensors = new Map<string, TorchTensor>();
  for (const [name, { dtype, shape, bytes: data }] of entries) {
    const torchDType = safetensorsDTypes[dtype];
    const stride = shape.map((_, d) => shape.slice(d + 1).reduce((a, b) => a * b, 1));
    const numel = shape.reduce((a, b) => a * b, 1);
    tensors.set(name, new TorchTensor(torchDType, shape, stride, 0, new TorchStorage(torchDType, name, numel, data)));
  }
  return stateDictOf(tensors, what);
}
