// What the Deno and browser runners share: parsing the `wgseg-*` lines a runtime prints, and the summary they print.
import type { CheckResult } from './checks.ts';

/** The lines a runtime prints: `wgseg-adapter {...}`, one `wgseg-result {...}` per check, then `wgseg-done`. */
export function parseResults(output: string): { adapter: string; results: CheckResult[]; done: boolean } {
  let adapter = 'unknown';
  let done = false;
  const results: CheckResult[] = [];
  for (const line of output.split('\n')) {
    if (line.startsWith('wgseg-adapter ')) {
      const info = JSON.parse(line.slice('wgseg-adapter '.length)) as { runtime: string; adapter: string };
      adapter = `${info.runtime} on ${info.adapter}`;
    } else if (line.startsWith('wgseg-result ')) {
      results.push(JSON.parse(line.slice('wgseg-result '.length)) as CheckResult);
    } else if (line.startsWith('wgseg-done')) {
      done = true;
    }
  }
  return { adapter, results, done };
}

/**
 * Prints each check and the last line `<runtime>: N passed, M failed`. A `failure` (the runtime crashed, never got a
 * WebGPU device, or stopped before `wgseg-done`) counts as one more failed test.
 */
export function printResults(runtime: string, adapter: string, results: CheckResult[], failure: string | null, ms: number): { passed: number; failed: number } {
  console.log(`${runtime}: ${adapter}`);
  for (const r of results) {
    console.log(`  ${r.ok ? 'ok  ' : 'FAIL'} ${r.name}: ${r.detail}`);
  }
  if (failure) console.log(`  FAIL ${failure}`);
  const passed = results.filter((r) => r.ok).length;
  const failed = results.length - passed + (failure ? 1 : 0);
  console.log(`  (${(ms / 1000).toFixed(1)} s)`);
  console.log(`${runtime}: ${passed} passed, ${failed} failed`);
  return { passed, failed };
}
