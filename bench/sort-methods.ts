// `npx tsx bench/sort-methods.ts`: sortRows by its two methods (the bitonic network, and the per-row merge sort that
// CPU adapters get by default) on the same keys, timed alternately in one process by the bench harness (median of 5
// repeats after 2 warm-up calls; the better of two rounds per method), and whether both give the same order. Not part
// of the test suite.
import { createNodeEngine } from '../src/node.ts';
import { sortRows, type SortOptions } from '../src/index.ts';
import { rng, uniform } from '../test/support/check.ts';
import { timeRunner } from './harness.ts';
import { oursRunner } from './ours.ts';

const e = await createNodeEngine();
console.log(`adapter: ${e.adapterName}; ${new Date().toISOString().slice(0, 10)}`);
const shapes: [number, number][] = [[20, 16384], [60, 16384], [4, 32768], [1, 65536], [1000, 64], [8, 2049]];
const methods: NonNullable<SortOptions['method']>[] = ['network', 'serial'];
for (const [rows, cols] of shapes) {
  const keys = () => [e.tensor(Float32Array.from(uniform(rows * cols, rng(rows + cols), -1, 1)), [rows, cols])];
  const best: Record<string, number> = {};
  for (const method of [...methods, ...methods]) {
    const runner = oursRunner(e, keys, ([x]) => sortRows(x, { descending: true, method }));
    const { steady } = await timeRunner(runner, { repeats: 5, minRepeatMs: 0, warmup: 2 });
    runner.dispose();
    best[method] = Math.min(best[method] ?? Infinity, steady);
  }
  const [x] = keys();
  const orders: Int32Array[] = [];
  for (const method of methods) {
    const { values, indices } = sortRows(x, { descending: true, method });
    orders.push((await indices.data()) as Int32Array);
    values.dispose();
    indices.dispose();
  }
  x.dispose();
  const same = orders[0].every((v, i) => v === orders[1][i]);
  console.log(`[${rows}, ${cols}]: network ${best.network.toFixed(1)} ms, serial ${best.serial.toFixed(1)} ms, ${(best.network / best.serial).toFixed(2)}x, same order: ${same}`);
}
e.destroy();
