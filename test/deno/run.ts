// `npm run test:deno`: runs test/deno/checks.ts in Deno (the npm package's binary) on Deno's own WebGPU, and
// turns its `wgseg-result` lines into `deno: N passed, M failed`. A crash or a missing result counts as a failure.
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { printResults, parseResults } from '../portable/report.ts';

const root = fileURLToPath(new URL('../..', import.meta.url));
const deno = fileURLToPath(new URL('../../node_modules/.bin/deno', import.meta.url));
const TIMEOUT_MS = 600_000;
const started = Date.now();
// No permissions needed: the engine reads no files or environment; WebGPU is stable (no --unstable-webgpu) since Deno 2.
const run = spawnSync(deno, ['run', '--no-prompt', '--no-lock', 'test/deno/checks.ts'], {
  cwd: root,
  encoding: 'utf8',
  timeout: TIMEOUT_MS,
  maxBuffer: 64 << 20,
  env: { ...process.env, NO_COLOR: '1' },
});
const { adapter, results, done, running } = parseResults(run.stdout ?? '');
const during = running ? ` during ${running}` : '';
const failure =
  (run.error as NodeJS.ErrnoException | undefined)?.code === 'ETIMEDOUT'
    ? `deno ran out of its ${TIMEOUT_MS / 1000} s${during}`
    : run.error
      ? `deno could not run: ${run.error.message}`
      : run.status !== 0
        ? `deno exited with ${run.status ?? run.signal}${during}:\n${run.stderr}`
        : done
          ? null
          : 'deno stopped before reporting every check';
const { failed } = printResults('deno', adapter, results, failure, Date.now() - started);
process.exit(failed > 0 ? 1 : 0);
