// The Lovasz hinge (shaders/lovasz.wgsl; Berman et al. 2018, lovasz_hinge_flat) per row, and the row-wise prefix sum
// it needs: errors sorted on the GPU by sortRows, the Jaccard gradient from a prefix sum of the sorted labels.
import { record } from '../engine/autograd.ts';
import type { Tensor } from '../engine/tensor.ts';
import { shaderConstants } from '../shaders.gen.ts';
import { expectF32 } from './elementwise.ts';
import { sum } from './reduce.ts';
import { sortRows } from './sort.ts';

/** BLOCK: elements per workgroup of the block passes. */
const { BLOCK, WORKGROUP_SIZE } = shaderConstants.lovasz;

const fmt = (shape: readonly number[]) => `[${shape.join(', ')}]`;

function checkRows(op: string, name: string, x: Tensor): void {
  expectF32(op, name, x);
  if (x.rank !== 2) throw new Error(`${op}: ${name} must be [rows, cols], got ${fmt(x.shape)}`);
}

function rowsParams(x: Tensor) {
  const [rows, cols] = x.shape;
  return { rows, cols, blocks: Math.ceil(cols / BLOCK) };
}

/**
 * Inclusive prefix sum along each row of `x` [R, P] f32: out[r, i] = Σ_{j ≤ i} x[r, j]. Blocks of BLOCK are scanned in
 * workgroups; longer rows scan the block totals the same way (recursively) and add them back. No autograd.
 */
export function cumsumRows(x: Tensor): Tensor {
  checkRows('cumsumRows', 'input', x);
  const e = x.engine;
  const params = rowsParams(x);
  const out = e.empty(x.shape);
  if (x.size === 0) return out;
  const totals = e.empty([params.rows, params.blocks]);
  e.dispatch({
    shader: 'lovasz', entry: 'scan_rows', label: 'cumsumRows',
    bindings: { scanIn: x, scanOut: out, scanTotals: totals, rowsParams: params }, workgroups: e.groups1D(params.rows * params.blocks, 1),
  });
  if (params.blocks > 1) {
    const offsets = cumsumRows(totals);
    e.dispatch({
      shader: 'lovasz', entry: 'scan_add', label: 'cumsumRows.add',
      bindings: { scanOut: out, scanOffsets: offsets, rowsParams: params }, workgroups: e.groups1D(x.size, WORKGROUP_SIZE),
    });
    offsets.dispose();
  }
  totals.dispose();
  return out;
}

/**
 * The Lovasz hinge of each row of `logits` [R, P] against binary `labels` [R, P] (0 or 1): with signs s = 2y − 1 and
 * errors 1 − z·s sorted descending, loss_r = Σ_i relu(error_i)·ΔJ_i, where ΔJ is the gradient of the Jaccard loss
 * extension at the sorted labels. Returns [R]. Differentiable in the logits, with ΔJ held constant as in the
 * reference; ties between errors change neither the loss nor which elements receive gradient sums.
 */
export function lovaszHinge(logits: Tensor, labels: Tensor): Tensor {
  checkRows('lovaszHinge', 'logits', logits);
  checkRows('lovaszHinge', 'labels', labels);
  if (labels.shape[0] !== logits.shape[0] || labels.shape[1] !== logits.shape[1]) {
    throw new Error(`lovaszHinge: labels ${fmt(labels.shape)} must match logits ${fmt(logits.shape)}`);
  }
  if (logits.shape[1] === 0) throw new Error(`lovaszHinge: rows must hold at least one element, got logits ${fmt(logits.shape)}`);
  const e = logits.engine;
  const params = rowsParams(logits);
  const elementwise = e.groups1D(logits.size, WORKGROUP_SIZE);
  const blocks = e.groups1D(params.rows * params.blocks, 1);

  const errors = e.empty(logits.shape);
  e.dispatch({ shader: 'lovasz', entry: 'hinge_errors', label: 'lovaszHinge.errors', bindings: { logits, labels, errors, rowsParams: params }, workgroups: elementwise });
  const { values: errorsSorted, indices: order } = sortRows(errors, { descending: true });
  errors.dispose();
  const gtSorted = e.empty(logits.shape);
  e.dispatch({ shader: 'lovasz', entry: 'gather_labels', label: 'lovaszHinge.gather', bindings: { labels, order, gtSorted, rowsParams: params }, workgroups: elementwise });
  const cumulative = cumsumRows(gtSorted);
  const weight = e.empty(logits.shape);
  const partial = e.empty([params.rows, params.blocks]);
  e.dispatch({
    shader: 'lovasz', entry: 'lovasz_rank', label: 'lovaszHinge.rank',
    bindings: { errorsSorted, gtSortedIn: gtSorted, cumulative, weight, partial, rowsParams: params }, workgroups: blocks,
  });
  const loss = sum(partial, 1);
  for (const t of [errorsSorted, gtSorted, cumulative, partial]) t.dispose();

  const y = record('lovaszHinge', [logits, labels], loss, (gy) => {
    if (!logits.requiresGrad) return [null, null];
    const gLogits = e.empty(logits.shape);
    e.dispatch({
      shader: 'lovasz', entry: 'lovasz_backward', label: 'lovaszHinge.backward',
      bindings: { gy, order, weightIn: weight, gLogits, rowsParams: params }, workgroups: elementwise,
    });
    return [gLogits, null];
  });
  if (!y.node) {
    order.dispose();
    weight.dispose();
  }
  return y;
}
