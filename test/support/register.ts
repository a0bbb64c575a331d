// Registers a list of portable checks (test/ops/*.ts) with vitest, under the same describe blocks and names they
// had as vitest tests, each run on the file's poisoned Node engine. A check that cannot run on this adapter is
// reported as skipped, with its reason.
import { describe, it } from 'vitest';
import { testEngine } from './engine.ts';
import type { Check } from './suite.ts';

export function registerChecks(checks: readonly Check[], depth = 0): void {
  for (let i = 0; i < checks.length; ) {
    const check = checks[i];
    if (check.suite.length === depth) {
      it(check.name, async (context) => {
        const e = await testEngine();
        const reason = check.skip?.(e);
        if (reason) context.skip(reason);
        await check.run(e);
      });
      i++;
      continue;
    }
    // Consecutive checks under the same describe block share one.
    let end = i + 1;
    while (end < checks.length && checks[end].suite.length > depth && checks[end].suite[depth] === check.suite[depth]) end++;
    const group = checks.slice(i, end);
    describe(check.suite[depth], () => registerChecks(group, depth + 1));
    i = end;
  }
}
