// Element types a tensor can hold: 32-bit floats for activations, 32-bit integers for labels and indices.
export type DType = 'f32' | 'i32' | 'u32';
export type TypedArrayOf<D extends DType> = D extends 'f32' ? Float32Array : D extends 'i32' ? Int32Array : Uint32Array;
export type AnyTypedArray = Float32Array | Int32Array | Uint32Array;

export const BYTES_PER_ELEMENT = 4;

export function typedArray(dtype: DType, source: ArrayBuffer | number | ArrayLike<number>): AnyTypedArray {
  switch (dtype) {
    case 'f32': return typeof source === 'number' ? new Float32Array(source) : source instanceof ArrayBuffer ? new Float32Array(source) : Float32Array.from(source);
    case 'i32': return typeof source === 'number' ? new Int32Array(source) : source instanceof ArrayBuffer ? new Int32Array(source) : Int32Array.from(source);
    case 'u32': return typeof source === 'number' ? new Uint32Array(source) : source instanceof ArrayBuffer ? new Uint32Array(source) : Uint32Array.from(source);
  }
}

export function dtypeOf(data: AnyTypedArray): DType {
  if (data instanceof Float32Array) return 'f32';
  if (data instanceof Int32Array) return 'i32';
  return 'u32';
}
