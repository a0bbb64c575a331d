// One engine per test file (each file runs in its own process), destroyed afterwards so Dawn lets the process exit.
import { afterAll } from 'vitest';
import { createNodeEngine } from '../../src/node.ts';
import type { Engine } from '../../src/index.ts';

let engine: Promise<Engine> | null = null;

/** The file's engine, with poisoning on: every tensor an op allocates starts NaN-filled. */
export function testEngine(): Promise<Engine> {
  if (!engine) {
    engine = createNodeEngine().then((e) => {
      e.poison = true;
      return e;
    });
    afterAll(async () => {
      const e = await engine!;
      await e.sync();
      e.destroy();
    });
  }
  return engine;
}
