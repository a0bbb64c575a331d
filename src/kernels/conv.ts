// Convolution and transposed convolution, 2D and 3D (shaders/conv.wgsl), with ONNX Conv / ConvTranspose attributes
// and PyTorch/ONNX weight layouts. One kernel family serves every direction: convTranspose's forward is conv's input
// gradient and conv's forward is convTranspose's input gradient; both weight gradients are one kernel.
import { record } from '../engine/autograd.ts';
import type { Engine } from '../engine/engine.ts';
import type { Tensor } from '../engine/tensor.ts';
import { shaderConstants } from '../shaders.gen.ts';
import { expectF32 } from './elementwise.ts';
import { sum } from './reduce.ts';

export interface ConvOptions {
  /** Per spatial axis (default 1). */
  strides?: readonly number[];
  /** ONNX order [begin per axis..., end per axis...] (default 0). */
  pads?: readonly number[];
  /** Per spatial axis (default 1). */
  dilations?: readonly number[];
  /** Channel groups (default 1). */
  group?: number;
}

export interface ConvTransposeOptions extends ConvOptions {
  /** Extra size added to the end of each spatial axis of the output (default 0). */
  outputPadding?: readonly number[];
}

type Vec3 = [number, number, number];

/**
 * A convolution from its own side, lifted to 3D (a 2D one has D = 1): x [batch, cin, inSize] → y [batch, cout, outSize]
 * with weight [cout, cin/group, kernel]. A transposed convolution is the same geometry read backwards.
 */
interface Geometry {
  batch: number;
  group: number;
  cin: number;
  cout: number;
  inSize: Vec3;
  outSize: Vec3;
  kernel: Vec3;
  strides: Vec3;
  /** Padding before each axis. */
  pads: Vec3;
  dilations: Vec3;
  /** Shapes as the caller sees them (rank 4 in 2D). */
  xShape: number[];
  yShape: number[];
  wShape: number[];
}

// Output tile of every entry point: COLS·WG_X columns by ROWS·WG_Y rows (8 outputs per invocation each way), WG_X in
// {8, 16, 32}, WG_Y in {1, 2, 4, 8}, K in steps of TILE_K (8 or MAX_TILE_K = 16).
const { ROWS, COLS, MAX_TILE_K } = shaderConstants.conv;
/**
 * On a CPU adapter, groups of at most this many output rows (channels) take WG_Y = 1 with PRIVATE_A: no workgroup
 * barrier per K step (lavapipe: 8-32 channels 16-23% faster; 64 channels 5-7% slower with it, so they keep WG_Y = 8).
 */
const CPU_PRIVATE_ROWS = 48;
/**
 * The weight gradient splits its K (batch x output pixels) across workgroups until about the engine's
 * tuning.convWeightGradWorkgroups run, keeping at least this many pixels per split.
 */
const MIN_PIXELS_PER_SPLIT = 2048;

const volume = (v: readonly number[]) => v.reduce((a, b) => a * b, 1);
/** A spatial attribute in 3D: 2D ones get `fill` for D. */
const lift = (v: readonly number[], fill: number): Vec3 => (v.length === 2 ? [fill, v[0], v[1]] : [v[0], v[1], v[2]]) as Vec3;

interface Attributes {
  strides: number[];
  padsBegin: number[];
  padsEnd: number[];
  dilations: number[];
  group: number;
}

function attributes(op: string, spatial: number, o: ConvOptions): Attributes {
  const list = (name: string, v: readonly number[] | undefined, length: number, fill: number, min: number) => {
    const out = v ? [...v] : new Array<number>(length).fill(fill);
    if (out.length !== length) throw new Error(`${op}: ${name} has ${out.length} values, expected ${length} for ${spatial} spatial axes`);
    if (out.some((d) => !Number.isInteger(d) || d < min)) throw new Error(`${op}: ${name} must be integers >= ${min}, got [${out.join(', ')}]`);
    return out;
  };
  const pads = list('pads', o.pads, 2 * spatial, 0, 0);
  const group = o.group ?? 1;
  if (!Number.isInteger(group) || group < 1) throw new Error(`${op}: group must be a positive integer, got ${group}`);
  return {
    strides: list('strides', o.strides, spatial, 1, 1),
    padsBegin: pads.slice(0, spatial),
    padsEnd: pads.slice(spatial),
    dilations: list('dilations', o.dilations, spatial, 1, 1),
    group,
  };
}

function checkOperands(op: string, x: Tensor, w: Tensor, b: Tensor | null): number {
  expectF32(op, 'input', x);
  expectF32(op, 'weight', w);
  if (b) expectF32(op, 'bias', b);
  if (x.rank !== 4 && x.rank !== 5) throw new Error(`${op}: input must be [N, C, H, W] or [N, C, D, H, W], got [${x.shape.join(', ')}]`);
  if (w.rank !== x.rank) throw new Error(`${op}: weight [${w.shape.join(', ')}] must have rank ${x.rank} like the input [${x.shape.join(', ')}]`);
  return x.rank - 2;
}

function geometry(
  x: { batch: number; channels: number; size: number[] }, y: { channels: number; size: number[] }, kernel: number[], a: Attributes,
): Geometry {
  return {
    batch: x.batch, group: a.group, cin: x.channels, cout: y.channels,
    inSize: lift(x.size, 1), outSize: lift(y.size, 1), kernel: lift(kernel, 1),
    strides: lift(a.strides, 1), pads: lift(a.padsBegin, 0), dilations: lift(a.dilations, 1),
    xShape: [x.batch, x.channels, ...x.size], yShape: [x.batch, y.channels, ...y.size],
    wShape: [y.channels, x.channels / a.group, ...kernel],
  };
}

/**
 * The nominal flops of the convolution `geo` (2 per multiply-add, padding taps included): its forward, its input
 * gradient and its weight gradient each do this many.
 */
function convFlops(geo: Geometry): number {
  return 2 * geo.batch * geo.cout * volume(geo.outSize) * (geo.cin / geo.group) * volume(geo.kernel);
}

function params(geo: Geometry, hasBias: boolean, mTiles: number, splits = 1, rowsPerSplit = 0) {
  return {
    batch: geo.batch, group: geo.group, cin: geo.cin, cout: geo.cout, inSize: geo.inSize, outSize: geo.outSize,
    kernel: geo.kernel, strides: geo.strides, pads: geo.pads, dilations: geo.dilations,
    hasBias: hasBias ? 1 : 0, mTiles, splits, rowsPerSplit,
  };
}

/**
 * Workgroups for `rows` x `cols` outputs per z slice, and the tile: WG_Y, the smallest row tile that covers `rows`
 * (a 64-row tile on 8 output channels would waste 7/8 of the work), or 1 with PRIVATE_A on a CPU adapter for up to
 * CPU_PRIVATE_ROWS rows; WG_X = 32 (256 columns) unless `narrow`, then
 * the smallest column tile that covers `cols` (a weight gradient has only cin/group × taps columns); TILE_K = 8 when
 * K advances `kStep` (channels per tap, or pixels per row) at a time and kStep <= 8, else 16. Column tiles beyond the
 * per-dimension limit fold into y.
 */
function tiling(e: Engine, rows: number, cols: number, z: number, kStep: number, narrow = false) {
  const tileFor = (n: number, per: number, max: number) => Math.min(max, 2 ** Math.ceil(Math.log2(Math.max(1, n / per))));
  // On a CPU adapter, few rows run one row of invocations per workgroup, each reading its A tile itself (PRIVATE_A).
  const privateA = e.cpuAdapter && rows <= CPU_PRIVATE_ROWS;
  const WG_Y = privateA ? 1 : tileFor(rows, ROWS, 8);
  const WG_X = narrow ? Math.max(8, tileFor(cols, COLS, 32)) : 32;
  const TILE_K = kStep <= 8 ? 8 : MAX_TILE_K;
  const mTiles = Math.ceil(rows / (ROWS * WG_Y));
  const nTiles = Math.ceil(cols / (COLS * WG_X));
  const fold = Math.ceil(nTiles / e.device.limits.maxComputeWorkgroupsPerDimension);
  return { constants: { WG_X, WG_Y, TILE_K, PRIVATE_A: privateA ? 1 : 0 }, mTiles, groups: [Math.ceil(nTiles / fold), mTiles * fold, z] as [number, number, number] };
}

/** y = conv(x, w) + b. */
function convForward(geo: Geometry, x: Tensor, w: Tensor, b: Tensor | null, label: string): Tensor {
  const e = x.engine;
  const y = e.empty(geo.yShape);
  const { constants, mTiles, groups } = tiling(e, geo.cout / geo.group, geo.batch * volume(geo.outSize), geo.group, geo.cin / geo.group);
  // Without a bias another read-only tensor fills the binding; hasBias = 0 keeps the shader from reading it.
  e.dispatch({
    shader: 'conv', entry: 'conv_forward', label, constants, workgroups: groups, flops: convFlops(geo),
    bindings: { x, w, bias: b ?? w, yOut: y, params: params(geo, b !== null, mTiles) },
  });
  return y;
}

/** x = convᵀ(y, w) + b: the input gradient of conv, the forward of convTranspose. */
function convTransposeKernel(geo: Geometry, y: Tensor, w: Tensor, b: Tensor | null, label: string): Tensor {
  const e = y.engine;
  const x = e.empty(geo.xShape);
  const extent = geo.inSize.map((d, i) => Math.ceil(d / geo.strides[i]));
  const phases = volume(geo.strides);
  const { constants, mTiles, groups } = tiling(e, geo.cin / geo.group, geo.batch * volume(extent), geo.group * phases, geo.cout / geo.group);
  e.dispatch({
    shader: 'conv', entry: 'conv_transpose', label, constants, workgroups: groups, flops: convFlops(geo),
    bindings: { y, w, bias: b ?? w, xOut: x, params: params(geo, b !== null, mTiles) },
  });
  return x;
}

/** dL/dw = Σ gy ⊗ im2col(x) over batch and output pixels, split across workgroups when that leaves too few. */
function convWeightGrad(geo: Geometry, x: Tensor, gy: Tensor, label: string): Tensor {
  const e = x.engine;
  const rows = geo.batch * geo.outSize[0] * geo.outSize[1];
  const { constants, mTiles, groups } = tiling(e, geo.cout / geo.group, (geo.cin / geo.group) * volume(geo.kernel), geo.group, geo.outSize[2], true);
  const perSplit = groups[0] * groups[1] * groups[2];
  const pixels = rows * geo.outSize[2];
  const splits = Math.max(1, Math.min(Math.ceil(e.tuning.convWeightGradWorkgroups / perSplit), Math.floor(pixels / MIN_PIXELS_PER_SPLIT), Math.floor(65535 / geo.group)));
  const rowsPerSplit = Math.ceil(rows / splits);
  const used = Math.ceil(rows / rowsPerSplit);
  const out = e.empty(used === 1 ? geo.wShape : [used, ...geo.wShape]);
  e.dispatch({
    shader: 'conv', entry: 'conv_weight_grad', label, constants, workgroups: [groups[0], groups[1], geo.group * used], flops: convFlops(geo),
    bindings: { x, y: gy, wOut: out, params: params(geo, false, mTiles, used, rowsPerSplit) },
  });
  if (used === 1) return out;
  const total = sum(out, 0);
  out.dispose();
  return total;
}

/** Bias gradient: gy summed over everything but channels. */
function biasGrad(gy: Tensor): Tensor {
  return sum(gy, [0, ...Array.from({ length: gy.rank - 2 }, (_, i) => i + 2)]);
}

/**
 * ONNX Conv, 2D or 3D: x [N, Cin, (D,) H, W], w [Cout, Cin/group, (kd,) kh, kw], b [Cout] or null.
 * Output size per axis: floor((in + padBegin + padEnd − ((k − 1)·dilation + 1)) / stride) + 1.
 */
export function conv(x: Tensor, w: Tensor, b: Tensor | null, options: ConvOptions = {}): Tensor {
  const spatial = checkOperands('conv', x, w, b);
  const a = attributes('conv', spatial, options);
  const [batch, cin] = x.shape;
  const cout = w.shape[0];
  if (w.shape[1] * a.group !== cin) throw new Error(`conv: input has ${cin} channels, weight expects ${w.shape[1] * a.group} (group=${a.group})`);
  if (cout % a.group !== 0) throw new Error(`conv: weight has ${cout} output channels, not divisible by group=${a.group}`);
  if (b && (b.rank !== 1 || b.shape[0] !== cout)) throw new Error(`conv: bias [${b.shape.join(', ')}] must be [${cout}]`);
  const kernel = w.shape.slice(2);
  const inSize = x.shape.slice(2);
  const outSize = inSize.map((d, i) => {
    const padded = d + a.padsBegin[i] + a.padsEnd[i];
    const extent = (kernel[i] - 1) * a.dilations[i] + 1;
    if (extent > padded) {
      throw new Error(`conv: kernel extent ${extent} (size ${kernel[i]}, dilation ${a.dilations[i]}) exceeds the padded input ${padded} along spatial axis ${i}`);
    }
    return Math.floor((padded - extent) / a.strides[i]) + 1;
  });
  const geo = geometry({ batch, channels: cin, size: inSize }, { channels: cout, size: outSize }, kernel, a);
  const y = convForward(geo, x, w, b, 'conv');
  return record('conv', b ? [x, w, b] : [x, w], y, (gy) => [
    x.requiresGrad ? convTransposeKernel(geo, gy, w, null, 'conv.inputGrad') : null,
    w.requiresGrad ? convWeightGrad(geo, x, gy, 'conv.weightGrad') : null,
    ...(b ? [b.requiresGrad ? biasGrad(gy) : null] : []),
  ]);
}

/**
 * ONNX ConvTranspose, 2D or 3D: x [N, Cin, (D,) H, W], w [Cin, Cout/group, (kd,) kh, kw], b [Cout] or null.
 * Output size per axis: stride·(in − 1) + outputPadding + (k − 1)·dilation + 1 − padBegin − padEnd.
 */
export function convTranspose(x: Tensor, w: Tensor, b: Tensor | null, options: ConvTransposeOptions = {}): Tensor {
  const spatial = checkOperands('convTranspose', x, w, b);
  const a = attributes('convTranspose', spatial, options);
  const [batch, cin] = x.shape;
  if (w.shape[0] !== cin) throw new Error(`convTranspose: input has ${cin} channels, weight expects ${w.shape[0]} (group=${a.group})`);
  if (cin % a.group !== 0) throw new Error(`convTranspose: input has ${cin} channels, not divisible by group=${a.group}`);
  const cout = w.shape[1] * a.group;
  if (b && (b.rank !== 1 || b.shape[0] !== cout)) throw new Error(`convTranspose: bias [${b.shape.join(', ')}] must be [${cout}]`);
  const outputPadding = options.outputPadding ? [...options.outputPadding] : new Array<number>(spatial).fill(0);
  if (outputPadding.length !== spatial) throw new Error(`convTranspose: outputPadding has ${outputPadding.length} values, expected ${spatial}`);
  const kernel = w.shape.slice(2);
  const inSize = x.shape.slice(2);
  const outSize = inSize.map((d, i) => {
    const p = outputPadding[i];
    if (!Number.isInteger(p) || p < 0 || (p >= a.strides[i] && p >= a.dilations[i])) {
      throw new Error(`convTranspose: outputPadding ${p} along spatial axis ${i} must be smaller than the stride ${a.strides[i]} or the dilation ${a.dilations[i]}`);
    }
    const size = a.strides[i] * (d - 1) + p + (kernel[i] - 1) * a.dilations[i] + 1 - a.padsBegin[i] - a.padsEnd[i];
    if (size < 1) throw new Error(`convTranspose: output size ${size} along spatial axis ${i} (pads ${a.padsBegin[i]}+${a.padsEnd[i]} too large)`);
    return size;
  });
  // The conv this transposes maps the output [N, Cout, outSize] back to x [N, Cin, inSize].
  const geo = geometry({ batch, channels: cout, size: outSize }, { channels: cin, size: inSize }, kernel, a);
  const y = convTransposeKernel(geo, x, w, b, 'convTranspose');
  return record('convTranspose', b ? [x, w, b] : [x, w], y, (gy) => [
    x.requiresGrad ? convForward(geo, gy, w, null, 'convTranspose.inputGrad') : null,
    w.requiresGrad ? convWeightGrad(geo, gy, x, 'convTranspose.weightGrad') : null,
    ...(b ? [b.requiresGrad ? biasGrad(gy) : null] : []),
  ]);
}
