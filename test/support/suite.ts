// A runtime-agnostic test list: test/ops/*.ts declare their checks with describe/it as in vitest, but `it` only
// records them, and each check gets the engine as its argument. vitest registers them (test/support/register.ts);
// the Deno and browser runners run them on their own navigator.gpu (test/portable/families.ts).
import type { Engine } from '../../src/index.ts';

export interface Check {
  /** The enclosing describe blocks, outermost first. */
  suite: string[];
  name: string;
  run(e: Engine): Promise<void>;
  /** Why the check cannot run on `e`'s adapter (a limit, a precision below what it asks), or null where it can. */
  skip?: (e: Engine) => string | null;
}

/** describe/it that collect into `checks`, so a module of checks reads like the vitest file it came from. */
export function checkList(): {
  checks: Check[];
  describe(name: string, body: () => void): void;
  it(name: string, run: (e: Engine) => void | Promise<void>, options?: { skip?: Check['skip'] }): void;
} {
  const checks: Check[] = [];
  const suite: string[] = [];
  return {
    checks,
    describe(name, body) {
      suite.push(name);
      try {
        body();
      } finally {
        suite.pop();
      }
    },
    it(name, run, options) {
      checks.push({ suite: [...suite], name, run: async (e) => run(e), skip: options?.skip });
    },
  };
}
