// Softmax and log-softmax along any axis (shaders/softmax.wgsl), each backward a single kernel on the forward output.
import { record } from '../engine/autograd.ts';
import type { Tensor } from '../engine/tensor.ts';
import { shaderConstants } from '../shaders.gen.ts';
import { expectF32 } from './elementwise.ts';
import { normalizeAxes } from './reduce.ts';

const { WORKGROUP_SIZE } = shaderConstants.softmax;

type Entry = 'forward' | 'backward';

/** On a CPU adapter, rows from which softmax runs one invocation per row: [512, 1000] took 2.9 ms so against 17 ms. */
const CPU_SERIAL_ROWS = 512;

function softmaxKernel(op: string, entry: Entry, log: boolean, bindings: Record<string, Tensor>, like: Tensor, axis: number): Tensor {
  const e = like.engine;
  const len = like.shape[axis];
  const inner = like.shape.slice(axis + 1).reduce((p, q) => p * q, 1);
  const rows = like.size / len;
  const out = e.empty(like.shape);
  // A workgroup per row once rows are long enough to share out and too few to fill the GPU one invocation each. A CPU
  // adapter runs a workgroup on one thread, where the per-row tree costs more than it shares: from CPU_SERIAL_ROWS rows
  // (two workgroups, both cores of lavapipe's two) it keeps one invocation per row.
  const perWorkgroup = (len >= WORKGROUP_SIZE || (len >= 32 && rows < 4096)) && !(e.cpuAdapter && rows >= CPU_SERIAL_ROWS);
  e.dispatch({
    shader: 'softmax', entry: `${entry}_${perWorkgroup ? 'workgroup' : 'serial'}`, constants: { LOG: log ? 1 : 0 },
    label: entry === 'backward' ? `${op}.backward` : op,
    bindings: { ...bindings, out, params: { rows, len, inner } },
    workgroups: perWorkgroup ? e.groups1D(rows, 1) : e.groups1D(rows, WORKGROUP_SIZE),
  });
  return out;
}

function softmaxOp(op: 'softmax' | 'logSoftmax', x: Tensor, axis: number): Tensor {
  expectF32(op, 'input', x);
  const [k] = normalizeAxes(op, x.rank, axis);
  if (x.size === 0) throw new Error(`${op}: input [${x.shape.join(', ')}] is empty`);
  const log = op === 'logSoftmax';
  const y = softmaxKernel(op, 'forward', log, { x }, x, k);
  return record(op, [x], y, (gy) => [softmaxKernel(op, 'backward', log, { y, gy }, x, k)]);
}

/** exp(x) / Σ exp(x) along `axis` (default: the last), computed with the maximum subtracted first. */
export function softmax(x: Tensor, axis = -1): Tensor {
  return softmaxOp('softmax', x, axis);
}

/** x − log Σ exp(x) along `axis` (default: the last); stable for any finite input. */
export function logSoftmax(x: Tensor, axis = -1): Tensor {
  return softmaxOp('logSoftmax', x, axis);
}
