// `npx tsx bench/sort-methods.ts`: sortRows by its two methods (the bitonic network, and the per-row merge sort that
// CPU adapters get by default) on the same keys, alternately, in one process: the better of two medians of 4 timed
// calls each (dispatch to GPU idle), and whether both give the same order. Not part of the test suite.
import { createNodeEngine } from '../src/node.ts';
import { sortRows } from '../src/index.ts';
import { rng, uniform } from '../test/support/check.ts';

const e = await createNodeEngine();
console.log(`adapter: ${e.adapterName}; ${new Date().toISOString().slice(0, 10)}`);
const shapes: [number, number][] = [[20, 16384], [60, 16384], [4, 32768], [1, 65536], [1000, 64], [8, 2049]];
for (const [rows, cols] of shapes) {
  const x = e.tensor(Float32Array.from(uniform(rows * cols, rng(rows + cols), -1, 1)), [rows, cols]);
  const best: Record<string, number> = {};
  const orders: Record<string, Int32Array> = {};
  for (const method of ['network', 'serial', 'network', 'serial'] as const) {
    const times: number[] = [];
    for (let r = 0; r < 4; r++) {
      const t0 = performance.now();
      const { values, indices } = sortRows(x, { descending: true, method });
      await e.sync();
      times.push(performance.now() - t0);
      if (r === 0) orders[method] = (await indices.data()) as Int32Array;
      values.dispose();
      indices.dispose();
    }
    times.sort((a, b) => a - b);
    best[method] = Math.min(best[method] ?? Infinity, (times[1] + times[2]) / 2);
  }
  const same = orders.network.every((v, i) => v === orders.serial[i]);
  console.log(`[${rows}, ${cols}]: network ${best.network.toFixed(1)} ms, serial ${best.serial.toFixed(1)} ms, ${(best.network / best.serial).toFixed(2)}x, same order: ${same}`);
  x.dispose();
}
e.destroy();
