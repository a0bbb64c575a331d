// Row-wise sort (shaders/sort.wgsl): a bitonic network per row, the short strides in workgroup memory and the long
// ones as global passes, all rows in the same dispatches.
import type { Tensor } from '../engine/tensor.ts';
import { shaderConstants } from '../shaders.gen.ts';
import { expectF32 } from './elementwise.ts';

/** BLOCK: elements a workgroup sorts in workgroup memory. */
const { BLOCK, WORKGROUP_SIZE } = shaderConstants.sort;

export interface SortOptions {
  /** Largest first (default false: smallest first). */
  descending?: boolean;
}

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
  const [rows, cols] = keys.shape;
  const values = e.empty(keys.shape);
  const indices = e.empty(keys.shape, 'i32');
  if (keys.size === 0) return { values, indices };

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
