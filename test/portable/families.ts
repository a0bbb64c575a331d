// Runs every op family's checks (test/ops/) on a runtime's own WebGPU, as vitest runs them on Node: each family on a
// fresh engine with poisoning on, torn down afterwards; a check that cannot run on this adapter is reported as
// skipped, with its reason. Prints the lines test/portable/report.ts parses:
// `wgseg-start <name>` before each check (so a runner that times out can say where) and `wgseg-result <json>` after.
import type { Engine } from '../../src/index.ts';
import { opFamilies } from '../ops/index.ts';
import type { CheckResult } from './checks.ts';

export async function runOpFamilies(createEngine: () => Promise<Engine>): Promise<void> {
  for (const [family, checks] of Object.entries(opFamilies)) {
    const engine = await createEngine();
    engine.poison = true;
    for (const check of checks) {
      const name = [...check.suite, check.name].join(' > ');
      const reason = check.skip?.(engine);
      if (reason) {
        console.log(`wgseg-result ${JSON.stringify({ family, name, ok: true, skipped: reason, detail: '' } satisfies CheckResult)}`);
        continue;
      }
      console.log(`wgseg-start ${family} > ${name}`);
      const started = performance.now();
      const error = await failure(() => check.run(engine));
      const result: CheckResult = { family, name, ok: !error, detail: error ?? '', ms: performance.now() - started };
      console.log(`wgseg-result ${JSON.stringify(result)}`);
    }
    // Errors are raised at the next readback, so the last check's may only show here (as in vitest's afterAll).
    const error = await failure(() => engine.sync());
    if (error) console.log(`wgseg-result ${JSON.stringify({ family, name: 'after the last check', ok: false, detail: error })}`);
    engine.destroy();
  }
}

/** What `run` threw, or null: an assertion's message says everything, an unexpected error also needs its stack. */
async function failure(run: () => Promise<void>): Promise<string | null> {
  try {
    await run();
    return null;
  } catch (e) {
    return e instanceof Error ? (e.constructor === Error ? e.message : (e.stack ?? e.message)) : String(e);
  }
}
