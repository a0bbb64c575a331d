// A Python pickle reader (protocols 0-5 as far as data needs them), pure TypeScript for every runtime. It runs no
// code: a GLOBAL names a class or function, which `find` may map to a JS function (torch's tensor rebuilders); any
// other becomes a PyGlobal, and calling it (REDUCE, NEWOBJ) records the call as a PyObject, so a checkpoint's unrelated
// parts (optimizer settings, loggers, NumPy scalars) load as inert values. Python values become: None → null, bool,
// int → number (bigint beyond 2^53), float → number, str → string, bytes → Uint8Array, tuple and list → array,
// dict → Map (keys are not only strings), set → Set.

/** A class or function a pickle names that the reader does not know. */
export class PyGlobal {
  constructor(
    readonly module: string,
    readonly name: string,
  ) {}

  toString(): string {
    return `${this.module}.${this.name}`;
  }
}

/** An object built by calling a PyGlobal; BUILD sets its state. */
export class PyObject {
  state: unknown = undefined;

  constructor(
    readonly type: PyGlobal,
    readonly args: unknown[],
  ) {}
}

export interface UnpickleOptions {
  /** What a GLOBAL (module, name) stands for; undefined leaves it a PyGlobal. A function is called by REDUCE. */
  find?: (module: string, name: string) => unknown;
  /** The object a persistent id (PERSID, BINPERSID) refers to: torch's storages. */
  persistentLoad?: (pid: unknown) => unknown;
  /** Names the file in errors. */
  what?: string;
}

const MARK = Symbol('mark');

/** Reads one pickle from `bytes` at `start`; returns its value and the offset after its STOP. */
export function unpickle(bytes: Uint8Array, options: UnpickleOptions = {}, start = 0): { value: unknown; end: number } {
  const what = options.what ?? 'pickle';
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const stack: unknown[] = [];
  const memo = new Map<number, unknown>();
  let pos = start;
  const fail = (message: string): never => {
    throw new Error(`${what}: pickle ${message} (at byte ${pos})`);
  };
  const need = (n: number) => {
    if (pos + n > bytes.length) fail('ends early (truncated?)');
  };
  const take = (n: number) => {
    need(n);
    pos += n;
    return bytes.subarray(pos - n, pos);
  };
  const u8 = () => take(1)[0];
  const u16 = () => (need(2), (pos += 2), view.getUint16(pos - 2, true));
  const u32 = () => (need(4), (pos += 4), view.getUint32(pos - 4, true));
  const u64 = () => {
    need(8);
    const v = view.getBigUint64(pos, true);
    pos += 8;
    if (v > BigInt(Number.MAX_SAFE_INTEGER)) fail(`has a length of ${v}`);
    return Number(v);
  };
  const line = () => {
    const end = bytes.indexOf(0x0a, pos);
    if (end < 0) fail('ends early in a text argument (truncated?)');
    const text = new TextDecoder('latin1').decode(bytes.subarray(pos, end));
    pos = end + 1;
    return text;
  };
  const utf8 = (n: number) => new TextDecoder().decode(take(n));
  const pop = () => (stack.length === 0 ? fail('pops an empty stack') : stack.pop());
  /** The items above the topmost mark, removed together with it. */
  const popMark = () => {
    const at = stack.lastIndexOf(MARK);
    if (at < 0) fail('has no mark to pop to');
    const items = stack.splice(at);
    items.shift();
    return items;
  };
  const top = () => (stack.length === 0 ? fail('reads an empty stack') : stack[stack.length - 1]);
  const asMap = (v: unknown) => (v instanceof Map ? v : fail(`sets an item on a ${pythonType(v)}, not a dict`));
  const asArray = (v: unknown) => (Array.isArray(v) ? v : fail(`appends to a ${pythonType(v)}, not a list`));
  const global = (module: string, name: string) => options.find?.(module, name) ?? knownGlobal(module, name) ?? new PyGlobal(module, name);
  const call = (f: unknown, args: unknown) => {
    if (!Array.isArray(args)) fail(`calls ${pythonType(f)} with ${pythonType(args)} instead of an argument tuple`);
    if (typeof f === 'function') return f(...(args as unknown[]));
    if (f instanceof PyGlobal) return new PyObject(f, args as unknown[]);
    return fail(`calls a ${pythonType(f)}`);
  };
  const int = (v: bigint) => (v >= -BigInt(Number.MAX_SAFE_INTEGER) && v <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(v) : v);
  /** A little-endian two's-complement integer of n bytes (LONG1, LONG4). */
  const long = (n: number) => {
    const b = take(n);
    let v = 0n;
    for (let i = n - 1; i >= 0; i--) v = (v << 8n) | BigInt(b[i]);
    if (n > 0 && b[n - 1] & 0x80) v -= 1n << BigInt(8 * n);
    return int(v);
  };
  const persistent = (pid: unknown) => (options.persistentLoad ? options.persistentLoad(pid) : fail('has a persistent id but no loader for it'));

  for (;;) {
    const op = u8();
    switch (op) {
      case 0x80: u8(); break; // PROTO
      case 0x95: u64(); break; // FRAME: framing only groups opcodes
      case 0x2e: return { value: pop(), end: pos }; // STOP
      case 0x28: stack.push(MARK); break; // MARK
      case 0x30: pop(); break; // POP
      case 0x31: popMark(); break; // POP_MARK
      case 0x32: stack.push(top()); break; // DUP
      case 0x4e: stack.push(null); break; // NONE
      case 0x88: stack.push(true); break; // NEWTRUE
      case 0x89: stack.push(false); break; // NEWFALSE
      case 0x4a: need(4); stack.push(view.getInt32(pos, true)); pos += 4; break; // BININT
      case 0x4b: stack.push(u8()); break; // BININT1
      case 0x4d: stack.push(u16()); break; // BININT2
      case 0x8a: stack.push(long(u8())); break; // LONG1
      case 0x8b: stack.push(long(u32())); break; // LONG4
      case 0x49: { // INT (protocol 0; "01"/"00" are True/False)
        const text = line().trim();
        stack.push(text === '01' ? true : text === '00' ? false : int(BigInt(text)));
        break;
      }
      case 0x4c: stack.push(int(BigInt(line().trim().replace(/L$/, '')))); break; // LONG (protocol 0)
      case 0x47: need(8); stack.push(view.getFloat64(pos, false)); pos += 8; break; // BINFLOAT (big-endian)
      case 0x46: stack.push(Number(line())); break; // FLOAT
      case 0x8c: stack.push(utf8(u8())); break; // SHORT_BINUNICODE
      case 0x58: stack.push(utf8(u32())); break; // BINUNICODE
      case 0x8d: stack.push(utf8(u64())); break; // BINUNICODE8
      case 0x56: stack.push(line()); break; // UNICODE (raw-unicode-escape; ASCII in practice)
      case 0x55: stack.push(new TextDecoder('latin1').decode(take(u8()))); break; // SHORT_BINSTRING (Python 2 str)
      case 0x54: stack.push(new TextDecoder('latin1').decode(take(u32()))); break; // BINSTRING
      case 0x43: stack.push(take(u8()).slice()); break; // SHORT_BINBYTES
      case 0x42: stack.push(take(u32()).slice()); break; // BINBYTES
      case 0x8e: stack.push(take(u64()).slice()); break; // BINBYTES8
      case 0x96: stack.push(take(u64()).slice()); break; // BYTEARRAY8
      case 0x29: stack.push([]); break; // EMPTY_TUPLE
      case 0x5d: stack.push([]); break; // EMPTY_LIST
      case 0x7d: stack.push(new Map()); break; // EMPTY_DICT
      case 0x8f: stack.push(new Set()); break; // EMPTY_SET
      case 0x74: stack.push(popMark()); break; // TUPLE
      case 0x6c: stack.push(popMark()); break; // LIST
      case 0x85: stack.push([pop()]); break; // TUPLE1
      case 0x86: { const b = pop(); stack.push([pop(), b]); break; } // TUPLE2
      case 0x87: { const c = pop(); const b = pop(); stack.push([pop(), b, c]); break; } // TUPLE3
      case 0x61: { const v = pop(); asArray(top()).push(v); break; } // APPEND
      case 0x65: { const items = popMark(); asArray(top()).push(...items); break; } // APPENDS
      case 0x64: { // DICT
        const items = popMark();
        const d = new Map();
        for (let i = 0; i + 1 < items.length; i += 2) d.set(items[i], items[i + 1]);
        stack.push(d);
        break;
      }
      case 0x73: { const v = pop(); const k = pop(); asMap(top()).set(k, v); break; } // SETITEM
      case 0x75: { // SETITEMS
        const items = popMark();
        const d = asMap(top());
        for (let i = 0; i + 1 < items.length; i += 2) d.set(items[i], items[i + 1]);
        break;
      }
      case 0x90: { // ADDITEMS
        const items = popMark();
        const s = top();
        if (!(s instanceof Set)) fail(`adds items to a ${pythonType(s)}, not a set`);
        for (const item of items) (s as Set<unknown>).add(item);
        break;
      }
      case 0x91: stack.push(new Set(popMark())); break; // FROZENSET
      case 0x63: { const module = line(); stack.push(global(module, line())); break; } // GLOBAL
      case 0x93: { // STACK_GLOBAL
        const name = pop();
        const module = pop();
        if (typeof module !== 'string' || typeof name !== 'string') fail('names a global with values that are not strings');
        stack.push(global(module as string, name as string));
        break;
      }
      case 0x52: { const args = pop(); stack.push(call(pop(), args)); break; } // REDUCE
      case 0x81: { const args = pop(); stack.push(call(pop(), args)); break; } // NEWOBJ
      case 0x92: { pop(); const args = pop(); stack.push(call(pop(), args)); break; } // NEWOBJ_EX (keyword arguments dropped)
      case 0x62: { // BUILD
        const state = pop();
        const obj = top();
        if (obj instanceof PyObject) obj.state = state;
        // Other objects keep no state: an OrderedDict's is its _metadata attribute (torch's layer versions).
        break;
      }
      case 0x51: stack.push(persistent(pop())); break; // BINPERSID
      case 0x50: stack.push(persistent(line())); break; // PERSID
      case 0x71: memo.set(u8(), top()); break; // BINPUT
      case 0x72: memo.set(u32(), top()); break; // LONG_BINPUT
      case 0x70: memo.set(Number(line()), top()); break; // PUT
      case 0x94: memo.set(memo.size, top()); break; // MEMOIZE
      case 0x68: stack.push(memoGet(memo, u8(), fail)); break; // BINGET
      case 0x6a: stack.push(memoGet(memo, u32(), fail)); break; // LONG_BINGET
      case 0x67: stack.push(memoGet(memo, Number(line()), fail)); break; // GET
      default:
        pos--;
        fail(`has opcode 0x${op.toString(16).padStart(2, '0')}, which this reader does not know`);
    }
  }
}

function memoGet(memo: Map<number, unknown>, key: number, fail: (message: string) => never): unknown {
  if (!memo.has(key)) fail(`refers to memo entry ${key}, which was never stored`);
  return memo.get(key);
}

/** Globals whose meaning is plain data: an OrderedDict is a dict. */
function knownGlobal(module: string, name: string): ((...args: unknown[]) => unknown) | undefined {
  if (module === 'collections' && name === 'OrderedDict') {
    return (items?: unknown) => new Map(Array.isArray(items) ? (items as [unknown, unknown][]) : []);
  }
  return undefined;
}

/** A value's kind in error messages. */
export function pythonType(v: unknown): string {
  if (v === null) return 'None';
  if (v instanceof Map) return 'dict';
  if (Array.isArray(v)) return 'tuple or list';
  if (v instanceof PyGlobal) return `${v}`;
  if (v instanceof PyObject) return `${v.type} object`;
  if (v instanceof Uint8Array) return 'bytes';
  return typeof v;
}
