// Deformable convolution v2 (shaders/deform-conv.wgsl), 2D, as torchvision.ops.deform_conv2d and ONNX DeformConv:
// x [N, Cin, H, W], offset [N, 2·offsetGroup·kh·kw, Ho, Wo] ordered (dy, dx) per tap, mask [N, offsetGroup·kh·kw,
// Ho, Wo] (already through a sigmoid, or null for v1), weight [Cout, Cin/group, kh, kw], bias [Cout] or null.
// Forward: deformable im2col, then a grouped matmul with the weights. Backward: matmuls for the column and weight
// gradients, then the columns' gradient is sent back through the bilinear sampling to x, offsets and mask.
import { record } from '../engine/autograd.ts';
import type { Tensor } from '../engine/tensor.ts';
import { shaderConstants } from '../shaders.gen.ts';
import { add, expectF32 } from './elementwise.ts';
import { matmul } from './matmul.ts';
import { sum } from './reduce.ts';

const { WORKGROUP_SIZE } = shaderConstants['deform-conv'];

export interface DeformConvOptions {
  /** (y, x) (default 1). */
  strides?: readonly number[];
  /** ONNX order [top, left, bottom, right] (default 0). */
  pads?: readonly number[];
  /** (y, x) (default 1). */
  dilations?: readonly number[];
  /** Channel groups of the convolution (default 1). */
  group?: number;
  /** Groups of input channels sharing one set of offsets (default: inferred from the offset's channels). */
  offsetGroup?: number;
}

interface DeformGeometry {
  batch: number;
  cin: number;
  cout: number;
  group: number;
  offsetGroup: number;
  height: number;
  width: number;
  outHeight: number;
  outWidth: number;
  kernel: [number, number];
  strides: [number, number];
  pads: [number, number];
  dilations: [number, number];
}

function pair(name: string, v: readonly number[] | undefined, fill: number, min: number): [number, number] {
  const out = v ? [...v] : [fill, fill];
  if (out.length !== 2 || out.some((d) => !Number.isInteger(d) || d < min)) {
    throw new Error(`deformConv: ${name} must be 2 integers >= ${min}, got [${out.join(', ')}]`);
  }
  return [out[0], out[1]];
}

const describe = (t: Tensor) => `[${t.shape.join(', ')}]`;

function geometry(x: Tensor, offset: Tensor, mask: Tensor | null, w: Tensor, b: Tensor | null, o: DeformConvOptions): DeformGeometry {
  for (const [name, t] of [['input', x], ['offset', offset], ['mask', mask], ['weight', w], ['bias', b]] as const) {
    if (t) expectF32('deformConv', name, t);
  }
  if (x.rank !== 4) throw new Error(`deformConv: input must be [N, C, H, W], got ${describe(x)}`);
  if (w.rank !== 4) throw new Error(`deformConv: weight must be [Cout, Cin/group, kh, kw], got ${describe(w)}`);
  const [batch, cin, height, width] = x.shape;
  const [cout, wcin, kh, kw] = w.shape;
  const group = o.group ?? 1;
  if (!Number.isInteger(group) || group < 1 || cin % group !== 0 || cout % group !== 0) {
    throw new Error(`deformConv: group ${group} must divide the input channels (${cin}) and output channels (${cout})`);
  }
  if (wcin * group !== cin) throw new Error(`deformConv: input has ${cin} channels, weight ${describe(w)} expects ${wcin * group} (group=${group})`);
  const strides = pair('strides', o.strides, 1, 1);
  const dilations = pair('dilations', o.dilations, 1, 1);
  const pads = o.pads ?? [0, 0, 0, 0];
  if (pads.length !== 4 || pads.some((p) => !Number.isInteger(p) || p < 0)) {
    throw new Error(`deformConv: pads must be 4 integers >= 0 [top, left, bottom, right], got [${pads.join(', ')}]`);
  }
  const outHeight = Math.floor((height + pads[0] + pads[2] - dilations[0] * (kh - 1) - 1) / strides[0]) + 1;
  const outWidth = Math.floor((width + pads[1] + pads[3] - dilations[1] * (kw - 1) - 1) / strides[1]) + 1;
  if (outHeight < 1 || outWidth < 1) throw new Error(`deformConv: kernel ${kh}x${kw} does not fit the padded input ${describe(x)}`);
  const taps = kh * kw;
  const offsetGroup = o.offsetGroup ?? offset.shape[1] / (2 * taps);
  if (!Number.isInteger(offsetGroup) || offsetGroup < 1 || cin % offsetGroup !== 0) {
    throw new Error(`deformConv: offsetGroup ${offsetGroup} must be a positive integer dividing the input channels (${cin})`);
  }
  const expectShape = (name: string, t: Tensor, channels: number) => {
    const want = [batch, channels, outHeight, outWidth];
    if (t.rank !== 4 || t.shape.some((d, i) => d !== want[i])) {
      throw new Error(`deformConv: ${name} must be [${want.join(', ')}] (offsetGroup=${offsetGroup}, ${kh}x${kw} taps), got ${describe(t)}`);
    }
  };
  expectShape('offset', offset, 2 * offsetGroup * taps);
  if (mask) expectShape('mask', mask, offsetGroup * taps);
  if (b && (b.rank !== 1 || b.shape[0] !== cout)) throw new Error(`deformConv: bias must be [${cout}], got ${describe(b)}`);
  return {
    batch, cin, cout, group, offsetGroup, height, width, outHeight, outWidth, kernel: [kh, kw], strides,
    pads: [pads[0], pads[1]], dilations,
  };
}

function deformParams(g: DeformGeometry) {
  const taps = g.kernel[0] * g.kernel[1];
  const pixels = g.outHeight * g.outWidth;
  return {
    n: g.batch * g.offsetGroup * taps * pixels, channels: g.cin, height: g.height, width: g.width, outWidth: g.outWidth, pixels,
    kernelWidth: g.kernel[1], taps, offsetGroups: g.offsetGroup, groupChannels: g.cin / g.offsetGroup,
    strides: g.strides, pads: g.pads, dilations: g.dilations,
  };
}

/** The sampled, modulated columns [N, Cin·kh·kw, Ho·Wo]. */
function deformColumns(x: Tensor, offset: Tensor, mask: Tensor | null, g: DeformGeometry): Tensor {
  const e = x.engine;
  const params = deformParams(g);
  const col = e.empty([g.batch, g.cin * params.taps, params.pixels]);
  e.dispatch({
    shader: 'deform-conv', entry: 'deform_im2col', constants: { HAS_MASK: mask ? 1 : 0 }, label: 'deformConv.im2col',
    // Without a mask the offsets stand in for the unread binding.
    bindings: { x, offset, mask: mask ?? offset, col, geom: params }, workgroups: e.groups1D(params.n, WORKGROUP_SIZE),
  });
  return col;
}

/** Modulated deformable convolution; gradients for x, offset, mask, weight and bias. */
export function deformConv(x: Tensor, offset: Tensor, mask: Tensor | null, w: Tensor, b: Tensor | null, options: DeformConvOptions = {}): Tensor {
  const g = geometry(x, offset, mask, w, b, options);
  const e = x.engine;
  const taps = g.kernel[0] * g.kernel[1];
  const P = g.outHeight * g.outWidth;
  const M = g.cout / g.group;
  const Kg = (g.cin / g.group) * taps;
  // The weights and columns as per-group matrices: w [1, G, M, Kg] broadcast over samples, col [N, G, Kg, P].
  const groupedWeights = () => e.view(w, [1, g.group, M, Kg]);
  const groupedColumns = (col: Tensor) => e.view(col, [g.batch, g.group, Kg, P]);

  // out[n, g·M + i, p] = Σ_r w[g·M + i, r] · col[n, g·Kg + r, p] (+ b)
  const out = e.noGrad(() =>
    e.tidy(() => {
      const y = e.view(matmul(groupedWeights(), groupedColumns(deformColumns(x, offset, mask, g))), [g.batch, g.cout, P]);
      return e.view(b ? add(y, e.view(b, [g.cout, 1])) : y, [g.batch, g.cout, g.outHeight, g.outWidth]);
    }),
  );

  const inputs = mask ? [x, offset, mask, w] : [x, offset, w];
  if (b) inputs.push(b);
  return record('deformConv', inputs, out, (gyOut) => {
    const gy = e.view(gyOut, [g.batch, g.group, M, P]);
    let gx: Tensor | null = null;
    let gOffset: Tensor | null = null;
    let gMask: Tensor | null = null;
    if (x.requiresGrad || offset.requiresGrad || mask?.requiresGrad) {
      // gCol[n, g·Kg + i, p] = Σ_m w[g·M + m, i] · gy[n, g·M + m, p]
      const gCol = matmul(groupedWeights(), gy, { transposeA: true });
      const params = deformParams(g);
      const sampling = { offset, mask: mask ?? offset, gCol, geom: params };
      const constants = { HAS_MASK: mask ? 1 : 0 };
      if (x.requiresGrad) {
        gx = e.zeros(x.shape);
        const gxBits = e.view(gx, gx.shape, 0, 'u32');
        e.dispatch({
          shader: 'deform-conv', entry: 'deform_grad_input', constants, label: 'deformConv.backward.input',
          bindings: { ...sampling, gxBits }, workgroups: e.groups1D(params.n, WORKGROUP_SIZE),
        });
      }
      if (offset.requiresGrad || mask?.requiresGrad) {
        gOffset = e.empty(offset.shape);
        // Without a mask a scratch tensor takes the (unwritten) mask gradient.
        gMask = e.empty(mask ? mask.shape : [1]);
        e.dispatch({
          shader: 'deform-conv', entry: 'deform_grad_offset_mask', constants, label: 'deformConv.backward.offsetMask',
          bindings: { ...sampling, x, gOffset, gMask }, workgroups: e.groups1D(params.n, WORKGROUP_SIZE),
        });
      }
    }
    // gW[g·M + i, j] = Σ_n Σ_p gy[n, g·M + i, p] · col[n, g·Kg + j, p]; the columns are sampled again rather than kept.
    let gw: Tensor | null = null;
    if (w.requiresGrad) {
      const perSample = matmul(gy, groupedColumns(deformColumns(x, offset, mask, g)), { transposeB: true });
      gw = e.view(g.batch > 1 ? sum(perSample, 0) : perSample, w.shape);
    }
    const grads = [x.requiresGrad ? gx : null, offset.requiresGrad ? gOffset : null];
    if (mask) grads.push(mask.requiresGrad ? gMask : null);
    grads.push(gw);
    if (b) grads.push(b.requiresGrad ? sum(gyOut, [0, 2, 3]) : null);
    return grads;
  });
}
