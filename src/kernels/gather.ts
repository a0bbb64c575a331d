// Gathers by index (shaders/gather.wgsl). PatchPerPix+dec trains its decoder on the codes of ≤ 1024 sampled
// foreground pixels per crop and decodes the codes of sampled patch centres at inference: gatherPixels picks those
// pixels' channel vectors out of [N, C, ...spatial]. selectChannels keeps a subset of the channels (PatchPerPix's
// per-tile reduction keeps the patch values at the assembly's sampled offsets).
import { record } from '../engine/autograd.ts';
import type { Tensor } from '../engine/tensor.ts';
import { shaderConstants } from '../shaders.gen.ts';
import { expectF32 } from './elementwise.ts';

const { WORKGROUP_SIZE } = shaderConstants.gather;
const fmt = (shape: readonly number[]) => `[${shape.join(', ')}]`;

/**
 * Rows [M, C] of x [N, C, ...spatial]: row m is the channel vector of pixel `pixels[m]`, a flat index n·S + s (S the
 * spatial size, s row-major). Pixels must be distinct (checked): each is gathered at most once, which makes the
 * gradient a gather through the inverse map, deterministic and without atomics.
 */
export function gatherPixels(x: Tensor, pixels: Int32Array): Tensor {
  const op = 'gatherPixels';
  expectF32(op, 'x', x);
  if (x.rank < 2) throw new Error(`${op}: x must be [N, C, ...spatial], got ${fmt(x.shape)}`);
  const [items, channels] = x.shape;
  const spatial = x.shape.slice(2).reduce((a, b) => a * b, 1);
  const total = items * spatial;
  const inverse = new Int32Array(total).fill(-1);
  for (let m = 0; m < pixels.length; m++) {
    const p = pixels[m];
    if (!(p >= 0 && p < total)) throw new Error(`${op}: pixel index ${p} (row ${m}) is outside the ${total} pixels of x ${fmt(x.shape)}`);
    if (inverse[p] >= 0) throw new Error(`${op}: pixel index ${p} is given twice (rows ${inverse[p]} and ${m}); pixels must be distinct`);
    inverse[p] = m;
  }
  const e = x.engine;
  const out = e.empty([pixels.length, channels]);
  if (out.size === 0) return out;
  const index = e.tensor(pixels, [pixels.length], 'i32');
  e.dispatch({
    shader: 'gather', entry: 'gather_pixels', label: op,
    bindings: { params: { n: out.size, channels, spatial, outChannels: channels }, x, index, out },
    workgroups: e.groups1D(out.size, WORKGROUP_SIZE),
  });
  index.dispose();
  return record(op, [x], out, (gy) => {
    const gx = e.empty(x.shape);
    const inv = e.tensor(inverse, [total], 'i32');
    e.dispatch({
      shader: 'gather', entry: 'gather_backward', label: `${op}.backward`,
      bindings: { params: { n: gx.size, channels, spatial, outChannels: channels }, x: gy, index: inv, out: gx },
      workgroups: e.groups1D(gx.size, WORKGROUP_SIZE),
    });
    inv.dispose();
    return [gx];
  });
}

/** x [N, C, ...spatial] with only the channels listed, in that order: [N, channels.length, ...spatial]. No gradient. */
export function selectChannels(x: Tensor, channels: readonly number[]): Tensor {
  const op = 'selectChannels';
  expectF32(op, 'x', x);
  if (x.rank < 2) throw new Error(`${op}: x must be [N, C, ...spatial], got ${fmt(x.shape)}`);
  const bad = channels.findIndex((c) => !(Number.isInteger(c) && c >= 0 && c < x.shape[1]));
  if (bad >= 0) throw new Error(`${op}: channel ${channels[bad]} (entry ${bad}) is not one of the ${x.shape[1]} channels of x ${fmt(x.shape)}`);
  const e = x.engine;
  const spatial = x.shape.slice(2).reduce((a, b) => a * b, 1);
  const out = e.empty([x.shape[0], channels.length, ...x.shape.slice(2)]);
  if (out.size === 0) return out;
  const index = e.tensor(Int32Array.from(channels), [channels.length], 'i32');
  e.dispatch({
    shader: 'gather', entry: 'select_channels', label: op,
    bindings: { params: { n: out.size, channels: x.shape[1], spatial, outChannels: channels.length }, x, index, out },
    workgroups: e.groups1D(out.size, WORKGROUP_SIZE),
  });
  index.dispose();
  return out;
}
