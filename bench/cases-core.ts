// Engine-core benchmark cases (issue 2): matmul, a reduction, softmax, an elementwise chain, batch norm and max pool.
import { add, batchNorm, chain, matmul, maxPool, mul, relu, sigmoid, softmax, sum } from '../src/index.ts';
import type { BenchCase } from './harness.ts';
import { oursRunner, randomTensor } from './ours.ts';
import { peerRunner } from './peer.ts';

const prod = (s: number[]) => s.reduce((a, b) => a * b, 1);

function matmulCase(m: number, k: number, n: number): BenchCase {
  return {
    name: `matmul ${m}x${k}x${n}`, op: 'matmul', shape: `[${m},${k}]x[${k},${n}]`, flops: 2 * m * n * k,
    ours: (e) => oursRunner(e, () => [randomTensor(e, [m, k], 1), randomTensor(e, [k, n], 2)], ([a, b]) => matmul(a, b)),
    peer: (tf) => peerRunner(tf, () => [tf.randomNormal([m, k]), tf.randomNormal([k, n])], ([a, b]) => tf.matMul(a, b)),
  };
}

/** Matmuls that fill a discrete GPU (`--large`; minutes each on a CPU adapter): the adapter's ceiling there. */
export const largeCases = (): BenchCase[] => [matmulCase(2048, 2048, 2048), matmulCase(4096, 4096, 4096)];

export function coreCases(quick: boolean): BenchCase[] {
  const rows = quick ? 512 : 2048;
  const cols = 2048;
  const softShape = quick ? [2, 8, 64, 64] : [2, 8, 256, 256];
  const chainShape = quick ? [4, 16, 64, 64] : [16, 64, 64, 64];
  return [
    matmulCase(256, 256, 256),
    matmulCase(512, 512, 512),
    ...(quick ? [] : [matmulCase(1024, 1024, 1024)]),
    {
      name: 'sum over rows', op: 'sum', shape: `[${rows},${cols}] axis 1`, flops: rows * cols,
      ours: (e) => oursRunner(e, () => [randomTensor(e, [rows, cols])], ([x]) => sum(x, 1)),
      peer: (tf) => peerRunner(tf, () => tf.randomNormal([rows, cols]), (x) => tf.sum(x, 1)),
    },
    {
      name: 'sum over columns', op: 'sum', shape: `[${rows},${cols}] axis 0`, flops: rows * cols,
      ours: (e) => oursRunner(e, () => [randomTensor(e, [rows, cols])], ([x]) => sum(x, 0)),
      peer: (tf) => peerRunner(tf, () => tf.randomNormal([rows, cols]), (x) => tf.sum(x, 0)),
    },
    {
      // ~5 flops per element: max, subtract, exp, sum, divide.
      name: 'softmax last axis', op: 'softmax', shape: '[512,1000] axis -1', flops: 5 * 512 * 1000,
      ours: (e) => oursRunner(e, () => [randomTensor(e, [512, 1000])], ([x]) => softmax(x, -1)),
      peer: (tf) => peerRunner(tf, () => tf.randomNormal([512, 1000]), (x) => tf.softmax(x, -1)),
    },
    {
      name: 'softmax channels', op: 'softmax', shape: `[${softShape}] axis 1`, flops: 5 * prod(softShape),
      ours: (e) => oursRunner(e, () => [randomTensor(e, softShape)], ([x]) => softmax(x, 1)),
      // tfjs softmax works on the last axis only: NCHW channel softmax needs transposes around it.
      peer: (tf) => peerRunner(tf, () => tf.randomNormal(softShape), (x) => tf.transpose(tf.softmax(tf.transpose(x, [0, 2, 3, 1])), [0, 3, 1, 2])),
      peerNote: 'tfjs softmax is last-axis only: transpose, softmax, transpose back',
    },
    ...chainCases(chainShape),
    ...normCases(chainShape),
  ];
}

/**
 * sigmoid(relu(x·a + b)) with a and b per channel: as one fused kernel (chain()), and one kernel per op. TensorFlow.js
 * runs its four ops either way.
 */
function chainCases(shape: number[]): BenchCase[] {
  const inputs = (e: Parameters<BenchCase['ours']>[0]) => [randomTensor(e, shape), randomTensor(e, [shape[1], 1, 1], 2), randomTensor(e, [shape[1], 1, 1], 3)];
  const peer: BenchCase['peer'] = (tf) => peerRunner(tf, () => [tf.randomNormal(shape), tf.randomNormal([shape[1], 1, 1]), tf.randomNormal([shape[1], 1, 1])],
    ([x, a, b]) => tf.sigmoid(tf.relu(tf.add(tf.mul(x, a), b))));
  const base = { op: 'elementwise', shape: `sigmoid(relu(x*a+b)) [${shape}]`, flops: 4 * prod(shape), peer };
  return [
    { ...base, name: 'elementwise chain (fused)',
      ours: (e) => oursRunner(e, () => inputs(e), ([x, a, b]) => chain(x, [{ op: 'mul', operand: a }, { op: 'add', operand: b }, { op: 'relu' }, { op: 'sigmoid' }])) },
    { ...base, name: 'elementwise chain (op by op)', ours: (e) => oursRunner(e, () => inputs(e), ([x, a, b]) => sigmoid(relu(add(mul(x, a), b)))) },
  ];
}

/**
 * Batch norm, in evaluation mode and with the batch's statistics as training computes them, and a 2×2 max pool, on
 * NCHW tensors here and on NHWC tensors of the same size in tfjs (its layout; its batchNorm takes the statistics,
 * so training mode is tf.moments then tf.batchNorm).
 */
function normCases(shape: number[]): BenchCase[] {
  const [n, c, h, w] = shape;
  const nhwc = [n, h, w, c];
  const params = (e: Parameters<BenchCase['ours']>[0]) => [randomTensor(e, [c], 2), randomTensor(e, [c], 3), e.zeros([c]), e.fill([c], 1)];
  const ours = (training: boolean) => (e: Parameters<BenchCase['ours']>[0]) =>
    oursRunner(e, () => [randomTensor(e, shape), ...params(e)], ([x, gamma, beta, runningMean, runningVar]) =>
      batchNorm(x, gamma, beta, { runningMean, runningVar }, { training }));
  return [
    {
      // ~4 flops per element: subtract, two multiplies, add.
      name: 'batch norm (evaluation)', op: 'batchNorm', shape: `[${shape}] NCHW`, flops: 4 * prod(shape),
      ours: ours(false),
      peer: (tf) => peerRunner(tf, () => [tf.randomNormal(nhwc), tf.randomNormal([c]), tf.abs(tf.randomNormal([c])), tf.randomNormal([c]), tf.randomNormal([c])],
        ([x, mean, variance, offset, scale]) => tf.batchNorm(x, mean, variance, offset, scale, 1e-5)),
      peerNote: 'tfjs on NHWC',
    },
    {
      // The statistics (2 passes) and the normalization: ~7 flops per element.
      name: 'batch norm (training)', op: 'batchNorm', shape: `[${shape}] NCHW`, flops: 7 * prod(shape),
      ours: ours(true),
      peer: (tf) => peerRunner(tf, () => [tf.randomNormal(nhwc), tf.randomNormal([c]), tf.randomNormal([c])], ([x, offset, scale]) => {
        const { mean, variance } = tf.moments(x, [0, 1, 2]);
        return tf.batchNorm(x, mean, variance, offset, scale, 1e-5);
      }),
      peerNote: 'tfjs on NHWC: tf.moments, then tf.batchNorm',
    },
    {
      name: 'max pool 2x2', op: 'maxPool', shape: `[${shape}] NCHW, stride 2`, flops: prod(shape),
      ours: (e) => oursRunner(e, () => [randomTensor(e, shape)], ([x]) => maxPool(x, { kernel: 2 })),
      peer: (tf) => peerRunner(tf, () => tf.randomNormal(nhwc), (x) => tf.maxPool(x as Parameters<typeof tf.maxPool>[0], 2, 2, 'valid')),
      peerNote: 'tfjs on NHWC',
    },
  ];
}
