// PatchPerPix evidence computed from ground-truth instance labels (the oracle): every patch exactly right, so the
// assembly (src/models/ppp-assembly.ts) must give the labels back. What the assembly's tests, scripts/ppp-oracle.ts
// and bench/assembly.ts feed it; also the upper bound a trained model's patches can reach under a given config.
import type { Engine } from '../engine/engine.ts';
import { asLayers, layerSize, type Labels } from '../train/layers.ts';
import { samplingGeometry, type AssemblyConfig, type PatchEvidence } from './ppp-assembly.ts';

/** PatchEvidence with its images and samples as plain arrays. */
export interface OracleArrays {
  size: number[];
  single: Float32Array;
  foreground: Float32Array;
  samples: Float32Array;
  patches: PatchEvidence['patches'];
}

/**
 * The oracle's evidence for `labels` (plain or layered, of `size`; −1 counts as background): single and foreground
 * from the number of instances per pixel, and at a single pixel p the patch value at offset o is 1 where p + o holds
 * p's instance in any layer, else 0 (outside the image too).
 */
export function oracleArrays(labels: Labels, size: readonly number[], config: AssemblyConfig): OracleArrays {
  const g = samplingGeometry(size, config, 'oracleArrays');
  const { data, layers } = asLayers(labels);
  const pixels = layerSize({ data, layers }, 'oracleArrays: labels');
  if (pixels !== g.size.reduce((a, b) => a * b, 1)) throw new Error(`oracleArrays: labels have ${pixels} pixels per layer, size [${size.join(', ')}] has ${g.size.reduce((a, b) => a * b, 1)}`);
  // Each pixel's instance where it has exactly one, else 0.
  const own = new Int32Array(pixels);
  const single = new Float32Array(pixels);
  const foreground = new Float32Array(pixels);
  for (let i = 0; i < pixels; i++) {
    let count = 0;
    for (let l = 0; l < layers; l++) {
      const id = data[l * pixels + i];
      if (id > 0) {
        count++;
        own[i] = id;
      }
    }
    if (count !== 1) own[i] = 0;
    single[i] = count === 1 ? 1 : 0;
    foreground[i] = count >= 1 ? 1 : 0;
  }
  const holds = (i: number, id: number) => {
    for (let l = 0; l < layers; l++) if (data[l * pixels + i] === id) return true;
    return false;
  };
  const three = (xs: readonly number[], fill: number) => (xs.length === 2 ? [fill, xs[0], xs[1]] : [...xs]);
  const [D, H, W] = three(g.size, 1);
  // The patch of pixel (z, y, x) at offset (dz, dy, dx): 1 where the pixel there holds the centre's instance.
  const value = (z: number, y: number, x: number, dz: number, dy: number, dx: number) => {
    const id = own[(z * H + y) * W + x];
    const [qz, qy, qx] = [z + dz, y + dy, x + dx];
    if (id === 0 || qz < 0 || qy < 0 || qx < 0 || qz >= D || qy >= H || qx >= W) return 0;
    return holds((qz * H + qy) * W + qx, id) ? 1 : 0;
  };
  const [gd, gh, gw] = three(g.grid, 1);
  const [sz, sy, sx] = three(g.stride, 1);
  const [hz, hy, hx] = three(g.reach, 0);
  const volume = gd * gh * gw;
  const samples = new Float32Array(g.samples * volume);
  for (let gz = 0; gz < gd; gz++) {
    for (let gy = 0; gy < gh; gy++) {
      for (let gx = 0; gx < gw; gx++) {
        const [z, y, x] = [gz * sz, gy * sy, gx * sx];
        if (own[(z * H + y) * W + x] === 0) continue;
        let k = 0;
        for (let kz = -hz; kz <= hz; kz++) {
          for (let ky = -hy; ky <= hy; ky++) {
            for (let kx = -hx; kx <= hx; kx++, k++) samples[k * volume + (gz * gh + gy) * gw + gx] = value(z, y, x, kz * sz, ky * sy, kx * sx);
          }
        }
      }
    }
  }
  const [pz, py, px] = three(g.patchSize, 1);
  const patches = async (centres: Int32Array) => {
    const dims = g.size.length;
    const n = centres.length / dims;
    const out = new Float32Array(n * pz * py * px);
    for (let i = 0, v = 0; i < n; i++) {
      const [z, y, x] = three(Array.from(centres.subarray(i * dims, (i + 1) * dims)), 0);
      for (let dz = -(pz - 1) / 2; dz <= (pz - 1) / 2; dz++) {
        for (let dy = -(py - 1) / 2; dy <= (py - 1) / 2; dy++) {
          for (let dx = -(px - 1) / 2; dx <= (px - 1) / 2; dx++) out[v++] = value(z, y, x, dz, dy, dx);
        }
      }
    }
    return out;
  };
  return { size: [...g.size], single, foreground, samples, patches };
}

/** The oracle's evidence on the GPU, with dispose() for the tensors it uploads. */
export function oracleEvidence(e: Engine, labels: Labels, size: readonly number[], config: AssemblyConfig): PatchEvidence & { dispose(): void } {
  const a = oracleArrays(labels, size, config);
  const g = samplingGeometry(size, config, 'oracleEvidence');
  const tensors = {
    single: e.tensor(a.single, a.size),
    foreground: e.tensor(a.foreground, a.size),
    samples: e.tensor(a.samples, [g.samples, ...g.grid]),
  };
  return { size: a.size, ...tensors, patches: a.patches, dispose: () => Object.values(tensors).forEach((t) => t.dispose()) };
}
