// What the Deno and browser runners share: parsing the `wgseg-*` lines a runtime prints, and the summary they print.
import type { CheckResult } from './checks.ts';

/**
 * The lines a runtime prints: `wgseg-adapter {...}`, one `wgseg-result {...}` per check (op checks are preceded by
 * `wgseg-start <name>`), then `wgseg-done`. `running` is the check that started and never reported, if any.
 */
export function parseResults(output: string): { adapter: string; results: CheckResult[]; done: boolean; running: string | null } {
  let adapter = 'unknown';
  let done = false;
  let running: string | null = null;
  const results: CheckResult[] = [];
  for (const line of output.split('\n')) {
    if (line.startsWith('wgseg-adapter ')) {
      const info = JSON.parse(line.slice('wgseg-adapter '.length)) as { runtime: string; adapter: string };
      adapter = `${info.runtime} on ${info.adapter}`;
    } else if (line.startsWith('wgseg-start ')) {
      running = line.slice('wgseg-start '.length);
    } else if (line.startsWith('wgseg-result ')) {
      results.push(JSON.parse(line.slice('wgseg-result '.length)) as CheckResult);
      running = null;
    } else if (line.startsWith('wgseg-done')) {
      done = true;
    }
  }
  return { adapter, results, done, running };
}

/**
 * Prints each portable check, one line per op family (and each of its skips and failures with the reason), and the
 * last line `<runtime>: N passed, M failed`. A `failure` (the runtime crashed, never got a WebGPU device, or stopped
 * before `wgseg-done`) counts as one more failed test; a skipped check counts as neither.
 */
export function printResults(runtime: string, adapter: string, results: CheckResult[], failure: string | null, ms: number): { passed: number; failed: number } {
  console.log(`${runtime}: ${adapter}`);
  const families = new Map<string, CheckResult[]>();
  for (const r of results) {
    if (r.family === undefined) console.log(`  ${r.ok ? 'ok  ' : 'FAIL'} ${r.name}: ${r.detail}`);
    else families.set(r.family, [...(families.get(r.family) ?? []), r]);
  }
  for (const [family, rs] of families) {
    const failures = rs.filter((r) => !r.ok);
    const skips = rs.filter((r) => r.skipped);
    const seconds = rs.reduce((s, r) => s + (r.ms ?? 0), 0) / 1000;
    const skipped = skips.length ? `, ${skips.length} skipped` : '';
    console.log(`  ${failures.length ? 'FAIL' : 'ok  '} ${family}: ${rs.length - failures.length - skips.length} of ${rs.length} checks passed${skipped} (${seconds.toFixed(1)} s)`);
    for (const r of skips) console.log(`    skip ${family} > ${r.name}: ${r.skipped}`);
    for (const r of failures) console.log(`    FAIL ${family} > ${r.name}: ${r.detail.replaceAll('\n', '\n      ')}`);
  }
  if (failure) console.log(`  FAIL ${failure}`);
  const skipped = results.filter((r) => r.skipped).length;
  const passed = results.filter((r) => r.ok).length - skipped;
  const failed = results.length - passed - skipped + (failure ? 1 : 0);
  console.log(`  (${(ms / 1000).toFixed(1)} s${skipped ? `, ${skipped} skipped` : ''})`);
  console.log(`${runtime}: ${passed} passed, ${failed} failed`);
  return { passed, failed };
}
