// Holding out part of a dataset for validation (pure TypeScript, every runtime).
import { seededRandom } from './synthetic.ts';

/**
 * Splits `samples` into train and val: round(fraction·n) samples (at least one, and never all) drawn by a seeded
 * shuffle, so the same seed and input order hold out the same samples. Both parts keep the input order.
 */
export function holdOut<T>(samples: T[], fraction: number, seed: number): { train: T[]; val: T[] } {
  if (!(fraction > 0 && fraction < 1)) throw new Error(`holdOut: fraction ${fraction} is not in (0, 1)`);
  if (samples.length < 2) throw new Error(`holdOut: ${samples.length} sample(s); need at least 2 to hold one out`);
  const n = samples.length;
  const nVal = Math.min(n - 1, Math.max(1, Math.round(fraction * n)));
  const rand = seededRandom(seed);
  const order = samples.map((_, i) => i);
  for (let i = n - 1; i > 0; i--) {
    const j = Math.floor(rand() * (i + 1));
    [order[i], order[j]] = [order[j], order[i]];
  }
  const held = new Set(order.slice(0, nVal));
  return { train: samples.filter((_, i) => !held.has(i)), val: samples.filter((_, i) => held.has(i)) };
}
