// The demo job (`npm run demo`): trains a tiny U-Net to segment synthetic nuclei-like blobs on whatever adapter
// Dawn finds (a GPU, or lavapipe on the CPU), then reports foreground IoU on held-out images and the engine's
// memory statistics. RDCNet replaces it as the main job when issue 4 lands.
import { parseArgs } from 'node:util';
import { Adam, cosineDecay, syntheticBlobs, type Engine, type Tensor } from '../src/index.ts';
import { createNodeEngine } from '../src/node.ts';
import { nllLoss, TinyUNet } from './tiny-unet.ts';

const { values: args } = parseArgs({
  options: { steps: { type: 'string', default: '150' }, size: { type: 'string', default: '64' }, batch: { type: 'string', default: '4' } },
});
const steps = Number(args.steps);
const size = Number(args.size);
const batch = Number(args.batch);

/** A batch of synthetic images as [N, 1, H, W] inputs and one-hot [N, 2, H, W] targets. */
function makeBatch(e: Engine, seed: number, n: number): { x: Tensor; target: Tensor; labels: Int32Array[] } {
  const x = new Float32Array(n * size * size);
  const target = new Float32Array(n * 2 * size * size);
  const labels: Int32Array[] = [];
  for (let i = 0; i < n; i++) {
    const img = syntheticBlobs({ height: size, width: size, blobs: 12, radius: [4, 9], noise: 0.08, seed: seed * 1000 + i });
    x.set(img.image, i * size * size);
    for (let p = 0; p < size * size; p++) target[(i * 2 + (img.labels[p] > 0 ? 1 : 0)) * size * size + p] = 1;
    labels.push(img.labels);
  }
  return { x: e.tensor(x, [n, 1, size, size]), target: e.tensor(target, [n, 2, size, size]), labels };
}

const e = await createNodeEngine();
console.log(`adapter: ${e.adapterName}`);
const net = new TinyUNet(e, 16, 1);
const opt = new Adam(net.parameters, { lr: 3e-3 });
const lr = cosineDecay({ lr0: 3e-3, lrMin: 1e-4, steps });

const t0 = performance.now();
for (let step = 0; step < steps; step++) {
  const loss = e.tidy(() => {
    const { x, target } = makeBatch(e, step, batch);
    const l = nllLoss(net.forward(x, true), target);
    l.backward();
    opt.step(lr(step));
    opt.zeroGrad();
    return l;
  });
  if (step % 25 === 0 || step === steps - 1) {
    const value = await loss.item();
    const rate = (step + 1) / ((performance.now() - t0) / 1000);
    console.log(`step ${String(step).padStart(4)}  loss ${value.toFixed(4)}  lr ${lr(step).toExponential(2)}  ${rate.toFixed(2)} steps/s`);
  }
  loss.dispose();
}

// Held-out images: foreground IoU of argmax(logits) against the true masks.
const test = makeBatch(e, 100000, 4);
const logp = e.noGrad(() => net.forward(test.x, false));
const lp = await logp.data();
let inter = 0;
let union = 0;
for (let i = 0; i < 4; i++) {
  for (let p = 0; p < size * size; p++) {
    const fg = lp[(i * 2 + 1) * size * size + p] > lp[i * 2 * size * size + p];
    const truth = test.labels[i][p] > 0;
    if (fg && truth) inter++;
    if (fg || truth) union++;
  }
}
const stats = e.stats();
console.log(`held-out foreground IoU ${(inter / union).toFixed(3)} after ${steps} steps in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
console.log(`engine: ${stats.liveTensors} live tensors, peak ${(stats.peakLiveBytes / 2 ** 20).toFixed(1)} MiB live, ${(stats.allocatedBytes / 2 ** 20).toFixed(1)} MiB allocated, ${stats.pipelines} pipelines, ${stats.dispatches} dispatches in ${stats.submits} submits`);
for (const t of [logp, test.x, test.target]) t.dispose();
opt.dispose();
net.dispose();
e.destroy();
