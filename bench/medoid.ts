// `npx tsx bench/medoid.ts`: EmbedSeg's medoid search (instanceMedoids, shaders/embedseg-loss.wgsl) on one square
// instance of 64×64 and of 96×96 pixels in a [2, 1, 128, 128] batch: best of 5 calls, and the distance terms per
// second that an all-pairs search would compute (n² per instance).
import { createNodeEngine, instanceMedoids } from '../src/node.ts';

const e = await createNodeEngine();
console.log(`adapter: ${e.adapterName}; ${new Date().toISOString().slice(0, 10)}`);
for (const side of [64, 96]) {
  const [h, w] = [128, 128];
  const labels = new Int32Array(2 * h * w);
  for (let y = 0; y < side; y++) for (let x = 0; x < side; x++) labels[y * w + x] = 1;
  const t = e.tensor(labels, [2, 1, h, w]);
  await instanceMedoids(t);
  let ms = Infinity;
  for (let i = 0; i < 5; i++) {
    const t0 = performance.now();
    await instanceMedoids(t);
    ms = Math.min(ms, performance.now() - t0);
  }
  const pairs = (side * side) ** 2;
  console.log(`${side}×${side} instance: ${ms.toFixed(1)} ms, ${(pairs / ms / 1e3).toFixed(0)} M pairs/s`);
  t.dispose();
}
e.destroy();
process.exit(0);
