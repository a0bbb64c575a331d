// What a WGSL entry point binds, read from the source with wgsl_reflect: the bind-group layout is derived from it,
// and every dispatch is checked against it by name, so a TypeScript/WGSL mismatch is an error naming the shader and
// binding instead of a silently wrong result.
import { WgslReflect } from 'wgsl_reflect/wgsl_reflect.module.js';
import type { DType } from './dtype.ts';

export interface StorageBinding {
  kind: 'storage';
  name: string;
  binding: number;
  writable: boolean;
  /** Scalar type of the array: f32, i32 or u32 (atomics count as their inner type, vec4s as their component's). */
  element: DType;
  /** Scalars per array element: 1, or 4 for array<vec4<...>> (the tensor is read four values at a time). */
  lanes: 1 | 4;
}

export interface UniformMember {
  name: string;
  offset: number;
  /** Scalar type of the member or of its vector/array elements. */
  scalar: DType;
  /** Number of scalars the member holds (1 for a scalar, 4 for vec4, 8 for array<vec4<u32>, 2>...). */
  length: number;
  /** Stride in scalars between consecutive elements (arrays of vec3 are padded to 4). */
  stride: number;
  vecSize: number;
}

export interface UniformBinding {
  kind: 'uniform';
  name: string;
  binding: number;
  size: number;
  members: UniformMember[];
}

export type BindingInfo = StorageBinding | UniformBinding;

export interface EntryInfo {
  shader: string;
  entry: string;
  bindings: BindingInfo[];
}

const SCALARS = new Set(['f32', 'i32', 'u32']);

interface RefType {
  name: string;
  count?: number;
  format?: RefType;
  members?: { name: string; offset: number; size: number; type: RefType }[];
  size?: number;
}

function scalarOf(shader: string, where: string, t: RefType | undefined): DType {
  const name = t?.name === 'atomic' ? t.format?.name : t?.name;
  if (!name || !SCALARS.has(name)) {
    throw new Error(`shader ${shader}: ${where} has element type ${t?.name ?? '?'}; only f32, i32 and u32 are supported`);
  }
  return name as DType;
}

function uniformMember(shader: string, binding: string, m: { name: string; offset: number; type: RefType }): UniformMember {
  const where = `uniform ${binding}.${m.name}`;
  const t = m.type;
  if (SCALARS.has(t.name)) return { name: m.name, offset: m.offset, scalar: t.name as DType, length: 1, stride: 1, vecSize: 1 };
  const vec = /^vec([234])/.exec(t.name);
  if (vec) {
    const n = Number(vec[1]);
    return { name: m.name, offset: m.offset, scalar: scalarOf(shader, where, t.format), length: n, stride: n, vecSize: n };
  }
  if (t.name === 'array' && t.format) {
    const inner = t.format;
    const innerVec = /^vec([234])/.exec(inner.name);
    const vecSize = innerVec ? Number(innerVec[1]) : 1;
    const scalar = scalarOf(shader, where, innerVec ? inner.format : inner);
    if (!innerVec) {
      throw new Error(`shader ${shader}: ${where}: arrays of scalars in a uniform have a 16-byte stride; use array<vec4<...>>`);
    }
    return { name: m.name, offset: m.offset, scalar, length: (t.count ?? 0) * vecSize, stride: 4, vecSize };
  }
  throw new Error(`shader ${shader}: ${where} has unsupported type ${t.name}`);
}

/** Reflects every compute entry point of a shader module. */
export function reflectShader(shader: string, source: string): Map<string, EntryInfo> {
  const reflect = new WgslReflect(source);
  const out = new Map<string, EntryInfo>();
  for (const entry of reflect.entry.compute) {
    const bindings: BindingInfo[] = [];
    for (const r of entry.resources as unknown as { name: string; group: number; binding: number; resourceType: number; access: string; type: RefType; size: number }[]) {
      if (r.group !== 0) throw new Error(`shader ${shader}: binding ${r.name} is in group ${r.group}; wgseg uses group 0 only`);
      if (r.type.name === 'array' || r.type.name === 'atomic') {
        const vec4 = r.type.name === 'array' && r.type.format?.name === 'vec4';
        const element = scalarOf(shader, `binding ${r.name}`, vec4 ? r.type.format?.format : r.type.format);
        bindings.push({ kind: 'storage', name: r.name, binding: r.binding, writable: r.access === 'read_write', element, lanes: vec4 ? 4 : 1 });
      } else if (r.type.members) {
        bindings.push({ kind: 'uniform', name: r.name, binding: r.binding, size: r.size, members: r.type.members.map((m) => uniformMember(shader, r.name, m)) });
      } else {
        throw new Error(`shader ${shader}: binding ${r.name} (${r.type.name}) is neither a storage array nor a uniform struct`);
      }
    }
    bindings.sort((a, b) => a.binding - b.binding);
    out.set(entry.name, { shader, entry: entry.name, bindings });
  }
  return out;
}

export type UniformValues = Record<string, number | readonly number[]>;

/** Packs `values` into `view` at `base` following the reflected struct layout; names must match exactly. */
export function packUniform(info: EntryInfo, u: UniformBinding, values: UniformValues, view: DataView, base: number): void {
  const given = new Set(Object.keys(values));
  for (const m of u.members) {
    const v = values[m.name];
    if (v === undefined) throw new Error(`shader ${info.shader}.${info.entry}: uniform ${u.name}.${m.name} was not given a value`);
    given.delete(m.name);
    const arr = typeof v === 'number' ? [v] : v;
    if (arr.length > m.length) {
      throw new Error(`shader ${info.shader}.${info.entry}: uniform ${u.name}.${m.name} holds ${m.length} values, got ${arr.length}`);
    }
    for (let i = 0; i < m.length; i++) {
      const x = arr[i] ?? 0;
      const slot = Math.floor(i / m.vecSize) * m.stride + (i % m.vecSize);
      const at = base + m.offset + slot * 4;
      if (m.scalar === 'f32') view.setFloat32(at, x, true);
      else if (m.scalar === 'i32') view.setInt32(at, x, true);
      else {
        if (x < 0 || !Number.isInteger(x)) throw new Error(`shader ${info.shader}.${info.entry}: uniform ${u.name}.${m.name} is u32, got ${x}`);
        view.setUint32(at, x, true);
      }
    }
  }
  if (given.size > 0) throw new Error(`shader ${info.shader}.${info.entry}: uniform ${u.name} has no member ${[...given].join(', ')}`);
}
