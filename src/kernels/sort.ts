// Row-wise sort (shaders/sort.wgsl): a bitonic network per row, the short strides in workgroup memory and the long
// ones as global passes, all rows in the same dispatches; on CPU adapters a merge sort per invocation instead.
import type { Tensor } from '../engine/tensor.ts';
import { shaderConstants } from '../shaders.gen.ts';
import { expectF32 } from './elementwise.ts';

/** BLOCK: elements a workgroup sorts in workgroup memory. */
const { BLOCK, WORKGROUP_SIZE } = shaderConstants.sort;

export interface SortOptions {
  /** Largest first (default false: smallest first). */
  descending?: boolean;
  /**
   * 'network': the bitonic network, for GPUs; 'serial': one invocation per row merge-sorts it, without barriers, for
   * CPU adapters (lavapipe), which run a workgroup on one thread, so every barrier costs a pass over its invocations.
   * Default: by the adapter. Same results.
   */
  method?: 'network' | 'serial';
}

/**
 * Rows per workgroup of the serial sort: lavapipe runs a workgroup on one thread with its invocations in SIMD lanes,
 * so a few rows share a thread's vector width; 4 beat 1, 2, 8 and 16 (bench/sort-methods.ts).
 */
const SERIAL_ROWS = 4;

export interface SortedRows {
  /** [R, P] f32: each row of the keys in order. */
  values: Tensor;
  /** [R, P] i32: the column each value came from, so values[r, i] = keys[r, indices[r, i]]. */
  indices: Tensor;
}

/**
 * Sorts every row of `keys` [R, P] f32 independently. The sort is stable (equal keys keep their column order), NaNs
 * come last in either order (as the canonical NaN), and −0 sorts before +0. No autograd: gather with the indices.
 */
export function sortRows(keys: Tensor, options: SortOptions = {}): SortedRows {
  expectF32('sortRows', 'keys', keys);
  if (keys.rank !== 2) throw new Error(`sortRows: keys must be [rows, cols], got [${keys.shape.join(', ')}]`);
  const e = keys.engine;
  const method = options.method ?? (e.cpuAdapter ? 'serial' : 'network');
  if (method !== 'serial' && method !== 'network') throw new Error(`sortRows: method must be 'network' or 'serial', got ${JSON.stringify(method)}`);
  const [rows, cols] = keys.shape;
  const values = e.empty(keys.shape);
  const indices = e.empty(keys.shape, 'i32');
  if (keys.size === 0) return { values, indices };

  if (method === 'serial' && 2 * keys.size * 4 <= e.device.limits.maxStorageBufferBindingSize) {
    sortSerial(keys, values, indices, options.descending ?? false);
    return { values, indices };
  }

  const padded = 2 ** Math.ceil(Math.log2(cols));
  const segment = Math.min(padded, BLOCK);
  const segmentsPerRow = Math.ceil(cols / segment);
  const params = {
    rows, cols, segment, segmentLog: Math.log2(segment), segmentsPerRow, k: 0, j: 0, flip: 0, halfLog: Math.max(0, Math.log2(padded) - 1),
    descending: options.descending ? 1 : 0, finish: padded <= BLOCK ? 1 : 0,
  };
  // The outputs are the work arrays: sortable keys live in `values` as u32 until the last pass.
  const workKeys = e.view(values, keys.shape, 0, 'u32');
  const workIndices = e.view(indices, keys.shape, 0, 'u32');
  const tiles = e.groups1D(rows * segmentsPerRow, BLOCK / segment);
  e.dispatch({ shader: 'sort', entry: 'sort_tile', label: 'sortRows.tile', bindings: { keys, workKeys, workIndices, sortParams: params }, workgroups: tiles });
  const comparators = e.groups1D((rows * padded) / 2, WORKGROUP_SIZE);
  for (let k = 2 * BLOCK; k <= padded; k *= 2) {
    for (let j = k / 2; j >= BLOCK; j /= 2) {
      e.dispatch({
        shader: 'sort', entry: 'sort_global', label: 'sortRows.global',
        bindings: { workKeys, workIndices, sortParams: { ...params, k, j, flip: j === k / 2 ? 1 : 0, finish: 0 } }, workgroups: comparators,
      });
    }
    e.dispatch({
      shader: 'sort', entry: 'sort_merge', label: 'sortRows.merge',
      bindings: { workKeys, workIndices, sortParams: { ...params, k, finish: k === padded ? 1 : 0 } }, workgroups: tiles,
    });
  }
  workKeys.dispose();
  workIndices.dispose();
  return { values, indices };
}

/** The serial path: merge sort per row through two [2, rows, cols] bank arrays, then the outputs written. */
function sortSerial(keys: Tensor, values: Tensor, indices: Tensor, descending: boolean): void {
  const e = keys.engine;
  const [rows, cols] = keys.shape;
  const bankKeys = e.empty([2, rows, cols], 'u32');
  const bankIndices = e.empty([2, rows, cols], 'u32');
  const workKeys = e.view(values, keys.shape, 0, 'u32');
  const workIndices = e.view(indices, keys.shape, 0, 'u32');
  const sortParams = { rows, cols, segment: 0, segmentLog: 0, segmentsPerRow: 0, k: 0, j: 0, flip: 0, halfLog: 0, descending: descending ? 1 : 0, finish: 1 };
  e.dispatch({
    shader: 'sort', entry: 'sort_serial', label: 'sortRows.serial', constants: { SERIAL_ROWS },
    bindings: { keys, workKeys, workIndices, bankKeys, bankIndices, sortParams }, workgroups: e.groups1D(rows, SERIAL_ROWS),
  });
  for (const t of [bankKeys, bankIndices, workKeys, workIndices]) t.dispose();
}
