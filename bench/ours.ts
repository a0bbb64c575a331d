// Our side of a benchmark case: inputs made once, each run inside a tidy so outputs go back to the pool.
import type { Engine, Tensor } from '../src/index.ts';
import type { Runner } from './harness.ts';

export function oursRunner(engine: Engine, setup: () => Tensor[], op: (inputs: Tensor[]) => unknown): Runner {
  const inputs = setup().map((t) => engine.keep(t));
  return {
    run: () => {
      engine.tidy(() => {
        op(inputs);
      });
    },
    sync: () => engine.sync(),
    dispose: () => inputs.forEach((t) => t.dispose()),
  };
}

/** A deterministic pseudo-random f32 tensor (no GPU RNG needed for benchmarks). */
export function randomTensor(engine: Engine, shape: number[], seed = 1): Tensor {
  const n = shape.reduce((a, b) => a * b, 1);
  const data = new Float32Array(n);
  let s = seed >>> 0;
  for (let i = 0; i < n; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    data[i] = s / 4294967296 - 0.5;
  }
  return engine.tensor(data, shape);
}
