// Convolution-family benchmark cases (issue 3) on the shapes the models use. Our gradients are timed by running the
// recorded backward of a forward made once, with only the input (or only the weight) requiring grad.
// The peer runs NHWC/NDHWC, its native layout; where it lacks an op or an attribute, peer is null and the note says so.
import { conv, convTranspose, deformConv, type Engine } from '../src/index.ts';
import type { BenchCase, Runner } from './harness.ts';
import { oursRunner, randomTensor } from './ours.ts';
import { peerRunner } from './peer.ts';

type TF = typeof import('@tensorflow/tfjs-core');
type Pass = 'forward' | 'input-grad' | 'weight-grad';

interface ConvShape {
  n: number;
  cin: number;
  cout: number;
  spatial: number[];
  kernel: number[];
  dilation: number;
  group: number;
}

const prod = (s: number[]) => s.reduce((a, b) => a * b, 1);

/** 2·MACs of one pass ('same' padding, stride 1: output spatial = input spatial). */
const convFlops = (s: ConvShape) => 2 * s.n * s.cout * prod(s.spatial) * (s.cin / s.group) * prod(s.kernel);

/** Runs one backward of conv(x, w) for the pass; the forward and gy are made once. */
function oursConvGrad(e: Engine, s: ConvShape, pass: Exclude<Pass, 'forward'>): Runner {
  const pads = s.kernel.map((k) => ((k - 1) * s.dilation) >> 1);
  return oursRunner(
    e,
    () => {
      const x = randomTensor(e, [s.n, s.cin, ...s.spatial], 1);
      const w = randomTensor(e, [s.cout, s.cin / s.group, ...s.kernel], 2);
      if (pass === 'input-grad') x.requiresGrad = true;
      else w.requiresGrad = true;
      const y = conv(x, w, null, { pads: [...pads, ...pads], dilations: s.kernel.map(() => s.dilation), group: s.group });
      return [x, w, y, randomTensor(e, y.shape as number[], 3)];
    },
    ([, , y, gy]) => e.noGrad(() => y.node!.backward(gy)),
  );
}

function oursConv(e: Engine, s: ConvShape, pass: Pass): Runner {
  if (pass !== 'forward') return oursConvGrad(e, s, pass);
  const pads = s.kernel.map((k) => ((k - 1) * s.dilation) >> 1);
  return oursRunner(
    e,
    () => [randomTensor(e, [s.n, s.cin, ...s.spatial], 1), randomTensor(e, [s.cout, s.cin / s.group, ...s.kernel], 2)],
    ([x, w]) => conv(x, w, null, { pads: [...pads, ...pads], dilations: s.kernel.map(() => s.dilation), group: s.group }),
  );
}

/** tfjs 2D/3D conv and its backprop kernels, channels-last, 'same' padding, no groups. */
function peerConv(tf: TF, s: ConvShape, pass: Pass): Runner {
  const is3d = s.spatial.length === 3;
  const xShape = [s.n, ...s.spatial, s.cin];
  const fShape = [...s.kernel, s.cin, s.cout];
  const strides = s.spatial.map(() => 1);
  const dil = s.spatial.map(() => s.dilation);
  return peerRunner(
    tf,
    () => [tf.randomNormal(xShape), tf.randomNormal(fShape), tf.randomNormal([s.n, ...s.spatial, s.cout])],
    ([x, f, dy]) => {
      if (pass === 'forward') {
        return is3d
          ? tf.conv3d(x as never, f as never, strides as never, 'same', 'NDHWC', dil as never)
          : tf.conv2d(x as never, f as never, strides as never, 'same', 'NHWC', dil as never);
      }
      const kernel = is3d ? (pass === 'input-grad' ? 'Conv3DBackpropInputV2' : 'Conv3DBackpropFilterV2') : pass === 'input-grad' ? 'Conv2DBackpropInput' : 'Conv2DBackpropFilter';
      const inputs = pass === 'input-grad' ? { dy, filter: f } : { x, dy };
      const attrs = pass === 'input-grad' ? { strides, pad: 'same', inputShape: xShape, dataFormat: is3d ? 'NDHWC' : 'NHWC' } : { strides, pad: 'same', filterShape: fShape, dataFormat: is3d ? 'NDHWC' : 'NHWC' };
      return tf.engine().runKernel(kernel, inputs as never, attrs as never);
    },
  );
}

function convCases(label: string, s: ConvShape, passes: Pass[], peer: (pass: Pass) => BenchCase['peer'], note?: (pass: Pass) => string | undefined): BenchCase[] {
  const shape = `N${s.n} ${s.cin}->${s.cout} [${s.spatial}] k[${s.kernel}] d${s.dilation} g${s.group}`;
  return passes.map((pass) => ({
    name: `${label} ${pass}`, op: `conv.${pass}`, shape, flops: convFlops(s),
    ours: (e) => oursConv(e, s, pass), peer: peer(pass), peerNote: note?.(pass),
  }));
}

export function convFamilyCases(quick: boolean): BenchCase[] {
  const hw = quick ? 64 : 128;
  const dilated: ConvShape = { n: 2, cin: 64, cout: 64, spatial: [hw, hw], kernel: [3, 3], dilation: 2, group: 1 };
  const grouped: ConvShape = { n: 1, cin: 512, cout: 512, spatial: quick ? [32, 32] : [64, 64], kernel: [3, 3], dilation: 1, group: 8 };
  const conv3: ConvShape = { n: 1, cin: 32, cout: 32, spatial: quick ? [8, 32, 32] : [16, 64, 64], kernel: [3, 3, 3], dilation: 1, group: 1 };
  const passes: Pass[] = ['forward', 'input-grad', 'weight-grad'];

  const groupPeer = (tf: TF): Runner => {
    // tfjs has no grouped convolution: 8 separate 64->64 convs on channel slices, the usual workaround.
    const g = grouped.group;
    const cg = grouped.cin / g;
    return peerRunner(
      tf,
      () => ({ xs: Array.from({ length: g }, () => tf.randomNormal([1, ...grouped.spatial, cg])), fs: Array.from({ length: g }, () => tf.randomNormal([3, 3, cg, grouped.cout / g])) }),
      ({ xs, fs }) => xs.map((x, i) => tf.conv2d(x as never, fs[i] as never, 1, 'same')),
    );
  };

  const transposed = quick ? { n: 1, cin: 32, cout: 8, hw: 32 } : { n: 2, cin: 64, cout: 8, hw: 32 };
  const deform = { n: 1, c: 64, hw: quick ? 32 : 64 };
  return [
    ...convCases('conv2d 3x3 dil2', dilated, passes,
      (pass) => (pass === 'forward' ? (tf) => peerConv(tf, dilated, pass) : null),
      (pass) => (pass === 'forward' ? undefined : 'tfjs conv2d gradients do not support dilation > 1')),
    ...convCases('grouped conv2d 3x3', grouped, ['forward'], () => groupPeer, () => 'tfjs has no groups: 8 separate convs on channel slices'),
    ...convCases('conv3d 3x3x3', conv3, passes, (pass) => (tf) => peerConv(tf, conv3, pass)),
    {
      name: 'convTranspose2d k8 s4', op: 'convTranspose', shape: `N${transposed.n} ${transposed.cin}->${transposed.cout} [${transposed.hw},${transposed.hw}] -> x4`,
      flops: 2 * transposed.n * transposed.cin * transposed.hw * transposed.hw * transposed.cout * 64,
      ours: (e) => oursRunner(e, () => [randomTensor(e, [transposed.n, transposed.cin, transposed.hw, transposed.hw]), randomTensor(e, [transposed.cin, transposed.cout, 8, 8], 2)],
        ([x, w]) => convTranspose(x, w, null, { strides: [4, 4], pads: [2, 2, 2, 2] })),
      peer: (tf) => peerRunner(tf, () => [tf.randomNormal([transposed.n, transposed.hw, transposed.hw, transposed.cin]), tf.randomNormal([8, 8, transposed.cout, transposed.cin])],
        ([x, f]) => tf.conv2dTranspose(x as never, f as never, [transposed.n, 4 * transposed.hw, 4 * transposed.hw, transposed.cout], 4, 'same')),
    },
    {
      name: 'deformConv2d 3x3', op: 'deformConv', shape: `N${deform.n} ${deform.c}->${deform.c} [${deform.hw},${deform.hw}] with mask`,
      flops: 2 * deform.n * deform.c * deform.c * deform.hw * deform.hw * 9,
      ours: (e) => oursRunner(e, () => {
        const offsets = randomTensor(e, [deform.n, 18, deform.hw, deform.hw], 4);
        return [randomTensor(e, [deform.n, deform.c, deform.hw, deform.hw]), offsets, e.fill([deform.n, 9, deform.hw, deform.hw], 0.5), randomTensor(e, [deform.c, deform.c, 3, 3], 2)];
      }, ([x, off, mask, w]) => deformConv(x, off, mask, w, null, { pads: [1, 1, 1, 1] })),
      peer: null,
      peerNote: 'tfjs has no deformable convolution',
    },
  ];
}
