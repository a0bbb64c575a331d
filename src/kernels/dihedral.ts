// The 8 rotations/flips of the (H, W) plane (the dihedral group of the square), for test-time augmentation
// (SPEC.md "EmbedSeg", TTA). Transform t = k + 4·f for k in 0..3, f in 0..1: first, when f = 1, flip along W
// (x → W−1−x, numpy's np.flip(a, -1)); then rotate k times by 90° counter-clockwise as np.rot90(a, k, axes=(-2, -1))
// (and torch.rot90(a, k, dims=(-2, -1))): out[i, j] = in[j, W−1−i] per quarter turn, so odd k swap H and W.
// The rotations' inverses are the opposite rotations; every flipped transform is its own inverse.
// One tiled kernel (shaders/dihedral.wgsl) moves 32-bit words, so any dtype works (images, labels). No autograd.
import type { Tensor } from '../engine/tensor.ts';
import { shaderConstants } from '../shaders.gen.ts';

const { TILE } = shaderConstants.dihedral;

/** Output (row, column) → input (row, column): input row = r[0]·row + r[1]·column + r[2], input column likewise. */
type CoordinateMap = [row: [number, number, number], column: [number, number, number]];

/** The index map of transform t on an H × W plane, and the transformed plane's size. */
function dihedralMap(t: number, height: number, width: number): { map: CoordinateMap; height: number; width: number } {
  let map: CoordinateMap = [[1, 0, 0], [0, 1, 0]];
  let [h, w] = [height, width];
  // map ∘ g: out(p) = current(g(p)) = input(map(g(p))).
  const then = (g: CoordinateMap) => {
    map = map.map(([a, b, c]) => [0, 1, 2].map((k) => a * g[0][k] + b * g[1][k] + (k === 2 ? c : 0))) as CoordinateMap;
  };
  if (t >= 4) then([[1, 0, 0], [0, -1, w - 1]]);
  for (let k = 0; k < t % 4; k++) {
    then([[0, 1, 0], [-1, 0, w - 1]]);
    [h, w] = [w, h];
  }
  return { map, height: h, width: w };
}

function checkTransform(op: string, t: number): void {
  if (!Number.isInteger(t) || t < 0 || t > 7) throw new Error(`${op}: transform must be an integer in 0..7, got ${t}`);
}

/** The transform undoing t: the opposite rotation, or t itself for the flipped ones. */
export function dihedralInverseIndex(t: number): number {
  checkTransform('dihedralInverseIndex', t);
  return t >= 4 ? t : (4 - t) % 4;
}

/**
 * `x` (any dtype, rank ≥ 2: [..., H, W], e.g. [N, C, H, W]) with its last two axes transformed by t (see the top of
 * this file); odd rotations give [..., W, H].
 */
export function dihedral(x: Tensor, t: number): Tensor {
  const op = 'dihedral';
  checkTransform(op, t);
  if (x.rank < 2) throw new Error(`${op}: needs [..., H, W], got [${x.shape.join(', ')}]`);
  const e = x.engine;
  const [inHeight, inWidth] = x.shape.slice(-2);
  const { map, height, width } = dihedralMap(t, inHeight, inWidth);
  const out = e.empty([...x.shape.slice(0, -2), height, width], x.dtype);
  if (x.size === 0) return out;
  const planes = x.size / (inHeight * inWidth);
  const tilesX = Math.ceil(width / TILE);
  const tilesY = Math.ceil(height / TILE);
  const src = e.view(x, x.shape, 0, 'u32');
  const dst = e.view(out, out.shape, 0, 'u32');
  e.dispatch({
    shader: 'dihedral', label: `dihedral[${t}]`, workgroups: e.groups1D(planes * tilesX * tilesY, 1),
    bindings: {
      src, dst,
      params: { rowMap: [...map[0], 0], colMap: [...map[1], 0], inHeight, inWidth, outHeight: height, outWidth: width, planes, tilesX, tilesY },
    },
  });
  src.dispose();
  dst.dispose();
  return out;
}

/** Undoes dihedral(·, t) exactly: dihedralInverse(dihedral(x, t), t) equals x. */
export function dihedralInverse(x: Tensor, t: number): Tensor {
  checkTransform('dihedralInverse', t);
  return dihedral(x, dihedralInverseIndex(t));
}

/**
 * How 2-vector channels (offsets, and with the signs ignored, per-axis bandwidths) predicted on dihedral(image, t) map
 * back once dihedralInverse(outputs, t) has put every pixel back in place: the vectors still point along the
 * transformed image's axes. Channel c of the image's frame = sign[c] · channel source[c] of the transformed frame.
 * Channels are in EmbedSeg's order (0 = x along W, 1 = y along H) unless `order` is 'yx'.
 * E.g. t = 1 (one quarter turn): [−o1, o0] in xy order, as SPEC.md's rot90.
 */
export function dihedralVectorMap(t: number, order: 'xy' | 'yx' = 'xy'): { source: [number, number]; sign: [number, number] } {
  checkTransform('dihedralVectorMap', t);
  // A displacement v' in the transformed frame is v = L·v' in the image's, L the linear part of the output → input map.
  const { map } = dihedralMap(t, 2, 2);
  const axisOf = (c: number) => (order === 'xy' ? 1 - c : c);
  const source: [number, number] = [0, 0];
  const sign: [number, number] = [1, 1];
  for (const c of [0, 1]) {
    const row = map[axisOf(c)];
    const b = row[0] !== 0 ? 0 : 1;
    source[c] = axisOf(b);
    sign[c] = row[b];
  }
  return { source, sign };
}
