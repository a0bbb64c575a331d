// `npx tsx bench/elementwise-ops.ts`: single elementwise ops on [16, 64, 64, 64] through the engine (relu, sigmoid,
// a same-shape add, a channel-broadcast mul), wall time per call: the median of 5 rounds of 5 calls after 2 warm-up
// calls, each round ending in a sync. For comparing the kernels of two commits on one machine.
import { add, mul, relu, sigmoid, type Tensor } from '../src/index.ts';
import { createNodeEngine } from '../src/node.ts';

const e = await createNodeEngine();
const shape = [16, 64, 64, 64];
const x = e.tensor(Float32Array.from({ length: shape.reduce((p, q) => p * q) }, (_, i) => (i % 7) - 3), shape);
const channel = e.tensor(Float32Array.from({ length: 64 }, (_, i) => i / 64), [64, 1, 1]);
const cases: [string, () => Tensor][] = [
  ['relu', () => relu(x)],
  ['sigmoid', () => sigmoid(x)],
  ['add, same shape', () => add(x, x)],
  ['mul by [64, 1, 1]', () => mul(x, channel)],
];
console.log(`adapter: ${e.adapterName}; [${shape.join(', ')}]`);
for (const [name, op] of cases) {
  const run = async (calls: number) => {
    for (let i = 0; i < calls; i++) op().dispose();
    await e.sync();
  };
  await run(2);
  const times: number[] = [];
  for (let r = 0; r < 5; r++) {
    const t0 = performance.now();
    await run(5);
    times.push((performance.now() - t0) / 5);
  }
  console.log(`${name}: ${times.sort((p, q) => p - q)[2].toFixed(2)} ms`);
}
x.dispose();
channel.dispose();
e.destroy();
